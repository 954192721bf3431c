/*
 * proc.c -- the process pool: worker processes fed from one shared queue,
 * and a manager thread in the parent that collects their results.
 *
 * Wire. Tasks go down one SOCK_SEQPACKET socket pair shared by every
 * worker: the parent writes each task as one message (a 16-byte header and
 * the payload's bytes, or, above INLINE_MAX, a memfd passed with
 * SCM_RIGHTS) and whichever worker is idle receives the next one, so tasks
 * start in submission order and a long task holds up no other. Each worker
 * has its own SOCK_STREAM pair: the hello comes down it, then results
 * (header + bytes, tagged with the task's id) go up, and its end of file
 * tells the parent the worker is gone -- after a goodbye frame, in good
 * order; without one, abruptly, which breaks the pool. Closing the
 * parent's end of the queue is the shutdown: workers drain it, read end of
 * file, say goodbye and exit.
 *
 * Flow control. At most `window` tasks are out (sent and not answered):
 * one per accepting worker plus up to two more each (eight in all) waiting
 * in the socket, so a worker finds its next task there the moment it
 * finishes one, and a future not yet sent can still be cancelled. A task
 * marked running but refused by a full socket waits as the one `pending`
 * message.
 *
 * Threads. Submitters queue futures, start workers (spawn or fork) and send
 * tasks directly while the window has room; the manager thread polls the
 * workers' channels and an eventfd and reads results without the lock
 * (the read buffers are its own); then, under the lock, it parses them,
 * frees their slots, refills the window, reaps workers that left, starts
 * replacements (for max_tasks_per_child) and breaks the pool when a worker
 * died; futures are completed after it unlocks. Only the manager removes workers; a worker's
 * struct stays put while it lives, so the manager can read through the
 * pointers it copied.
 *
 * Locks. `mu` guards everything but the read buffers; it is taken before
 * any lock of lf.h; host hooks and future completions run without it.
 * `join_mu` serialises joining the manager. A forked child resets the
 * runtime's global locks (the future stripes, the graph lock): the threads
 * that may have held them are not in the child, and it never touches what
 * they guard.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "lf_proc.h"

extern char **environ;

#if defined(__SANITIZE_ADDRESS__)
#define LF__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LF__ASAN 1
#endif
#endif
#ifndef LF__ASAN
#define LF__ASAN 0
#endif

enum {
  K_HELLO = 1, K_TASK, K_TASK_FD, K_OK, K_FAILED, K_INITFAIL, K_BYE,
  K_READY /* the worker read its hello: it is one of ours */
};

typedef struct hdr {
  uint32_t len, kind, id, flags;
} hdr;

#define INLINE_MAX (32 * 1024) /* bigger tasks travel in a memfd */
#define READ_CHUNK (64 * 1024)

typedef struct wproc {
  pid_t pid;
  int fd;           /* our end of its channel */
  int accepting;    /* may still take tasks */
  int bye, killed, eof;
  int ready;        /* it answered its hello */
  double born;      /* when it started (lf_now) */
  size_t nresults;
  char *rbuf;       /* the manager's alone */
  size_t rlen, rcap;
} wproc;

typedef struct done {
  lf_future *f;
  lf_payload *res; /* NULL: fail it with the broken payload */
  int failed;
} done;

struct lf_procpool {
  lf_obj obj;
  pthread_mutex_t mu, join_mu;
  /* futures not yet sent, FIFO ring */
  lf_future **q;
  size_t qhead, qlen, qcap;
  /* futures sent and not answered, by id */
  lf_future **slot;
  uint32_t *freeids;
  size_t nslots, nfree, nout;
  /* the one message a full socket refused */
  int has_pending, pend_fd;
  hdr pend_hdr;
  lf_payload *pend_task;
  wproc **w;
  size_t nw, wcap, naccepting;
  size_t max, max_tasks;
  double answer_timeout;
  int method;
  char *exe;
  char *hello;
  size_t hello_len;
  int qfd[2]; /* [0] ours, [1] the workers'; -1 when closed */
  int evfd;
  int started, joined;
  pthread_t manager;
  int status, cause;
  /* completions collected under the lock, run after it */
  done *dl;
  size_t ndl, dlcap;
  lf_proc_hooks hooks;
  void *ud;
};

static void pool_destroy(lf_obj *o);

/* ---- small helpers -------------------------------------------------------- */

/* Moves fd to a number >= 5, so that placing the two channels on 3 and 4
 * in a child can never overwrite one with the other. */
