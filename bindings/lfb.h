/*
 * lfb.h -- what the files of the Lua bindings share.
 *
 * Every Lua state that loads the module (the main state and each worker's)
 * gets one context, `lfb_ctx`: its inbox of done callbacks, its thread name
 * and its caches. Module functions and methods reach it as upvalue 1.
 */
#ifndef LFB_H
#define LFB_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../runtime/lf.h"
/* luaopen_concurrent_futures and the rest of the public API. */
#include "../include/luafutures.h"
#include "../runtime/lf_queue.h"

#define LFB_MODNAME "concurrent.futures"

/* Where a signal handler finds a state (embed.c): never freed, reused. */
typedef struct lfb_slot lfb_slot;

typedef struct lfb_ctx {
  lf_inbox *inbox; /* NULL once the state is closing */
  char name[64];   /* "MainThread" or the worker's name */
  int nloaded;     /* entries in this state's function cache */
  int names_count; /* package.loaded's fingerprint when names were indexed */
  lfb_slot *slot;  /* its interrupt flag, or NULL */
  int polling;     /* callbacks are running: they do not nest */
  /* the host's state_closing hook of a worker state, from its creation */
  void (*closing)(void *ud, lua_State *W);
  void *closing_ud;
  /* Hot-path caches. The Future metatable's address (anchored in the
   * registry for the state's life). The last function submitted and its
   * blob: the registry holds that function (LFB_LASTFN), so its address
   * cannot be reused and its weakly keyed blob stays. */
  const void *future_mt;
  int future_mt_ref; /* the same metatable, at this registry index */
  const void *last_fn;
  struct lfb_blob *last_blob;
  /* References to last_blob taken ahead (lfb_last_ref), and the blob's
   * nups and allenv: a submit reads nothing on the blob's own line, which
   * the workers write as they drop their references. */
  int last_credit, last_nups, last_allenv;
  /* A worker's: the blob whose function it ran last, and the registry
   * slots of that function and of the blob's box (lfb_loaded_get), or 0. */
  struct lfb_blob *loaded_last;
  int loaded_ref, loaded_box_ref;
} lfb_ctx;
/* The context's last submitted function (blob.c): _set makes fp (its
 * blob b) the last, _ref gives a reference to that blob for a payload (one no payload
 * took goes back with ctx->last_credit++), _drop forgets the last and
 * gives back the references taken ahead (the state closes). */
void lfb_last_set(struct lfb_ctx *ctx, const void *fp, struct lfb_blob *b);
lf_obj *lfb_last_ref(struct lfb_ctx *ctx);
void lfb_last_drop(struct lfb_ctx *ctx);

/* Stack discipline, checked in debug builds (-DLFB_DEBUG, which the
 * sanitizer builds set): a helper that promises to leave the stack `delta`
 * slots higher notes the top where it starts and checks it where it
 * returns; a broken promise aborts with the place. */
#ifdef LFB_DEBUG
void lfb_stack_fail(const char *file, int line, int want, int got);
#define LFB_STACK_BEGIN(L) const int lfb_top_ = lua_gettop(L)
#define LFB_STACK_CHECK(L, delta)                                          \
  do {                                                                     \
    if (lua_gettop(L) != lfb_top_ + (delta))                               \
      lfb_stack_fail(__FILE__, __LINE__, lfb_top_ + (delta), lua_gettop(L)); \
  } while (0)
#else
#define LFB_STACK_BEGIN(L) ((void)0)
#define LFB_STACK_CHECK(L, delta) ((void)0)
#endif

/* The context of the running function (upvalue 1). */
#define lfb_ctx_of(L) ((lfb_ctx *)lua_touserdata(L, lua_upvalueindex(1)))

/* The self check of the executors, which every submit makes. Their
 * objects end with a tag, their own address mixed with a key drawn once a
 * process from the kernel's random source, so a check reads the block's
 * length and one word: no metatable, no upvalue, no registry. A light
 * userdata, a table or another library's userdata fails it (a Lua program
 * cannot learn the key), and the caller falls back to lauxlib's check,
 * which raises in lauxlib's words. The tag is the struct's last member. */
