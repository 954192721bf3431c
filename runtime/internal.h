/*
 * internal.h -- what the runtime's own files share: sync wrappers and the
 * bodies of the structs that lf.h keeps opaque. Never included by hosts.
 *
 * Every mutex of runtime/, and the order they nest in: a thread holding one
 * may take only those below it, never one above (the same row is never
 * taken twice). No runtime lock is held while a pool hook (init, run, fini,
 * release, broken, the process pool's) runs; done hooks (lf_future_add_hook)
 * run under a stripe and may only post to an inbox.
 *
 *   lock                       file        guards
 *   1  pool join_mu            pool.c      joining a pool's workers
 *      procpool join_mu        proc.c      joining the process pool's manager
 *                                          (the struct: procpool.h)
 *   2  lf__graph_mu            deadlock.c  the workers' recorded waits
 *   3  pool mu                 pool.c      ready queue, workers, status
 *                                          (the incoming stack: no lock)
 *      procpool mu             proc.c      everything of a process pool but
 *                                          the manager's read buffers
 *   4  lf__mpi.mu              mpi_link.c  the MPI link (mpi_link.h) and
 *                                          every MPI transport's state
 *                                          (transport_mpi.c); a leaf
 *   5  future stripe           base.c      a future's fields (lf__stripe)
 *   6  inbox mu                future.c    an inbox's items and its waiter
 *      queue mu                queue.c     a queue's items, its blocked
 *                                          callers' lists and counts
 *   7  waiter mu               future.c    a waiter's completions, kicked
 *   8  slab mu                 slab.c      a slab's chunks; a leaf: fork()
 *                                          takes the futures' slab lock
 *                                          (atfork) under procpool mu
 *
 * Where they nest: join_mu -> mu (join_workers, then pthread_join with
 * join_mu only); graph -> pool mu, graph -> stripe, one at a time (the
 * deadlock check); procpool mu -> stripe -> waiter (a completion
 * under the lock when its list cannot grow, lf_future_start); stripe ->
 * inbox (a done hook posting) -> waiter (the post kicking it); stripe ->
 * waiter (lf__future_complete_locked, lf_waiter_watch). A waiter's thread
 * takes the graph lock and its waiter lock one after the other, never
 * nested. Thread pool mu and procpool mu are never held together. A
 * queue's mu is taken with no other runtime lock held and nests only the
 * waiter lock (kicking a blocked caller); no payload is freed under it.
 * transport_unix.c has no lock of its own: the procpool mu covers it. The
 * MPI transports share the link's lock, lf__mpi.mu: the pool core calls
 * its transport under procpool mu, so it nests there (procpool mu ->
 * lf__mpi.mu) and nowhere else; the MPI thread takes no other lock, and
 * the link calls nothing back with it held. mpipool.c has no lock.
 */
#ifndef LF_INTERNAL_H
#define LF_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "lf.h"

/* Thin wrappers: a failing pthread call is a bug, so abort with its place. */
void lf__die(const char *call, int rc, const char *file, int line);
#define LF__CHECK(call)                                      \
  do {                                                       \
    int lf__rc = (call);                                     \
    if (lf__rc != 0) lf__die(#call, lf__rc, __FILE__, __LINE__); \
  } while (0)
#define lf__lock(m) LF__CHECK(pthread_mutex_lock(m))
#define lf__unlock(m) LF__CHECK(pthread_mutex_unlock(m))
#define lf__signal(c) LF__CHECK(pthread_cond_signal(c))
#define lf__broadcast(c) LF__CHECK(pthread_cond_broadcast(c))
void lf__cond_init(pthread_cond_t *c); /* on CLOCK_MONOTONIC */
void lf__cond_wait(pthread_cond_t *c, pthread_mutex_t *m);
/* Relative timeout in seconds; returns 1 when it timed out. */
int lf__cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, double secs);

/* Every allocation of the runtime goes through these, so that the C tests
 * can count what is live and make the Nth allocation fail (lf__alloc_test:
 * fail_at 0 fails none). Off, they cost one well-predicted branch. */
void *lf__malloc(size_t n);
void *lf__calloc(size_t count, size_t n);
void *lf__realloc(void *p, size_t n);
char *lf__strdup(const char *s);
void lf__free(void *p);
/* For memory got another way (the slab): whether to refuse it, and its
 * count (delta +1 when got, -1 when given back). */
int lf__alloc_refused(void);
void lf__alloc_count(const void *p, int delta);
void lf__alloc_test(long fail_at);
long lf__alloc_live(void);
int lf__alloc_reached(void); /* the allocation set to fail was asked for */

/* Spins (politely) until f is done or `secs` pass; returns whether it is.
 * Used before sleeping, where a wake-up costs more. */
