/*
 * executor.c -- the executor class, written once for every kind of pool,
 * and the argument helpers the kinds share.
 *
 * A kind (threadpool.c, processpool.c, mpi.c) fills in an
 * lfb_exec_ops table and calls lfb_exec_open: it gets its own metatable
 * (so lauxlib names it in a bad self) with submit, map and shutdown,
 * __close, __gc and __tostring from here. Every method has the context
 * and the kind's ops as upvalues 1 and 2, so a method checks its self
 * against the kind it was made for.
 *
 * The object that created a pool owns it: collecting it or closing its
 * state shuts the pool down and waits. An object for a pool that came
 * into a task as a handle only holds a reference. No lock of this file's
 * own: each runtime pool does its locking.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "lfb.h"

int lfb_default_max_workers; /* set by the luafutures command's -j */

#define ops_of(L) ((const lfb_exec_ops *)lua_touserdata(L, lua_upvalueindex(2)))

/* The methods' own helpers, below. */
static void check_closing(lua_State *L);
static lf_future *task_future(lua_State *L, lfb_ctx *ctx,
                              const lfb_exec_ops *ops, int top);
static lfb_future *push_new_future(lua_State *L, lfb_ctx *ctx, lf_future *f);
static void shutdown_args(lua_State *L, int *wait, int *cancel);

static lfb_executor *self(lua_State *L) {
  return luaL_checkudata(L, 1, ops_of(L)->name);
}

/* The executor at 1 of a method users call, by its tag (lfb.h) and kind:
 * without one, the likely slip is ex.submit(f) for ex:submit(f), and the
 * message says so. */
static lfb_executor *self_of(lua_State *L, const char *method) {
  const lfb_exec_ops *ops = ops_of(L);
  lfb_executor *ex = LFB_TAGGED(L, 1, lfb_executor);
  if (ex != NULL && ex->ops == ops) return ex;
  if (lua_type(L, 1) != LUA_TUSERDATA)
    luaL_argerror(L, 1, lua_pushfstring(L, "%s expected, got %s; use ex:%s, "
                                        "not ex.%s", ops->name,
                                        luaL_typename(L, 1), method, method));
  return self(L);
}

int lfb_exec_refused(lua_State *L, const lfb_exec_ops *ops, void *pool,
                     int rc) {
  char d[200] = "";
  if (ops->failure != NULL && pool != NULL) ops->failure(pool, d, sizeof d);
  if (rc == LF_EBROKEN)
    return lfb_raise(L, ops->broken, *d ? "%s (%s)" : "%s",
                     ops->broken_message(pool), d);
  if (rc == LF_ESPAWN && *d)
    return lfb_raise(L, "RuntimeError", "%s (%s)", lf_strerror(rc), d);
  if (rc == LF_ESHUTDOWN)
    return lfb_raise(L, "RuntimeError",
                     "cannot schedule new futures after shutdown");
  if (rc == LF_ENOMEM) return luaL_error(L, "not enough memory");
  return lfb_raise(L, "RuntimeError", "%s", lf_strerror(rc));
}

/* The executor at 1, for submit and map: one already collected was shut
 * down by its __gc (which a finalizer may run before another's), and a
 * state that is closing takes no new work. */
static lfb_executor *check_open(lua_State *L, const char *method) {
  lfb_executor *ex = self_of(L, method);
  if (ex->pool == NULL) lfb_exec_refused(L, ex->ops, NULL, LF_ESHUTDOWN);
  check_closing(L);
  return ex;
}

/* Lua has no flag for a state being closed, but lua_close is the only time
 * a finalizer runs with no caller beneath it: walk to the bottom frame. A
 * finalizer stops the collector, so in the common case one call says no. */