static int high_fd(int fd) {
  if (fd < 0 || fd > LF_PROC_CFD) return fd;
  int nfd = fcntl(fd, F_DUPFD_CLOEXEC, LF_PROC_CFD + 1);
  close(fd);
  return nfd;
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* Sends all of iov over a blocking stream socket; 0 or -1. */
static int send_all(int fd, struct iovec *iov, int n) {
  while (n > 0) {
    struct msghdr m = {0};
    m.msg_iov = iov;
    m.msg_iovlen = (size_t)n;
    ssize_t k = sendmsg(fd, &m, MSG_NOSIGNAL);
    if (k < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    while (n > 0 && (size_t)k >= iov->iov_len) {
      k -= (ssize_t)iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (char *)iov->iov_base + k;
      iov->iov_len -= (size_t)k;
    }
  }
  return 0;
}

static int read_all(int fd, void *buf, size_t len) {
  char *p = buf;
  while (len > 0) {
    ssize_t k = read(fd, p, len);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    p += k;
    len -= (size_t)k;
  }
  return 0;
}

static void wake(lf_procpool *p) {
  uint64_t one = 1;
  if (p->evfd >= 0 && write(p->evfd, &one, sizeof one) < 0) {
    /* the counter is saturated: the manager is awake anyway */
  }
}

/* Collects a completion (res NULL: the broken payload); takes the caller's
 * reference to f and ownership of res. */
static void add_done(lf_procpool *p, lf_future *f, lf_payload *res,
                     int failed) {
  if (p->ndl == p->dlcap) {
    size_t cap = p->dlcap ? p->dlcap * 2 : 16;
    done *nd = lf__realloc(p->dl, cap * sizeof *nd);
    if (nd == NULL) { /* out of memory: complete it now, under the lock */
      if (res == NULL) {
        res = p->hooks.broken(p->ud, p->cause);
        failed = 1;
      }
      lf_future_finish(f, res, failed);
      lf_future_unref(f);
      return;
    }
    p->dl = nd;
    p->dlcap = cap;
  }
  p->dl[p->ndl++] = (done){f, res, failed};
}

/* Completes what the lock collected; called without the lock. The list is
 * swapped out first, so the manager and a submitter never share one. */
static void run_done(lf_procpool *p, done *dl, size_t n) {
  for (size_t i = 0; i < n; i++) {
    lf_payload *res = dl[i].res;
    int failed = dl[i].failed;
    if (res == NULL) {
      res = p->hooks.broken(p->ud, p->cause);
      failed = 1;
    }
    lf_future_finish(dl[i].f, res, failed);
    lf_future_unref(dl[i].f);
  }
}

/* ---- the queue and the ids ------------------------------------------------ */

static int queue_push(lf_procpool *p, lf_future *f) {
  if (p->qlen == p->qcap) {
    size_t cap = p->qcap ? p->qcap * 2 : 64;
    lf_future **nq = lf__malloc(cap * sizeof *nq);
    if (nq == NULL) return LF_ENOMEM;
    for (size_t i = 0; i < p->qlen; i++)
      nq[i] = p->q[(p->qhead + i) % p->qcap];
    lf__free(p->q);
    p->q = nq;
    p->qhead = 0;
    p->qcap = cap;
  }
  p->q[(p->qhead + p->qlen) % p->qcap] = f;
  p->qlen++;
  return 0;
}

static lf_future *queue_pop(lf_procpool *p) {
  lf_future *f = p->q[p->qhead];
  p->qhead = (p->qhead + 1) % p->qcap;
  p->qlen--;
  return f;
}

static int slot_alloc(lf_procpool *p, lf_future *f, uint32_t *id) {
  if (p->nfree == 0) {
    size_t n = p->nslots ? p->nslots * 2 : 16;
    lf_future **ns = lf__realloc(p->slot, n * sizeof *ns);
    if (ns == NULL) return LF_ENOMEM;
    p->slot = ns;
    uint32_t *nf = lf__realloc(p->freeids, n * sizeof *nf);
    if (nf == NULL) return LF_ENOMEM;
    p->freeids = nf;
    for (size_t i = n; i > p->nslots; i--) {
      p->slot[i - 1] = NULL;
      p->freeids[p->nfree++] = (uint32_t)(i - 1);
    }
    p->nslots = n;
  }
  *id = p->freeids[--p->nfree];
  p->slot[*id] = f;
  p->nout++;
  return 0;
}

static lf_future *slot_take(lf_procpool *p, uint32_t id) {
  if (id >= p->nslots || p->slot[id] == NULL) return NULL;
  lf_future *f = p->slot[id];
  p->slot[id] = NULL;
  p->freeids[p->nfree++] = id;
  p->nout--;
  return f;
}

/* ---- breaking ------------------------------------------------------------- */

static void drop_pending(lf_procpool *p) {
  lf_payload_free(p->pend_task);
  p->pend_task = NULL;
  close_fd(&p->pend_fd);
  p->has_pending = 0;
}

/* Every queued and running future is to fail; every worker is killed. */
static void break_locked(lf_procpool *p, int cause) {
  if (p->status == LF_POOL_BROKEN) return;
  p->status = LF_POOL_BROKEN;
  p->cause = cause;
  drop_pending(p); /* first: its task may live in a future freed below */
  while (p->qlen > 0) add_done(p, queue_pop(p), NULL, 1);
  for (uint32_t id = 0; id < p->nslots; id++) {
    lf_future *f = slot_take(p, id);
    if (f) add_done(p, f, NULL, 1);
  }
  close_fd(&p->qfd[0]);
  for (size_t i = 0; i < p->nw; i++) {
    wproc *w = p->w[i];
    if (!w->killed && !w->bye) kill(w->pid, SIGKILL);
    w->killed = 1;
    w->accepting = 0;
  }
  p->naccepting = 0;
  wake(p);
}

/* ---- sending tasks -------------------------------------------------------- */

/* Two tasks ahead per worker, at most eight in all (a unix datagram queue
 * holds ten): fewer and the workers sleep between tasks, which costs far
 * more than the tasks themselves; more and cancel() has little left to
 * cancel. */
static size_t window(lf_procpool *p) {
  size_t extra = 2 * p->naccepting < 8 ? 2 * p->naccepting : 8;
  return p->naccepting + extra;
}

/* One task message, non-blocking: 0 sent, 1 the socket is full, -1 error. */
static int send_msg(int fd, hdr *h, const void *data, size_t len, int xfd) {
  struct iovec iov[2] = {{h, sizeof *h}, {(void *)data, len}};
  struct msghdr m = {0};
  m.msg_iov = iov;
  m.msg_iovlen = len ? 2 : 1;
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  if (xfd >= 0) {
    memset(&u, 0, sizeof u);
    m.msg_control = u.buf;
    m.msg_controllen = sizeof u.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &xfd, sizeof xfd);
  }
  for (;;) {
    if (sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) return 0;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) return 1;
    return -1;
  }
}

