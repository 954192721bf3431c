/*
 * lf.h -- the luafutures runtime: futures, waiters, inboxes and thread
 * pools (the process pool is lf_proc.h).
 *
 * Pure C11 + pthreads; no Lua anywhere below this header. The runtime moves
 * opaque byte payloads between threads and calls the host's hooks; the Lua
 * bindings are one such host. Every function returns 0 or a negative LF_E*
 * code unless its comment says otherwise. Objects are reference counted;
 * who owns what is written beside each prototype.
 */
#ifndef LF_H
#define LF_H

#include <stddef.h>
#include <stdint.h>

/* Error codes: one table, see lf_strerror() and lf_err_name(). */
#define LF_ERRORS(X)                                                     \
  X(ENOMEM, -1, "out of memory")                                         \
  X(ETIMEDOUT, -2, "timed out")                                          \
  X(ECANCELLED, -3, "future was cancelled")                              \
  X(EINVALSTATE, -4, "invalid state")                                    \
  X(ESHUTDOWN, -5, "cannot schedule new futures after shutdown")         \
  X(EBROKEN, -6, "a thread initializer failed, the pool is not usable anymore") \
  X(EDEADLK, -7, "deadlock")                                             \
  X(ETHREAD, -8, "cannot start thread")                                  \
  X(EKICKED, -9, "interrupted by a posted callback")                     \
  X(ESELF, -10, "a worker cannot join its own pool")                    \
  X(ESPAWN, -11, "cannot start a worker process")                       \
  X(EEMPTY, -12, "queue is empty")                                       \
  X(EFULL, -13, "queue is full")                                         \
  X(EQSHUTDOWN, -14, "queue is shut down")                                \
  X(EINTR, -15, "interrupted!")

enum {
#define LF__ENUM(name, code, text) LF_##name = code,
  LF_ERRORS(LF__ENUM)
#undef LF__ENUM
};

const char *lf_strerror(int err);
const char *lf_err_name(int err);

/* ---- reference-counted objects ---------------------------------------- */

/* Every shareable runtime object starts with this header, so a payload can
 * hold references to objects of any kind and drop them when freed. */
typedef struct lf_obj lf_obj;
struct lf_obj {
  _Atomic int refs;
  void (*destroy)(lf_obj *o); /* called when refs drops to zero */
};
void lf_obj_ref(lf_obj *o);
void lf_obj_unref(lf_obj *o); /* NULL is ignored */

/* ---- payloads ----------------------------------------------------------- */

/* An immutable byte string plus the objects it references. One allocation:
 * an 8-byte header, the bytes, then the object pointers (lf_payload_objs).
 * The payload owns one reference to each object. */
typedef struct lf_payload {
  uint32_t len;
  uint16_t nobjs;
  uint16_t flags; /* the low 15 bits are free for the host's use */
  char data[];
} lf_payload;
#define LF_PAYLOAD_HOSTFLAGS 0x7fffu

#define LF__ALIGN(n) (((n) + sizeof(void *) - 1) & ~(sizeof(void *) - 1))
static inline lf_obj **lf_payload_objs(const lf_payload *p) {
  return (lf_obj **)((char *)p + LF__ALIGN(sizeof(lf_payload) + p->len));
}

/* Copies `len` bytes and takes over one reference to each of `objs` (the
 * caller's references move into the payload). NULL when out of memory; then
 * the caller still owns its references. Only the host's bits of `flags`
 * are kept. */
lf_payload *lf_payload_new(const void *data, size_t len, lf_obj *const *objs,
                           uint32_t nobjs, uint32_t flags);
/* NULL too when len >= 4 GiB or nobjs >= 65536. */
void lf_payload_free(lf_payload *p); /* NULL and lf_payload_oom() ignored */
/* A big payload without a copy: `block`, from malloc, holds LF_PAYLOAD_HEAD
 * spare bytes and then the `len` bytes; the payload takes it over, grown
 * where the object pointers do not fit after the bytes. NULL as
 * lf_payload_new(), and then the block is still the caller's. */
#define LF_PAYLOAD_HEAD sizeof(lf_payload)
lf_payload *lf_payload_adopt(void *block, size_t len, lf_obj *const *objs,
                             uint32_t nobjs, uint32_t flags);
