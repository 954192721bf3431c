/*
 * future.c -- the Future class, done callbacks and blocking waits.
 *
 * A Future object is a box around a runtime future. A state keeps one
 * object per runtime future it has handed out (the proxies table, weak), so
 * a handle that comes back from a task is == to the original. Decoded
 * results that contain tables or functions are cached in the object's user
 * value, so result() returns the same table each time.
 *
 * Done callbacks never run on a foreign thread: the runtime hook posts an
 * item to the inbox of the state that added the callback, and that state
 * runs it the next time it enters the runtime (or at once, when it is the
 * one completing or cancelling the future).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lfb.h"

const char lfb_PROXIES[] = "luafutures.proxies";
/* Future object -> its decoded outcome, for results holding tables (weak
 * keys: most futures never need an entry, so objects stay small). */
static const char RESULTS[] = "luafutures.results";

static int get_cached(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lfb_push_weak(L, RESULTS, "k");
  lua_pushvalue(L, idx);
  int t = lua_rawget(L, -2);
  lua_remove(L, -2);
  return t;
}

static void set_cached(lua_State *L, int idx) { /* value on top, popped */
  idx = lua_absindex(L, idx);
  lfb_push_weak(L, RESULTS, "k");
  lua_pushvalue(L, idx);
  lua_pushvalue(L, -3);
  lua_rawset(L, -3);
  lua_pop(L, 2);
}

/* ---- objects -------------------------------------------------------------- */

/* The class's metatable is also kept under this address: a check looks it
 * up by pointer, not by name (every result() and submit checks a Future,
 * and a name costs a string hash and compare). */
static const char lfb_FUTURE_MT[] = "luafutures.Future"; /* registry key */

lfb_future *lfb_future_test(lua_State *L, int idx) {
  return lfb_toclass(L, idx, lfb_FUTURE_MT);
}

/* fu if it is a live Future, else raises as lauxlib does. */
static lfb_future *checked(lua_State *L, int idx, lfb_future *fu) {
  if (fu == NULL) fu = luaL_checkudata(L, idx, LFB_FUTURE); /* raises */
  if (fu->f == NULL) luaL_argerror(L, idx, "Future is collected");
  return fu;
}

/* The Future at 1 of a method (its context is upvalue 1): the metatable
 * compared with the context's pointer, no registry lookup. A Future has
 * no room for the executors' tag (lfb.h): it would take each Future's
 * block from 48 to 64 bytes, and 100,000 pending futures from 19.1 to
 * 20.7 MiB, past M1's 20. */
static lfb_future *self_of_gc(lua_State *L) {
  lfb_future *fu = NULL;
  if (lua_type(L, 1) == LUA_TUSERDATA && lua_getmetatable(L, 1)) {
    if (lua_topointer(L, -1) == lfb_ctx_of(L)->future_mt)
      fu = lua_touserdata(L, 1);
    lua_pop(L, 1);
  }
  return fu ? fu : luaL_checkudata(L, 1, LFB_FUTURE);
}
static lfb_future *self(lua_State *L) { return checked(L, 1, self_of_gc(L)); }

static lfb_future *newbox(lua_State *L, lf_future *f) {
  lfb_future *fu = lua_newuserdatauv(L, sizeof *fu, 0);
  fu->f = f;
  lua_rawgetp(L, LUA_REGISTRYINDEX, lfb_FUTURE_MT);
  lua_setmetatable(L, -2);
  return fu;
}

void lfb_proxy_remember(lua_State *L, const void *ptr, int idx) {
  idx = lua_absindex(L, idx);
  lua_rawgetp(L, LUA_REGISTRYINDEX, lfb_PROXIES);
  if (lua_rawgetp(L, -1, ptr) == LUA_TNIL) {
    lua_pushvalue(L, idx);
    lua_rawsetp(L, -3, ptr);
  }
  lua_pop(L, 2);
}

void lfb_future_push(lua_State *L, lf_future *f) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, lfb_PROXIES);
  if (lua_rawgetp(L, -1, f) == LUA_TUSERDATA) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  newbox(L, f);
  lf_future_ref(f);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, -3, f);
  lua_remove(L, -2);
}

/* ---- outcomes ------------------------------------------------------------- */

/* Pushes the first outcome of a finished future's payload (the refs
 * placeholder first, at top + 1): true, n values -- or false, error,
 * traceback. Returns the number pushed after the placeholder. */
