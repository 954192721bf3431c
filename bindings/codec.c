/*
 * codec.c -- Lua values to bytes and back, between the states of one
 * process (and, with handles refused, of another).
 *
 * Values are copied, never shared. One encode has one reference cache, so a
 * table met twice (or a cycle) is written once and referred to by number;
 * the decoder rebuilds the same shape. A Lua function travels as a
 * reference-counted blob of its bytecode (debug info kept) plus its
 * upvalues; the sender keeps one blob per closure and each receiving state
 * keeps the function it loaded from a blob, so a function is dumped and
 * loaded once, not once per task. Module tables and C functions travel by
 * their name in package.loaded; metatables too when they have one.
 *
 * Encoding never raises: it frees nothing of the caller's and reports a
 * failure in e->err (naming the value's path), so the caller can release
 * what it holds before raising. Decoding may raise.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lfb.h"

enum {
  T_NIL, T_FALSE, T_TRUE, T_INT, T_SMALLINT, T_FLT, T_STR8, T_STR, T_TABLE,
  T_REF, T_FUNC, T_CFUNC, T_NAMED, T_FUTURE, T_EXEC, T_ENV, T_LIGHT
};
enum { M_NONE, M_NAMED, M_COPY };
enum { P_FIELD, P_INDEX, P_UPVAL, P_KEY, P_META };

#define MAXDEPTH 200

const char lfb_NAMES[] = "luafutures.names";
const char lfb_FNCACHE[] = "luafutures.fncache";
const char lfb_LOADED[] = "luafutures.loaded";
static const char BLOB[] = "luafutures.blob";

/* ---- function blobs ------------------------------------------------------- */

typedef struct blob {
  lf_obj obj;
  size_t len;
  int nups;   /* upvalues of the function */
  int allenv; /* all of them are named _ENV (fixed by the prototype) */
  char data[];
} blob;

static void blob_destroy(lf_obj *o) { free(o); }

static int blob_gc(lua_State *L) {
  blob **b = luaL_checkudata(L, 1, BLOB);
  lf_obj_unref((lf_obj *)*b);
  *b = NULL;
  return 0;
}

/* Pushes a userdata that owns one reference to b. */
static void push_blob_box(lua_State *L, blob *b) {
  blob **box = lua_newuserdatauv(L, sizeof *box, 1);
  *box = b;
  lf_obj_ref(&b->obj);
  if (luaL_newmetatable(L, BLOB)) {
    lua_pushcfunction(L, blob_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
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

/* The blob of the Lua function at idx, from the state's cache or dumped
 * now. NULL when out of memory. */
static blob *function_blob(lua_State *L, int idx) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, lfb_FNCACHE);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) == LUA_TUSERDATA) {
    blob *b = *(blob **)lua_touserdata(L, -1);
    lua_pop(L, 2);
    return b;
  }
  lua_pop(L, 1);
  dumpbuf d = {0};
  lua_pushvalue(L, idx);
  lua_dump(L, dump_writer, &d, 0);
  lua_pop(L, 1);
  blob *b = d.oom ? NULL : malloc(sizeof *b + d.len);
  if (b == NULL) {
    free(d.p);
    lua_pop(L, 1);
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
  lua_pushvalue(L, idx);
  push_blob_box(L, b); /* cache owns the first reference */
  lua_rawset(L, -3);
  lua_pop(L, 1);
  return b;
}

/* ---- names of values reachable from package.loaded ------------------------ */

static int count_loaded(lua_State *L) {
  int n = 0;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    n++;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return n;
}

/* Builds value -> "mod" (a module) or "mod\0field" (a direct field that is
 * a table or a C function; for _G, C functions only, since another state's
 * globals are its own). Pushes the new index. */
