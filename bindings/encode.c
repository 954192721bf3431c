/*
 * encode.c -- Lua values to bytes (the codec's encoder; codec.h has the
 * map of its parts).
 *
 * Values are copied, never shared. One encode has one reference cache, so a
 * table met twice (or a cycle) is written once and referred to by number;
 * the decoder rebuilds the same shape. A Lua function travels as a
 * reference-counted blob of its bytecode (debug info kept) plus its
 * upvalues (blob.c); the sender keeps one blob per closure and each
 * receiving state keeps the function it loaded from a blob, so a
 * function is dumped and loaded once, not once per task. For another
 * process the bytecode is written inline instead. Module tables and C
 * functions travel by their name in package.loaded (names.c); metatables
 * too when they have one. Handles are rows of handles.c.
 *
 * Encoding never raises: it frees nothing of the caller's and reports a
 * failure in e->err (naming the value's path), so the caller can release
 * what it holds before raising. The Lua calls it makes (the names index,
 * the blob cache, the proxies) may raise for memory, so each value is
 * encoded in a protected frame of its own (penc).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LFB_CODEC_PARTS
#include "lfb.h"

/* The recursion runs enc -> enc_table -> enc once a level, 10,000 levels
 * deep: what has buffers of its own stays out of line, so those two frames
 * stay small (about 100 bytes, a few hundred with AddressSanitizer). */
#define LFB_NOINLINE __attribute__((noinline))

enum { P_FIELD, P_INDEX, P_UPVAL, P_KEY, P_META };


/* ---- encoder -------------------------------------------------------------- */

void lfb_enc_init(lfb_enc *e, lua_State *L) {
  e->buf = e->ibuf;
  e->len = 0;
  e->cap = sizeof e->ibuf;
  e->objs = e->iobjs;
  e->nobjs = 0;
  e->capobjs = sizeof e->iobjs / sizeof e->iobjs[0];
  e->rkeys = e->irkeys;
  e->rids = e->irids;
  e->rcap = 0;
  e->nrefs = 0;
  e->names_checked = 0;
  e->depth = 0;
  e->flags = 0;
  e->handles_ok = 1;
  e->ctx = NULL;
  e->shared_by_id = 0;
  e->what = "argument";
  e->argno = 0;
  e->err[0] = '\0';
  e->nomem = 0;
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
  e->nomem = 1;
  snprintf(e->err, sizeof e->err, "not enough memory");
  return -1;
}

