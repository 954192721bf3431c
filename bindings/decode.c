/*
 * decode.c -- bytes to Lua values (the codec's decoder; codec.h has the map
 * of its parts).
 *
 * The decoder rebuilds what encode.c wrote: shared references and cycles
 * through the refs table (id -> value, at d->refs on the caller's stack),
 * functions from their blob (loaded once per state and kept in registry
 * lfb_LOADED) or from inline bytecode, names through names.c, handles
 * through handles.c. Decoding may raise.
 */
#include <string.h>

#define LFB_CODEC_PARTS
#include "lfb.h"

static lfb_ctx *state_ctx(lua_State *L) {
  lfb_ctx *ctx = lfb_ctx_push(L);
  lua_pop(L, 1);
  return ctx;
}

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

/* The runtime object whose index comes next: one the payload holds. */
static lf_obj *payload_obj(lua_State *L, lfb_dec *d) {
  uint32_t i = lfb_dec_u32(d);
  if (i >= d->p->nobjs) luaL_error(L, "corrupt payload");
  return lf_payload_objs(d->p)[i];
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

static void dec_function(lfb_dec *d, lua_State *L) {
  unsigned fl = lfb_dec_u8(d), inl = fl & 1u, allenv = (fl >> 1) & 1u;
  const char *code;
  size_t len;
  lfb_blob *b = NULL;
  if (inl) {
    len = lfb_dec_u32(d);
    code = take_or_raise(L, d, len);
  } else {
    b = (lfb_blob *)payload_obj(L, d);
    if (!lfb_blob_is(&b->obj)) luaL_error(L, "corrupt payload");
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
      lfb_blob_push_box(L, b);
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
        lfb_names_resolve(L, s, len);
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
      lfb_names_resolve(L, s, len);
      break;
    }
    case T_HANDLE: {
      const lfb_handle_type *h = lfb_handle_by_tag(lfb_dec_u8(d));
      if (h == NULL) luaL_error(L, "corrupt payload");
      h->push(L, payload_obj(L, d));
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
      else take(d, 4);
      unsigned nups = lfb_dec_u8(d);
      if (!allenv)
        for (unsigned i = 0; i < nups; i++) lfb_dec_skip(d);
      break;
    }
    case T_CFUNC:
    case T_NAMED: skip_string(d); break;
    case T_HANDLE: take(d, 5); break;
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
    case T_HANDLE: return "userdata";
    default: return "table";
  }
}
