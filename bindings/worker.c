/*
 * worker.c -- a worker's lua_State: how it is built and how a task runs
 * in it, the same for a thread worker and a process worker.
 *
 * A worker state is built once, on the thread that will use it, in steps
 * that each have one function here: the state itself (new_state: where a
 * host allocator will plug in), the standard libraries (open_libs, from
 * one table of names, so an executor option can choose them), the
 * creator's package.path and package.cpath, this module and the worker's
 * name (where host modules and a "state created" hook will go), then the
 * initializer. It runs every task of that worker and persists between
 * them; lfb_worker_close ends it.
 *
 * A task payload is: u32 calls, the function, then per call u32 n and n
 * arguments (one reference cache for the whole payload, so a table passed
 * twice arrives as one table). The result holds one outcome per call
 * (outcome.c). No lock: a worker state belongs to one thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lfb.h"

static const char TBKEY[] = "luafutures.lasttraceback";

/* Message handler of tasks and initializers: keeps the error value as it
 * is and records the traceback beside it. */
static int task_msgh(lua_State *L) {
  const char *msg = NULL; /* the traceback's first line */
  int t = lua_type(L, 1);
  if (t == LUA_TSTRING || t == LUA_TNUMBER ||
      luaL_getmetafield(L, 1, "__tostring") != LUA_TNIL)
    msg = lfb_tostring_safe(L, 1); /* above the field, if one was pushed */
  luaL_traceback(L, L, msg, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, TBKEY);
  lua_settop(L, 1);
  return 1;
}

/* ---- running a task ------------------------------------------------------- */

typedef struct runargs {
  lf_payload *task;
  lfb_enc *out;
  int failed;
  int handles_ok; /* 0 in a worker process: results leave the process */
} runargs;

/* Writes the error at err as a failed outcome with the traceback the
 * message handler recorded, and forgets that traceback. */
static void put_failure(lua_State *L, lfb_enc *out, int err) {
  err = lua_absindex(L, err);
  lua_rawgetp(L, LUA_REGISTRYINDEX, TBKEY);
  lfb_outcome_error(out, L, err, -1);
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, TBKEY);
}

/* One call of the function at 5 with the next arguments of d; its
 * outcome appended to out. Leaves the stack at 5. */
static void run_call(lua_State *L, runargs *ra, lfb_dec *d) {
  lfb_enc *out = ra->out;
  uint32_t nargs = lfb_dec_count(d, L);
  lfb_checkstack(L, nargs, "too many arguments");
  lua_pushvalue(L, 5);
  for (uint32_t i = 0; i < nargs; i++) lfb_dec_value(d, L);
  if (lua_pcall(L, (int)nargs, LUA_MULTRET, 1) != LUA_OK) {
    ra->failed = 1;
    put_failure(L, out, lua_gettop(L));
  } else if (lfb_outcome_values(out, L, 6, lua_gettop(L) - 5) != 0) {
    /* A result that cannot be copied fails its call, saying why. */
    lfb_enc_pusherror(out, L);
    out->err[0] = '\0';
    ra->failed = 1;
    put_failure(L, out, lua_gettop(L));
  }
  lua_settop(L, 5);
}

static int run_task(lua_State *L) {
  runargs *ra = lua_touserdata(L, 1);
  lfb_enc *out = ra->out;
  lua_settop(L, 0);
  lua_pushcfunction(L, task_msgh); /* 1: msgh */
  lfb_dec d;
  (ra->handles_ok ? lfb_dec_init : lfb_dec_init_remote)(&d, ra->task);
  lua_pushnil(L); /* 2: refs */
  d.refs = 2;
  lfb_enc_init(out, L); /* 3, 4: its cache and names, in this frame */
  out->handles_ok = ra->handles_ok;
  uint32_t ncalls = lfb_dec_u32(&d);
  lfb_dec_value(&d, L); /* 5: fn */
  lfb_enc_u32(out, ncalls);
  for (uint32_t c = 0; c < ncalls; c++) run_call(L, ra, &d);
  return 0;
}

_Thread_local const lf_payload *lfb_running_task
    __attribute__((tls_model("initial-exec")));

/* The run stamp of a task (outcome.c): a thread worker by its thread's
 * name, a process worker (whose thread_name() is "MainThread") by its
 * process; a traced task with its times too. */
static void stamp_start(lua_State *L, lfb_stamp *s, const lf_payload *task,
                        int handles_ok) {
  s->timed = (task->flags & LFB_TRACED) != 0;
  if (handles_ok) {
    lfb_ctx *ctx = lfb_ctx_push(L);
    memcpy(s->worker, ctx->name, sizeof s->worker);
    lua_pop(L, 1);
  } else {
    static char name[32]; /* once per process: it never changes */
    static long named;
    if (named != (long)getpid()) {
      named = (long)getpid();
      snprintf(name, sizeof name, "process %ld", named);
    }
    memcpy(s->worker, name, sizeof name);
  }
  if (!s->timed) return;
  /* Two system calls a task are worth saving on a thread worker (it
   * never forks); a process worker asks, since a fork copies the cache. */
  static _Thread_local long pid, tid;
  if (!handles_ok || tid == 0) {
    pid = (long)getpid();
    tid = (long)gettid();
  }
  s->pid = pid;
  s->tid = tid;
  s->start = lf_now();
}

