/*
 * trace.c -- futures.trace(path) ... futures.trace(false), the
 * LUAFUTURES_TRACE environment variable and `luafutures --trace`: a
 * Chrome trace event file of what the pools did, written with lua-cjson,
 * or (a path ending in .svg) a timeline picture (trace_svg.c).
 *
 * One state traces at a time: the state that started it (the "traced
 * state", normally the main one). Its submits (submit and map) each leave
 * a small C record on the future, as a done hook; the hook, on whichever
 * thread completes the future, posts the record to the traced state's
 * inbox, and the state writes the task's events the next time it enters
 * the runtime. The task's start and end come from the run stamp its
 * worker wrote at the end of the result (outcome.c): the worker's own
 * clock, CLOCK_MONOTONIC, shared by every process of the machine, so a
 * process worker's times line up with the main thread's. No Lua table
 * outlives an event: memory grows with the tasks in flight, not with the
 * tasks traced. The JSON goes through a buffer of our own written with
 * write(2), so a forked worker, which inherits the buffer, never writes
 * it, and an exit without lua_close (os.exit) can still end the file from
 * an atexit handler without Lua.
 *
 * A trace is closed by trace(false), by a new trace(path), by the
 * finaliser of a registry object when the state closes (made when the
 * trace starts: executors made later are finalised, and so drained,
 * before it) or at exit. Every record carries the generation of the trace
 * it belongs to; one that arrives after its trace ended is dropped.
 * No lock: only the traced state's thread touches `T`; the hook touches
 * only its record and the inbox, which has its own lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lfb.h"
#include "trace.h"

#define MAXROWS 256
#define BUFCAP (64 * 1024)

static struct {
  int fd;             /* -1: no trace */
  int svg;
  lfb_ctx *ctx;       /* the traced state's context */
  unsigned gen;
  long owner;         /* the process that traces (a fork child does not) */
  double t0;
  long pid, tid;
  int nevents;        /* JSON events written: a comma before the next */
  unsigned long ntasks;
  char *buf;          /* JSON not yet written */
  size_t len;
  lfb_trow rows[MAXROWS];
  size_t nrows;
  lfb_tbar *bars;     /* the picture's bars */
  size_t nbars, capbars;
  double last;        /* the latest time seen, for the picture's axis */
  int atexit_set;
} T = {.fd = -1};

int lfb_tracing_on; /* a trace is on: the one test the untraced path pays */

static const char SENTINEL[] = "luafutures.trace";
static const char STRINGS[] = "luafutures.trace.strings";
static const char ENCODE[] = "luafutures.trace.encode";

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
  if (T.buf == NULL) return;
  if (T.len + n > BUFCAP) flush_buf();
  if (n > BUFCAP) {
    ssize_t w = write(T.fd, s, n);
    (void)w;
    return;
  }
  memcpy(T.buf + T.len, s, n);
  T.len += n;
}

/* Encodes the event table on top with cjson and pops it. */
static void emit(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, ENCODE);
  lua_insert(L, -2);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    if (T.nevents++) put(",\n", 2);
    put(s, n);
  }
  lua_pop(L, 1);
}

static double us(double t) { return (t - T.t0) * 1e6; }

