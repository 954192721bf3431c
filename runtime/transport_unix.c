/*
 * transport_unix.c -- the process pool's first transport (transport.h):
 * worker processes this process starts, reached through Unix sockets.
 *
 * Tasks go down one SOCK_SEQPACKET socket pair shared by every worker: a
 * task is one message (a header and the payload's bytes, or, above
 * LF__INLINE_MAX, a memfd passed with SCM_RIGHTS) and whichever worker is
 * idle receives the next one, so tasks start in submission order and a
 * long task holds up no other (LF__TP_ANY). A task the full socket refuses
 * is held back and goes first once there is room. Each worker has its own
 * SOCK_STREAM pair: the hello goes down it, replies come up, and its end
 * of file says the worker is gone; a worker that lacks a Shared value's
 * bytes asks up it and gets them down it, once (u_give). Closing our end of the queue is the
 * shutdown: workers drain it, read end of file, say goodbye and exit.
 *
 * Bytes from a worker are untrusted. `wait` reads them into the worker's
 * buffer, judging each frame's header before buffering its body (wire.h):
 * a bad header marks the worker bad; from then on its bytes are read and
 * dropped, so its end of file is still seen, and `collect` reports BAD
 * once. A buffer grows with what arrived, never with what a header
 * announced; a result it has no memory for is read and dropped, and
 * reported as a task that ran out of memory. Everything the manager needs
 * to watch a worker (its buffer, its poll slot) is allocated when the
 * worker starts, so a manager short of memory still reads every worker.
 *
 * Processes are reaped without waiting: after a worker's end of file,
 * `collect` tries waitpid(WNOHANG) and `wait` polls with a short, growing
 * timeout until it succeeds; one that lingers (LINGER_BYE seconds after a
 * goodbye, LINGER_ABRUPT without one) is killed first.
 *
 * Threads: no lock of its own. The core calls everything but `wait` and
 * `wake` under its pool lock; `wait` runs on the manager thread alone and
 * touches only the snapshot `arm` made and the read buffers, which only
 * the manager uses; a worker's struct is freed only by `collect`, on that
 * same thread.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "lf_proc.h"
#include "spawning.h"
#include "transport.h"
#include "wire.h"

#define LINGER_BYE 10.0   /* seconds a worker may take to exit after bye */
#define LINGER_ABRUPT 1.0 /* ... after closing its channel without one */

struct lf__tw {
  void *cookie;     /* the core's; NULL: dead at birth, reaped silently */
  pid_t pid;
  int fd;           /* our end of its channel; -1 after its end of file */
  int eof, bye, killed, closed_early;
  double eof_at;    /* when its end of file came (lf_now) */
  lf__rd rd;        /* its frames; the manager's alone */
  int bad_told;     /* rd.bad was reported */
};

typedef struct utp {
  lf__tp base;
  lf__tp_config cfg;
  size_t max_msg;
  int qfd[2];       /* [0] ours, [1] the workers'; -1 when closed */
  int evfd;
  /* the one message a full socket refused */
  int held, held_fd;
  lf__hdr held_hdr;
  lf_payload *held_task;
  lf__tw **w;
  size_t nw, wcap;
  /* what the next wait polls (arm) */
  struct pollfd *pf;
  lf__tw **ws;
  size_t npoll, pcap;
  int reap_ms;      /* backoff while a worker waits to be reaped */
} utp;

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* ---- sending -------------------------------------------------------------- */

/* A task too big for one message goes in a memfd (and so does a Shared
 * value's bytes, u_give); -1 when none can be made. */
static int task_memfd(const lf_payload *t) {
  int fd = memfd_create("luafutures-task", MFD_CLOEXEC);
  if (fd < 0) return -1;
  const char *s = t->data;
  size_t left = t->len;
  while (left > 0) {
    ssize_t k = write(fd, s, left);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      close(fd);
      return -1;
    }
    s += k;
    left -= (size_t)k;
  }
  return fd;
}

static void drop_held(utp *t) {
  lf_payload_free(t->held_task);
  t->held_task = NULL;
  close_fd(&t->held_fd);
  t->held = 0;
}

static int u_can_send(lf__tp *tp) {
  utp *t = (utp *)tp;
  return !t->held && t->qfd[0] >= 0;
}

/* The queue's unread bytes (SIOCOUTQ) drop as workers take messages. */
static int u_all_taken(lf__tp *tp) {
  utp *t = (utp *)tp;
  int n;
  if (t->held) return 0;
  if (t->qfd[0] < 0 || ioctl(t->qfd[0], SIOCOUTQ, &n) != 0) return -1;
  return n == 0;
}