static void check_closing(lua_State *L) {
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

/* ---- the class ------------------------------------------------------------ */

lfb_executor *lfb_exec_new(lua_State *L, const lfb_exec_ops *ops) {
  lfb_executor *ex = lua_newuserdatauv(L, sizeof *ex, 0);
  memset(ex, 0, sizeof *ex);
  ex->ops = ops;
  ex->owner = 1;
  ex->tag = LFB_TAG(ex);
  luaL_setmetatable(L, ops->name);
  return ex;
}

void lfb_exec_hold(lfb_executor *ex, void *p, void (*fr)(void *)) {
  if (ex->held) ex->held_free(ex->held);
  ex->held = p;
  ex->held_free = fr;
}

static int e_submit(lua_State *L) {
  lfb_executor *ex = check_open(L, "submit");
  double t0 = lfb_tracing ? lfb_trace_now(lfb_ctx_of(L)) : -1;
  int top = lua_gettop(L);
  lfb_ctx *ctx = lfb_ctx_of(L);
  /* The Future object first, empty: made after the submit, a memory error
   * would leak the future (and what its task holds). */
  lfb_future *fu = push_new_future(L, ctx, NULL);
  lf_future *f = ex->ops->handles_ok ? lfb_enc_task_fast(L, ctx, top) : NULL;
  if (f == NULL) f = task_future(L, ctx, ex->ops, top);
  int rc = ex->ops->submit(ex->pool, f);
  if (rc != 0) {
    lf_future_unref(f);
    return lfb_exec_refused(L, ex->ops, ex->pool, rc);
  }
  fu->f = f;
  if (t0 >= 0) lfb_trace_submit(L, lfb_ctx_of(L), f, ex->ops, ex->pool, t0);
  return 1;
}

static int e_map(lua_State *L) {
  lfb_executor *ex = check_open(L, "map");
  return lfb_map_on(L, ex->ops, ex->pool);
}

/* shutdown(wait) and __close wait in a way an interrupt cuts short. */
static int shutdown_and_wait(lua_State *L, lfb_executor *ex, int cancel) {
  lfb_ctx *ctx = lfb_ctx_of(L);
  int rc = lfb_shutdown_wait(L, ctx, ex->ops, ex->pool, cancel, -1);
  lfb_poll(L, ctx);
  if (rc == LF_EINTR) return lfb_raise_interrupt(L, ctx);
  return rc;
}

static int e_shutdown(lua_State *L) {
  lfb_executor *ex = self_of(L, "shutdown");
  if (ex->pool == NULL) return 0; /* its __gc shut it down */
  int wait, cancel;
  shutdown_args(L, &wait, &cancel);
  wait = wait || ex->ops->waits_always;
  lfb_ctx *ctx = lfb_ctx_of(L);
  lfb_check_interrupt(L, ctx);
  int rc = 0;
  if (wait) {
    rc = shutdown_and_wait(L, ex, cancel);
  } else {
    ex->ops->shutdown(ex->pool, 0, cancel);
    lfb_poll(L, ctx);
  }
  if (rc == LF_ESELF)
    return lfb_raise(L, "RuntimeError",
                     "cannot wait for a pool's shutdown from one of its own "
                     "workers");
  return 0;
}

/* A task that closes a handle to its own pool cannot wait for it: the
 * pool is told to stop, and the task goes on. */
static int e_close(lua_State *L) {
  lfb_executor *ex = self(L);
  if (ex->pool == NULL) return 0;
  shutdown_and_wait(L, ex, 0);
  return 0;
}

/* Not a point where callbacks run: the state may be closing, and a
 * callback must not see the futures it finalised. An executor that
 * luafutures_shutdown_all let go (owner cleared) is not waited for. */
static int e_gc(lua_State *L) {
  lfb_executor *ex = self(L);
  ex->tag = 0; /* a block Lua reuses for another userdata keeps its bytes */
  lfb_exec_hold(ex, NULL, NULL);
  if (ex->pool == NULL) return 0;
  if (ex->owner) ex->ops->shutdown(ex->pool, 1, 0);
  ex->ops->unref(ex->pool);
  ex->pool = NULL;
  return 0;
}

static int e_tostring(lua_State *L) {
  lfb_executor *ex = self(L);
  const lfb_exec_ops *ops = ex->ops;
  if (ex->pool == NULL) {
    lua_pushfstring(L, "<%s (collected)>", ops->name);
    return 1;
  }
  static const char *const states[] = {"running", "shutdown", "broken"};
  lua_pushfstring(L, "<%s at %p %s='%s' workers=%d/%d state=%s>", ops->name,
                  ex->pool, ops->detail, ops->detail_value(ex->pool),
                  (int)ops->nworkers(ex->pool),
                  (int)ops->max_workers(ex->pool),
                  states[ops->status(ex->pool)]);
  return 1;
}

/* ex:stats(): how many tasks are where; the done counts are the kind's
 * lfb_counts when it has them (its ops fill the rest). */
static int e_stats(lua_State *L) {
  lfb_executor *ex = self(L);
  lfb_stats s = {0};
  s.bytes_sent = s.shared_sent = -1;
  if (ex->pool && ex->ops->stats) ex->ops->stats(ex->pool, &s);
  static const char *const names[] = {"queued", "running", "done", "failed",
                                      "cancelled", "workers", "busy",
                                      "bytes_sent", "shared_sent"};
  const long long v[] = {s.queued, s.running, s.done, s.failed,
                         s.cancelled, s.workers, s.busy,
                         s.bytes_sent, s.shared_sent};
  lua_createtable(L, 0, 9);
  for (int i = 0; i < 9; i++) {
    if (v[i] < 0) continue; /* not this kind's */
    lua_pushinteger(L, (lua_Integer)v[i]);
    lua_setfield(L, -2, names[i]);
  }
  return 1;
}

static const luaL_Reg meta[] = {
    {"__tostring", e_tostring},
    {"__gc", e_gc},
    {"__close", e_close},
    {NULL, NULL},
};

static const luaL_Reg methods[] = {
    {"submit", e_submit},
    {"map", e_map},
    {"shutdown", e_shutdown},
    {"stats", e_stats},
    {NULL, NULL},
};

/* The functions of l with upvalues context and ops, into the table on
 * top. */
static void setfuncs_of(lua_State *L, const lfb_exec_ops *ops,
                        const luaL_Reg *l) {
  lfb_ctx_push(L);
  lua_pushlightuserdata(L, (void *)ops);
  luaL_setfuncs(L, l, 2);
}

void lfb_exec_open(lua_State *L, const lfb_exec_ops *ops,
                   const luaL_Reg *ctors) {
  luaL_newmetatable(L, ops->name); /* mod mt */
  setfuncs_of(L, ops, meta);
  lua_newtable(L);
  setfuncs_of(L, ops, methods);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, -2); /* mod mt mod */
  setfuncs_of(L, ops, ctors);
  lua_pop(L, 2);
}