extern uintptr_t lfb_tag_key; /* drawn by luaopen, once a process */
#define LFB_TAG(p) ((uintptr_t)(const void *)(p) ^ lfb_tag_key)
static inline void *lfb_tagged(lua_State *L, int idx, size_t size) {
  void *u = lua_touserdata(L, idx);
  uintptr_t tag;
  if (u == NULL || lua_rawlen(L, idx) != size) return NULL;
  memcpy(&tag, (char *)u + size - sizeof tag, sizeof tag);
  return tag == LFB_TAG(u) ? u : NULL;
}
#define LFB_TAGGED(L, idx, type) ((type *)lfb_tagged(L, idx, sizeof(type)))

/* The type name of the value at idx as lauxlib's errors give it: the
 * metatable's __name where it is a string. Valid while the value is. */
const char *lfb_typename(lua_State *L, int idx);
/* Creates this state's context (or finds it) and leaves it on the stack. */
lfb_ctx *lfb_ctx_push(lua_State *L);
/* The context of a state that loaded the module, or NULL; nothing pushed,
 * never raises. */
lfb_ctx *lfb_ctx_find(lua_State *L);
/* Registers `l` with the context as upvalue (table on top). */
void lfb_setfuncs(lua_State *L, const luaL_Reg *l);
/* Makes the metatable `name` of a class: `meta`'s metamethods and an
 * __index table of `methods`, all with the context as upvalue. */
void lfb_newclass(lua_State *L, const char *name, const luaL_Reg *meta,
                  const luaL_Reg *methods);
/* The userdata at idx if its metatable is the one kept in the registry
 * under the address `key`, else NULL; a pointer compare where
 * luaL_testudata interns a name (hot paths: submit, result, map steps). */
void *lfb_toclass(lua_State *L, int idx, const void *key);

/* Registry keys (addresses) of per-state tables. */
extern const char lfb_PROXIES[], lfb_FNCACHE[], lfb_LOADED[], lfb_NAMES[];
void lfb_push_weak(lua_State *L, const char *key, const char *mode);

/* ---- errors (errors.c) ---------------------------------------------------- */

/* Pushes a new error object of class `type` ("TimeoutError", ...). */
void lfb_pusherror(lua_State *L, const char *type, const char *fmt, ...);
/* Raises it. */
int lfb_raise(lua_State *L, const char *type, const char *fmt, ...);
/* Pushes tostring(v) of the value at idx and returns it; never raises: when
 * its __tostring fails, "(error object is a T value)". */
const char *lfb_tostring_safe(lua_State *L, int idx);
void lfb_open_errors(lua_State *L); /* module table on top */

/* ---- codec (codec.h) ------------------------------------------------------ */

#include "codec.h"

/* Raises the task error below the top with the worker's traceback (top),
 * noting both in the registry fields below, where a driver's message
 * handler finds them (bin/luafutures prints that traceback too). */
#define LFB_RAISED_ERROR "luafutures.raised_error"
#define LFB_RAISED_TRACEBACK "luafutures.raised_traceback"
int lfb_reraise(lua_State *L);

/* ---- task outcomes (outcome.c) ------------------------------------------- */

/* The one writer and reader of a result payload's layout (see outcome.c).
 * Writers append to an encoder whose payload began with lfb_enc_u32(count).
 * lfb_outcome_values writes the n values from `first` as a returned call;
 * on a value that cannot be transferred it writes nothing and returns -1
 * with e->err set. lfb_outcome_try_error writes the error at err and the
 * traceback at tb (0: none) the same way; lfb_outcome_error never fails:
 * an error value that cannot be copied becomes the TransferError saying
 * why. The stack is left as it was. */