static int push_outcome(lua_State *L, const lf_payload *p) {
  lfb_dec d;
  lfb_outcome_open(&d, p);
  lua_pushnil(L);
  d.refs = lua_gettop(L);
  lua_pushboolean(L, 1);
  int ok;
  int n = lfb_outcome_push(L, &d, 1, &ok);
  if (!ok) {
    lua_pushboolean(L, 0);
    lua_replace(L, -4);
  }
  return n + 1;
}

/* Pushes the cached outcome table of a finished future: {ok, n, ...} or
 * {ok = false, err, tb}. Built once when the payload holds references. */
static void outcome_table(lua_State *L, int idx, lfb_future *fu) {
  if (get_cached(L, idx) == LUA_TTABLE) return;
  lua_pop(L, 1);
  const lf_payload *p = lf_future_result(fu->f, NULL);
  int top = lua_gettop(L);
  int n = push_outcome(L, p);
  lua_createtable(L, n, 2);
  lua_insert(L, top + 2);
  int ok = lua_toboolean(L, top + 3);
  for (int i = n - 1; i >= 1; i--) lua_rawseti(L, top + 2, i);
  lua_setfield(L, top + 2, "ok");
  if (ok) {
    lua_pushinteger(L, n - 1);
    lua_setfield(L, top + 2, "n");
  }
  if (p->flags & LFB_HASREFS) {
    lua_pushvalue(L, top + 2);
    set_cached(L, idx);
  }
  lua_remove(L, top + 1);
}

int lfb_reraise(lua_State *L) {
  lua_setfield(L, LUA_REGISTRYINDEX, LFB_RAISED_TRACEBACK);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, LFB_RAISED_ERROR);
  return lua_error(L);
}

enum { WANT_VALUES, WANT_ERROR, WANT_TRACEBACK };

/* exception() and traceback() return one value, nil included, so that
 * assert.equal(nil, f:exception()) sees two arguments. */
static int nil_result(lua_State *L) {
  lua_pushnil(L);
  return 1;
}

/* The future at idx is done: pushes what `want` asks for. */
static int finished(lua_State *L, int idx, lfb_future *fu, int want) {
  if (lf_future_state(fu->f) == LF_CANCELLED) {
    if (want == WANT_TRACEBACK) return nil_result(L);
    lua_pushvalue(L, idx);
    const char *s = luaL_tolstring(L, -1, NULL);
    return lfb_raise(L, "CancelledError", "%s", s);
  }
  const lf_payload *p = lf_future_result(fu->f, NULL);
  if (!(p->flags & LFB_HASREFS) && want == WANT_VALUES) {
    /* Only set_result caches plain values: most futures skip the lookup. */
    int mark = lf_future_mark(fu->f);
    if (!mark && lfb_outcome_push_scalar(L, p)) return 1;
    int cached = mark && get_cached(L, idx) == LUA_TTABLE;
    if (mark) lua_pop(L, 1);
    if (!cached) {
      /* Plain values: decode straight onto the stack, no table. */
      int top = lua_gettop(L);
      int n = push_outcome(L, p);
      if (!lua_toboolean(L, top + 2)) return lfb_reraise(L);
      return n - 1;
    }
  }
  outcome_table(L, idx, fu);
  int t = lua_gettop(L);
  lua_getfield(L, t, "ok");
  int ok = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (want == WANT_ERROR || want == WANT_TRACEBACK) {
    if (ok) return nil_result(L);
    lua_rawgeti(L, t, want == WANT_ERROR ? 1 : 2);
    return 1;
  }
  if (!ok) {
    lua_rawgeti(L, t, 1);
    lua_rawgeti(L, t, 2);
    return lfb_reraise(L);
  }
  lua_getfield(L, t, "n");
  int n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, n, "too many results");
  for (int i = 1; i <= n; i++) lua_rawgeti(L, t, i);
  return n;
}

/* ---- callbacks and waiting ----------------------------------------------- */

typedef struct cbitem {
  lf_item base;
  lf_inbox *inbox;
  int ref; /* registry: {future object, callback} */
} cbitem;

/* Reports the error at the top, raised by a callback of the future at
 * fidx, as Python's module does, and pops it. */
static void report(lua_State *L, int fidx) {
  fidx = lua_absindex(L, fidx);
  const char *msg = lfb_tostring_safe(L, -1);
  const char *fut = luaL_tolstring(L, fidx, NULL); /* ours: cannot fail */
  lfb_report("exception calling callback for %s: %s", fut, msg);
  lua_pop(L, 3);
}

/* Runs one callback (cbitem at 1), protected as a whole so that even a
 * memory error leaves the poll loop that called it intact. */