static void field_s(lua_State *L, const char *k, const char *v) {
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}
static void field_n(lua_State *L, const char *k, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}
static void field_i(lua_State *L, const char *k, long v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

/* Pushes an event table with its common fields. */
static void ev(lua_State *L, const char *ph, const char *name, long pid,
               long tid) {
  lua_createtable(L, 0, 9);
  field_s(L, "ph", ph);
  field_s(L, "name", name);
  field_i(L, "pid", pid);
  field_i(L, "tid", tid);
}

static void meta(lua_State *L, const char *what, long pid, long tid,
                 const char *name) {
  ev(L, "M", what, pid, tid);
  lua_createtable(L, 0, 1);
  field_s(L, "name", name);
  lua_setfield(L, -2, "args");
  emit(L);
}

/* The row of (pid, tid), named at its first sight (thread_name metadata). */
static int row_of(lua_State *L, long pid, long tid, const char *name) {
  for (size_t i = 0; i < T.nrows; i++)
    if (T.rows[i].pid == pid && T.rows[i].tid == tid) return (int)i;
  if (T.nrows == MAXROWS) return 0;
  lfb_trow *r = &T.rows[T.nrows];
  r->pid = pid;
  r->tid = tid;
  snprintf(r->name, sizeof r->name, "%s", name);
  if (!T.svg) {
    if (pid != T.pid) meta(L, "process_name", pid, tid, name);
    meta(L, "thread_name", pid, tid, name);
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

/* A complete event ("X"); args are left to the caller when it asks. */
static void slice(lua_State *L, const char *name, const char *cat, long pid,
                  long tid, double t0, double t1) {
  ev(L, "X", name, pid, tid);
  field_s(L, "cat", cat);
  field_n(L, "ts", us(t0));
  field_n(L, "dur", (t1 - t0) * 1e6);
}

/* ---- tasks ---------------------------------------------------------------- */

typedef struct tritem {
  lf_item base;
  lf_inbox *inbox;
  lf_future *f;
  unsigned gen;
  unsigned long id;
  double submit, submitted, done;
  const char *name, *exec; /* interned in STRINGS while the trace lives */
} tritem;

static const char *const outcomes[] = {"returned", "raised", "cancelled"};

/* The events of one finished task. */
static void task_events(lua_State *L, tritem *t) {
  lfb_stamp st;
  int outcome = LFB_OUT_CANCELLED, stamped = 0;
  if (lf_future_state(t->f) == LF_FINISHED) {
    int failed = 0;
    const lf_payload *res = lf_future_result(t->f, &failed);
    outcome = failed ? LFB_OUT_RAISED : LFB_OUT_RETURNED;
    stamped = lfb_outcome_stamp_read(res, &st);
  }
  if (!stamped) { /* cancelled, or failed by a broken pool: where it ended */
    st.start = st.end = t->done;
    st.pid = T.pid;
    st.tid = T.tid;
    snprintf(st.worker, sizeof st.worker, "MainThread");
  }
  int row = row_of(L, st.pid, st.tid, st.worker);
  if (T.svg) {
    bar(row, LFB_TEV_TASK, outcome, st.start, st.end, t->name);
    return;
  }
  char fid[32];
  snprintf(fid, sizeof fid, "%p", (void *)t->f);
  slice(L, "submit", "submit", T.pid, T.tid, t->submit, t->submitted);
  lua_createtable(L, 0, 1);
  field_i(L, "id", (long)t->id);
  lua_setfield(L, -2, "args");
  emit(L);
  slice(L, t->name, "task", st.pid, st.tid, st.start, st.end);
  lua_createtable(L, 0, 4);
  field_i(L, "id", (long)t->id);
  field_s(L, "future", fid);
  field_s(L, "executor", t->exec);
  field_s(L, "outcome", outcomes[outcome]);
  lua_setfield(L, -2, "args");
  emit(L);
  if (!stamped) return;
  const char *ph[] = {"s", "f"};
  for (int i = 0; i < 2; i++) {
    ev(L, ph[i], "submit", i ? st.pid : T.pid, i ? st.tid : T.tid);
    field_s(L, "cat", "flow");
    field_i(L, "id", (long)t->id);
    field_n(L, "ts", us(i ? st.start : t->submit));
    if (i) field_s(L, "bp", "e");
    emit(L);
  }
}

static void tr_run(lf_item *it, void *ctx) {
  tritem *t = (tritem *)it;
  lua_State *L = ctx;
  if (L && t->gen == T.gen && T.fd >= 0) task_events(L, t);
  lf_future_unref(t->f);
  lf_inbox_unref(t->inbox);
  free(t);
}

/* On the completing thread, under the future's lock: only a post. */
static void tr_hook(void *arg, lf_future *f) {
  tritem *t = arg;
  t->done = lf_now();
  lf_inbox_post(t->inbox, &t->base);
}

/* An interned copy of the string on top (popped), alive while the trace. */
static const char *intern(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, STRINGS);
  lua_pushvalue(L, -2);
  if (lua_rawget(L, -2) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -1);
    lua_rawset(L, -3);
    lua_pushvalue(L, -2);
    lua_rawget(L, -2);
  }
  const char *s = lua_tostring(L, -1);
  lua_pop(L, 3);
  return s;
}

double lfb_trace_now(lfb_ctx *ctx) {
  return lfb_tracing_on && ctx == T.ctx ? lf_now() : -1;
}

void lfb_trace_submit(lua_State *L, lfb_ctx *ctx, lf_future *f,
                      const lfb_exec_ops *ops, void *pool, double t0) {
  if (t0 < 0 || ctx != T.ctx || T.fd < 0 || ctx->inbox == NULL) return;
  lua_Debug ar;
  lua_pushvalue(L, 2);
  lua_getinfo(L, ">S", &ar);
  lua_pushfstring(L, "%s:%d", ar.short_src, ar.linedefined);
  const char *name = intern(L);
  if (ops->handles_ok && strcmp(ops->detail, "prefix") == 0)
    lua_pushstring(L, ops->detail_value(pool));
  else
    lua_pushfstring(L, "%s at %p", ops->name, pool);
  const char *exec = intern(L);
  tritem *t = calloc(1, sizeof *t); /* after what may raise */
  if (t == NULL) return; /* a task missing from the trace, not an error */
  t->name = name;
  t->exec = exec;
  t->base.run = tr_run;
  t->inbox = ctx->inbox;
  lf_inbox_ref(t->inbox);
  t->f = f;
  lf_future_ref(f);
  t->gen = T.gen;
  t->id = ++T.ntasks;
  t->submit = t0;
  t->submitted = lf_now();
  if (lf_future_add_hook(f, tr_hook, t) != 0) { /* done already, or no memory */
    t->done = lf_now();
    lf_inbox_post(t->inbox, &t->base);
  }
}

void lfb_trace_wait(lua_State *L, lfb_ctx *ctx, const char *what, double t0) {
  if (t0 < 0 || ctx != T.ctx || T.fd < 0) return;
  double t1 = lf_now();
  if (T.svg) {
    bar(0, LFB_TEV_WAIT, 0, t0, t1, what);
    return;
  }
  slice(L, what, "wait", T.pid, T.tid, t0, t1);
  emit(L);
}

/* ---- starting and stopping ------------------------------------------------ */

static int ends_with(const char *s, const char *tail) {
  size_t n = strlen(s), m = strlen(tail);
  return n >= m && strcasecmp(s + n - m, tail) == 0;
}

static void free_all(void) {
  free(T.buf);
  free(T.bars);
  T.buf = NULL;
  T.bars = NULL;
  T.len = T.nbars = T.capbars = T.nrows = 0;
}

/* Ends the file without Lua (also from the atexit handler): the JSON's
 * closing bracket, or the whole picture. */
static void finish_file(void) {
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
  T.gen++;
  free_all();
}

static void at_exit(void) {
  if (T.fd >= 0 && T.owner == (long)getpid()) finish_file();
}

/* Stops the trace of L's state: what is done is written first. */
static void stop(lua_State *L) {
  if (T.fd < 0) return;
  if (T.ctx) lfb_poll(L, T.ctx);
  finish_file();
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, STRINGS);
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, ENCODE);
}

static int sentinel_gc(lua_State *L) {
  if (T.fd >= 0 && T.ctx == lua_touserdata(L, lua_upvalueindex(1))) stop(L);
  return 0;
}

/* Opens path for a trace of L's state; NULL, or the error message pushed. */
static const char *start(lua_State *L, const char *path) {
  int svg = ends_with(path, ".svg");
  if (!svg) { /* cjson first: the finaliser must run before its own */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cjson");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK)
      return lua_pushfstring(L, "cannot trace to '%s': lua-cjson is needed (%s)",
                             path, lfb_tostring_safe(L, -1));
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
  if (!T.atexit_set) T.atexit_set = atexit(at_exit) == 0;
  if (!svg) {
    /* otherData.t0: the monotonic second of ts 0, futures.now()'s clock */
    char head[160];
    int n = snprintf(head, sizeof head,
                     "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"t0\":%.9f},"
                     "\"traceEvents\":[\n", T.t0);
    put(head, (size_t)n);
  }
  row_of(L, T.pid, T.tid, "MainThread");
  if (!svg) meta(L, "process_name", T.pid, T.tid, "luafutures");
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
