/*
 * map.c -- ex:map(fn, iter1, iter2, ..., [opts]) and its iterator.
 *
 * All inputs are read at once and cut into chunks of `chunksize` calls; a
 * chunk is one task (one queue entry, one payload, one future), whose
 * result holds one outcome per call. The iterator walks the chunks in
 * order, decoding one outcome per step, so results come in input order and
 * a task's error is raised at its own turn. Chunk futures are dropped as
 * soon as they are consumed; the executor object is not kept alive. Thread
 * and process pools share this code: the executor class passes its kind's
 * operations (lfb_map_on).
 */
#include <stdlib.h>
#include <string.h>

#include "lfb.h"

#define LFB_MAPITER "MapIterator"

typedef struct mapiter {
  const void *tag;  /* &ITER_MT once its metatable is set */
  lf_future **chunks;
  size_t nchunks;
  size_t n;         /* calls */
  size_t chunksize;
  size_t pos;       /* calls consumed */
  size_t cursor;    /* byte offset of the next outcome in the chunk */
  uint32_t noutcomes; /* outcomes in the current chunk */
  double deadline;  /* < 0: none */
  double start;
  int finished;
  int stepped;      /* iteration has begun */
} mapiter;

static void release(mapiter *it, int cancel) {
  for (size_t c = 0; c < it->nchunks; c++) {
    if (it->chunks[c] == NULL) continue;
    if (cancel) lf_future_cancel(it->chunks[c]);
    lf_future_unref(it->chunks[c]);
    it->chunks[c] = NULL;
  }
  free(it->chunks);
  it->chunks = NULL;
  it->nchunks = 0;
  it->finished = 1;
}

static const char ITER_MT = 0; /* its address keys the metatable */

/* The iterator at idx of one of its methods (context at upvalue 1): per
 * item, so the metatable is compared with the context's pointer. */
static mapiter *check_iter(lua_State *L, int idx) {
  /* A full userdata of our size whose first word is our tag: only this
   * file writes that address (Lua code cannot fill a userdata), so the
   * per-item call skips the metatable lookup; anything else is checked
   * the full way, which raises in lauxlib's words. */
  if (lua_type(L, idx) == LUA_TUSERDATA && lua_rawlen(L, idx) == sizeof(mapiter)) {
    mapiter *it = lua_touserdata(L, idx);
    if (it->tag == &ITER_MT) return it;
  }
  return luaL_checkudata(L, idx, LFB_MAPITER);
}

