/*
 * trace.c -- futures.trace(path) ... futures.trace(false), the
 * LUAFUTURES_TRACE environment variable and `luafutures --trace`: a
 * Chrome trace event file of what the pools did, or (a path ending in
 * .svg) a timeline picture (trace_svg.c).
 *
 * One state traces at a time: the state that started it (the "traced
 * state", normally the main one). While a trace is on, every task is
 * encoded with the LFB_TRACED flag, and its worker -- a thread, or a
 * process with its own clock, CLOCK_MONOTONIC, which every process of the
 * machine shares -- writes when it ran, and where, in the run stamp at the
 * end of the result (outcome.c). Each submit of the traced state appends
 * a small C record (the future, a reference to it, when the submit began
 * and ended, its function's and executor's names, interned) to a batch;
 * each full batch of LFB_TRACE_BATCH records goes to the writer thread,
 * which turns the records of the futures that are done into events,
 * formatted in C, and keeps the others for its next batch. So the traced
 * state pays for a record a task (a reference, two clock reads) and no
 * formatting, no Lua table is made per event and no hook per task; the
 * strings (function names, executors, metadata) are escaped once each by
 * lua-cjson. The JSON goes through a buffer of our own written with
 * write(2), so a forked worker, which inherits it, never writes it, and
 * an exit without lua_close (os.exit) still ends the file from an atexit
 * handler, without Lua.
 *
 * Threads: `T`'s recording half (the batch being filled, the strings, the
 * last names) belongs to the traced state's thread; its writing half (the
 * buffer, the rows, the bars, the records kept) to the writer thread
 * while a trace is on, and to the traced state's thread again once it has
 * joined the writer, at trace(false), when the state closes and at exit.
 * `Q.mu` guards the queue between the two (batches handed over, spare
 * batches handed back, the end); it is the only lock, and it is never
 * held while formatting or writing. At most LFB_TRACE_QUEUED batches wait
 * for the writer: beyond that the traced state waits for room, so the
 * memory is that of the tasks in flight plus a few batches. Futures cross
 * threads with their references; their results are published by the
 * runtime before it marks them done (lf_future_done, an acquire) and stay
 * while referenced.
 * Without a writer thread (pthread_create failed) the traced state's
 * thread writes each batch itself.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lfb.h"
#include "trace.h"

#define MAXROWS 256
#define BUFCAP (64 * 1024)
#define LFB_TRACE_BATCH 4096 /* records a batch */
#define LFB_TRACE_QUEUED 4   /* full batches waiting for the writer */
#define SPARES 2             /* empty batches kept for reuse */

#define NUMMAX 24 /* the most bytes a formatted number takes */

/* `"pid":P,"tid":T` of a row, formatted once. */
typedef struct tident {
  char s[2 * NUMMAX + 16];
  size_t n;
} tident;

typedef struct tstr {
  char *json;       /* escaped, with its quotes */
  size_t njson;
  char *raw;
} tstr;

typedef struct srec {
  lf_future *f;     /* NULL: a wait */
  unsigned long id;
  double t0, t1;
  const tstr *name, *exec; /* interned: they stay until the trace ends */
} srec;

typedef struct tbatch {
  struct tbatch *next;
  size_t n;
  srec r[LFB_TRACE_BATCH];
} tbatch;

static struct {
  /* set at start, read by both threads, cleared once the writer is joined */
  int fd;             /* -1: no trace */
  int svg;
  long owner;         /* the process that traces (a fork child does not) */
  double t0;
  long pid, tid;
  /* the traced state's thread */
  lfb_ctx *ctx;       /* the traced state's context */
  unsigned long ntasks;
  tbatch *cur;        /* the batch being filled */
  tstr **str;
  size_t nstr, capstr;
  const void *lastfn, *lastpool; /* the last submit's: most repeat */
  const tstr *lastname, *lastexec;
  int threaded;       /* the writer thread runs */
  pthread_t writer;
  int atexit_set;
  /* the writer's */
  int nevents;        /* JSON events written: a comma before the next */
  char *buf;          /* JSON not yet written */
  size_t len;
  lfb_trow rows[MAXROWS];
  tident ident[MAXROWS]; /* their pid and tid as JSON */
  size_t nrows;
  srec *kept;         /* records of futures not yet done */
  size_t nkept, capkept;
  lfb_tbar *bars;     /* the picture's bars */
  size_t nbars, capbars;
  double last;        /* the latest time seen, for the picture's axis */
} T = {.fd = -1};

