/*
 * executor.c -- ThreadPoolExecutor: the Lua class over a runtime pool, and
 * the worker side, where each thread owns a lua_State.
 *
 * A worker state is built once, on its own thread: standard libraries, the
 * creator's package.path and package.cpath, this module, then the
 * initializer. It runs every task of that worker and persists between
 * them. A task payload is: u32 calls, the function, then per call u32 n and
 * n arguments (one reference cache for the whole payload, so a table passed
 * twice arrives as one table). The result payload holds one outcome per
 * call (see lfb.h); each outcome is encoded with its own cache so a value
 * that cannot be transferred fails that call alone.
 *
 * The object that created a pool owns it: collecting or closing that state
 * shuts it down and waits. Handles sent into tasks only hold a reference.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lfb.h"

int lfb_default_max_workers; /* set by the luafutures command's -j */

typedef struct tcfg {
  char *path, *cpath;
  lf_payload *init; /* initializer and its arguments, or NULL */
} tcfg;

typedef struct wstate {
  lua_State *L;
} wstate;

static const char TBKEY[] = "luafutures.lasttraceback";
static const char ERRKEY[] = "luafutures.lasterror";

/* Message handler of tasks: keeps the error value as it is and records the
 * traceback beside it. */
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

/* ---- the worker side ------------------------------------------------------ */

typedef struct runargs {
  const char *name;
  tcfg *cfg;
  lf_payload *task;
  lfb_enc *out;
  int failed;
  int handles_ok; /* 0 in a worker process: results leave the process */
  const char *label; /* names the worker in messages, if not its name */
} runargs;

/* Encodes the error at the top as a failed outcome; never fails itself: an
 * error value that cannot be copied is replaced by a TransferError. */
static void put_error(lua_State *L, lfb_enc *out) {
  int err = lua_gettop(L);
  size_t len = out->len;
  uint32_t nobjs = out->nobjs;
  lfb_enc_u8(out, 0);
  lfb_enc_reset_refs(out, L);
  out->what = "error value";
  out->argno = 0;
  out->err[0] = '\0';
  lua_rawgetp(L, LUA_REGISTRYINDEX, TBKEY); /* err tb */
  if (lfb_enc_value(out, L, err) != 0 || lfb_enc_value(out, L, err + 1) != 0) {
    while (out->nobjs > nobjs) lf_obj_unref(out->objs[--out->nobjs]);
    out->len = len;
    lfb_enc_pusherror(out, L);
    out->err[0] = '\0';
    lfb_enc_u8(out, 0);
    lfb_enc_value(out, L, -1);
    lfb_enc_value(out, L, err + 1);
    lua_pop(L, 1);
  }
  lua_settop(L, err - 1);
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, TBKEY);
}

static int run_task(lua_State *L) {
  runargs *ra = lua_touserdata(L, 1);
  lfb_enc *out = ra->out;
  lua_settop(L, 0);
  lua_pushcfunction(L, task_msgh); /* 1: msgh */
  lfb_dec d;
  lfb_dec_init(&d, ra->task);
  lua_pushnil(L); /* 2: refs */
  d.refs = 2;
  lfb_enc_init(out, L); /* 3, 4: its cache and names, in this frame */
  out->handles_ok = ra->handles_ok;
  uint32_t ncalls = lfb_dec_u32(&d);
  lfb_dec_value(&d, L); /* 5: fn */
  lfb_enc_u32(out, ncalls);
  for (uint32_t c = 0; c < ncalls; c++) {
    uint32_t nargs = lfb_dec_u32(&d);
    luaL_checkstack(L, (int)nargs + 8, "too many arguments");
    lua_pushvalue(L, 5);
    for (uint32_t i = 0; i < nargs; i++) lfb_dec_value(&d, L);
    if (lua_pcall(L, (int)nargs, LUA_MULTRET, 1) != LUA_OK) {
      ra->failed = 1;
      put_error(L, out);
      continue;
    }
    int nres = lua_gettop(L) - 5;
    size_t len = out->len;
    uint32_t nobjs = out->nobjs;
    lfb_enc_u8(out, 1);
    lfb_enc_u32(out, (uint32_t)nres);
    lfb_enc_reset_refs(out, L);
    out->what = "result";
    int rc = 0;
    for (int i = 1; i <= nres && rc == 0; i++) {
      out->argno = i;
      rc = lfb_enc_value(out, L, 5 + i);
    }
    if (rc != 0) {
      while (out->nobjs > nobjs) lf_obj_unref(out->objs[--out->nobjs]);
      out->len = len;
      lfb_enc_pusherror(out, L);
      out->err[0] = '\0';
      ra->failed = 1;
      put_error(L, out);
    }
    lua_settop(L, 5);
  }
  return 0;
}

