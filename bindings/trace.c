/*
 * trace.c -- futures.trace(path) ... futures.trace(false), the
 * LUAFUTURES_TRACE environment variable and `luafutures --trace`: a
 * Chrome trace event file of what the pools did (trace_json.c), or (a path
 * ending in .svg) a timeline picture (trace_svg.c).
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
 * formatted in C (trace_json.c), and keeps the others for its next
 * batch. So the traced state pays for a record a task (a reference, two
 * clock reads) and no formatting, no Lua table is made per event and no
 * hook per task; the strings (function names, executors, metadata) are
 * escaped once each by lua-cjson. The JSON goes through a buffer of our
 * own written with write(2), so a forked worker, which inherits it, never
 * writes it, and an exit without lua_close (os.exit) still ends the file
 * from an atexit handler, without Lua.
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
#define LFB_TRACE_BATCH 4096 /* records a batch */
#define LFB_TRACE_QUEUED 4   /* full batches waiting for the writer */
#define SPARES 2             /* empty batches kept for reuse */

typedef struct tbatch {
  struct tbatch *next;
  size_t n;
  lfb_trec r[LFB_TRACE_BATCH];
} tbatch;

static struct {
  /* set at start, read by both threads, cleared once the writer is joined */
  lfb_tfile file;     /* its fd and t0; the JSON buffer is the writer's */
  int svg;
  long owner;         /* the process that traces (a fork child does not) */
  long pid, tid;
  /* the traced state's thread */
  lfb_ctx *ctx;       /* the traced state's context */
  unsigned long ntasks;
  tbatch *cur;        /* the batch being filled */
  lfb_tstr **str;
  size_t nstr, capstr;
  const void *lastfn, *lastpool; /* the last submit's: most repeat */
  const lfb_tstr *lastname, *lastexec;
  int threaded;       /* the writer thread runs */
  pthread_t writer;
  int atexit_set;
  /* the writer's */
  lfb_trow rows[MAXROWS];
  lfb_tident ident[MAXROWS]; /* their pid and tid as JSON */
  size_t nrows;
  lfb_trec *kept;     /* records of futures not yet done */
  size_t nkept, capkept;
  lfb_tbar *bars;     /* the picture's bars */
  size_t nbars, capbars;
  double last;        /* the latest time seen, for the picture's axis */
} T = {.file.fd = -1};

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

/* ---- rows and bars (the writer) ------------------------------------------- */

/* The row of (pid, tid), named at its first sight (thread_name metadata);
 * -1 past MAXROWS. */