/* A task too big for one message goes in a memfd; -1 when none can be
 * made. */
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

/* Sends the pending message if the socket takes it now. */
static void send_pending_locked(lf_procpool *p) {
  if (!p->has_pending || p->qfd[0] < 0) return;
  int rc = p->pend_fd >= 0
               ? send_msg(p->qfd[0], &p->pend_hdr, NULL, 0, p->pend_fd)
               : send_msg(p->qfd[0], &p->pend_hdr, p->pend_task->data,
                          p->pend_task->len, -1);
  if (rc == 1) return;
  drop_pending(p);
  if (rc < 0) break_locked(p, LF_PROC_IOERROR);
}

/* Moves queued futures to the workers while the window has room. */
static void dispatch_locked(lf_procpool *p) {
  while (!p->has_pending && p->qlen > 0 && p->qfd[0] >= 0 &&
         p->nout < window(p)) {
    lf_future *f = queue_pop(p);
    uint32_t id;
    if (slot_alloc(p, f, &id) != 0) { /* out of memory: try again later */
      p->qhead = (p->qhead + p->qcap - 1) % p->qcap;
      p->qlen++;
      return;
    }
    lf_payload *task;
    /* Not bound to a thread pool: lf_future_start names no runner, so no
     * deadlock check ever counts a process future as blocked. */
    if (lf_future_start(f, &task) != 0) {
      lf_payload_free(task);
      slot_take(p, id);
      lf_future_unref(f); /* cancelled while queued */
      continue;
    }
    hdr h = {(uint32_t)task->len, K_TASK, id, task->flags};
    int xfd = -1;
    if (task->len > INLINE_MAX) {
      xfd = task_memfd(task);
      if (xfd < 0) {
        lf_payload_free(task);
        break_locked(p, LF_PROC_IOERROR);
        return;
      }
      h.kind = K_TASK_FD;
    }
    int rc = send_msg(p->qfd[0], &h, xfd >= 0 ? NULL : task->data,
                      xfd >= 0 ? 0 : task->len, xfd);
    if (rc == 1) { /* full: it goes first when the socket has room */
      p->has_pending = 1;
      p->pend_hdr = h;
      p->pend_fd = xfd;
      p->pend_task = xfd >= 0 ? NULL : task;
      if (xfd >= 0) lf_payload_free(task);
      wake(p);
      return;
    }
    if (xfd >= 0) close(xfd);
    lf_payload_free(task);
    if (rc < 0) {
      break_locked(p, LF_PROC_IOERROR);
      return;
    }
  }
}

