/*
 * test_proc.c -- unit tests of the process pool (lf_proc.h), in the manner
 * of test_runtime.c: one list of tests, each run in a forked child with a
 * time limit. The workers are forks running a tiny C host: a task is an op
 * and a value, a result an int. Others are the fake worker of the specs
 * (fake_worker.c), which breaks the protocol in the way its name says.
 * Every test ends by checking that each worker process was reaped.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../internal.h" /* the allocation count */
#include "lf_proc.h"
#include "wire.h"

#include "mailbox.h"

#include "test.h"

enum { OP_ADD1, OP_PID, OP_EXIT, OP_WAITFILE, OP_LEN };

typedef struct task {
  int op, value;
  char path[64];
} task;

static lf_payload *task_payload(int op, int value, const char *path) {
  task t = {op, value, ""};
  if (path) snprintf(t.path, sizeof t.path, "%s", path);
  return lf_payload_new(&t, sizeof t, NULL, 0, 0);
}

static int payload_int(const lf_payload *p) {
  int v;
  memcpy(&v, p->data, sizeof v);
  return v;
}

/* ---- the worker: a fork running this ------------------------------------- */

static int child_main(void *ud, int qfd, int cfd) {
  lf__alloc_test(0); /* the worker's allocations are not the ones tested */
  char *hello;
  size_t len, max_tasks, ran = 0;
  if (lf_proc_child_start(qfd, cfd, &hello, &len, &max_tasks) != 0) return 3;
  if (strcmp(hello, "fail") == 0) {
    lf_proc_child_initfailed(cfd);
    return 1;
  }
  ASSERT(strcmp(hello, "hello") == 0);
  free(hello);
  while (max_tasks == 0 || ran < max_tasks) {
    lf_payload *p;
    uint32_t id;
    if (lf_proc_child_next(qfd, &p, &id) != 0) break;
    int v = 0;
    if (p->len == sizeof(task)) {
      task t;
      memcpy(&t, p->data, sizeof t);
      if (t.op == OP_ADD1) v = t.value + 1;
      if (t.op == OP_PID) v = (int)getpid();
      if (t.op == OP_EXIT) _exit(7);
      if (t.op == OP_WAITFILE) {
        while (access(t.path, F_OK) != 0) usleep(1000);
        v = t.value;
      }
    } else {
      v = (int)p->len; /* OP_LEN: a big payload */
    }
    lf_payload_free(p);
    lf_proc_child_reply(cfd, id, lf_payload_new(&v, sizeof v, NULL, 0, 0), 0);
    ran++;
  }
  lf_proc_child_bye(cfd);
  return 0;
}

static lf_payload *broken(void *ud, int cause, const char *detail) {
  int v = -cause;
  return lf_payload_new(&v, sizeof v, NULL, 0, 0);
}

static const lf_proc_hooks hooks = {child_main, broken, NULL, NULL};

static lf_payload *null_broken(void *ud, int cause, const char *detail) {
  return NULL;
}

static lf_procpool *new_pool(size_t max, size_t max_tasks, const char *hello) {
  lf_proc_config cfg = {.max_workers = max, .max_tasks_per_child = max_tasks,
                        .start_method = LF_START_FORK, .worker_path = "",
                        .hello = hello, .hello_len = strlen(hello)};
  int err;
  lf_procpool *p = lf_procpool_new(&cfg, &hooks, NULL, &err);
  ASSERT(p != NULL);
  return p;
}

static lf_future *submit(lf_procpool *p, lf_payload *t, int expect) {
  lf_future *f = lf_future_new();
  lf_future_set_task(f, t);
  ASSERT_EQ(lf_procpool_submit(p, f), expect);
  return f;
}

/* Waits for f and returns its int, or the broken cause as a negative. */
static int result(lf_future *f) {
  lf_waiter *w = lf_waiter_new();
  ASSERT(lf_waiter_watch(w, f) == 0);
  ASSERT_EQ(lf_waiter_wait(w, 10, NULL, NULL, 0), 0);
  lf_waiter_free(w);
  ASSERT_EQ(lf_future_state(f), LF_FINISHED);
  return payload_int(lf_future_result(f, NULL));
}

