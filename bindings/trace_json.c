/*
 * trace_json.c -- the Chrome trace event JSON of a trace (what Perfetto
 * and chrome://tracing open): the head and end of the file, the metadata
 * that names a row, and the events of a task and of a wait. trace.c says
 * what to write and when, this file how: each event is formatted at a
 * cursor into room() asked for once, each number once, in the file's
 * buffer (lfb_tfile), which goes out with write(2) (trace.c says why). No
 * Lua and no lock: only the thread that writes the trace calls it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lfb.h"
#include "trace.h"

#define NUMMAX LFB_NUMMAX
#define BUFCAP LFB_JSON_BUFCAP

static void write_all(lfb_tfile *tf, const char *s, size_t n) {
  size_t off = 0;
  while (off < n) {
    ssize_t k = write(tf->fd, s + off, n - off);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break; /* a full disk loses the trace, not the script */
    off += (size_t)k;
  }
}

static void flush_buf(lfb_tfile *tf) {
  write_all(tf, tf->buf, tf->len);
  tf->len = 0;
}

/* Where n more bytes (n <= BUFCAP) go: the caller writes them there and
 * sets tf->len past them. */
static char *room(lfb_tfile *tf, size_t n) {
  if (tf->len + n > BUFCAP) flush_buf(tf);
  return tf->buf + tf->len;
}

static void put(lfb_tfile *tf, const char *s, size_t n) {
  if (tf->buf == NULL) return;
  if (n > BUFCAP) { /* a long executor name, say: past the buffer */
    flush_buf(tf);
    write_all(tf, s, n);
    return;
  }
  memcpy(room(tf, n), s, n);
  tf->len += n;
}
#define PUTS(tf, lit) put(tf, lit, sizeof lit - 1)
static void puts_(lfb_tfile *tf, const char *s) { put(tf, s, strlen(s)); }

/* The formatting below writes at a cursor into room() it asked for. */
#define CAT(o, lit) (memcpy(o, lit, sizeof lit - 1), (o) + sizeof lit - 1)
#define COMMIT(tf, o) ((tf)->len = (size_t)((o) - (tf)->buf))

static const char DIGITS2[] =
    "00010203040506070809101112131415161718192021222324"
    "25262728293031323334353637383940414243444546474849"
    "50515253545556575859606162636465666768697071727374"
    "75767778798081828384858687888990919293949596979899";

/* Two digits a step: these numbers are most of a trace's bytes. */
static char *cat_ulong(char *o, unsigned long u) {
  char d[24];
  int i = sizeof d;
  while (u >= 100) {
    unsigned r = (unsigned)(u % 100);
    u /= 100;
    d[--i] = DIGITS2[2 * r + 1];
    d[--i] = DIGITS2[2 * r];
  }
  if (u >= 10) {
    d[--i] = DIGITS2[2 * u + 1];
    d[--i] = DIGITS2[2 * u];
  } else {
    d[--i] = (char)('0' + u);
  }
  memcpy(o, d + i, sizeof d - (size_t)i);
  return o + (sizeof d - (size_t)i);
}

static char *cat_long(char *o, long v) {
  if (v < 0) {
    *o++ = '-';
    return cat_ulong(o, 0UL - (unsigned long)v);
  }
  return cat_ulong(o, (unsigned long)v);
}

/* Microseconds with three decimals (nanoseconds), from seconds. */
static char *cat_us(char *o, double seconds) {
  long ns = (long)(seconds * 1e9 + (seconds < 0 ? -0.5 : 0.5));
  if (ns < 0) {
    *o++ = '-';
    ns = -ns;
  }
  o = cat_ulong(o, (unsigned long)ns / 1000);
  unsigned f = (unsigned)(ns % 1000);
  o[0] = '.';
  o[1] = (char)('0' + f / 100);
  o[2] = DIGITS2[2 * (f % 100)];
  o[3] = DIGITS2[2 * (f % 100) + 1];
  return o + 4;
}

static void put_ptr(lfb_tfile *tf, const void *p) {
  char d[2 + 16];
  int i = sizeof d;
  uintptr_t u = (uintptr_t)p;
  do d[--i] = "0123456789abcdef"[u & 15]; while (u >>= 4);
  d[--i] = 'x';
  d[--i] = '0';
  char *o = room(tf, sizeof d + 2);
  *o++ = '"';
  memcpy(o, d + i, sizeof d - (size_t)i);
  o += sizeof d - (size_t)i;
  *o++ = '"';
  COMMIT(tf, o);
}

void lfb_json_ident(lfb_tident *id, long pid, long tid) {
  char *o = CAT(id->s, "\"pid\":");
  o = cat_long(o, pid);
  o = CAT(o, ",\"tid\":");
  o = cat_long(o, tid);
  id->n = (size_t)(o - id->s);
}

#define HEADMAX (32 + sizeof(lfb_tident) + NUMMAX) /* the most ev_at() writes */

/* The common head of an event, after its comma: ph, pid, tid, ts; at o,
 * which has room for HEADMAX bytes. */