lf_payload *lfb_run_task(lua_State *L, lf_future *f, lf_payload *task,
                         int *failed, int handles_ok) {
  lfb_enc out;
  lfb_enc_init(&out, NULL); /* run_task sets it up in its own frame */
  runargs ra = {.task = task, .out = &out, .handles_ok = handles_ok};
  lua_pushcfunction(L, run_task);
  lua_pushlightuserdata(L, &ra);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    /* The task could not even start (a module it names is missing...):
     * one failed outcome stands for all its calls. */
    lua_rawsetp(L, LUA_REGISTRYINDEX, ERRKEY);
    lfb_enc_free(&out, NULL);
    lfb_enc_init(&out, L);
    out.handles_ok = handles_ok;
    lfb_enc_u32(&out, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, ERRKEY);
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, ERRKEY);
    put_error(L, &out);
    ra.failed = 1;
  }
  lf_payload_free(task); /* first: the result may take its room */
  *failed = ra.failed;
  lf_payload *p = lfb_enc_finish_for(&out, NULL, f);
  lua_settop(L, 0);
  return p;
}

static lf_payload *w_run(void *wctx, lf_future *f, lf_payload *task,
                         int *failed) {
  return lfb_run_task(((wstate *)wctx)->L, f, task, failed, 1);
}

static int setup_worker(lua_State *L) {
  runargs *ra = lua_touserdata(L, 1);
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushstring(L, ra->cfg->path);
  lua_setfield(L, -2, "path");
  lua_pushstring(L, ra->cfg->cpath);
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  luaL_requiref(L, LFB_MODNAME, luaopen_concurrent_futures, 0);
  lua_pop(L, 1);
  lfb_ctx *ctx = lfb_ctx_push(L);
  snprintf(ctx->name, sizeof ctx->name, "%s", ra->name);
  lua_pop(L, 1);
  if (ra->cfg->init == NULL) return 0;
  lua_settop(L, 0);
  lua_pushcfunction(L, task_msgh);
  lfb_dec d;
  lfb_dec_init(&d, ra->cfg->init);
  lua_pushnil(L);
  d.refs = 2;
  uint32_t n = lfb_dec_u32(&d);
  for (uint32_t i = 0; i < n; i++) lfb_dec_value(&d, L);
  if (lua_pcall(L, (int)n - 1, 0, 1) != LUA_OK) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, TBKEY);
    const char *msg = lua_isstring(L, -1) ? lua_tostring(L, -1)
                                          : lfb_tostring_safe(L, -2);
    if (ra->label)
      fprintf(stderr, "luafutures: exception in initializer of %s: %s\n",
              ra->label, msg);
    else
      fprintf(stderr, "luafutures: exception in initializer of '%s': %s\n",
              ra->name, msg);
    fflush(stderr);
    return lua_error(L);
  }
  return 0;
}

static void *w_init(void *ud, const char *name) {
  wstate *ws = malloc(sizeof *ws);
  lua_State *L = luaL_newstate();
  if (ws == NULL || L == NULL) {
    free(ws);
    if (L) lua_close(L);
    return lf_pool_nomem(); /* no initializer failed: the pool stays */
  }
  runargs ra = {.name = name, .cfg = ud};
  lua_pushcfunction(L, setup_worker);
  lua_pushlightuserdata(L, &ra);
  int rc = lua_pcall(L, 1, 0, 0);
  if (rc != LUA_OK) {
    lua_close(L);
    free(ws);
    return rc == LUA_ERRMEM ? lf_pool_nomem() : NULL;
  }
  lua_settop(L, 0);
  ws->L = L;
  return ws;
}

