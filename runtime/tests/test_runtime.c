/*
 * test_runtime.c -- unit tests of the runtime, in libuv's manner: one list
 * of tests, each run in a forked child with a time limit, so a hang or a
 * crash fails that test alone. Every test ends by checking that no pool and
 * no worker thread is left.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../internal.h" /* the slab and a future's room */
#include "lf.h"

#include "test.h"

/* ---- a tiny host: a task payload is an int and an op ---------------------- */

enum { OP_ADD1, OP_BLOCK, OP_WAIT_SELF, OP_BIG };

typedef struct task {
  int op, value;
  lf_future *other; /* OP_WAIT_SELF: submitted from the task */
} task;

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open, blocked;
static lf_pool *self_pool;
static int deadlock_seen;
static char deadlock_why[400];

static lf_payload *int_payload(int v) { return lf_payload_new(&v, sizeof v, NULL, 0, 0); }
static int payload_int(const lf_payload *p) {
  int v;
  memcpy(&v, p->data, sizeof v);
  return v;
}
static lf_payload *task_payload(int op, int value) {
  task t = {op, value, NULL};
  return lf_payload_new(&t, sizeof t, NULL, 0, 0);
}

static void *h_init(void *ud, const char *name) {
  return strstr(name, "bad") ? NULL : ud ? ud : (void *)1;
}
static lf_payload *h_run(void *w, lf_future *f, lf_payload *p, int *failed) {
  task t;
  memcpy(&t, p->data, sizeof t);
  lf_payload_free(p);
  *failed = 0;
  if (t.op == OP_BLOCK) {
    pthread_mutex_lock(&gate_mu);
    blocked++;
    pthread_cond_broadcast(&gate_cv);
    while (!gate_open) pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
  } else if (t.op == OP_WAIT_SELF) {
    lf_future *g = lf_future_new();
    lf_future_set_task(g, task_payload(OP_ADD1, 0));
    ASSERT_EQ(lf_pool_submit(self_pool, g), 0);
    lf_waiter *wt = lf_waiter_new();
    lf_waiter_watch(wt, g);
    int rc = lf_waiter_wait(wt, -1, g, deadlock_why, sizeof deadlock_why);
    deadlock_seen = rc == LF_EDEADLK;
    lf_waiter_free(wt);
    lf_future_cancel(g);
    lf_future_unref(g);
  }
  int v[LF_FUTURE_ROOM] = {t.value + 1}; /* OP_BIG: too big for the room */
  return lf_future_payload_new(f, v, t.op == OP_BIG ? sizeof v : sizeof v[0],
                               NULL, 0, 0);
}
static _Atomic int finis; /* worker states closed */
static void h_fini(void *w) { finis++; }
static lf_payload *h_broken(void *ud) { return int_payload(-1); }
static const lf_pool_hooks hooks = {h_init, h_run, h_fini, NULL, h_broken};

static void open_gate(void) {
  pthread_mutex_lock(&gate_mu);
  gate_open = 1;
  pthread_cond_broadcast(&gate_cv);
  pthread_mutex_unlock(&gate_mu);
}

static void wait_blocked(int n) {
  pthread_mutex_lock(&gate_mu);
  while (blocked < n) pthread_cond_wait(&gate_cv, &gate_mu);
  pthread_mutex_unlock(&gate_mu);
}

static lf_future *submit(lf_pool *p, int op, int v) {
  lf_future *f = lf_future_new();
  lf_future_set_task(f, task_payload(op, v));
  ASSERT_EQ(lf_pool_submit(p, f), 0);
  return f;
}

