/*
 * future.c -- futures, the waiters that watch them, and inboxes.
 *
 * A future's fields are guarded by its stripe (lf__stripe(f)); `state` is
 * also atomic so done() can be read without the lock. Completion happens
 * once: under the stripe the state moves to CANCELLED or FINISHED, the done
 * hooks run (they only post to inboxes), every watching waiter is told
 * (waiter lock nested inside the stripe), then the stripe is released.
 *
 * A waiter is owned by one thread. Its completed-array is guarded by its
 * mutex and is reserved one slot per watched future, so recording a
 * completion never allocates under a lock.
 *
 * An inbox is a FIFO of items posted from any thread to the thread that
 * owns it; its mutex guards the list, its count, the waiter to kick and
 * the notify eventfd's counter (non-zero exactly while items wait, so an
 * event loop that polls it sees the list's state, not a stale edge).
 *
 * A waiter may watch a stop flag that a signal handler sets: a handler
 * cannot signal a condition variable, so such a waiter sleeps in slices of
 * STOP_SLICE seconds and looks at the flag between them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

/* How late a stop flag may be seen: well inside the 50 ms of the API. */
#define STOP_SLICE 0.01

struct lf_wnode {
  lf_waiter *w;
  lf_future *f;
  lf_wnode *next;  /* in f->waiters */
  lf_wnode *wnext; /* in w->nodes */
  int linked;      /* still in f->waiters */
};

struct lf_hook {
  lf_hook *next;
  lf_hook_fn fn;
  void *arg;
};

struct lf_waiter {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  lf_future **done; /* completions, oldest at done[head] */
  size_t head, n, cap, nwatched;
  int kicked;
  lf_wnode *nodes;
  const _Atomic int *stop; /* a wait ends with LF_EINTR once it is set */
};

/* ---- futures ------------------------------------------------------------ */

static void tally(lf_future *f) {
  lf_tally *t = f->tally;
  f->tally = NULL;
  int st = atomic_load_explicit(&f->state, memory_order_relaxed);
  _Atomic long *n = st != LF_FINISHED ? &t->cancelled
                    : f->failed      ? &t->failed
                                     : &t->done;
  atomic_fetch_add_explicit(n, 1, memory_order_relaxed);
}

void lf_future_tally(lf_future *f, lf_tally *t) { f->tally = t; }

void lf_future_set_mark(lf_future *f) {
  atomic_fetch_or_explicit(&f->bits, LF__MARK, memory_order_relaxed);
}
int lf_future_mark(lf_future *f) {
  return atomic_load_explicit(&f->bits, memory_order_relaxed) & LF__MARK;
}

static void future_destroy(lf_obj *o) {
  lf_future *f = (lf_future *)o;
  if (f->tally) tally(f); /* never finished: as cancelled */
  lf_payload_free(f->payload);
  /* Hooks that never ran are told to drop their argument. */
  for (lf_hook *h = f->hooks, *next; h; h = next) {
    next = h->next;
    h->fn(h->arg, NULL);
    lf__free(h);
  }
  lf__cell_give(f);
}

lf_future *lf_future_new(void) {
  lf_future *f = lf__cell_take();
  if (f == NULL) return NULL;
  memset(f, 0, sizeof *f);
  atomic_init(&f->obj.refs, 1);
  f->obj.destroy = future_destroy;
  atomic_init(&f->state, LF_PENDING);
  return f;
}

/* The room, if it is free and `size` bytes fit, now used; else NULL. */
static lf_payload *take_room(lf_future *f, size_t size) {
  if (f->room_used || size > LF_FUTURE_ROOM) return NULL;
  f->room_used = 1;
  return (lf_payload *)f->roombuf;
}

lf_payload *lf_future_payload_new(lf_future *f, const void *data, size_t len,
                                  lf_obj *const *objs, uint32_t nobjs,
                                  uint32_t flags) {
  lf_payload *p = take_room(f, lf__payload_size(len, nobjs));
  if (p == NULL) return lf_payload_new(data, len, objs, nobjs, flags);
  lf__payload_fill(p, data, len, objs, nobjs,
                   (flags & LF_PAYLOAD_HOSTFLAGS) | LF__PAYLOAD_INROOM);
  return p;
}