static int row_of(long pid, long tid, const char *name) {
  for (size_t i = 0; i < T.nrows; i++)
    if (T.rows[i].pid == pid && T.rows[i].tid == tid) return (int)i;
  if (T.nrows == MAXROWS) return -1; /* its events go unnamed */
  lfb_tident *id = &T.ident[T.nrows];
  lfb_json_ident(id, pid, tid);
  if (!T.svg) {
    char *json = lfb_json_escape(name);
    if (pid != T.pid) lfb_json_meta(&T.file, "process_name", id, json);
    lfb_json_meta(&T.file, "thread_name", id, json);
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
  b->ts = t0 - T.file.t0;
  b->dur = t1 - t0;
  snprintf(b->label, sizeof b->label, "%s", label);
}

/* ---- tasks (the writer) --------------------------------------------------- */

/* The task of s, whose future is done: its outcome and where it ran, as a
 * bar of the picture or as JSON events (lfb_json_task). */
static void task_events(const lfb_trec *s) {
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
  lfb_tident other;
  const lfb_tident *who = &T.ident[row];
  if (row < 0) {
    lfb_json_ident(&other, st.pid, st.tid);
    who = &other;
  }
  lfb_json_task(&T.file, s, &st, outcome, &T.ident[0], who);
}

static void wait_events(const lfb_trec *s) {
  if (T.svg) {
    bar(0, LFB_TEV_WAIT, 0, s->t0, s->t1, s->name->raw);
    return;
  }
  lfb_json_wait(&T.file, s, &T.ident[0]);
}

/* Writes the events of r[0 .. n) that are done; returns how many of the
 * others it kept at r's start, or drops them (their tasks still run when
 * the trace ends) if this is the last time. */
static size_t write_done(lfb_trec *r, size_t n, int last) {
  size_t keep = 0;
  for (size_t i = 0; i < n; i++) {
    lfb_trec *s = &r[i];
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
    lfb_trec *k = realloc(T.kept, cap * sizeof *k);
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

static lfb_trec *new_rec(void) {
  if (T.cur && T.cur->n == LFB_TRACE_BATCH) hand_over(0);
  if (T.cur == NULL) {
    T.cur = malloc(sizeof *T.cur);
    if (T.cur == NULL) return NULL;
    T.cur->n = 0;
  }
  return &T.cur->r[T.cur->n++];
}

/* The interned copy of the string on top (popped), escaped by cjson. */
static const lfb_tstr *intern(lua_State *L) {
  int str = lua_gettop(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, STRINGS); /* s strings */
  lua_pushvalue(L, str);
  if (lua_rawget(L, -2) == LUA_TLIGHTUSERDATA) {
    const lfb_tstr *t = lua_touserdata(L, -1);
    lua_settop(L, str - 1);
    return t;
  }
  lua_pop(L, 1);
  if (T.nstr == T.capstr) {
    size_t cap = T.capstr ? 2 * T.capstr : 64;
    lfb_tstr **n = realloc(T.str, cap * sizeof *n);
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
    json = lfb_json_escape(lua_tostring(L, str));
  }
  char *raw = strdup(lua_tostring(L, str));
  lfb_tstr *t = malloc(sizeof *t);
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
static const lfb_tstr *fn_name(lua_State *L) {
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

static const lfb_tstr *exec_name(lua_State *L, const lfb_exec_ops *ops, void *pool) {
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
  if (t0 < 0 || ctx != T.ctx || T.file.fd < 0) return;
  const lfb_tstr *name = fn_name(L), *exec = exec_name(L, ops, pool);
  lfb_trec *s = new_rec();
  if (s == NULL) return; /* a task missing from the trace, not an error */
  lf_future_ref(f);
  *s = (lfb_trec){f, ++T.ntasks, t0, lf_now(), name, exec};
}

void lfb_trace_wait(lua_State *L, lfb_ctx *ctx, const char *what, double t0) {
  if (t0 < 0 || ctx != T.ctx || T.file.fd < 0) return;
  double t1 = lf_now();
  lua_pushstring(L, what);
  const lfb_tstr *name = intern(L);
  lfb_trec *s = new_rec();
  if (s) *s = (lfb_trec){NULL, 0, t0, t1, name, NULL};
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
  free(T.file.buf);
  free(T.bars);
  free(T.cur);
  while (Q.spare) {
    tbatch *b = Q.spare;
    Q.spare = b->next;
    free(b);
  }
  T.str = NULL;
  T.kept = NULL;
  T.file.buf = NULL;
  T.bars = NULL;
  T.cur = NULL;
  T.file.len = T.nbars = T.capbars = T.nrows = T.nstr = T.capstr = 0;
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
    lfb_svg_write(T.file.fd, T.rows, T.nrows, T.bars, T.nbars, T.last - T.file.t0);
  } else {
    lfb_json_end(&T.file);
  }
  close(T.file.fd);
  T.file.fd = -1;
  lfb_tracing_on = 0;
  T.ctx = NULL;
  free_all();
}

static void at_exit(void) {
  if (T.file.fd >= 0 && T.owner == (long)getpid()) finish_file();
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
  if (T.file.fd < 0) return;
  finish_file();
  static const char *const keys[] = {STRINGS, ENCODE, LASTFN};
  for (int i = 0; i < 3; i++) {
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, keys[i]);
  }
}

static int sentinel_gc(lua_State *L) {
  if (T.file.fd >= 0 && T.ctx == lua_touserdata(L, lua_upvalueindex(1))) stop(L);
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
  T.file.buf = malloc(LFB_JSON_BUFCAP);
  if (T.file.buf == NULL) {
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
  T.file.fd = fd;
  T.svg = svg;
  T.ctx = ctx;
  T.owner = T.pid = (long)getpid();
  T.tid = (long)gettid();
  T.file.t0 = T.last = lf_now();
  T.file.nevents = 0;
  T.ntasks = 0;
  if (!T.atexit_set && pin_module()) T.atexit_set = atexit(at_exit) == 0;
  if (!svg) lfb_json_head(&T.file);
  row_of(T.pid, T.tid, "MainThread");
  if (!svg) lfb_json_meta(&T.file, "process_name", &T.ident[0], "\"luafutures\"");
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
  if (T.file.fd >= 0 && T.ctx != ctx)
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
  if (worker || env_done || env == NULL || *env == '\0' || T.file.fd >= 0) return;
  env_done = 1;
  const char *err = start(L, env);
  if (err) {
    fprintf(stderr, "luafutures: LUAFUTURES_TRACE: %s\n", err);
    fflush(stderr);
    lua_pop(L, 1);
  }
}