static void gate_path(char *out, size_t len) {
  snprintf(out, len, "/tmp/lf_test_gate_%ld", (long)getpid());
  unlink(out);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_runs_tasks_lazily(void) {
  lf_procpool *p = new_pool(3, 0, "hello");
  ASSERT_EQ(lf_procpool_nworkers(p), 0);
  for (int i = 0; i < 20; i++) {
    lf_future *f = submit(p, task_payload(OP_ADD1, i, NULL), 0);
    ASSERT_EQ(result(f), i + 1);
    lf_future_unref(f);
  }
  ASSERT_EQ(lf_procpool_nworkers(p), 1); /* a free worker is reused */
  lf_future *fs[50];
  for (int i = 0; i < 50; i++) fs[i] = submit(p, task_payload(OP_ADD1, i, NULL), 0);
  for (int i = 0; i < 50; i++) {
    ASSERT_EQ(result(fs[i]), i + 1);
    lf_future_unref(fs[i]);
  }
  ASSERT(lf_procpool_nworkers(p) <= 3);
  lf_procpool_shutdown(p, 1, 0);
  ASSERT_EQ(lf_procpool_nworkers(p), 0);
  lf_future *late = lf_future_new();
  ASSERT_EQ(lf_procpool_submit(p, late), LF_ESHUTDOWN);
  lf_future_unref(late);
  lf_procpool_unref(p);
}

static void test_max_tasks_per_child(void) {
  lf_procpool *p = new_pool(2, 1, "hello");
  int pids[4];
  for (int i = 0; i < 4; i++) {
    lf_future *f = submit(p, task_payload(OP_PID, 0, NULL), 0);
    pids[i] = result(f);
    lf_future_unref(f);
    for (int j = 0; j < i; j++) ASSERT(pids[j] != pids[i]);
  }
  lf_procpool_unref(p); /* the last reference shuts down and waits */
}

static void test_broken_when_a_worker_exits(void) {
  lf_procpool *p = new_pool(1, 0, "hello");
  lf_future *dies = submit(p, task_payload(OP_EXIT, 0, NULL), 0);
  lf_future *after = lf_future_new();
  lf_future_set_task(after, task_payload(OP_ADD1, 1, NULL));
  int rc = lf_procpool_submit(p, after); /* the worker may be dead already */
  ASSERT(rc == 0 || rc == LF_EBROKEN);
  ASSERT_EQ(result(dies), -LF_PROC_DIED);
  if (rc == 0) ASSERT_EQ(result(after), -LF_PROC_DIED);
  ASSERT_EQ(lf_procpool_status(p), LF_POOL_BROKEN);
  ASSERT_EQ(lf_procpool_cause(p), LF_PROC_DIED);
  lf_future *late = lf_future_new();
  lf_future_set_task(late, task_payload(OP_ADD1, 1, NULL));
  ASSERT_EQ(lf_procpool_submit(p, late), LF_EBROKEN);
  lf_future_unref(late);
  lf_procpool_shutdown(p, 1, 0);
  lf_future_unref(dies);
  lf_future_unref(after);
  lf_procpool_unref(p);
}

static void test_broken_initializer(void) {
  lf_procpool *p = new_pool(2, 0, "fail");
  lf_future *f = submit(p, task_payload(OP_ADD1, 1, NULL), 0);
  ASSERT_EQ(result(f), -LF_PROC_INITFAILED);
  lf_future_unref(f);
  lf_procpool_shutdown(p, 1, 0);
  lf_procpool_unref(p);
}

/* A worker that never reads its hello: not one of ours. */
static int silent_main(void *ud, int qfd, int cfd) {
  for (;;) pause();
  return 0;
}
static const lf_proc_hooks silent_hooks = {silent_main, broken, NULL, NULL};

static void test_broken_when_a_worker_never_answers(void) {
  lf_proc_config cfg = {.max_workers = 1, .start_method = LF_START_FORK,
                        .worker_path = "", .hello = "hello", .hello_len = 5,
                        .answer_timeout = 0.05};
  int err;
  lf_procpool *p = lf_procpool_new(&cfg, &silent_hooks, NULL, &err);
  lf_future *f = submit(p, task_payload(OP_ADD1, 1, NULL), 0);
  ASSERT_EQ(result(f), -LF_PROC_NOANSWER);
  lf_future_unref(f);
  lf_procpool_shutdown(p, 1, 0); /* returns: the silent worker was killed */
  lf_procpool_unref(p);
}

static void test_shutdown_cancels_unsent(void) {
  char gate[64];
  gate_path(gate, sizeof gate);
  lf_procpool *p = new_pool(1, 0, "hello");
  lf_future *busy = submit(p, task_payload(OP_WAITFILE, 5, gate), 0);
  lf_future *q[6];
  for (int i = 0; i < 6; i++) q[i] = submit(p, task_payload(OP_ADD1, i, NULL), 0);
  lf_procpool_shutdown(p, 0, 1);
  int cancelled = 0;
  for (int i = 0; i < 6; i++) cancelled += lf_future_state(q[i]) == LF_CANCELLED;
  for (int i = 0; i < 6; i++) /* two may wait in the queue socket */
    ASSERT(lf_future_state(q[i]) == LF_CANCELLED ||
           lf_future_state(q[i]) == LF_RUNNING);
  ASSERT(cancelled >= 4);
  FILE *g = fopen(gate, "w");
  fclose(g);
  ASSERT_EQ(result(busy), 5);
  lf_procpool_shutdown(p, 1, 0);
  for (int i = 0; i < 6; i++) {
    if (lf_future_state(q[i]) != LF_CANCELLED) ASSERT_EQ(result(q[i]), i + 1);
    lf_future_unref(q[i]);
  }
  lf_future_unref(busy);
  lf_procpool_unref(p);
  unlink(gate);
}

/* The same with no memory for the list shutdown takes them out in: they
 * are cancelled all the same. The allocation count restarts there, so
 * what was live before must come back as that many frees. */
static void test_shutdown_cancels_without_memory(void) {
  char gate[64];
  gate_path(gate, sizeof gate);
  lf_procpool *p = new_pool(1, 0, "hello");
  lf_future *first = submit(p, task_payload(OP_ADD1, 0, NULL), 0);
  ASSERT_EQ(result(first), 1); /* the worker is up: the manager is idle */
  lf_future_unref(first);
  lf_future *busy = submit(p, task_payload(OP_WAITFILE, 5, gate), 0);
  lf_future *q[6];
  for (int i = 0; i < 6; i++) q[i] = submit(p, task_payload(OP_ADD1, i, NULL), 0);
  long live = lf__alloc_live();
  lf__alloc_test(1); /* the list's */
  lf_procpool_shutdown(p, 0, 1);
  int reached = lf__alloc_reached(), cancelled = 0;
  for (int i = 0; i < 6; i++) cancelled += lf_future_state(q[i]) == LF_CANCELLED;
  FILE *g = fopen(gate, "w"); /* before any assertion: the worker waits */
  fclose(g);
  ASSERT(reached);
  ASSERT(cancelled >= 4);
  ASSERT_EQ(result(busy), 5);
  lf_procpool_shutdown(p, 1, 0);
  for (int i = 0; i < 6; i++) lf_future_unref(q[i]);
  lf_future_unref(busy);
  lf_procpool_unref(p);
  unlink(gate);
  ASSERT_EQ(lf__alloc_live(), -live);
  lf__alloc_test(0);
}

static void test_big_payload(void) {
  lf_procpool *p = new_pool(1, 0, "hello");
  size_t n = 3 << 20;
  char *big = calloc(1, n);
  lf_future *f = submit(p, lf_payload_new(big, n, NULL, 0, 0), 0);
  free(big);
  ASSERT_EQ(result(f), (int)n);
  lf_future_unref(f);
  lf_procpool_unref(p);
}

/* A TASK_FD message with a memfd, as the pool sends one. */
static void send_task_fd(int fd, uint32_t len, const char *bytes, size_t n) {
  int xfd = memfd_create("test-task", MFD_CLOEXEC);
  ASSERT(xfd >= 0);
  ASSERT_EQ(write(xfd, bytes, n), (ssize_t)n);
  lf__hdr h = {len, LF__K_TASK_FD, 9, 0};
  ASSERT_EQ(lf__wire_send_msg(fd, &h, NULL, 0, xfd), 0);
  close(xfd);
}

/* A worker reads a task's memfd whole, and refuses one shorter than its
 * header says (a mapping gave the missing bytes as zeros). */
static void test_child_reads_memfd(void) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
  lf_payload *p = NULL;
  uint32_t id = 0;
  send_task_fd(sv[0], 5, "hello", 5);
  ASSERT_EQ(lf_proc_child_next(sv[1], &p, &id), 0);
  ASSERT(p->len == 5 && memcmp(p->data, "hello", 5) == 0 && id == 9);
  lf_payload_free(p);
  send_task_fd(sv[0], 100, "abc", 3);
  ASSERT_EQ(lf_proc_child_next(sv[1], &p, &id), -1);
  close(sv[0]);
  close(sv[1]);
}