lf_future *lf_future_new_task(const void *data, size_t len,
                              lf_obj *const *objs, uint32_t nobjs,
                              uint32_t flags) {
  lf_future *f = lf_future_new();
  if (f == NULL) return NULL;
  f->payload = lf_future_payload_new(f, data, len, objs, nobjs, flags);
  if (f->payload == NULL) {
    lf__cell_give(f);
    return NULL;
  }
  return f;
}

lf_future *lf_future_new_with(lf_payload *task) {
  lf_future *f = lf_future_new();
  if (f) f->payload = task;
  return f;
}

void lf_future_ref(lf_future *f) { lf_obj_ref(&f->obj); }
void lf_future_unref(lf_future *f) {
  if (f) lf_obj_unref(&f->obj);
}

int lf_future_state(const lf_future *f) {
  return atomic_load_explicit(&((lf_future *)f)->state, memory_order_acquire);
}

int lf_future_done(const lf_future *f) {
  return lf_future_state(f) >= LF_CANCELLED;
}

int lf_future_set_running(lf_future *f) {
  pthread_mutex_t *m = lf__stripe(f);
  lf__lock(m);
  int st = atomic_load_explicit(&f->state, memory_order_relaxed);
  int rc = 0;
  if (st == LF_PENDING) {
    atomic_store_explicit(&f->state, LF_RUNNING, memory_order_release);
    f->at.runner = f->bound ? lf__self : NULL;
  } else {
    rc = st == LF_CANCELLED ? LF_ECANCELLED : LF_EINVALSTATE;
  }
  lf__unlock(m);
  return rc;
}

int lf_future_start(lf_future *f, lf_payload **task) {
  pthread_mutex_t *m = lf__stripe(f);
  lf__lock(m);
  int st = atomic_load_explicit(&f->state, memory_order_relaxed);
  int rc = 0;
  *task = NULL;
  if (st == LF_PENDING) {
    /* Only a pending future's payload is its task: once cancelled it has
     * none, and once finished (set_result on a queued future) it is the
     * result, which stays. */
    *task = f->payload;
    f->payload = NULL;
    atomic_store_explicit(&f->state, LF_RUNNING, memory_order_release);
    f->at.runner = f->bound ? lf__self : NULL;
  } else {
    rc = st == LF_CANCELLED ? LF_ECANCELLED : LF_EINVALSTATE;
  }
  lf__unlock(m);
  return rc;
}

int lf_future_wait_spin(lf_future *f) {
  return lf__spin_until_done(f, LF__SPIN_SECONDS);
}

static void waiter_record_locked(lf_waiter *w, lf_future *f);

void lf__future_complete_locked(lf_future *f, pthread_mutex_t *stripe) {
  /* Hooks first, still under the stripe: whoever is woken below, or sees
   * the future done and passes lf_future_sync(), finds them posted. */
  if (f->tally) tally(f);
  lf_hook *hooks = f->hooks;
  f->hooks = NULL;
  for (lf_hook *h = hooks; h; h = h->next) h->fn(h->arg, f);
  for (lf_wnode *n = f->waiters; n; n = n->next) {
    lf__lock(&n->w->mu);
    waiter_record_locked(n->w, f);
    lf__unlock(&n->w->mu);
    n->linked = 0;
  }
  f->waiters = NULL;
  atomic_fetch_or_explicit(&f->bits, LF__SETTLED, memory_order_release);
  lf__unlock(stripe);
  for (lf_hook *h = hooks, *next; h; h = next) {
    next = h->next;
    lf__free(h);
  }
}

void lf_future_sync(lf_future *f) {
  /* Settled: what completion did is seen through the bit's release. */
  if (atomic_load_explicit(&f->bits, memory_order_acquire) & LF__SETTLED)
    return;
  pthread_mutex_t *m = lf__stripe(f);
  lf__lock(m);
  lf__unlock(m);
}