static void build_names(lua_State *L, lfb_ctx *ctx) {
  lua_newtable(L);                                        /* names */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE); /* names loaded */
  int names = lua_gettop(L) - 1, loaded = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, loaded)) {
    int t = lua_type(L, -1);
    if (lua_type(L, -2) == LUA_TSTRING && (t == LUA_TTABLE || t == LUA_TFUNCTION)) {
      lua_pushvalue(L, -1);
      if (lua_rawget(L, names) == LUA_TNIL) {
        lua_pushvalue(L, -2);
        lua_pushvalue(L, -4);
        lua_rawset(L, names);
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (lua_next(L, loaded)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TTABLE) {
      int isg = strcmp(lua_tostring(L, -2), "_G") == 0;
      int mod = lua_gettop(L);
      lua_pushnil(L);
      while (lua_next(L, mod)) {
        int t = lua_type(L, -1);
        int want = lua_type(L, -2) == LUA_TSTRING &&
                   (lua_iscfunction(L, -1) || (t == LUA_TTABLE && !isg));
        if (want) {
          lua_pushvalue(L, -1);
          if (lua_rawget(L, names) == LUA_TNIL) {
            lua_pushvalue(L, -2);
            lua_pushfstring(L, "%s%c%s", lua_tostring(L, mod - 1), '\0',
                            lua_tostring(L, -4));
            lua_rawset(L, names);
          }
          lua_pop(L, 1);
        }
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, lfb_NAMES);
  ctx->names_count = count_loaded(L);
}

/* ---- encoder -------------------------------------------------------------- */

static lfb_ctx *state_ctx(lua_State *L) {
  lfb_ctx *ctx = lfb_ctx_push(L);
  lua_pop(L, 1);
  return ctx;
}

void lfb_enc_init(lfb_enc *e, lua_State *L) {
  e->buf = e->ibuf;
  e->len = 0;
  e->cap = sizeof e->ibuf;
  e->objs = e->iobjs;
  e->nobjs = 0;
  e->capobjs = sizeof e->iobjs / sizeof e->iobjs[0];
  e->nrefs = 0;
  e->depth = 0;
  e->flags = 0;
  e->handles_ok = 1;
  e->what = "argument";
  e->argno = 0;
  e->err[0] = '\0';
  e->npath = 0;
  e->cache = e->names = 0;
  e->err[0] = '\0';
  if (L) {
    lua_pushnil(L);
    e->cache = lua_gettop(L);
    lua_pushnil(L);
    e->names = lua_gettop(L);
  }
}

static int oom(lfb_enc *e) {
  snprintf(e->err, sizeof e->err, "not enough memory");
  return -1;
}

static int reserve(lfb_enc *e, size_t n) {
  if (e->len + n <= e->cap) return 0;
  size_t cap = e->cap * 2;
  while (cap < e->len + n) cap *= 2;
  char *nb = e->buf == e->ibuf ? malloc(cap) : realloc(e->buf, cap);
  if (nb == NULL) return -1;
  if (e->buf == e->ibuf) memcpy(nb, e->ibuf, e->len);
  e->buf = nb;
  e->cap = cap;
  return 0;
}

static int put(lfb_enc *e, const void *p, size_t n) {
  if (reserve(e, n) != 0) return oom(e);
  memcpy(e->buf + e->len, p, n);
  e->len += n;
  return 0;
}

void lfb_enc_u8(lfb_enc *e, unsigned v) {
  unsigned char c = (unsigned char)v;
  put(e, &c, 1);
}
void lfb_enc_u32(lfb_enc *e, uint32_t v) { put(e, &v, 4); }
void lfb_enc_str(lfb_enc *e, const char *s, size_t len) {
  if (len < 256) {
    lfb_enc_u8(e, T_STR8);
    lfb_enc_u8(e, (unsigned)len);
  } else {
    lfb_enc_u8(e, T_STR);
    lfb_enc_u32(e, (uint32_t)len);
  }
  put(e, s, len);
}

static int add_obj(lfb_enc *e, lf_obj *o) {
  if (e->nobjs == e->capobjs) {
    uint32_t cap = e->capobjs * 2;
    lf_obj **no = e->objs == e->iobjs ? malloc(cap * sizeof *no)
                                      : realloc(e->objs, cap * sizeof *no);
    if (no == NULL) return oom(e);
    if (e->objs == e->iobjs) memcpy(no, e->iobjs, sizeof e->iobjs);
    e->objs = no;
    e->capobjs = cap;
  }
  lf_obj_ref(o);
  e->objs[e->nobjs++] = o;
  return 0;
}

static void path_push(lfb_enc *e, int kind, int a) {
  if (e->npath < (int)(sizeof e->path / sizeof e->path[0])) {
    e->path[e->npath].kind = kind;
    e->path[e->npath].idx = a;
  }
  e->npath++;
}

/* Appends one key of a path to out: a.b, [3], ["odd key"]. */
static void path_key(lua_State *L, char *out, size_t cap, int idx, int first) {
  size_t n = strlen(out);
  if (lua_type(L, idx) == LUA_TSTRING) {
    const char *s = lua_tostring(L, idx);
    int ident = s[0] == '_' || ((s[0] | 32) >= 'a' && (s[0] | 32) <= 'z');
    for (const char *c = s; *c && ident; c++)
      ident = *c == '_' || ((*c | 32) >= 'a' && (*c | 32) <= 'z') ||
              (*c >= '0' && *c <= '9');
    snprintf(out + n, cap - n, ident ? (first ? "%s" : ".%s") : "[\"%s\"]", s);
  } else if (lua_isinteger(L, idx)) {
    snprintf(out + n, cap - n, "[%lld]", (long long)lua_tointeger(L, idx));
  } else if (lua_type(L, idx) == LUA_TNUMBER) {
    snprintf(out + n, cap - n, "[%.14g]", (double)lua_tonumber(L, idx));
  } else {
    snprintf(out + n, cap - n, "[%s]", luaL_typename(L, idx));
  }
}

/* Writes "cannot transfer argument #2 (field 'a.b'): reason" into e->err. */
static int fail(lfb_enc *e, lua_State *L, const char *reason) {
  char path[200] = "";
  int n = e->npath < 16 ? e->npath : 16, infield = 0;
  for (int i = 0; i < n; i++) {
    int kind = e->path[i].kind, a = e->path[i].idx;
    int field = kind == P_FIELD || kind == P_INDEX;
    size_t len = strlen(path);
    if (infield && !field) snprintf(path + len, sizeof path - len, "'");
    len = strlen(path);
    if (!(infield && field) && i)
      snprintf(path + len, sizeof path - len, ", ");
    len = strlen(path);
    if (field && !infield)
      snprintf(path + len, sizeof path - len, "field '");
    len = strlen(path);
    if (kind == P_FIELD) {
      path_key(L, path, sizeof path, a, !infield);
    } else if (kind == P_INDEX) {
      snprintf(path + len, sizeof path - len, "[%d]", a);
    } else if (kind == P_UPVAL) {
      const char *name = lua_getupvalue(L, a >> 8, a & 0xff);
      if (name) lua_pop(L, 1);
      snprintf(path + len, sizeof path - len, "upvalue '%s'",
               name && *name ? name : "?");
    } else {
      snprintf(path + len, sizeof path - len, "%s",
               kind == P_KEY ? "a key" : "metatable");
    }
    infield = field;
  }
  if (infield) {
    size_t len = strlen(path);
    snprintf(path + len, sizeof path - len, "'");
  }
  char what[48];
  if (e->argno > 0)
    snprintf(what, sizeof what, "%s #%d", e->what, e->argno);
  else
    snprintf(what, sizeof what, "%s", e->what);
  if (*path)
    snprintf(e->err, sizeof e->err, "cannot transfer %s (%s): %s", what, path,
             reason);
  else
    snprintf(e->err, sizeof e->err, "cannot transfer %s: %s", what, reason);
  return -1;
}

/* Looks the value at idx up in the names index; pushes the name or nil. */
static void push_name(lfb_enc *e, lua_State *L, int idx, int refresh) {
  if (lua_isnil(L, e->names) || refresh) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, lfb_NAMES);
    if (lua_isnil(L, -1) || refresh) {
      lua_pop(L, 1);
      build_names(L, state_ctx(L));
    }
    lua_replace(L, e->names);
  }
  lua_pushvalue(L, idx);
  lua_rawget(L, e->names);
}

/* The reference number of the value at idx, or 0 (then it is recorded). */
static int cache_ref(lfb_enc *e, lua_State *L, int idx) {
  if (lua_isnil(L, e->cache)) {
    lua_newtable(L);
    lua_replace(L, e->cache);
  }
  lua_pushvalue(L, idx);
  if (lua_rawget(L, e->cache) == LUA_TNUMBER) {
    int id = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return id;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lua_pushinteger(L, ++e->nrefs);
  lua_rawset(L, e->cache);
  e->flags |= LFB_HASREFS;
  return 0;
}

static int enc(lfb_enc *e, lua_State *L, int idx);

static int enc_named(lfb_enc *e, lua_State *L, int tag) {
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  lfb_enc_u8(e, (unsigned)tag);
  lfb_enc_str(e, s, len);
  lua_pop(L, 1);
  return 0;
}

static int enc_table(lfb_enc *e, lua_State *L, int idx) {
  /* A module goes by name (and takes no reference number). */
  push_name(e, L, idx, 0);
  if (lua_isstring(L, -1) && strlen(lua_tostring(L, -1)) == lua_rawlen(L, -1))
    return enc_named(e, L, T_NAMED);
  lua_pop(L, 1);
  int id = cache_ref(e, L, idx);
  if (id) {
    lfb_enc_u8(e, T_REF);
    lfb_enc_u32(e, (uint32_t)id);
    return 0;
  }
  lua_Unsigned narr = lua_rawlen(L, idx);
  if (narr > UINT32_MAX) return fail(e, L, "table too large");
  lfb_enc_u8(e, T_TABLE);
  lfb_enc_u32(e, (uint32_t)narr);
  size_t at = e->len;
  lfb_enc_u32(e, 0);
  for (lua_Unsigned i = 1; i <= narr; i++) {
    lua_rawgeti(L, idx, (lua_Integer)i);
    path_push(e, P_INDEX, (int)i);
    if (enc(e, L, lua_gettop(L)) != 0) return -1;
    e->npath--;
    lua_pop(L, 1);
  }
  uint32_t nhash = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int k = lua_gettop(L) - 1;
    if (lua_isinteger(L, k)) {
      lua_Integer i = lua_tointeger(L, k);
      if (i >= 1 && (lua_Unsigned)i <= narr) {
        lua_pop(L, 1);
        continue;
      }
    }
    path_push(e, P_KEY, 0);
    if (enc(e, L, k) != 0) return -1;
    e->npath--;
    path_push(e, P_FIELD, k);
    if (enc(e, L, k + 1) != 0) return -1;
    e->npath--;
    nhash++;
    lua_pop(L, 1);
  }
  if (e->len >= at + 4) memcpy(e->buf + at, &nhash, 4);
  if (!lua_getmetatable(L, idx)) {
    lfb_enc_u8(e, M_NONE);
    return 0;
  }
  int mt = lua_gettop(L);
  push_name(e, L, mt, 0);
  if (lua_isnil(L, -1) && state_ctx(L)->names_count != count_loaded(L)) {
    lua_pop(L, 1);
    push_name(e, L, mt, 1);
  }
  if (lua_isstring(L, -1)) {
    enc_named(e, L, M_NAMED);
  } else {
    lua_pop(L, 1);
    lfb_enc_u8(e, M_COPY);
    path_push(e, P_META, 0);
    if (enc(e, L, mt) != 0) return -1;
    e->npath--;
  }
  lua_pop(L, 1);
  return 0;
}

static int enc_function(lfb_enc *e, lua_State *L, int idx) {
  if (lua_iscfunction(L, idx)) {
    push_name(e, L, idx, 0);
    if (lua_isnil(L, -1)) { /* a module loaded since the index was built? */
      lua_pop(L, 1);
      push_name(e, L, idx, 1);
    }
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      return fail(e, L, "C function not found in package.loaded");
    }
    return enc_named(e, L, T_CFUNC);
  }
  blob *b = function_blob(L, idx);
  if (b == NULL) return oom(e);
  int allenv = b->allenv;
  /* A function whose upvalues are all globals needs no reference number:
   * every receiver resolves it to the one function it loaded. */
  if (!allenv) {
    int id = cache_ref(e, L, idx);
    if (id) {
      lfb_enc_u8(e, T_REF);
      lfb_enc_u32(e, (uint32_t)id);
      return 0;
    }
  }
  /* One flag byte: bit 0 bytecode inline (another process), bit 1 all
   * upvalues are _ENV. */
  lfb_enc_u8(e, T_FUNC);
  lfb_enc_u8(e, (e->handles_ok ? 0u : 1u) | (allenv ? 2u : 0u));
  if (e->handles_ok) {
    put(e, &b, sizeof b);
    if (add_obj(e, &b->obj) != 0) return -1;
  } else {
    lfb_enc_u32(e, (uint32_t)b->len);
    put(e, b->data, b->len);
  }
  lfb_enc_u8(e, (unsigned)b->nups);
  if (allenv) return 0;
  for (int i = 1; i <= b->nups; i++) {
    const char *name = lua_getupvalue(L, idx, i);
    if (name && strcmp(name, "_ENV") == 0) {
      lfb_enc_u8(e, T_ENV);
      lua_pop(L, 1);
      continue;
    }
    path_push(e, P_UPVAL, (idx << 8) | i);
    if (enc(e, L, lua_gettop(L)) != 0) return -1;
    e->npath--;
    lua_pop(L, 1);
  }
  return 0;
}