int lfb_worker_setup(lua_State *L, const char *name, const char *label,
                     const char *path, const char *cpath,
                     const lf_payload *init) {
  tcfg cfg = {(char *)path, (char *)cpath, (lf_payload *)init};
  runargs ra = {.name = name, .cfg = &cfg, .label = label};
  lua_pushcfunction(L, setup_worker);
  lua_pushlightuserdata(L, &ra);
  int rc = lua_pcall(L, 1, 0, 0);
  lua_settop(L, 0);
  return rc == LUA_OK ? 0 : -1;
}

static void w_fini(void *wctx) {
  wstate *ws = wctx;
  lua_close(ws->L);
  free(ws);
}

static void cfg_release(void *ud) {
  tcfg *cfg = ud;
  free(cfg->path);
  free(cfg->cpath);
  lf_payload_free(cfg->init);
  free(cfg);
}

static lf_payload *thread_broken(void *ud) {
  (void)ud;
  return lfb_error_payload(
      "BrokenThreadPool",
      "a thread initializer failed, the thread pool is not usable anymore");
}

static const lf_pool_hooks thread_hooks = {
    w_init, w_run, w_fini, cfg_release, thread_broken,
};

/* ---- the Lua class -------------------------------------------------------- */

/* The executor at 1, for submit and map: one already collected was shut
 * down by its __gc (which a finalizer may run before another's), and a
 * state that is closing takes no new work. */
static lfb_executor *check_exec(lua_State *L) {
  lfb_executor *ex = luaL_checkudata(L, 1, LFB_THREADPOOL);
  if (ex->pool == NULL) lfb_submit_error(L, LF_ESHUTDOWN);
  lfb_check_closing(L);
  return ex;
}

/* Lua has no flag for a state being closed, but lua_close is the only time
 * a finalizer runs with no caller beneath it: walk to the bottom frame. A
 * finalizer stops the collector, so in the common case one call says no. */
void lfb_check_closing(lua_State *L) {
  if (lua_gc(L, LUA_GCISRUNNING) == 1) return;
  lua_Debug ar;
  int level = 1;
  while (lua_getstack(L, level + 1, &ar)) level++;
  if (!lua_getstack(L, level, &ar) || !lua_getinfo(L, "n", &ar)) return;
  if (ar.namewhat && strcmp(ar.namewhat, "metamethod") == 0 && ar.name &&
      strcmp(ar.name, "__gc") == 0)
    lfb_raise(L, "RuntimeError",
              "cannot schedule new futures after the Lua state began to "
              "close");
}

void lfb_executor_push(lua_State *L, lf_pool *p) {
  LFB_STACK_BEGIN(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, lfb_PROXIES);
  if (lua_rawgetp(L, -1, p) == LUA_TUSERDATA) {
    lua_remove(L, -2);
    LFB_STACK_CHECK(L, 1);
    return;
  }
  lua_pop(L, 1);
  lfb_executor *ex = lua_newuserdatauv(L, sizeof *ex, 0);
  ex->pool = p;
  ex->owner = 0;
  lf_pool_ref(p);
  luaL_setmetatable(L, LFB_THREADPOOL);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, -3, p);
  lua_remove(L, -2);
  LFB_STACK_CHECK(L, 1);
}

/* Raises the error for a refused submit. */
int lfb_submit_error(lua_State *L, int rc) {
  if (rc == LF_EBROKEN)
    return lfb_raise(
        L, "BrokenThreadPool",
        "a thread initializer failed, the thread pool is not usable anymore");
  if (rc == LF_ESHUTDOWN)
    return lfb_raise(L, "RuntimeError",
                     "cannot schedule new futures after shutdown");
  if (rc == LF_ENOMEM) return luaL_error(L, "not enough memory");
  return lfb_raise(L, "RuntimeError", "%s", lf_strerror(rc));
}

