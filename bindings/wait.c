/*
 * wait.c -- futures.wait and futures.as_completed over any futures, from
 * any executors, bare futures included.
 *
 * Both collect the futures (an array, or the keys of a table), drop
 * duplicates, and watch the unfinished ones with one runtime waiter, which
 * records completions -- cancellations included -- in the order they
 * happen. While blocked, the waiter is also the one this state's inbox
 * kicks, so done callbacks keep running. The caller's own Future objects
 * are handed back: a table maps each runtime future to its object.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lfb.h"

static const char *const modes[] = {"FIRST_COMPLETED", "FIRST_EXCEPTION",
                                    "ALL_COMPLETED", NULL};
enum { FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED };

/* Whether the list at `list` (n objects) holds one runtime future twice:
 * an open-addressing set of their pointers, in a userdata the collector
 * frees, costs far less than a table of those seen, and a list without
 * duplicates, the usual one, needs nothing more. */
static int has_duplicates(lua_State *L, int list, int n) {
  size_t cap = 16;
  while (cap < 2 * (size_t)n) cap *= 2;
  lf_future **set = lua_newuserdatauv(L, cap * sizeof *set, 0);
  memset(set, 0, cap * sizeof *set);
  int dup = 0;
  for (int i = 1; i <= n && !dup; i++) {
    lua_rawgeti(L, list, i);
    lf_future *f = ((lfb_future *)lua_touserdata(L, -1))->f;
    lua_pop(L, 1);
    size_t h = (size_t)(((uint64_t)(uintptr_t)f * 0x9E3779B97F4A7C15u) >> 32);
    for (h &= cap - 1; set[h] != NULL && set[h] != f; h = (h + 1) & (cap - 1)) {
    }
    dup = set[h] == f;
    set[h] = f;
  }
  lua_pop(L, 1);
  return dup;
}

/* Replaces the list at `list` by one without its duplicates, in order. */
static int drop_duplicates(lua_State *L, int list, int n) {
  lua_createtable(L, n, 0); /* out */
  lua_createtable(L, 0, n); /* out seen */
  int m = 0;
  for (int i = 1; i <= n; i++) {
    lfb_future *fu = (lua_rawgeti(L, list, i), lua_touserdata(L, -1));
    if (lua_rawgetp(L, -2, fu->f) == LUA_TNIL) {
      lua_pushboolean(L, 1);
      lua_rawsetp(L, -4, fu->f);
      lua_pushvalue(L, -2);
      lua_rawseti(L, -5, ++m);
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  lua_replace(L, list);
  return m;
}

/* The live Future at idx, or NULL: its metatable compared with the
 * context's pointer, no registry lookup (a wait checks every future it is
 * given, on every call of a drain loop). */
static lfb_future *future_at(lua_State *L, const lfb_ctx *ctx, int idx) {
  lfb_future *fu = lua_touserdata(L, idx);
  if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx))
    return NULL;
  int ours = lua_topointer(L, -1) == ctx->future_mt;
  lua_pop(L, 1);
  return ours && fu->f ? fu : NULL;
}

/* Collects the futures of the table at idx (an array, else its keys) into
 * a new array, pushed, without duplicates and in order. Returns how many. */
static int collect(lua_State *L, const lfb_ctx *ctx, int idx,
                   const char *fname) {
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
  lua_createtable(L, len > 0 && len < INT_MAX ? (int)len : 0, 0); /* list */
  int list = lua_gettop(L), n = 0;
  if (len > 0) {
    for (lua_Integer i = 1; i <= len; i++) {
      lua_rawgeti(L, idx, i);
      lfb_future *fu = future_at(L, ctx, -1);
      if (fu == NULL)
        return luaL_error(L,
                          "bad argument #1 to '%s' (Future expected at index "
                          "%d, got %s)",
                          fname, (int)i, lfb_typename(L, -1));
      lua_rawseti(L, list, ++n);
    }
  } else {
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      lfb_future *fu = future_at(L, ctx, -2);
      if (fu == NULL)
        return luaL_error(L,
                          "bad argument #1 to '%s' (Future expected as key, "
                          "got %s)",
                          fname, lfb_typename(L, -2));
      lua_pop(L, 1);
      lua_pushvalue(L, -1);
      lua_rawseti(L, list, ++n);
    }
  }
  if (n > 1 && has_duplicates(L, list, n)) n = drop_duplicates(L, list, n);
  return n;
}