static int enc(lfb_enc *e, lua_State *L, int idx) {
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      lfb_enc_u8(e, T_NIL);
      break;
    case LUA_TBOOLEAN:
      lfb_enc_u8(e, lua_toboolean(L, idx) ? T_TRUE : T_FALSE);
      break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        lua_Integer i = lua_tointeger(L, idx);
        if (i >= INT32_MIN && i <= INT32_MAX) {
          int32_t s = (int32_t)i;
          lfb_enc_u8(e, T_SMALLINT);
          put(e, &s, 4);
        } else {
          int64_t v = (int64_t)i;
          lfb_enc_u8(e, T_INT);
          put(e, &v, 8);
        }
      } else {
        double d = (double)lua_tonumber(L, idx);
        lfb_enc_u8(e, T_FLT);
        put(e, &d, 8);
      }
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      if (len > UINT32_MAX) return fail(e, L, "string too long");
      lfb_enc_str(e, s, len);
      break;
    }
    case LUA_TTABLE:
    case LUA_TFUNCTION: {
      if (++e->depth > MAXDEPTH) return fail(e, L, "nested too deep");
      if (!lua_checkstack(L, 8)) return fail(e, L, "nested too deep");
      int rc = lua_type(L, idx) == LUA_TTABLE ? enc_table(e, L, idx)
                                              : enc_function(e, L, idx);
      e->depth--;
      if (rc != 0) return rc;
      break;
    }
    case LUA_TLIGHTUSERDATA: { /* a host's pointer: same process only */
      if (!e->handles_ok)
        return fail(e, L, "light userdata (a pointer cannot leave its "
                          "process)");
      void *ptr = lua_touserdata(L, idx);
      lfb_enc_u8(e, T_LIGHT);
      put(e, &ptr, sizeof ptr);
      break;
    }
    case LUA_TUSERDATA: {
      lfb_future *fu = lfb_future_test(L, idx);
      lfb_executor *ex = fu ? NULL : luaL_testudata(L, idx, LFB_THREADPOOL);
      if (fu == NULL && ex == NULL && luaL_testudata(L, idx, LFB_PROCPOOL))
        return fail(e, L, e->handles_ok ? "ProcessPoolExecutor (it stays in "
                                          "the state that made it)"
                                        : "executor (a handle cannot leave "
                                          "its process)");
      if ((fu == NULL || fu->f == NULL) && (ex == NULL || ex->pool == NULL))
        return fail(e, L, "userdata");
      if (!e->handles_ok)
        return fail(e, L, fu ? "Future (a handle cannot leave its process)"
                             : "executor (a handle cannot leave its process)");
      void *ptr = fu ? (void *)fu->f : (void *)ex->pool;
      lfb_proxy_remember(L, ptr, idx);
      lfb_enc_u8(e, fu ? T_FUTURE : T_EXEC);
      put(e, &ptr, sizeof ptr);
      e->flags |= LFB_HASREFS;
      return add_obj(e, fu ? lf_future_obj(fu->f) : lf_pool_obj(ex->pool));
    }
    default:
      return fail(e, L, luaL_typename(L, idx));
  }
  return e->err[0] ? -1 : 0;
}

