/*
 * blob.c -- a Lua function as the encoder sends it within one process: a
 * reference-counted blob of its bytecode (debug info kept), dumped once
 * per closure and cached in the sender's registry (lfb_FNCACHE), so a
 * function submitted a thousand times is dumped once. The blob's box is a
 * userdata whose __gc drops the cache's reference; receivers load a blob
 * once per state (decode.c, closure.c).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define LFB_CODEC_PARTS
#include "lfb.h"

/* Out of line, so that the encoder's recursive frames stay small. */
#define LFB_NOINLINE __attribute__((noinline))

static const char BLOB[] = "luafutures.blob";

/* ---- function blobs ------------------------------------------------------- */

static void blob_destroy(lf_obj *o) { free(o); }

static int blob_gc(lua_State *L) {
  lfb_blob **b = luaL_checkudata(L, 1, BLOB);
  lf_obj_unref((lf_obj *)*b);
  *b = NULL;
  return 0;
}

int lfb_blob_is(const lf_obj *o) { return o->destroy == blob_destroy; }

/* ---- the submitter's last function ---------------------------------------- */

/* A submit's reference to its function's blob is taken LAST_CREDIT at a
 * time: the workers drop theirs one per task, so the reference count's
 * line sits in a worker's cache, and a submit that added to it each time
 * would wait for that line on every task. */
#define LAST_CREDIT 256

void lfb_last_drop(lfb_ctx *ctx) {
  lf_obj *o = ctx->last_blob ? &ctx->last_blob->obj : NULL;
  int n = ctx->last_credit;
  if (n > 0 &&
      atomic_fetch_sub_explicit(&o->refs, n, memory_order_acq_rel) == n)
    o->destroy(o);
  ctx->last_credit = 0;
  ctx->last_fn = NULL;
  ctx->last_blob = NULL;
}

void lfb_last_set(lfb_ctx *ctx, const void *fp, lfb_blob *b) {
  lfb_last_drop(ctx);
  ctx->last_fn = fp;
  ctx->last_blob = b;
  ctx->last_nups = b->nups;
  ctx->last_allenv = b->allenv;
}

lf_obj *lfb_last_ref(lfb_ctx *ctx) {
  lf_obj *o = &ctx->last_blob->obj;
  if (ctx->last_credit == 0) {
    atomic_fetch_add_explicit(&o->refs, LAST_CREDIT, memory_order_relaxed);
    ctx->last_credit = LAST_CREDIT;
  }
  ctx->last_credit--;
  return o;
}

/* An empty box first (b NULL): a memory error while making it leaks
 * nothing, and once it has its metatable its __gc drops what it holds. */
