/*
 * test_queue.c -- the C tests of runtime/queue.c: order, bounds, timeouts,
 * join, shutdown, wake-ups from outside, the lone-holder check, out of
 * memory, and a 4-producer 4-consumer stress of 1,000,000 items.
 *
 * No test sleeps to synchronise: a thread that must be blocked before the
 * next step is waited for through lf_queue_nwaiting().
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "../lf_queue.h"
#include "test.h"

static lf_payload *item(uint32_t v) {
  lf_payload *p = lf_payload_new(&v, sizeof v, NULL, 0, 0);
  ASSERT(p != NULL);
  return p;
}

static uint32_t value(lf_payload *p) {
  uint32_t v;
  ASSERT_EQ(p->len, sizeof v);
  memcpy(&v, p->data, sizeof v);
  lf_payload_free(p);
  return v;
}

/* Takes the next item, which must be there. */
static uint32_t get_now(lf_queue *q) {
  lf_payload *p;
  ASSERT_EQ(lf_queue_get(q, &p, 0, NULL, 0), 0);
  return value(p);
}

static void until_waiting(lf_queue *q, size_t n) {
  while (lf_queue_nwaiting(q) < n) sched_yield();
}

static void done_with(lf_queue *q) {
  lf_queue_unref(q);
  ASSERT_EQ(lf_live_queues(), 0);
}

static void test_fifo_and_nowait(void) {
  lf_queue *q = lf_queue_new(3);
  ASSERT(q != NULL);
  lf_payload *p;
  ASSERT_EQ(lf_queue_get(q, &p, 0, NULL, 0), LF_EEMPTY);
  ASSERT(p == NULL);
  for (uint32_t i = 1; i <= 3; i++)
    ASSERT_EQ(lf_queue_put(q, item(i), 0, NULL), 0);
  ASSERT_EQ(lf_queue_qsize(q), 3);
  ASSERT(lf_queue_full(q));
  lf_payload *extra = item(4);
  ASSERT_EQ(lf_queue_put(q, extra, 0, NULL), LF_EFULL);
  lf_payload_free(extra); /* refused: still ours */
  for (uint32_t i = 1; i <= 3; i++) ASSERT_EQ(get_now(q), i);
  ASSERT_EQ(lf_queue_qsize(q), 0);
  ASSERT(!lf_queue_full(q));
  ASSERT_EQ(lf_queue_maxsize(q), 3);
  done_with(q);
}

/* The ring wraps and grows with items in it, keeping their order. */
static void test_ring_grows_in_order(void) {
  lf_queue *q = lf_queue_new(0);
  uint32_t next_in = 0, next_out = 0;
  for (int round = 0; round < 50; round++) {
    for (int i = 0; i < 7 + round; i++)
      ASSERT_EQ(lf_queue_put(q, item(next_in++), -1, NULL), 0);
    for (int i = 0; i < 5; i++) ASSERT_EQ(get_now(q), next_out++);
  }
  while (next_out < next_in) ASSERT_EQ(get_now(q), next_out++);
  ASSERT(!lf_queue_full(q)); /* unbounded is never full */
  done_with(q);
}

typedef struct stress {
  lf_queue *q;
  uint32_t per, nprod;
  _Atomic uint32_t *seen;
  _Atomic long got;
  int id;
} stress;

typedef struct worker_arg {
  stress *s;
  uint32_t id;
} worker_arg;

static void *producer(void *arg) {
  worker_arg *a = arg;
  lf_waiter *w = lf_waiter_new();
  for (uint32_t i = 0; i < a->s->per; i++)
    ASSERT_EQ(lf_queue_put(a->s->q, item(a->id * a->s->per + i), -1, w), 0);
  lf_waiter_free(w);
  return NULL;
}

/* Takes items until shutdown, checking that each producer's items come in
 * the order they were put. */
static void *consumer(void *arg) {
  worker_arg *a = arg;
  stress *s = a->s;
  lf_waiter *w = lf_waiter_new();
  uint32_t *last = calloc(s->nprod, sizeof *last);
  lf_payload *p;
  int rc;
  while ((rc = lf_queue_get(s->q, &p, -1, w, 0)) == 0) {
    uint32_t v = value(p), from = v / s->per;
    ASSERT(v % s->per + 1 > last[from]);
    last[from] = v % s->per + 1;
    atomic_fetch_add(&s->seen[v], 1);
    atomic_fetch_add(&s->got, 1);
    ASSERT_EQ(lf_queue_task_done(s->q), 0);
  }
  ASSERT_EQ(rc, LF_EQSHUTDOWN);
  free(last);
  lf_waiter_free(w);
  return NULL;
}

