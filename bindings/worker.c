/*
 * worker.c -- a worker's lua_State: how it is built and how a task runs
 * in it, the same for a thread worker and a process worker.
 *
 * A worker state is built once, on the thread that will use it, in steps
 * that each have one function here: the state itself (with the host's
 * allocator, hooks.c), the standard libraries the executor's `libs` names
 * (open_libs), the creator's package.path and package.cpath, the host's
 * registered modules in package.preload, this module and the worker's
 * name, the host's state_created hook, then the initializer (decoded in a
 * frame of its own, so a value that cannot be decoded there is told apart
 * from an initializer that fails). It runs every task of that worker and persists between
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

/* Decodes the initializer and its arguments (the decoder at argument 1)
 * onto the stack, in a frame of its own so that a value that cannot be
 * decoded here is told apart from an initializer that fails. */
static int decode_init(lua_State *L) {
  lfb_dec *d = lua_touserdata(L, 1);
  lua_settop(L, 0);
  lua_pushnil(L); /* the refs of this frame */
  d->refs = 1;
  uint32_t n = lfb_dec_count(d, L);
  lfb_checkstack(L, n, "too many 'initargs'");
  for (uint32_t i = 0; i < n; i++) lfb_dec_value(d, L);
  lua_remove(L, 1);
  return (int)n;
}

/* ---- running a task ------------------------------------------------------- */

