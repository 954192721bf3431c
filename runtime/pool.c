/*
 * pool.c -- the thread pool: a FIFO of pending futures and lazily started
 * workers that run them through the host's hooks.
 *
 * Once the pool has all its workers a submit takes no lock: it pushes on the
 * incoming stack (one compare-and-swap), the only thing it writes; `mu`
 * guards the ready queue, the worker list and the status. A worker whose
 * ready queue is empty takes the whole stack at once (an exchange, inside
 * mu) and appends it reversed, so order is kept, a submit never waits for
 * a worker, and the stack's cache line moves to a worker once a batch,
 * not once a task. Whoever stops the pool (under mu) swaps the stack for
 * CLOSED and queues what it held: a submit whose swap finds CLOSED is
 * refused, so no future slips in after shutdown took the queues. A worker
 * sleeping on `cv` is counted in `nsleeping`; it re-reads the stack after
 * counting itself and a submit reads `nsleeping` after its push (both
 * sequentially consistent), so no wake-up is lost.
 *
 * A worker takes a future from the queue, runs it with no lock held, marks
 * itself free *before* publishing the result (so a submit that follows a
 * result() finds it free and starts no second worker), then publishes.
 * `nfree` counts workers not running a task; until the pool has all its
 * workers a submit queues under mu, and starts a worker when the queue
 * then holds more futures than there are free workers. `nfree` is atomic so
 * that a worker can count itself free without the lock. A worker whose
 * queue is empty spins a few microseconds before it sleeps: a round trip
 * then costs no futex calls on either side.
 *
 * A worker whose context could not be built for want of memory (init gave
 * lf_pool_nomem()) stays in the loop: before each task it takes it tries
 * again, and while it cannot it fails the task with lf_payload_oom(); only
 * an initializer failure (init gave NULL) breaks the pool.
 *
 * Joining is serialised by `join_mu`, taken without the pool lock. Workers
 * hold no reference to the pool: its owner joins them before dropping its
 * reference, and destroy joins any it was not asked to.
 */

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The fields fall in three groups, each kept off the others' cache lines
 * (the pool is only 16-byte aligned, so a 64-byte gap is what guarantees
 * it): what every submit reads and almost nothing writes, what submits
 * write, and what workers write on every task. A submit in the steady
 * state then touches one line that moves (the incoming stack's). */
struct lf_pool {
  /* Read by every submit; written on a status change, a worker start and
   * a sleep. */
  lf_obj obj;
  _Atomic int status;
  _Atomic size_t nworkers_a; /* nworkers, for submit's lock-free check */
  size_t max;
  _Atomic size_t nsleeping;
  char *prefix;
  lf_pool_hooks hooks;
  void *ud;
  char pad_read[64];
  /* Written by every submit; the workers take the stack in one exchange. */
  _Atomic(lf_future *) incoming; /* newest first; CLOSED once stopped */
  char pad_submit[64];
  /* Written by the workers. */
  _Atomic size_t nfree;  /* workers not running a task */
  _Atomic size_t nready; /* futures in the ready queue (written under mu) */
  pthread_mutex_t mu;
  pthread_cond_t cv; /* workers sleep here waiting for futures */
  pthread_mutex_t join_mu;
  lf_future *qhead, *qtail; /* ready queue, under mu */
  lf_worker **workers;
  size_t nworkers, cap, nexited;
  size_t nstarting; /* workers started, not yet past init (under mu) */
  size_t nalive;    /* workers started, not yet past fini (under mu) */
  lf_future *stopped; /* lf_pool_stopped's, done when nalive drops to 0 */
};

static _Atomic long live_pools, live_threads;
long lf_live_pools(void) { return atomic_load(&live_pools); }
long lf_live_threads(void) { return atomic_load(&live_threads); }

__attribute__((tls_model("initial-exec"))) _Thread_local lf_worker *lf__self;

lf_pool *lf_current_pool(void) { return lf__self ? lf__self->pool : NULL; }

static void pool_destroy(lf_obj *o);

lf_pool *lf_pool_new(size_t max_workers, const char *prefix,
                     const lf_pool_hooks *hooks, void *ud, int *err) {
  lf_pool *p = lf__calloc(1, sizeof *p);
  char *pre = lf__strdup(prefix ? prefix : "");
  if (p == NULL || pre == NULL) {
    lf__free(p);
    lf__free(pre);
    *err = LF_ENOMEM;
    return NULL;
  }
  atomic_init(&p->obj.refs, 1);
  p->obj.destroy = pool_destroy;
  LF__CHECK(pthread_mutex_init(&p->mu, NULL));
  LF__CHECK(pthread_mutex_init(&p->join_mu, NULL));
  lf__cond_init(&p->cv);
  p->max = max_workers ? max_workers : 1;
  p->prefix = pre;
  p->hooks = *hooks;
  p->ud = ud;
  p->status = LF_POOL_RUNNING;
  atomic_fetch_add(&live_pools, 1);
  *err = 0;
  return p;
}

void lf_pool_ref(lf_pool *p) { lf_obj_ref(&p->obj); }
void lf_pool_unref(lf_pool *p) {
  if (p) lf_obj_unref(&p->obj);
}

/* What the incoming stack holds once the pool takes no more work. Only a
 * holder of mu puts it there, and nothing takes it away. */
static char closed_mark;
#define CLOSED ((lf_future *)(void *)&closed_mark)

/* Appends the list h..t of n futures to the ready queue (mu held). */
static void append_ready_locked(lf_pool *p, lf_future *h, lf_future *t,
                                size_t n) {
  if (p->qtail)
    p->qtail->next = h;
  else
    p->qhead = h;
  p->qtail = t;
  p->nready += n;
}

/* Swaps the incoming stack for `with` and moves what it held to the end of
 * the ready queue, oldest first (mu held). */
static void take_incoming_as(lf_pool *p, lf_future *with) {
  /* acq_rel: a submit that finds CLOSED then reads the new status */
  lf_future *f = atomic_exchange_explicit(&p->incoming, with,
                                          memory_order_acq_rel);
  if (f == CLOSED) return; /* closed before: a broken pool after a shutdown */
  lf_future *h = NULL, *t = f;
  size_t n = 0;
  for (; f; n++) { /* reverse: the stack is newest first */
    lf_future *next = f->next;
    f->next = h;
    h = f;
    f = next;
  }
  if (h != NULL) append_ready_locked(p, h, t, n);
}

static void take_incoming_locked(lf_pool *p) {
  lf_future *f = atomic_load_explicit(&p->incoming, memory_order_relaxed);
  if (f != NULL && f != CLOSED) take_incoming_as(p, NULL);
}

/* Whether the incoming stack holds a future (read without mu). */
static int incoming_waits(lf_pool *p) {
  lf_future *f = atomic_load(&p->incoming);
  return f != NULL && f != CLOSED;
}

/* Takes every queued future (mu held); the caller owns their references. */
static lf_future *take_queue_locked(lf_pool *p) {
  take_incoming_locked(p);
  lf_future *q = p->qhead;
  p->qhead = p->qtail = NULL;
  p->nready = 0;
  return q;
}

/* Sets the status (mu held) and closes the incoming stack: a submit that
 * read the old status and pushes after this is refused. */
static void set_status_locked(lf_pool *p, int status) {
  atomic_store(&p->status, status);
  take_incoming_as(p, CLOSED);
}

/* Fails every future of a taken queue with the pool's broken error. */
static void fail_queue(lf_pool *p, lf_future *q) {
  for (lf_future *f = q, *next; f; f = next) {
    next = f->next;
    f->next = NULL;
    lf_future_finish(f, p->hooks.broken(p->ud), 1);
    lf_future_unref(f);
  }
}

/* An initializer failed (mu held, released and taken again): the pool
 * breaks, and its queued futures and `taken` (one a worker took, or NULL)
 * fail with the broken payload. */
static void break_locked(lf_pool *p, lf_future *taken) {
  lf_future *q = NULL;
  if (p->status != LF_POOL_BROKEN) {
    set_status_locked(p, LF_POOL_BROKEN);
    lf__broadcast(&p->cv);
    q = take_queue_locked(p);
  }
  if (taken) {
    taken->next = q;
    q = taken;
  }
  lf__unlock(&p->mu);
  fail_queue(p, q);
  lf__lock(&p->mu);
}

/* Spins a few microseconds for work or a shutdown, yielding the CPU now and
 * then: a spinner must not starve the thread that submits. */
static int spin_for_work(lf_pool *p) {
  double end = lf_now() + LF__SPIN_SECONDS;
  for (unsigned i = 1;; i++) {
    if (p->nready != 0 || incoming_waits(p)) return 1;
    if (p->status != LF_POOL_RUNNING) return 0;
    if ((i & 63) == 0) {
      sched_yield();
      if (lf_now() > end) return 0;
    }
  }
}

/* What init returns when memory, not the initializer, failed. */
static char nomem_mark;
void *lf_pool_nomem(void) { return &nomem_mark; }

/* Runs f, taken off the queue by a worker counted busy, and drops the
 * queue's reference. A worker with no state (no memory to build one) fails
 * it with the out-of-memory outcome instead. */
static void run_one(lf_pool *p, void *wctx, lf_future *f) {
  lf_payload *task;
  if (lf_future_start(f, &task) == 0) {
    int failed = 1;
    lf_payload *res = NULL;
    if (wctx != &nomem_mark) res = p->hooks.run(wctx, f, task, &failed);
    else lf_payload_free(task);
    p->nfree++; /* free before the result is out */
    /* NULL (no memory for the result) finishes it with lf_payload_oom():
     * the task ran, the pool is not broken, so not the broken payload. */
    lf_future_finish(f, res, failed);
  } else {
    p->nfree++;
  }
  lf_future_unref(f);
}

static void *worker_main(void *arg) {
  lf_worker *w = arg;
  lf_pool *p = w->pool;
  lf__self = w;
  char short_name[16];
  snprintf(short_name, sizeof short_name, "%s", w->name);
  pthread_setname_np(pthread_self(), short_name);

  void *wctx = p->hooks.init(p->ud, w->name);
  lf__lock(&p->mu);
  p->nstarting--;
  if (wctx == NULL) break_locked(p, NULL);
  while (wctx != NULL) {
    for (;;) {
      if (p->qhead == NULL) take_incoming_locked(p);
      if (p->qhead != NULL || p->status != LF_POOL_RUNNING) break;
      lf__unlock(&p->mu);
      int more = spin_for_work(p);
      lf__lock(&p->mu);
      if (more) continue;
      p->nsleeping++;
      if (p->qhead == NULL && !incoming_waits(p) &&
          p->status == LF_POOL_RUNNING)
        lf__cond_wait(&p->cv, &p->mu);
      p->nsleeping--;
    }
    lf_future *f = p->qhead;
    if (f == NULL || p->status == LF_POOL_BROKEN) break;
    p->qhead = f->next;
    if (p->qhead == NULL) p->qtail = NULL;
    p->nready--;
    p->nfree--;
    lf__unlock(&p->mu);
    f->next = NULL;
    /* A worker whose state could not be built for want of memory tries
     * again for each task: memory may have come back. */
    if (wctx == &nomem_mark) wctx = p->hooks.init(p->ud, w->name);
    if (wctx == NULL) {
      lf__lock(&p->mu);
      p->nfree++;
      break_locked(p, f);
      break;
    }
    run_one(p, wctx, f);
    lf__lock(&p->mu);
  }
  p->nexited++;
  /* The last one out says so before its fini: fini may drop the pool's
   * last reference (then p is gone), and whoever waited joins this
   * thread, so it still waits for the state to close. */
  lf_future *stopped = --p->nalive == 0 ? p->stopped : NULL;
  if (stopped) p->stopped = NULL;
  lf__unlock(&p->mu);
  if (stopped) {
    lf_future_finish(stopped, NULL, 0);
    lf_future_unref(stopped);
  }
  if (wctx && wctx != &nomem_mark) p->hooks.fini(wctx);
  lf__self = NULL;
  atomic_fetch_sub(&live_threads, 1);
  return NULL;
}

/* Starts one worker; called with the pool lock held. */
static int start_worker_locked(lf_pool *p) {
  if (p->nworkers == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 4;
    lf_worker **ws = lf__realloc(p->workers, cap * sizeof *ws);
    if (ws == NULL) return LF_ENOMEM;
    p->workers = ws;
    p->cap = cap;
  }
  lf_worker *w = lf__calloc(1, sizeof *w);
  size_t len = strlen(p->prefix) + 24;
  char *name = lf__malloc(len);
  if (w == NULL || name == NULL) {
    lf__free(w);
    lf__free(name);
    return LF_ENOMEM;
  }
  snprintf(name, len, "%s_%zu", p->prefix, p->nworkers);
  w->pool = p;
  w->name = name;
  atomic_fetch_add(&live_threads, 1);
  if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
    atomic_fetch_sub(&live_threads, 1);
    lf__free(name);
    lf__free(w);
    return LF_ETHREAD;
  }
  w->started = 1;
  p->nalive++;
  /* The graph lock is not needed: the deadlock check copies the list under
   * this pool lock. */
  p->workers[p->nworkers++] = w;
  p->nworkers_a = p->nworkers;
  p->nfree++;
  p->nstarting++;
  return 0;
}