int lfb_enc_value(lfb_enc *e, lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  e->npath = 0;
  int top = lua_gettop(L);
  int rc = enc(e, L, idx);
  lua_settop(L, top); /* enc may leave what it pushed when it fails */
  if (rc == 0 && e->err[0]) rc = -1;
  return rc;
}

void lfb_enc_reset_refs(lfb_enc *e, lua_State *L) {
  lua_pushnil(L);
  lua_replace(L, e->cache);
  e->nrefs = 0;
}

static void enc_release(lfb_enc *e, lua_State *L, int keep_objs) {
  if (!keep_objs)
    for (uint32_t i = 0; i < e->nobjs; i++) lf_obj_unref(e->objs[i]);
  if (e->buf != e->ibuf) free(e->buf);
  if (e->objs != e->iobjs) free(e->objs);
  e->buf = e->ibuf;
  e->objs = e->iobjs;
  e->nobjs = 0;
  if (L && e->cache) lua_settop(L, e->cache - 1);
}

lf_payload *lfb_enc_finish(lfb_enc *e, lua_State *L) {
  return lfb_enc_finish_for(e, L, NULL);
}

lf_payload *lfb_enc_finish_for(lfb_enc *e, lua_State *L, lf_future *f) {
  lf_payload *p =
      f ? lf_future_payload_new(f, e->buf, e->len, e->objs, e->nobjs, e->flags)
        : lf_payload_new(e->buf, e->len, e->objs, e->nobjs, e->flags);
  enc_release(e, L, p != NULL);
  return p;
}