static void test_spawn_missing_executable(void) {
  lf_proc_config cfg = {.max_workers = 1, .start_method = LF_START_SPAWN,
                        .worker_path = "/nonexistent/worker", .hello = ""};
  int err;
  lf_procpool *p = lf_procpool_new(&cfg, &hooks, NULL, &err);
  lf_future *f = lf_future_new();
  lf_future_set_task(f, task_payload(OP_ADD1, 1, NULL));
  ASSERT_EQ(lf_procpool_submit(p, f), LF_ESPAWN);
  ASSERT_EQ(lf_future_state(f), LF_PENDING);
  char why[200];
  lf_procpool_detail(p, why, sizeof why);
  ASSERT(strcmp(why, "/nonexistent/worker: No such file or directory") == 0);
  lf_future_unref(f);
  lf_procpool_unref(p);
}

static void test_nomem_payload(void) {
  /* No memory for the broken payload: the static outcome, never NULL. */
  static const lf_proc_hooks null_hooks = {child_main, null_broken, NULL, NULL};
  lf_proc_config cfg = {.max_workers = 1, .start_method = LF_START_FORK,
                        .worker_path = "", .hello = "hello", .hello_len = 5};
  int err;
  lf_procpool *p = lf_procpool_new(&cfg, &null_hooks, NULL, &err);
  lf_future *dies = submit(p, task_payload(OP_EXIT, 0, NULL), 0);
  lf__spin_until_done(dies, 10);
  int failed = 0;
  ASSERT(lf_future_result(dies, &failed) == lf_payload_oom());
  ASSERT_EQ(failed, 1);
  lf_future_unref(dies);
  lf_procpool_unref(p);
}