int lfb_outcome_values(lfb_enc *e, lua_State *L, int first, int n);
int lfb_outcome_try_error(lfb_enc *e, lua_State *L, int err, int tb);
void lfb_outcome_error(lfb_enc *e, lua_State *L, int err, int tb);
/* A whole result payload of one failed outcome, error `type` with
 * `message`, encoded in L (its classes resolve by name in any state or
 * process); NULL when out of memory. The caller owns it. */
lf_payload *lfb_outcome_canned(lua_State *L, const char *type,
                               const char *message);
/* A copy of a canned payload for a future (any thread, no Lua); NULL when
 * out of memory or canned is NULL. */
lf_payload *lfb_outcome_copy(const lf_payload *canned);
/* Opens a result payload: d at its first outcome; returns the count. */
uint32_t lfb_outcome_open(lfb_dec *d, const lf_payload *p);
/* Pushes the outcome at d (the caller set d->refs): its values (*ok = 1,
 * returns how many), or its error and, with with_tb, its traceback
 * (*ok = 0, returns 1 or 2). Raises on a corrupt payload. */
int lfb_outcome_push(lua_State *L, lfb_dec *d, int with_tb, int *ok);
/* Pushes the one value of a payload whose only outcome returned one
 * number or boolean and returns 1; 0 (nothing pushed) for any other. */
int lfb_outcome_push_scalar(lua_State *L, const lf_payload *p);
/* The same for the outcome at d (a map chunk's): pushed, d moved past it,
 * 1; or 0, nothing pushed, d as it was. */
int lfb_outcome_next_scalar(lua_State *L, lfb_dec *d);
/* Moves d past the outcome at d without decoding it (garbage: d->bad). */
void lfb_outcome_skip(lfb_dec *d);
/* For tostring: whether the first outcome returned, and the type of its
 * first value (or error); "nil" when it returned nothing. */
const char *lfb_outcome_describe(const lf_payload *p, int *ok);
/* Who ran a task, where and when (lf_now seconds: CLOCK_MONOTONIC, the
 * same clock in every process of the machine), carried at the end of its
 * result payload; a worker process writes it, so it is untrusted. */
#define LFB_STAMP_NAME 64
typedef struct lfb_stamp {
  int timed;        /* the times and ids are set (a traced task) */
  double start, end;
  long pid, tid;
  char worker[LFB_STAMP_NAME];
} lfb_stamp;
void lfb_outcome_stamp(lfb_enc *e, const lfb_stamp *s);
/* 1 with *s filled when p ends with a stamp that adds up, else 0. */
int lfb_outcome_stamp_read(const lf_payload *p, lfb_stamp *s);

/* ---- hints (hints.c) ------------------------------------------------------ */

/* A task's error at err (and its traceback at tb, 0: none) as this state
 * received it: when it says "attempt to ... a nil value (global 'x')" and
 * this state has a global x, both strings are replaced by ones that add
 * why (globals are not copied) and what to do. */
void lfb_hint_task_error(lua_State *L, int err, int tb);
/* What a TransferError calls the userdata at idx, with advice when the
 * user can do something (a file handle: open it inside the task). */
const char *lfb_hint_userdata(lua_State *L, int idx);

/* luaL_checkstack for a count read from a payload: never overflows. */
void lfb_checkstack(lua_State *L, size_t n, const char *what);

/* ---- worker states (worker.c) -------------------------------------------- */

/* What a worker state is built from; the strings and `init` stay the
 * caller's. */
typedef struct lfb_wconf {
  const char *name;        /* its thread_name() */
  const char *label;       /* names the worker in messages; NULL: name */
  const char *path, *cpath;
  const lf_payload *init;  /* initializer and initargs, or NULL */
  int remote;              /* init came from another process: untrusted */
  unsigned libs;           /* lfb_libs_option's mask; 0: all */
  char *why;               /* NULL, or where an initializer's failure is */
  size_t whylen;           /* written (whylen bytes) */
  luafutures_hooks hooks;  /* lfb_worker_new fills it in */
} lfb_wconf;