/* Between the traced state's thread and the writer. */
static struct {
  pthread_mutex_t mu;
  pthread_cond_t more; /* a batch queued, or the end */
  pthread_cond_t room; /* a batch taken */
  tbatch *head, *tail; /* full batches, oldest first */
  size_t nqueued;
  tbatch *spare;       /* empty ones handed back */
  size_t nspare;
  int end;             /* no batch comes after those queued */
} Q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
       PTHREAD_COND_INITIALIZER, NULL, NULL, 0, NULL, 0, 0};

_Atomic int lfb_tracing_on; /* a trace is on: the one test untraced paths pay */

static const char SENTINEL[] = "luafutures.trace";
static const char STRINGS[] = "luafutures.trace.strings"; /* string -> index */
static const char LASTFN[] = "luafutures.trace.lastfn";   /* keeps it alive */
static const char ENCODE[] = "luafutures.trace.encode";   /* cjson.encode */

/* ---- output --------------------------------------------------------------- */

static void write_all(const char *s, size_t n) {
  size_t off = 0;
  while (off < n) {
    ssize_t k = write(T.fd, s + off, n - off);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break; /* a full disk loses the trace, not the script */
    off += (size_t)k;
  }
}

static void flush_buf(void) {
  write_all(T.buf, T.len);
  T.len = 0;
}

/* Where n more bytes (n <= BUFCAP) go: the caller writes them there and
 * sets T.len past them. */
static char *room(size_t n) {
  if (T.len + n > BUFCAP) flush_buf();
  return T.buf + T.len;
}

static void put(const char *s, size_t n) {
  if (T.buf == NULL) return;
  if (n > BUFCAP) { /* a long executor name, say: past the buffer */
    flush_buf();
    write_all(s, n);
    return;
  }
  memcpy(room(n), s, n);
  T.len += n;
}
#define PUTS(lit) put(lit, sizeof lit - 1)
static void puts_(const char *s) { put(s, strlen(s)); }

/* The formatting below writes at a cursor into room() it asked for. */
#define CAT(o, lit) (memcpy(o, lit, sizeof lit - 1), (o) + sizeof lit - 1)

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

static void put_ptr(const void *p) {
  char d[2 + 16];
  int i = sizeof d;
  uintptr_t u = (uintptr_t)p;
  do d[--i] = "0123456789abcdef"[u & 15]; while (u >>= 4);
  d[--i] = 'x';
  d[--i] = '0';
  char *o = room(sizeof d + 2);
  *o++ = '"';
  memcpy(o, d + i, sizeof d - (size_t)i);
  o += sizeof d - (size_t)i;
  *o++ = '"';
  T.len = (size_t)(o - T.buf);
}

static void ident_of(tident *id, long pid, long tid) {
  char *o = CAT(id->s, "\"pid\":");
  o = cat_long(o, pid);
  o = CAT(o, ",\"tid\":");
  o = cat_long(o, tid);
  id->n = (size_t)(o - id->s);
}

#define HEADMAX (32 + sizeof(tident) + NUMMAX) /* the most ev_at() writes */

/* The common head of an event, after its comma: ph, pid, tid, ts; at o,
 * which has room for HEADMAX bytes. */
static char *ev_at(char *o, char ph, const tident *who, double t) {
  if (T.nevents++) o = CAT(o, ",\n");
  o = CAT(o, "{\"ph\":\"");
  *o++ = ph;
  o = CAT(o, "\",");
  memcpy(o, who->s, who->n);
  o += who->n;
  o = CAT(o, ",\"ts\":");
  return cat_us(o, t - T.t0);
}

static void ev(char ph, const tident *who, double t) {
  T.len = (size_t)(ev_at(room(HEADMAX), ph, who, t) - T.buf);
}

/* A worker's name comes from its bytes, maybe from another process:
 * escaped here, as JSON wants, and only printable ASCII kept. */
