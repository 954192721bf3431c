/*
 * embed.c -- the C API a host calls on its own lua_State (poll, pending,
 * notify_fd, shutdown_all, interrupt), and the interruptible waits behind
 * it and behind futures.sleep and ex:shutdown.
 *
 * Interrupts. luafutures_interrupt may run in a signal handler, where no
 * Lua function and no lock may be used. Each state that loads the module
 * takes a slot, {main thread, flag}, from a list that only grows (slots
 * are reused, never freed), so a handler walks the list with atomic loads
 * and sets the flag of the slot whose state it was given. Every wait of
 * the state watches that flag (lf_waiter_set_stop): a runtime waiter
 * looks at it at least every 10 ms, and the entry points look at it
 * first; whoever sees it consumes it and raises "interrupted!".
 *
 * Waiting for a pool to stop, which the runtime does with pthread_join,
 * is done by a short-lived detached thread holding a reference to the
 * pool; the caller waits for that thread's future, which an interrupt or
 * a timeout cuts short while the pool goes on stopping. The registry's
 * EXECS table (weak keys) lists the executor objects the state created,
 * for luafutures_shutdown_all. No lock of this file's own: the slot list
 * is lock-free, the rest belongs to one state's thread.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "lfb.h"

/* ---- interrupt slots ------------------------------------------------------ */

struct lfb_slot {
  _Atomic(lua_State *) L; /* the state's main thread; NULL: free */
  _Atomic int flag;
  lfb_slot *next; /* written once, before the slot is published */
};

static _Atomic(lfb_slot *) slots;

lua_Hook lfb_interrupt_hook;
void (*lfb_interrupt_rearm)(void);

lfb_slot *lfb_slot_take(lua_State *L) {
  for (lfb_slot *s = atomic_load(&slots); s; s = s->next) {
    lua_State *none = NULL;
    if (atomic_compare_exchange_strong(&s->L, &none, L)) {
      atomic_store(&s->flag, 0);
      return s;
    }
  }
  lfb_slot *s = malloc(sizeof *s);
  if (s == NULL) return NULL;
  atomic_init(&s->L, L);
  atomic_init(&s->flag, 0);
  s->next = atomic_load(&slots);
  while (!atomic_compare_exchange_weak(&slots, &s->next, s)) {
  }
  return s;
}

void lfb_slot_give(lfb_slot *s) {
  if (s == NULL) return;
  atomic_store(&s->flag, 0);
  atomic_store(&s->L, NULL);
}

/* Only atomics: async-signal-safe. */
void luafutures_interrupt(lua_State *L) {
  if (L == NULL) return;
  for (lfb_slot *s = atomic_load(&slots); s; s = s->next)
    if (atomic_load(&s->L) == L) atomic_store(&s->flag, 1);
}

const _Atomic int *lfb_stop_flag(lfb_ctx *ctx) {
  return ctx->slot ? &ctx->slot->flag : NULL;
}

/* Removes the host's interrupt hook from the thread T, if it is set. */
static void drop_hook(lua_State *T) {
  if (lfb_interrupt_hook && lua_gethook(T) == lfb_interrupt_hook)
    lua_sethook(T, NULL, 0, 0);
}

void lfb_interrupt_clear(lua_State *L) {
  lfb_ctx *ctx = lfb_ctx_find(L);
  if (ctx && ctx->slot) atomic_store(&ctx->slot->flag, 0);
}