/* ---- starting workers ----------------------------------------------------- */

/* In the forked child: this thread is the only one, and it holds the locks
 * it took before fork(); nothing else of the parent is touched. */
static void child_after_fork(lf_procpool *p, int chfd) {
  /* The parent's other threads do not exist here: whatever runtime locks
   * they held are made free (the child never touches what they guard). */
  lf__stripes_reset();
  LF__CHECK(pthread_mutex_init(&lf__graph_mu, NULL));
  lf__self = NULL;
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, NULL);
  for (int s = 1; s < NSIG; s++) { /* handlers are the parent's business */
    struct sigaction sa;
    if (sigaction(s, NULL, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) &&
        (sa.sa_handler == SIG_IGN || sa.sa_handler == SIG_DFL))
      continue;
    signal(s, SIG_DFL);
  }
  /* Output the parent had buffered is the parent's to write. */
  __fpurge(stdout);
  __fpurge(stderr);
  if (dup2(p->qfd[1], LF_PROC_QFD) < 0 || dup2(chfd, LF_PROC_CFD) < 0)
    _exit(127);
  closefrom(LF_PROC_CFD + 1);
#if LF__ASAN
  /* GCC 12's AddressSanitizer does not hold its allocator's lock across
   * fork(), so a child forked while another thread allocates can block in
   * malloc forever (glibc's malloc, in a plain build, is fork-safe). A
   * sanitized child therefore becomes the worker executable at once, before
   * it allocates anything; without one it goes on as in a plain build. */
  if (p->exe[0]) {
    char *argv[] = {p->exe, NULL};
    execv(p->exe, argv);
  }
#endif
  int rc = p->hooks.child_main(p->ud, LF_PROC_QFD, LF_PROC_CFD);
  fflush(stdout);
  fflush(stderr);
  _exit(rc);
}

static int start_process(lf_procpool *p, int chfd, pid_t *pid) {
  if (p->method == LF_START_FORK) {
    pid_t k = fork();
    if (k == 0) child_after_fork(p, chfd);
    if (k < 0) return -1;
    *pid = k;
    return 0;
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  if (posix_spawn_file_actions_init(&fa) != 0) return -1;
  if (posix_spawnattr_init(&at) != 0) {
    posix_spawn_file_actions_destroy(&fa);
    return -1;
  }
  sigset_t none;
  sigemptyset(&none);
  posix_spawn_file_actions_adddup2(&fa, p->qfd[1], LF_PROC_QFD);
  posix_spawn_file_actions_adddup2(&fa, chfd, LF_PROC_CFD);
  posix_spawn_file_actions_addclosefrom_np(&fa, LF_PROC_CFD + 1);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
  char *argv[] = {p->exe, NULL};
  int rc = posix_spawn(pid, p->exe, &fa, &at, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  return rc == 0 ? 0 : -1;
}

static void reap(pid_t pid) {
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
}

/* Starts one worker and sends its hello; 0 or LF_ESPAWN / LF_ENOMEM. */
static int spawn_locked(lf_procpool *p) {
  if (p->nw == p->wcap) {
    size_t cap = p->wcap ? p->wcap * 2 : 4;
    wproc **nw = lf__realloc(p->w, cap * sizeof *nw);
    if (nw == NULL) return LF_ENOMEM;
    p->w = nw;
    p->wcap = cap;
  }
  wproc *w = lf__calloc(1, sizeof *w);
  if (w == NULL) return LF_ENOMEM;
  int ch[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch) != 0) {
    lf__free(w);
    return LF_ESPAWN;
  }
  ch[1] = high_fd(ch[1]);
  pid_t pid = 0;
  int rc = ch[1] >= 0 ? start_process(p, ch[1], &pid) : -1;
  close_fd(&ch[1]);
  if (rc == 0) {
    hdr h = {(uint32_t)p->hello_len, K_HELLO, (uint32_t)p->max_tasks, 0};
    struct iovec iov[2] = {{&h, sizeof h}, {p->hello, p->hello_len}};
    if (send_all(ch[0], iov, 2) != 0) { /* dead at birth */
      kill(pid, SIGKILL);
      reap(pid);
      rc = -1;
    }
  }
  if (rc != 0) {
    close(ch[0]);
    lf__free(w);
    return LF_ESPAWN;
  }
  w->pid = pid;
  w->fd = ch[0];
  w->born = lf_now();
  w->accepting = 1;
  p->w[p->nw++] = w;
  p->naccepting++;
  wake(p); /* the manager polls the new channel */
  return 0;
}

/* ---- the manager ---------------------------------------------------------- */

static void not_accepting(lf_procpool *p, wproc *w) {
  if (w->accepting) {
    w->accepting = 0;
    p->naccepting--;
  }
}

/* Reads what a worker sent, without the lock. */
static void read_worker(wproc *w) {
  for (int rounds = 0; rounds < 8; rounds++) {
    if (w->rcap - w->rlen < READ_CHUNK / 2) {
      size_t cap = w->rcap ? w->rcap * 2 : READ_CHUNK;
      char *nb = lf__realloc(w->rbuf, cap);
      if (nb == NULL) return; /* try again later */
      w->rbuf = nb;
      w->rcap = cap;
    }
    ssize_t k = recv(w->fd, w->rbuf + w->rlen, w->rcap - w->rlen, MSG_DONTWAIT);
    if (k > 0) {
      w->rlen += (size_t)k;
      continue;
    }
    if (k < 0 && errno == EINTR) continue;
    if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) w->eof = 1;
    return;
  }
}