static char *escape(const char *s) {
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

static void meta(const char *what, const tident *who, const char *json) {
  ev('M', who, T.t0);
  PUTS(",\"name\":\"");
  puts_(what);
  PUTS("\",\"args\":{\"name\":");
  puts_(json ? json : "\"?\"");
  PUTS("}}");
}

/* The row of (pid, tid), named at its first sight (thread_name metadata);
 * -1 past MAXROWS. */
static int row_of(long pid, long tid, const char *name) {
  for (size_t i = 0; i < T.nrows; i++)
    if (T.rows[i].pid == pid && T.rows[i].tid == tid) return (int)i;
  if (T.nrows == MAXROWS) return -1; /* its events go unnamed */
  tident *id = &T.ident[T.nrows];
  ident_of(id, pid, tid);
  if (!T.svg) {
    char *json = escape(name);
    if (pid != T.pid) meta("process_name", id, json);
    meta("thread_name", id, json);
    free(json);
  }
  lfb_trow *r = &T.rows[T.nrows];
  r->pid = pid;
  r->tid = tid;
  snprintf(r->name, sizeof r->name, "%s", name);
  return (int)T.nrows++;
}

static void bar(int row, int kind, int outcome, double t0, double t1,
                const char *label) {
  if (t1 > T.last) T.last = t1;
  if (T.nbars == T.capbars) {
    size_t cap = T.capbars ? 2 * T.capbars : 256;
    lfb_tbar *b = realloc(T.bars, cap * sizeof *b);
    if (b == NULL) return; /* the picture misses a bar, the script goes on */
    T.bars = b;
    T.capbars = cap;
  }
  lfb_tbar *b = &T.bars[T.nbars++];
  b->row = row;
  b->kind = kind;
  b->outcome = outcome;
  b->ts = t0 - T.t0;
  b->dur = t1 - t0;
  snprintf(b->label, sizeof b->label, "%s", label);
}

/* ---- tasks (the writer) --------------------------------------------------- */

static const char *const outcomes[] = {"returned", "raised", "cancelled"};

/* A complete event up to its name, at o (room for SLICEMAX bytes). */
#define SLICEMAX (HEADMAX + 40 + NUMMAX)
static char *slice_at(char *o, const char *cat, size_t ncat, const tident *who,
                      double t0, double t1) {
  o = ev_at(o, 'X', who, t0);
  o = CAT(o, ",\"dur\":");
  o = cat_us(o, t1 - t0);
  o = CAT(o, ",\"cat\":\"");
  memcpy(o, cat, ncat);
  o += ncat;
  return CAT(o, "\",\"name\":");
}
#define COMMIT(o) (T.len = (size_t)((o) - T.buf))

/* The events of the task of s, whose future is done: its submit (a slice,
 * which the flow's start needs to bind to), its run, and the flow. Most of
 * it is numbers: each is formatted once, the rows' pid and tid never. */
static void task_events(const srec *s) {
  lfb_stamp st = {0};
  int outcome = LFB_OUT_CANCELLED;
  if (lf_future_state(s->f) == LF_FINISHED) { /* acquire: the result is out */
    int failed = 0;
    const lf_payload *res = lf_future_result(s->f, &failed);
    outcome = failed ? LFB_OUT_RAISED : LFB_OUT_RETURNED;
    if (!lfb_outcome_stamp_read(res, &st)) st.timed = 0;
  }
  /* Cancelled, failed by a broken pool or run untimed: it did not run on a
   * worker we know, so it is an instant at the end of its submit. */
  if (!st.timed) {
    st.start = st.end = s->t1;
    st.pid = T.pid;
    st.tid = T.tid;
    snprintf(st.worker, sizeof st.worker, "MainThread");
  }
  int row = row_of(st.pid, st.tid, st.worker);
  if (T.svg) {
    bar(row < 0 ? 0 : row, LFB_TEV_TASK, outcome, st.start, st.end, s->name->raw);
    return;
  }
  tident other;
  const tident *main = &T.ident[0], *who = &T.ident[row];
  if (row < 0) {
    ident_of(&other, st.pid, st.tid);
    who = &other;
  }
  char id[NUMMAX];
  size_t nid = (size_t)(cat_ulong(id, s->id) - id);
  char *o = room(2 * SLICEMAX + 64 + 2 * NUMMAX);
  o = slice_at(o, "submit", 6, main, s->t0, s->t1);
  o = CAT(o, "\"submit\",\"args\":{\"id\":");
  memcpy(o, id, nid);
  o = CAT(o + nid, "}}");
  o = slice_at(o, "task", 4, who, st.start, st.end);
  COMMIT(o);
  put(s->name->json, s->name->njson);
  o = room(64 + 3 * NUMMAX);
  o = CAT(o, ",\"args\":{\"id\":");
  memcpy(o, id, nid);
  o = CAT(o + nid, ",\"future\":");
  COMMIT(o);
  put_ptr(s->f);
  PUTS(",\"executor\":");
  put(s->exec->json, s->exec->njson);
  o = room(2 * HEADMAX + 128 + 2 * NUMMAX);
  o = CAT(o, ",\"outcome\":\"");
  size_t nout = strlen(outcomes[outcome]);
  memcpy(o, outcomes[outcome], nout);
  o = CAT(o + nout, "\"}}");
  if (st.timed) {
    o = ev_at(o, 's', main, (s->t0 + s->t1) / 2);
    o = CAT(o, ",\"cat\":\"flow\",\"name\":\"submit\",\"id\":");
    memcpy(o, id, nid);
    o = CAT(o + nid, "}");
    o = ev_at(o, 'f', who, st.start);
    o = CAT(o, ",\"cat\":\"flow\",\"name\":\"submit\",\"id\":");
    memcpy(o, id, nid);
    o = CAT(o + nid, ",\"bp\":\"e\"}");
  }
  COMMIT(o);
}

static void wait_events(const srec *s) {
  if (T.svg) {
    bar(0, LFB_TEV_WAIT, 0, s->t0, s->t1, s->name->raw);
    return;
  }
  COMMIT(slice_at(room(SLICEMAX), "wait", 4, &T.ident[0], s->t0, s->t1));
  put(s->name->json, s->name->njson);
  PUTS("}");
}

/* Writes the events of r[0 .. n) that are done; returns how many of the
 * others it kept at r's start, or drops them (their tasks still run when
 * the trace ends) if this is the last time. */
static size_t write_done(srec *r, size_t n, int last) {
  size_t keep = 0;
  for (size_t i = 0; i < n; i++) {
    srec *s = &r[i];
    if (s->f == NULL) {
      wait_events(s);
    } else if (lf_future_done(s->f)) {
      task_events(s);
      lf_future_unref(s->f);
    } else if (last) {
      lf_future_unref(s->f);
    } else {
      r[keep++] = *s;
    }
  }
  return keep;
}

/* A batch from the traced state: the records kept from earlier batches
 * first, then its own; what is not done yet is kept (the batch is not). */
static void write_batch(tbatch *b) {
  T.nkept = write_done(T.kept, T.nkept, 0);
  size_t left = write_done(b->r, b->n, 0);
  if (T.nkept + left > T.capkept) {
    size_t cap = T.capkept ? T.capkept : 256;
    while (cap < T.nkept + left) cap *= 2;
    srec *k = realloc(T.kept, cap * sizeof *k);
    if (k == NULL) { /* these tasks miss the trace; the script goes on */
      for (size_t i = 0; i < left; i++) lf_future_unref(b->r[i].f);
      left = 0;
    } else {
      T.kept = k;
      T.capkept = cap;
    }
  }
  if (left) memcpy(T.kept + T.nkept, b->r, left * sizeof *b->r); /* kept */
  T.nkept += left;                             /* may be NULL while empty */
  b->n = 0;
}

/* The writer thread: batches as they come, then the last look at the
 * records kept once the traced state says the end. */
static void *writer_main(void *arg) {
  (void)arg;
  tbatch *done = NULL;
  pthread_mutex_lock(&Q.mu);
  for (;;) {
    if (done) { /* handed back for reuse, or freed */
      if (Q.nspare < SPARES) {
        done->next = Q.spare;
        Q.spare = done;
        Q.nspare++;
        done = NULL;
      }
    }
    while (Q.head == NULL && !Q.end) pthread_cond_wait(&Q.more, &Q.mu);
    tbatch *b = Q.head;
    if (b == NULL) break; /* the end, every batch written */
    Q.head = b->next;
    if (Q.head == NULL) Q.tail = NULL;
    Q.nqueued--;
    pthread_cond_signal(&Q.room);
    pthread_mutex_unlock(&Q.mu);
    free(done);
    write_batch(b);
    done = b;
    pthread_mutex_lock(&Q.mu);
  }
  pthread_mutex_unlock(&Q.mu);
  free(done);
  T.nkept = write_done(T.kept, T.nkept, 1);
  return NULL;
}

/* ---- recording (the traced state) ----------------------------------------- */

/* The batch being filled goes to the writer (or, without one, is written
 * here); with `end`, the last one. Waits while the writer is
 * LFB_TRACE_QUEUED batches behind. */
static void hand_over(int end) {
  tbatch *b = T.cur;
  T.cur = NULL;
  if (!T.threaded) {
    if (b) write_batch(b);
    if (end) {
      T.nkept = write_done(T.kept, T.nkept, 1);
      free(b);
    } else {
      T.cur = b;
    }
    return;
  }
  pthread_mutex_lock(&Q.mu);
  while (!end && Q.nqueued >= LFB_TRACE_QUEUED)
    pthread_cond_wait(&Q.room, &Q.mu);
  if (b) {
    b->next = NULL;
    if (Q.tail) Q.tail->next = b;
    else Q.head = b;
    Q.tail = b;
    Q.nqueued++;
  }
  if (end) Q.end = 1;
  if (!end && Q.spare) {
    T.cur = Q.spare;
    Q.spare = T.cur->next;
    Q.nspare--;
  }
  pthread_cond_signal(&Q.more);
  pthread_mutex_unlock(&Q.mu);
}

static srec *new_rec(void) {
  if (T.cur && T.cur->n == LFB_TRACE_BATCH) hand_over(0);
  if (T.cur == NULL) {
    T.cur = malloc(sizeof *T.cur);
    if (T.cur == NULL) return NULL;
    T.cur->n = 0;
  }
  return &T.cur->r[T.cur->n++];
}

/* The interned copy of the string on top (popped), escaped by cjson. */
static const tstr *intern(lua_State *L) {
  int str = lua_gettop(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, STRINGS); /* s strings */
  lua_pushvalue(L, str);
  if (lua_rawget(L, -2) == LUA_TLIGHTUSERDATA) {
    const tstr *t = lua_touserdata(L, -1);
    lua_settop(L, str - 1);
    return t;
  }
  lua_pop(L, 1);
  if (T.nstr == T.capstr) {
    size_t cap = T.capstr ? 2 * T.capstr : 64;
    tstr **n = realloc(T.str, cap * sizeof *n);
    if (n == NULL) luaL_error(L, "not enough memory");
    T.str = n;
    T.capstr = cap;
  }
  char *json;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, ENCODE) == LUA_TFUNCTION) {
    lua_pushvalue(L, str); /* s strings encode s */
    lua_call(L, 1, 1);
    json = strdup(lua_tostring(L, -1));
  } else { /* a picture needs no JSON, and may be drawn without cjson */
    json = escape(lua_tostring(L, str));
  }
  char *raw = strdup(lua_tostring(L, str));
  tstr *t = malloc(sizeof *t);
  if (json == NULL || raw == NULL || t == NULL) {
    free(json);
    free(raw);
    free(t);
    luaL_error(L, "not enough memory");
  }
  t->json = json;
  t->njson = strlen(json);
  t->raw = raw;
  T.str[T.nstr++] = t;
  lua_pushvalue(L, str);
  lua_pushlightuserdata(L, t);
  lua_rawset(L, str + 1);
  lua_settop(L, str - 1);
  return t;
}

