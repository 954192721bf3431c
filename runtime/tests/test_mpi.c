/*
 * test_mpi.c -- the process pool's core over the MPI transport (lf_mpi.h),
 * run as one job: `mpiexec -n 3 build/test_mpi`. Rank 0 is the client and
 * runs the tests in order; ranks 1 and 2 serve its pools with a tiny C
 * worker (a task is an int, a result the int plus one and the rank that
 * computed it). A pool's hello says how its workers behave, so a test can
 * make them fail their initializer or break the protocol on purpose.
 * MPI cannot run under fork(), so the tests are not isolated in children:
 * the first failure ends the job (mpiexec then exits non-zero).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../mpi_link.h" /* to send what no worker of ours would */
#include "lf_mpi.h"
#include "test.h"

static const lf_mpi *M;
static int rank, size;

typedef struct answer {
  int value, rank;
} answer;

/* ---- the worker ranks --------------------------------------------------------- */

typedef struct served {
  uint32_t pool;
  char mode[16];
  uint32_t received;
} served;

static served *find(served *s, int n, uint32_t pool) {
  for (int i = 0; i < n; i++)
    if (s[i].pool == pool) return &s[i];
  return NULL;
}

/* Answers task id of pool as its mode says: a mode that breaks the
 * protocol does it once, with its first task (the answers to the others
 * then reach a broken pool, which drops them). */
static void answer_task(const lf_mpi_msg *m, served *s) {
  int v;
  ASSERT_EQ(m->data->len, sizeof v);
  memcpy(&v, m->data->data, sizeof v);
  if (s->received > 1) {
    answer a = {v + 1, rank};
    M->reply(m->from, s->pool, m->id, lf_payload_new(&a, sizeof a, NULL, 0, 0), 0);
    return;
  }
  if (strcmp(s->mode, "unknown") == 0) { /* a kind no worker sends */
    ASSERT_EQ(lf__mpi_post(m->from, 99, s->pool, m->id, 0, 0, NULL, 0), 0);
    return;
  }
  if (strcmp(s->mode, "short") == 0) { /* shorter than a header */
    LF__MPI_LOCK();
    lf__mpimsg *x = lf__mpi_msg(m->from, T_RESULT, NULL, NULL, 0);
    x->len = 3;
    lf__mpi_queue_locked(x);
    LF__MPI_UNLOCK();
    return;
  }
  uint32_t id = strcmp(s->mode, "wrongid") == 0 ? m->id + 1000 : m->id;
  answer a = {v + 1, rank};
  ASSERT_EQ(M->reply(m->from, s->pool, id,
                     lf_payload_new(&a, sizeof a, NULL, 0, 0), 0),
            0);
}

/* The serve function: on the MPI thread, one message at a time. */
static int serve_one(void *ud, lf_mpi_msg *m) {
  served *s = ud; /* 64 of them, s[0].received counting the pools */
  served *p = find(s + 1, (int)s[0].received, m->pool);
  int more = 1;
  switch (m->kind) {
    case LF_MPI_HELLO:
      ASSERT(s[0].received < 63);
      p = &s[1 + s[0].received++];
      p->pool = m->pool;
      p->received = 0;
      snprintf(p->mode, sizeof p->mode, "%.*s", (int)m->data->len,
               m->data->data);
      if (strcmp(p->mode, "fail") == 0) M->reply_initfail(m->from, m->pool);
      else M->reply_ready(m->from, m->pool);
      break;
    case LF_MPI_TASK:
      ASSERT(p != NULL);
      p->received++;
      answer_task(m, p);
      break;
    case LF_MPI_BYE:
      ASSERT(p != NULL);
      M->reply_bye(m->from, m->pool, p->received);
      break;
    case LF_MPI_DROP: break;
    case LF_MPI_EXIT: more = 0; break;
    default: ASSERT(0);
  }
  lf_payload_free(m->data);
  return more;
}

static void serve(void) {
  static served s[64];
  ASSERT_EQ(M->serve(serve_one, s), 0);
}

/* ---- the client --------------------------------------------------------------- */

static lf_payload *broken(void *ud, int cause, const char *detail) {
  answer a = {-cause, -1};
  return lf_payload_new(&a, sizeof a, NULL, 0, 0);
}

static const lf_proc_hooks hooks = {NULL, broken, NULL, NULL};

static lf_procpool *new_pool(size_t max, const char *mode) {
  lf_proc_config cfg = {.max_workers = max, .worker_path = "",
                        .hello = mode, .hello_len = strlen(mode)};
  int err;
  lf_procpool *p = lf_mpipool_new(M, &cfg, &hooks, NULL, &err);
  ASSERT(p != NULL);
  return p;
}

static lf_future *submit(lf_procpool *p, int v) {
  lf_future *f = lf_future_new();
  lf_future_set_task(f, lf_payload_new(&v, sizeof v, NULL, 0, 0));
  ASSERT_EQ(lf_procpool_submit(p, f), 0);
  return f;
}

static answer result(lf_future *f) {
  lf_waiter *w = lf_waiter_new();
  ASSERT(lf_waiter_watch(w, f) == 0);
  ASSERT_EQ(lf_waiter_wait(w, 30, NULL, NULL, 0), 0);
  lf_waiter_free(w);
  ASSERT_EQ(lf_future_state(f), LF_FINISHED);
  answer a;
  memcpy(&a, lf_future_result(f, NULL)->data, sizeof a);
  lf_future_unref(f);
  return a;
}