static void test_wire_frames(void) {
  lf__hdr h, got;
  const char *why = NULL;
  char buf[64] = {0};
  ASSERT_EQ(lf__wire_frame(buf, 3, 100, &got, &why), LF__FRAME_MORE);
  h = (lf__hdr){8, LF__K_OK, 1, 0};
  memcpy(buf, &h, sizeof h);
  ASSERT_EQ(lf__wire_frame(buf, sizeof h + 7, 100, &got, &why), LF__FRAME_MORE);
  ASSERT_EQ(lf__wire_frame(buf, sizeof h + 8, 100, &got, &why), LF__FRAME_OK);
  ASSERT_EQ(got.id, 1);
  ASSERT_EQ(lf__wire_frame(buf, sizeof h, 7, &got, &why), LF__FRAME_BAD);
  ASSERT(strstr(why, "size limit") != NULL);
  h = (lf__hdr){1, LF__K_BYE, 0, 0};
  memcpy(buf, &h, sizeof h);
  ASSERT_EQ(lf__wire_frame(buf, sizeof h, 100, &got, &why), LF__FRAME_BAD);
  h = (lf__hdr){0, LF__K_TASK, 0, 0}; /* the pool's kind, never a worker's */
  memcpy(buf, &h, sizeof h);
  ASSERT_EQ(lf__wire_frame(buf, sizeof h, 100, &got, &why), LF__FRAME_BAD);
  ASSERT(strstr(why, "unknown kind") != NULL);
  if (getenv("LUAFUTURES_MAX_MESSAGE") == NULL)
    ASSERT_EQ(lf__wire_max_message(), (size_t)1 << 30);
}

/* Feeds the reader n bytes from src as a socket would, in the rooms it
 * offers (taking the whole frames when it offers none); returns the kind
 * and id of each frame taken, in order, into got (at most 8). */