double lfb_trace_now(lfb_ctx *ctx) {
  return lfb_tracing_on && ctx == T.ctx ? lf_now() : -1;
}

/* The name of the function at 2: "source:line", the last one remembered. */
static const tstr *fn_name(lua_State *L) {
  const void *fn = lua_topointer(L, 2);
  if (fn == T.lastfn) return T.lastname;
  lua_Debug ar;
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, LASTFN); /* so its address stays its */
  lua_getinfo(L, ">S", &ar);
  lua_pushfstring(L, "%s:%d", ar.short_src, ar.linedefined);
  T.lastname = intern(L);
  T.lastfn = fn;
  return T.lastname;
}

static const tstr *exec_name(lua_State *L, const lfb_exec_ops *ops, void *pool) {
  if (pool == T.lastpool) return T.lastexec;
  if (ops->handles_ok && strcmp(ops->detail, "prefix") == 0)
    lua_pushstring(L, ops->detail_value(pool));
  else
    lua_pushfstring(L, "%s at %p", ops->name, pool);
  T.lastexec = intern(L);
  T.lastpool = pool;
  return T.lastexec;
}

void lfb_trace_submit(lua_State *L, lfb_ctx *ctx, lf_future *f,
                      const lfb_exec_ops *ops, void *pool, double t0) {
  if (t0 < 0 || ctx != T.ctx || T.fd < 0) return;
  const tstr *name = fn_name(L), *exec = exec_name(L, ops, pool);
  srec *s = new_rec();
  if (s == NULL) return; /* a task missing from the trace, not an error */
  lf_future_ref(f);
  *s = (srec){f, ++T.ntasks, t0, lf_now(), name, exec};
}