#define LF__SPIN_SECONDS 50e-6
/* One polite step of a spin: tells the core that this thread busy-waits. */
static inline void lf__relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}
int lf__spin_until_done(lf_future *f, double secs);

/* PENDING -> RUNNING and take the task in one step; as set_running. */
int lf_future_start(lf_future *f, lf_payload **task);

/* Futures have no mutex of their own: a fixed table of stripes keeps them
 * small (100,000 pending futures must fit in a few MiB). */
pthread_mutex_t *lf__stripe(const void *f);
/* In a forked child only: every stripe made free again, whatever the
 * parent's other threads (gone in the child) held at fork(). */
void lf__stripes_reset(void);

typedef struct lf_wnode lf_wnode;
typedef struct lf_hook lf_hook;
typedef struct lf_worker lf_worker;

struct lf_future {
  lf_obj obj;
  _Atomic int state;        /* enum lf_state; written under the stripe */
  unsigned char failed;     /* finished with an error */
  unsigned char bound;      /* submitted to a pool (not a bare Future()) */
  unsigned char room_used;  /* roombuf holds a payload */
  _Atomic unsigned char bits; /* LF__MARK, LF__SETTLED */
  lf_payload *payload;      /* pending: the task; finished: the result */
  lf_wnode *waiters;        /* waiters watching it */
  lf_hook *hooks;           /* done hooks, in order added */
  lf_future *next;          /* pool queue link */
  union {
    lf_pool *pool;          /* pending: the pool whose queue holds it */
    lf_worker *runner;      /* running: the worker running it */
  } at;
  lf_tally *tally;          /* counts how it ends (lf_future_tally) */
  _Alignas(8) char roombuf[]; /* LF_FUTURE_ROOM bytes: a 120-byte cell */
};

/* A future's bits: the host's mark (lf_future_mark), and settled: its
 * completion has posted every hook and told every waiter, so
 * lf_future_sync need not take the stripe. */
#define LF__MARK 1u
#define LF__SETTLED 2u

/* A payload in a future's room is marked by the one runtime bit of its
 * flags; freeing it hands the room back instead of calling free(). */
#define LF__PAYLOAD_INROOM 0x8000u
size_t lf__payload_size(size_t len, uint32_t nobjs);
void lf__payload_fill(lf_payload *p, const void *data, size_t len,
                      lf_obj *const *objs, uint32_t nobjs, uint32_t flags);
/* A payload with room for len bytes and nobjs objects, its bytes still to
 * be written (len set, no objects, no flags); NULL as lf_payload_new. */
lf_payload *lf__payload_blank(size_t len, uint32_t nobjs);

/* Slabs of equal cells (slab.c): thread-safe; NULL when out of memory. */
typedef struct lf__slab lf__slab;
lf__slab *lf__slab_new(size_t cell_size);
void lf__slab_free(lf__slab *s); /* unmaps every chunk, live cells too */
void *lf__slab_take(lf__slab *s);
void lf__slab_give(lf__slab *s, void *cell); /* NULL is ignored */
size_t lf__slab_chunks(lf__slab *s);
/* The cells futures live in: LF__CELL_SIZE bytes each. */
#define LF__CELL_SIZE (sizeof(struct lf_future) + LF_FUTURE_ROOM)
void *lf__cell_take(void);
void lf__cell_give(void *cell);
/* Sets the slab up (and its fork handlers) now: before a pool forks, so
 * that no fork can catch its first use half done. */
void lf__cells_ready(void);

/* Completes `f` (already moved to a done state under its stripe, which the
 * caller passes locked): notifies waiters, unlocks, runs hooks. */
void lf__future_complete_locked(lf_future *f, pthread_mutex_t *stripe);

/* Deadlock graph (deadlock.c). */
struct lf_worker {
  lf_pool *pool;
  pthread_t thread;
  char *name;
  /* The futures it blocks on with no timeout (none: nwaiting 0), and
   * whether its wait needs all of them (else any one ends it). */
  lf_future *const *waiting_on;
  size_t nwaiting;
  int waiting_all;
  int started;
};
extern pthread_mutex_t lf__graph_mu;
/* initial-exec: a plain %fs access, not __tls_get_addr, whose ThreadSanitizer
 * interceptor (GCC 12) can misread a dynamically allocated TLS block of a
 * dlopen'ed module and abort; glibc keeps static TLS room for such modules. */
extern _Thread_local lf_worker *lf__self
    __attribute__((tls_model("initial-exec")));
/* With the graph lock held and self's wait recorded: would it never end?
 * Writes the reason into why. */
int lf__doomed(lf_worker *self, char *why, size_t whylen);

/* Pool internals the deadlock check reads (under the graph lock). */
int lf__pool_can_run_more(lf_pool *p);
size_t lf__pool_workers(lf_pool *p, lf_worker ***out);

#endif
