/*
 * queue.c -- the Queue class: futures.Queue([maxsize]), a FIFO shared by
 * the main state and the thread workers it reaches.
 *
 * A Queue object is a box around a runtime lf_queue (runtime/queue.c),
 * which holds encoded payloads: put encodes one value with the codec, get
 * decodes it in the getting state, so values are copied, never shared, and
 * nil is a value like any other. The object is a handle: the codec sends
 * the queue's address and a reference, and the receiving state finds or
 * makes its own proxy (the weak proxies table, shared with futures), so a
 * queue that travels and comes back is == to the original.
 *
 * Blocking calls sleep on a waiter that the state's inbox kicks when a
 * done callback is posted: the call then runs the callbacks, as result()
 * does, and goes back to waiting with what is left of its timeout. Nothing
 * here holds a lock; the runtime's are taken and released inside each
 * call, and every payload is freed before anything is raised.
 */
#include <stdatomic.h>
#include <string.h>

#include "lfb.h"

typedef struct lfb_queue {
  lf_queue *q;
} lfb_queue;

lf_queue *lfb_queue_test(lua_State *L, int idx) {
  lfb_queue *b = luaL_testudata(L, idx, LFB_QUEUE);
  return b ? b->q : NULL;
}

/* The class's metatable is also kept under this address: looking it up by
 * pointer, not by name, spares every method a string lookup (the hot path
 * of a busy queue). */
static const char QMETA[] = "luafutures.Queue";

static lf_queue *check(lua_State *L) {
  lfb_queue *b = lua_touserdata(L, 1);
  if (b && lua_getmetatable(L, 1)) { /* mt */
    lua_rawgetp(L, LUA_REGISTRYINDEX, QMETA);
    int ok = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (ok && b->q) return b->q;
  }
  b = luaL_checkudata(L, 1, LFB_QUEUE); /* raises as lauxlib does */
  luaL_argerror(L, 1, "Queue is collected");
  return NULL;
}

/* The new box is made empty first, so that failing to make it leaks no
 * reference; the caller then fills it. */
static lfb_queue *newbox(lua_State *L) {
  lfb_queue *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->q = NULL;
  luaL_setmetatable(L, LFB_QUEUE);
  return b;
}

void lfb_queue_push(lua_State *L, lf_queue *q) {
  LFB_STACK_BEGIN(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, lfb_PROXIES); /* proxies */
  if (lua_rawgetp(L, -1, q) == LUA_TUSERDATA) {   /* proxies ud */
    lua_remove(L, -2);
    LFB_STACK_CHECK(L, 1);
    return;
  }
  lua_pop(L, 1);
  lfb_queue *b = newbox(L); /* proxies ud */
  lf_queue_ref(q);
  b->q = q;
  lua_pushvalue(L, -1);
  lua_rawsetp(L, -3, q);
  lua_remove(L, -2);
  LFB_STACK_CHECK(L, 1);
}

/* ---- blocking ------------------------------------------------------------- */

/* One runtime call that may block: put, get or join, with its arguments. */
typedef struct qcall {
  int (*op)(struct qcall *c, double timeout, lf_waiter *w);
  lf_queue *q;
  lf_payload *item; /* put: ours until taken; get: what came out */
  int mine; /* get: references this state holds (deadlock check), set
             * by run_call once the get must wait */
} qcall;

static int op_put(qcall *c, double timeout, lf_waiter *w) {
  return lf_queue_put(c->q, c->item, timeout, w);
}

static int op_get(qcall *c, double timeout, lf_waiter *w) {
  return lf_queue_get(c->q, &c->item, timeout, w, c->mine);
}

static int op_join(qcall *c, double timeout, lf_waiter *w) {
  return lf_queue_join(c->q, timeout, w);
}

static int gave_up(int rc) {
  return rc == LF_EEMPTY || rc == LF_EFULL || rc == LF_ETIMEDOUT;
}

/* How many references to q this state holds that no other state could
 * use: its proxy, and those of the task it runs (decoded already, or
 * decoded later by this same state). 0 in the main state, where an
 * interrupt, a callback or the host can still end the wait. */
static int held_here(lua_State *L, lf_queue *q) {
  if (strcmp(lfb_ctx_of(L)->name, "MainThread") == 0) return 0;
  int mine = 1;
  const lf_payload *t = lfb_running_task;
  if (t) {
    lf_obj **objs = lf_payload_objs(t);
    for (uint32_t i = 0; i < t->nobjs; i++)
      mine += objs[i] == lf_queue_obj(q);
  }
  return mine;
}

static int poll_k(lua_State *L) {
  lfb_poll(L, lua_touserdata(L, 1));
  return 0;
}