void lfb_trace_wait(lua_State *L, lfb_ctx *ctx, const char *what, double t0) {
  if (t0 < 0 || ctx != T.ctx || T.fd < 0) return;
  double t1 = lf_now();
  lua_pushstring(L, what);
  const tstr *name = intern(L);
  srec *s = new_rec();
  if (s) *s = (srec){NULL, 0, t0, t1, name, NULL};
}

/* ---- starting and stopping ------------------------------------------------ */

static int ends_with(const char *s, const char *tail) {
  size_t n = strlen(s), m = strlen(tail);
  return n >= m && strcasecmp(s + n - m, tail) == 0;
}

static void free_all(void) {
  for (size_t i = 0; i < T.nstr; i++) {
    free(T.str[i]->json);
    free(T.str[i]->raw);
    free(T.str[i]);
  }
  free(T.str);
  free(T.kept);
  free(T.buf);
  free(T.bars);
  free(T.cur);
  while (Q.spare) {
    tbatch *b = Q.spare;
    Q.spare = b->next;
    free(b);
  }
  T.str = NULL;
  T.kept = NULL;
  T.buf = NULL;
  T.bars = NULL;
  T.cur = NULL;
  T.len = T.nbars = T.capbars = T.nrows = T.nstr = T.capstr = 0;
  T.nkept = T.capkept = 0;
  Q.nspare = 0;
  Q.end = 0;
  T.lastfn = T.lastpool = NULL;
}