/* The executor option `libs` of the options table at arg: a mask of the
 * standard libraries (all when absent); misuse raises, naming it. */
#define LFB_LIBS_ALL 0x3ffu
unsigned lfb_libs_option(lua_State *L, int arg);

enum { LFB_W_NOMEM = -1, LFB_W_INITFAILED = -2 };

/* Builds a worker state, on the thread that will use it: NULL with *why
 * set (LFB_W_NOMEM or LFB_W_INITFAILED, the initializer's error reported
 * on stderr). lfb_worker_setup does the same in a fresh state L (0 or
 * *why's codes), which the caller closes. */
lua_State *lfb_worker_new(lfb_wconf *c, int *why);
int lfb_worker_setup(lua_State *L, const lfb_wconf *c);
void lfb_worker_close(lua_State *L);
/* Runs a task payload (taking ownership of it) and returns the result
 * payload (f's, if f is not NULL), or NULL when out of memory, with
 * *failed set; `handles_ok` 0 encodes results for another process. */
lf_payload *lfb_worker_run(lua_State *L, lf_future *f, lf_payload *task,
                           int *failed, int handles_ok);

/* ---- classes -------------------------------------------------------------- */

/* One pointer, so that a Future userdata is a 48-byte block (M1); that
 * set_result put an outcome in the results cache is the future's mark. */
typedef struct lfb_future {
  lf_future *f;
} lfb_future;
#define LFB_FUTURE "Future"

/* What ex:stats() returns (every field a count now). */
typedef struct lfb_stats {
  long queued, running, done, failed, cancelled, workers, busy;
  /* A process pool's: the bytes of tasks and Shared values sent to its
   * workers, and how many Shared values (each to one worker); -1: none. */
  long long bytes_sent, shared_sent;
} lfb_stats;

/* Counts a kind keeps for stats(): ended_as is the runtime's tally of how
 * every future it queued ended (lfb_counts_submit, stats.c), whatever ended
 * it (a worker, cancel, a broken pool, shutdown). `started` and `ended`
 * are the kind's own, where it sees tasks run. */
typedef struct lfb_counts {
  /* Written by submits; the rest by workers on every task, so kept off
   * this cache line (and the line after it off theirs). */
  _Atomic long submitted;
  char pad_submit[64];
  _Atomic long started, ended;
  lf_tally ended_as;
  char pad_end[64];
} lfb_counts;
/* A kind's submit: lfb_counts_submit(c, f, kind_submit(pool, f)) after
 * lf_future_tally(f, &c->ended_as), so that f is counted as it ends (the
 * tally is set before any other thread sees f); returns rc. */
int lfb_counts_submit(lfb_counts *c, lf_future *f, int rc);
/* Fills s's done, failed and cancelled, and queued: what was submitted
 * and is neither done nor among s->running (set first), never < 0. */
void lfb_counts_fill(const lfb_counts *c, lfb_stats *s);

/* What one kind of pool does for the executor class (executor.c), which
 * writes shutdown, __close, __gc, __tostring, refusals and map once. */
typedef struct lfb_exec_ops {
  const char *name;    /* the class: __name, tostring, checks */
  const char *broken;  /* the error type of a broken pool */
  int handles_ok;      /* tasks may hold handles: same process */
  const char *detail;  /* tostring's own field ("prefix"), and its value */
  const char *(*detail_value)(void *pool);
  int (*submit)(void *pool, lf_future *f); /* takes a reference on 0 */
  int (*shutdown)(void *pool, int wait, int cancel); /* 0 or LF_ESELF */
  int (*status)(void *pool);                         /* lf_pool_status */
  size_t (*nworkers)(void *pool);
  size_t (*max_workers)(void *pool);
  const char *(*broken_message)(void *pool); /* why it is broken */
  void (*unref)(void *pool);
  /* What the pool knows of its last failure (which worker, what it did),
   * written to buf as a string, "" if nothing; NULL: never anything. */
  void (*failure)(void *pool, char *buf, size_t len);
  /* Takes a reference, so that a pool can be waited for on another
   * thread; NULL: its shutdown(wait) blocks the caller, uninterruptible. */
  void (*ref)(void *pool);
  void (*stats)(void *pool, lfb_stats *out); /* ex:stats() */
  /* shutdown(false) waits too (MPICommExecutor: the ranks it frees must
   * know that no task follows); `shutdown` itself honours its wait, so
   * that a wait can be left to another thread. */
  int waits_always;
  /* After shutdown(pool, 0, ...): a future done once the pool has stopped,
   * as lf_pool_stopped; NULL (or a NULL op): wait on a joining thread. */
  lf_future *(*stopped)(void *pool);
  /* Tasks (with !handles_ok) carry a Shared as its id alone: the pool
   * gives a worker the bytes it asks for (a process pool; MPI: 0). */
  int shared_by_id;
} lfb_exec_ops;