static int refused(int status) {
  return status == LF_POOL_BROKEN ? LF_EBROKEN : LF_ESHUTDOWN;
}

/* Makes f the pool's, with a reference for the queue, before any other
 * thread can see it; unbind undoes it. */
static void bind(lf_pool *p, lf_future *f) {
  lf_future_ref(f);
  f->bound = 1;
  f->at.pool = p;
}

static void unbind(lf_future *f) {
  f->next = NULL;
  f->at.pool = NULL;
  f->bound = 0;
  lf_future_unref(f);
}

/* Pushes f on the incoming stack; 0 when the stack is closed. The swap is
 * sequentially consistent, for the wake-up check after it. */
static int push_incoming(lf_pool *p, lf_future *f) {
  bind(p, f);
  lf_future *head = atomic_load_explicit(&p->incoming, memory_order_relaxed);
  do {
    if (head == CLOSED) {
      unbind(f);
      return 0;
    }
    f->next = head;
  } while (!atomic_compare_exchange_weak(&p->incoming, &head, f));
  return 1;
}

/* Takes f, the ready queue's last, back out (mu held, no worker exists, so
 * no one else can have taken it). */
static void unlink_last_locked(lf_pool *p, lf_future *f) {
  lf_future **at = &p->qhead, *prev = NULL;
  while (*at != f) {
    prev = *at;
    at = &(*at)->next;
  }
  *at = f->next;
  if (p->qtail == f) p->qtail = prev;
  p->nready--;
  unbind(f);
}

