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
 * and ended, the interned names of its function and executor) to `T.sub`;
 * every LFB_TRACE_BATCH submits, at trace(false), when the state closes
 * and at exit, the records of the futures that are done become events,
 * formatted here in C, and the others wait for the next batch. No Lua
 * table is made per event and no hook per task, so a trace costs a few
 * hundred nanoseconds a task; the strings (function names, executors,
 * metadata) are escaped once each by lua-cjson. The JSON goes through a
 * buffer of our own written with write(2), so a forked worker, which
 * inherits it, never writes it, and an exit without lua_close (os.exit)
 * still ends the file from an atexit handler, without Lua.
 *
 * No lock: only the traced state's thread, or the exit handler, touches
 * `T`; what crosses threads is the result payloads, which the runtime
 * publishes.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lfb.h"
#include "trace.h"

#define MAXROWS 256
#define BUFCAP (64 * 1024)
#define LFB_TRACE_BATCH 4096 /* submits between two writes */

typedef struct srec {
  lf_future *f;     /* NULL: a wait */
  unsigned long id;
  double t0, t1;
  int name, exec;   /* indexes in T.str */
} srec;

typedef struct tstr {
  char *json;       /* escaped, with its quotes */
  char *raw;
} tstr;

static struct {
  int fd;             /* -1: no trace */
  int svg;
  lfb_ctx *ctx;       /* the traced state's context */
  long owner;         /* the process that traces (a fork child does not) */
  double t0;
  long pid, tid;
  int nevents;        /* JSON events written: a comma before the next */
  unsigned long ntasks;
  char *buf;          /* JSON not yet written */
  size_t len;
  lfb_trow rows[MAXROWS];
  char *rowjson[MAXROWS];
  size_t nrows;
  srec *sub;          /* submits and waits not yet written */
  size_t nsub, capsub, next_drain;
  tstr *str;
  size_t nstr, capstr;
  const void *lastfn, *lastpool; /* the last submit's: most repeat */
  int lastname, lastexec;
  lfb_tbar *bars;     /* the picture's bars */
  size_t nbars, capbars;
  double last;        /* the latest time seen, for the picture's axis */
  int atexit_set;
} T = {.fd = -1};

_Atomic int lfb_tracing_on; /* a trace is on: the one test untraced paths pay */

static const char SENTINEL[] = "luafutures.trace";
static const char STRINGS[] = "luafutures.trace.strings"; /* string -> index */
static const char LASTFN[] = "luafutures.trace.lastfn";   /* keeps it alive */
static const char ENCODE[] = "luafutures.trace.encode";   /* cjson.encode */

/* ---- output --------------------------------------------------------------- */