/* ---- argument helpers ----------------------------------------------------- */

/* submit's common part: encodes the function at 2 and its arguments (up
 * to `top`) into a new pending future holding its task (raises
 * TransferError), for a pool in this process or another, as ops says
 * (handles_ok, shared_by_id). */
static lf_future *task_future(lua_State *L, lfb_ctx *ctx,
                              const lfb_exec_ops *ops, int top) {
  luaL_checktype(L, 2, LUA_TFUNCTION);
  LFB_STACK_BEGIN(L);
  lfb_enc e;
  lfb_enc_init(&e, L);
  e.handles_ok = ops->handles_ok;
  e.shared_by_id = ops->shared_by_id;
  e.ctx = ctx;
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
  if (lfb_tracing) e.flags |= LFB_TRACED;
  lf_future *f = lfb_enc_finish_task(&e, L);
  if (f == NULL) luaL_error(L, "not enough memory");
  LFB_STACK_CHECK(L, 0);
  return f;
}

/* Pushes a new Future object that takes over the caller's reference (f
 * NULL: an empty one, whose f the caller sets once it has one). */
static lfb_future *push_new_future(lua_State *L, lfb_ctx *ctx, lf_future *f) {
  LFB_STACK_BEGIN(L);
  lfb_future *fu = lua_newuserdatauv(L, sizeof *fu, 0);
  fu->f = f;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->future_mt_ref); /* the array part */
  lua_setmetatable(L, -2);
  LFB_STACK_CHECK(L, 1);
  return fu;
}

