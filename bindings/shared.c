/*
 * shared.c -- the Shared class: futures.shared(v), a read-only value
 * encoded once and decoded at most once in each state that reads it.
 *
 * The runtime object (lfb_shobj) holds the encoded bytes of v and a 64-bit
 * id, and is refcounted like every handle's object; no lock guards it, as
 * nothing in it changes after it is made. A Shared object is a box around
 * one reference, whose user value caches the state's decoded copy: get()
 * decodes on its first call and returns the cached copy after, so every
 * call in one state gives the same table, and a state that changes it
 * changes only its own copy.
 *
 * v is encoded by the rules for another process (no handles, functions as
 * inline bytecode), so the one payload serves every destination:
 *   - in this process the object travels as a handle (a row of handles.c);
 *     a receiving state keeps its box in a strong per-state table, so its
 *     copy outlives the task that brought it (decoded once per worker);
 *   - to a process worker it travels as its id alone (T_SHARED_ID), the
 *     task's payload holding the object, which the pool keeps while the
 *     task is out; a worker without a box for that id asks the pool for
 *     the bytes (lfb_shared_fetch, lf_proc_child_need), so they reach each
 *     worker process once (lfb_shared_blob lets the pool find them);
 *   - to any other process (MPI ranks, the results a worker sends back) it
 *     travels inline as its id and its bytes (encode.c);
 *   - a receiving process keeps one box per id (lfb_shared_push_remote,
 *     lfb_shared_push_id), so it decodes once per worker process.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define LFB_CODEC_PARTS
#include "lfb.h"

typedef struct lfb_shobj {
  lf_obj obj;
  uint64_t id;
  lf_payload *p; /* owned; holds no objects */
} lfb_shobj;

typedef struct lfb_shared {
  lfb_shobj *s;
  int decoded; /* the user value holds this state's copy */
} lfb_shared;

/* Registry keys: boxes received from this process's other states (by
 * object address), and from other processes (by id). Both are strong. */
static const char KEEP[] = "luafutures.shared.keep";
static const char REMOTE[] = "luafutures.shared.remote";

static void shobj_destroy(lf_obj *o) {
  lfb_shobj *s = (lfb_shobj *)o;
  lf_payload_free(s->p);
  free(s);
}

/* Ids tell apart the values of this process; the pid in the high half
 * tells apart those of the processes a worker may hear from. */
static uint64_t next_id(void) {
  static _Atomic uint32_t counter;
  uint32_t n = atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
  return ((uint64_t)(uint32_t)getpid() << 32) | n;
}

/* Takes over p (freed when NULL is returned). */
static lfb_shobj *shobj_new(lf_payload *p, uint64_t id) {
  lfb_shobj *s = malloc(sizeof *s);
  if (s == NULL) {
    lf_payload_free(p);
    return NULL;
  }
  atomic_init(&s->obj.refs, 1);
  s->obj.destroy = shobj_destroy;
  s->id = id;
  s->p = p;
  return s;
}

/* Made empty first, so that failing to make it leaks no reference. */
static lfb_shared *newbox(lua_State *L) {
  lfb_shared *b = lua_newuserdatauv(L, sizeof *b, 1);
  b->s = NULL;
  b->decoded = 0;
  luaL_setmetatable(L, LFB_SHARED);
  return b;
}

static lfb_shared *check(lua_State *L) {
  lfb_shared *b = luaL_checkudata(L, 1, LFB_SHARED);
  if (b->s == NULL) luaL_argerror(L, 1, "Shared is collected");
  return b;
}

/* Pushes the table kept under `key` in the registry, made on first use. */
static void push_keep(lua_State *L, const char *key) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, key);
  }
}

/* ---- the codec's side ------------------------------------------------------ */

lf_obj *lfb_shared_obj(lua_State *L, int idx) {
  lfb_shared *b = luaL_testudata(L, idx, LFB_SHARED);
  return b && b->s ? &b->s->obj : NULL;
}

void lfb_shared_wire(const lf_obj *o, uint64_t *id, const lf_payload **p) {
  const lfb_shobj *s = (const lfb_shobj *)o;
  *id = s->id;
  *p = s->p;
}

void lfb_shared_push(lua_State *L, lf_obj *o) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, lfb_PROXIES); /* proxies */
  if (lua_rawgetp(L, -1, o) == LUA_TUSERDATA) {   /* proxies ud */
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  push_keep(L, KEEP);        /* proxies keep */
  lfb_shared *b = newbox(L); /* proxies keep ud */
  lf_obj_ref(o);
  b->s = (lfb_shobj *)o;
  lua_pushvalue(L, -1);
  lua_rawsetp(L, -3, o);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, -4, o);
  lua_replace(L, -3); /* ud keep */
  lua_pop(L, 1);
}