/* An executor object. The constructor pushes it empty (lfb_exec_new)
 * before it allocates anything, and parks what it allocates in `held`
 * until the pool takes it over: an error half way leaks nothing, since
 * __gc frees what is held. */
typedef struct lfb_executor {
  void *pool; /* NULL: not made yet, or collected */
  const lfb_exec_ops *ops;
  int owner;  /* this object shuts the pool down when collected */
  void *held;
  void (*held_free)(void *);
  uintptr_t tag; /* LFB_TAG; 0 once collected (the memory may be reused) */
} lfb_executor;
_Static_assert(offsetof(lfb_executor, tag) + sizeof(uintptr_t) ==
                   sizeof(lfb_executor),
               "the tag is an executor's last word");
#define LFB_THREADPOOL "ThreadPoolExecutor"
#define LFB_PROCPOOL "ProcessPoolExecutor" /* never crosses states */

/* Pushes a new, empty executor object of kind ops (owner). */
lfb_executor *lfb_exec_new(lua_State *L, const lfb_exec_ops *ops);
/* Frees what the object holds now, and holds p (freed by fr) instead. */
void lfb_exec_hold(lfb_executor *ex, void *p, void (*fr)(void *));
/* Makes the class of kind ops (metatable, methods) and registers its
 * constructors in the module table on top. */
void lfb_exec_open(lua_State *L, const lfb_exec_ops *ops,
                   const luaL_Reg *ctors);
/* Raises the error for a submit that pool refused with rc. */
int lfb_exec_refused(lua_State *L, const lfb_exec_ops *ops, void *pool,
                     int rc);

/* Pushes the state's object for a runtime future (a cached proxy, or a new
 * one that takes a reference of its own). */
void lfb_future_push(lua_State *L, lf_future *f);
lfb_future *lfb_future_test(lua_State *L, int idx);
void lfb_executor_push(lua_State *L, lf_pool *p);
/* Registers the object at idx as the state's proxy for ptr. */
void lfb_proxy_remember(lua_State *L, const void *ptr, int idx);

/* Queue handles (queue.c): the runtime queue of a Queue object at idx (or
 * NULL), and the state's object for a runtime queue (cached proxy, or a
 * new one that takes a reference of its own). */
#define LFB_QUEUE "Queue"
lf_queue *lfb_queue_test(lua_State *L, int idx);
void lfb_queue_push(lua_State *L, lf_queue *q);
/* Shared read-only values (shared.c). */
#define LFB_SHARED "Shared"
/* Set by a process worker (procworker.c): the bytes of Shared `id` for the
 * task it runs: NULL with *p (the caller's), else why not (static text). */
extern const char *(*lfb_shared_fetch)(uint64_t id, lf_payload **p);
/* The hook a process pool's core asks (lf_proc_hooks.blob): the bytes and
 * id of o when it is a Shared's object, else NULL. */
const lf_payload *lfb_shared_blob(void *ud, lf_obj *o, uint64_t *id);
/* The task payload this thread's state runs now, or NULL (worker.c):
 * what it references stays held until the task returns. */
