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

#include "../runtime/lf.h"
#include "../runtime/lf_queue.h"

#define LFB_MODNAME "concurrent.futures"

typedef struct lfb_ctx {
  lf_inbox *inbox; /* NULL once the state is closing */
  char name[64];   /* "MainThread" or the worker's name */
  int nloaded;     /* entries in this state's function cache */
  int names_count; /* package.loaded's fingerprint when names were indexed */
} lfb_ctx;

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
/* Creates this state's context (or finds it) and leaves it on the stack. */
lfb_ctx *lfb_ctx_push(lua_State *L);
/* Registers `l` with the context as upvalue (table on top). */
void lfb_setfuncs(lua_State *L, const luaL_Reg *l);
/* Makes the metatable `name` of a class: `meta`'s metamethods and an
 * __index table of `methods`, all with the context as upvalue. */
void lfb_newclass(lua_State *L, const char *name, const luaL_Reg *meta,
                  const luaL_Reg *methods);

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

/* ---- classes -------------------------------------------------------------- */

typedef struct lfb_future {
  lf_future *f;
} lfb_future;
#define LFB_FUTURE "Future"

typedef struct lfb_executor {
  lf_pool *pool;
  int owner; /* this object shuts the pool down when collected */
} lfb_executor;
#define LFB_THREADPOOL "ThreadPoolExecutor"
#define LFB_PROCPOOL "ProcessPoolExecutor" /* never crosses states */

/* Pushes the state's object for a runtime future (a cached proxy, or a new
 * one that takes a reference of its own). */
void lfb_future_push(lua_State *L, lf_future *f);
lfb_future *lfb_future_check(lua_State *L, int idx);
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
/* The task payload this thread's state runs now, or NULL (executor.c):
 * what it references stays held until the task returns. */
extern _Thread_local const lf_payload *lfb_running_task
    __attribute__((tls_model("initial-exec"))); /* as lf__self */

void lfb_open_future(lua_State *L);
void lfb_open_queue(lua_State *L);
void lfb_open_executor(lua_State *L);
void lfb_open_wait(lua_State *L);
void lfb_open_map(lua_State *L);
void lfb_open_process(lua_State *L);

/* Runs the done callbacks posted to this state; returns how many ran. */
int lfb_poll(lua_State *L, lfb_ctx *ctx);

/* Blocks until `f` is done or `timeout` passes (timeout < 0: no limit),
 * running this state's callbacks meanwhile. Raises TimeoutError or
 * DeadlockError. */
void lfb_wait_one(lua_State *L, lfb_ctx *ctx, lf_future *f, double timeout);
/* The same, returning 0, LF_ETIMEDOUT or LF_EDEADLK (message in why). */
int lfb_await(lua_State *L, lfb_ctx *ctx, lf_future *f, double timeout,
              char *why, size_t whylen);

/* executor.c helpers shared with map.c and wait.c */
lf_pool *lfb_check_pool(lua_State *L);
/* Raises RuntimeError when the state runs its finalizers in lua_close. */
void lfb_check_closing(lua_State *L);
int lfb_submit_error(lua_State *L, int rc);
void lfb_check_options(lua_State *L, int idx, const char *const known[]);
/* An integer, or a float with an exact integer value (0 if not), and the
 * same for argument `arg`, raising as lauxlib does (`what` expected). */
int lfb_getint(lua_State *L, int idx, lua_Integer *v);
void lfb_checkint(lua_State *L, int arg, lua_Integer *v, const char *what);
/* submit's common part: encodes the function at 2 and its arguments into a
 * new pending future holding its task (raises TransferError), for a pool
 * in this process (handles_ok) or another. */
lf_future *lfb_task_future(lua_State *L, int handles_ok);
/* The initializer at fn and its initargs at fn + 1, checked and encoded
 * (raises on misuse or TransferError); NULL when there is none. */
lf_payload *lfb_encode_init(lua_State *L, int fn, int handles_ok);
/* Pushes package.path and package.cpath ("" for one that is nil), which
 * every worker state gets; raises, after undo(ud), when one is not a
 * string (as require does). */
void lfb_push_paths(lua_State *L, void (*undo)(void *), void *ud);
/* Pushes a new Future object that takes over the caller's reference. */
void lfb_future_push_new(lua_State *L, lf_future *f);
/* shutdown's arguments: (wait, cancel_futures) or {wait=, cancel_futures=}. */
void lfb_shutdown_args(lua_State *L, int *wait, int *cancel);
extern int lfb_default_max_workers;

/* The worker side (executor.c), shared by thread and process workers.
 * lfb_run_task runs a task payload (taking ownership of it) in L and
 * returns the result payload (f's, if f is not NULL), or NULL when out of
 * memory; `handles_ok` 0
 * encodes results for another process. lfb_worker_setup prepares a fresh
 * state (libraries, paths, this module, then the initializer payload, which
 * stays the caller's) and returns 0, or -1 when the initializer failed
 * (reported on stderr, naming `label` if given, else `name`). */
lf_payload *lfb_run_task(lua_State *L, lf_future *f, lf_payload *task,
                         int *failed, int handles_ok);
int lfb_worker_setup(lua_State *L, const char *name, const char *label,
                     const char *path, const char *cpath,
                     const lf_payload *init);

/* How map submits a chunk (map.c): the pool behind the executor at
 * argument 1, its submit, the error for a refused one, and whether tasks
 * may hold handles (0 for another process). */
typedef struct lfb_submitter {
  void *pool;
  int (*submit)(void *pool, lf_future *f);
  int (*error)(lua_State *L, void *pool, int rc);
  int handles_ok;
} lfb_submitter;
int lfb_map_on(lua_State *L, const lfb_submitter *s);

/* A process worker's life (process.c): the main of bin/luafutures-worker
 * and of a forked worker. Returns the process's exit status. */
int lfb_proc_worker(int qfd, int cfd);

/* The optional timeout argument at idx: -1 when absent; misuse raises. */
double lfb_opt_timeout(lua_State *L, int idx, const char *fname);

int luaopen_concurrent_futures(lua_State *L);

#endif