static void wait_done(lf_future *f) {
  lf_waiter *w = lf_waiter_new();
  lf_waiter_watch(w, f);
  ASSERT_EQ(lf_waiter_wait(w, 10, NULL, NULL, 0), 0);
  lf_waiter_free(w);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_future_states(void) {
  lf_future *f = lf_future_new();
  ASSERT_EQ(lf_future_state(f), LF_PENDING);
  ASSERT_EQ(lf_future_set_running(f), 0);
  ASSERT_EQ(lf_future_cancel(f), 0); /* running: cannot cancel */
  ASSERT_EQ(lf_future_finish(f, int_payload(7), 0), 0);
  ASSERT_EQ(lf_future_finish(f, int_payload(8), 0), LF_EINVALSTATE);
  int failed = 1;
  ASSERT_EQ(payload_int(lf_future_result(f, &failed)), 7);
  ASSERT_EQ(failed, 0);
  lf_future_unref(f);

  lf_future *g = lf_future_new();
  ASSERT_EQ(lf_future_cancel(g), 1);
  ASSERT_EQ(lf_future_cancel(g), 1);
  ASSERT_EQ(lf_future_set_running(g), LF_ECANCELLED);
  ASSERT(lf_future_result(g, NULL) == NULL);
  lf_future_unref(g);
}

static int hook_calls[4], nhook;
static void hook(void *arg, lf_future *f) {
  if (f) hook_calls[nhook++] = (int)(intptr_t)arg;
}

static void test_hooks_in_order(void) {
  lf_future *f = lf_future_new();
  for (int i = 1; i <= 3; i++)
    ASSERT_EQ(lf_future_add_hook(f, hook, (void *)(intptr_t)i), 0);
  lf_future_finish(f, int_payload(0), 0);
  ASSERT_EQ(nhook, 3);
  ASSERT_EQ(hook_calls[0] * 100 + hook_calls[1] * 10 + hook_calls[2], 123);
  ASSERT_EQ(lf_future_add_hook(f, hook, NULL), 1); /* done: not added */
  lf_future_unref(f);
}

/* A tally counts each future once, however it ends; one dropped
 * unfinished counts as cancelled, one whose tally was taken back not. */
static void test_tally(void) {
  lf_tally t = {0};
  lf_future *a = lf_future_new(), *b = lf_future_new(), *c = lf_future_new();
  lf_future *d = lf_future_new(), *e = lf_future_new();
  lf_future_tally(a, &t);
  lf_future_tally(b, &t);
  lf_future_tally(c, &t);
  lf_future_tally(d, &t);
  lf_future_finish(a, int_payload(1), 0);
  lf_future_finish(b, int_payload(2), 1);
  lf_future_cancel(c);
  lf_future_cancel(c);
  lf_future_tally(e, &t);
  lf_future_tally(e, NULL); /* taken back: never counted */
  lf_future_finish(e, int_payload(3), 0);
  ASSERT_EQ(t.done, 1);
  ASSERT_EQ(t.failed, 1);
  ASSERT_EQ(t.cancelled, 1);
  lf_future_unref(d); /* never finished */
  ASSERT_EQ(t.cancelled, 2);
  lf_future_unref(a);
  lf_future_unref(b);
  lf_future_unref(c);
  lf_future_unref(e);
  ASSERT_EQ(t.done + t.failed + t.cancelled, 4);
}

static void test_waiter_order_and_timeout(void) {
  lf_future *a = lf_future_new(), *b = lf_future_new(), *c = lf_future_new();
  lf_future_finish(c, int_payload(3), 0);
  lf_waiter *w = lf_waiter_new();
  lf_waiter_watch(w, a);
  lf_waiter_watch(w, b);
  lf_waiter_watch(w, c); /* already done: recorded at once */
  lf_future *x = lf_waiter_pop(w);
  ASSERT(x == c);
  lf_future_unref(x);
  ASSERT_EQ(lf_waiter_wait(w, 0.01, NULL, NULL, 0), LF_ETIMEDOUT);
  lf_future_cancel(b);
  lf_future_finish(a, int_payload(1), 0);
  ASSERT_EQ(lf_waiter_wait(w, 1, NULL, NULL, 0), 0);
  x = lf_waiter_pop(w);
  ASSERT(x == b); /* cancellation counts as completion */
  lf_future_unref(x);
  x = lf_waiter_pop(w);
  ASSERT(x == a);
  lf_future_unref(x);
  lf_waiter_free(w);
  lf_future_unref(a);
  lf_future_unref(b);
  lf_future_unref(c);
}

static void test_pool_runs_fifo_lazily(void) {
  int err;
  lf_pool *p = lf_pool_new(4, "T", &hooks, NULL, &err);
  ASSERT(p != NULL);
  ASSERT_EQ(lf_pool_nworkers(p), 0);
  for (int i = 0; i < 50; i++) {
    lf_future *f = submit(p, OP_ADD1, i);
    wait_done(f);
    ASSERT_EQ(payload_int(lf_future_result(f, NULL)), i + 1);
    lf_future_unref(f);
  }
  /* Sequential submit/result never needs a second worker. */
  ASSERT_EQ(lf_pool_nworkers(p), 1);
  ASSERT_EQ(lf_pool_shutdown(p, 1, 0), 0);
  lf_future *f = lf_future_new();
  lf_future_set_task(f, task_payload(OP_ADD1, 0));
  ASSERT_EQ(lf_pool_submit(p, f), LF_ESHUTDOWN);
  lf_future_unref(f);
  lf_pool_unref(p);
}

static void test_shutdown_cancels_queued(void) {
  int err;
  lf_pool *p = lf_pool_new(1, "T", &hooks, NULL, &err);
  lf_future *blocker = submit(p, OP_BLOCK, 0);
  wait_blocked(1);
  lf_future *queued[5];
  for (int i = 0; i < 5; i++) queued[i] = submit(p, OP_ADD1, i);
  ASSERT_EQ(lf_pool_shutdown(p, 0, 1), 0);
  for (int i = 0; i < 5; i++) {
    ASSERT_EQ(lf_future_state(queued[i]), LF_CANCELLED);
    lf_future_unref(queued[i]);
  }
  open_gate();
  ASSERT_EQ(lf_pool_shutdown(p, 1, 0), 0);
  ASSERT_EQ(lf_future_state(blocker), LF_FINISHED);
  lf_future_unref(blocker);
  lf_pool_unref(p);
}

/* lf_pool_stopped: done once every worker has left its loop, not before;
 * the join that follows waits for its fini. */
static void test_stopped_future(void) {
  int err;
  lf_pool *p = lf_pool_new(1, "T", &hooks, NULL, &err);
  lf_future *blocker = submit(p, OP_BLOCK, 0);
  wait_blocked(1);
  ASSERT(lf_pool_stopped(p) == NULL); /* still running */
  ASSERT_EQ(lf_pool_shutdown(p, 0, 0), 0);
  lf_future *s = lf_pool_stopped(p);
  ASSERT(s != NULL);
  ASSERT(lf_pool_stopped(p) == NULL); /* one waiter at a time */
  ASSERT(!lf_future_done(s));
  ASSERT_EQ(finis, 0);
  open_gate();
  wait_done(s);
  ASSERT_EQ(lf_future_state(blocker), LF_FINISHED);
  lf_future *again = lf_pool_stopped(p); /* stopped already: done now */
  ASSERT(again != NULL && lf_future_done(again));
  ASSERT_EQ(lf_pool_shutdown(p, 1, 0), 0);
  ASSERT_EQ(finis, 1);
  lf_future_unref(again);
  lf_future_unref(s);
  lf_future_unref(blocker);
  lf_pool_unref(p);
}

static void test_broken_initializer(void) {
  int err;
  lf_pool *p = lf_pool_new(1, "bad", &hooks, NULL, &err);
  lf_future *f = submit(p, OP_ADD1, 1);
  wait_done(f);
  int failed;
  ASSERT_EQ(payload_int(lf_future_result(f, &failed)), -1);
  ASSERT_EQ(failed, 1);
  ASSERT_EQ(lf_pool_status(p), LF_POOL_BROKEN);
  lf_future *g = lf_future_new();
  lf_future_set_task(g, task_payload(OP_ADD1, 0));
  ASSERT_EQ(lf_pool_submit(p, g), LF_EBROKEN);
  lf_future_unref(g);
  lf_future_unref(f);
  lf_pool_shutdown(p, 1, 0);
  lf_pool_unref(p);
}

/* The one-worker pool whose task waits on a task it submitted to it; the
 * message names the future as the host describes it, if it does. */
static void deadlock_own_pool(const char *named) {
  int err;
  self_pool = lf_pool_new(1, "Solo", &hooks, NULL, &err);
  lf_future *f = submit(self_pool, OP_WAIT_SELF, 0);
  wait_done(f);
  ASSERT(deadlock_seen);
  char want[64];
  snprintf(want, sizeof want, "worker 'Solo_0' waits on %s", named);
  ASSERT(strstr(deadlock_why, want) == deadlock_why);
  ASSERT(strstr(deadlock_why, "queued on its own pool, which has no other worker"));
  lf_future_unref(f);
  lf_pool_shutdown(self_pool, 1, 0);
  lf_pool_unref(self_pool);
}

static int describe(const lf_future *f, int state, char *buf, size_t len) {
  return snprintf(buf, len, "[%s]", state == LF_PENDING ? "pending" : "?");
}

static void test_deadlock_own_pool(void) { deadlock_own_pool("future 0x"); }
static void test_deadlock_described(void) {
  lf_set_describe(describe);
  deadlock_own_pool("[pending] queued");
  lf_set_describe(NULL);
}

static void test_no_deadlock_with_room(void) {
  int err;
  self_pool = lf_pool_new(2, "Duo", &hooks, NULL, &err);
  lf_future *f = submit(self_pool, OP_WAIT_SELF, 0);
  wait_done(f);
  ASSERT(!deadlock_seen); /* a second worker can run the inner task */
  lf_future_unref(f);
  lf_pool_shutdown(self_pool, 1, 0);
  lf_pool_unref(self_pool);
}

static void test_payload_refs(void) {
  lf_future *f = lf_future_new();
  lf_obj *o = lf_future_obj(f);
  lf_future_ref(f);
  lf_payload *p = lf_payload_new("ab", 2, &o, 1, 0);
  ASSERT_EQ(p->len, 2);
  ASSERT(memcmp(p->data, "ab", 2) == 0);
  lf_payload_free(p); /* drops the reference it was given */
  lf_future_unref(f);
  ASSERT_EQ(lf_strerror(LF_ETIMEDOUT)[0], 't');
  ASSERT(strcmp(lf_err_name(LF_EDEADLK), "LF_EDEADLK") == 0);
}

/* A big payload's block is kept when freed and serves the next big one
 * (its pages stay mapped); an adopted block becomes the payload in place,
 * objects appended; more than the cache keeps is freed. */
static void test_big_blocks(void) {
  size_t n = 3 * LF_BIG_MIN, cap;
  char *bytes = malloc(n);
  ASSERT(bytes != NULL);
  memset(bytes, 'x', n);
  lf_payload *p = lf_payload_new(bytes, n, NULL, 0, 0);
  ASSERT(p != NULL && p->len == n && p->data[n - 1] == 'x');
  void *at = p;
  lf_payload_free(p);
  lf_payload *q = lf_payload_new(bytes, n - 100, NULL, 0, 0);
  ASSERT(q == at); /* the same block, again */
  lf_payload_free(q);
  char *block = lf_big_take(LF_PAYLOAD_HEAD + n, &cap);
  ASSERT(block == at && cap >= LF_PAYLOAD_HEAD + n);
  memcpy(block + LF_PAYLOAD_HEAD, bytes, n);
  lf_future *f = lf_future_new();
  lf_obj *o = lf_future_obj(f);
  lf_future_ref(f);
  lf_payload *a = lf_payload_adopt(block, n, &o, 1, 3);
  ASSERT((void *)a == block && a->len == n && a->flags == 3);
  ASSERT(a->data[0] == 'x' && lf_payload_objs(a)[0] == o);
  lf_future *g = lf_future_new_with(a);
  ASSERT(g != NULL);
  lf_future_unref(g); /* frees the task: its reference to f goes */
  lf_future_unref(f);
  void *many[8];
  for (int i = 0; i < 8; i++) many[i] = lf_big_take(32 * LF_BIG_MIN, &cap);
  for (int i = 0; i < 8; i++) lf_big_give(many[i]); /* 2 kept, 6 freed */
  lf_big_give(NULL);
  free(bytes);
}

static int in_cell(const lf_future *f, const void *p) {
  return (const char *)p >= (const char *)f &&
         (const char *)p < (const char *)f + LF__CELL_SIZE;
}

/* A small task and a small result live in the future's own room, in turn;
 * what does not fit, or finds the room taken, is allocated. */
static void test_future_room(void) {
  lf_future *ref = lf_future_new();
  lf_obj *o = lf_future_obj(ref);
  lf_future_ref(ref);
  lf_future *f = lf_future_new_task("abc", 3, &o, 1, 0x7fff);
  lf_payload *tp;
  ASSERT_EQ(lf_future_start(f, &tp), 0);
  ASSERT(in_cell(f, tp));
  ASSERT_EQ(tp->len, 3);
  ASSERT_EQ(tp->flags & LF_PAYLOAD_HOSTFLAGS, 0x7fff);
  ASSERT(memcmp(tp->data, "abc", 3) == 0);
  ASSERT(lf_payload_objs(tp)[0] == o);
  lf_payload *early = lf_future_payload_new(f, "x", 1, NULL, 0, 0);
  ASSERT(!in_cell(f, early)); /* the tp still holds the room */
  lf_payload_free(early);
  lf_payload_free(tp); /* gives the room back and drops its reference */
  lf_payload *res = lf_future_payload_new(f, "result", 6, NULL, 0, 1);
  ASSERT(in_cell(f, res));
  ASSERT_EQ(lf_future_finish(f, res, 0), 0);
  int failed = 1;
  const lf_payload *got = lf_future_result(f, &failed);
  ASSERT(got == res && failed == 0 && memcmp(got->data, "result", 6) == 0);
  lf_future_unref(f);

  char big[LF_FUTURE_ROOM];
  memset(big, 7, sizeof big);
  lf_future *g = lf_future_new_task(big, sizeof big, NULL, 0, 0);
  ASSERT_EQ(lf_future_start(g, &tp), 0);
  ASSERT(!in_cell(g, tp));
  ASSERT(memcmp(tp->data, big, sizeof big) == 0);
  lf_payload_free(tp);
  res = lf_future_payload_new(g, big, sizeof big, NULL, 0, 0);
  ASSERT(!in_cell(g, res));
  lf_future_finish(g, res, 0);
  lf_future_unref(g);
  ASSERT_EQ(lf_future_cancel(ref), 1); /* its last holder is the test */
  lf_future_unref(ref);
}

/* Cells are distinct, reused once given back, spread over several chunks
 * when many live at once, and the chunks go when their cells do. */
static void test_slab_cells(void) {
  enum { N = 120000, CELL = 40 };
  lf__slab *s = lf__slab_new(CELL);
  ASSERT(s != NULL);
  unsigned **cells = malloc(N * sizeof *cells);
  for (unsigned i = 0; i < N; i++) {
    cells[i] = lf__slab_take(s);
    ASSERT(cells[i] != NULL && (uintptr_t)cells[i] % 8 == 0);
    for (unsigned j = 0; j < CELL / sizeof(unsigned); j++) cells[i][j] = i;
  }
  for (unsigned i = 0; i < N; i++)
    for (unsigned j = 0; j < CELL / sizeof(unsigned); j++)
      ASSERT_EQ(cells[i][j], i);
  ASSERT(lf__slab_chunks(s) >= 2); /* 2 MiB hold 52,000 cells of 40 bytes */
  lf__slab_give(s, cells[N - 1]);
  ASSERT(lf__slab_take(s) == cells[N - 1]);
  for (unsigned i = 0; i < N; i++) lf__slab_give(s, cells[i]);
  ASSERT_EQ(lf__slab_chunks(s), 1); /* the one cells come from stays */
  free(cells);
  lf__slab_free(s);
}

static lf__slab *shared_slab;

static void *churn(void *arg) {
  uintptr_t id = (uintptr_t)arg;
  uintptr_t *mine[64];
  for (int round = 0; round < 2000; round++) {
    for (int i = 0; i < 64; i++) {
      mine[i] = lf__slab_take(shared_slab);
      mine[i][0] = id;
      mine[i][1] = (uintptr_t)i;
    }
    for (int i = 0; i < 64; i++) {
      ASSERT(mine[i][0] == id && mine[i][1] == (uintptr_t)i);
      lf__slab_give(shared_slab, mine[i]);
    }
  }
  return NULL;
}

/* Threads that take and give back at once never get the same cell. */
static void test_slab_threads(void) {
  shared_slab = lf__slab_new(16);
  pthread_t t[4];
  for (uintptr_t i = 0; i < 4; i++) pthread_create(&t[i], NULL, churn, (void *)i);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  ASSERT_EQ(lf__slab_chunks(shared_slab), 1);
  lf__slab_free(shared_slab);
}

/* Submits racing a shutdown, on the lock-free way (the pool has all its
 * workers): each submitter goes on until it is refused, and every future
 * taken must end done, run or cancelled, none left pending in a closed
 * stack. A submitter that fills its array waits for the shutdown. */
enum { RACERS = 4, RACE_MAX = 20000 };
static lf_pool *race_pool;
static _Atomic int race_accepted;
typedef struct racer {
  lf_future *fs[RACE_MAX];
  int n, refused;
} racer;
static racer racers[RACERS];

static void *race_submits(void *arg) {
  racer *r = arg;
  for (;;) {
    if (r->n == RACE_MAX) /* full: the next submit after the shutdown */
      while (lf_pool_status(race_pool) == LF_POOL_RUNNING) sched_yield();
    lf_future *f = lf_future_new();
    lf_future_set_task(f, task_payload(OP_ADD1, r->n));
    int rc = lf_pool_submit(race_pool, f);
    if (rc != 0) {
      ASSERT_EQ(rc, LF_ESHUTDOWN);
      ASSERT_EQ(lf_future_state(f), LF_PENDING);
      lf_future_unref(f);
      r->refused = 1;
      break;
    }
    r->fs[r->n++] = f;
    race_accepted++;
  }
  return NULL;
}

static void test_submit_races_shutdown(void) {
  int err;
  race_pool = lf_pool_new(2, "T", &hooks, NULL, &err);
  /* Two at once start the second worker unless the first was quicker. */
  for (int i = 0; i < 1000 && lf_pool_nworkers(race_pool) < 2; i++) {
    lf_future *a = submit(race_pool, OP_ADD1, i), *b = submit(race_pool, OP_ADD1, i);
    wait_done(a);
    wait_done(b);
    lf_future_unref(a);
    lf_future_unref(b);
  }
  ASSERT_EQ(lf_pool_nworkers(race_pool), 2);
  pthread_t t[RACERS];
  for (int i = 0; i < RACERS; i++)
    pthread_create(&t[i], NULL, race_submits, &racers[i]);
  while (race_accepted < 1000) sched_yield();
  ASSERT_EQ(lf_pool_shutdown(race_pool, 1, 1), 0);
  int refused = 0;
  for (int i = 0; i < RACERS; i++) {
    pthread_join(t[i], NULL);
    refused += racers[i].refused;
    for (int k = 0; k < racers[i].n; k++) {
      int st = lf_future_state(racers[i].fs[k]);
      ASSERT(st == LF_FINISHED || st == LF_CANCELLED);
      lf_future_unref(racers[i].fs[k]);
    }
  }
  ASSERT_EQ(refused, RACERS);
  lf_pool_unref(race_pool);
}

static void count_hook(void *arg, lf_future *f) { ++*(int *)arg; }

/* A future finished with no result (its maker ran out of memory) holds the
 * static out-of-memory outcome, as failed; freeing that is harmless. */
static void test_finish_without_result(void) {
  lf_future *f = lf_future_new();
  ASSERT_EQ(lf_future_finish(f, NULL, 0), 0);
  int failed = 0;
  ASSERT(lf_future_result(f, &failed) == lf_payload_oom());
  ASSERT_EQ(failed, 1);
  lf_future_unref(f);
  lf_payload_free(lf_payload_oom());
  ASSERT_EQ(lf_payload_oom()->len, 0);
}

/* One submit-run-result cycle of a future and a pool, every step allowed
 * to fail for want of memory: each failure must be reported, a submitted
 * future must finish with a result (its own, or the out-of-memory outcome),
 * and nothing may leak or hang. `op` OP_BIG makes a result that has to be
 * allocated. */
static void oom_scenario(int op) {
  int err, hooked = 0;
  char big[LF_FUTURE_ROOM * 2] = {0}; /* too big for the room: allocated */
  task t = {op, 41, NULL};
  memcpy(big, &t, sizeof t);
  lf_future *f = lf_future_new_task(big, sizeof big, NULL, 0, 0);
  if (f == NULL) return;
  int hook_rc = lf_future_add_hook(f, count_hook, &hooked);
  ASSERT(hook_rc == 0 || hook_rc == LF_ENOMEM);
  lf_pool *p = lf_pool_new(2, "oom", &hooks, NULL, &err);
  ASSERT(p != NULL || err == LF_ENOMEM);
  int rc = p ? lf_pool_submit(p, f) : LF_ENOMEM;
  ASSERT(rc == 0 || rc == LF_ENOMEM);
  lf_waiter *w = rc == 0 ? lf_waiter_new() : NULL;
  if (w && lf_waiter_watch(w, f) == 0)
    ASSERT_EQ(lf_waiter_wait(w, -1, f, NULL, 0), 0);
  lf_waiter_free(w);
  if (p) {
    lf_pool_shutdown(p, 1, 0); /* drains the queue: f is done */
    lf_pool_unref(p);
  }
  if (rc == 0) {
    ASSERT_EQ(lf_future_state(f), LF_FINISHED);
    int failed;
    const lf_payload *res = lf_future_result(f, &failed);
    ASSERT(res != NULL);
    if (failed) ASSERT(res == lf_payload_oom());
    else ASSERT_EQ(payload_int(res), 42);
    ASSERT_EQ(hooked, hook_rc == 0);
  }
  lf_future_unref(f);
}

/* Allocation n fails, for every n the scenario reaches. */
static void oom_each(int op) {
  long n = 1;
  for (; n < 1000; n++) {
    lf__alloc_test(n);
    oom_scenario(op);
    ASSERT_EQ(lf_live_pools(), 0);
    ASSERT_EQ(lf_live_threads(), 0);
    ASSERT_EQ(lf__alloc_live(), 0);
    if (!lf__alloc_reached()) break; /* it ran whole: n is past its end */
  }
  ASSERT(n > 5 && n < 1000);
  fprintf(stderr, "  (%ld allocations, each failed in turn)\n", n - 1);
  lf__alloc_test(0);
}

/* A worker whose state cannot be built for want of memory breaks nothing:
 * it tries again for each task it takes, fails that task with the
 * out-of-memory outcome while it cannot, and runs the next once it can. */
static int nomem_inits;
static void *h_init_nomem(void *ud, const char *name) {
  return nomem_inits++ < 2 ? lf_pool_nomem() : (void *)1;
}
static void test_worker_without_memory(void) {
  lf_pool_hooks h = hooks;
  h.init = h_init_nomem;
  int err, failed;
  lf_pool *p = lf_pool_new(1, "nomem", &h, NULL, &err);
  lf_future *f = submit(p, OP_ADD1, 1);
  wait_done(f);
  ASSERT(lf_future_result(f, &failed) == lf_payload_oom());
  ASSERT_EQ(failed, 1);
  lf_future *g = submit(p, OP_ADD1, 2);
  wait_done(g);
  ASSERT_EQ(payload_int(lf_future_result(g, &failed)), 3);
  ASSERT_EQ(failed, 0);
  ASSERT_EQ(lf_pool_status(p), LF_POOL_RUNNING);
  ASSERT_EQ(nomem_inits, 3); /* at start, for f, for g */
  ASSERT_EQ(lf_pool_nworkers(p), 1);
  lf_pool_shutdown(p, 1, 0);
  lf_pool_unref(p);
  lf_future_unref(f);
  lf_future_unref(g);
}

static void test_out_of_memory(void) { oom_each(OP_ADD1); }
static void test_out_of_memory_big_result(void) { oom_each(OP_BIG); }

static const test tests[] = {
    {"future_states", test_future_states},
    {"hooks_in_order", test_hooks_in_order},
    {"tally", test_tally},
    {"waiter_order_and_timeout", test_waiter_order_and_timeout},
    {"pool_runs_fifo_lazily", test_pool_runs_fifo_lazily},
    {"shutdown_cancels_queued", test_shutdown_cancels_queued},
    {"submit_races_shutdown", test_submit_races_shutdown},
    {"stopped_future", test_stopped_future},
    {"broken_initializer", test_broken_initializer},
    {"deadlock_own_pool", test_deadlock_own_pool},
    {"deadlock_described", test_deadlock_described},
    {"no_deadlock_with_room", test_no_deadlock_with_room},
    {"payload_refs", test_payload_refs},
    {"big_blocks", test_big_blocks},
    {"future_room", test_future_room},
    {"slab_cells", test_slab_cells},
    {"slab_threads", test_slab_threads},
    {"finish_without_result", test_finish_without_result},
    {"worker_without_memory", test_worker_without_memory},
    {"out_of_memory", test_out_of_memory},
    {"out_of_memory_big_result", test_out_of_memory_big_result},
};

int main(int argc, char **argv) {
  return run_tests(tests, (int)(sizeof tests / sizeof tests[0]), argc, argv,
                   "runtime");
}