/* The slow path of a submit that may have to start a worker. As in
 * Python, the future is queued before the worker starts, under the pool
 * lock: a worker whose initializer fails at once then fails this future
 * rather than the submit, and a shutdown cannot come between the two. */
static int submit_starting(lf_pool *p, lf_future *f) {
  lf__lock(&p->mu);
  if (p->status != LF_POOL_RUNNING) {
    int status = p->status;
    lf__unlock(&p->mu);
    return refused(status);
  }
  /* Pushed by submits that found the pool full: another thread may have
   * started its last worker since this one read the count. */
  take_incoming_locked(p);
  bind(p, f);
  f->next = NULL;
  append_ready_locked(p, f, f, 1);
  int rc = 0;
  if (p->nready > p->nfree && p->nworkers < p->max) rc = start_worker_locked(p);
  if (rc != 0 && p->nworkers == 0) {
    unlink_last_locked(p, f);
    lf__unlock(&p->mu);
    return rc;
  }
  if (p->nsleeping > 0) lf__signal(&p->cv);
  lf__unlock(&p->mu);
  return 0;
}

int lf_pool_submit(lf_pool *p, lf_future *f) {
  int status = p->status;
  if (status != LF_POOL_RUNNING) return refused(status);
  /* Until every worker is started, a submit may have to start one. */
  if (p->nworkers_a < p->max) return submit_starting(p, f);
  if (!push_incoming(p, f)) return refused(atomic_load(&p->status));
  if (p->nsleeping > 0) {
    lf__lock(&p->mu);
    lf__signal(&p->cv);
    lf__unlock(&p->mu);
  }
  return 0;
}