lf_future *lfb_enc_finish_task(lfb_enc *e, lua_State *L) {
  lf_future *f =
      lf_future_new_task(e->buf, e->len, e->objs, e->nobjs, e->flags);
  enc_release(e, L, f != NULL);
  return f;
}

void lfb_enc_free(lfb_enc *e, lua_State *L) { enc_release(e, L, 0); }

void lfb_enc_pusherror(lfb_enc *e, lua_State *L) {
  lfb_pusherror(L, "TransferError", "%s", e->err);
}

lf_payload *lfb_error_payload(const char *type, const char *message) {
  lfb_enc e;
  lfb_enc_init(&e, NULL);
  lfb_enc_u32(&e, 1);
  lfb_enc_u8(&e, 0);
  lfb_enc_u8(&e, T_TABLE);
  lfb_enc_u32(&e, 0);
  lfb_enc_u32(&e, 2);
  lfb_enc_str(&e, "type", 4);
  lfb_enc_str(&e, type, strlen(type));
  lfb_enc_str(&e, "message", 7);
  lfb_enc_str(&e, message, strlen(message));
  lfb_enc_u8(&e, M_NAMED);
  char name[96];
  int n = snprintf(name, sizeof name, "%s%c%s", LFB_MODNAME, '\0', type);
  lfb_enc_str(&e, name, (size_t)n);
  lfb_enc_u8(&e, T_NIL); /* no traceback */
  e.flags |= LFB_HASREFS;
  return lfb_enc_finish(&e, NULL);
}