static int feed(lf__rd *r, const char *src, size_t n, lf__hdr *got, int ngot) {
  while (n > 0) {
    char *at;
    size_t room;
    ASSERT_EQ(lf__rd_room(r, &at, &room), 0);
    if (room > 0) {
      size_t k = room < n ? room : n;
      memcpy(at, src, k);
      lf__rd_got(r, k);
      src += k;
      n -= k;
    }
    size_t pos = 0;
    lf__hdr h;
    const char *data;
    while (lf__rd_next(r, &pos, &h, &data)) {
      ASSERT(ngot < 8);
      got[ngot++] = h;
    }
    lf__rd_drop(r, pos);
  }
  return ngot;
}

/* A result the reader has no memory for is dropped, bytes and all, and
 * stands as a failed answer with no bytes (the task ran out of memory);
 * the frame after it is read as sent: the worker stays in good standing. */
static void test_wire_drops_what_it_cannot_hold(void) {
  size_t big = 256 * 1024;
  char *msg = calloc(1, 2 * sizeof(lf__hdr) + big);
  lf__hdr h = {(uint32_t)big, LF__K_OK, 5, 0}, bye = {0, LF__K_BYE, 1, 0};
  memcpy(msg, &h, sizeof h);
  memcpy(msg + sizeof h + big, &bye, sizeof bye);
  lf__rd r;
  /* The third allocation fails: the buffer's, its growth to read the
   * header (a small one), and the growth the big body asks for. */
  lf__alloc_test(3);
  ASSERT_EQ(lf__rd_init(&r, (size_t)1 << 30), 0);
  lf__hdr got[8];
  int n = feed(&r, msg, 2 * sizeof h + big, got, 0);
  ASSERT(r.bad == NULL);
  ASSERT_EQ(n, 2);
  ASSERT_EQ(got[0].kind, LF__K_FAILED);
  ASSERT_EQ(got[0].id, 5);
  ASSERT_EQ(got[0].len, 0);
  ASSERT_EQ(got[1].kind, LF__K_BYE);
  lf__rd_eof(&r);
  ASSERT(r.bad == NULL);
  ASSERT(lf__alloc_reached());
  lf__rd_free(&r);
  ASSERT_EQ(lf__alloc_live(), 0);
  free(msg);
}

/* Each mode of the fake worker breaks the pool with its cause and a detail
 * (naming the worker, but for lost tasks, which may be several workers');
 * the queued future fails too. */
static void test_fake_workers(void) {
  static const struct {
    const char *mode, *detail;
    int cause;
  } cases[] = {
      {"oversize", "sent a message above the size limit", LF_PROC_PROTOCOL},
      {"truncated", "sent a truncated message", LF_PROC_PROTOCOL},
      {"unknown_id", "which it was not given", LF_PROC_PROTOCOL},
      {"bye_holding", "said goodbye holding 1 unanswered task", LF_PROC_PROTOCOL},
      {"bye_lying", "taken by workers that left without answering",
       LF_PROC_PROTOCOL},
      {"exit99", "exited with status 99", LF_PROC_DIED},
      {"signal", "was killed by signal 9", LF_PROC_DIED},
  };
  const char *dir = getenv("LUAFUTURES_FAKE_DIR");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char exe[512];
    snprintf(exe, sizeof exe, "%s/fake-%s", dir ? dir : "build/fake",
             cases[i].mode);
    ASSERT(access(exe, X_OK) == 0);
    lf_proc_config cfg = {.max_workers = 1, .start_method = LF_START_SPAWN,
                          .worker_path = exe, .hello = "hello", .hello_len = 5};
    int err;
    lf_procpool *p = lf_procpool_new(&cfg, &hooks, NULL, &err);
    lf_future *f = submit(p, task_payload(OP_ADD1, 1, NULL), 0);
    /* The worker may break the pool before this second submit: then it
     * is refused as broken, which is as right as failing it queued. */
    lf_future *queued = lf_future_new();
    lf_future_set_task(queued, task_payload(OP_ADD1, 2, NULL));
    int rc = lf_procpool_submit(p, queued);
    ASSERT(rc == 0 || rc == LF_EBROKEN);
    ASSERT_EQ(result(f), -cases[i].cause);
    if (rc == 0) ASSERT_EQ(result(queued), -cases[i].cause);
    char detail[200];
    lf_procpool_detail(p, detail, sizeof detail);
    if (strstr(detail, cases[i].detail) == NULL ||
        (cases[i].cause == LF_PROC_DIED && strncmp(detail, "worker ", 7))) {
      fprintf(stderr, "%s: detail '%s'\n", cases[i].mode, detail);
      ASSERT(0);
    }
    lf_procpool_shutdown(p, 1, 0);
    ASSERT_EQ(lf_procpool_nworkers(p), 0);
    lf_future_unref(f);
    lf_future_unref(queued);
    lf_procpool_unref(p);
  }
}

