/*
 * wire.h -- the bytes a process pool and its workers exchange, shared by
 * both ends (the pool's Unix transport and the worker's loop) and by the
 * parser's fuzz target. Not a host header.
 *
 * Every message is a 16-byte header (lf__hdr, host byte order: both ends
 * run on one machine) and `len` bytes. Down the shared task queue (one
 * datagram per task): TASK with the payload inline, or TASK_FD with the
 * payload in a memfd passed by SCM_RIGHTS. Down a worker's own channel:
 * HELLO (`id` is max_tasks_per_child). Up that channel: READY (the hello
 * was read), OK / FAILED (the result of task `id`), INITFAIL, BYE (`id`
 * is how many tasks the worker received), NEED (the worker lacks the bytes
 * of a Shared value that task `id` refers to: 8 bytes, its 64-bit id).
 * Down the own channel again, the answer to a NEED: SHARED with the bytes
 * in a memfd passed by SCM_RIGHTS (`len` their length), or with no memfd
 * and `len` 0 when the pool could not send them. The control kinds carry
 * no bytes.
 *
 * Bytes from a worker are untrusted: lf__wire_frame judges a header
 * before anything is buffered for it, against the size limit
 * (LUAFUTURES_MAX_MESSAGE, default 1 GiB).
 */
#ifndef LF_WIRE_H
#define LF_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

enum lf__kind {
  LF__K_HELLO = 1, LF__K_TASK, LF__K_TASK_FD, LF__K_OK, LF__K_FAILED,
  LF__K_INITFAIL, LF__K_BYE, LF__K_READY, LF__K_NEED, LF__K_SHARED
};
#define LF__NEED_LEN 8 /* the body of a NEED: a Shared value's id */

typedef struct lf__hdr {
  uint32_t len, kind, id, flags;
} lf__hdr;

#define LF__INLINE_MAX (32 * 1024) /* bigger tasks travel in a memfd */
#define LF__MAX_MESSAGE_DEFAULT ((size_t)1 << 30)

/* The largest payload a frame may carry: LUAFUTURES_MAX_MESSAGE (bytes, a
 * positive decimal integer with an optional K, M or G suffix; anything
 * else means the default), read once. */
size_t lf__wire_max_message(void);

/* What lf__wire_frame found at the start of a buffer. */
enum lf__frame {
  LF__FRAME_MORE = 0, /* not a whole frame yet (the header is fine so far) */
  LF__FRAME_OK = 1,   /* a whole frame: *h, and sizeof *h + h->len bytes */
  LF__FRAME_BAD = -1  /* not a frame a worker may send: *why says why */
};

/* Judges the frame a worker sent at buf[0..n): the kind must be one a
 * worker sends, a control kind must be empty, a NEED exactly LF__NEED_LEN
 * bytes, and a payload no longer than `max`. *why (static text) is set for LF__FRAME_BAD. */
int lf__wire_frame(const char *buf, size_t n, size_t max, lf__hdr *h,
                   const char **why);

/* The buffer a worker's frames are read into, judged as they arrive: a
 * bad frame, or no buffer at all, sets `bad` (static text), and from then
 * on the reader takes nothing. It grows with what arrived (at most twice
 * that), never with what a header announced. A result it has no memory
 * for becomes a FAILED frame with no bytes (the task ran out of memory)
 * and its body is read and dropped. Not thread-safe. */
typedef struct lf__rd {
  char *buf;
  size_t len, cap;
  size_t scan;      /* buf[0..scan) holds whole, judged frames */
  size_t max;       /* the size limit of a payload */
  size_t skip;      /* bytes of a dropped body still to read and drop */
  const char *bad;  /* NULL while every frame so far is fine */
} lf__rd;

/* A reader with a small buffer already (so a header always has room):
 * 0, or -1 when out of memory. */
int lf__rd_init(lf__rd *r, size_t max);

/* Where the next bytes go: *at and *room (0 when a whole frame waits to be
 * taken first); -1 when out of memory (then bad is set). */
int lf__rd_room(lf__rd *r, char **at, size_t *room);
void lf__rd_got(lf__rd *r, size_t n); /* n bytes arrived at the room */
void lf__rd_eof(lf__rd *r);           /* a frame cut short is bad */
/* The next whole frame from *at (0 at first): 1 with *h and *data, moving
 * *at past it; 0 when no whole frame is left. */
int lf__rd_next(const lf__rd *r, size_t *at, lf__hdr *h, const char **data);
void lf__rd_drop(lf__rd *r, size_t at); /* the frames before at are done */
void lf__rd_free(lf__rd *r);

/* Blocking I/O of whole frames on a stream socket: 0, or -1 (errno). */
int lf__wire_send_all(int fd, struct iovec *iov, int n);
int lf__wire_read_all(int fd, void *buf, size_t len);
/* A control frame (no bytes) of `kind` carrying `id`. */
int lf__wire_say(int fd, uint32_t kind, uint32_t id);
/* One message of a header, `len` bytes and, when xfd >= 0, that descriptor
 * (SCM_RIGHTS), not blocking: 0 sent, 1 the socket is full, -1 error. */
int lf__wire_send_msg(int fd, lf__hdr *h, const void *data, size_t len,
                      int xfd);

#endif