static int join_workers(lf_pool *p) {
  int rc = 0;
  lf__lock(&p->join_mu);
  lf__lock(&p->mu);
  size_t n = p->nworkers;
  lf__unlock(&p->mu);
  for (size_t i = 0; i < n; i++) {
    lf_worker *w = p->workers[i]; /* no more are added once stopped */
    if (!w->started) continue;
    if (w == lf__self) {
      rc = LF_ESELF;
      continue;
    }
    LF__CHECK(pthread_join(w->thread, NULL));
    w->started = 0;
  }
  lf__unlock(&p->join_mu);
  return rc;
}

int lf_pool_shutdown(lf_pool *p, int wait, int cancel_futures) {
  lf__lock(&p->mu);
  if (p->status == LF_POOL_RUNNING) set_status_locked(p, LF_POOL_SHUTDOWN);
  lf_future *q = cancel_futures ? take_queue_locked(p) : NULL;
  /* As in Python, where a thread started by a submit is already waiting
   * for work: the first futures are left to the workers still starting. */
  for (size_t k = 0; k < p->nstarting && q; k++) {
    lf_future *f = q;
    q = f->next;
    f->next = NULL;
    append_ready_locked(p, f, f, 1);
  }
  lf__broadcast(&p->cv);
  lf__unlock(&p->mu);
  for (lf_future *f = q, *next; f; f = next) {
    next = f->next;
    f->next = NULL;
    lf_future_cancel(f);
    lf_future_unref(f);
  }
  return wait ? join_workers(p) : 0;
}