int lf_future_cancel(lf_future *f) {
  pthread_mutex_t *m = lf__stripe(f);
  lf__lock(m);
  int st = atomic_load_explicit(&f->state, memory_order_relaxed);
  if (st != LF_PENDING) {
    lf__unlock(m);
    return st == LF_CANCELLED;
  }
  atomic_store_explicit(&f->state, LF_CANCELLED, memory_order_release);
  lf_payload *task = f->payload;
  f->payload = NULL;
  f->at.pool = NULL;
  lf__future_complete_locked(f, m);
  lf_payload_free(task);
  return 1;
}

int lf_future_finish(lf_future *f, lf_payload *result, int failed) {
  pthread_mutex_t *m = lf__stripe(f);
  lf__lock(m);
  int st = atomic_load_explicit(&f->state, memory_order_relaxed);
  if (st >= LF_CANCELLED) {
    lf__unlock(m);
    lf_payload_free(result);
    return LF_EINVALSTATE;
  }
  lf_payload *task = f->payload; /* a task never started (broken pool) */
  if (result == NULL) { /* its maker ran out of memory */
    result = lf_payload_oom();
    failed = 1;
  }
  f->payload = result;
  f->failed = failed != 0;
  f->at.runner = NULL;
  atomic_store_explicit(&f->state, LF_FINISHED, memory_order_release);
  lf__future_complete_locked(f, m);
  lf_payload_free(task);
  return 0;
}

const lf_payload *lf_future_result(const lf_future *f, int *failed) {
  if (lf_future_state(f) != LF_FINISHED) {
    if (failed) *failed = 0;
    return NULL;
  }
  if (failed) *failed = f->failed;
  return f->payload;
}

void lf_future_set_task(lf_future *f, lf_payload *task) {
  pthread_mutex_t *m = lf__stripe(f);
  lf__lock(m);
  lf_payload *old = f->payload;
  f->payload = task;
  lf__unlock(m);
  lf_payload_free(old);
}

int lf_future_add_hook(lf_future *f, lf_hook_fn fn, void *arg) {
  lf_hook *h = lf__malloc(sizeof *h);
  if (h == NULL) return LF_ENOMEM;
  h->fn = fn;
  h->arg = arg;
  h->next = NULL;
  pthread_mutex_t *m = lf__stripe(f);
  lf__lock(m);
  if (lf_future_done(f)) {
    lf__unlock(m);
    lf__free(h);
    return 1;
  }
  lf_hook **tail = &f->hooks;
  while (*tail) tail = &(*tail)->next;
  *tail = h;
  lf__unlock(m);
  return 0;
}

/* ---- waiters ------------------------------------------------------------ */

lf_waiter *lf_waiter_new(void) {
  lf_waiter *w = lf__calloc(1, sizeof *w);
  if (w == NULL) return NULL;
  LF__CHECK(pthread_mutex_init(&w->mu, NULL));
  lf__cond_init(&w->cv);
  return w;
}

static void waiter_record_locked(lf_waiter *w, lf_future *f) {
  lf_future_ref(f);
  w->done[(w->head + w->n) % w->cap] = f;
  w->n++;
  lf__signal(&w->cv);
}

/* Makes room for one more completion; the ring is re-laid from 0. */
static int waiter_reserve(lf_waiter *w) {
  lf__lock(&w->mu);
  if (w->nwatched + 1 > w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 4;
    lf_future **d = lf__malloc(cap * sizeof *d);
    if (d == NULL) {
      lf__unlock(&w->mu);
      return LF_ENOMEM;
    }
    for (size_t i = 0; i < w->n; i++) d[i] = w->done[(w->head + i) % w->cap];
    lf__free(w->done);
    w->done = d;
    w->head = 0;
    w->cap = cap;
  }
  w->nwatched++;
  lf__unlock(&w->mu);
  return 0;
}

int lf_waiter_watch(lf_waiter *w, lf_future *f) {
  lf_wnode *n = lf__malloc(sizeof *n);
  if (n == NULL) return LF_ENOMEM;
  if (waiter_reserve(w) != 0) {
    lf__free(n);
    return LF_ENOMEM;
  }
  lf_future_ref(f);
  n->w = w;
  n->f = f;
  n->wnext = w->nodes;
  w->nodes = n;
  pthread_mutex_t *m = lf__stripe(f);
  lf__lock(m);
  if (lf_future_done(f)) {
    n->linked = 0;
    lf__lock(&w->mu);
    waiter_record_locked(w, f);
    lf__unlock(&w->mu);
  } else {
    n->linked = 1;
    n->next = f->waiters;
    f->waiters = n;
  }
  lf__unlock(m);
  return 0;
}