lf_pool *lfb_check_pool(lua_State *L) { return check_exec(L)->pool; }

lf_future *lfb_task_future(lua_State *L, int handles_ok) {
  luaL_checktype(L, 2, LUA_TFUNCTION);
  LFB_STACK_BEGIN(L);
  int top = lua_gettop(L);
  lfb_enc e;
  lfb_enc_init(&e, L);
  e.handles_ok = handles_ok;
  lfb_enc_u32(&e, 1);
  for (int i = 2; i <= top; i++) {
    e.argno = i - 1;
    if (lfb_enc_value(&e, L, i) != 0) {
      lfb_enc_free(&e, L); /* the message survives in e.err */
      lfb_enc_pusherror(&e, L);
      lua_error(L);
    }
    if (i == 2) lfb_enc_u32(&e, (uint32_t)(top - 2));
  }
  lf_future *f = lfb_enc_finish_task(&e, L);
  if (f == NULL) luaL_error(L, "not enough memory");
  LFB_STACK_CHECK(L, 0);
  return f;
}

void lfb_future_push_new(lua_State *L, lf_future *f) {
  LFB_STACK_BEGIN(L);
  lfb_future *fu = lua_newuserdatauv(L, sizeof *fu, 0);
  fu->f = f;
  luaL_setmetatable(L, LFB_FUTURE);
  LFB_STACK_CHECK(L, 1);
}

void lfb_shutdown_args(lua_State *L, int *wait, int *cancel) {
  *wait = 1;
  *cancel = 0;
  if (lua_istable(L, 2)) {
    static const char *const known[] = {"wait", "cancel_futures", NULL};
    lfb_check_options(L, 2, known);
    lua_getfield(L, 2, "wait");
    lua_getfield(L, 2, "cancel_futures");
    *wait = lua_isnil(L, -2) || lua_toboolean(L, -2);
    *cancel = lua_toboolean(L, -1);
    lua_pop(L, 2);
  } else {
    if (!lua_isnoneornil(L, 2)) *wait = lua_toboolean(L, 2);
    *cancel = lua_toboolean(L, 3);
  }
}

void lfb_push_paths(lua_State *L, void (*undo)(void *), void *ud) {
  static const char *const names[] = {"path", "cpath"};
  int pkg = lua_getglobal(L, "package") == LUA_TTABLE ? lua_gettop(L) : 0;
  for (int i = 0; i < 2; i++) {
    int t = pkg ? lua_getfield(L, pkg, names[i]) : LUA_TNIL;
    if (t == LUA_TNIL) {
      if (pkg) lua_pop(L, 1);
      lua_pushliteral(L, "");
    } else if (t != LUA_TSTRING) {
      if (undo) undo(ud);
      luaL_error(L, "'package.%s' must be a string", names[i]);
    }
  }
  lua_remove(L, -3);
}

lf_payload *lfb_encode_init(lua_State *L, int fn, int handles_ok) {
  if (lua_isnil(L, fn)) return NULL;
  luaL_argcheck(L, lua_isfunction(L, fn), 1, "'initializer' must be a function");
  luaL_argcheck(L, lua_isnil(L, fn + 1) || lua_istable(L, fn + 1), 1,
                "'initargs' must be a table");
  lua_Integer n = lua_istable(L, fn + 1) ? luaL_len(L, fn + 1) : 0;
  luaL_argcheck(L, n >= 0, 1, "'initargs' has a negative length");
  luaL_argcheck(L, n <= INT_MAX / 2 && lua_checkstack(L, (int)n + 8), 1,
                "too many 'initargs'");
  int base = lua_gettop(L);
  for (lua_Integer i = 1; i <= n; i++) lua_geti(L, fn + 1, i);
  lfb_enc e;
  lfb_enc_init(&e, L);
  e.handles_ok = handles_ok;
  lfb_enc_u32(&e, (uint32_t)n + 1);
  for (int i = 0; i <= n; i++) {
    e.argno = i;
    e.what = i == 0 ? "initializer" : "initializer argument";
    if (lfb_enc_value(&e, L, i == 0 ? fn : base + i) != 0) {
      lfb_enc_free(&e, L); /* the message survives in e.err */
      lfb_enc_pusherror(&e, L);
      lua_error(L);
    }
  }
  lf_payload *p = lfb_enc_finish(&e, L);
  if (p == NULL) luaL_error(L, "not enough memory");
  lua_settop(L, base);
  return p;
}