/* Handles the complete frames a worker sent. */
static void parse_worker_locked(lf_procpool *p, wproc *w) {
  size_t at = 0;
  while (w->rlen - at >= sizeof(hdr)) {
    hdr h;
    memcpy(&h, w->rbuf + at, sizeof h);
    if (w->rlen - at - sizeof h < h.len) break;
    const char *data = w->rbuf + at + sizeof h;
    at += sizeof h + h.len;
    if (h.kind == K_OK || h.kind == K_FAILED) {
      lf_future *f = slot_take(p, h.id);
      w->nresults++;
      if (p->max_tasks && w->nresults >= p->max_tasks) not_accepting(p, w);
      if (f == NULL) continue; /* failed already: the pool broke */
      lf_payload *res = lf_payload_new(data, h.len, NULL, 0, h.flags);
      add_done(p, f, res, res == NULL || h.kind == K_FAILED);
    } else if (h.kind == K_READY) {
      w->ready = 1;
    } else if (h.kind == K_BYE) {
      w->bye = 1;
      not_accepting(p, w);
    } else if (h.kind == K_INITFAIL) {
      not_accepting(p, w);
      break_locked(p, LF_PROC_INITFAILED);
    } else {
      break_locked(p, LF_PROC_IOERROR); /* garbage on the wire */
    }
  }
  memmove(w->rbuf, w->rbuf + at, w->rlen - at);
  w->rlen -= at;
}

/* A worker closed its channel: reap it; without a goodbye it died. */
static void remove_worker_locked(lf_procpool *p, wproc *w) {
  if (!w->bye && p->status != LF_POOL_BROKEN) break_locked(p, LF_PROC_DIED);
  not_accepting(p, w);
  close_fd(&w->fd);
  if (!w->bye) kill(w->pid, SIGKILL); /* in case it only closed the fd */
  reap(w->pid);
  for (size_t i = 0; i < p->nw; i++)
    if (p->w[i] == w) {
      p->w[i] = p->w[--p->nw];
      break;
    }
  lf__free(w->rbuf);
  lf__free(w);
}

/* Between two polls: close the queue once shutdown has nothing left to
 * send, and start workers for queued work that none would take. */
static void housekeeping_locked(lf_procpool *p) {
  if (p->status != LF_POOL_RUNNING && p->qfd[0] >= 0 && p->qlen == 0 &&
      p->nout == 0)
    close_fd(&p->qfd[0]);
  if (p->status == LF_POOL_BROKEN) return;
  size_t work = p->qlen + p->nout;
  size_t want = work < p->max ? work : p->max;
  while (p->naccepting < want && p->nw < p->max) {
    if (spawn_locked(p) != 0) {
      if (p->nw == 0) break_locked(p, LF_PROC_SPAWNFAILED);
      break;
    }
  }
  dispatch_locked(p);
}

