/*
 * transport_mpi.c -- the process pool's transport over MPI: a pool's
 * workers are other ranks of the job, which already exist, so `start`
 * claims a rank no worker of this pool holds and sends it the pool's
 * hello. The bytes travel through the link (mpi_link.c), whose thread
 * makes every MPI call and routes each answer here by the pool id in its
 * header; an answer from a rank that is not the pool's worker (a pool
 * that broke and dropped it, a stranger) is dropped and counted.
 *
 * A new worker goes to the free rank that serves the fewest open pools,
 * so executors used at once spread over the ranks (each rank runs one
 * task at a time, whichever pool it is for).
 *
 * A rank cannot be killed (MPI is fail-stop), so `kill` tells it to forget
 * the pool (DROP) and forgets it at once; a goodbye or a failed
 * initializer makes the worker gone too, reported by the next collect
 * after its last event.
 *
 * Locks: everything here is guarded by the link's mutex (lf__mpi.mu); each
 * pool's `cv` wakes its manager, waiting in `wait`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpi_link.h"

#define W lf__mpi
#define LOCK LF__MPI_LOCK
#define UNLOCK LF__MPI_UNLOCK
#define check lf__mpi_check
#define get32 lf__mpi_get32
#define cond_wait lf__mpi_cond_wait
#define msg_new lf__mpi_msg
#define queue_locked lf__mpi_queue_locked
typedef lf__mpimsg msg;

typedef struct mev { /* an event for a pool's manager */
  struct mev *next;
  lf__tev ev;
  msg *m; /* holds the event's bytes */
} mev;

struct lf__tw {
  lf__tw *next;
  int rank;
  void *cookie;
  int gone;    /* said goodbye, failed its init, or was dropped */
  int status;  /* the GONE event's: 0 after a goodbye, else -1 */
  int bye_sent;
};

typedef struct mt {
  lf__tp base;
  struct mt *next; /* pools */
  uint32_t id;
  const char *hello;
  size_t hello_len;
  lf__tw *w;
  size_t ngone; /* workers gone and not yet reported */
  mev *ev, **evtail;
  pthread_cond_t cv;
  int woken;
} mt;

static mt *pools; /* open ones */

/* ---- answers for our pools (the MPI thread, mu held) ----------------------------- */

static lf__tw *worker_at(mt *t, int rank) {
  for (lf__tw *w = t->w; w; w = w->next)
    if (w->rank == rank && !w->gone) return w;
  return NULL;
}

static void event_locked(mt *t, lf__tw *w, int kind, msg *m, const char *why) {
  mev *e = calloc(1, sizeof *e);
  if (e == NULL) { /* no memory for the event: the worker is lost to us */
    free(m);
    w->gone = 1;
    w->status = -1;
    t->ngone++;
  } else {
    e->ev.kind = kind;
    e->ev.worker = w->cookie;
    e->ev.why = why;
    e->m = m;
    if (m) {
      e->ev.id = get32(m->buf + 4);
      e->ev.flags = get32(m->buf + 8);
      e->ev.failed = get32(m->buf + 12) != 0;
      e->ev.data = m->buf + HDR;
      e->ev.len = m->len - HDR;
    }
    *t->evtail = e;
    t->evtail = &e->next;
  }
  check(pthread_cond_signal(&t->cv), "pthread_cond_signal");
}

/* A rank broke the protocol: every pool it serves hears of it. */
void lf__mpi_bad_locked(int rank, const char *why) {
  int any = 0;
  for (mt *t = pools; t; t = t->next) {
    lf__tw *w = worker_at(t, rank);
    if (w) event_locked(t, w, LF__TEV_BAD, NULL, why), any = 1;
  }
  if (!any) W.dropped++;
}

static void gone_locked(mt *t, lf__tw *w, int status) {
  w->gone = 1;
  w->status = status;
  t->ngone++;
  check(pthread_cond_signal(&t->cv), "pthread_cond_signal");
}