lf_future *lf_waiter_pop(lf_waiter *w) {
  lf__lock(&w->mu);
  lf_future *f = NULL;
  if (w->n > 0) {
    f = w->done[w->head];
    w->head = (w->head + 1) % w->cap;
    w->n--;
  }
  lf__unlock(&w->mu);
  return f;
}

size_t lf_waiter_ncompleted(lf_waiter *w) {
  lf__lock(&w->mu);
  size_t n = w->n;
  lf__unlock(&w->mu);
  return n;
}

void lf_waiter_kick(lf_waiter *w) {
  lf__lock(&w->mu);
  w->kicked = 1;
  lf__signal(&w->cv);
  lf__unlock(&w->mu);
}

/* LUAFUTURES_DEADLOCK_CHECK=0 turns the check off (the bench compares). */
static int deadlock_checks(void) {
  static _Atomic int on = -1;
  int v = atomic_load_explicit(&on, memory_order_relaxed);
  if (v < 0) {
    const char *e = getenv("LUAFUTURES_DEADLOCK_CHECK");
    v = !(e && e[0] == '0');
    atomic_store_explicit(&on, v, memory_order_relaxed);
  }
  return v;
}

int lf_waiter_wait(lf_waiter *w, double timeout, lf_future *target, char *why,
                   size_t whylen) {
  return lf_waiter_wait_for(w, timeout, &target, target ? 1 : 0, 1, why,
                            whylen);
}

static void record_wait(lf_worker *self, lf_future *const *targets, size_t n,
                        int all) {
  self->waiting_on = targets;
  self->nwaiting = n;
  self->waiting_all = all;
}

int lf_waiter_wait_for(lf_waiter *w, double timeout,
                       lf_future *const *targets, size_t ntargets, int all,
                       char *why, size_t whylen) {
  lf_worker *self = lf__self;
  int tracked = 0;
  if (ntargets && timeout < 0 && self && deadlock_checks()) {
    lf__lock(&lf__graph_mu);
    record_wait(self, targets, ntargets, all);
    if (lf__doomed(self, why, whylen)) {
      record_wait(self, NULL, 0, 0);
      lf__unlock(&lf__graph_mu);
      return LF_EDEADLK;
    }
    lf__unlock(&lf__graph_mu);
    tracked = 1;
  }
  int rc = 0;
  lf__lock(&w->mu);
  double deadline = timeout >= 0 ? lf_now() + timeout : 0;
  while (w->n == 0 && !w->kicked) {
    if (w->stop && atomic_load(w->stop)) {
      rc = LF_EINTR;
      break;
    }
    double left = timeout >= 0 ? deadline - lf_now() : -1;
    if (timeout >= 0 && left <= 0) {
      rc = LF_ETIMEDOUT;
      break;
    }
    if (w->stop && (left < 0 || left > STOP_SLICE)) left = STOP_SLICE;
    if (left < 0)
      lf__cond_wait(&w->cv, &w->mu);
    else
      lf__cond_timedwait(&w->cv, &w->mu, left);
  }
  if (rc == 0 && w->n == 0 && w->kicked) rc = LF_EKICKED;
  w->kicked = 0;
  lf__unlock(&w->mu);
  if (tracked) {
    lf__lock(&lf__graph_mu);
    record_wait(self, NULL, 0, 0);
    lf__unlock(&lf__graph_mu);
  }
  return rc;
}

void lf_waiter_set_stop(lf_waiter *w, const _Atomic int *flag) {
  lf__lock(&w->mu);
  w->stop = flag;
  lf__unlock(&w->mu);
}

