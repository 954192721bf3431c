/*
 * fake_worker.c -- a process-pool worker that misbehaves on purpose, for
 * the specs and C tests of the pool's protocol handling. It speaks the
 * wire format (wire.h) on the channels a pool gives a worker (fds 3 and
 * 4), reads its hello, takes one task and then does what its mode says:
 *
 *   oversize    answers with a header announcing more than the size limit
 *   truncated   sends a header and part of its body, then exits 0
 *   unknown_id  answers a task id it was never given
 *   bye_holding says goodbye (honestly: one task received) and exits 0
 *   bye_lying   says goodbye claiming it received nothing, and exits 0
 *   linger      answers every task with an empty payload; after its
 *               goodbye closes its channels and stays alive until the gate
 *               file exists (at most 20 s)
 *   exit99      exits with status 99
 *   signal      kills itself with SIGKILL
 *   file        answers every task with the raw bytes of a file, read
 *               afresh for each answer, with the payload flags
 *               FAKE_WORKER_FLAGS (a number; default 0)
 *   replay      as file, but before each answer after the first it
 *               answers the previous task again
 *   need_unknown asks for the bytes of a Shared value its task does not
 *               hold (id 0xdeadbeef), then exits 0 if it lives on
 *
 * The mode is FAKE_WORKER_MODE, or else the part of the program's name
 * after its last '-' (the build links fake-<mode> names to it, since a
 * pool passes no arguments and a spec cannot set its own environment).
 * Files beside the program, or named by FAKE_WORKER_FILE / _GATE / _PIDS:
 * <program>.payload (the file of `file`), <program>.gate, <program>.pids
 * (each worker appends its pid).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lf_proc.h"
#include "wire.h"

static char self[4096];

/* FAKE_WORKER_<name>, or the program's name with `suffix`. */
static const char *place(const char *name, const char *suffix, char *buf,
                         size_t len) {
  char env[64];
  snprintf(env, sizeof env, "FAKE_WORKER_%s", name);
  const char *v = getenv(env);
  if (v && *v) return v;
  snprintf(buf, len, "%s%s", self, suffix);
  return buf;
}

static const char *mode(void) {
  const char *m = getenv("FAKE_WORKER_MODE");
  if (m && *m) return m;
  const char *dash = strrchr(self, '-');
  return dash ? dash + 1 : "";
}

static void note_pid(void) {
  char buf[4200];
  FILE *f = fopen(place("PIDS", ".pids", buf, sizeof buf), "a");
  if (f == NULL) return;
  fprintf(f, "%ld\n", (long)getpid());
  fclose(f);
}

static void wait_gate(void) {
  char buf[4200];
  const char *gate = place("GATE", ".gate", buf, sizeof buf);
  for (int i = 0; i < 20000 && access(gate, F_OK) != 0; i++) usleep(1000);
}

static int reply_bytes(uint32_t id, const void *data, size_t len,
                       uint32_t flags) {
  lf_payload *r = lf_payload_new(data, len, NULL, 0, flags);
  return r ? lf_proc_child_reply(LF_PROC_CFD, id, r, 0) : -1;
}

/* The bytes of the `file` mode's file (malloc'd), or NULL. */
static char *slurp(size_t *len) {
  char buf[4200];
  FILE *f = fopen(place("FILE", ".payload", buf, sizeof buf), "rb");
  if (f == NULL) return NULL;
  char *s = NULL;
  size_t cap = 0, n = 0, k;
  do {
    if (n == cap) {
      char *ns = realloc(s, cap = cap ? cap * 2 : 4096);
      if (ns == NULL) break;
      s = ns;
    }
    k = fread(s + n, 1, cap - n, f);
    n += k;
  } while (k > 0);
  fclose(f);
  *len = n;
  return s;
}

/* One task's misbehaviour; the modes that return go on serving. */
static void misbehave(const char *m, uint32_t id) {
  if (strcmp(m, "exit99") == 0) _exit(99);
  if (strcmp(m, "signal") == 0) kill(getpid(), SIGKILL);
  if (strcmp(m, "oversize") == 0) {
    lf__hdr h = {0xfffffff0u, LF__K_OK, id, 0};
    struct iovec iov = {&h, sizeof h};
    lf__wire_send_all(LF_PROC_CFD, &iov, 1);
    wait_gate();
    _exit(0);
  }
  if (strcmp(m, "truncated") == 0) {
    lf__hdr h = {100, LF__K_OK, id, 0};
    char part[10] = {0};
    struct iovec iov[2] = {{&h, sizeof h}, {part, sizeof part}};
    lf__wire_send_all(LF_PROC_CFD, iov, 2);
    _exit(0);
  }
  if (strcmp(m, "unknown_id") == 0) {
    reply_bytes(id + 1000, "", 0, 0);
    return;
  }
  if (strcmp(m, "bye_lying") == 0) {
    lf__wire_say(LF_PROC_CFD, LF__K_BYE, 0);
    _exit(0);
  }
  if (strcmp(m, "bye_holding") == 0) {
    lf_proc_child_bye(LF_PROC_CFD);
    _exit(0);
  }
  if (strcmp(m, "need_unknown") == 0) {
    lf_payload *b;
    if (lf_proc_child_need(LF_PROC_CFD, id, 0xdeadbeefu, &b) == 0)
      lf_payload_free(b);
    _exit(0);
  }
  static int answered;
  static uint32_t last;
  if (strcmp(m, "replay") == 0 && answered++) misbehave("file", last);
  last = id;
  if (strcmp(m, "file") == 0 || strcmp(m, "replay") == 0) {
    size_t len = 0;
    char *s = slurp(&len);
    const char *flags = getenv("FAKE_WORKER_FLAGS");
    reply_bytes(id, s ? s : "", s ? len : 0,
                flags ? (uint32_t)strtoul(flags, NULL, 0) : 0);
    free(s);
    return;
  }
  reply_bytes(id, "", 0, 0); /* linger, and any other mode */
}

int main(int argc, char **argv) {
  (void)argc;
  snprintf(self, sizeof self, "%s", argv[0] ? argv[0] : "fake");
  char *hello;
  size_t len, max_tasks, ran = 0;
  if (lf_proc_child_start(LF_PROC_QFD, LF_PROC_CFD, &hello, &len,
                          &max_tasks) != 0)
    return 3;
  free(hello);
  note_pid();
  const char *m = mode();
  while (max_tasks == 0 || ran < max_tasks) {
    lf_payload *t;
    uint32_t id;
    if (lf_proc_child_next(LF_PROC_QFD, &t, &id) != 0) break;
    lf_payload_free(t);
    ran++;
    misbehave(m, id);
  }
  lf_proc_child_bye(LF_PROC_CFD);
  if (strcmp(m, "linger") == 0) {
    close(LF_PROC_QFD);
    close(LF_PROC_CFD);
    wait_gate();
  }
  return 0;
}