int lfb_raise_interrupt(lua_State *L, lfb_ctx *ctx) {
  if (ctx->slot) atomic_store(&ctx->slot->flag, 0);
  drop_hook(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  drop_hook(lua_tothread(L, -1));
  lua_pop(L, 1);
  if (lfb_interrupt_rearm) lfb_interrupt_rearm();
  lua_pushliteral(L, "interrupted!");
  return lua_error(L);
}

void lfb_check_interrupt(lua_State *L, lfb_ctx *ctx) {
  if (ctx->slot && atomic_load(&ctx->slot->flag))
    lfb_raise_interrupt(L, ctx);
}

/* ---- interruptible waits -------------------------------------------------- */

int lfb_pause(lua_State *L, lfb_ctx *ctx, double seconds) {
  lf_waiter *w = lf_waiter_new();
  if (w == NULL) {
    lf_sleep(seconds); /* no memory for a waiter: at least sleep */
    return 0;
  }
  lf_waiter_set_stop(w, lfb_stop_flag(ctx));
  lf_waiter *prev = ctx->inbox ? lf_inbox_set_waiter(ctx->inbox, w) : NULL;
  double deadline = lf_now() + seconds;
  int rc = 0;
  for (;;) {
    double left = deadline - lf_now();
    if (left <= 0) break;
    rc = lf_waiter_wait(w, left, NULL, NULL, 0);
    if (rc != LF_EKICKED) break;
    lfb_poll(L, ctx); /* a callback posted meanwhile runs now */
    rc = 0;
  }
  if (ctx->inbox) lf_inbox_set_waiter(ctx->inbox, prev);
  lf_waiter_free(w);
  return rc == LF_EINTR ? rc : 0;
}

typedef struct joiner {
  const lfb_exec_ops *ops;
  void *pool; /* a reference of the joiner's own */
  lf_future *done; /* finished once the pool has stopped */
} joiner;

static void *join_main(void *arg) {
  joiner *j = arg;
  lf_future *done = j->done;
  j->ops->shutdown(j->pool, 1, 0);
  j->ops->unref(j->pool);
  free(j);
  lf_future_finish(done, NULL, 0); /* a done signal: no result */
  lf_future_unref(done);
  return NULL;
}

/* A future that is done once pool has stopped (the caller's reference),
 * or NULL when no thread could do the waiting; *t is that thread, which
 * the caller joins once the future is done (so that nothing of it is left
 * running) or detaches when it stops waiting. */
static lf_future *start_joiner(const lfb_exec_ops *ops, void *pool,
                               pthread_t *t) {
  joiner *j = malloc(sizeof *j);
  lf_future *f = lf_future_new();
  if (j == NULL || f == NULL) {
    lf_future_unref(f);
    free(j);
    return NULL;
  }
  *j = (joiner){ops, pool, f};
  lf_future_ref(f);
  ops->ref(pool);
  if (pthread_create(t, NULL, join_main, j) == 0) return f;
  ops->unref(pool);
  lf_future_unref(f);
  lf_future_unref(f);
  free(j);
  return NULL;
}

int lfb_shutdown_wait(lua_State *L, lfb_ctx *ctx, const lfb_exec_ops *ops,
                      void *pool, int cancel, double timeout) {
  ops->shutdown(pool, 0, cancel); /* no new work; the queue cancelled */
  /* A pool's own worker gets the runtime's LF_ESELF; without a reference
   * operation nobody else may wait on the pool's behalf. */
  if (ops->ref == NULL || (void *)lf_current_pool() == pool)
    return ops->shutdown(pool, 1, 0);
  char why[200];
  /* A pool that says when it has stopped is waited for as a future, then
   * joined at once: no thread of our own to start (W7). */
  lf_future *f = ops->stopped ? ops->stopped(pool) : NULL;
  if (f != NULL) {
    int rc = lfb_await(L, ctx, f, timeout, why, sizeof why);
    if (rc == LF_EDEADLK) rc = 0; /* an unbound future: never provable */
    int stopped = lf_future_done(f);
    lf_future_unref(f);
    if (rc == LF_ENOMEM || stopped)
      return ops->shutdown(pool, 1, 0);
    /* Given up (a timeout, an interrupt): a joiner holds the pool until it
     * stops, so that dropping it later never waits for a runaway task. */
    pthread_t t;
    f = start_joiner(ops, pool, &t);
    if (f != NULL) {
      pthread_detach(t);
      lf_future_unref(f);
    }
    return rc;
  }
  pthread_t t;
  f = start_joiner(ops, pool, &t);
  if (f == NULL) return ops->shutdown(pool, 1, 0);
  int rc = lfb_await(L, ctx, f, timeout, why, sizeof why);
  if (rc == LF_EDEADLK) rc = 0; /* an unbound future: never provable */
  if (rc == LF_ENOMEM) { /* no waiter: wait for the joiner itself */
    pthread_join(t, NULL);
    lf_future_unref(f);
    return 0;
  }
  if (rc == 0 && lf_future_done(f))
    pthread_join(t, NULL);
  else
    pthread_detach(t); /* it goes on stopping the pool, on its own */
  lf_future_unref(f);
  return rc;
}

/* ---- executors of a state ------------------------------------------------- */

static const char EXECS[] = "luafutures.execs";

void lfb_exec_remember(lua_State *L) {
  lfb_push_weak(L, EXECS, "k"); /* ex execs */
  lua_pushvalue(L, -2);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

typedef struct shargs {
  lfb_ctx *ctx;
  int cancel;
  double timeout;
  int rc;
} shargs;

/* Stops every executor, then waits for each within what is left of the
 * time. One that is still running when time runs out is let go: its
 * object's __gc will not wait for it (so lua_close cannot hang), and it
 * finishes, or not, on its own threads. */
static int shutdown_all(lua_State *L) {
  shargs *a = lua_touserdata(L, 1);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, EXECS) != LUA_TTABLE) return 0;
  /* A list first: waiting runs callbacks, which may make executors, and a
   * table must not grow while lua_next walks it. */
  lua_newtable(L); /* execs list */
  lua_Integer n = 0;
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, 3, ++n);
  }
  double deadline = a->timeout >= 0 ? lf_now() + a->timeout : -1;
  for (int pass = 0; pass < 2; pass++) {
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, 3, i);
      lfb_executor *ex = lua_touserdata(L, -1);
      lua_pop(L, 1); /* the list keeps it */
      if (ex->pool == NULL || !ex->owner) continue;
      if (pass == 0) {
        ex->ops->shutdown(ex->pool, 0, a->cancel);
        continue;
      }
      double left = -1;
      if (deadline >= 0 && (left = deadline - lf_now()) < 0) left = 0;
      int rc = lfb_shutdown_wait(L, a->ctx, ex->ops, ex->pool, 0,
                                 a->rc ? 0 : left);
      if (rc == LF_ETIMEDOUT || rc == LF_EINTR) {
        a->rc = -2;
        ex->owner = 0;
      }
    }
  }
  return 0;
}