/* nprod producers and ncons consumers move nprod * per items; each must
 * arrive exactly once. */
static void run_stress(size_t maxsize, uint32_t nprod, uint32_t ncons,
                       uint32_t per) {
  stress s = {.q = lf_queue_new(maxsize), .per = per, .nprod = nprod};
  uint32_t total = nprod * per;
  s.seen = calloc(total, sizeof *s.seen);
  pthread_t th[16];
  worker_arg args[16];
  for (uint32_t i = 0; i < ncons; i++) {
    args[i] = (worker_arg){&s, i};
    pthread_create(&th[i], NULL, consumer, &args[i]);
  }
  for (uint32_t i = 0; i < nprod; i++) {
    args[ncons + i] = (worker_arg){&s, i};
    pthread_create(&th[ncons + i], NULL, producer, &args[ncons + i]);
  }
  for (uint32_t i = 0; i < nprod; i++) pthread_join(th[ncons + i], NULL);
  ASSERT_EQ(lf_queue_join(s.q, -1, NULL), 0);
  ASSERT_EQ(atomic_load(&s.got), total); /* join waited for every task_done */
  lf_queue_shutdown(s.q, 0);
  for (uint32_t i = 0; i < ncons; i++) pthread_join(th[i], NULL);
  for (uint32_t v = 0; v < total; v++) ASSERT_EQ(atomic_load(&s.seen[v]), 1);
  free(s.seen);
  done_with(s.q);
}

static void test_many_producers_consumers(void) { run_stress(0, 8, 8, 2000); }
static void test_bounded_many(void) { run_stress(4, 8, 8, 2000); }
static void test_stress_million(void) { run_stress(256, 4, 4, 250000); }

typedef struct blocked {
  lf_queue *q;
  lf_waiter *w;
  double timeout;
  int rc;
  uint32_t v;
  _Atomic int *order, step; /* where in the shared sequence it returned */
} blocked;

static void *put_thread(void *arg) {
  blocked *b = arg;
  lf_payload *p = item(b->v);
  b->rc = lf_queue_put(b->q, p, b->timeout, b->w);
  if (b->rc != 0) lf_payload_free(p);
  if (b->order) b->step = atomic_fetch_add(b->order, 1);
  return NULL;
}

static void *get_thread(void *arg) {
  blocked *b = arg;
  lf_payload *p;
  b->rc = lf_queue_get(b->q, &p, b->timeout, b->w, 0);
  if (b->rc == 0) b->v = value(p);
  if (b->order) b->step = atomic_fetch_add(b->order, 1);
  return NULL;
}

static void *join_thread(void *arg) {
  blocked *b = arg;
  b->rc = lf_queue_join(b->q, b->timeout, b->w);
  if (b->order) b->step = atomic_fetch_add(b->order, 1);
  return NULL;
}

/* A put on a full queue returns only after a get made room. */
static void test_bounded_put_blocks_until_get(void) {
  lf_queue *q = lf_queue_new(1);
  _Atomic int order = 0;
  ASSERT_EQ(lf_queue_put(q, item(1), 0, NULL), 0);
  blocked b = {.q = q, .timeout = -1, .v = 2, .order = &order};
  pthread_t t;
  pthread_create(&t, NULL, put_thread, &b);
  until_waiting(q, 1);
  int got_at = atomic_fetch_add(&order, 1);
  ASSERT_EQ(get_now(q), 1);
  pthread_join(t, NULL);
  ASSERT_EQ(b.rc, 0);
  ASSERT(b.step > got_at);
  ASSERT_EQ(get_now(q), 2);
  done_with(q);
}

static void test_timeouts(void) {
  lf_queue *q = lf_queue_new(1);
  lf_payload *p;
  double t0 = lf_now();
  ASSERT_EQ(lf_queue_get(q, &p, 0.05, NULL, 0), LF_EEMPTY);
  ASSERT(lf_now() - t0 >= 0.05);
  ASSERT_EQ(lf_queue_put(q, item(1), 0.05, NULL), 0);
  lf_payload *extra = item(2);
  t0 = lf_now();
  ASSERT_EQ(lf_queue_put(q, extra, 0.05, NULL), LF_EFULL);
  ASSERT(lf_now() - t0 >= 0.05);
  lf_payload_free(extra);
  ASSERT_EQ(lf_queue_join(q, 0.01, NULL), LF_ETIMEDOUT);
  ASSERT_EQ(get_now(q), 1);
  done_with(q);
}