/* A worker that has not answered its hello in time is not one of ours (a
 * wrong `worker` program, say): the pool breaks rather than leave its
 * futures pending forever. Returns how long the manager may poll, in ms
 * (-1: no limit). */
static int answer_wait_ms_locked(lf_procpool *p) {
  double first = -1;
  for (size_t i = 0; i < p->nw; i++) {
    wproc *w = p->w[i];
    if (!w->ready && !w->killed && (first < 0 || w->born < first))
      first = w->born;
  }
  if (first < 0 || p->status == LF_POOL_BROKEN) return -1;
  double left = first + p->answer_timeout - lf_now();
  if (left <= 0) {
    break_locked(p, LF_PROC_NOANSWER);
    return 0;
  }
  return left > 3600 ? 3600 * 1000 : (int)(left * 1000) + 1;
}

static int finished_locked(lf_procpool *p) {
  return p->status != LF_POOL_RUNNING && p->nw == 0 &&
         (p->status == LF_POOL_BROKEN || (p->qlen == 0 && p->nout == 0));
}

/* Takes the collected completions, to run after unlocking. */
static done *take_done(lf_procpool *p, size_t *n) {
  done *dl = p->dl;
  *n = p->ndl;
  p->dl = NULL;
  p->ndl = p->dlcap = 0;
  return dl;
}

static void *manager_main(void *arg) {
  lf_procpool *p = arg;
  struct pollfd *pf = NULL;
  wproc **ws = NULL;
  size_t cap = 0;
  lf__lock(&p->mu);
  for (;;) {
    housekeeping_locked(p);
    size_t ndl;
    done *dl = take_done(p, &ndl);
    if (ndl) {
      lf__unlock(&p->mu);
      run_done(p, dl, ndl);
      lf__free(dl);
      lf__lock(&p->mu);
      continue;
    }
    lf__free(dl);
    if (finished_locked(p)) break;
    size_t n = p->nw;
    if (n + 2 > cap) {
      size_t c = (n + 2) * 2;
      struct pollfd *npf = lf__realloc(pf, c * sizeof *npf);
      if (npf) pf = npf;
      wproc **nws = lf__realloc(ws, c * sizeof *nws);
      if (nws) ws = nws;
      if (npf == NULL || nws == NULL) { /* retry soon */
        lf__unlock(&p->mu);
        lf_sleep(0.001);
        lf__lock(&p->mu);
        continue;
      }
      cap = c;
    }
    pf[0] = (struct pollfd){p->evfd, POLLIN, 0};
    pf[1] = (struct pollfd){p->has_pending ? p->qfd[0] : -1, POLLOUT, 0};
    for (size_t i = 0; i < n; i++) {
      ws[i] = p->w[i];
      pf[i + 2] = (struct pollfd){ws[i]->fd, POLLIN, 0};
    }
    int wait_ms = answer_wait_ms_locked(p);
    lf__unlock(&p->mu);

    if (poll(pf, n + 2, wait_ms) < 0 && errno != EINTR) lf_sleep(0.001);
    if (pf[0].revents) {
      uint64_t v;
      if (read(p->evfd, &v, sizeof v) < 0) { /* nothing to drain */
      }
    }
    for (size_t i = 0; i < n; i++)
      if (pf[i + 2].revents) read_worker(ws[i]);

    lf__lock(&p->mu);
    send_pending_locked(p);
    for (size_t i = 0; i < n; i++) {
      if (pf[i + 2].revents == 0) continue;
      parse_worker_locked(p, ws[i]);
      if (ws[i]->eof) remove_worker_locked(p, ws[i]);
    }
    dispatch_locked(p);
  }
  /* Every worker is reaped: nothing of the pool stays open. */
  close_fd(&p->qfd[0]);
  close_fd(&p->qfd[1]);
  close_fd(&p->evfd);
  lf__unlock(&p->mu);
  lf__free(pf);
  lf__free(ws);
  return NULL;
}