static lfb_blob **push_box(lua_State *L) {
  lfb_blob **box = lua_newuserdatauv(L, sizeof *box, 1);
  *box = NULL;
  if (luaL_newmetatable(L, BLOB)) {
    lua_pushcfunction(L, blob_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return box;
}

/* Pushes a userdata that owns one reference to b. */
static void blob_push_box(lua_State *L, lfb_blob *b) {
  lfb_blob **box = push_box(L);
  *box = b;
  lf_obj_ref(&b->obj);
}

typedef struct dumpbuf {
  char *p;
  size_t len, cap;
  int oom;
} dumpbuf;

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud) {
  (void)L;
  dumpbuf *d = ud;
  if (d->len + sz > d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 512;
    while (cap < d->len + sz) cap *= 2;
    char *np = realloc(d->p, cap);
    if (np == NULL) {
      d->oom = 1;
      return 1;
    }
    d->p = np;
    d->cap = cap;
  }
  memcpy(d->p + d->len, p, sz);
  d->len += sz;
  return 0;
}

char *lfb_dump(lua_State *L, int idx, int strip, size_t *len) {
  dumpbuf d = {0};
  lua_pushvalue(L, idx);
  int rc = lua_dump(L, dump_writer, &d, strip);
  lua_pop(L, 1);
  if (rc != 0 || d.oom) {
    free(d.p);
    return NULL;
  }
  *len = d.len;
  return d.p;
}

/* The blob of the Lua function at idx, from the state's cache or dumped
 * now. NULL when out of memory. */
LFB_NOINLINE lfb_blob *lfb_function_blob(lua_State *L, int idx) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, lfb_FNCACHE);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) == LUA_TUSERDATA) {
    lfb_blob *b = *(lfb_blob **)lua_touserdata(L, -1);
    lua_pop(L, 2);
    return b;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lfb_blob **box = push_box(L); /* cache fn box */
  dumpbuf d = {0};
  d.p = lfb_dump(L, idx, 0, &d.len);
  lfb_blob *b = d.p == NULL ? NULL : malloc(sizeof *b + d.len);
  if (b == NULL) {
    free(d.p);
    lua_pop(L, 3);
    return NULL;
  }
  atomic_init(&b->obj.refs, 0);
  b->obj.destroy = blob_destroy;
  b->len = d.len;
  /* An upvalue named _ENV becomes the receiver's globals, whatever table it
   * holds here (a sandbox, a test framework's environment). */
  lua_Debug ar;
  lua_pushvalue(L, idx);
  lua_getinfo(L, ">u", &ar);
  b->nups = ar.nups;
  b->allenv = 1;
  for (int i = 1; i <= ar.nups && b->allenv; i++) {
    const char *name = lua_getupvalue(L, idx, i);
    b->allenv = name && strcmp(name, "_ENV") == 0;
    lua_pop(L, 1);
  }
  memcpy(b->data, d.p, d.len);
  free(d.p);
  *box = b; /* the cache's box owns the first reference */
  lf_obj_ref(&b->obj);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  return b;
}

/* ---- a receiver's own functions ------------------------------------------ */

/* Each state keeps the function it loaded from a blob in lfb_LOADED (blob
 * -> its box, the function as the box's user value; bounded), and in front
 * of it the one met last: the function at the registry slot ctx->loaded_ref
 * and its box at the next one, so a worker that runs one function over and
 * over finds it with one array read. The box keeps its blob alive, so the
 * address it is compared by cannot be reused while it is cached. */

static void remember_last(lua_State *L, lfb_ctx *ctx, lfb_blob *b) {
  if (ctx->loaded_ref == 0) { /* two slots, once */
    lua_pushboolean(L, 0);
    lua_pushboolean(L, 0);
    ctx->loaded_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    ctx->loaded_box_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_pushvalue(L, -1); /* the box */
  lua_rawseti(L, LUA_REGISTRYINDEX, ctx->loaded_box_ref);
  lua_getiuservalue(L, -1, 1);
  lua_rawseti(L, LUA_REGISTRYINDEX, ctx->loaded_ref);
  ctx->loaded_last = b;
}

int lfb_loaded_get(lua_State *L, lfb_ctx *ctx, lfb_blob *b) {
  if (ctx && ctx->loaded_last == b) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->loaded_ref);
    return 1;
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, lfb_LOADED); /* loaded */
  int found = lua_rawgetp(L, -1, b) == LUA_TUSERDATA; /* loaded box */
  lua_remove(L, -2);
  if (!found) {
    lua_pop(L, 1);
    return 0;
  }
  if (ctx) remember_last(L, ctx, b);
  lua_getiuservalue(L, -1, 1);
  lua_remove(L, -2);
  return 1;
}

void lfb_loaded_put(lua_State *L, lfb_ctx *ctx, lfb_blob *b) {
  if (ctx == NULL) {
    ctx = lfb_ctx_push(L);
    lua_pop(L, 1);
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, lfb_LOADED); /* fn loaded */
  if (++ctx->nloaded > 1000) { /* bound the cache: start afresh */
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, lfb_LOADED);
    ctx->nloaded = 1;
  }
  blob_push_box(L, b); /* fn loaded box: keeps the blob alive */
  lua_pushvalue(L, -3);
  lua_setiuservalue(L, -2, 1);
  remember_last(L, ctx, b);
  lua_rawsetp(L, -2, b);
  lua_pop(L, 1);
}