/* Pushes `i, values...` of the next call, or raises its error. */
static int step(lua_State *L, mapiter *it) {
  it->stepped = 1;
  if (it->finished || it->pos >= it->n) {
    release(it, 0);
    return 0;
  }
  size_t c = it->pos / it->chunksize, k = it->pos % it->chunksize;
  lf_future *f = it->chunks[c];
  lfb_ctx *ctx = lfb_ctx_of(L);
  if (!lf_future_done(f)) {
    double timeout = -1;
    if (it->deadline >= 0) {
      timeout = it->deadline - lf_now();
      if (timeout < 0) timeout = 0;
    }
    char why[400];
    double t0 = lfb_tracing ? lfb_trace_now(ctx) : -1;
    int rc = lfb_await(L, ctx, f, timeout, why, sizeof why);
    if (t0 >= 0) lfb_trace_wait(L, ctx, "map", t0);
    if (rc == LF_EINTR) { /* ^C: the calls not started yet are not wanted */
      release(it, 1);
      return lfb_raise_interrupt(L, ctx);
    }
    if (rc == LF_ETIMEDOUT) { /* the map is over: cancel what has not started */
      release(it, 1);
      return lfb_raise(L, "TimeoutError", "map did not finish within %f seconds",
                       it->deadline - it->start);
    }
    if (rc == LF_EDEADLK) return lfb_raise(L, "DeadlockError", "%s", why);
    if (rc == LF_ENOMEM) return luaL_error(L, "not enough memory");
  }
  it->pos++;
  if (lf_future_state(f) == LF_CANCELLED) {
    if (k + 1 == it->chunksize || it->pos == it->n) {
      lf_future_unref(f);
      it->chunks[c] = NULL;
    }
    return lfb_raise(L, "CancelledError", "map call %d was cancelled",
                     (int)it->pos);
  }
  /* A chunk that failed as a whole has one outcome standing for all its
   * calls: each reads it from the start. */
  const lf_payload *p = lf_future_result(f, NULL);
  lfb_dec d;
  uint32_t count = lfb_outcome_open(&d, p);
  if (k == 0) it->noutcomes = count;
  if (k != 0 && it->noutcomes != 1) d.pos = it->cursor;
  /* The next call's outcome starts where this one ends, found before
   * decoding: a decode that raises (a module this state cannot load, no
   * memory) must not leave the cursor on this outcome for the next step. */
  int last = k + 1 == it->chunksize || it->pos == it->n;
  if (it->noutcomes != 1) { /* the common call: one scalar, one step */
    lua_pushinteger(L, (lua_Integer)it->pos);
    if (lfb_outcome_next_scalar(L, &d)) {
      it->cursor = d.pos;
      if (last) {
        lf_future_unref(f);
        it->chunks[c] = NULL;
      }
      return 2;
    }
    lua_pop(L, 1);
  }
  if (!last && it->noutcomes != 1) {
    lfb_dec next = d;
    lfb_outcome_skip(&next);
    it->cursor = next.pos;
  }
  int top = lua_gettop(L);
  lua_pushnil(L); /* refs */
  d.refs = top + 1;
  lua_pushinteger(L, (lua_Integer)it->pos);
  int ok;
  int n = 1 + lfb_outcome_push(L, &d, 1, &ok); /* + traceback, for lfb_reraise */
  if (last) { /* consumed: let it go */
    lf_future_unref(f);
    it->chunks[c] = NULL;
  }
  if (!ok) return lfb_reraise(L);
  lua_remove(L, top + 1);
  return n;
}

static int it_call(lua_State *L) {
  mapiter *it = check_iter(L, 1);
  lua_settop(L, 1);
  int n = step(L, it);
  if (n == 0) lua_pushnil(L); /* finished or closed: one nil */
  return n ? n : 1;
}

static int it_collect(lua_State *L) {
  mapiter *it = check_iter(L, 1);
  lua_settop(L, 1);
  lua_createtable(L, (int)(it->n - it->pos), 1);
  lua_Integer count = 0;
  for (;;) {
    int n = step(L, it);
    if (n == 0) break;
    lua_settop(L, 4); /* it list i first */
    lua_rawseti(L, 2, ++count);
    lua_settop(L, 2);
  }
  lua_pushinteger(L, count);
  lua_setfield(L, 2, "n");
  return 1;
}

static int it_close(lua_State *L) {
  release(check_iter(L, 1), 1);
  return 0;
}

/* As Python's map: calls run even if their iterator is dropped unread;
 * dropping one that was being read cancels what has not started. */
static int it_gc(lua_State *L) {
  mapiter *it = check_iter(L, 1);
  release(it, it->stepped);
  return 0;
}

static int it_tostring(lua_State *L) {
  mapiter *it = check_iter(L, 1);
  lua_pushfstring(L, "<MapIterator at %p %d/%d>", (void *)it, (int)it->pos,
                  (int)it->n);
  return 1;
}

/* Reads iterable `idx` into a table (pushed): a sequence table as it is, an
 * iterator function called until it returns nil. */
static void read_iterable(lua_State *L, int idx) {
  if (lua_istable(L, idx)) {
    lua_pushvalue(L, idx);
    return;
  }
  if (!lua_isfunction(L, idx))
    luaL_typeerror(L, idx, "table or function");
  lua_newtable(L);
  for (lua_Integer i = 1;; i++) {
    lua_pushvalue(L, idx);
    lua_call(L, 0, 1);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      break;
    }
    lua_rawseti(L, -2, i);
  }
}