/* Room for n more bytes: the common case here, growing in encbuf.c. */
static inline int reserve(lfb_enc *e, size_t n) {
  return e->len + n <= e->cap ? 0 : lfb_enc_grow(e, n);
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
void lfb_enc_raw(lfb_enc *e, const void *p, size_t n) { put(e, p, n); }
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
LFB_NOINLINE static int fail(lfb_enc *e, lua_State *L, const char *reason) {
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

/* Pushes the name of the value at idx, or nil. On a first miss in this
 * encode, package.loaded is checked for a change (a module loaded, or
 * loaded anew, since the index was built) and the index rebuilt if so:
 * nothing runs during an encode, so once is enough. */
static void push_name(lfb_enc *e, lua_State *L, int idx, int refresh) {
  lfb_names_lookup(L, e->names, idx, refresh);
  if (lua_isnil(L, -1) && !refresh && !e->names_checked) {
    e->names_checked = 1;
    if (lfb_names_stale(L)) {
      lua_pop(L, 1);
      lfb_names_lookup(L, e->names, idx, 1);
    }
  }
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

/* A number: a tag and 4 or 8 bytes, written in one step. */
static int enc_number(lfb_enc *e, lua_State *L, int idx) {
  if (reserve(e, 9) != 0) return oom(e);
  e->len += lfb_put_number(L, idx, (unsigned char *)e->buf + e->len);
  return 0;
}

/* The value on top as the table's element i. */
static int enc_index(lfb_enc *e, lua_State *L, lua_Unsigned i) {
  if (lua_type(L, -1) == LUA_TNUMBER) return enc_number(e, L, -1);
  path_push(e, P_INDEX, (int)i);
  if (enc(e, L, lua_gettop(L)) != 0) return -1;
  e->npath--;
  return 0;
}

/* Elements from..narr of the table at idx, read by index. */
static int enc_indices(lfb_enc *e, lua_State *L, int idx, lua_Unsigned from,
                       lua_Unsigned narr) {
  for (lua_Unsigned i = from; i <= narr; i++) {
    lua_rawgeti(L, idx, (lua_Integer)i);
    int rc = enc_index(e, L, i);
    lua_pop(L, 1);
    if (rc != 0) return rc;
  }
  return 0;
}

static int enc_table(lfb_enc *e, lua_State *L, int idx) {
  /* A module goes by name (and takes no reference number). */
  push_name(e, L, idx, 0);
  if (lua_isstring(L, -1) && strlen(lua_tostring(L, -1)) == lua_rawlen(L, -1))
    return enc_named(e, L, T_NAMED);
  lua_pop(L, 1);
  int id = lfb_enc_ref(e, lua_topointer(L, idx));
  if (id < 0) return oom(e);
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
  /* One traversal writes 1..narr and then the other pairs. lua_next gives
   * the array part first, in order, so while its keys run 1, 2, 3 ... the
   * values are written as they come; at the first key out of that run the
   * indices not yet written are read by index, and the rest of the
   * traversal writes only the pairs outside 1..narr. */
  lua_Unsigned next = 1; /* the first index not written; past narr: all */
  int inrun = 1;
  uint32_t nhash = 0;
  /* A long array is written in one buffer, sized for numbers, not grown
   * and copied on the way (failing here only means growing as it goes). */
  if (narr >= 1024 && narr < UINT32_MAX / 9) reserve(e, 9 * (size_t)narr);
  int k = lua_gettop(L) + 1; /* where lua_next leaves each key */
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int isint = lua_isinteger(L, k);
    lua_Unsigned ki = isint ? (lua_Unsigned)lua_tointeger(L, k) : 0;
    if (inrun) {
      if (isint && ki == next && next <= narr) {
        int rc = enc_index(e, L, next++);
        lua_pop(L, 1);
        if (rc != 0) return rc;
        continue;
      }
      inrun = 0;
      if (enc_indices(e, L, idx, next, narr) != 0) return -1;
    }
    if (isint && ki >= 1 && ki <= narr) {
      lua_pop(L, 1);
      continue;
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
  if (inrun && enc_indices(e, L, idx, next, narr) != 0) return -1;
  if (e->len >= at + 4) memcpy(e->buf + at, &nhash, 4);
  if (!lua_getmetatable(L, idx)) {
    lfb_enc_u8(e, M_NONE);
    return 0;
  }
  int mt = lua_gettop(L);
  push_name(e, L, mt, 0);
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

/* The blob of the Lua function at idx. A submit's encoder asks its
 * state's one-entry cache first (a loop submits one function over and
 * over); the registry keeps that function, so its address stays its. */
static lfb_blob *function_blob(lfb_enc *e, lua_State *L, int idx) {
  lfb_ctx *c = e->ctx;
  const void *fp = lua_topointer(L, idx);
  if (c && c->last_fn == fp) return c->last_blob;
  lfb_blob *b = lfb_function_blob(L, idx);
  if (b && c) {
    lua_pushvalue(L, idx);
    lua_rawsetp(L, LUA_REGISTRYINDEX, lfb_LASTFN);
    lfb_last_set(c, fp, b);
  }
  return b;
}

LFB_NOINLINE static int enc_function(lfb_enc *e, lua_State *L, int idx) {
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
  lfb_blob *b = function_blob(e, L, idx);
  if (b == NULL) return oom(e);
  int allenv = b->allenv;
  /* A function whose upvalues are all globals needs no reference number:
   * every receiver resolves it to the one function it loaded. */
  if (!allenv) {
    int id = lfb_enc_ref(e, lua_topointer(L, idx));
    if (id < 0) return oom(e);
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
  if (e->handles_ok) { /* the blob, by its index among the objects */
    lfb_enc_u32(e, e->nobjs);
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

/* A Shared for another process: its id and its bytes, which the receiving
 * process decodes once per id (shared.c). */
static int enc_shared_inline(lfb_enc *e, const lf_obj *o) {
  uint64_t id;
  const lf_payload *p;
  lfb_shared_wire(o, &id, &p);
  lfb_enc_u8(e, T_SHARED);
  put(e, &id, 8);
  lfb_enc_u32(e, (uint32_t)p->len); /* under 4 GiB: a payload's bound */
  put(e, p->data, p->len);
  return 0;
}

/* A Shared for a process worker: its id and length; the payload holds the
 * object, which the pool keeps while the task is out, so the worker can
 * ask for the bytes it lacks (lf_proc_child_need) and get them once. */
static int enc_shared_id(lfb_enc *e, lf_obj *o) {
  uint64_t id;
  const lf_payload *p;
  lfb_shared_wire(o, &id, &p);
  lfb_enc_u8(e, T_SHARED_ID);
  put(e, &id, 8);
  lfb_enc_u32(e, (uint32_t)p->len);
  return add_obj(e, o);
}

/* A handle (a row of handles.c): its class's tag and the index of its
 * runtime object among the payload's objects, which hold a reference. */
LFB_NOINLINE static int enc_handle(lfb_enc *e, lua_State *L, int idx) {
  const lfb_handle_type *h = lfb_handle_of(L, idx);
  if (h == NULL) return fail(e, L, lfb_hint_userdata(L, idx));
  lf_obj *o = h->get ? h->get(L, idx) : NULL;
  if (h->get && o == NULL) return fail(e, L, "userdata"); /* collected */
  if (!e->handles_ok && h->tag == LFB_SHARED_TAG)
    return e->shared_by_id ? enc_shared_id(e, o) : enc_shared_inline(e, o);
  char why[128];
  if (!e->handles_ok || h->get == NULL) {
    snprintf(why, sizeof why,
             e->handles_ok ? "%s (it stays in the state that made it)"
                           : "%s (a handle cannot leave its process)",
             e->handles_ok ? h->mtname : h->what);
    return fail(e, L, why);
  }
  lfb_proxy_remember(L, o, idx);
  lfb_enc_u8(e, T_HANDLE);
  lfb_enc_u8(e, h->tag);
  lfb_enc_u32(e, e->nobjs);
  e->flags |= LFB_HASREFS;
  return add_obj(e, o);
}

/* A light userdata: a host's pointer, for the states of this process. */
static int enc_light(lfb_enc *e, lua_State *L, int idx) {
  if (!e->handles_ok)
    return fail(e, L, "light userdata (a pointer cannot leave its process)");
  lf_obj *o = lfb_light_box(lua_touserdata(L, idx));
  if (o == NULL) return oom(e);
  lfb_enc_u8(e, T_HANDLE);
  lfb_enc_u8(e, LFB_LIGHT_TAG);
  lfb_enc_u32(e, e->nobjs);
  int rc = add_obj(e, o);
  lf_obj_unref(o); /* the payload's reference, if any, keeps it */
  return rc;
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
      return enc_number(e, L, idx);
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      if (len > UINT32_MAX) return fail(e, L, "string too long");
      lfb_enc_str(e, s, len);
      break;
    }
    case LUA_TTABLE:
    case LUA_TFUNCTION: {
      if (++e->depth > LFB_MAXDEPTH) return fail(e, L, "nested too deep");
      if (!lua_checkstack(L, 8)) return fail(e, L, "nested too deep");
      int rc = lua_type(L, idx) == LUA_TTABLE ? enc_table(e, L, idx)
                                              : enc_function(e, L, idx);
      e->depth--;
      if (rc != 0) return rc;
      break;
    }
    case LUA_TUSERDATA:
      return enc_handle(e, L, idx);
    case LUA_TLIGHTUSERDATA:
      return enc_light(e, L, idx);
    default:
      return fail(e, L, luaL_typename(L, idx));
  }
  return e->err[0] ? -1 : 0;
}

/* The encode itself, in a frame of its own (e, value, names index): the
 * Lua calls it makes can raise for memory (the names index, the blob
 * cache, the proxies), and the caller owns e's buffers and references. */
static int penc(lua_State *L) {
  lfb_enc *e = lua_touserdata(L, 1);
  e->names = 3;
  int rc = enc(e, L, 2);
  lua_settop(L, 3);
  lua_pushboolean(L, rc == 0);
  return 2; /* the names index (fetched or built), whether it went well */
}

/* Whether enc of the value at idx makes no Lua call that can raise: a
 * scalar, or the function submitted last (its blob cached) whose upvalues
 * are scalars or _ENV. The common submit takes no protected frame. */
static int cannot_raise(lfb_enc *e, lua_State *L, int idx) {
  int t = lua_type(L, idx);
  if (t == LUA_TNIL || t == LUA_TBOOLEAN || t == LUA_TNUMBER ||
      t == LUA_TSTRING)
    return 1;
  if (t != LUA_TFUNCTION || e->ctx == NULL || e->ctx->last_blob == NULL ||
      e->ctx->last_fn != lua_topointer(L, idx) || !lua_checkstack(L, 2))
    return 0;
  const lfb_ctx *c = e->ctx;
  for (int i = 1; !c->last_allenv && i <= c->last_nups; i++) { /* scalars or _ENV */
    const char *name = lua_getupvalue(L, idx, i);
    int u = lua_type(L, -1);
    lua_pop(L, 1);
    if (u != LUA_TNIL && u != LUA_TBOOLEAN && u != LUA_TNUMBER &&
        u != LUA_TSTRING && !(name && strcmp(name, "_ENV") == 0))
      return 0;
  }
  return 1;
}

int lfb_enc_number(lfb_enc *e, lua_State *L, int idx) {
  return enc_number(e, L, idx);
}

int lfb_enc_value(lfb_enc *e, lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  e->npath = 0;
  if (cannot_raise(e, L, idx)) {
    int top = lua_gettop(L);
    int rc = enc(e, L, idx);
    lua_settop(L, top);
    return rc == 0 && e->err[0] ? -1 : rc;
  }
  int names = e->names, depth = e->depth;
  if (!lua_checkstack(L, 4)) return oom(e);
  lua_pushcfunction(L, penc);
  lua_pushlightuserdata(L, e);
  lua_pushvalue(L, idx);
  if (names) lua_pushvalue(L, names);
  else lua_pushnil(L);
  int st = lua_pcall(L, 3, 2, 0);
  e->names = names;
  if (st != LUA_OK) {
    /* Raised half way: what it appended stays counted in e (the caller
     * frees or rolls back as for any failure). */
    e->depth = depth;
    if (st == LUA_ERRMEM || lua_type(L, -1) != LUA_TSTRING) oom(e);
    else snprintf(e->err, sizeof e->err, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  int rc = lua_toboolean(L, -1) ? 0 : -1;
  if (names) lua_copy(L, -2, names);
  lua_pop(L, 2);
  if (rc == 0 && e->err[0]) rc = -1;
  return rc;
}

void lfb_enc_reset_refs(lfb_enc *e, lua_State *L) {
  (void)L;
  lfb_enc_refs_clear(e);
}