extern _Thread_local const lf_payload *lfb_running_task
    __attribute__((tls_model("initial-exec"))); /* as lf__self */

void lfb_open_future(lua_State *L);
void lfb_open_threadpool(lua_State *L);
void lfb_open_processpool(lua_State *L);
void lfb_open_queue(lua_State *L);
void lfb_open_shared(lua_State *L);
void lfb_open_wait(lua_State *L);
void lfb_open_map(lua_State *L);
void lfb_open_mpi(lua_State *L); /* mpi.c: an opener in the registry */

/* Runs the done callbacks posted to this state; returns how many ran. */
int lfb_poll(lua_State *L, lfb_ctx *ctx);

/* Blocks until `f` is done or `timeout` passes (timeout < 0: no limit),
 * running this state's callbacks meanwhile: 0, LF_ETIMEDOUT, LF_EDEADLK
 * (message in why), LF_EINTR (interrupted) or LF_ENOMEM (no waiter could
 * be made); it never raises. */
int lfb_await(lua_State *L, lfb_ctx *ctx, lf_future *f, double timeout,
              char *why, size_t whylen);

/* Argument helpers (executor.c), shared by the pool kinds, map and wait. */
void lfb_check_options(lua_State *L, int idx, const char *const known[]);
/* The string option `name` of the options table at arg, on top of the
 * stack (lua_getfield'ed by the caller): raises unless it is a string
 * without a zero byte inside (which C would cut short). */
const char *lfb_optstring(lua_State *L, int arg, const char *name);
/* An integer, or a float with an exact integer value (0 if not), and the
 * same for argument `arg`, raising as lauxlib does (`what` expected). */
int lfb_getint(lua_State *L, int idx, lua_Integer *v);
void lfb_checkint(lua_State *L, int arg, lua_Integer *v, const char *what);
/* The part of a constructor's arguments (opts | max_workers) every kind
 * shares, read after the kind checked its table's option names: *max
 * (the kind's default on entry) from the number or opts.max_workers, then
 * pushes opts.initializer and opts.initargs (two nils without a table). */
void lfb_exec_args(lua_State *L, lua_Integer *max, lua_Integer limit);
/* The initializer at fn and its initargs at fn + 1, checked and encoded
 * (raises on misuse or TransferError); NULL when there is none. */
lf_payload *lfb_encode_init(lua_State *L, int fn, int handles_ok);
/* Pushes package.path and package.cpath ("" for one that is nil), which
 * every worker state gets; raises when one is not a string (as require
 * does). */
void lfb_push_paths(lua_State *L);
extern int lfb_default_max_workers;

/* What progress (progress.c) watches: fn(ud, f, weight) for each future
 * still held by the map iterator (weight: its calls) or the as_completed
 * iterator at idx; returns the calls or futures in all (*done: those
 * already consumed), or -1 when idx is not such an iterator. */
typedef void (*lfb_track_fn)(void *ud, lf_future *f, size_t weight);
long lfb_map_track(lua_State *L, int idx, lfb_track_fn fn, void *ud,
                   long *done);
long lfb_as_completed_track(lua_State *L, int idx, lfb_track_fn fn, void *ud,
                            long *done);
/* futures.progress(it, opts) with it at 1, opts at 2 (progress.c). */
int lfb_progress(lua_State *L);
void lfb_open_progress(lua_State *L);

/* ex:map for an executor of kind ops over pool (map.c); the caller checked
 * the executor at argument 1. */
int lfb_map_on(lua_State *L, const lfb_exec_ops *ops, void *pool);

/* A process worker's life (procworker.c): the main of
 * bin/luafutures-worker and of a forked worker. Returns the process's exit
 * status. */
int lfb_proc_worker(int qfd, int cfd);

/* ---- tracing (trace.c) ---------------------------------------------------- */

/* Nonzero while a trace is on; the traced paths test it before anything.
 * -DLFB_NOTRACE compiles the trace code out (bench/trace.sh compares). */