lf_payload *lfb_worker_run(lua_State *L, lf_future *f, lf_payload *task,
                           int *failed, int handles_ok) {
  lfb_enc out;
  lfb_enc_init(&out, NULL); /* run_task sets it up in its own frame */
  runargs ra = {.task = task, .out = &out, .handles_ok = handles_ok};
  lua_pushcfunction(L, run_task);
  lua_pushlightuserdata(L, &ra);
  const lf_payload *outer = lfb_running_task; /* for the queue's deadlock check */
  lfb_running_task = task;
  lfb_stamp stamp;
  stamp_start(L, &stamp, task, handles_ok);
  int st = lua_pcall(L, 1, 0, 0);
  if (stamp.timed) stamp.end = lf_now();
  lfb_running_task = outer;
  if (st != LUA_OK) { /* err */
    /* The task could not even start (a module it names is missing...):
     * one failed outcome stands for all its calls. */
    lfb_enc_free(&out, NULL);
    lfb_enc_init(&out, L); /* err cache names */
    out.handles_ok = handles_ok;
    lfb_enc_u32(&out, 1);
    put_failure(L, &out, -3);
    ra.failed = 1;
  }
  lf_payload_free(task); /* first: the result may take its room */
  *failed = ra.failed;
  lfb_outcome_stamp(&out, &stamp);
  lf_payload *p = lfb_enc_finish_for(&out, NULL, f);
  lua_settop(L, 0);
  return p;
}

/* ---- building a state ----------------------------------------------------- */

/* The standard libraries, by the names an executor option will use. */
static const luaL_Reg stdlibs[] = {
    {LUA_GNAME, luaopen_base},          {LUA_LOADLIBNAME, luaopen_package},
    {LUA_COLIBNAME, luaopen_coroutine}, {LUA_TABLIBNAME, luaopen_table},
    {LUA_IOLIBNAME, luaopen_io},        {LUA_OSLIBNAME, luaopen_os},
    {LUA_STRLIBNAME, luaopen_string},   {LUA_MATHLIBNAME, luaopen_math},
    {LUA_UTF8LIBNAME, luaopen_utf8},    {LUA_DBLIBNAME, luaopen_debug},
    {NULL, NULL},
};

static void open_libs(lua_State *L) {
  for (const luaL_Reg *lib = stdlibs; lib->func; lib++) {
    luaL_requiref(L, lib->name, lib->func, 1);
    lua_pop(L, 1);
  }
}

typedef struct setupargs {
  const lfb_wconf *c;
  int in_init; /* the initializer is running: a failure is its own */
} setupargs;

/* Reports the initializer's error (at the top) on stderr, as Python's
 * module does: the pool breaks, and this is where its user learns why. */
static void report_init(lua_State *L, const lfb_wconf *c) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, TBKEY);
  const char *msg = lua_isstring(L, -1) ? lua_tostring(L, -1)
                                        : lfb_tostring_safe(L, -2);
  if (c->label)
    fprintf(stderr, "luafutures: exception in initializer of %s: %s\n",
            c->label, msg);
  else
    fprintf(stderr, "luafutures: exception in initializer of '%s': %s\n",
            c->name, msg);
  fflush(stderr);
}

static int run_init(lua_State *L, setupargs *sa) {
  lua_settop(L, 0);
  lua_pushcfunction(L, task_msgh);
  lfb_dec d;
  (sa->c->remote ? lfb_dec_init_remote : lfb_dec_init)(&d, sa->c->init);
  lua_pushnil(L);
  d.refs = 2;
  uint32_t n = lfb_dec_count(&d, L);
  lfb_checkstack(L, n, "too many 'initargs'");
  for (uint32_t i = 0; i < n; i++) lfb_dec_value(&d, L);
  sa->in_init = 1;
  if (lua_pcall(L, (int)n - 1, 0, 1) != LUA_OK) {
    report_init(L, sa->c);
    return lua_error(L);
  }
  return 0;
}

static int setup(lua_State *L) {
  setupargs *sa = lua_touserdata(L, 1);
  const lfb_wconf *c = sa->c;
  open_libs(L);
  lua_getglobal(L, "package");
  lua_pushstring(L, c->path);
  lua_setfield(L, -2, "path");
  lua_pushstring(L, c->cpath);
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  luaL_requiref(L, LFB_MODNAME, luaopen_concurrent_futures, 0);
  lua_pop(L, 1);
  lfb_ctx *ctx = lfb_ctx_push(L);
  snprintf(ctx->name, sizeof ctx->name, "%s", c->name);
  lua_pop(L, 1);
  return c->init ? run_init(L, sa) : 0;
}

_Thread_local int lfb_worker_building;

int lfb_worker_setup(lua_State *L, const lfb_wconf *c) {
  setupargs sa = {c, 0};
  lua_pushcfunction(L, setup);
  lua_pushlightuserdata(L, &sa);
  lfb_worker_building = 1; /* a worker state never starts a trace */
  int rc = lua_pcall(L, 1, 0, 0);
  lfb_worker_building = 0;
  lua_settop(L, 0);
  if (rc == LUA_OK) return 0;
  /* Before the initializer only memory can fail: say so, not that an
   * initializer failed when there may be none. */
  return sa.in_init ? LFB_W_INITFAILED : LFB_W_NOMEM;
}

static lua_State *new_state(void) { return luaL_newstate(); }

lua_State *lfb_worker_new(const lfb_wconf *c, int *why) {
  lua_State *L = new_state();
  if (L == NULL) {
    *why = LFB_W_NOMEM;
    return NULL;
  }
  *why = lfb_worker_setup(L, c);
  if (*why != 0) {
    lua_close(L);
    return NULL;
  }
  return L;
}

void lfb_worker_close(lua_State *L) { lua_close(L); }