static int cb_call(lua_State *L) {
  cbitem *cb = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, cb->ref);
  luaL_unref(L, LUA_REGISTRYINDEX, cb->ref);
  lua_rawgeti(L, -1, 1);
  lua_rawgeti(L, -2, 2);
  lua_pushvalue(L, -2); /* {f, fn} f fn f */
  /* A future already finalised (the state is closing) is not handed
   * to its callback: the callback is dropped. */
  if (((lfb_future *)lua_touserdata(L, -1))->f == NULL) return 0;
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) report(L, -2);
  return 0;
}

static void cb_run(lf_item *it, void *ctx) {
  cbitem *cb = (cbitem *)it;
  lua_State *L = ctx;
  if (L) {
    lua_pushcfunction(L, cb_call);
    lua_pushlightuserdata(L, cb);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1); /* no memory: dropped */
  }
  lf_inbox_unref(cb->inbox);
  free(cb);
}

static void cb_hook(void *arg, lf_future *f) {
  (void)f;
  cbitem *cb = arg;
  lf_inbox_post(cb->inbox, &cb->base);
}

/* Callbacks do not nest: a callback that enters the runtime (its
 * future's result()) runs no other callback there, so one callback never
 * sees another half way through its own statement. */
int lfb_poll(lua_State *L, lfb_ctx *ctx) {
  if (ctx->inbox == NULL || !lf_inbox_pending(ctx->inbox) || ctx->polling)
    return 0;
  LFB_STACK_BEGIN(L);
  int n = 0;
  ctx->polling = 1;
  for (lf_item *it = lf_inbox_take(ctx->inbox), *next; it; it = next, n++) {
    next = it->next;
    it->run(it, L); /* never raises */
  }
  ctx->polling = 0;
  LFB_STACK_CHECK(L, 0);
  return n;
}

int lfb_await(lua_State *L, lfb_ctx *ctx, lf_future *f, double timeout,
              char *why, size_t whylen) {
  const _Atomic int *stop = lfb_stop_flag(ctx);
  if (stop && atomic_load(stop)) return LF_EINTR;
  if (lf_future_done(f) || (timeout != 0 && lf_future_wait_spin(f))) {
    lf_future_sync(f); /* its callbacks are posted: run them now */
    lfb_poll(L, ctx);
    return 0;
  }
  lfb_poll(L, ctx);
  lf_waiter *w = lf_waiter_new();
  if (w == NULL || lf_waiter_watch(w, f) != 0) {
    lf_waiter_free(w);
    return LF_ENOMEM; /* the caller may hold what it must free first */
  }
  lf_waiter_set_stop(w, stop);
  lf_waiter *prev = ctx->inbox ? lf_inbox_set_waiter(ctx->inbox, w) : NULL;
  double deadline = lf_now() + timeout;
  int rc;
  for (;;) {
    double left = timeout < 0 ? -1 : deadline - lf_now();
    if (timeout >= 0 && left < 0) left = 0;
    rc = lf_waiter_wait(w, left, f, why, whylen);
    if (rc != LF_EKICKED) break;
    lfb_poll(L, ctx);
    if (lf_future_done(f)) {
      rc = 0;
      break;
    }
  }
  if (ctx->inbox) lf_inbox_set_waiter(ctx->inbox, prev);
  lf_waiter_free(w);
  lfb_poll(L, ctx);
  return rc;
}

/* lfb_await raising: TimeoutError, DeadlockError, interrupted!. */
static void wait_one(lua_State *L, lfb_ctx *ctx, lf_future *f,
                     double timeout) {
  char why[400];
  int rc = lfb_await(L, ctx, f, timeout, why, sizeof why);
  if (rc == LF_EINTR) lfb_raise_interrupt(L, ctx);
  if (rc == LF_ENOMEM) luaL_error(L, "not enough memory");
  if (rc == LF_ETIMEDOUT)
    lfb_raise(L, "TimeoutError", "future did not finish within %f seconds",
              timeout);
  if (rc == LF_EDEADLK) lfb_raise(L, "DeadlockError", "%s", why);
}

double lfb_opt_timeout(lua_State *L, int idx, const char *fname) {
  (void)fname;
  if (lua_isnoneornil(L, idx)) return -1;
  lua_Number t = luaL_checknumber(L, idx);
  luaL_argcheck(L, t >= 0, idx, "timeout must be non-negative");
  return (double)t;
}

/* ---- methods -------------------------------------------------------------- */