static int e_submit(lua_State *L) {
  lfb_executor *ex = check_exec(L);
  lf_future *f = lfb_task_future(L, 1);
  int rc = lf_pool_submit(ex->pool, f);
  if (rc != 0) {
    lf_future_unref(f);
    return lfb_submit_error(L, rc);
  }
  lfb_future_push_new(L, f);
  return 1;
}

/* An integer at idx: an integer, or a float with an exact integer value,
 * as lauxlib's checkinteger takes them (strings are not numbers here). */
int lfb_getint(lua_State *L, int idx, lua_Integer *v) {
  int ok = 0;
  if (lua_type(L, idx) == LUA_TNUMBER) *v = lua_tointegerx(L, idx, &ok);
  return ok;
}

void lfb_checkint(lua_State *L, int arg, lua_Integer *v, const char *what) {
  if (lfb_getint(L, arg, v)) return;
  if (lua_type(L, arg) == LUA_TNUMBER)
    luaL_argerror(L, arg, "number has no integer representation");
  luaL_typeerror(L, arg, what);
}

/* Raises for a key of the options table at idx not in `known`. */
void lfb_check_options(lua_State *L, int idx, const char *const known[]) {
  LFB_STACK_BEGIN(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    int ok = 0;
    if (lua_type(L, -1) == LUA_TSTRING)
      for (int i = 0; known[i] && !ok; i++)
        ok = strcmp(known[i], lua_tostring(L, -1)) == 0;
    if (!ok) {
      if (lua_type(L, -1) == LUA_TSTRING)
        luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s'",
                                              lua_tostring(L, -1)));
      lua_pushvalue(L, -1); /* tostring of a number key converts it */
      luaL_argerror(L, idx, lua_pushfstring(L, "unknown option [%s] (a %s key)",
                                            luaL_tolstring(L, -1, NULL),
                                            luaL_typename(L, -2)));
    }
  }
  LFB_STACK_CHECK(L, 0);
}

static int e_shutdown(lua_State *L) {
  lfb_executor *ex = luaL_checkudata(L, 1, LFB_THREADPOOL);
  if (ex->pool == NULL) return 0; /* its __gc shut it down */
  int wait, cancel;
  lfb_shutdown_args(L, &wait, &cancel);
  int rc = lf_pool_shutdown(ex->pool, wait, cancel);
  lfb_poll(L, lfb_ctx_of(L));
  if (rc == LF_ESELF)
    return lfb_raise(L, "RuntimeError",
                     "cannot wait for a pool's shutdown from one of its own "
                     "workers");
  return 0;
}

static int e_close(lua_State *L) {
  lfb_executor *ex = luaL_checkudata(L, 1, LFB_THREADPOOL);
  if (ex->pool == NULL) return 0;
  if (lf_pool_shutdown(ex->pool, 1, 0) == LF_ESELF && !ex->owner)
    return 0;
  lfb_poll(L, lfb_ctx_of(L));
  return 0;
}

static int e_gc(lua_State *L) {
  lfb_executor *ex = luaL_checkudata(L, 1, LFB_THREADPOOL);
  if (ex->pool == NULL) return 0;
  if (ex->owner) {
    lf_pool_shutdown(ex->pool, 1, 0);
    lfb_poll(L, lfb_ctx_of(L));
  }
  lf_pool_unref(ex->pool);
  ex->pool = NULL;
  return 0;
}