static void flush_buf(void) {
  size_t off = 0;
  while (off < T.len) {
    ssize_t n = write(T.fd, T.buf + off, T.len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break; /* a full disk loses the trace, not the script */
    off += (size_t)n;
  }
  T.len = 0;
}

static void put(const char *s, size_t n) {
  if (T.buf == NULL || n > BUFCAP) return;
  if (T.len + n > BUFCAP) flush_buf();
  memcpy(T.buf + T.len, s, n);
  T.len += n;
}
#define PUTS(lit) put(lit, sizeof lit - 1)
static void puts_(const char *s) { put(s, strlen(s)); }

static void put_long(long v) {
  char d[24];
  int i = sizeof d;
  unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
  do d[--i] = (char)('0' + u % 10); while (u /= 10);
  if (v < 0) d[--i] = '-';
  put(d + i, sizeof d - (size_t)i);
}

/* Microseconds with three decimals (nanoseconds), from seconds. */
static void put_us(double seconds) {
  long ns = (long)(seconds * 1e9 + (seconds < 0 ? -0.5 : 0.5));
  if (ns < 0) {
    PUTS("-");
    ns = -ns;
  }
  put_long(ns / 1000);
  char f[4] = {'.', (char)('0' + ns / 100 % 10), (char)('0' + ns / 10 % 10),
               (char)('0' + ns % 10)};
  put(f, 4);
}

static void put_ptr(const void *p) {
  char d[2 + 16];
  int i = sizeof d;
  uintptr_t u = (uintptr_t)p;
  do d[--i] = "0123456789abcdef"[u & 15]; while (u >>= 4);
  d[--i] = 'x';
  d[--i] = '0';
  PUTS("\"");
  put(d + i, sizeof d - (size_t)i);
  PUTS("\"");
}

/* The common head of an event, after its comma: ph, pid, tid, ts. */
static void ev(const char *ph, long pid, long tid, double t) {
  if (T.nevents++) PUTS(",\n");
  PUTS("{\"ph\":\"");
  puts_(ph);
  PUTS("\",\"pid\":");
  put_long(pid);
  PUTS(",\"tid\":");
  put_long(tid);
  PUTS(",\"ts\":");
  put_us(t - T.t0);
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

static void meta(const char *what, long pid, long tid, const char *json) {
  ev("M", pid, tid, T.t0);
  PUTS(",\"name\":\"");
  puts_(what);
  PUTS("\",\"args\":{\"name\":");
  puts_(json ? json : "\"?\"");
  PUTS("}}");
}

/* The row of (pid, tid), named at its first sight (thread_name metadata). */
static int row_of(long pid, long tid, const char *name) {
  for (size_t i = 0; i < T.nrows; i++)
    if (T.rows[i].pid == pid && T.rows[i].tid == tid) return (int)i;
  if (T.nrows == MAXROWS) return 0;
  lfb_trow *r = &T.rows[T.nrows];
  r->pid = pid;
  r->tid = tid;
  snprintf(r->name, sizeof r->name, "%s", name);
  if (!T.svg) {
    char *json = escape(r->name);
    if (pid != T.pid) meta("process_name", pid, tid, json);
    meta("thread_name", pid, tid, json);
    free(json);
  }
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

/* A complete event, its args left open for the caller to end. */
static void slice(const char *json_name, const char *cat, long pid, long tid,
                  double t0, double t1) {
  ev("X", pid, tid, t0);
  PUTS(",\"dur\":");
  put_us(t1 - t0);
  PUTS(",\"cat\":\"");
  puts_(cat);
  PUTS("\",\"name\":");
  puts_(json_name);
}

/* ---- tasks ---------------------------------------------------------------- */

static const char *const outcomes[] = {"returned", "raised", "cancelled"};

/* The events of the task of s, whose future is done. */
static void task_events(const srec *s) {
  lfb_stamp st = {0};
  int outcome = LFB_OUT_CANCELLED;
  if (lf_future_state(s->f) == LF_FINISHED) {
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
    bar(row, LFB_TEV_TASK, outcome, st.start, st.end, T.str[s->name].raw);
    return;
  }
  slice("\"submit\"", "submit", T.pid, T.tid, s->t0, s->t1);
  PUTS(",\"args\":{\"id\":");
  put_long((long)s->id);
  PUTS("}}");
  slice(T.str[s->name].json, "task", st.pid, st.tid, st.start, st.end);
  PUTS(",\"args\":{\"id\":");
  put_long((long)s->id);
  PUTS(",\"future\":");
  put_ptr(s->f);
  PUTS(",\"executor\":");
  puts_(T.str[s->exec].json);
  PUTS(",\"outcome\":\"");
  puts_(outcomes[outcome]);
  PUTS("\"}}");
  if (!st.timed) return;
  for (int i = 0; i < 2; i++) {
    ev(i ? "f" : "s", i ? st.pid : T.pid, i ? st.tid : T.tid,
       i ? st.start : (s->t0 + s->t1) / 2);
    PUTS(",\"cat\":\"flow\",\"name\":\"submit\",\"id\":");
    put_long((long)s->id);
    if (i) PUTS(",\"bp\":\"e\"");
    PUTS("}");
  }
}

static void wait_events(const srec *s) {
  if (T.svg) {
    bar(0, LFB_TEV_WAIT, 0, s->t0, s->t1, T.str[s->name].raw);
    return;
  }
  slice(T.str[s->name].json, "wait", T.pid, T.tid, s->t0, s->t1);
  PUTS("}");
}

/* Writes what is done; keeps the rest, unless this is the last time. */
static void drain(int last) {
  size_t keep = 0;
  for (size_t i = 0; i < T.nsub; i++) {
    srec *s = &T.sub[i];
    if (s->f == NULL) {
      wait_events(s);
    } else if (lf_future_done(s->f)) {
      lf_future_sync(s->f); /* its result is published */
      task_events(s);
      lf_future_unref(s->f);
    } else if (last) {
      lf_future_unref(s->f); /* still running when the trace ends */
    } else {
      T.sub[keep++] = *s;
    }
  }
  T.nsub = keep;
}

/* An index in T.str for the string on top (popped), escaped by cjson. */
static int intern(lua_State *L) {
  int str = lua_gettop(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, STRINGS); /* s strings */
  lua_pushvalue(L, str);
  if (lua_rawget(L, -2) == LUA_TNUMBER) {
    int i = (int)lua_tointeger(L, -1);
    lua_settop(L, str - 1);
    return i;
  }
  lua_pop(L, 1);
  if (T.nstr == T.capstr) {
    size_t cap = T.capstr ? 2 * T.capstr : 64;
    tstr *n = realloc(T.str, cap * sizeof *n);
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
  if (json == NULL || raw == NULL) {
    free(json);
    free(raw);
    luaL_error(L, "not enough memory");
  }
  int i = (int)T.nstr++;
  T.str[i].json = json;
  T.str[i].raw = raw;
  lua_pushvalue(L, str);
  lua_pushinteger(L, i);
  lua_rawset(L, str + 1);
  lua_settop(L, str - 1);
  return i;
}

static srec *new_rec(lua_State *L) {
  /* Tasks still running stay: the next look waits for as many new
   * records again, so a long backlog is not rescanned at every submit. */
  if (T.nsub >= T.next_drain) {
    drain(0);
    T.next_drain = T.nsub + LFB_TRACE_BATCH;
  }
  if (T.nsub == T.capsub) {
    size_t cap = T.capsub ? 2 * T.capsub : 256;
    srec *n = realloc(T.sub, cap * sizeof *n);
    if (n == NULL) return NULL;
    T.sub = n;
    T.capsub = cap;
  }
  return &T.sub[T.nsub++];
}

double lfb_trace_now(lfb_ctx *ctx) {
  return lfb_tracing_on && ctx == T.ctx ? lf_now() : -1;
}

/* The name of the function at 2: "source:line", the last one remembered. */
static int fn_name(lua_State *L) {
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

static int exec_name(lua_State *L, const lfb_exec_ops *ops, void *pool) {
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
  int name = fn_name(L), exec = exec_name(L, ops, pool);
  srec *s = new_rec(L);
  if (s == NULL) return; /* a task missing from the trace, not an error */
  lf_future_ref(f);
  *s = (srec){f, ++T.ntasks, t0, lf_now(), name, exec};
}

void lfb_trace_wait(lua_State *L, lfb_ctx *ctx, const char *what, double t0) {
  if (t0 < 0 || ctx != T.ctx || T.fd < 0) return;
  double t1 = lf_now();
  lua_pushstring(L, what);
  int name = intern(L);
  srec *s = new_rec(L);
  if (s) *s = (srec){NULL, 0, t0, t1, name, 0};
}

/* ---- starting and stopping ------------------------------------------------ */

static int ends_with(const char *s, const char *tail) {
  size_t n = strlen(s), m = strlen(tail);
  return n >= m && strcasecmp(s + n - m, tail) == 0;
}

static void free_all(void) {
  for (size_t i = 0; i < T.nstr; i++) {
    free(T.str[i].json);
    free(T.str[i].raw);
  }
  free(T.str);
  free(T.sub);
  free(T.buf);
  free(T.bars);
  T.str = NULL;
  T.sub = NULL;
  T.buf = NULL;
  T.bars = NULL;
  T.len = T.nbars = T.capbars = T.nrows = T.nstr = T.capstr = 0;
  T.nsub = T.capsub = 0;
  T.next_drain = LFB_TRACE_BATCH;
  T.lastfn = T.lastpool = NULL;
}

/* Ends the file without Lua (also from the atexit handler): the JSON's
 * closing bracket, or the whole picture. */
static void finish_file(void) {
  drain(1);
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
  T.next_drain = LFB_TRACE_BATCH;
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
  if (!svg) meta("process_name", T.pid, T.tid, "\"luafutures\"");
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