/* The queue, the eventfd and the manager, made by the first submit. */
static int start_locked(lf_procpool *p) {
  int q[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, q) != 0)
    return LF_ESPAWN;
  p->qfd[0] = q[0];
  p->qfd[1] = high_fd(q[1]);
  int big = 1 << 20; /* room for a window of inline tasks */
  if (setsockopt(q[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big) != 0) {
    /* the default is enough: a full socket only delays */
  }
  p->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (p->qfd[1] < 0 || p->evfd < 0 ||
      pthread_create(&p->manager, NULL, manager_main, p) != 0) {
    close_fd(&p->qfd[0]);
    close_fd(&p->qfd[1]);
    close_fd(&p->evfd);
    return LF_ESPAWN;
  }
  p->started = 1;
  return 0;
}

/* ---- the public side ------------------------------------------------------ */

lf_procpool *lf_procpool_new(const lf_proc_config *cfg,
                             const lf_proc_hooks *hooks, void *ud, int *err) {
  lf__cells_ready();
  lf_procpool *p = lf__calloc(1, sizeof *p);
  char *exe = lf__strdup(cfg->worker_path ? cfg->worker_path : "");
  char *hello = lf__malloc(cfg->hello_len + 1);
  if (p == NULL || exe == NULL || hello == NULL) {
    lf__free(p);
    lf__free(exe);
    lf__free(hello);
    *err = LF_ENOMEM;
    return NULL;
  }
  if (cfg->hello_len) memcpy(hello, cfg->hello, cfg->hello_len);
  atomic_init(&p->obj.refs, 1);
  p->obj.destroy = pool_destroy;
  LF__CHECK(pthread_mutex_init(&p->mu, NULL));
  LF__CHECK(pthread_mutex_init(&p->join_mu, NULL));
  p->max = cfg->max_workers ? cfg->max_workers : 1;
  p->max_tasks = cfg->max_tasks_per_child;
  p->answer_timeout = cfg->answer_timeout > 0 ? cfg->answer_timeout : 30;
  p->method = cfg->start_method;
  p->exe = exe;
  p->hello = hello;
  p->hello_len = cfg->hello_len;
  p->qfd[0] = p->qfd[1] = p->evfd = p->pend_fd = -1;
  p->status = LF_POOL_RUNNING;
  p->hooks = *hooks;
  p->ud = ud;
  *err = 0;
  return p;
}

void lf_procpool_ref(lf_procpool *p) { lf_obj_ref(&p->obj); }
void lf_procpool_unref(lf_procpool *p) {
  if (p) lf_obj_unref(&p->obj);
}

int lf_procpool_submit(lf_procpool *p, lf_future *f) {
  lf__lock(&p->mu);
  int rc = 0;
  if (p->status != LF_POOL_RUNNING) {
    rc = p->status == LF_POOL_BROKEN ? LF_EBROKEN : LF_ESHUTDOWN;
  } else if (!p->started) {
    rc = start_locked(p);
  }
  if (rc == 0 && p->qlen + p->nout + 1 > p->naccepting && p->nw < p->max) {
    rc = spawn_locked(p);
    if (p->nw > 0) rc = 0; /* the others will do */
  }
  if (rc == 0) rc = queue_push(p, f);
  if (rc != 0) {
    lf__unlock(&p->mu);
    return rc;
  }
  lf_future_ref(f);
  dispatch_locked(p);
  size_t ndl;
  done *dl = take_done(p, &ndl);
  lf__unlock(&p->mu);
  run_done(p, dl, ndl);
  lf__free(dl);
  return 0;
}

int lf_procpool_shutdown(lf_procpool *p, int wait, int cancel_futures) {
  lf__lock(&p->mu);
  if (p->status == LF_POOL_RUNNING) p->status = LF_POOL_SHUTDOWN;
  lf_future **q = NULL;
  size_t nq = 0;
  if (cancel_futures && p->qlen > 0 && (q = lf__malloc(p->qlen * sizeof *q))) {
    while (p->qlen > 0) q[nq++] = queue_pop(p);
  }
  int started = p->started;
  wake(p);
  lf__unlock(&p->mu);
  for (size_t i = 0; i < nq; i++) {
    lf_future_cancel(q[i]);
    lf_future_unref(q[i]);
  }
  lf__free(q);
  if (wait && started) {
    lf__lock(&p->join_mu);
    if (!p->joined) {
      LF__CHECK(pthread_join(p->manager, NULL));
      p->joined = 1;
    }
    lf__unlock(&p->join_mu);
  }
  return 0;
}