static char *ev_at(lfb_tfile *tf, char *o, char ph, const lfb_tident *who,
                   double t) {
  if (tf->nevents++) o = CAT(o, ",\n");
  o = CAT(o, "{\"ph\":\"");
  *o++ = ph;
  o = CAT(o, "\",");
  memcpy(o, who->s, who->n);
  o += who->n;
  o = CAT(o, ",\"ts\":");
  return cat_us(o, t - tf->t0);
}

/* A worker's name comes from its bytes, maybe from another process:
 * escaped here, as JSON wants, and only printable ASCII kept. */
char *lfb_json_escape(const char *s) {
  size_t n = strlen(s);
  char *out = malloc(2 * n + 3), *o = out;
  if (out == NULL) return NULL;
  *o++ = '"';
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') *o++ = '\\';
    *o++ = c >= 0x20 && c < 0x7f ? (char)c : '?';
  }
  *o++ = '"';
  *o = '\0';
  return out;
}

void lfb_json_meta(lfb_tfile *tf, const char *what, const lfb_tident *who,
                   const char *json) {
  COMMIT(tf, ev_at(tf, room(tf, HEADMAX), 'M', who, tf->t0));
  PUTS(tf, ",\"name\":\"");
  puts_(tf, what);
  PUTS(tf, "\",\"args\":{\"name\":");
  puts_(tf, json ? json : "\"?\"");
  PUTS(tf, "}}");
}

void lfb_json_head(lfb_tfile *tf) {
  /* otherData.t0: the monotonic second of ts 0, futures.now()'s clock */
  char head[160];
  int n = snprintf(head, sizeof head,
                   "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"t0\":%.9f},"
                   "\"traceEvents\":[\n", tf->t0);
  put(tf, head, (size_t)n);
}

void lfb_json_end(lfb_tfile *tf) {
  put(tf, "\n]}\n", 4);
  flush_buf(tf);
}

/* ---- the events of a task ------------------------------------------------- */

static const char *const outcomes[] = {"returned", "raised", "cancelled"};

/* A complete event up to its name, at o (room for SLICEMAX bytes). */
#define SLICEMAX (HEADMAX + 40 + NUMMAX)
static char *slice_at(lfb_tfile *tf, char *o, const char *cat, size_t ncat,
                      const lfb_tident *who, double t0, double t1) {
  o = ev_at(tf, o, 'X', who, t0);
  o = CAT(o, ",\"dur\":");
  o = cat_us(o, t1 - t0);
  o = CAT(o, ",\"cat\":\"");
  memcpy(o, cat, ncat);
  o += ncat;
  return CAT(o, "\",\"name\":");
}

/* Its submit (a slice, which the flow's start needs to bind to), its run,
 * and the flow. Most of it is numbers: each is formatted once, the rows'
 * pid and tid never. */
void lfb_json_task(lfb_tfile *tf, const lfb_trec *s, const lfb_stamp *st,
                   int outcome, const lfb_tident *main, const lfb_tident *who) {
  char id[NUMMAX];
  size_t nid = (size_t)(cat_ulong(id, s->id) - id);
  char *o = room(tf, 2 * SLICEMAX + 64 + 2 * NUMMAX);
  o = slice_at(tf, o, "submit", 6, main, s->t0, s->t1);
  o = CAT(o, "\"submit\",\"args\":{\"id\":");
  memcpy(o, id, nid);
  o = CAT(o + nid, "}}");
  o = slice_at(tf, o, "task", 4, who, st->start, st->end);
  COMMIT(tf, o);
  put(tf, s->name->json, s->name->njson);
  o = room(tf, 64 + 3 * NUMMAX);
  o = CAT(o, ",\"args\":{\"id\":");
  memcpy(o, id, nid);
  o = CAT(o + nid, ",\"future\":");
  COMMIT(tf, o);
  put_ptr(tf, s->f);
  PUTS(tf, ",\"executor\":");
  put(tf, s->exec->json, s->exec->njson);
  o = room(tf, 2 * HEADMAX + 128 + 2 * NUMMAX);
  o = CAT(o, ",\"outcome\":\"");
  size_t nout = strlen(outcomes[outcome]);
  memcpy(o, outcomes[outcome], nout);
  o = CAT(o + nout, "\"}}");
  if (st->timed) {
    o = ev_at(tf, o, 's', main, (s->t0 + s->t1) / 2);
    o = CAT(o, ",\"cat\":\"flow\",\"name\":\"submit\",\"id\":");
    memcpy(o, id, nid);
    o = CAT(o + nid, "}");
    o = ev_at(tf, o, 'f', who, st->start);
    o = CAT(o, ",\"cat\":\"flow\",\"name\":\"submit\",\"id\":");
    memcpy(o, id, nid);
    o = CAT(o + nid, ",\"bp\":\"e\"}");
  }
  COMMIT(tf, o);
}

void lfb_json_wait(lfb_tfile *tf, const lfb_trec *s, const lfb_tident *main) {
  COMMIT(tf, slice_at(tf, room(tf, SLICEMAX), "wait", 4, main, s->t0, s->t1));
  put(tf, s->name->json, s->name->njson);
  PUTS(tf, "}");
}