/* Big blocks, of LF_BIG_MIN bytes or more: lf_big_take() gives one of at
 * least n usable bytes (*cap: how many), from malloc; NULL when out of
 * memory. lf_big_give() takes back one that malloc gave, or frees it. A
 * few given back are kept for the next take, their pages still mapped: a
 * fresh block costs a page fault every 4 KiB it is written, which is most
 * of the time of a big payload's round trip. Payloads of that size come
 * from them and go back to them (lf_payload_free). */
#define LF_BIG_MIN ((size_t)1 << 20)
void *lf_big_take(size_t n, size_t *cap);
void lf_big_give(void *block);

/* The outcome of a task that could not run or report for want of memory: a
 * static, empty payload that is never freed, so it can always be had. A
 * future finished with a NULL result gets it (as failed); a host decodes
 * it as its own out-of-memory error (the Lua module: a task that raised
 * "not enough memory"). Hosts that finish futures themselves, and the
 * process pool, use it where their result cannot be allocated. */
lf_payload *lf_payload_oom(void);

/* ---- clock -------------------------------------------------------------- */

double lf_now(void);          /* monotonic seconds */
void lf_sleep(double seconds); /* seconds >= 0 */
int lf_cpu_count(void);        /* online CPUs, at least 1 */

/* ---- futures ------------------------------------------------------------ */

typedef struct lf_future lf_future;
typedef struct lf_pool lf_pool;
typedef struct lf_waiter lf_waiter;

enum lf_state { LF_PENDING, LF_RUNNING, LF_CANCELLED, LF_FINISHED };

/* A new pending future with one reference, owned by the caller. */
lf_future *lf_future_new(void);

/* A new pending future that holds its task, as lf_payload_new(); NULL when
 * out of memory (then the caller still owns its references). It carries a
 * little room of its own (LF_FUTURE_ROOM bytes, object pointers included):
 * a task that fits is stored there, and so is a result that fits once the
 * task is freed, so a small task costs one allocation, not three. */
#define LF_FUTURE_ROOM 48 /* the cell stays 120 bytes: M1 */
lf_future *lf_future_new_task(const void *data, size_t len,
                              lf_obj *const *objs, uint32_t nobjs,
                              uint32_t flags);
/* A payload for f's result, as lf_payload_new(): in f's room when it fits
 * and the room is free (f's task already freed), else allocated. Only the
 * thread that runs f may call it, between taking and finishing it. */
lf_payload *lf_future_payload_new(lf_future *f, const void *data, size_t len,
                                  lf_obj *const *objs, uint32_t nobjs,
                                  uint32_t flags);
/* A new pending future that takes over `task` (a payload of its own, from
 * lf_payload_new() or lf_payload_adopt()); NULL when out of memory, and
 * then the payload is still the caller's. */
lf_future *lf_future_new_with(lf_payload *task);
#define lf_future_obj(f) ((lf_obj *)(f))
void lf_future_ref(lf_future *f);
void lf_future_unref(lf_future *f);

int lf_future_state(const lf_future *f);
int lf_future_done(const lf_future *f); /* cancelled or finished */

/* PENDING -> RUNNING. LF_ECANCELLED when it was cancelled (then the caller
 * must not run it), LF_EINVALSTATE when it is already running or done. */
int lf_future_set_running(lf_future *f);

/* PENDING -> CANCELLED: returns 1 when the future is (now or already)
 * cancelled, 0 when it is running or finished. Its task payload is freed. */
int lf_future_cancel(lf_future *f);

/* RUNNING or PENDING -> FINISHED. Takes ownership of `result` whatever it
 * returns; LF_EINVALSTATE when the future was already done. `failed` says
 * whether the result is an error. A NULL result (out of memory) finishes
 * it failed with lf_payload_oom(): a finished future always has a result. */
int lf_future_finish(lf_future *f, lf_payload *result, int failed);

/* After done: the result payload (owned by the future, valid while the
 * caller holds a reference) and whether it is an error. NULL when cancelled
 * (or not done), never when finished. */
const lf_payload *lf_future_result(const lf_future *f, int *failed);

/* Replaces the payload of a future not yet submitted (its task); owns it. */
void lf_future_set_task(lf_future *f, lf_payload *task);

/* Done hooks: called once, on whichever thread completes or cancels the
 * future, under the future's lock and before any waiter wakes, so a hook
 * must be quick and must not touch futures (posting to an inbox is what
 * they are for). A future dropped while pending calls them with f == NULL,
 * outside any lock. If the future is already done the hook is not added
 * and 1 is returned: the caller handles it itself. */
