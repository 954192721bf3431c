/*
 * queue.c -- a bounded FIFO of payloads, Python's queue.Queue in C.
 *
 * The items sit in a ring (items[head .. head + n), modulo cap) that grows
 * by doubling; the memory for it is got with the lock released, so that no
 * allocation happens under the queue's mutex and a failed one only fails
 * that put.
 *
 * Blocking: a caller that must wait links a node on its stack into one of
 * three lists (getters, putters, joiners), unlocks, and sleeps on its own
 * lf_waiter. Whoever makes its wait worth re-checking (a put for a getter,
 * a get for a putter, the last task_done for joiners, shutdown for all)
 * unlinks the node, marks it woken and kicks its waiter. A kick that did
 * not come from the queue (the host's inbox, an interrupt) leaves the node
 * unmarked, and the call returns LF_EKICKED. Puts and gets wake one node
 * each, oldest first; a woken node that leaves without using its turn
 * (timed out, kicked) passes the turn on, so no wake-up is lost.
 *
 * `mu` guards everything but `n_hint` (a copy of n, read without the lock
 * by the spin before sleeping), `refs` and `nlone`. Lock order: queue mutex
 * -> waiter mutex (the waiter's is the innermost lock of the runtime). No
 * payload is freed with the lock held, as freeing one may drop the last
 * reference to another queue.
 *
 * Lone-holder check: a get with no limit counts itself in `nlone` before it
 * reads the reference count, and lf_queue_unref lowers the count before it
 * reads `nlone`; with sequentially consistent atomics at least one of the
 * two sees the other, so a get never sleeps through the last other holder
 * letting go.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lf_queue.h"

typedef struct qnode qnode;
struct qnode {
  qnode *next, *prev;
  lf_waiter *w;
  int woken; /* unlinked by the queue: re-check */
  int mine;  /* get with the lone-holder check: the caller's references */
};

typedef struct qlist {
  qnode *first, *last;
} qlist;

struct lf_queue {
  lf_obj obj;
  pthread_mutex_t mu;
  lf_payload **items;
  size_t head, n, cap, maxsize;
  long unfinished; /* put minus task_done, as Python's unfinished_tasks */
  int shutdown;
  qlist getters, putters, joiners;
  size_t nwaiting; /* nodes in the three lists */
  _Atomic size_t n_hint;
  _Atomic int nlone; /* gets waiting with the lone-holder check */
};

static _Atomic long live_queues;

long lf_live_queues(void) { return atomic_load(&live_queues); }

/* ---- wait lists ----------------------------------------------------------- */

static void list_add(qlist *l, qnode *n) {
  n->next = NULL;
  n->prev = l->last;
  if (l->last) l->last->next = n;
  else l->first = n;
  l->last = n;
}

static void list_del(qlist *l, qnode *n) {
  if (n->prev) n->prev->next = n->next;
  else l->first = n->next;
  if (n->next) n->next->prev = n->prev;
  else l->last = n->prev;
  n->next = n->prev = NULL;
}

static void wake(qlist *l, qnode *n) {
  list_del(l, n);
  n->woken = 1;
  lf_waiter_kick(n->w);
}

static void wake_one(qlist *l) {
  if (l->first) wake(l, l->first);
}

static void wake_all(qlist *l) {
  while (l->first) wake(l, l->first);
}

/* ---- life ----------------------------------------------------------------- */

static void queue_destroy(lf_obj *o) {
  lf_queue *q = (lf_queue *)o;
  for (size_t i = 0; i < q->n; i++)
    lf_payload_free(q->items[(q->head + i) % q->cap]);
  lf__free(q->items);
  pthread_mutex_destroy(&q->mu);
  lf__free(q);
  atomic_fetch_sub(&live_queues, 1);
}

lf_queue *lf_queue_new(size_t maxsize) {
  lf_queue *q = lf__calloc(1, sizeof *q);
  if (q == NULL) return NULL;
  atomic_init(&q->obj.refs, 1);
  q->obj.destroy = queue_destroy;
  q->maxsize = maxsize;
  LF__CHECK(pthread_mutex_init(&q->mu, NULL));
  atomic_fetch_add(&live_queues, 1);
  return q;
}

void lf_queue_ref(lf_queue *q) { lf_obj_ref(&q->obj); }

void lf_queue_unref(lf_queue *q) {
  if (q == NULL) return;
  int left = atomic_fetch_sub(&q->obj.refs, 1) - 1;
  if (left == 0) {
    queue_destroy(&q->obj);
    return;
  }
  if (atomic_load(&q->nlone) == 0) return;
  lf__lock(&q->mu);
  for (qnode *n = q->getters.first, *next; n; n = next) {
    next = n->next;
    if (n->mine >= left) wake(&q->getters, n);
  }
  lf__unlock(&q->mu);
}

/* ---- blocking ------------------------------------------------------------- */