static int u_send(lf__tp *tp, lf__tw *to, uint32_t id, lf_payload *task) {
  utp *t = (utp *)tp;
  (void)to; /* one queue for all */
  lf__hdr h = {(uint32_t)task->len, LF__K_TASK, id, task->flags};
  int xfd = -1;
  if (task->len > LF__INLINE_MAX) {
    if ((xfd = task_memfd(task)) < 0) {
      lf_payload_free(task);
      return LF_EBROKEN;
    }
    h.kind = LF__K_TASK_FD;
  }
  int rc = t->qfd[0] < 0 ? -1
           : lf__wire_send_msg(t->qfd[0], &h, xfd >= 0 ? NULL : task->data,
                               xfd >= 0 ? 0 : task->len, xfd);
  if (rc == 1) { /* full: it goes first when the socket has room */
    t->held = 1;
    t->held_hdr = h;
    t->held_fd = xfd;
    t->held_task = xfd >= 0 ? NULL : task;
    if (xfd >= 0) lf_payload_free(task);
    return 0;
  }
  if (xfd >= 0) close(xfd);
  lf_payload_free(task);
  return rc < 0 ? LF_EBROKEN : 0;
}

/* Sends the held message if the socket takes it now: 0, or -1 error. */
static int send_held(utp *t) {
  if (!t->held || t->qfd[0] < 0) return 0;
  lf__hdr *h = &t->held_hdr;
  int rc = t->held_fd >= 0
               ? lf__wire_send_msg(t->qfd[0], h, NULL, 0, t->held_fd)
               : lf__wire_send_msg(t->qfd[0], h, t->held_task->data,
                                   t->held_task->len, -1);
  if (rc == 1) return 0;
  drop_held(t);
  return rc;
}

static void u_close_queue(lf__tp *tp) {
  utp *t = (utp *)tp;
  drop_held(t);
  close_fd(&t->qfd[0]);
}

/* ---- starting and stopping workers ---------------------------------------- */

/* Room for one more worker in t->w and in what arm fills, so adding it
 * cannot fail later and arm never allocates: a manager that could not
 * watch its workers for want of memory would spin, reading nothing. */
static int reserve_worker(utp *t) {
  if (t->nw == t->wcap) {
    size_t cap = t->wcap ? t->wcap * 2 : 4;
    lf__tw **nw = lf__realloc(t->w, cap * sizeof *nw);
    if (nw == NULL) return LF_ENOMEM;
    t->w = nw;
    t->wcap = cap;
  }
  if (t->pcap < t->wcap + 2) {
    size_t c = t->wcap + 2;
    struct pollfd *npf = lf__realloc(t->pf, c * sizeof *npf);
    if (npf) t->pf = npf;
    lf__tw **nws = npf ? lf__realloc(t->ws, c * sizeof *nws) : NULL;
    if (nws) t->ws = nws;
    if (nws == NULL) return LF_ENOMEM; /* pcap stays: both are retried */
    t->pcap = c;
  }
  return 0;
}

static int u_start(lf__tp *tp, void *cookie, lf__tw **out, long *num,
                   char *why, size_t whylen) {
  utp *t = (utp *)tp;
  lf__tw *w = lf__calloc(1, sizeof *w);
  if (w == NULL || lf__rd_init(&w->rd, t->max_msg) != 0 ||
      reserve_worker(t) != 0) {
    if (w) lf__rd_free(&w->rd);
    lf__free(w);
    snprintf(why, whylen, "out of memory");
    return LF_ENOMEM;
  }
  int ch[2], rc;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch) != 0) {
    rc = errno;
    lf__rd_free(&w->rd);
    lf__free(w);
    snprintf(why, whylen, "socketpair: %s", strerror(rc));
    return LF_ESPAWN;
  }
  ch[1] = lf__high_fd(ch[1]);
  lf__spawn_spec s = {t->cfg.method, t->cfg.exe, t->qfd[1],
                      t->cfg.child_main, t->cfg.ud};
  pid_t pid = 0;
  rc = ch[1] >= 0 ? lf__spawn(&s, ch[1], &pid) : errno;
  close_fd(&ch[1]);
  if (rc != 0) {
    close(ch[0]);
    lf__rd_free(&w->rd);
    lf__free(w);
    snprintf(why, whylen, "%s: %s",
             t->cfg.method == LF_START_FORK ? "fork" : t->cfg.exe,
             strerror(rc));
    return LF_ESPAWN;
  }
  w->pid = pid;
  w->fd = ch[0];
  t->w[t->nw++] = w;
  lf__hdr h = {(uint32_t)t->cfg.hello_len, LF__K_HELLO,
               (uint32_t)t->cfg.max_tasks, 0};
  struct iovec iov[2] = {{&h, sizeof h},
                         {(void *)t->cfg.hello, t->cfg.hello_len}};
  if (lf__wire_send_all(ch[0], iov, 2) != 0) { /* dead at birth */
    rc = errno;
    kill(pid, SIGKILL);
    w->killed = w->eof = 1; /* collect reaps it, telling no one */
    close_fd(&w->fd);
    snprintf(why, whylen, "%s: exited at once (%s)", t->cfg.exe[0] ?
             t->cfg.exe : "fork", strerror(rc));
    return LF_ESPAWN;
  }
  w->cookie = cookie;
  *out = w;
  *num = (long)pid;
  return 0;
}