void lf_waiter_free(lf_waiter *w) {
  if (w == NULL) return;
  for (lf_wnode *n = w->nodes, *next; n; n = next) {
    next = n->wnext;
    pthread_mutex_t *m = lf__stripe(n->f);
    lf__lock(m);
    if (n->linked) {
      lf_wnode **pp = &n->f->waiters;
      while (*pp != n) pp = &(*pp)->next;
      *pp = n->next;
    }
    lf__unlock(m);
    lf_future_unref(n->f);
    lf__free(n);
  }
  for (size_t i = 0; i < w->n; i++)
    lf_future_unref(w->done[(w->head + i) % w->cap]);
  lf__free(w->done);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
  lf__free(w);
}

/* ---- inboxes ------------------------------------------------------------ */

struct lf_inbox {
  _Atomic int refs;
  pthread_mutex_t mu;
  lf_item *head, *tail;
  lf_waiter *waiter;
  int closed;
  int efd; /* the notify eventfd, or -1 until asked for */
  _Atomic int pending; /* items waiting */
};

/* Makes the eventfd readable (on) or not; the inbox lock is held. */
static void notify_set(lf_inbox *b, int on) {
  if (b->efd < 0) return;
  uint64_t v = 1;
  ssize_t n = on ? write(b->efd, &v, sizeof v) : read(b->efd, &v, sizeof v);
  (void)n; /* an eventfd of ours: it cannot fail but for a full counter */
}

lf_inbox *lf_inbox_new(void) {
  lf_inbox *b = lf__calloc(1, sizeof *b);
  if (b == NULL) return NULL;
  atomic_init(&b->refs, 1);
  b->efd = -1;
  LF__CHECK(pthread_mutex_init(&b->mu, NULL));
  return b;
}

void lf_inbox_ref(lf_inbox *b) { atomic_fetch_add(&b->refs, 1); }

static void drop_items(lf_item *it) {
  for (lf_item *next; it; it = next) {
    next = it->next;
    it->run(it, NULL);
  }
}

void lf_inbox_unref(lf_inbox *b) {
  if (b == NULL || atomic_fetch_sub(&b->refs, 1) != 1) return;
  drop_items(b->head);
  if (b->efd >= 0) close(b->efd);
  pthread_mutex_destroy(&b->mu);
  lf__free(b);
}

void lf_inbox_post(lf_inbox *b, lf_item *it) {
  it->next = NULL;
  lf__lock(&b->mu);
  if (b->closed) {
    lf__unlock(&b->mu);
    it->run(it, NULL);
    return;
  }
  if (b->tail)
    b->tail->next = it;
  else
    b->head = it;
  b->tail = it;
  if (atomic_fetch_add(&b->pending, 1) == 0) notify_set(b, 1);
  if (b->waiter) lf_waiter_kick(b->waiter);
  lf__unlock(&b->mu);
}

lf_item *lf_inbox_take(lf_inbox *b) {
  lf__lock(&b->mu);
  lf_item *it = b->head;
  b->head = b->tail = NULL;
  if (atomic_exchange(&b->pending, 0) != 0) notify_set(b, 0);
  lf__unlock(&b->mu);
  return it;
}

int lf_inbox_pending(lf_inbox *b) { return atomic_load(&b->pending); }

int lf_inbox_notify_fd(lf_inbox *b) {
  lf__lock(&b->mu);
  if (b->efd < 0) {
    b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (b->efd >= 0 && atomic_load(&b->pending)) notify_set(b, 1);
  }
  int fd = b->efd < 0 ? LF_ENOMEM : b->efd;
  lf__unlock(&b->mu);
  return fd;
}

lf_waiter *lf_inbox_set_waiter(lf_inbox *b, lf_waiter *w) {
  lf__lock(&b->mu);
  lf_waiter *old = b->waiter;
  b->waiter = w;
  /* A post that came before the waiter was set still has to wake it. */
  if (w && b->head) lf_waiter_kick(w);
  lf__unlock(&b->mu);
  return old;
}

void lf_inbox_close(lf_inbox *b) {
  lf__lock(&b->mu);
  b->closed = 1;
  lf_item *it = b->head;
  b->head = b->tail = NULL;
  if (atomic_exchange(&b->pending, 0) != 0) notify_set(b, 0);
  b->waiter = NULL;
  lf__unlock(&b->mu);
  drop_items(it);
}