/* A pool of one fake worker in `mode` (file or replay), which answers with
 * a file's raw bytes: here the int v, which the test host reads back. The
 * file's name goes into data; the caller unlinks it. */
static lf_procpool *file_fake(const char *mode, int v, char *data,
                              size_t len) {
  char exe[512];
  snprintf(data, len, "/tmp/lf_test_payload_%ld", (long)getpid());
  FILE *f = fopen(data, "wb");
  fwrite(&v, sizeof v, 1, f);
  fclose(f);
  setenv("FAKE_WORKER_FILE", data, 1);
  const char *dir = getenv("LUAFUTURES_FAKE_DIR");
  snprintf(exe, sizeof exe, "%s/fake-%s", dir ? dir : "build/fake", mode);
  lf_proc_config cfg = {.max_workers = 1, .start_method = LF_START_SPAWN,
                        .worker_path = exe, .hello = "hello", .hello_len = 5};
  int err;
  return lf_procpool_new(&cfg, &hooks, NULL, &err);
}

/* The fake's `file` mode (for the codec's corrupt-payload cases). */
static void test_fake_file(void) {
  char data[64];
  lf_procpool *p = file_fake("file", 4242, data, sizeof data);
  for (int i = 0; i < 3; i++) {
    lf_future *r = submit(p, task_payload(OP_ADD1, i, NULL), 0);
    ASSERT_EQ(result(r), 4242);
    lf_future_unref(r);
  }
  lf_procpool_unref(p);
  unlink(data);
}

/* A worker that answers a task a second time (the fake's `replay` mode),
 * after the pool has sent the next task: that task's future must not take
 * the stale answer, though the pool hands out the freed id again at once. */
static void test_fake_replays_an_answer(void) {
  char data[64];
  lf_procpool *p = file_fake("replay", 4242, data, sizeof data);
  lf_future *first = submit(p, task_payload(OP_ADD1, 1, NULL), 0);
  ASSERT_EQ(result(first), 4242);
  lf_future *second = submit(p, task_payload(OP_ADD1, 2, NULL), 0);
  ASSERT_EQ(result(second), -LF_PROC_PROTOCOL);
  char detail[200];
  lf_procpool_detail(p, detail, sizeof detail);
  ASSERT(strstr(detail, "which it was not given") != NULL);
  lf_procpool_shutdown(p, 1, 0);
  lf_future_unref(first);
  lf_future_unref(second);
  lf_procpool_unref(p);
  unlink(data);
}

/* A submit-run-result cycle with each of its allocations failing in turn
 * (the manager thread's and the transport's among them: the count is the
 * process's): every future it made ends finished, nothing hangs, nothing
 * leaks. A future that failed while the pool is not broken failed for want
 * of memory, with the static out-of-memory payload: running short breaks
 * nothing. Returns how many futures failed that way. */
static int proc_oom_scenario(void) {
  int err;
  lf_proc_config cfg = {.max_workers = 2, .start_method = LF_START_FORK,
                        .worker_path = "", .hello = "hello", .hello_len = 5};
  lf_procpool *p = lf_procpool_new(&cfg, &hooks, NULL, &err);
  if (p == NULL) return 0;
  lf_future *fs[3] = {NULL, NULL, NULL};
  int nomem = 0;
  for (int i = 0; i < 3; i++) {
    lf_payload *t = task_payload(OP_ADD1, i, NULL);
    lf_future *f = t ? lf_future_new() : NULL;
    if (f == NULL) {
      lf_payload_free(t);
      continue;
    }
    lf_future_set_task(f, t);
    if (lf_procpool_submit(p, f) != 0) {
      lf_future_unref(f);
      continue;
    }
    fs[i] = f;
  }
  for (int i = 0; i < 3; i++) {
    if (fs[i] == NULL) continue;
    ASSERT(lf__spin_until_done(fs[i], 10));
    int failed;
    const lf_payload *r = lf_future_result(fs[i], &failed);
    ASSERT(r != NULL);
    if (!failed) ASSERT_EQ(payload_int(r), i + 1);
    if (failed && lf_procpool_status(p) != LF_POOL_BROKEN)
      ASSERT(r == lf_payload_oom());
    nomem += r == lf_payload_oom();
    lf_future_unref(fs[i]);
  }
  lf_procpool_shutdown(p, 1, 0);
  lf_procpool_unref(p);
  return nomem;
}

