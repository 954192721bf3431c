/*
 * wire.c -- framing of the process pool's messages (see wire.h): the
 * judge of a worker's frames and the blocking send and receive both ends
 * use, and the reader that buffers a worker's frames. No state but the
 * size limit, read once from the environment.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "wire.h"

#define READ_CHUNK (64 * 1024)
#define MIN_BUF READ_CHUNK /* a worker's buffer from its start */

static size_t max_message;
static pthread_once_t max_once = PTHREAD_ONCE_INIT;

static void read_max(void) {
  max_message = LF__MAX_MESSAGE_DEFAULT;
  const char *s = getenv("LUAFUTURES_MAX_MESSAGE");
  if (s == NULL || *s < '0' || *s > '9') return;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  /* K, M, G as the decoder reads them (bindings/decode.c), so that one
   * setting bounds both the frame and the strings in it. */
  int shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
  if (shift) end++;
  /* A frame's length field has 32 bits: larger limits mean no limit. */
  if (errno == 0 && *end == '\0' && v > 0)
    max_message = v > (UINT32_MAX >> shift) ? UINT32_MAX : (size_t)(v << shift);
}

size_t lf__wire_max_message(void) {
  pthread_once(&max_once, read_max);
  return max_message;
}

int lf__wire_frame(const char *buf, size_t n, size_t max, lf__hdr *h,
                   const char **why) {
  if (n < sizeof *h) return LF__FRAME_MORE;
  memcpy(h, buf, sizeof *h);
  switch (h->kind) {
    case LF__K_OK:
    case LF__K_FAILED:
      if (h->len > max) {
        *why = "a message above the size limit (LUAFUTURES_MAX_MESSAGE)";
        return LF__FRAME_BAD;
      }
      break;
    case LF__K_READY:
    case LF__K_INITFAIL:
    case LF__K_BYE:
      if (h->len != 0) {
        *why = "a control message with a body";
        return LF__FRAME_BAD;
      }
      break;
    case LF__K_NEED:
      if (h->len != LF__NEED_LEN) {
        *why = "a request for a Shared value of the wrong size";
        return LF__FRAME_BAD;
      }
      break;
    default:
      *why = "a message of an unknown kind";
      return LF__FRAME_BAD;
  }
  return n - sizeof *h >= h->len ? LF__FRAME_OK : LF__FRAME_MORE;
}

/* Moves scan over the whole frames read so far; a bad one marks r. */
static void judge(lf__rd *r) {
  while (r->bad == NULL) {
    lf__hdr h;
    int k = lf__wire_frame(r->buf + r->scan, r->len - r->scan, r->max, &h,
                           &r->bad);
    if (k != LF__FRAME_OK) return;
    r->scan += sizeof h + h.len;
  }
}

int lf__rd_init(lf__rd *r, size_t max) {
  *r = (lf__rd){0};
  r->max = max;
  r->buf = lf__malloc(MIN_BUF);
  if (r->buf == NULL) return -1;
  r->cap = MIN_BUF;
  return 0;
}

/* Where the bytes go while r->skip says how many of a dropped frame's body
 * are still to come: the buffer's spare room, ignored by lf__rd_got. */
static int scratch(lf__rd *r, char **at, size_t *room) {
  *at = r->buf + r->len;
  *room = r->cap - r->len;
  if (*room > r->skip) *room = r->skip;
  return 0;
}

/* The buffer cannot grow. A result that does not fit is dropped but for
 * its header, which becomes a failed answer with no bytes, the pool's sign
 * for a task that ran out of memory; its body is read and dropped, so the
 * frames after it are found and the worker stays in good standing. With no
 * buffer at all, not even a header can be read: r turns bad. */
static int short_of_memory(lf__rd *r, char **at, size_t *room) {
  if (r->buf == NULL) {
    r->bad = "a message the parent had no memory for";
    return -1;
  }
  lf__hdr h;
  if (r->len - r->scan >= sizeof h) {
    memcpy(&h, r->buf + r->scan, sizeof h);
    size_t end = r->scan + sizeof h + h.len;
    if (end > r->cap && (h.kind == LF__K_OK || h.kind == LF__K_FAILED)) {
      r->skip = end - r->len;
      h = (lf__hdr){0, LF__K_FAILED, h.id, 0};
      memcpy(r->buf + r->scan, &h, sizeof h);
      r->len = r->scan + sizeof h;
      judge(r);
      return scratch(r, at, room);
    }
  }
  *at = r->buf + r->len;
  *room = r->cap - r->len;
  return 0;
}

int lf__rd_room(lf__rd *r, char **at, size_t *room) {
  if (r->skip) return scratch(r, at, room);
  *at = r->buf ? r->buf + r->len : NULL; /* NULL + 0 is undefined in C */
  *room = r->cap - r->len;
  if (*room >= READ_CHUNK / 2) return 0;
  size_t cap = r->cap ? r->cap * 2 : READ_CHUNK;
  lf__hdr h;
  if (r->len - r->scan >= sizeof h) { /* the frame being read is judged */
    memcpy(&h, r->buf + r->scan, sizeof h);
    size_t end = r->scan + sizeof h + h.len;
    if (end <= r->cap && *room > 0) return 0; /* read the rest of it */
    if (end > r->cap && end < cap) cap = end < READ_CHUNK ? READ_CHUNK : end;
  }
  char *nb = lf__realloc(r->buf, cap);
  if (nb == NULL) return short_of_memory(r, at, room);
  r->buf = nb;
  r->cap = cap;
  *at = r->buf + r->len;
  *room = r->cap - r->len;
  return 0;
}

void lf__rd_got(lf__rd *r, size_t n) {
  if (r->skip) { /* scratch never offers more than skip */
    r->skip -= n;
    return;
  }
  r->len += n;
  judge(r);
}

void lf__rd_eof(lf__rd *r) {
  if (r->bad == NULL && (r->len > r->scan || r->skip))
    r->bad = "a truncated message";
}

int lf__rd_next(const lf__rd *r, size_t *at, lf__hdr *h, const char **data) {
  if (*at >= r->scan) return 0;
  memcpy(h, r->buf + *at, sizeof *h);
  *data = r->buf + *at + sizeof *h;
  *at += sizeof *h + h->len;
  return 1;
}

void lf__rd_drop(lf__rd *r, size_t at) {
  if (at == 0) return; /* (buf may still be NULL) */
  memmove(r->buf, r->buf + at, r->len - at);
  r->len -= at;
  r->scan -= at;
}

void lf__rd_free(lf__rd *r) {
  lf__free(r->buf);
  r->buf = NULL;
  r->len = r->cap = r->scan = r->skip = 0;
}

int lf__wire_send_all(int fd, struct iovec *iov, int n) {
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

int lf__wire_read_all(int fd, void *buf, size_t len) {
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

int lf__wire_say(int fd, uint32_t kind, uint32_t id) {
  lf__hdr h = {0, kind, id, 0};
  struct iovec iov = {&h, sizeof h};
  return lf__wire_send_all(fd, &iov, 1);
}

int lf__wire_send_msg(int fd, lf__hdr *h, const void *data, size_t len,
                      int xfd) {
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
