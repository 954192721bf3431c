/*
 * mailbox.c -- the test transport of mailbox.h. One mutex, `mu`, guards
 * the mailboxes, the event list and the worker table; the condition `cv`
 * wakes workers when mail or the stop comes. Events carry a task's int
 * result by value, so nothing is shared with the core but the cookie.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"
#include "mailbox.h"
#include "test.h"

typedef struct mt_ev {
  struct mt_ev *next;
  lf__tev ev;
  int value;
} mt_ev;

typedef struct mt mt;
struct lf__tw {
  mt *t;
  pthread_t th;
  void *cookie;
  uint32_t ids[64];
  lf_payload *tasks[64];
  size_t n, received;
  int stop, exited;
};

struct mt {
  lf__tp base;
  pthread_mutex_t mu;
  pthread_cond_t cv; /* a worker's mailbox got something */
  mt_ev *events, **tail;
  lf__tw *w[8];
  size_t nw;
  pthread_t mgr;
  int have_mgr, off_thread, woken;
};

static void mt_funnel(mt *t) {
  if (!t->have_mgr) {
    t->mgr = pthread_self();
    t->have_mgr = 1;
  } else if (!pthread_equal(t->mgr, pthread_self())) {
    t->off_thread++;
  }
}

static void mt_post(mt *t, int kind, void *cookie, uint32_t id, int value) {
  mt_ev *e = calloc(1, sizeof *e);
  ASSERT(e != NULL);
  e->ev.kind = kind;
  e->ev.worker = cookie;
  e->ev.id = id;
  e->value = value;
  *t->tail = e;
  t->tail = &e->next;
}

static void *mt_rank(void *arg) {
  lf__tw *w = arg;
  mt *t = w->t;
  lf__lock(&t->mu);
  mt_post(t, LF__TEV_READY, w->cookie, 0, 0);
  for (;;) {
    while (w->n == 0 && !w->stop) lf__cond_wait(&t->cv, &t->mu);
    if (w->n == 0) break;
    lf_payload *p = w->tasks[0];
    uint32_t id = w->ids[0];
    w->n--;
    memmove(w->tasks, w->tasks + 1, w->n * sizeof *w->tasks);
    memmove(w->ids, w->ids + 1, w->n * sizeof *w->ids);
    int v = mailbox_run(p);
    lf_payload_free(p);
    mt_post(t, LF__TEV_RESULT, w->cookie, id, v);
  }
  mt_post(t, LF__TEV_BYE, w->cookie, (uint32_t)w->received, 0);
  w->exited = 1;
  lf__unlock(&t->mu);
  return NULL;
}

static int mt_start(lf__tp *tp, void *cookie, lf__tw **out, long *num,
                    char *why, size_t whylen) {
  mt *t = (mt *)tp;
  mt_funnel(t);
  if (t->nw == 8) return LF_ESPAWN;
  lf__tw *w = calloc(1, sizeof *w);
  w->t = t;
  w->cookie = cookie;
  ASSERT(pthread_create(&w->th, NULL, mt_rank, w) == 0);
  *num = (long)t->nw; /* its "rank" */
  t->w[t->nw++] = w;
  *out = w;
  return 0;
}

static int mt_can_send(lf__tp *tp) { return 1; }
static int mt_all_taken(lf__tp *tp) { return -1; } /* no shared queue */

static int mt_send(lf__tp *tp, lf__tw *to, uint32_t id, lf_payload *task) {
  mt *t = (mt *)tp;
  mt_funnel(t);
  ASSERT(to != NULL); /* no LF__TP_ANY: the core must choose */
  lf__lock(&t->mu);
  ASSERT(to->n < 64);
  to->ids[to->n] = id;
  to->tasks[to->n++] = task;
  to->received++;
  lf__broadcast(&t->cv);
  lf__unlock(&t->mu);
  return 0;
}

static void mt_close_queue(lf__tp *tp) {
  mt *t = (mt *)tp;
  mt_funnel(t);
  lf__lock(&t->mu);
  for (size_t i = 0; i < t->nw; i++) t->w[i]->stop = 1;
  lf__broadcast(&t->cv);
  lf__unlock(&t->mu);
}

static void mt_kill(lf__tp *tp, lf__tw *w) { mt_close_queue(tp); }
static void mt_arm(lf__tp *tp) { mt_funnel((mt *)tp); }

static void mt_wait(lf__tp *tp, int ms) {
  mt *t = (mt *)tp;
  mt_funnel(t);
  /* Probe with backoff, as an MPI_Iprobe loop would. */
  for (int backoff = 1; ms < 0 || backoff <= 2 * ms; backoff *= 2) {
    lf__lock(&t->mu);
    int any = t->events != NULL || t->woken;
    int exited = 0;
    for (size_t i = 0; i < t->nw; i++) exited |= t->w[i]->exited;
    t->woken = 0;
    lf__unlock(&t->mu);
    if (any || exited) return;
    lf_sleep((backoff < 16 ? backoff : 16) * 1e-3);
  }
}

static void mt_wake(lf__tp *tp) {
  mt *t = (mt *)tp;
  lf__lock(&t->mu);
  t->woken = 1;
  lf__unlock(&t->mu);
}

static void mt_collect(lf__tp *tp, lf__tev_fn fn, void *ctx) {
  mt *t = (mt *)tp;
  mt_funnel(t);
  lf__lock(&t->mu);
  mt_ev *list = t->events;
  t->events = NULL;
  t->tail = &t->events;
  lf__tw *gone[8];
  size_t ngone = 0;
  for (size_t i = 0; i < t->nw;)
    if (t->w[i]->exited) gone[ngone++] = t->w[i], t->w[i] = t->w[--t->nw];
    else i++;
  lf__unlock(&t->mu);
  for (mt_ev *e = list, *next; e; e = next) {
    next = e->next;
    e->ev.data = &e->value;
    e->ev.len = sizeof e->value;
    fn(ctx, &e->ev);
    free(e);
  }
  for (size_t i = 0; i < ngone; i++) {
    pthread_join(gone[i]->th, NULL); /* it has exited already */
    lf__tev ev = {.kind = LF__TEV_GONE, .worker = gone[i]->cookie};
    fn(ctx, &ev);
    free(gone[i]);
  }
}

int (*mailbox_run)(const lf_payload *task);
int mailbox_open_now, mailbox_off_thread;

static void mt_close(lf__tp *tp) {
  mt *t = (mt *)tp;
  mt_funnel(t);
  ASSERT(t->nw == 0);
  ASSERT(t->events == NULL);
  pthread_mutex_destroy(&t->mu);
  pthread_cond_destroy(&t->cv);
  mailbox_open_now--;
  mailbox_off_thread += t->off_thread;
  free(t);
}

static const lf__tp_ops mt_ops = {
    "mailbox", LF__TP_FUNNELED, mt_start, mt_can_send, mt_all_taken, mt_send,
    mt_close_queue, mt_kill, mt_arm, mt_wait, mt_wake, mt_collect, mt_close,
    NULL};

lf__tp *mailbox_open(const lf__tp_config *cfg, int *err) {
  mt *t = calloc(1, sizeof *t);
  t->base.ops = &mt_ops;
  LF__CHECK(pthread_mutex_init(&t->mu, NULL));
  lf__cond_init(&t->cv);
  t->tail = &t->events;
  mailbox_open_now++;
  *err = 0;
  return &t->base;
}

