/*
 * child.c -- the worker's half of the process pool's protocol (the
 * lf_proc_child_* functions of lf_proc.h): read the hello, take tasks from
 * the shared queue, ask for the blobs a task lacks and read them back,
 * send results and the last word up the own channel.
 *
 * A worker is single-threaded as far as these functions go (only one
 * thread may call lf_proc_child_next), so the count of tasks received, which
 * the goodbye carries, is a plain static.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "lf_proc.h"
#include "wire.h"

static uint32_t received; /* tasks taken from the queue: the goodbye says */

int lf_proc_child_start(int qfd, int cfd, char **hello, size_t *len,
                        size_t *max_tasks) {
  /* Commands the tasks run must not hold the channels open. */
  fcntl(qfd, F_SETFD, FD_CLOEXEC);
  fcntl(cfd, F_SETFD, FD_CLOEXEC);
  received = 0; /* a fork of a worker starts its own count */
  lf__hdr h;
  *hello = NULL;
  /* The pool is trusted: the size limit is for what workers send it. */
  if (lf__wire_read_all(cfd, &h, sizeof h) != 0 || h.kind != LF__K_HELLO)
    return -1;
  char *s = malloc((size_t)h.len + 1); /* the host frees it with free() */
  if (s == NULL) { /* the hello is read all the same: the pool then hears
                    * why this worker exits, not that its send failed */
    static char sink[4096];
    for (size_t left = h.len, n; left > 0; left -= n) {
      n = left < sizeof sink ? left : sizeof sink;
      if (lf__wire_read_all(cfd, sink, n) != 0) return -1;
    }
    return LF_ENOMEM;
  }
  if (lf__wire_read_all(cfd, s, h.len) != 0) {
    free(s);
    return -1;
  }
  s[h.len] = '\0';
  *hello = s;
  *len = h.len;
  *max_tasks = h.id;
  return lf__wire_say(cfd, LF__K_READY, 0);
}

/* The len bytes of a memfd, which it closes, read straight into a payload
 * (a mapping would fault its pages in one at a time); NULL when out of
 * memory or when the file is shorter than its header said. */
static lf_payload *read_memfd(int xfd, uint32_t len, uint32_t flags) {
  lf_payload *p = lf__payload_blank(len, 0);
  size_t got = 0;
  while (p && got < len) {
    ssize_t k = pread(xfd, p->data + got, len - got, (off_t)got);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    got += (size_t)k;
  }
  close(xfd);
  if (p == NULL || got < len) {
    lf_payload_free(p);
    return NULL;
  }
  p->flags = (uint16_t)(flags & LF_PAYLOAD_HOSTFLAGS);
  return p;
}

/* The task of a TASK_FD message: the bytes of the memfd. */
static int task_from_fd(int xfd, const lf__hdr *h, lf_payload **task) {
  if (h->len == 0) {
    close(xfd);
    return -1;
  }
  *task = read_memfd(xfd, h->len, h->flags);
  return *task ? 0 : -1;
}

int lf_proc_child_next(int qfd, lf_payload **task, uint32_t *id) {
  static char buf[sizeof(lf__hdr) + LF__INLINE_MAX];
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
  lf__hdr h;
  if (n < (ssize_t)sizeof h) {
    if (xfd >= 0) close(xfd);
    return -1;
  }
  received++;
  memcpy(&h, buf, sizeof h);
  *id = h.id;
  if (h.kind == LF__K_TASK && (size_t)n == sizeof h + h.len && xfd < 0) {
    *task = lf_payload_new(buf + sizeof h, h.len, NULL, 0, h.flags);
    return *task ? 0 : -1;
  }
  if (h.kind != LF__K_TASK_FD || xfd < 0) {
    if (xfd >= 0) close(xfd);
    return -1;
  }
  return task_from_fd(xfd, &h, task);
}

/* Reads the answer to a NEED: its header, and the memfd that came with it
 * (-1 if none). 0, or -1 when the channel ended or failed. */
static int read_answer(int cfd, lf__hdr *h, int *xfd) {
  char *p = (char *)h;
  size_t got = 0;
  *xfd = -1;
  while (got < sizeof *h) {
    union {
      char c[CMSG_SPACE(sizeof(int))];
      struct cmsghdr align;
    } u;
    struct iovec iov = {p + got, sizeof *h - got};
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = u.c;
    m.msg_controllen = sizeof u.c;
    ssize_t n = recvmsg(cfd, &m, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int fd;
      memcpy(&fd, CMSG_DATA(c), sizeof fd);
      if (*xfd >= 0) close(fd); /* one is all a SHARED brings */
      else *xfd = fd;
    }
    got += (size_t)n;
  }
  if (got == sizeof *h) return 0;
  if (*xfd >= 0) close(*xfd);
  return -1;
}

int lf_proc_child_need(int cfd, uint32_t id, uint64_t blob,
                       lf_payload **bytes) {
  lf__hdr h = {LF__NEED_LEN, LF__K_NEED, id, 0};
  struct iovec iov[2] = {{&h, sizeof h}, {&blob, sizeof blob}};
  *bytes = NULL;
  int xfd;
  if (lf__wire_send_all(cfd, iov, 2) != 0 || read_answer(cfd, &h, &xfd) != 0)
    return -1;
  if (h.kind != LF__K_SHARED) {
    if (xfd >= 0) close(xfd);
    return -1;
  }
  if (xfd < 0) return 1; /* the pool had no memfd for it */
  *bytes = read_memfd(xfd, h.len, 0);
  return *bytes ? 0 : 1;
}

int lf_proc_child_reply(int cfd, uint32_t id, lf_payload *result, int failed) {
  lf__hdr h = {(uint32_t)result->len, failed ? LF__K_FAILED : LF__K_OK, id,
               result->flags};
  struct iovec iov[2] = {{&h, sizeof h}, {result->data, result->len}};
  int rc = lf__wire_send_all(cfd, iov, result->len ? 2 : 1);
  lf_payload_free(result);
  return rc;
}

int lf_proc_child_initfailed(int cfd) {
  return lf__wire_say(cfd, LF__K_INITFAIL, 0);
}

int lf_proc_child_bye(int cfd) { return lf__wire_say(cfd, LF__K_BYE, received); }