typedef struct runargs {
  lf_payload *task;
  lfb_enc *out;
  int failed;
  int handles_ok; /* 0 in a worker process: results leave the process */
  lfb_ctx *ctx;   /* the state's context */
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
    /* A result that cannot be copied fails its call, saying why; one
     * that found no memory, as Lua's own memory error does. */
    if (out->nomem) lua_pushliteral(L, "not enough memory");
    else lfb_enc_pusherror(out, L);
    out->err[0] = '\0';
    out->nomem = 0;
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
  d.ctx = ra->ctx;
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

/* The failed outcome of a task that could not start (its error at 1,
 * the runargs at 2), in a frame of its own. */
static int start_failed(lua_State *L) {
  runargs *ra = lua_touserdata(L, 2);
  lua_settop(L, 1);
  lfb_enc_init(ra->out, L); /* err cache names */
  ra->out->handles_ok = ra->handles_ok;
  lfb_enc_u32(ra->out, 1);
  put_failure(L, ra->out, 1);
  return 0;
}

_Thread_local const lf_payload *lfb_running_task
    __attribute__((tls_model("initial-exec")));

/* The run stamp of a task (outcome.c): a thread worker by its thread's
 * name, a process worker (whose thread_name() is "MainThread") by its
 * process; a traced task with its times too. */
static void stamp_start(lfb_ctx *ctx, lfb_stamp *s, const lf_payload *task,
                        int handles_ok) {
  s->timed = (task->flags & LFB_TRACED) != 0;
  if (handles_ok) {
    memcpy(s->worker, ctx->name, sizeof s->worker);
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

/* The context of the worker state this thread made last: a task need not
 * look it up in the registry (lfb_worker_close forgets it). */
static _Thread_local struct {
  lua_State *L;
  lfb_ctx *ctx;
} own;

lf_payload *lfb_worker_run(lua_State *L, lf_future *f, lf_payload *task,
                           int *failed, int handles_ok) {
  lfb_enc out;
  lfb_enc_init(&out, NULL); /* run_task sets it up in its own frame */
  lfb_ctx *ctx = own.L == L ? own.ctx : lfb_ctx_find(L); /* never NULL */
  runargs ra = {.task = task, .out = &out, .handles_ok = handles_ok,
                .ctx = ctx};
  lua_pushcfunction(L, run_task);
  lua_pushlightuserdata(L, &ra);
  const lf_payload *outer = lfb_running_task; /* for the queue's deadlock check */
  lfb_running_task = task;
  lfb_stamp stamp;
  stamp_start(ctx, &stamp, task, handles_ok);
  int st = lua_pcall(L, 1, 0, 0);
  if (stamp.timed) stamp.end = lf_now();
  lfb_running_task = outer;
  int nomem = 0;
  if (st != LUA_OK) { /* err */
    /* The task could not even start (a module it names is missing...):
     * one failed outcome stands for all its calls, written protected, as
     * nothing is beneath this frame on a worker's thread to catch it. */
    lfb_enc_free(&out, NULL);
    lua_pushcfunction(L, start_failed); /* err fn */
    lua_insert(L, -2);
    lua_pushlightuserdata(L, &ra);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
      lfb_enc_free(&out, NULL); /* no memory even for that */
      nomem = 1;
    }
    ra.failed = 1;
  }
  lf_payload_free(task); /* first: the result may take its room */
  *failed = ra.failed;
  if (nomem) {
    lua_settop(L, 0);
    return NULL; /* the runtime fails it with lf_payload_oom() */
  }
  lfb_outcome_stamp(&out, &stamp);
  lf_payload *p = lfb_enc_finish_for(&out, NULL, f);
  lua_settop(L, 0);
  return p;
}

/* ---- building a state ----------------------------------------------------- */

/* The standard libraries, by the names of the executor option `libs`;
 * bit i of a mask is stdlibs[i]. */
static const luaL_Reg stdlibs[] = {
    {LUA_GNAME, luaopen_base},          {LUA_LOADLIBNAME, luaopen_package},
    {LUA_COLIBNAME, luaopen_coroutine}, {LUA_TABLIBNAME, luaopen_table},
    {LUA_IOLIBNAME, luaopen_io},        {LUA_OSLIBNAME, luaopen_os},
    {LUA_STRLIBNAME, luaopen_string},   {LUA_MATHLIBNAME, luaopen_math},
    {LUA_UTF8LIBNAME, luaopen_utf8},    {LUA_DBLIBNAME, luaopen_debug},
    {NULL, NULL},
};
/* "base" and "package" (bits 0, 1): the module cannot work without them. */
#define ALWAYS 3u

static void open_libs(lua_State *L, unsigned mask) {
  mask = mask ? mask | ALWAYS : LFB_LIBS_ALL;
  for (int i = 0; stdlibs[i].func; i++) {
    if (!(mask & (1u << i))) continue;
    /* lua.c's names: the base library is "_G" in package.loaded */
    luaL_requiref(L, stdlibs[i].name, stdlibs[i].func, 1);
    lua_pop(L, 1);
  }
}

unsigned lfb_libs_option(lua_State *L, int arg) {
  if (lua_getfield(L, arg, "libs") == LUA_TNIL) {
    lua_pop(L, 1);
    return LFB_LIBS_ALL;
  }
  if (!lua_istable(L, -1))
    luaL_argerror(L, arg, "'libs' must be an array of library names");
  unsigned mask = ALWAYS;
  lua_Integer n = luaL_len(L, -1);
  for (lua_Integer k = 1; k <= n; k++) {
    lua_geti(L, -1, k);
    const char *name = lua_tostring(L, -1);
    int i = 0;
    if (lua_type(L, -1) == LUA_TSTRING) {
      /* "base" is what a user writes; "_G" is the name in package.loaded */
      if (strcmp(name, "base") == 0) name = LUA_GNAME;
      while (stdlibs[i].func && strcmp(stdlibs[i].name, name) != 0) i++;
    }
    if (lua_type(L, -1) != LUA_TSTRING || stdlibs[i].func == NULL)
      luaL_argerror(L, arg,
                    lua_pushfstring(L, "unknown library '%s' in 'libs'",
                                    luaL_tolstring(L, -1, NULL)));
    mask |= 1u << i;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return mask;
}

typedef struct setupargs {
  const lfb_wconf *c;
  int in_init; /* 1: decoding the initializer, 2: running it */
} setupargs;

/* Reports the initializer's error (at the top), as Python's module does:
 * the pool breaks, and this is where its user learns why. The message is
 * also kept in c->why, for the Broken* error. */
static void report_init(lua_State *L, const lfb_wconf *c, int decoding) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, TBKEY);
  const char *msg = !decoding && lua_isstring(L, -1)
                        ? lua_tostring(L, -1)
                        : lfb_tostring_safe(L, -2);
  const char *what = decoding ? "cannot decode the initializer or its "
                                "initargs in"
                              : "exception in initializer of";
  if (c->label)
    lfb_report("%s %s: %s", what, c->label, msg);
  else
    lfb_report("%s '%s': %s", what, c->name, msg);
  if (c->why) {
    lua_pushvalue(L, decoding ? -2 : -1);
    snprintf(c->why, c->whylen, "%s%s", decoding ? "cannot decode: " : "",
             lfb_tostring_safe(L, -1));
  }
}

static int run_init(lua_State *L, setupargs *sa) {
  lua_settop(L, 0);
  lua_pushcfunction(L, task_msgh);
  lfb_dec d;
  (sa->c->remote ? lfb_dec_init_remote : lfb_dec_init)(&d, sa->c->init);
  sa->in_init = 1;
  lua_pushcfunction(L, decode_init);
  lua_pushlightuserdata(L, &d);
  if (lua_pcall(L, 1, LUA_MULTRET, 1) != LUA_OK) {
    report_init(L, sa->c, 1);
    return lua_error(L);
  }
  sa->in_init = 2;
  if (lua_pcall(L, lua_gettop(L) - 2, 0, 1) != LUA_OK) { /* msgh fn args */
    report_init(L, sa->c, 0);
    return lua_error(L);
  }
  return 0;
}

static int setup(lua_State *L) {
  setupargs *sa = lua_touserdata(L, 1);
  const lfb_wconf *c = sa->c;
  open_libs(L, c->libs);
  lua_getglobal(L, "package");
  lua_pushstring(L, c->path);
  lua_setfield(L, -2, "path");
  lua_pushstring(L, c->cpath);
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  lfb_preload_host_modules(L);
  luaL_requiref(L, LFB_MODNAME, luaopen_concurrent_futures, 0);
  lua_pop(L, 1);
  lfb_ctx *ctx = lfb_ctx_push(L);
  snprintf(ctx->name, sizeof ctx->name, "%s", c->name);
  ctx->closing = c->hooks.state_closing;
  ctx->closing_ud = c->hooks.ud;
  lua_pop(L, 1);
  if (c->hooks.state_created) c->hooks.state_created(c->hooks.ud, L, c->name);
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
  if (rc == LUA_OK) {
    own.L = L;
    own.ctx = lfb_ctx_find(L);
    return 0;
  }
  /* Before the initializer only memory can fail: say so, not that an
   * initializer failed when there may be none. */
  return sa.in_init ? LFB_W_INITFAILED : LFB_W_NOMEM;
}

lua_State *lfb_worker_new(lfb_wconf *c, int *why) {
  lfb_hooks_get(&c->hooks); /* the state keeps the hooks it was made with */
  lua_State *L = lfb_new_state(&c->hooks);
  if (L == NULL) {
    *why = LFB_W_NOMEM;
    return NULL;
  }
  *why = lfb_worker_setup(L, c);
  if (*why != 0) {
    lfb_worker_close(L);
    return NULL;
  }
  return L;
}

void lfb_worker_close(lua_State *L) {
  if (own.L == L) own.L = NULL, own.ctx = NULL;
  lfb_ctx *ctx = lfb_ctx_find(L);
  if (ctx && ctx->closing) ctx->closing(ctx->closing_ud, L);
  lua_close(L);
}