/* Runs the posted callbacks while a call holds a waiter the inbox knows
 * and maybe a payload: protected, so that an error raised meanwhile (an
 * interrupt) frees both first and then goes on up. */
static void poll_holding(lua_State *L, lfb_ctx *ctx, qcall *c, lf_waiter *w,
                         lf_waiter *prev) {
  if (ctx->inbox == NULL || !lf_inbox_pending(ctx->inbox)) return;
  lua_pushcfunction(L, poll_k);
  lua_pushlightuserdata(L, ctx);
  if (lua_pcall(L, 1, 0, 0) == LUA_OK) return;
  if (w) {
    lf_inbox_set_waiter(ctx->inbox, prev);
    lf_waiter_free(w);
  }
  lf_payload_free(c->item); /* a put's item, or a get's that came out */
  c->item = NULL;
  lua_error(L);
}

/* Runs c, at once if it can, else blocking up to `timeout` (< 0: no limit)
 * with this state's callbacks running whenever one is posted. */
static int run_call(lua_State *L, qcall *c, double timeout) {
  lfb_ctx *ctx = lfb_ctx_of(L);
  poll_holding(L, ctx, c, NULL, NULL);
  int rc = c->op(c, 0, NULL);
  if (timeout == 0 || !gave_up(rc)) return rc;
  if (c->op == op_get && timeout < 0) c->mine = held_here(L, c->q);
  lf_waiter *w = lf_waiter_new();
  if (w == NULL) return LF_ENOMEM;
  const _Atomic int *stop = lfb_stop_flag(ctx); /* an interrupt ends it */
  lf_waiter_set_stop(w, stop);
  lf_waiter *prev = ctx->inbox ? lf_inbox_set_waiter(ctx->inbox, w) : NULL;
  double deadline = lf_now() + timeout;
  for (;;) {
    double left = timeout < 0 ? -1 : deadline - lf_now();
    if (timeout >= 0 && left < 0) left = 0;
    rc = c->op(c, left, w);
    if (rc != LF_EKICKED) break;
    if (stop && atomic_load(stop)) {
      rc = LF_EINTR;
      break;
    }
    poll_holding(L, ctx, c, w, prev);
  }
  if (ctx->inbox) lf_inbox_set_waiter(ctx->inbox, prev);
  lf_waiter_free(w);
  if (rc == LF_EINTR) {
    lf_payload_free(c->item); /* a put's item is not the queue's */
    c->item = NULL;
    return lfb_raise_interrupt(L, ctx);
  }
  if (rc == 0 && c->op == op_put) c->item = NULL; /* the queue's now */
  poll_holding(L, ctx, c, NULL, NULL);
  return rc;
}

/* Raises for a failed call (its payloads already freed). */
static int raise_rc(lua_State *L, int rc) {
  switch (rc) {
    case LF_EEMPTY: return lfb_raise(L, "QueueEmpty", "queue is empty");
    case LF_EFULL: return lfb_raise(L, "QueueFull", "queue is full");
    case LF_EQSHUTDOWN:
      return lfb_raise(L, "QueueShutDown", "queue is shut down");
    case LF_EDEADLK:
      return lfb_raise(L, "DeadlockError",
                       "get() without a timeout on a queue that no other "
                       "state holds can never return");
    case LF_ENOMEM: return luaL_error(L, "not enough memory");
  }
  return luaL_error(L, "queue: %s", lf_strerror(rc));
}

/* ---- put and get ---------------------------------------------------------- */

static int put_with(lua_State *L, double timeout) {
  lf_queue *q = check(L);
  luaL_checkany(L, 2);
  lfb_enc e;
  lfb_enc_init(&e, L);
  e.argno = 1; /* as lauxlib counts for a method: self is not counted */
  if (lfb_enc_value(&e, L, 2) != 0) {
    lfb_enc_free(&e, L);
    lfb_enc_pusherror(&e, L);
    return lua_error(L);
  }
  qcall c = {op_put, q, lfb_enc_finish(&e, L), 0};
  if (c.item == NULL) return luaL_error(L, "not enough memory");
  int rc = run_call(L, &c, timeout);
  if (rc == 0) return 0;
  lf_payload_free(c.item); /* refused: still ours */
  return raise_rc(L, rc);
}

static int q_put(lua_State *L) {
  return put_with(L, lfb_opt_timeout(L, 3, "put"));
}

static int q_put_nowait(lua_State *L) { return put_with(L, 0); }

/* Pushes the item's value and frees it, even when decoding raises (a
 * metatable's module that this state cannot load, or no memory for a
 * string: so every payload is decoded protected). */
static int push_item(lua_State *L, lf_payload *p) {
  lfb_dec d;
  lfb_dec_init(&d, p);
  lua_pushnil(L); /* refs */
  d.refs = lua_gettop(L);
  int rc = lfb_dec_protected(&d, L, 1);
  lf_payload_free(p);
  if (rc != 0) return lua_error(L);
  lua_remove(L, -2); /* value */
  return 1;
}