/* Before sleeping, spin a few microseconds for the count to leave `from`
 * (a sleep and a wake-up cost far more than a short spin). It yields every
 * few steps: on a busy machine the peer that will change the count often
 * shares this CPU, and a spin that never yields only delays it (a round
 * trip pinned to one CPU took 18 us yielding every 512 steps, 3 us so). */
static void spin_while(lf_queue *q, size_t from) {
  double end = 0;
  for (unsigned i = 0;; i++) {
    if (atomic_load_explicit(&q->n_hint, memory_order_relaxed) != from) return;
    lf__relax();
    if ((i & 15) == 15) {
      sched_yield();
      double now = lf_now();
      if (end == 0) end = now + LF__SPIN_SECONDS;
      else if (now > end) return;
    }
  }
}

/* One blocking operation's state: its node, its deadline, its waiter. */
typedef struct qwait {
  qnode node;
  double timeout, deadline;
  int own; /* node.w was made for this call */
} qwait;

static void qwait_init(qwait *qw, double timeout, lf_waiter *w) {
  memset(qw, 0, sizeof *qw);
  qw->node.w = w;
  qw->timeout = timeout;
  qw->deadline = timeout > 0 ? lf_now() + timeout : 0;
}

/* With q->mu held: sleeps on `l` until woken by the queue (0), kicked
 * (LF_EKICKED) or out of time (LF_ETIMEDOUT); returns with q->mu held and
 * the node unlinked. Making the call's own waiter counts as a wake-up. */
static int block(lf_queue *q, qwait *qw, qlist *l) {
  qnode *n = &qw->node;
  if (n->w == NULL) {
    lf__unlock(&q->mu);
    n->w = lf_waiter_new();
    lf__lock(&q->mu);
    if (n->w == NULL) return LF_ENOMEM;
    qw->own = 1;
    return 0;
  }
  double left = -1;
  if (qw->timeout >= 0) {
    left = qw->deadline - lf_now();
    if (left <= 0) return LF_ETIMEDOUT;
  }
  n->woken = 0;
  list_add(l, n);
  q->nwaiting++;
  lf__unlock(&q->mu);
  int rc = lf_waiter_wait(n->w, left, NULL, NULL, 0);
  lf__lock(&q->mu);
  q->nwaiting--;
  if (n->woken) return 0;
  list_del(l, n);
  return rc == LF_ETIMEDOUT ? LF_ETIMEDOUT : LF_EKICKED;
}

/* A call leaving with an error after the queue woke it hands its turn to
 * the next in line, who may succeed where it gave up. */
static void qwait_end(lf_queue *q, qwait *qw, qlist *l, int rc) {
  if (rc != 0 && qw->node.woken) wake_one(l);
}

static void qwait_free(qwait *qw) {
  if (qw->own) lf_waiter_free(qw->node.w);
}

/* ---- put and get ---------------------------------------------------------- */

/* With q->mu held and no room in the ring: a bigger ring, its memory got
 * with the lock released. 0 (the caller re-checks) or LF_ENOMEM. */
static int grow(lf_queue *q) {
  size_t cap = q->cap ? q->cap * 2 : 16;
  lf__unlock(&q->mu);
  lf_payload **items = lf__malloc(cap * sizeof *items);
  lf__lock(&q->mu);
  if (items == NULL) return LF_ENOMEM;
  if (q->cap >= cap) { /* another put grew it meanwhile */
    lf__free(items);
    return 0;
  }
  for (size_t i = 0; i < q->n; i++) items[i] = q->items[(q->head + i) % q->cap];
  lf_payload **old = q->items;
  q->items = items;
  q->head = 0;
  q->cap = cap;
  lf__free(old); /* a plain array: nothing it points to is freed */
  return 0;
}

static int has_room(lf_queue *q) { return q->maxsize == 0 || q->n < q->maxsize; }

int lf_queue_put(lf_queue *q, lf_payload *item, double timeout, lf_waiter *w) {
  if (timeout != 0 && q->maxsize &&
      atomic_load_explicit(&q->n_hint, memory_order_relaxed) >= q->maxsize)
    spin_while(q, q->maxsize);
  qwait qw;
  qwait_init(&qw, timeout, w);
  int rc;
  lf__lock(&q->mu);
  for (;;) {
    if (q->shutdown) {
      rc = LF_EQSHUTDOWN;
    } else if (has_room(q) && q->n == q->cap) {
      if ((rc = grow(q)) == 0) continue;
    } else if (has_room(q)) {
      q->items[(q->head + q->n) % q->cap] = item;
      q->n++;
      q->unfinished++;
      atomic_store_explicit(&q->n_hint, q->n, memory_order_relaxed);
      wake_one(&q->getters);
      rc = 0;
    } else if (timeout == 0) {
      rc = LF_EFULL;
    } else if ((rc = block(q, &qw, &q->putters)) == 0) {
      continue;
    } else if (rc == LF_ETIMEDOUT) {
      rc = LF_EFULL;
    }
    break;
  }
  qwait_end(q, &qw, &q->putters, rc);
  lf__unlock(&q->mu);
  qwait_free(&qw);
  return rc;
}