typedef void (*lf_hook_fn)(void *arg, lf_future *f);
int lf_future_add_hook(lf_future *f, lf_hook_fn fn, void *arg);

/* How futures ended, counted by the runtime as each one ends (a future
 * dropped unfinished counts as cancelled): what a pool's stats need, with
 * no hook to allocate per future. */
typedef struct lf_tally {
  _Atomic long done, failed, cancelled;
} lf_tally;
/* Counts f in t when it ends (NULL: not at all); called before f is
 * shared with another thread (a submit), no lock; t must outlive f. */
void lf_future_tally(lf_future *f, lf_tally *t);

/* One bit a host keeps on a future (the binding: set_result cached an
 * outcome): set with lf_future_set_mark, read with lf_future_mark. */
void lf_future_set_mark(lf_future *f);
int lf_future_mark(lf_future *f);

/* Spins a few microseconds for f to be done, before a caller sleeps on it
 * (a sleep and a wake-up cost far more); returns whether it is done. */
int lf_future_wait_spin(lf_future *f);

/* Returns once a completion of f under way on another thread is over (its
 * hooks have run). For readers that saw lf_future_done() without a lock. */
void lf_future_sync(lf_future *f);

/* ---- waiters ------------------------------------------------------------ */

/* A waiter collects completions of the futures it watches, in completion
 * order, and can be kicked awake by posted callbacks (see lf_inbox). */
lf_waiter *lf_waiter_new(void);
void lf_waiter_free(lf_waiter *w); /* unwatches everything first */

/* Watches `f` (takes a reference). If `f` is already done it is recorded as
 * completed at once. */
int lf_waiter_watch(lf_waiter *w, lf_future *f);

/* Pops the oldest recorded completion, or NULL. The caller gets the
 * waiter's reference to it. */
lf_future *lf_waiter_pop(lf_waiter *w);
size_t lf_waiter_ncompleted(lf_waiter *w);

/* Blocks until a completion is recorded, the waiter is kicked, or `timeout`
 * seconds pass (timeout < 0: no limit). 0 when a completion is ready,
 * LF_EKICKED, LF_ETIMEDOUT, or LF_EDEADLK (runtime/deadlock.c) with a
 * message in `why`. `deadlock_target` is the future whose wait is checked
 * for a deadlock, or NULL. */
int lf_waiter_wait(lf_waiter *w, double timeout, lf_future *deadlock_target,
                   char *why, size_t whylen);
/* The same for a wait that ends when all of `targets` are done (`all`), or
 * when any one is: it counts as a deadlock when one of them can never
 * finish, or when none of them can. `targets` stay the caller's. */
int lf_waiter_wait_for(lf_waiter *w, double timeout,
                       lf_future *const *targets, size_t ntargets, int all,
                       char *why, size_t whylen);
void lf_waiter_kick(lf_waiter *w);
/* Makes w's waits return LF_EINTR once *flag is non-zero, seen within 10
 * ms: a signal handler may set it (it cannot signal a condition variable).
 * NULL: no flag. The flag stays the caller's and must outlive the wait. */
void lf_waiter_set_stop(lf_waiter *w, const _Atomic int *flag);

/* How the deadlock messages (`why` above) name a future, in the host's own
 * words: writes the text for f, whose state is `state` (pending or
 * running), into buf as snprintf() does. Process-wide; called under the
 * deadlock check's lock, so it must only format. NULL (the default):
 * "future 0x...". */
typedef int (*lf_describe_fn)(const lf_future *f, int state, char *buf,
                              size_t len);
void lf_set_describe(lf_describe_fn fn);

/* ---- inboxes: completions handed to an owning thread --------------------- */

/* An inbox belongs to one thread (one Lua state): other threads post items
 * to it and the owner drains them. While the owner blocks in a waiter it
 * registers that waiter, and a post kicks it awake. Reference counted. */
typedef struct lf_inbox lf_inbox;
typedef struct lf_item lf_item;
struct lf_item {
  lf_item *next;
  void (*run)(lf_item *it, void *ctx); /* ctx NULL: drop without running */
};
lf_inbox *lf_inbox_new(void);
void lf_inbox_ref(lf_inbox *b);
void lf_inbox_unref(lf_inbox *b);
/* Posts `it`; if the inbox is closed the item is dropped (run with NULL). */
void lf_inbox_post(lf_inbox *b, lf_item *it);
/* How many items wait (read without the lock: exact for the owner, a hint
 * for others). */