static void pool_destroy(lf_obj *o) {
  lf_procpool *p = (lf_procpool *)o;
  lf_procpool_shutdown(p, 1, 1);
  if (p->hooks.release) p->hooks.release(p->ud);
  drop_pending(p);
  for (size_t i = 0; i < p->qlen; i++) /* never started: no manager ran */
    lf_future_unref(p->q[(p->qhead + i) % p->qcap]);
  lf__free(p->q);
  lf__free(p->slot);
  lf__free(p->freeids);
  lf__free(p->w);
  lf__free(p->dl);
  lf__free(p->exe);
  lf__free(p->hello);
  pthread_mutex_destroy(&p->mu);
  pthread_mutex_destroy(&p->join_mu);
  lf__free(p);
}

int lf_procpool_status(lf_procpool *p) {
  lf__lock(&p->mu);
  int s = p->status;
  lf__unlock(&p->mu);
  return s;
}

int lf_procpool_cause(lf_procpool *p) {
  lf__lock(&p->mu);
  int c = p->cause;
  lf__unlock(&p->mu);
  return c;
}

size_t lf_procpool_nworkers(lf_procpool *p) {
  lf__lock(&p->mu);
  size_t n = p->nw;
  lf__unlock(&p->mu);
  return n;
}

size_t lf_procpool_max_workers(lf_procpool *p) { return p->max; }
int lf_procpool_start_method(lf_procpool *p) { return p->method; }

/* ---- the worker's side ---------------------------------------------------- */

static int say(int cfd, uint32_t kind) {
  hdr h = {0, kind, 0, 0};
  struct iovec iov = {&h, sizeof h};
  return send_all(cfd, &iov, 1);
}

int lf_proc_child_start(int qfd, int cfd, char **hello, size_t *len,
                        size_t *max_tasks) {
  /* Commands the tasks run must not hold the channels open. */
  fcntl(qfd, F_SETFD, FD_CLOEXEC);
  fcntl(cfd, F_SETFD, FD_CLOEXEC);
  hdr h;
  *hello = NULL;
  if (read_all(cfd, &h, sizeof h) != 0 || h.kind != K_HELLO) return -1;
  char *s = malloc((size_t)h.len + 1); /* the host frees it with free() */
  if (s == NULL) return -1;
  if (read_all(cfd, s, h.len) != 0) {
    free(s);
    return -1;
  }
  s[h.len] = '\0';
  *hello = s;
  *len = h.len;
  *max_tasks = h.id;
  return say(cfd, K_READY);
}

int lf_proc_child_next(int qfd, lf_payload **task, uint32_t *id) {
  static char buf[sizeof(hdr) + INLINE_MAX];
  union {
    char c[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct iovec iov = {buf, sizeof buf};
  struct msghdr m = {0};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = u.c;
  m.msg_controllen = sizeof u.c;
  ssize_t n;
  do n = recvmsg(qfd, &m, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n == 0) return 1;
  int xfd = -1;
  struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&m) : NULL;
  if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
    memcpy(&xfd, CMSG_DATA(c), sizeof xfd);
  hdr h;
  if (n < (ssize_t)sizeof h) {
    if (xfd >= 0) close(xfd);
    return -1;
  }
  memcpy(&h, buf, sizeof h);
  *id = h.id;
  if (h.kind == K_TASK && (size_t)n == sizeof h + h.len && xfd < 0) {
    *task = lf_payload_new(buf + sizeof h, h.len, NULL, 0, h.flags);
    return *task ? 0 : -1;
  }
  if (h.kind != K_TASK_FD || xfd < 0) {
    if (xfd >= 0) close(xfd);
    return -1;
  }
  void *map = mmap(NULL, h.len, PROT_READ, MAP_PRIVATE, xfd, 0);
  close(xfd);
  if (map == MAP_FAILED) return -1;
  *task = lf_payload_new(map, h.len, NULL, 0, h.flags);
  munmap(map, h.len);
  return *task ? 0 : -1;
}

int lf_proc_child_reply(int cfd, uint32_t id, lf_payload *result, int failed) {
  hdr h = {(uint32_t)result->len, failed ? K_FAILED : K_OK, id, result->flags};
  struct iovec iov[2] = {{&h, sizeof h}, {result->data, result->len}};
  int rc = send_all(cfd, iov, result->len ? 2 : 1);
  lf_payload_free(result);
  return rc;
}


int lf_proc_child_initfailed(int cfd) { return say(cfd, K_INITFAIL); }
int lf_proc_child_bye(int cfd) { return say(cfd, K_BYE); }