typedef struct mapopts {
  int last;      /* the last iterable's argument */
  int progress;  /* index of opts.progress (true or a table), or 0 */
  double timeout; /* < 0: none */
  lua_Integer chunksize;
} mapopts;

/* A final table with a string key and no [1] is the options table, so a
 * misspelt option ({chunk_size = 2}) or a table with no sequence part
 * ({a = 1}) is refused by name instead of read as an empty iterable. Any
 * other table is an iterable: a trailing {}, and table.pack()'s {n = 0}
 * (its `n` is a length, not an option). */
static int is_options(lua_State *L, int idx) {
  if (lua_rawgeti(L, idx, 1) != LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  lua_pop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "n")) {
      lua_pop(L, 1);
      return 1;
    }
  }
  return 0;
}

static void read_options(lua_State *L, mapopts *o) {
  int last = o->last = lua_gettop(L);
  o->timeout = -1;
  o->chunksize = 1;
  o->progress = 0;
  if (last < 3 || !lua_istable(L, last) || !is_options(L, last)) return;
  static const char *const known[] = {"timeout", "chunksize", "progress", NULL};
  lfb_check_options(L, last, known);
  if (lua_getfield(L, last, "timeout") != LUA_TNIL) {
    luaL_argcheck(L, lua_isnumber(L, -1), last, "'timeout' must be a number");
    o->timeout = (double)lua_tonumber(L, -1);
    luaL_argcheck(L, o->timeout >= 0, last, "timeout must be non-negative");
  }
  if (lua_getfield(L, last, "chunksize") != LUA_TNIL) {
    luaL_argcheck(L, lfb_getint(L, -1, &o->chunksize), last,
                  "'chunksize' must be an integer");
    luaL_argcheck(L, o->chunksize >= 1, last, "'chunksize' must be at least 1");
  }
  lua_pop(L, 2);
  int t = lua_getfield(L, last, "progress");
  luaL_argcheck(L, t == LUA_TNIL || t == LUA_TBOOLEAN || t == LUA_TTABLE, last,
                "'progress' must be a boolean or a table of options");
  if (lua_toboolean(L, -1)) o->progress = last;
  lua_pop(L, 1);
  o->last--;
}

/* Encodes chunk c of the calls (the function at 2, the inputs collected in
 * the niter tables above base) into a new task future; raises after
 * releasing the iterator. */
static lf_future *encode_chunk(lua_State *L, mapiter *it, size_t c, int base,
                               int niter, const lfb_exec_ops *ops) {
  size_t first = c * it->chunksize + 1;
  size_t k = it->n - (first - 1) < it->chunksize ? it->n - (first - 1)
                                                  : it->chunksize;
  lfb_enc e;
  lfb_enc_init(&e, L);
  e.handles_ok = ops->handles_ok;
  e.shared_by_id = ops->shared_by_id;
  lfb_enc_u32(&e, (uint32_t)k);
  e.argno = 1;
  int rc = lfb_enc_value(&e, L, 2);
  for (size_t i = first; i < first + k && rc == 0; i++) {
    lfb_enc_u32(&e, (uint32_t)niter);
    for (int j = 0; j < niter && rc == 0; j++) {
      int t = lua_rawgeti(L, base + 1 + j, (lua_Integer)i);
      e.argno = j + 2;
      rc = t == LUA_TNUMBER ? lfb_enc_number(&e, L, -1)
                            : lfb_enc_value(&e, L, -1);
      lua_pop(L, 1);
    }
  }
  if (rc != 0) {
    lfb_enc_free(&e, L); /* the message survives in e.err */
    lfb_enc_pusherror(&e, L);
    release(it, 1);
    lua_error(L);
  }
  if (lfb_tracing) e.flags |= LFB_TRACED;
  lf_future *f = lfb_enc_finish_task(&e, L);
  if (f == NULL) {
    release(it, 1);
    luaL_error(L, "not enough memory");
  }
  return f;
}