/* Pushes this state's box for id, from the table of the Shared values
 * that came from other processes, and returns 1; or pushes that table and
 * returns 0. */
static int remote_box(lua_State *L, uint64_t id) {
  push_keep(L, REMOTE); /* remote */
  if (lua_rawgeti(L, -1, (lua_Integer)id) == LUA_TUSERDATA) {
    lua_remove(L, -2); /* ud */
    return 1;
  }
  lua_pop(L, 1); /* remote */
  return 0;
}

/* Above the table remote_box pushed, a new box (newbox): it takes over p
 * for id and is kept there; leaves the box. */
static void remote_fill(lua_State *L, uint64_t id, lf_payload *p) {
  lfb_shared *b = lua_touserdata(L, -1); /* remote ud */
  lfb_shobj *s = p ? shobj_new(p, id) : NULL;
  if (s == NULL) luaL_error(L, "not enough memory");
  b->s = s;
  lua_pushvalue(L, -1);
  lua_rawseti(L, -3, (lua_Integer)id);
  lua_remove(L, -2);
}

void lfb_shared_push_remote(lua_State *L, uint64_t id, const char *bytes,
                            size_t len) {
  if (remote_box(L, id)) return;
  newbox(L);
  remote_fill(L, id, lf_payload_new(bytes, len, NULL, 0, 0));
}

const char *(*lfb_shared_fetch)(uint64_t id, lf_payload **p);

/* A Shared by id, in a process worker: the first task that brings it
 * asks the pool for its bytes, and every later one finds the box. */
void lfb_shared_push_id(lua_State *L, uint64_t id, uint32_t len) {
  if (remote_box(L, id)) return;
  if (lfb_shared_fetch == NULL)
    luaL_error(L, "corrupt payload (a Shared by id outside a process worker)");
  newbox(L); /* first: its failure leaks nothing */
  lf_payload *p = NULL;
  const char *why = lfb_shared_fetch(id, &p);
  if (why) luaL_error(L, "cannot get the bytes of a Shared: %s", why);
  if (p->len != len) {
    lf_payload_free(p);
    luaL_error(L, "corrupt payload (a Shared of another size than its bytes)");
  }
  remote_fill(L, id, p);
}

const lf_payload *lfb_shared_blob(void *ud, lf_obj *o, uint64_t *id) {
  (void)ud;
  if (o->destroy != shobj_destroy) return NULL;
  const lfb_shobj *s = (const lfb_shobj *)o;
  *id = s->id;
  return s->p;
}

/* ---- the class ------------------------------------------------------------- */

static int m_shared(lua_State *L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  lfb_shared *b = newbox(L); /* v ud */
  lfb_enc e;
  lfb_enc_init(&e, L);
  e.handles_ok = 0; /* one payload for every process */
  e.argno = 1;
  if (lfb_enc_value(&e, L, 1) != 0) {
    lfb_enc_free(&e, L);
    lfb_enc_pusherror(&e, L);
    return lua_error(L);
  }
  lf_payload *p = lfb_enc_finish(&e, L);
  lfb_shobj *s = p ? shobj_new(p, next_id()) : NULL;
  if (s == NULL) return luaL_error(L, "not enough memory");
  b->s = s;
  lfb_proxy_remember(L, s, 2);
  return 1;
}

static int s_get(lua_State *L) {
  lfb_shared *b = check(L);
  lua_settop(L, 1);
  if (b->decoded) {
    lua_getiuservalue(L, 1, 1);
    return 1;
  }
  lfb_dec d;
  lfb_dec_init(&d, b->s->p);
  lua_pushnil(L); /* self refs */
  d.refs = 2;
  if (lfb_dec_protected(&d, L, 1) != 0) return lua_error(L);
  lua_pushvalue(L, -1); /* self refs v v */
  lua_setiuservalue(L, 1, 1);
  b->decoded = 1;
  return 1;
}

static int s_gc(lua_State *L) {
  lfb_shared *b = luaL_checkudata(L, 1, LFB_SHARED);
  if (b->s) lf_obj_unref(&b->s->obj);
  b->s = NULL;
  return 0;
}

static int s_tostring(lua_State *L) {
  lfb_shared *b = luaL_checkudata(L, 1, LFB_SHARED);
  if (b->s == NULL) lua_pushliteral(L, "<Shared (collected)>");
  else lua_pushfstring(L, "<Shared at %p>", (void *)b->s);
  return 1;
}

static const luaL_Reg meta[] = {
    {"__gc", s_gc},
    {"__tostring", s_tostring},
    {NULL, NULL},
};

static const luaL_Reg methods[] = {
    {"get", s_get},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"shared", m_shared},
    {NULL, NULL},
};

void lfb_open_shared(lua_State *L) {
  lfb_newclass(L, LFB_SHARED, meta, methods);
  lfb_setfuncs(L, funcs);
}