/* ---- decoder -------------------------------------------------------------- */

static void dec_one(lfb_dec *d, lua_State *L);

void lfb_dec_init(lfb_dec *d, const lf_payload *p) {
  d->p = p;
  d->pos = 0;
  d->refs = 0;
  d->nrefs = 0;
}

static const char *take(lfb_dec *d, size_t n) {
  if (d->pos + n > d->p->len) return NULL;
  const char *s = d->p->data + d->pos;
  d->pos += n;
  return s;
}

static const char *take_or_raise(lua_State *L, lfb_dec *d, size_t n) {
  const char *s = take(d, n);
  if (s == NULL) luaL_error(L, "corrupt payload");
  return s;
}

unsigned lfb_dec_u8(lfb_dec *d) {
  const char *s = take(d, 1);
  return s ? (unsigned char)*s : 0;
}

uint32_t lfb_dec_u32(lfb_dec *d) {
  uint32_t v = 0;
  const char *s = take(d, 4);
  if (s) memcpy(&v, s, 4);
  return v;
}

static void ref_store(lfb_dec *d, lua_State *L) {
  if (d->refs == 0) return; /* the caller expects no shared references */
  if (lua_isnil(L, d->refs)) {
    lua_newtable(L);
    lua_replace(L, d->refs);
  }
  lua_pushvalue(L, -1);
  lua_rawseti(L, d->refs, ++d->nrefs);
}

static const char *dec_string(lua_State *L, lfb_dec *d, size_t *len) {
  unsigned tag = lfb_dec_u8(d);
  if (tag == T_STR8)
    *len = lfb_dec_u8(d);
  else if (tag == T_STR)
    *len = lfb_dec_u32(d);
  else
    luaL_error(L, "corrupt payload");
  return take_or_raise(L, d, *len);
}

/* Pushes package.loaded[mod] (requiring it if needed), or its field, for
 * a name "mod" or "mod\0field" (not NUL-terminated). */