/* join returns once task_done was called for every item, not before. */
static void test_join_waits_for_task_done(void) {
  lf_queue *q = lf_queue_new(0);
  _Atomic int order = 0;
  ASSERT_EQ(lf_queue_join(q, -1, NULL), 0); /* nothing unfinished */
  for (uint32_t i = 0; i < 3; i++) ASSERT_EQ(lf_queue_put(q, item(i), 0, NULL), 0);
  blocked b = {.q = q, .timeout = -1, .order = &order};
  pthread_t t;
  pthread_create(&t, NULL, join_thread, &b);
  for (uint32_t i = 0; i < 3; i++) ASSERT_EQ(get_now(q), i);
  until_waiting(q, 1);
  ASSERT_EQ(lf_queue_task_done(q), 0);
  ASSERT_EQ(lf_queue_task_done(q), 0);
  int last_at = atomic_fetch_add(&order, 1);
  ASSERT_EQ(lf_queue_task_done(q), 0);
  pthread_join(t, NULL);
  ASSERT_EQ(b.rc, 0);
  ASSERT(b.step > last_at);
  ASSERT_EQ(lf_queue_task_done(q), LF_EINVALSTATE);
  done_with(q);
}

/* Shutdown wakes every blocked get and put; items put before it can still
 * be taken, then gets fail too. */
static void test_shutdown_wakes_all(void) {
  lf_queue *empty = lf_queue_new(0), *full = lf_queue_new(1);
  ASSERT_EQ(lf_queue_put(full, item(7), 0, NULL), 0);
  blocked g[3], p[2];
  pthread_t tg[3], tp[2];
  for (int i = 0; i < 3; i++) {
    g[i] = (blocked){.q = empty, .timeout = -1};
    pthread_create(&tg[i], NULL, get_thread, &g[i]);
  }
  for (int i = 0; i < 2; i++) {
    p[i] = (blocked){.q = full, .timeout = -1, .v = 8};
    pthread_create(&tp[i], NULL, put_thread, &p[i]);
  }
  until_waiting(empty, 3);
  until_waiting(full, 2);
  lf_queue_shutdown(empty, 0);
  lf_queue_shutdown(full, 0);
  for (int i = 0; i < 3; i++) {
    pthread_join(tg[i], NULL);
    ASSERT_EQ(g[i].rc, LF_EQSHUTDOWN);
  }
  for (int i = 0; i < 2; i++) {
    pthread_join(tp[i], NULL);
    ASSERT_EQ(p[i].rc, LF_EQSHUTDOWN);
  }
  ASSERT(lf_queue_is_shutdown(full));
  ASSERT_EQ(get_now(full), 7);
  lf_payload *x;
  ASSERT_EQ(lf_queue_get(full, &x, -1, NULL, 0), LF_EQSHUTDOWN);
  lf_payload *late = item(9);
  ASSERT_EQ(lf_queue_put(empty, late, 0, NULL), LF_EQSHUTDOWN);
  lf_payload_free(late);
  lf_queue_shutdown(empty, 0); /* idempotent */
  lf_queue_unref(empty);
  done_with(full);
}

/* Immediate shutdown drops the items (and what they hold); join then waits
 * only for what was taken and not yet marked done. */
static void test_immediate_drops(void) {
  lf_queue *q = lf_queue_new(0), *inner = lf_queue_new(0);
  for (int i = 0; i < 3; i++) {
    lf_queue_ref(inner);
    lf_obj *o = lf_queue_obj(inner);
    ASSERT_EQ(lf_queue_put(q, lf_payload_new("x", 1, &o, 1, 0), 0, NULL), 0);
  }
  lf_payload *taken;
  ASSERT_EQ(lf_queue_get(q, &taken, 0, NULL, 0), 0);
  ASSERT_EQ(atomic_load(&lf_queue_obj(inner)->refs), 4);
  blocked b = {.q = q, .timeout = -1};
  pthread_t t;
  pthread_create(&t, NULL, join_thread, &b);
  until_waiting(q, 1);
  lf_queue_shutdown(q, 1);
  ASSERT_EQ(lf_queue_qsize(q), 0);
  ASSERT_EQ(atomic_load(&lf_queue_obj(inner)->refs), 2); /* two dropped */
  ASSERT_EQ(lf_queue_unfinished(q), 1);
  lf_payload *x;
  ASSERT_EQ(lf_queue_get(q, &x, -1, NULL, 0), LF_EQSHUTDOWN);
  lf_payload_free(taken);
  ASSERT_EQ(lf_queue_task_done(q), 0);
  pthread_join(t, NULL);
  ASSERT_EQ(b.rc, 0);
  /* With nothing taken, the immediate shutdown itself ends the join. */
  lf_queue *q2 = lf_queue_new(0);
  ASSERT_EQ(lf_queue_put(q2, item(1), 0, NULL), 0);
  b = (blocked){.q = q2, .timeout = -1};
  pthread_create(&t, NULL, join_thread, &b);
  until_waiting(q2, 1);
  lf_queue_shutdown(q2, 1);
  pthread_join(t, NULL);
  ASSERT_EQ(b.rc, 0);
  lf_queue_unref(q2);
  lf_queue_unref(inner);
  done_with(q);
}