/* An answer from a worker rank to one of our pools. */
void lf__mpi_answer_locked(msg *m) {
  int src = m->peer;
  uint32_t pool = get32(m->buf);
  mt *t = pools;
  while (t && t->id != pool) t = t->next;
  lf__tw *w = t ? worker_at(t, src) : NULL;
  if (w == NULL) { /* a pool closed since, or not one it serves */
    W.dropped++;
    free(m);
    return;
  }
  const char *bad = m->tag < T_READY || m->tag > T_BYE
                        ? "a message of an unknown kind"
                    : m->tag != T_RESULT && m->len != HDR
                        ? "a control message with a body"
                        : NULL;
  if (bad) {
    free(m);
    event_locked(t, w, LF__TEV_BAD, NULL, bad);
    return;
  }
  switch (m->tag) {
    case T_READY: event_locked(t, w, LF__TEV_READY, m, NULL); break;
    case T_RESULT: event_locked(t, w, LF__TEV_RESULT, m, NULL); break;
    case T_INITFAIL:
      event_locked(t, w, LF__TEV_INITFAIL, m, NULL);
      gone_locked(t, w, -1);
      break;
    case T_BYE: /* the count it received travels as the id */
      event_locked(t, w, LF__TEV_BYE, m, NULL);
      gone_locked(t, w, 0);
      break;
  }
}

/* ---- a pool's transport (the client side) ----------------------------------- */

/* The rank for a new worker of t: one that no worker of t holds, and of
 * those the one that serves the fewest open pools (the lowest first), so
 * executors used at once spread over the ranks. -1 if none is free. */
static int pick_rank_locked(mt *t) {
  int best = -1, best_n = 0;
  for (int r = 0; r < W.size; r++) {
    if (r == W.rank || worker_at(t, r)) continue;
    int n = 0;
    for (mt *o = pools; o; o = o->next) n += worker_at(o, r) != NULL;
    if (best < 0 || n < best_n) best = r, best_n = n;
  }
  return best;
}

static int t_start(lf__tp *tp, void *cookie, lf__tw **out, long *num,
                   char *why, size_t whylen) {
  mt *t = (mt *)tp;
  lf__tw *w = calloc(1, sizeof *w);
  if (w == NULL) return LF_ENOMEM;
  LOCK();
  int rank = pick_rank_locked(t);
  msg *m = rank < 0 ? NULL
                    : msg_new(rank, LF_MPI_HELLO,
                              (uint32_t[4]){t->id, 0, 0, 0}, t->hello,
                              t->hello_len);
  if (m == NULL) {
    UNLOCK();
    free(w);
    if (rank >= 0) return LF_ENOMEM;
    snprintf(why, whylen, "no free worker rank (the job has %d)", W.size);
    return LF_ESPAWN;
  }
  w->rank = rank;
  w->cookie = cookie;
  w->next = t->w;
  t->w = w;
  queue_locked(m);
  UNLOCK();
  *out = w;
  *num = rank;
  return 0;
}

static int t_can_send(lf__tp *tp) { return 1; }
static int t_all_taken(lf__tp *tp) { return -1; } /* no shared queue */

static int t_send(lf__tp *tp, lf__tw *to, uint32_t id, lf_payload *task) {
  mt *t = (mt *)tp;
  int rc = lf__mpi_post(to->rank, LF_MPI_TASK, t->id, id, task->flags, 0, task->data,
                task->len);
  W.h.payload_free(task);
  return rc;
}

static void t_close_queue(lf__tp *tp) {
  mt *t = (mt *)tp;
  LOCK();
  for (lf__tw *w = t->w; w; w = w->next)
    if (!w->gone && !w->bye_sent) {
      msg *m = msg_new(w->rank, LF_MPI_BYE, (uint32_t[4]){t->id, 0, 0, 0},
                       NULL, 0);
      if (m == NULL) { /* it would never say goodbye: it is lost */
        gone_locked(t, w, -1);
        continue;
      }
      w->bye_sent = 1;
      queue_locked(m);
    }
  UNLOCK();
}