static void test_results_from_every_rank(void) {
  lf_procpool *p = new_pool((size_t)size - 1, "ok");
  lf_future *fs[200];
  for (int i = 0; i < 200; i++) fs[i] = submit(p, i);
  int seen[16] = {0};
  for (int i = 0; i < 200; i++) {
    answer a = result(fs[i]);
    ASSERT_EQ(a.value, i + 1);
    ASSERT(a.rank > 0 && a.rank < size);
    seen[a.rank] = 1;
  }
  for (int r = 1; r < size; r++) ASSERT_EQ(seen[r], 1);
  ASSERT_EQ(lf_procpool_nworkers(p), (size_t)size - 1);
  lf_procpool_shutdown(p, 1, 0);
  ASSERT_EQ(lf_procpool_nworkers(p), 0); /* every rank said goodbye */
  lf_procpool_unref(p);
}

/* A pool's workers are distinct ranks: one more than there are finds
 * none, and the others do the work. */
static void test_more_workers_than_ranks(void) {
  lf_procpool *p = new_pool((size_t)size + 3, "ok");
  lf_future *fs[20];
  for (int i = 0; i < 20; i++) fs[i] = submit(p, i);
  for (int i = 0; i < 20; i++) ASSERT_EQ(result(fs[i]).value, i + 1);
  ASSERT_EQ(lf_procpool_nworkers(p), (size_t)size - 1);
  lf_procpool_shutdown(p, 1, 0);
  lf_procpool_unref(p);
}

/* The pool breaks with `cause`; its futures fail, none stays pending. */
static void expect_broken(const char *mode, int cause, const char *detail) {
  lf_procpool *p = new_pool(1, mode);
  lf_future *fs[5];
  for (int i = 0; i < 5; i++) fs[i] = submit(p, i);
  for (int i = 0; i < 5; i++) ASSERT_EQ(result(fs[i]).value, -cause);
  ASSERT_EQ(lf_procpool_status(p), LF_POOL_BROKEN);
  ASSERT_EQ(lf_procpool_cause(p), cause);
  char d[200];
  lf_procpool_detail(p, d, sizeof d);
  if (strstr(d, detail) == NULL) {
    fprintf(stderr, "detail '%s' lacks '%s'\n", d, detail);
    ASSERT(0);
  }
  lf_procpool_shutdown(p, 1, 0);
  lf_procpool_unref(p);
}

static void test_breaking(void) {
  expect_broken("fail", LF_PROC_INITFAILED, "worker 1");
  expect_broken("unknown", LF_PROC_PROTOCOL,
                "worker 1 sent a message of an unknown kind");
  expect_broken("short", LF_PROC_PROTOCOL,
                "worker 1 sent a message shorter than its header");
  expect_broken("wrongid", LF_PROC_PROTOCOL, "which it was not given");
}

/* After those breaks the ranks still serve new pools. */
static void test_serving_goes_on(void) {
  lf_procpool *p = new_pool(2, "ok");
  ASSERT_EQ(result(submit(p, 41)).value, 42);
  lf_procpool_shutdown(p, 1, 0);
  lf_procpool_unref(p);
}

/* An idle link backs off: waiting costs little CPU (a ratio, not a time). */
static void test_idle_backoff(void) {
  struct rusage a, b;
  double t0 = lf_now();
  getrusage(RUSAGE_SELF, &a);
  lf_sleep(0.3);
  getrusage(RUSAGE_SELF, &b);
  double wall = lf_now() - t0;
  double cpu = (double)(b.ru_utime.tv_sec - a.ru_utime.tv_sec) +
               (b.ru_utime.tv_usec - a.ru_utime.tv_usec) * 1e-6 +
               (double)(b.ru_stime.tv_sec - a.ru_stime.tv_sec) +
               (b.ru_stime.tv_usec - a.ru_stime.tv_usec) * 1e-6;
  ASSERT(cpu < wall / 4);
}

int main(void) {
  M = lf_mpi_transport();
  lf_mpi_host h;
  lf_mpi_host_default(&h);
  char host[256];
  ASSERT_EQ(M->init(&h, &rank, &size, host, sizeof host), 0);
  if (size < 3) {
    fprintf(stderr, "test_mpi: run it as mpiexec -n 3 (or more)\n");
    M->finalize();
    return 2;
  }
  if (rank != 0) {
    serve();
    M->finalize();
    return 0;
  }
  static const test tests[] = {
      {"mpi_results_from_every_rank", test_results_from_every_rank},
      {"mpi_more_workers_than_ranks", test_more_workers_than_ranks},
      {"mpi_breaking", test_breaking},
      {"mpi_serving_goes_on", test_serving_goes_on},
      {"mpi_idle_backoff", test_idle_backoff},
  };
  int n = (int)(sizeof tests / sizeof tests[0]);
  for (int i = 0; i < n; i++) {
    tests[i].fn();
    printf("ok %d - %s\n", i + 1, tests[i].name);
    fflush(stdout);
  }
  ASSERT(M->dropped() > 0); /* the answers that reached broken pools */
  M->release();
  M->finalize();
  ASSERT_EQ(lf_live_pools(), 0);
  printf("0 of %d mpi tests failed\n", n);
  return 0;
}