/* Ends the file without Lua (also from the atexit handler): the last
 * batch written and the writer joined, then the JSON's closing bracket,
 * or the whole picture. */
static void finish_file(void) {
  hand_over(1);
  if (T.threaded) {
    pthread_join(T.writer, NULL);
    T.threaded = 0;
  }
  if (T.svg) {
    lfb_svg_write(T.fd, T.rows, T.nrows, T.bars, T.nbars, T.last - T.t0);
  } else {
    put("\n]}\n", 4);
    flush_buf();
  }
  close(T.fd);
  T.fd = -1;
  lfb_tracing_on = 0;
  T.ctx = NULL;
  free_all();
}

static void at_exit(void) {
  if (T.fd >= 0 && T.owner == (long)getpid()) finish_file();
}

/* The exit handler lives in this module, which lua_close may unload
 * (dlclose) before exit runs the handler: the module stays loaded. */
static int pin_module(void) {
  Dl_info info;
  if (dladdr((void *)at_exit, &info) == 0 || info.dli_fname == NULL) return 0;
  return dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) != NULL;
}

/* Stops the trace of L's state: what is done is written first. */
static void stop(lua_State *L) {
  if (T.fd < 0) return;
  finish_file();
  static const char *const keys[] = {STRINGS, ENCODE, LASTFN};
  for (int i = 0; i < 3; i++) {
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, keys[i]);
  }
}

static int sentinel_gc(lua_State *L) {
  if (T.fd >= 0 && T.ctx == lua_touserdata(L, lua_upvalueindex(1))) stop(L);
  return 0;
}

/* The writer thread, with every signal blocked (they are the script's);
 * without one the traced state writes its batches itself. */