static void test_out_of_memory(void) {
  long n = 1;
  int nomem = 0;
  for (; n < 2000; n++) {
    lf__alloc_test(n);
    nomem += proc_oom_scenario();
    ASSERT_EQ(lf_live_pools(), 0);
    ASSERT_EQ(lf__alloc_live(), 0);
    if (!lf__alloc_reached()) break; /* it ran whole: n is past its end */
  }
  ASSERT(n > 5 && n < 2000);
  ASSERT(nomem > 0); /* some task could not run and said why */
  fprintf(stderr, "  (%ld allocations, each failed in turn; %d tasks out of "
          "memory)\n", n - 1, nomem);
  lf__alloc_test(0);
}

/* ---- a transport shaped like MPI's (mailbox.c) ---------------------------- */

static int add1(const lf_payload *p) {
  task t;
  memcpy(&t, p->data, sizeof t);
  return t.value + 1;
}

static void test_funneled_transport(void) {
  lf_proc_config cfg = {.max_workers = 3, .start_method = LF_START_SPAWN,
                        .worker_path = "", .hello = "", .hello_len = 0};
  int err;
  mailbox_run = add1;
  lf_procpool *p = lf__procpool_new_on(&cfg, &hooks, NULL, mailbox_open, &err);
  ASSERT(p != NULL);
  lf_future *fs[40];
  for (int i = 0; i < 40; i++) fs[i] = submit(p, task_payload(OP_ADD1, i, NULL), 0);
  for (int i = 0; i < 40; i++) {
    ASSERT_EQ(result(fs[i]), i + 1);
    lf_future_unref(fs[i]);
  }
  ASSERT(lf_procpool_nworkers(p) >= 1 && lf_procpool_nworkers(p) <= 3);
  lf_procpool_shutdown(p, 1, 0);
  ASSERT_EQ(mailbox_open_now, 0); /* closed */
  ASSERT_EQ(mailbox_off_thread, 0); /* every call but wake on one thread */
  ASSERT_EQ(lf_procpool_nworkers(p), 0);
  lf_procpool_unref(p);
}

static const test tests[] = {
    {"proc_runs_tasks_lazily", test_runs_tasks_lazily},
    {"proc_max_tasks_per_child", test_max_tasks_per_child},
    {"proc_broken_when_a_worker_exits", test_broken_when_a_worker_exits},
    {"proc_broken_initializer", test_broken_initializer},
    {"proc_broken_when_a_worker_never_answers", test_broken_when_a_worker_never_answers},
    {"proc_shutdown_cancels_unsent", test_shutdown_cancels_unsent},
    {"proc_shutdown_cancels_without_memory", test_shutdown_cancels_without_memory},
    {"proc_big_payload", test_big_payload},
    {"proc_child_reads_memfd", test_child_reads_memfd},
    {"proc_spawn_missing_executable", test_spawn_missing_executable},
    {"proc_nomem_payload", test_nomem_payload},
    {"proc_wire_frames", test_wire_frames},
    {"proc_wire_drops_what_it_cannot_hold", test_wire_drops_what_it_cannot_hold},
    {"proc_fake_workers", test_fake_workers},
    {"proc_fake_file", test_fake_file},
    {"proc_fake_replays_an_answer", test_fake_replays_an_answer},
    {"proc_out_of_memory", test_out_of_memory},
    {"proc_funneled_transport", test_funneled_transport},
};

int main(int argc, char **argv) {
  return run_tests(tests, (int)(sizeof tests / sizeof tests[0]), argc, argv,
                   "process pool");
}