/* map on any pool: the executor at 1 is checked by the caller. */
int lfb_map_on(lua_State *L, const lfb_exec_ops *ops, void *pool) {
  luaL_checktype(L, 2, LUA_TFUNCTION);
  mapopts o;
  read_options(L, &o);
  double start = lf_now();
  int niter = o.last - 2;
  luaL_argcheck(L, niter >= 1, 3, "at least one iterable expected");
  luaL_argcheck(L, lua_checkstack(L, niter + LUA_MINSTACK), 3,
                "too many iterables");
  int base = lua_gettop(L);
  lua_Integer n = -1;
  for (int j = 0; j < niter; j++) {
    read_iterable(L, 3 + j);
    lua_Integer len = (lua_Integer)lua_rawlen(L, -1);
    if (n < 0 || len < n) n = len;
  }
  mapiter *it = lua_newuserdatauv(L, sizeof *it, 0);
  memset(it, 0, sizeof *it);
  it->finished = 1;
  luaL_setmetatable(L, LFB_MAPITER);
  it->tag = &ITER_MT;
  int itidx = lua_gettop(L);
  it->n = (size_t)n;
  it->chunksize = (size_t)o.chunksize;
  it->deadline = o.timeout >= 0 ? start + o.timeout : -1;
  it->start = start;
  size_t nchunks = ((size_t)n + it->chunksize - 1) / it->chunksize;
  it->chunks = calloc(nchunks ? nchunks : 1, sizeof *it->chunks);
  if (it->chunks == NULL) return luaL_error(L, "not enough memory");
  it->nchunks = nchunks;
  it->finished = 0;
  for (size_t c = 0; c < nchunks; c++) {
    double t0 = lfb_tracing ? lfb_trace_now(lfb_ctx_of(L)) : -1;
    lf_future *f = encode_chunk(L, it, c, base, niter, ops);
    int rc = ops->submit(pool, f);
    if (rc != 0) {
      lf_future_unref(f);
      release(it, 1);
      return lfb_exec_refused(L, ops, pool, rc);
    }
    it->chunks[c] = f;
    if (t0 >= 0) lfb_trace_submit(L, lfb_ctx_of(L), f, ops, pool, t0);
  }
  if (o.progress) { /* as futures.progress(it, opts.progress) */
    lua_pushcfunction(L, lfb_progress);
    lua_pushvalue(L, itidx);
    lua_getfield(L, o.progress, "progress");
    if (!lua_istable(L, -1)) {
      lua_pop(L, 1);
      lua_pushnil(L);
    }
    lua_call(L, 2, 4);
    return 4;
  }
  lua_pushvalue(L, itidx);
  return 1;
}

long lfb_map_track(lua_State *L, int idx, lfb_track_fn fn, void *ud,
                   long *done) {
  mapiter *it = lfb_toclass(L, idx, &ITER_MT);
  if (it == NULL) return -1;
  *done = 0;
  for (size_t c = 0; c < it->nchunks; c++) {
    size_t first = c * it->chunksize;
    size_t k = it->n - first < it->chunksize ? it->n - first : it->chunksize;
    if (it->chunks[c]) fn(ud, it->chunks[c], k);
    else *done += (long)k;
  }
  if (it->chunks == NULL) *done = (long)it->n; /* finished or closed */
  return (long)it->n;
}

static const luaL_Reg meta[] = {
    {"__call", it_call},
    {"__close", it_close},
    {"__gc", it_gc},
    {"__tostring", it_tostring},
    {NULL, NULL},
};

static const luaL_Reg methods[] = {
    {"collect", it_collect},
    {"close", it_close},
    {NULL, NULL},
};

void lfb_open_map(lua_State *L) {
  luaL_newmetatable(L, LFB_MAPITER);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &ITER_MT);
  lfb_setfuncs(L, meta);
  lua_newtable(L);
  lfb_setfuncs(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