int lf_inbox_pending(lf_inbox *b);
/* An eventfd, made on the first call and owned by the inbox, that is
 * readable exactly while items wait; LF_ENOMEM when none can be made. */
int lf_inbox_notify_fd(lf_inbox *b);
/* Takes every posted item, oldest first, as a list. */
lf_item *lf_inbox_take(lf_inbox *b);
/* Sets the waiter a post should kick (NULL: none); returns the previous. */
lf_waiter *lf_inbox_set_waiter(lf_inbox *b, lf_waiter *w);
/* Closes it: pending and later items are dropped. */
void lf_inbox_close(lf_inbox *b);

/* ---- thread pools ------------------------------------------------------- */

/* The host's side of a pool. `init` runs first on each new worker thread
 * and returns that worker's context (NULL: the initializer failed and the
 * pool breaks; lf_pool_nomem(): there was no memory to build the context,
 * so the worker fails each task it takes with lf_payload_oom() and calls
 * `init` again before the next; `fini` is called for real contexts only). `run` executes the task of future
 * `f`: it takes ownership of `task` and returns the result payload with
 * *failed set; the runtime publishes it (NULL, out of memory: the future
 * fails with lf_payload_oom()). Freeing
 * the task before making the result lets lf_future_payload_new() put the
 * result in f's room. `fini` ends a worker.
 * `release` is called once when the pool is destroyed. Hooks run with no
 * runtime lock held. */
typedef struct lf_pool_hooks {
  void *(*init)(void *ud, const char *worker_name);
  lf_payload *(*run)(void *wctx, lf_future *f, lf_payload *task, int *failed);
  void (*fini)(void *wctx);
  void (*release)(void *ud);
  /* The error payload that fails a queued future when the pool breaks
   * (NULL, out of memory: lf_payload_oom()). */
  lf_payload *(*broken)(void *ud);
} lf_pool_hooks;

/* What `init` returns when it ran out of memory (see lf_pool_hooks). */
void *lf_pool_nomem(void);

/* A new pool with one reference owned by the caller. `prefix` is copied;
 * workers are named prefix_0, prefix_1, ... On error *err is set. */
lf_pool *lf_pool_new(size_t max_workers, const char *prefix,
                     const lf_pool_hooks *hooks, void *ud, int *err);
#define lf_pool_obj(p) ((lf_obj *)(p))
void lf_pool_ref(lf_pool *p);
/* Dropping the last reference shuts the pool down as lf_pool_shutdown(p, 1,
 * 1) does: queued futures are cancelled and the workers joined (all but the
 * calling one, if a worker drops it, which is detached). */
void lf_pool_unref(lf_pool *p);

/* Queues `f` (which must be pending and hold its task payload); the pool
 * takes its own reference. LF_ESHUTDOWN, LF_EBROKEN or LF_ETHREAD (no worker
 * could be started and none runs) on failure, the future untouched. */
int lf_pool_submit(lf_pool *p, lf_future *f);

/* Stops accepting work; with `cancel_futures` cancels every queued future
 * before returning; with `wait` joins every worker (after the queue drains).
 * LF_ESELF when `wait` is asked from one of the pool's own workers (the
 * others are still told to stop). Idempotent. */
int lf_pool_shutdown(lf_pool *p, int wait, int cancel_futures);
/* After lf_pool_shutdown(p, 0, ...): a future (the caller's reference)
 * done once every worker has left its loop (its fini, closing its state,
 * is what the join that follows waits for), so that a caller can wait for
 * that as for any future and then join; NULL when
 * the pool is still running, out of memory or another caller holds it
 * (then lf_pool_shutdown(p, 1, 0) waits). */
lf_future *lf_pool_stopped(lf_pool *p);

enum lf_pool_status { LF_POOL_RUNNING, LF_POOL_SHUTDOWN, LF_POOL_BROKEN };
int lf_pool_status(lf_pool *p);
size_t lf_pool_nworkers(lf_pool *p);
size_t lf_pool_max_workers(lf_pool *p);
const char *lf_pool_prefix(lf_pool *p);
void *lf_pool_ud(lf_pool *p); /* the hooks' ud given to lf_pool_new */

/* The pool whose worker runs on this thread, or NULL. */
lf_pool *lf_current_pool(void);

/* Live pools and worker threads in this process (for tests' teardown). */
long lf_live_pools(void);
long lf_live_threads(void);

#endif