static void push_named(lua_State *L, const char *name, size_t len) {
  const char *nul = memchr(name, '\0', len);
  size_t modlen = nul ? (size_t)(nul - name) : len;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushlstring(L, name, modlen);
  if (lua_rawget(L, -2) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_getglobal(L, "require");
    lua_pushlstring(L, name, modlen);
    lua_call(L, 1, 1);
  }
  lua_remove(L, -2);
  if (nul) {
    lua_pushlstring(L, nul + 1, len - modlen - 1);
    lua_rawget(L, -2);
    if (lua_isnil(L, -1))
      luaL_error(L, "cannot transfer '%s.%s': not found in this state",
                 lua_pushlstring(L, name, modlen),
                 lua_pushlstring(L, nul + 1, len - modlen - 1));
    lua_remove(L, -2);
  }
}

static void dec_function(lfb_dec *d, lua_State *L) {
  unsigned fl = lfb_dec_u8(d), inl = fl & 1u, allenv = (fl >> 1) & 1u;
  const char *code;
  size_t len;
  blob *b = NULL;
  if (inl) {
    len = lfb_dec_u32(d);
    code = take_or_raise(L, d, len);
  } else {
    memcpy(&b, take_or_raise(L, d, sizeof b), sizeof b);
    code = b->data;
    len = b->len;
  }
  unsigned nups = lfb_dec_u8(d);
  if (allenv && b) { /* the state's own copy, loaded once */
    lua_rawgetp(L, LUA_REGISTRYINDEX, lfb_LOADED);
    if (lua_rawgetp(L, -1, b) == LUA_TUSERDATA) {
      lua_getiuservalue(L, -1, 1);
      lua_replace(L, -3);
      lua_pop(L, 1);
      return;
    }
    lua_pop(L, 1);
    lfb_ctx *ctx = state_ctx(L);
    if (++ctx->nloaded > 1000) { /* bound the cache: start afresh */
      lua_pop(L, 1);
      lua_newtable(L);
      lua_pushvalue(L, -1);
      lua_rawsetp(L, LUA_REGISTRYINDEX, lfb_LOADED);
      ctx->nloaded = 1;
    }
  }
  if (luaL_loadbufferx(L, code, len, "=?", "b") != LUA_OK) lua_error(L);
  if (allenv) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    for (unsigned i = 1; i <= nups; i++) {
      lua_pushvalue(L, -1);
      lua_setupvalue(L, -3, (int)i);
    }
    lua_pop(L, 1);
    if (b) { /* loaded -> box keeps the blob alive while cached */
      push_blob_box(L, b);
      lua_pushvalue(L, -2);
      lua_setiuservalue(L, -2, 1);
      lua_rawsetp(L, -3, b);
      lua_remove(L, -2);
    }
    return;
  }
  ref_store(d, L);
  int fn = lua_gettop(L);
  for (unsigned i = 1; i <= nups; i++) {
    lfb_dec_value(d, L);
    if (lua_setupvalue(L, fn, (int)i) == NULL) lua_pop(L, 1);
  }
}

void lfb_dec_value(lfb_dec *d, lua_State *L) {
  luaL_checkstack(L, 8, "value nested too deep");
  LFB_STACK_BEGIN(L);
  dec_one(d, L);
  LFB_STACK_CHECK(L, 1);
}