static void start_writer(void) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  T.threaded = pthread_create(&T.writer, NULL, writer_main, NULL) == 0;
  if (T.threaded) pthread_setname_np(T.writer, "luafutures-tr"); /* in top, perf */
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Opens path for a trace of L's state; NULL, or the error message pushed. */
static const char *start(lua_State *L, const char *path) {
  int svg = ends_with(path, ".svg");
  lua_getglobal(L, "require");
  lua_pushliteral(L, "cjson");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    if (!svg)
      return lua_pushfstring(L, "cannot trace to '%s': lua-cjson is needed (%s)",
                             path, lfb_tostring_safe(L, -1));
    lua_pop(L, 1);
  } else {
    lua_getfield(L, -1, "encode");
    lua_rawsetp(L, LUA_REGISTRYINDEX, ENCODE);
    lua_pop(L, 1);
  }
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0)
    return lua_pushfstring(L, "cannot open trace file '%s': %s", path,
                           strerror(errno));
  lfb_ctx *ctx = lfb_ctx_push(L);
  lua_pop(L, 1);
  T.buf = malloc(BUFCAP);
  if (T.buf == NULL) {
    close(fd);
    return lua_pushliteral(L, "not enough memory");
  }
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, STRINGS);
  /* The finaliser that ends the trace when the state closes. */
  lua_newuserdatauv(L, 1, 0);
  lua_createtable(L, 0, 1);
  lua_pushlightuserdata(L, ctx);
  lua_pushcclosure(L, sentinel_gc, 1);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, SENTINEL);
  T.fd = fd;
  T.svg = svg;
  T.ctx = ctx;
  T.owner = T.pid = (long)getpid();
  T.tid = (long)gettid();
  T.t0 = T.last = lf_now();
  T.nevents = 0;
  T.ntasks = 0;
  if (!T.atexit_set && pin_module()) T.atexit_set = atexit(at_exit) == 0;
  if (!svg) {
    /* otherData.t0: the monotonic second of ts 0, futures.now()'s clock */
    char head[160];
    int n = snprintf(head, sizeof head,
                     "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"t0\":%.9f},"
                     "\"traceEvents\":[\n", T.t0);
    put(head, (size_t)n);
  }
  row_of(T.pid, T.tid, "MainThread");
  if (!svg) meta("process_name", &T.ident[0], "\"luafutures\"");
  start_writer(); /* after the writer's half is set up */
  lfb_tracing_on = 1;
  return NULL;
}

/* futures.trace(path) or futures.trace(false) */
static int m_trace(lua_State *L) {
  int t = lua_type(L, 1);
  luaL_argexpected(L, t == LUA_TSTRING || (t == LUA_TBOOLEAN && !lua_toboolean(L, 1)),
                   1, "string or false");
  lfb_ctx *ctx = lfb_ctx_of(L);
  if (T.fd >= 0 && T.ctx != ctx)
    return luaL_error(L, "another Lua state is tracing");
  stop(L);
  if (t != LUA_TSTRING) return 0;
  size_t len;
  const char *path = lua_tolstring(L, 1, &len);
  luaL_argcheck(L, strlen(path) == len && len > 0, 1,
                "path is empty or contains a zero byte");
  const char *err = start(L, path);
  if (err) return luaL_error(L, "%s", err);
  return 0;
}

static const luaL_Reg funcs[] = {
    {"trace", m_trace},
    {NULL, NULL},
};

/* The module table on top. A state that is not a worker starts the trace
 * LUAFUTURES_TRACE names, once per process; a path it cannot open is one
 * line on stderr, not an error of the script. */
static const char *requested; /* luafutures --trace */

void lfb_trace_request(const char *path) { requested = path; }

void lfb_open_trace(lua_State *L, int worker) {
  lfb_setfuncs(L, funcs);
  const char *env = requested ? requested : getenv("LUAFUTURES_TRACE");
  static int env_done;
  if (worker || env_done || env == NULL || *env == '\0' || T.fd >= 0) return;
  env_done = 1;
  const char *err = start(L, env);
  if (err) {
    fprintf(stderr, "luafutures: LUAFUTURES_TRACE: %s\n", err);
    fflush(stderr);
    lua_pop(L, 1);
  }
}