#ifdef LFB_NOTRACE
#define lfb_tracing 0
#else
extern _Atomic int lfb_tracing_on; /* read by every state's thread */
#define lfb_tracing atomic_load_explicit(&lfb_tracing_on, memory_order_relaxed)
#endif
/* lf_now() when ctx's state is traced, else -1: the t0 of the two below. */
double lfb_trace_now(lfb_ctx *ctx);
/* After a submit of the function at 2 that returned f (pool of kind ops). */
void lfb_trace_submit(lua_State *L, lfb_ctx *ctx, lf_future *f,
                      const lfb_exec_ops *ops, void *pool, double t0);
/* After a blocking wait of the traced state ("result", "wait", ...). */
void lfb_trace_wait(lua_State *L, lfb_ctx *ctx, const char *what, double t0);
/* Registers futures.trace (module table on top) and, in a state that is
 * not a worker's, starts the trace LUAFUTURES_TRACE names. */
void lfb_open_trace(lua_State *L, int worker);
/* The path of `luafutures --trace`, before the state opens the module. */
void lfb_trace_request(const char *path);
/* Set in a worker process before its state is built, and on a thread
 * while it builds a worker state (any kind of pool). */
extern int lfb_worker_process;
extern _Thread_local int lfb_worker_building;

/* The optional timeout argument at idx: -1 when absent; misuse raises. */
double lfb_opt_timeout(lua_State *L, int idx, const char *fname);

/* ---- the host's side (hooks.c, embed.c) ----------------------------------- */

/* Adds package.preload entries for the registered host modules (L has
 * the package library); may raise for memory. */
void lfb_preload_host_modules(lua_State *L);
void lfb_hooks_get(luafutures_hooks *out); /* a copy of the current hooks */
/* Reports what cannot be raised: the host's report hook, else stderr
 * ("luafutures: " and a newline added). Any thread, no lock held. */
void lfb_report(const char *fmt, ...);
/* A new state with the allocator of h (luaL_newstate's without one). */
lua_State *lfb_new_state(const luafutures_hooks *h);

/* Interrupts: a slot for the state's main thread, taken when its context
 * is made and given back when it is collected. */
lfb_slot *lfb_slot_take(lua_State *L);
void lfb_slot_give(lfb_slot *s);
/* The flag waits of this state watch (NULL: none). */
const _Atomic int *lfb_stop_flag(lfb_ctx *ctx);
/* Raises "interrupted!" if the state was interrupted (consuming it). */
void lfb_check_interrupt(lua_State *L, lfb_ctx *ctx);
/* Raises "interrupted!", consuming the request: for a wait that returned
 * LF_EINTR. */
int lfb_raise_interrupt(lua_State *L, lfb_ctx *ctx);
/* A host's interrupt hook (bin/luafutures: lua.c's) that raising from a
 * wait removes, so that one SIGINT raises once. */
extern lua_Hook lfb_interrupt_hook;
/* Called (when set) after a wait raised an interrupt: bin/luafutures
 * re-arms its SIGINT handler there. */
extern void (*lfb_interrupt_rearm)(void);
/* Forgets an interrupt request of L's state (the host raised it itself). */
void lfb_interrupt_clear(lua_State *L);
/* Blocks until `seconds` pass, running callbacks; LF_EINTR when
 * interrupted (futures.sleep). */
int lfb_pause(lua_State *L, lfb_ctx *ctx, double seconds);
/* Shuts pool down and waits for it in a way an interrupt can cut short
 * (LF_EINTR; the pool goes on stopping), or with `timeout` (LF_ETIMEDOUT;
 * < 0: none); 0, or LF_ESELF from one of the pool's own workers. */
int lfb_shutdown_wait(lua_State *L, lfb_ctx *ctx, const lfb_exec_ops *ops,
                      void *pool, int cancel, double timeout);
/* Remembers the executor object on top as one its state created (for
 * luafutures_shutdown_all). */
void lfb_exec_remember(lua_State *L);


#endif