static void test_kick_wakes_a_get(void) {
  lf_queue *q = lf_queue_new(0);
  blocked b = {.q = q, .timeout = -1, .w = lf_waiter_new()};
  pthread_t t;
  pthread_create(&t, NULL, get_thread, &b);
  until_waiting(q, 1);
  lf_waiter_kick(b.w);
  pthread_join(t, NULL);
  ASSERT_EQ(b.rc, LF_EKICKED);
  ASSERT_EQ(lf_queue_nwaiting(q), 0);
  lf_waiter_free(b.w);
  done_with(q);
}

typedef struct lone_arg {
  lf_queue *q;
  int rc;
} lone_arg;

static void *lone_get(void *arg) {
  lone_arg *a = arg;
  lf_payload *p;
  a->rc = lf_queue_get(a->q, &p, -1, NULL, 1);
  return NULL;
}

/* A get with no limit by the only holder can never end; one that starts
 * while another holds the queue fails once that holder lets go. */
static void test_lone_holder_deadlock(void) {
  lf_queue *q = lf_queue_new(0);
  lf_payload *p;
  ASSERT_EQ(lf_queue_get(q, &p, -1, NULL, 1), LF_EDEADLK);
  ASSERT_EQ(lf_queue_get(q, &p, 0.01, NULL, 1), LF_EEMPTY); /* timed: no */
  lf_queue_ref(q);
  lone_arg a = {.q = q};
  pthread_t t;
  pthread_create(&t, NULL, lone_get, &a);
  until_waiting(q, 1);
  lf_queue_unref(q);
  pthread_join(t, NULL);
  ASSERT_EQ(a.rc, LF_EDEADLK);
  done_with(q);
}

/* Every allocation failing in turn: no crash, no leak, the right code. */
static void test_out_of_memory(void) {
  for (long n = 1; n < 40; n++) {
    lf__alloc_test(n);
    lf_queue *q = lf_queue_new(0);
    if (q == NULL) continue;
    int ok = 1;
    for (uint32_t i = 0; i < 20 && ok; i++) {
      uint32_t v = i;
      lf_payload *p = lf_payload_new(&v, sizeof v, NULL, 0, 0);
      if (p == NULL) break;
      int rc = lf_queue_put(q, p, -1, NULL);
      if (rc != 0) {
        ASSERT_EQ(rc, LF_ENOMEM);
        lf_payload_free(p);
        ok = 0;
      }
    }
    lf_payload *p;
    int rc = lf_queue_get(q, &p, 0.001, NULL, 0); /* may need a waiter */
    ASSERT(rc == 0 || rc == LF_EEMPTY || rc == LF_ENOMEM);
    lf_payload_free(p);
    lf_queue_unref(q);
    ASSERT_EQ(lf__alloc_live(), 0);
  }
  ASSERT_EQ(lf_live_queues(), 0);
}

int main(int argc, char **argv) {
  static const test tests[] = {
      {"fifo_and_nowait", test_fifo_and_nowait},
      {"ring_grows_in_order", test_ring_grows_in_order},
      {"many_producers_consumers", test_many_producers_consumers},
      {"bounded_many", test_bounded_many},
      {"bounded_put_blocks_until_get", test_bounded_put_blocks_until_get},
      {"timeouts", test_timeouts},
      {"join_waits_for_task_done", test_join_waits_for_task_done},
      {"shutdown_wakes_all", test_shutdown_wakes_all},
      {"immediate_drops", test_immediate_drops},
      {"kick_wakes_a_get", test_kick_wakes_a_get},
      {"lone_holder_deadlock", test_lone_holder_deadlock},
      {"out_of_memory", test_out_of_memory},
      {"stress_million", test_stress_million},
  };
  return run_tests(tests, (int)(sizeof tests / sizeof tests[0]), argc, argv,
                   "queue");
}