static int get_with(lua_State *L, double timeout, int *rcp) {
  lf_queue *q = check(L);
  qcall c = {op_get, q, NULL, 0};
  int rc = run_call(L, &c, timeout);
  if (rc == 0) return push_item(L, c.item);
  if (rcp) {
    *rcp = rc;
    return 0;
  }
  return raise_rc(L, rc);
}

static int q_get(lua_State *L) {
  return get_with(L, lfb_opt_timeout(L, 2, "get"), NULL);
}

static int q_get_nowait(lua_State *L) { return get_with(L, 0, NULL); }

/* The iterator of q:iter(): the next item, blocking; nothing (which ends a
 * for loop) once the queue is shut down and empty. */
static int iter_next(lua_State *L) {
  lua_settop(L, 0);
  lua_pushvalue(L, lua_upvalueindex(2));
  int rc = 0;
  int n = get_with(L, -1, &rc);
  if (n == 0 && rc != LF_EQSHUTDOWN) return raise_rc(L, rc);
  return n;
}

static int q_iter(lua_State *L) {
  check(L);
  lfb_ctx_push(L);
  lua_pushvalue(L, 1);
  lua_pushcclosure(L, iter_next, 2);
  return 1;
}

/* ---- the rest ------------------------------------------------------------- */

static int q_qsize(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lf_queue_qsize(check(L)));
  return 1;
}

static int q_empty(lua_State *L) {
  lua_pushboolean(L, lf_queue_qsize(check(L)) == 0);
  return 1;
}

static int q_full(lua_State *L) {
  lua_pushboolean(L, lf_queue_full(check(L)));
  return 1;
}

static int q_task_done(lua_State *L) {
  if (lf_queue_task_done(check(L)) != 0)
    return lfb_raise(L, "InvalidStateError",
                     "task_done() called too many times");
  return 0;
}

static int q_join(lua_State *L) {
  qcall c = {op_join, check(L), NULL, 0};
  int rc = run_call(L, &c, -1);
  return rc == 0 ? 0 : raise_rc(L, rc);
}

static int q_shutdown(lua_State *L) {
  lf_queue *q = check(L);
  lf_queue_shutdown(q, lua_toboolean(L, 2));
  return 0;
}

static int q_tostring(lua_State *L) {
  lfb_queue *b = luaL_checkudata(L, 1, LFB_QUEUE);
  if (b->q == NULL) {
    lua_pushliteral(L, "<Queue (collected)>");
    return 1;
  }
  lua_pushfstring(L, "<Queue at %p qsize=%d maxsize=%d waiting=%d%s>",
                  (void *)b->q, (int)lf_queue_qsize(b->q),
                  (int)lf_queue_maxsize(b->q), (int)lf_queue_nwaiting(b->q),
                  lf_queue_is_shutdown(b->q) ? " shutdown" : "");
  return 1;
}

static int q_gc(lua_State *L) {
  lfb_queue *b = luaL_checkudata(L, 1, LFB_QUEUE);
  lf_queue_unref(b->q);
  b->q = NULL;
  return 0;
}

/* futures.Queue([maxsize]): 0 or absent is unbounded. */
static int m_queue(lua_State *L) {
  lua_Integer max = 0;
  if (!lua_isnoneornil(L, 1)) lfb_checkint(L, 1, &max, "integer");
  luaL_argcheck(L, max >= 0, 1, "'maxsize' must not be negative");
  lfb_queue *b = newbox(L);
  b->q = lf_queue_new((size_t)max);
  if (b->q == NULL) return luaL_error(L, "not enough memory");
  lfb_proxy_remember(L, b->q, -1);
  return 1;
}

static const luaL_Reg meta[] = {
    {"__tostring", q_tostring},
    {"__gc", q_gc},
    {NULL, NULL},
};

static const luaL_Reg methods[] = {
    {"put", q_put},
    {"get", q_get},
    {"put_nowait", q_put_nowait},
    {"get_nowait", q_get_nowait},
    {"qsize", q_qsize},
    {"empty", q_empty},
    {"full", q_full},
    {"task_done", q_task_done},
    {"join", q_join},
    {"shutdown", q_shutdown},
    {"iter", q_iter},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"Queue", m_queue},
    {NULL, NULL},
};

void lfb_open_queue(lua_State *L) {
  lfb_newclass(L, LFB_QUEUE, meta, methods);
  luaL_getmetatable(L, LFB_QUEUE);
  lua_rawsetp(L, LUA_REGISTRYINDEX, QMETA);
  lfb_setfuncs(L, funcs);
}