/* A Shared value's bytes go down the worker's own channel in a memfd, so
 * the message is a header and a descriptor whatever their size: a worker
 * that asked waits for nothing else, and its socket has room for that. No
 * memfd (no memory, no descriptor): a header alone, which fails its task. */
static int u_give(lf__tp *tp, lf__tw *w, const lf_payload *bytes) {
  (void)tp;
  int xfd = bytes ? task_memfd(bytes) : -1;
  lf__hdr h = {xfd >= 0 ? bytes->len : 0, LF__K_SHARED, 0, 0};
  int rc = w->fd >= 0 ? lf__wire_send_msg(w->fd, &h, NULL, 0, xfd) : -1;
  if (xfd >= 0) close(xfd);
  return rc == 0 ? 0 : -1;
}

static void u_kill(lf__tp *tp, lf__tw *w) {
  (void)tp;
  if (!w->killed) kill(w->pid, SIGKILL);
  w->killed = 1;
}

/* ---- reading, without the lock -------------------------------------------- */

static void read_worker(lf__tw *w) {
  char sink[4096];
  for (int rounds = 0; rounds < 8; rounds++) {
    char *to;
    size_t room;
    if (w->rd.bad == NULL) lf__rd_room(&w->rd, &to, &room);
    if (w->rd.bad) { /* dropped, but read: its end of file must be seen */
      to = sink;
      room = sizeof sink;
    }
    if (room == 0) return; /* a whole frame is waiting for collect */
    ssize_t k = recv(w->fd, to, room, MSG_DONTWAIT);
    if (k > 0) {
      if (to != sink) lf__rd_got(&w->rd, (size_t)k);
      continue;
    }
    if (k < 0 && errno == EINTR) continue;
    if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
      w->eof = 1;
      lf__rd_eof(&w->rd);
    }
    return;
  }
}

static void u_arm(lf__tp *tp) {
  utp *t = (utp *)tp;
  size_t n = t->nw; /* n + 2 <= pcap: reserve_worker saw to it */
  int reaping = 0;
  t->pf[0] = (struct pollfd){t->evfd, POLLIN, 0};
  t->pf[1] = (struct pollfd){t->held ? t->qfd[0] : -1, POLLOUT, 0};
  for (size_t i = 0; i < n; i++) {
    t->ws[i] = t->w[i];
    t->pf[i + 2] = (struct pollfd){t->w[i]->fd, POLLIN, 0};
    reaping |= t->w[i]->eof;
  }
  t->npoll = n + 2;
  if (!reaping) t->reap_ms = 0;
  else t->reap_ms = t->reap_ms ? (t->reap_ms < 64 ? t->reap_ms * 2 : 64) : 1;
}

static void u_wait(lf__tp *tp, int ms) {
  utp *t = (utp *)tp;
  if (t->reap_ms && (ms < 0 || ms > t->reap_ms)) ms = t->reap_ms;
  if (poll(t->pf, t->npoll, ms) < 0 && errno != EINTR) lf_sleep(0.001);
  if (t->pf[0].revents) {
    uint64_t v;
    if (read(t->evfd, &v, sizeof v) < 0) { /* nothing to drain */
    }
  }
  for (size_t i = 0; i + 2 < t->npoll; i++)
    if (t->pf[i + 2].revents) read_worker(t->ws[i]);
}

static void u_wake(lf__tp *tp) {
  utp *t = (utp *)tp;
  uint64_t one = 1;
  if (t->evfd >= 0 && write(t->evfd, &one, sizeof one) < 0) {
    /* the counter is saturated: the manager is awake anyway */
  }
}

/* ---- collecting, under the lock ------------------------------------------- */

static const int event_of[] = {
    [LF__K_OK] = LF__TEV_RESULT,     [LF__K_FAILED] = LF__TEV_RESULT,
    [LF__K_READY] = LF__TEV_READY,   [LF__K_BYE] = LF__TEV_BYE,
    [LF__K_INITFAIL] = LF__TEV_INITFAIL, [LF__K_NEED] = LF__TEV_NEED};