int luafutures_shutdown_all(lua_State *L, int cancel_futures, double timeout) {
  lfb_ctx *ctx = L ? lfb_ctx_find(L) : NULL;
  if (ctx == NULL) return 0; /* it never loaded the module: no executor */
  shargs a = {ctx, cancel_futures, timeout, 0};
  lua_pushcfunction(L, shutdown_all);
  lua_pushlightuserdata(L, &a);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    lfb_report("luafutures_shutdown_all: %s", lfb_tostring_safe(L, -1));
    lua_pop(L, 2);
    return -1;
  }
  return a.rc;
}

/* ---- polling from C ------------------------------------------------------- */

static int poll_protected(lua_State *L) {
  lfb_ctx *ctx = lua_touserdata(L, 1);
  lua_pushinteger(L, lfb_poll(L, ctx));
  return 1;
}

int luafutures_poll(lua_State *L) {
  lfb_ctx *ctx = L ? lfb_ctx_find(L) : NULL;
  if (ctx == NULL || ctx->inbox == NULL || !lf_inbox_pending(ctx->inbox))
    return 0; /* the common case, and the one the bench measures */
  lua_pushcfunction(L, poll_protected);
  lua_pushlightuserdata(L, ctx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    lfb_report("luafutures_poll: %s", lfb_tostring_safe(L, -1));
    lua_pop(L, 2);
    return -1;
  }
  int n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return n;
}

int luafutures_pending(lua_State *L) {
  lfb_ctx *ctx = L ? lfb_ctx_find(L) : NULL;
  return ctx && ctx->inbox ? lf_inbox_pending(ctx->inbox) : 0;
}

int luafutures_notify_fd(lua_State *L) {
  lfb_ctx *ctx = L ? lfb_ctx_find(L) : NULL;
  if (ctx == NULL || ctx->inbox == NULL) return -1;
  int fd = lf_inbox_notify_fd(ctx->inbox);
  return fd < 0 ? -1 : fd;
}