static int e_tostring(lua_State *L) {
  lfb_executor *ex = luaL_checkudata(L, 1, LFB_THREADPOOL);
  if (ex->pool == NULL) {
    lua_pushliteral(L, "<ThreadPoolExecutor (collected)>");
    return 1;
  }
  static const char *const states[] = {"running", "shutdown", "broken"};
  lua_pushfstring(L, "<ThreadPoolExecutor at %p prefix='%s' workers=%d/%d state=%s>",
                  (void *)ex->pool, lf_pool_prefix(ex->pool),
                  (int)lf_pool_nworkers(ex->pool),
                  (int)lf_pool_max_workers(ex->pool),
                  states[lf_pool_status(ex->pool)]);
  return 1;
}

static _Atomic int pool_counter;

static int m_threadpool(lua_State *L) {
  static const char *const known[] = {"max_workers", "thread_name_prefix",
                                      "initializer", "initargs", NULL};
  lua_Integer max = lfb_default_max_workers > 0 ? lfb_default_max_workers
                                                : lf_cpu_count() + 4;
  if (lfb_default_max_workers <= 0 && max > 32) max = 32;
  const char *prefix = NULL;
  int opts = 0;
  if (lua_istable(L, 1)) {
    opts = 1;
    lfb_check_options(L, 1, known);
    if (lua_getfield(L, 1, "max_workers") != LUA_TNIL)
      luaL_argcheck(L, lfb_getint(L, -1, &max), 1,
                    "'max_workers' must be an integer");
    lua_pop(L, 1);
    /* The prefix string stays on the stack while it is used. */
    if (lua_getfield(L, 1, "thread_name_prefix") != LUA_TNIL) {
      luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 1,
                    "'thread_name_prefix' must be a string");
      prefix = lua_tostring(L, -1);
      if (*prefix == '\0') prefix = NULL; /* as Python: the default one */
    }
  } else if (!lua_isnoneornil(L, 1)) {
    lfb_checkint(L, 1, &max, "table or integer");
  }
  luaL_argcheck(L, max > 0, 1, "'max_workers' must be greater than 0");
  luaL_argcheck(L, max <= 1000000, 1, "'max_workers' is too large");

  lf_payload *init = NULL;
  if (opts) {
    int fn = lua_gettop(L) + 1;
    lua_getfield(L, 1, "initializer");
    lua_getfield(L, 1, "initargs");
    init = lfb_encode_init(L, fn, 1);
  }
  tcfg *cfg = calloc(1, sizeof *cfg);
  if (cfg == NULL) {
    lf_payload_free(init);
    return luaL_error(L, "not enough memory");
  }
  cfg->init = init;
  lfb_push_paths(L, cfg_release, cfg);
  cfg->path = strdup(lua_tostring(L, -2));
  cfg->cpath = strdup(lua_tostring(L, -1));
  lua_pop(L, 2);
  char name[64];
  if (prefix == NULL) {
    snprintf(name, sizeof name, "ThreadPoolExecutor-%d",
             atomic_fetch_add(&pool_counter, 1));
    prefix = name;
  }
  lfb_executor *ex = lua_newuserdatauv(L, sizeof *ex, 0);
  ex->pool = NULL;
  ex->owner = 1;
  luaL_setmetatable(L, LFB_THREADPOOL);
  int err = 0;
  if (cfg->path && cfg->cpath)
    ex->pool = lf_pool_new((size_t)max, prefix, &thread_hooks, cfg, &err);
  if (ex->pool == NULL) {
    cfg_release(cfg);
    return luaL_error(L, "not enough memory");
  }
  lfb_proxy_remember(L, ex->pool, -1);
  return 1;
}

int lfb_map(lua_State *L);

static const luaL_Reg meta[] = {
    {"__tostring", e_tostring},
    {"__gc", e_gc},
    {"__close", e_close},
    {NULL, NULL},
};

static const luaL_Reg methods[] = {
    {"submit", e_submit},
    {"map", lfb_map},
    {"shutdown", e_shutdown},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"ThreadPoolExecutor", m_threadpool},
    {NULL, NULL},
};

void lfb_open_executor(lua_State *L) {
  luaL_newmetatable(L, LFB_THREADPOOL);
  lfb_setfuncs(L, meta);
  lua_newtable(L);
  lfb_setfuncs(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lfb_setfuncs(L, funcs);
}