/* A rank cannot be killed (MPI is fail-stop): it is told to forget the
 * pool, and the pool forgets it at once. */
static void t_kill(lf__tp *tp, lf__tw *w) {
  mt *t = (mt *)tp;
  LOCK();
  if (!w->gone) {
    msg *m = msg_new(w->rank, LF_MPI_DROP, (uint32_t[4]){t->id, 0, 0, 0},
                     NULL, 0);
    if (m) queue_locked(m);
    gone_locked(t, w, -1);
  }
  UNLOCK();
}

static void t_arm(lf__tp *tp) {}

static void t_wait(lf__tp *tp, int ms) {
  mt *t = (mt *)tp;
  LOCK();
  if (t->ev == NULL && t->ngone == 0 && !t->woken)
    cond_wait(&t->cv, ms < 0 ? -1 : ms / 1000.0);
  t->woken = 0;
  UNLOCK();
}

static void t_wake(lf__tp *tp) {
  mt *t = (mt *)tp;
  LOCK();
  t->woken = 1;
  check(pthread_cond_signal(&t->cv), "pthread_cond_signal");
  UNLOCK();
}

/* The events in the order they came, then GONE for each worker that went
 * (after its last event, so a goodbye comes before its GONE). */
static void t_collect(lf__tp *tp, lf__tev_fn fn, void *ctx) {
  mt *t = (mt *)tp;
  LOCK();
  mev *list = t->ev;
  t->ev = NULL;
  t->evtail = &t->ev;
  lf__tw *gone = NULL;
  for (lf__tw **pp = &t->w; *pp;) {
    lf__tw *w = *pp;
    if (w->gone) {
      *pp = w->next;
      w->next = gone;
      gone = w;
    } else {
      pp = &w->next;
    }
  }
  t->ngone = 0;
  UNLOCK();
  for (mev *e = list, *n; e; e = n) {
    n = e->next;
    fn(ctx, &e->ev);
    free(e->m);
    free(e);
  }
  for (lf__tw *w = gone, *n; w; w = n) {
    n = w->next;
    lf__tev ev = {.kind = LF__TEV_GONE, .worker = w->cookie,
                  .status = w->status};
    fn(ctx, &ev);
    free(w);
  }
}

static void t_close(lf__tp *tp) {
  mt *t = (mt *)tp;
  LOCK();
  for (mt **pp = &pools; *pp; pp = &(*pp)->next)
    if (*pp == t) {
      *pp = t->next;
      W.npools--;
      break;
    }
  for (mev *e = t->ev, *n; e; e = n) n = e->next, free(e->m), free(e);
  for (lf__tw *w = t->w, *n; w; w = n) n = w->next, free(w);
  check(pthread_cond_signal(&W.cv), "pthread_cond_signal"); /* release */
  UNLOCK();
  pthread_cond_destroy(&t->cv);
  free(t);
}

static const lf__tp_ops mpi_ops = {
    "mpi", LF__TP_FUNNELED | LF__TP_DEEP, t_start, t_can_send, t_all_taken,
    t_send,        t_close_queue,   t_kill,  t_arm,      t_wait,
    t_wake,        t_collect,       t_close,
    NULL /* give: an MPI task carries its Shared values' bytes inline */};

lf__tp *lf__tp_mpi_open(const lf__tp_config *cfg, int *err) {
  mt *t = calloc(1, sizeof *t);
  if (t == NULL) {
    *err = LF_ENOMEM;
    return NULL;
  }
  t->base.ops = &mpi_ops;
  t->hello = cfg->hello;
  t->hello_len = cfg->hello_len;
  t->evtail = &t->ev;
  lf__mpi_cond_init(&t->cv);
  LOCK();
  if (W.state != 2) {
    UNLOCK();
    pthread_cond_destroy(&t->cv);
    free(t);
    *err = LF_ESPAWN;
    return NULL;
  }
  t->id = W.next_pool++;
  t->next = pools;
  pools = t;
  W.npools++;
  UNLOCK();
  *err = 0;
  return &t->base;
}