/* Reports the judged frames of w, then its fault if it has one. */
static void parse_worker(lf__tw *w, lf__tev_fn fn, void *ctx) {
  size_t at = 0;
  lf__hdr h;
  const char *data;
  while (lf__rd_next(&w->rd, &at, &h, &data)) {
    lf__tev ev = {event_of[h.kind], w->cookie, h.id, h.kind == LF__K_FAILED,
                  data, h.len, h.flags, 0, 0, NULL};
    if (h.kind == LF__K_BYE) w->bye = 1;
    if (w->cookie) fn(ctx, &ev);
  }
  lf__rd_drop(&w->rd, at);
  if (w->rd.bad && !w->bad_told) {
    w->bad_told = 1;
    lf__tev ev = {LF__TEV_BAD, w->cookie, 0, 0, NULL, 0, 0, 0, 0, w->rd.bad};
    if (w->cookie) fn(ctx, &ev);
  }
}

/* A worker past its end of file: reaped now (1) or later (0). */
static int try_reap(lf__tw *w, int *status) {
  if (w->eof_at == 0) w->eof_at = lf_now();
  close_fd(&w->fd);
  pid_t r;
  while ((r = waitpid(w->pid, status, WNOHANG)) < 0 && errno == EINTR) {
  }
  if (r == w->pid) return 1;
  if (r < 0) { /* not our child any more: nothing to wait for */
    *status = -1;
    return 1;
  }
  double linger = w->bye ? LINGER_BYE : LINGER_ABRUPT;
  if (!w->killed && lf_now() - w->eof_at > linger) {
    kill(w->pid, SIGKILL);
    w->killed = w->closed_early = 1;
  }
  return 0;
}

static void u_collect(lf__tp *tp, lf__tev_fn fn, void *ctx) {
  utp *t = (utp *)tp;
  if (send_held(t) != 0) {
    lf__tev ev = {LF__TEV_IOERROR, NULL, 0, 0, NULL, 0, 0, 0, 0,
                  "the task queue refused a task"};
    fn(ctx, &ev);
  }
  for (size_t i = 0; i < t->nw;) {
    lf__tw *w = t->w[i];
    parse_worker(w, fn, ctx);
    int st;
    if (!w->eof || !try_reap(w, &st)) {
      i++;
      continue;
    }
    t->w[i] = t->w[--t->nw];
    lf__tev ev = {LF__TEV_GONE, w->cookie, 0, 0, NULL, 0, 0, st,
                  w->closed_early, NULL};
    if (w->cookie) fn(ctx, &ev);
    lf__rd_free(&w->rd);
    lf__free(w);
  }
}

static void u_close(lf__tp *tp) {
  utp *t = (utp *)tp;
  for (size_t i = 0; i < t->nw; i++) { /* only the dead at birth are left */
    lf__tw *w = t->w[i];
    if (!w->killed) kill(w->pid, SIGKILL);
    while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR) {
    }
    close_fd(&w->fd);
    lf__rd_free(&w->rd);
    lf__free(w);
  }
  drop_held(t);
  close_fd(&t->qfd[0]);
  close_fd(&t->qfd[1]);
  close_fd(&t->evfd);
  lf__free(t->w);
  lf__free(t->pf);
  lf__free(t->ws);
  lf__free(t);
}

static const lf__tp_ops unix_ops = {
    "unix", LF__TP_ANY, u_start,   u_can_send, u_all_taken, u_send,
    u_close_queue,      u_kill,    u_arm,      u_wait,      u_wake,
    u_collect,          u_close,   u_give};

lf__tp *lf__tp_unix_new(const lf__tp_config *cfg, int *err) {
  utp *t = lf__calloc(1, sizeof *t);
  if (t == NULL) {
    *err = LF_ENOMEM;
    return NULL;
  }
  t->base.ops = &unix_ops;
  t->cfg = *cfg;
  t->max_msg = lf__wire_max_message();
  t->held_fd = t->evfd = -1;
  int q[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, q) != 0) {
    lf__free(t);
    *err = LF_ESPAWN;
    return NULL;
  }
  t->qfd[0] = q[0];
  t->qfd[1] = lf__high_fd(q[1]);
  int big = 1 << 20; /* room for a window of inline tasks */
  if (setsockopt(q[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big) != 0) {
    /* the default is enough: a full socket only delays */
  }
  t->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (t->qfd[1] < 0 || t->evfd < 0 || reserve_worker(t) != 0) {
    *err = t->qfd[1] < 0 || t->evfd < 0 ? LF_ESPAWN : LF_ENOMEM;
    u_close(&t->base);
    return NULL;
  }
  *err = 0;
  return &t->base;
}