/* With q->mu held: whether only the caller's `mine` references are left
 * (the count is read after nlone was raised; see the top of the file). */
static int lone(lf_queue *q, int mine) {
  return mine > 0 && atomic_load(&q->obj.refs) <= mine;
}

static int get_locked(lf_queue *q, lf_payload **out, qwait *qw, int mine) {
  for (;;) {
    if (q->n > 0) {
      *out = q->items[q->head];
      q->head = (q->head + 1) % q->cap;
      q->n--;
      atomic_store_explicit(&q->n_hint, q->n, memory_order_relaxed);
      if (q->maxsize) wake_one(&q->putters);
      return 0;
    }
    if (q->shutdown) return LF_EQSHUTDOWN;
    if (qw->timeout == 0) return LF_EEMPTY;
    if (lone(q, mine)) return LF_EDEADLK;
    int rc = block(q, qw, &q->getters);
    if (rc == LF_ETIMEDOUT) return LF_EEMPTY;
    if (rc != 0) return rc;
  }
}

int lf_queue_get(lf_queue *q, lf_payload **out, double timeout, lf_waiter *w,
                 int mine) {
  *out = NULL;
  if (timeout != 0 && atomic_load_explicit(&q->n_hint, memory_order_relaxed) == 0)
    spin_while(q, 0);
  if (timeout >= 0) mine = 0;
  qwait qw;
  qwait_init(&qw, timeout, w);
  qw.node.mine = mine;
  if (mine) atomic_fetch_add(&q->nlone, 1);
  lf__lock(&q->mu);
  int rc = get_locked(q, out, &qw, mine);
  qwait_end(q, &qw, &q->getters, rc);
  lf__unlock(&q->mu);
  if (mine) atomic_fetch_sub(&q->nlone, 1);
  qwait_free(&qw);
  return rc;
}

/* ---- tasks and shutdown --------------------------------------------------- */

int lf_queue_task_done(lf_queue *q) {
  int rc = 0;
  lf__lock(&q->mu);
  if (q->unfinished <= 0) {
    rc = LF_EINVALSTATE;
  } else if (--q->unfinished == 0) {
    wake_all(&q->joiners);
  }
  lf__unlock(&q->mu);
  return rc;
}

int lf_queue_join(lf_queue *q, double timeout, lf_waiter *w) {
  qwait qw;
  qwait_init(&qw, timeout, w);
  int rc = 0;
  lf__lock(&q->mu);
  while (q->unfinished > 0) {
    if (timeout == 0) {
      rc = LF_ETIMEDOUT;
      break;
    }
    if ((rc = block(q, &qw, &q->joiners)) != 0) break;
  }
  lf__unlock(&q->mu);
  qwait_free(&qw);
  return rc;
}

void lf_queue_shutdown(lf_queue *q, int immediate) {
  lf_payload **drop = NULL;
  size_t ndrop = 0, head = 0, cap = 0;
  lf__lock(&q->mu);
  q->shutdown = 1;
  if (immediate && q->n) {
    drop = q->items;
    ndrop = q->n;
    head = q->head;
    cap = q->cap;
    q->unfinished -= (long)q->n;
    if (q->unfinished < 0) q->unfinished = 0;
    q->items = NULL;
    q->n = q->head = q->cap = 0;
    atomic_store_explicit(&q->n_hint, 0, memory_order_relaxed);
  }
  if (immediate && q->unfinished == 0) wake_all(&q->joiners);
  wake_all(&q->getters);
  wake_all(&q->putters);
  lf__unlock(&q->mu);
  for (size_t i = 0; i < ndrop; i++) lf_payload_free(drop[(head + i) % cap]);
  lf__free(drop);
}

/* ---- inspection ----------------------------------------------------------- */

size_t lf_queue_qsize(lf_queue *q) {
  return atomic_load_explicit(&q->n_hint, memory_order_relaxed);
}

size_t lf_queue_maxsize(lf_queue *q) { return q->maxsize; }

int lf_queue_full(lf_queue *q) {
  return q->maxsize != 0 && lf_queue_qsize(q) >= q->maxsize;
}

int lf_queue_is_shutdown(lf_queue *q) {
  lf__lock(&q->mu);
  int s = q->shutdown;
  lf__unlock(&q->mu);
  return s;
}

long lf_queue_unfinished(lf_queue *q) {
  lf__lock(&q->mu);
  long u = q->unfinished;
  lf__unlock(&q->mu);
  return u;
}

size_t lf_queue_nwaiting(lf_queue *q) {
  lf__lock(&q->mu);
  size_t n = q->nwaiting;
  lf__unlock(&q->mu);
  return n;
}