static int f_wait_then(lua_State *L, int want) {
  lfb_future *fu = self(L);
  double timeout = want == WANT_TRACEBACK ? 0 : lfb_opt_timeout(L, 2, NULL);
  lfb_ctx *ctx = lfb_ctx_of(L);
  if (want == WANT_TRACEBACK) {
    if (!lf_future_done(fu->f)) return nil_result(L);
  } else if (lfb_tracing && !lf_future_done(fu->f)) {
    double t0 = lfb_trace_now(ctx);
    wait_one(L, ctx, fu->f, timeout);
    lfb_trace_wait(L, ctx, want == WANT_VALUES ? "result" : "exception", t0);
  } else {
    wait_one(L, ctx, fu->f, timeout);
  }
  lua_settop(L, 1);
  return finished(L, 1, fu, want);
}

static int f_result(lua_State *L) { return f_wait_then(L, WANT_VALUES); }
static int f_exception(lua_State *L) { return f_wait_then(L, WANT_ERROR); }
static int f_traceback(lua_State *L) { return f_wait_then(L, WANT_TRACEBACK); }

static int f_cancel(lua_State *L) {
  lfb_future *fu = self(L);
  int ok = lf_future_cancel(fu->f);
  lfb_poll(L, lfb_ctx_of(L)); /* our callbacks run at once */
  lua_pushboolean(L, ok);
  return 1;
}

static int f_state_is(lua_State *L, int st) {
  lfb_future *fu = self(L);
  lua_pushboolean(L, lf_future_state(fu->f) == st);
  return 1;
}
static int f_cancelled(lua_State *L) { return f_state_is(L, LF_CANCELLED); }
static int f_running(lua_State *L) { return f_state_is(L, LF_RUNNING); }
static int f_done(lua_State *L) {
  lfb_future *fu = self(L);
  lua_pushboolean(L, lf_future_done(fu->f));
  return 1;
}

static int f_add_done_callback(lua_State *L) {
  lfb_future *fu = self(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lfb_ctx *ctx = lfb_ctx_of(L);
  if (!lf_future_done(fu->f) && ctx->inbox) {
    /* What may raise comes before the malloc, which nothing could free. */
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, 2);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    cbitem *cb = malloc(sizeof *cb);
    if (cb == NULL) {
      luaL_unref(L, LUA_REGISTRYINDEX, ref);
      return luaL_error(L, "not enough memory");
    }
    cb->ref = ref;
    cb->base.run = cb_run;
    cb->inbox = ctx->inbox;
    lf_inbox_ref(ctx->inbox);
    int rc = lf_future_add_hook(fu->f, cb_hook, cb);
    if (rc == 0) return 0;
    luaL_unref(L, LUA_REGISTRYINDEX, cb->ref);
    lf_inbox_unref(cb->inbox);
    free(cb);
    if (rc < 0) return luaL_error(L, "not enough memory");
  }
  /* Already done: this one runs now, its error reported, not raised; no
   * other callback runs here (a host keeps them to its poll point). */
  lf_future_sync(fu->f);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 1);
  int was = ctx->polling; /* it is a callback: others do not nest in it */
  ctx->polling = 1;
  int rc = lua_pcall(L, 1, 0, 0);
  ctx->polling = was;
  if (rc != LUA_OK) report(L, 1);
  return 0;
}

static int f_set_running(lua_State *L) {
  lfb_future *fu = self(L);
  int rc = lf_future_set_running(fu->f);
  if (rc == LF_EINVALSTATE) {
    lua_pushvalue(L, 1);
    return lfb_raise(L, "InvalidStateError", "future in unexpected state: %s",
                     luaL_tolstring(L, -1, NULL));
  }
  if (rc == LF_ECANCELLED) lfb_poll(L, lfb_ctx_of(L));
  lua_pushboolean(L, rc == 0);
  return 1;
}

/* set_result(...) and set_exception(err): one outcome, encoded so that any
 * state can read it, and cached so that this state gets the very values. */