/* The waiter lives in a userdata so that an error cannot leak it. */
typedef struct wbox {
  lf_waiter *w;
  lf_inbox *inbox; /* kicking this waiter while set */
  lf_waiter *prev;
  double deadline; /* < 0: none */
  int total;       /* as_completed: futures in all */
  int left;        /* as_completed: not handed back yet */
  int scan;        /* as_completed: list entries before it are done */
} wbox;

static const char WBOX[] = "luafutures.waiter";

static void wbox_release(wbox *b) {
  if (b->inbox) {
    lf_inbox_set_waiter(b->inbox, b->prev);
    b->inbox = NULL;
  }
  lf_waiter_free(b->w);
  b->w = NULL;
}

static int wbox_gc(lua_State *L) {
  wbox_release(luaL_checkudata(L, 1, WBOX));
  return 0;
}

static wbox *wbox_new(lua_State *L) {
  wbox *b = lua_newuserdatauv(L, sizeof *b, 1);
  memset(b, 0, sizeof *b);
  if (luaL_newmetatable(L, WBOX)) {
    lua_pushcfunction(L, wbox_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, wbox_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_setmetatable(L, -2);
  b->w = lf_waiter_new();
  if (b->w == NULL) luaL_error(L, "not enough memory");
  return b;
}

/* What a blocked wait tells the deadlock check: the futures it waits on
 * and whether it needs all of them or any one. A wait for any one names
 * every future it still watches, up to MAXSET of them (more are not
 * checked). */
#define MAXSET 256
typedef struct dset {
  lf_future *f[MAXSET];
  size_t n;
  int all;
} dset;

/* Only a wait with no timeout on a pool worker can be checked. */
static int checkable(const wbox *b) {
  return b->deadline < 0 && lf_current_pool() != NULL;
}

/* Done futures are kept: one that finished since the last look makes a
 * wait for any one of them not doomed, which it is not. */
static void dset_add(dset *d, lf_future *f) {
  if (d->n <= MAXSET) {
    if (d->n < MAXSET) d->f[d->n] = f;
    d->n++;
  }
}

/* Blocks until a completion is recorded; LF_ETIMEDOUT or LF_EDEADLK with a
 * message in why. */
static int block(lua_State *L, lfb_ctx *ctx, wbox *b, const dset *d,
                 char *why, size_t len) {
  size_t nset = d->n <= MAXSET ? d->n : 0;
  lf_waiter_set_stop(b->w, lfb_stop_flag(ctx));
  if (ctx->inbox && b->inbox == NULL) {
    b->inbox = ctx->inbox;
    b->prev = lf_inbox_set_waiter(ctx->inbox, b->w);
  }
  for (;;) {
    lfb_poll(L, ctx);
    if (lf_waiter_ncompleted(b->w) > 0) return 0;
    double left = -1;
    if (b->deadline >= 0) {
      left = b->deadline - lf_now();
      if (left < 0) left = 0;
    }
    int rc = lf_waiter_wait_for(b->w, left, d->f, nset, d->all, why, len);
    if (rc != LF_EKICKED) return rc;
  }
}

static int unblock(lua_State *L, lfb_ctx *ctx, wbox *b) {
  if (b->inbox) {
    lf_inbox_set_waiter(b->inbox, b->prev);
    b->inbox = NULL;
  }
  return lfb_poll(L, ctx);
}

/* wait's arguments after fs: ([timeout], [return_when]) or {...}. */
static void wait_args(lua_State *L, double *timeout, int *mode) {
  *timeout = -1;
  *mode = ALL_COMPLETED;
  if (!lua_istable(L, 2)) {
    *timeout = lfb_opt_timeout(L, 2, "wait");
    *mode = luaL_checkoption(L, 3, "ALL_COMPLETED", modes);
    return;
  }
  static const char *const known[] = {"timeout", "return_when", NULL};
  lfb_check_options(L, 2, known);
  if (lua_getfield(L, 2, "timeout") != LUA_TNIL) {
    luaL_argcheck(L, lua_isnumber(L, -1), 2, "'timeout' must be a number");
    *timeout = (double)lua_tonumber(L, -1);
    luaL_argcheck(L, *timeout >= 0, 2, "timeout must be non-negative");
  }
  if (lua_getfield(L, 2, "return_when") != LUA_TNIL) {
    const char *w = NULL;
    if (lua_type(L, -1) == LUA_TSTRING) w = lfb_optstring(L, 2, "return_when");
    int m = 0;
    while (w && modes[m] && strcmp(modes[m], w) != 0) m++;
    if (w == NULL || modes[m] == NULL)
      luaL_argerror(L, 2, lua_pushfstring(L, "invalid return_when '%s'",
                                          luaL_tolstring(L, -1, NULL)));
    *mode = m;
  }
  lua_pop(L, 2);
}

/* The future at index i of the list at 2. */
static lf_future *nth(lua_State *L, int i) {
  lua_rawgeti(L, 2, i);
  lf_future *f = ((lfb_future *)lua_touserdata(L, -1))->f;
  lua_pop(L, 1);
  return f;
}

/* What a wait has seen so far. */
typedef struct wstate {
  int n, pending, done, failed, mode;
  lf_future *last; /* an unfinished one, for a wait for all */
} wstate;

static void saw_done(wstate *ws, lf_future *f) {
  int fl = 0;
  lf_future_result(f, &fl);
  ws->failed |= fl;
  ws->done++;
}

static int satisfied(const wstate *ws) {
  return ws->pending == 0 || (ws->mode == FIRST_COMPLETED && ws->done > 0) ||
         (ws->mode == FIRST_EXCEPTION && ws->failed);
}

/* Watches the unfinished futures of the list at 2, counted again: one
 * that finished since the first look is seen here instead. */
static void watch_pending(lua_State *L, wbox *b, wstate *ws) {
  ws->pending = ws->done = ws->failed = 0;
  ws->last = NULL;
  for (int i = 1; i <= ws->n; i++) {
    lf_future *f = nth(L, i);
    if (lf_future_done(f)) {
      saw_done(ws, f);
      continue;
    }
    if (lf_waiter_watch(b->w, f) != 0) luaL_error(L, "not enough memory");
    ws->pending++;
    ws->last = f;
  }
}

/* Blocks until the wait is satisfied; 0, LF_ETIMEDOUT or LF_EDEADLK. */
static int wait_loop(lua_State *L, lfb_ctx *ctx, wbox *b, wstate *ws,
                     char *why, size_t len) {
  while (!satisfied(ws)) {
    /* A wait for all is doomed by any one future that can never finish:
     * checking one at a time finds it once the others are done. A wait
     * that may end at the first completion (or failure) is doomed only if
     * none of its futures can finish. */
    dset d = {.n = 0, .all = ws->mode == ALL_COMPLETED};
    if (checkable(b) && d.all) {
      dset_add(&d, ws->last);
    } else if (checkable(b)) {
      for (int i = 1; i <= ws->n && d.n <= MAXSET; i++) dset_add(&d, nth(L, i));
    }
    int rc = block(L, ctx, b, &d, why, len);
    if (rc != 0) return rc;
    for (lf_future *f; (f = lf_waiter_pop(b->w)) != NULL; lf_future_unref(f)) {
      saw_done(ws, f);
      ws->pending--;
      if (f == ws->last) ws->last = NULL;
    }
    for (int i = 1; i <= ws->n && ws->last == NULL && ws->pending > 0; i++)
      if (!lf_future_done(nth(L, i))) ws->last = nth(L, i);
  }
  return 0;
}

/* futures.wait(fs, [timeout], [return_when]) or wait(fs, {...}) */
static int m_wait(lua_State *L) {
  lfb_ctx *ctx = lfb_ctx_of(L);
  lfb_check_interrupt(L, ctx);
  double timeout;
  wstate ws = {0};
  wait_args(L, &timeout, &ws.mode);
  lua_settop(L, 1);
  ws.n = collect(L, ctx, 1, "wait"); /* fs list */
  lfb_poll(L, ctx);
  wbox *b = wbox_new(L); /* fs list box */
  b->deadline = timeout >= 0 ? lf_now() + timeout : -1;
  for (int i = 1; i <= ws.n; i++) {
    lf_future *f = nth(L, i);
    if (lf_future_done(f)) {
      saw_done(&ws, f);
    } else {
      ws.pending++;
      ws.last = f;
    }
  }
  /* A drain loop calls this with a long list of which one is often done
   * already: then it returns without watching (or locking) any future. */
  if (!satisfied(&ws)) watch_pending(L, b, &ws);
  char why[400];
  double t0 = lfb_tracing && ws.pending ? lfb_trace_now(ctx) : -1;
  int rc = wait_loop(L, ctx, b, &ws, why, sizeof why);
  if (t0 >= 0) lfb_trace_wait(L, ctx, "wait", t0);
  unblock(L, ctx, b);
  wbox_release(b);
  if (rc == LF_EINTR) return lfb_raise_interrupt(L, ctx);
  if (rc == LF_EDEADLK) return lfb_raise(L, "DeadlockError", "%s", why);
  lua_createtable(L, ws.done, 0);
  lua_createtable(L, ws.n - ws.done, 0); /* fs list box done not_done */
  int nd = 0, nn = 0;
  for (int i = 1; i <= ws.n; i++) {
    lua_rawgeti(L, 2, i);
    int d = lf_future_done(((lfb_future *)lua_touserdata(L, -1))->f);
    lua_rawseti(L, d ? 4 : 5, d ? ++nd : ++nn);
  }
  return 2;
}

/* ---- as_completed --------------------------------------------------------- */

/* The end of the iteration: one nil, as the contract says. */
static int ac_end(lua_State *L) {
  lua_pushnil(L);
  return 1;
}

/* The object at index i of the iterator's list, NULL once handed back. */
static lfb_future *list_at(lua_State *L, int i) {
  lua_rawgeti(L, lua_upvalueindex(3), i);
  lfb_future *fu = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return fu;
}

/* What a blocked as_completed tells the deadlock check: the next one may
 * be any of those left, so it is doomed only if all are. Futures at the
 * front of the list (upvalue 3) that are done stay done, so the scan
 * starts past them: the whole iteration scans the list once, plus at most
 * MAXSET entries per block. */
static void ac_dset(lua_State *L, wbox *b, dset *d) {
  for (; b->scan <= b->total; b->scan++) {
    lfb_future *fu = list_at(L, b->scan);
    if (fu && !lf_future_done(fu->f)) break;
  }
  for (int i = b->scan; i <= b->total && d->n <= MAXSET; i++) {
    lfb_future *fu = list_at(L, i);
    if (fu) dset_add(d, fu->f);
  }
}

/* Blocks for the next completion; on a timeout or a deadlock the iteration
 * is over and keeps none of the futures, and this raises. */
static void ac_block(lua_State *L, lfb_ctx *ctx, wbox *b) {
  dset d = {.n = 0, .all = 0};
  if (checkable(b)) ac_dset(L, b, &d);
  char why[400];
  double t0 = lfb_tracing ? lfb_trace_now(ctx) : -1;
  int rc = block(L, ctx, b, &d, why, sizeof why);
  unblock(L, ctx, b);
  if (t0 >= 0) lfb_trace_wait(L, ctx, "as_completed", t0);
  if (rc == LF_EINTR) lfb_raise_interrupt(L, ctx); /* the iteration goes on */
  if (rc != LF_ETIMEDOUT && rc != LF_EDEADLK) return;
  int left = b->left;
  wbox_release(b);
  lua_pushnil(L);
  lua_replace(L, lua_upvalueindex(2));
  lua_pushnil(L);
  lua_replace(L, lua_upvalueindex(3));
  if (rc == LF_EDEADLK) lfb_raise(L, "DeadlockError", "%s", why);
  lfb_raise(L, "TimeoutError", "%d (of %d) futures unfinished", left,
            b->total);
}

/* Upvalues of the iterator: 1 the box, 2 runtime future -> its index in
 * 3, the list of objects, where one handed back becomes false (the
 * iterator keeps no future it has yielded). The box counts those not
 * handed back yet, so a call never walks what is left. */
static int ac_next(lua_State *L) {
  wbox *b = lua_touserdata(L, lua_upvalueindex(1));
  if (b->w == NULL) return ac_end(L);
  lfb_ctx *ctx = lfb_ctx_push(L);
  lua_pop(L, 1);
  lfb_check_interrupt(L, ctx);
  lf_future *f = lf_waiter_pop(b->w);
  if (f == NULL) {
    if (b->left == 0) {
      wbox_release(b);
      return ac_end(L);
    }
    ac_block(L, ctx, b);
    f = lf_waiter_pop(b->w);
    if (f == NULL) return luaL_error(L, "as_completed: woke with nothing");
  }
  /* Hand back the caller's object, and forget it. */
  b->left--;
  lua_rawgetp(L, lua_upvalueindex(2), f);
  lua_Integer i = lua_tointeger(L, -1);
  lua_pushnil(L);
  lua_rawsetp(L, lua_upvalueindex(2), f);
  lf_future_unref(f);
  lua_rawgeti(L, lua_upvalueindex(3), i);
  lua_pushboolean(L, 0);
  lua_rawseti(L, lua_upvalueindex(3), i);
  return 1;
}

long lfb_as_completed_track(lua_State *L, int idx, lfb_track_fn fn, void *ud,
                            long *done) {
  if (lua_tocfunction(L, idx) != ac_next || !lua_getupvalue(L, idx, 1))
    return -1;
  wbox *b = lua_touserdata(L, -1);
  lua_pop(L, 1);
  long left = 0;
  if (b->w != NULL && lua_getupvalue(L, idx, 2)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      fn(ud, (lf_future *)lua_touserdata(L, -2), 1);
      left++;
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  *done = b->total - left;
  return b->total;
}

/* futures.as_completed(fs, [timeout]) */
static int m_as_completed(lua_State *L) {
  double timeout = lfb_opt_timeout(L, 2, "as_completed");
  lua_settop(L, 1);
  lfb_ctx *ctx = lfb_ctx_of(L);
  int n = collect(L, ctx, 1, "as_completed"); /* fs list */
  lfb_poll(L, ctx);
  wbox *b = wbox_new(L); /* fs list box */
  b->deadline = timeout >= 0 ? lf_now() + timeout : -1;
  b->total = b->left = n;
  b->scan = 1;
  lua_createtable(L, 0, n); /* fs list box map */
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, i);
    lf_future *f = ((lfb_future *)lua_touserdata(L, -1))->f;
    lua_pop(L, 1);
    lua_pushinteger(L, i);
    lua_rawsetp(L, 4, f);
    if (lf_waiter_watch(b->w, f) != 0) return luaL_error(L, "not enough memory");
  }
  lua_pushvalue(L, 3);
  lua_pushvalue(L, 4);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, ac_next, 3);
  lua_pushnil(L);
  lua_pushnil(L);
  lua_pushvalue(L, 3); /* to-be-closed: breaking out frees the waiter */
  return 4;
}

static const luaL_Reg funcs[] = {
    {"wait", m_wait},
    {"as_completed", m_as_completed},
    {NULL, NULL},
};

void lfb_open_wait(lua_State *L) {
  lfb_setfuncs(L, funcs);
  for (int i = 0; modes[i]; i++) {
    lua_pushstring(L, modes[i]);
    lua_setfield(L, -2, modes[i]);
  }
}