static void dec_one(lfb_dec *d, lua_State *L) {
  unsigned tag = lfb_dec_u8(d);
  switch (tag) {
    case T_NIL:
      lua_pushnil(L);
      break;
    case T_FALSE:
    case T_TRUE:
      lua_pushboolean(L, tag == T_TRUE);
      break;
    case T_SMALLINT: {
      int32_t v;
      memcpy(&v, take_or_raise(L, d, 4), 4);
      lua_pushinteger(L, v);
      break;
    }
    case T_INT: {
      int64_t v;
      memcpy(&v, take_or_raise(L, d, 8), 8);
      lua_pushinteger(L, (lua_Integer)v);
      break;
    }
    case T_FLT: {
      double v;
      memcpy(&v, take_or_raise(L, d, 8), 8);
      lua_pushnumber(L, v);
      break;
    }
    case T_STR8:
    case T_STR: {
      d->pos--;
      size_t len;
      const char *s = dec_string(L, d, &len);
      lua_pushlstring(L, s, len);
      break;
    }
    case T_TABLE: {
      uint32_t narr = lfb_dec_u32(d), nhash = lfb_dec_u32(d);
      lua_createtable(L, (int)(narr < 1u << 26 ? narr : 0),
                      (int)(nhash < 1u << 26 ? nhash : 0));
      ref_store(d, L);
      int t = lua_gettop(L);
      for (uint32_t i = 1; i <= narr; i++) {
        lfb_dec_value(d, L);
        lua_rawseti(L, t, (lua_Integer)i);
      }
      for (uint32_t i = 0; i < nhash; i++) {
        lfb_dec_value(d, L);
        lfb_dec_value(d, L);
        lua_rawset(L, t);
      }
      unsigned meta = lfb_dec_u8(d);
      if (meta == M_NAMED) {
        size_t len;
        const char *s = dec_string(L, d, &len);
        push_named(L, s, len);
        lua_setmetatable(L, t);
      } else if (meta == M_COPY) {
        lfb_dec_value(d, L);
        lua_setmetatable(L, t);
      }
      break;
    }
    case T_REF: {
      uint32_t id = lfb_dec_u32(d);
      if (d->refs == 0 || lua_rawgeti(L, d->refs, id) == LUA_TNIL)
        luaL_error(L, "corrupt payload");
      break;
    }
    case T_FUNC:
      dec_function(d, L);
      break;
    case T_ENV:
      lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
      break;
    case T_CFUNC:
    case T_NAMED: {
      size_t len;
      const char *s = dec_string(L, d, &len);
      push_named(L, s, len);
      break;
    }
    case T_LIGHT: {
      void *ptr;
      memcpy(&ptr, take_or_raise(L, d, sizeof ptr), sizeof ptr);
      lua_pushlightuserdata(L, ptr);
      break;
    }
    case T_FUTURE:
    case T_EXEC: {
      void *ptr;
      memcpy(&ptr, take_or_raise(L, d, sizeof ptr), sizeof ptr);
      if (tag == T_FUTURE)
        lfb_future_push(L, ptr);
      else
        lfb_executor_push(L, ptr);
      break;
    }
    default:
      luaL_error(L, "corrupt payload");
  }
}

static void skip_string(lfb_dec *d) {
  unsigned tag = lfb_dec_u8(d);
  take(d, tag == T_STR8 ? lfb_dec_u8(d) : lfb_dec_u32(d));
}

void lfb_dec_skip(lfb_dec *d) {
  unsigned tag = lfb_dec_u8(d);
  switch (tag) {
    case T_SMALLINT: take(d, 4); break;
    case T_INT:
    case T_FLT: take(d, 8); break;
    case T_STR8:
    case T_STR: d->pos--; skip_string(d); break;
    case T_TABLE: {
      uint32_t narr = lfb_dec_u32(d), nhash = lfb_dec_u32(d);
      for (uint32_t i = 0; i < narr; i++) lfb_dec_skip(d);
      for (uint32_t i = 0; i < 2 * nhash; i++) lfb_dec_skip(d);
      unsigned meta = lfb_dec_u8(d);
      if (meta == M_NAMED) skip_string(d);
      else if (meta == M_COPY) lfb_dec_skip(d);
      break;
    }
    case T_REF: take(d, 4); break;
    case T_FUNC: {
      unsigned fl = lfb_dec_u8(d), allenv = (fl >> 1) & 1u;
      if (fl & 1u) take(d, lfb_dec_u32(d));
      else take(d, sizeof(void *));
      unsigned nups = lfb_dec_u8(d);
      if (!allenv)
        for (unsigned i = 0; i < nups; i++) lfb_dec_skip(d);
      break;
    }
    case T_CFUNC:
    case T_NAMED: skip_string(d); break;
    case T_FUTURE:
    case T_EXEC:
    case T_LIGHT: take(d, sizeof(void *)); break;
    default: break;
  }
}

const char *lfb_dec_peek_type(const lfb_dec *d) {
  if (d->pos >= d->p->len) return "nil";
  switch ((unsigned char)d->p->data[d->pos]) {
    case T_NIL: return "nil";
    case T_FALSE:
    case T_TRUE: return "boolean";
    case T_INT:
    case T_SMALLINT:
    case T_FLT: return "number";
    case T_STR8:
    case T_STR: return "string";
    case T_FUNC:
    case T_CFUNC: return "function";
    case T_FUTURE:
    case T_EXEC:
    case T_LIGHT: return "userdata";
    default: return "table";
  }
}