/* wait and cancel_futures are booleans: shutdown("now") is a slip, not a
 * true value. */
static int opt_bool(lua_State *L, int idx, int arg, const char *name, int dflt) {
  int t = lua_type(L, idx);
  if (t == LUA_TNONE || t == LUA_TNIL) return dflt;
  if (t == LUA_TBOOLEAN) return lua_toboolean(L, idx);
  if (name == NULL) return luaL_typeerror(L, arg, "boolean");
  return luaL_argerror(L, arg,
                       lua_pushfstring(L, "'%s' must be a boolean", name));
}

/* shutdown's arguments: (wait, cancel_futures) or {wait=, cancel_futures=}. */
static void shutdown_args(lua_State *L, int *wait, int *cancel) {
  if (lua_istable(L, 2)) {
    static const char *const known[] = {"wait", "cancel_futures", NULL};
    lfb_check_options(L, 2, known);
    lua_getfield(L, 2, "wait");
    lua_getfield(L, 2, "cancel_futures");
    *wait = opt_bool(L, -2, 2, "wait", 1);
    *cancel = opt_bool(L, -1, 2, "cancel_futures", 0);
    lua_pop(L, 2);
  } else {
    if (!lua_isnoneornil(L, 2) && !lua_isboolean(L, 2))
      luaL_typeerror(L, 2, "boolean or table");
    *wait = opt_bool(L, 2, 2, NULL, 1);
    *cancel = opt_bool(L, 3, 3, NULL, 0);
  }
}

void lfb_push_paths(lua_State *L) {
  static const char *const names[] = {"path", "cpath"};
  int pkg = lua_getglobal(L, "package") == LUA_TTABLE ? lua_gettop(L) : 0;
  for (int i = 0; i < 2; i++) {
    int t = pkg ? lua_getfield(L, pkg, names[i]) : LUA_TNIL;
    if (t == LUA_TNIL) {
      if (pkg) lua_pop(L, 1);
      lua_pushliteral(L, "");
    } else if (t != LUA_TSTRING) {
      luaL_error(L, "'package.%s' must be a string", names[i]);
    }
  }
  lua_remove(L, -3);
}

void lfb_exec_args(lua_State *L, lua_Integer *max, lua_Integer limit) {
  if (lua_istable(L, 1)) {
    if (lua_getfield(L, 1, "max_workers") != LUA_TNIL)
      luaL_argcheck(L, lfb_getint(L, -1, max), 1,
                    "'max_workers' must be an integer");
    lua_pop(L, 1);
    lua_getfield(L, 1, "initializer");
    lua_getfield(L, 1, "initargs");
  } else {
    if (!lua_isnoneornil(L, 1)) lfb_checkint(L, 1, max, "table or integer");
    lua_pushnil(L);
    lua_pushnil(L);
  }
  luaL_argcheck(L, *max > 0, 1, "'max_workers' must be greater than 0");
  luaL_argcheck(L, *max <= limit, 1, "'max_workers' is too large");
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

const char *lfb_optstring(lua_State *L, int arg, const char *name) {
  size_t len;
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_argerror(L, arg, lua_pushfstring(L, "'%s' must be a string", name));
  const char *s = lua_tolstring(L, -1, &len);
  if (strlen(s) != len)
    luaL_argerror(L, arg,
                  lua_pushfstring(L, "'%s' contains a zero byte", name));
  return s;
}

/* Raises for a key of the options table at idx not in `known`. */
void lfb_check_options(lua_State *L, int idx, const char *const known[]) {
  LFB_STACK_BEGIN(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    int ok = 0;
    if (lua_type(L, -1) == LUA_TSTRING) {
      /* C would read "wait\0x" as "wait": name it for what it is. */
      if (strlen(lua_tostring(L, -1)) != lua_rawlen(L, -1))
        luaL_argerror(L, idx, "option name contains a zero byte");
      for (int i = 0; known[i] && !ok; i++)
        ok = strcmp(known[i], lua_tostring(L, -1)) == 0;
    }
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