lf_future *lf_pool_stopped(lf_pool *p) {
  lf_future *f = lf_future_new();
  if (f == NULL) return NULL;
  lf__lock(&p->mu);
  if (p->status == LF_POOL_RUNNING || p->nalive == 0 || p->stopped) {
    lf_future *was = p->stopped;
    int now = p->status != LF_POOL_RUNNING && p->nalive == 0;
    lf__unlock(&p->mu);
    if (was || !now) { /* a second waiter, or not stopping: let it join */
      lf_future_unref(f);
      return NULL;
    }
    lf_future_finish(f, NULL, 0);
    return f;
  }
  lf_future_ref(f);
  p->stopped = f;
  lf__unlock(&p->mu);
  return f;
}

static void pool_destroy(lf_obj *o) {
  lf_pool *p = (lf_pool *)o;
  lf_pool_shutdown(p, 1, 1);
  lf_future_unref(p->stopped); /* NULL: the last worker finished it */
  /* Wait out any deadlock check that may still read this pool. */
  lf__lock(&lf__graph_mu);
  lf__unlock(&lf__graph_mu);
  for (size_t i = 0; i < p->nworkers; i++) {
    if (p->workers[i]->started) pthread_detach(p->workers[i]->thread);
    lf__free(p->workers[i]->name);
    lf__free(p->workers[i]);
  }
  lf__free(p->workers);
  if (p->hooks.release) p->hooks.release(p->ud);
  pthread_mutex_destroy(&p->mu);
  pthread_mutex_destroy(&p->join_mu);
  pthread_cond_destroy(&p->cv);
  lf__free(p->prefix);
  lf__free(p);
  atomic_fetch_sub(&live_pools, 1);
}

int lf_pool_status(lf_pool *p) {
  lf__lock(&p->mu);
  int s = p->status;
  lf__unlock(&p->mu);
  return s;
}

size_t lf_pool_nworkers(lf_pool *p) {
  lf__lock(&p->mu);
  size_t n = p->nworkers - p->nexited;
  lf__unlock(&p->mu);
  return n;
}

size_t lf_pool_max_workers(lf_pool *p) { return p->max; }

const char *lf_pool_prefix(lf_pool *p) { return p->prefix; }
void *lf_pool_ud(lf_pool *p) { return p->ud; }

int lf__pool_can_run_more(lf_pool *p) {
  lf__lock(&p->mu);
  int more = p->status == LF_POOL_BROKEN ||
             (p->status == LF_POOL_RUNNING && p->nworkers < p->max);
  lf__unlock(&p->mu);
  return more;
}

size_t lf__pool_workers(lf_pool *p, lf_worker ***out) {
  lf__lock(&p->mu);
  size_t n = p->nworkers;
  *out = n ? lf__malloc(n * sizeof **out) : NULL;
  if (*out) memcpy(*out, p->workers, n * sizeof **out);
  else n = 0;
  lf__unlock(&p->mu);
  return n;
}