static int f_set(lua_State *L, int ok) {
  lfb_future *fu = self(L);
  int n = lua_gettop(L) - 1;
  if (lf_future_done(fu->f)) goto done_already;
  /* The cache (this state sees its own values) is made and stored first:
   * once the payload exists nothing may raise, or its references leak. */
  lua_settop(L, 1 + (ok ? n : 1));
  luaL_checkstack(L, n + LUA_MINSTACK, "too many results");
  lua_createtable(L, n, 2);
  for (int i = 1; i <= n; i++) {
    lua_pushvalue(L, 1 + i);
    lua_rawseti(L, -2, i);
  }
  if (ok) {
    lua_pushinteger(L, n);
    lua_setfield(L, -2, "n");
  }
  lua_pushboolean(L, ok);
  lua_setfield(L, -2, "ok");
  set_cached(L, 1);
  lfb_enc e;
  lfb_enc_init(&e, L);
  lfb_enc_u32(&e, 1);
  int rc = ok ? lfb_outcome_values(&e, L, 2, n)
              : lfb_outcome_try_error(&e, L, 2, 0);
  if (rc != 0) {
    lfb_enc_free(&e, L); /* the message survives in e.err */
    lua_pushnil(L);
    set_cached(L, 1); /* a key already there: no allocation */
    lfb_enc_pusherror(&e, L);
    return lua_error(L);
  }
  lf_payload *p = lfb_enc_finish(&e, L);
  if (p == NULL) {
    lua_pushnil(L);
    set_cached(L, 1);
    return luaL_error(L, "not enough memory");
  }
  lf_future_set_mark(fu->f);
  if (lf_future_finish(fu->f, p, !ok) != 0) {
    lua_pushnil(L);
    set_cached(L, 1);
    goto done_already;
  }
  lfb_poll(L, lfb_ctx_of(L)); /* our callbacks run at once */
  return 0;
done_already:
  lua_pushvalue(L, 1);
  return lfb_raise(L, "InvalidStateError", "future is already done: %s",
                   luaL_tolstring(L, -1, NULL));
}
static int f_set_result(lua_State *L) { return f_set(L, 1); }
static int f_set_exception(lua_State *L) {
  self(L);
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  return f_set(L, 0);
}

static int f_tostring(lua_State *L) {
  lfb_future *fu = luaL_checkudata(L, 1, LFB_FUTURE);
  if (fu->f == NULL) {
    lua_pushliteral(L, "<Future (collected)>");
    return 1;
  }
  static const char *const names[] = {"pending", "running", "cancelled",
                                      "finished"};
  int st = lf_future_state(fu->f);
  if (st != LF_FINISHED) {
    lua_pushfstring(L, "<Future at %p state=%s>", (void *)fu->f, names[st]);
    return 1;
  }
  int ok;
  const lf_payload *res = lf_future_result(fu->f, NULL);
  const char *type = lfb_outcome_describe(res, &ok);
  lfb_stamp by;
  if (!lfb_outcome_stamp_read(res, &by)) by.worker[0] = '\0';
  lua_pushfstring(L, "<Future at %p state=finished %s %s%s%s>", (void *)fu->f,
                  ok ? "returned" : "raised", type, *by.worker ? " worker=" : "",
                  by.worker);
  return 1;
}

static int f_gc(lua_State *L) {
  lfb_future *fu = self_of_gc(L);
  lf_future_unref(fu->f);
  fu->f = NULL;
  return 0;
}

/* futures.Future(): an unbound future, for bridging. */
static int m_future(lua_State *L) {
  lfb_future *fu = newbox(L, NULL); /* empty first: it may raise */
  fu->f = lf_future_new();
  if (fu->f == NULL) return luaL_error(L, "not enough memory");
  return 1;
}

static const luaL_Reg meta[] = {
    {"__tostring", f_tostring},
    {"__gc", f_gc},
    {NULL, NULL},
};

static const luaL_Reg methods[] = {
    {"result", f_result},
    {"exception", f_exception},
    {"traceback", f_traceback},
    {"cancel", f_cancel},
    {"cancelled", f_cancelled},
    {"running", f_running},
    {"done", f_done},
    {"add_done_callback", f_add_done_callback},
    {"set_running_or_notify_cancel", f_set_running},
    {"set_result", f_set_result},
    {"set_exception", f_set_exception},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"Future", m_future},
    {NULL, NULL},
};

/* How the runtime's deadlock messages name a future: as tostring(f). */
static int describe(const lf_future *f, int state, char *buf, size_t len) {
  return snprintf(buf, len, "<Future at %p state=%s>", (void *)f,
                  state == LF_RUNNING ? "running" : "pending");
}

void lfb_open_future(lua_State *L) {
  lf_set_describe(describe);
  luaL_newmetatable(L, LFB_FUTURE); /* mod mt */
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, lfb_FUTURE_MT);
  lfb_ctx *ctx = lfb_ctx_push(L);
  ctx->future_mt = lua_topointer(L, -2);
  lua_pushvalue(L, -2);
  ctx->future_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
  lfb_setfuncs(L, meta);
  lua_newtable(L);
  lfb_setfuncs(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lfb_setfuncs(L, funcs);
}
