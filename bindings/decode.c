/*
 * decode.c -- bytes to Lua values (the codec's decoder; codec.h has the map
 * of its parts).
 *
 * The decoder rebuilds what encode.c wrote: shared references and cycles
 * through the refs slot (at d->refs on the caller's stack: the first
 * value, or from the second on an id -> value table),
 * functions from their blob (loaded once per state and kept in registry
 * lfb_LOADED) or from inline bytecode, names through names.c, handles
 * through handles.c. Decoding may raise.
 *
 * It trusts no byte: payloads also come from other processes (and, later,
 * from a network). Every read is bounded by the bytes that remain, and a
 * read past the end is an error, never a nil; a count is checked against
 * what the remaining bytes could hold before anything is sized by it, and
 * all tables of one payload together pre-size no more slots than it has
 * bytes; nesting stops at the encoder's own limit (LFB_MAXDEPTH), so the C
 * stack is bounded; an object index must name one of the payload's own
 * objects, and a remote decode (lfb_dec_init_remote) refuses those tags
 * outright, with strings and bytecode bounded by LUAFUTURES_MAX_MESSAGE.
 * Whatever is wrong raises `TransferError: corrupt payload (<what>)`.
 *
 * Lua has no bytecode verifier: inline bytecode is checked by Lua's loader
 * for its structure only, so a function from another process is as
 * trustworthy as that process (docs/decisions.md).
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define LFB_CODEC_PARTS
#include "lfb.h"

/* ---- the size limit -------------------------------------------------------- */

static size_t max_message = (size_t)1 << 30;
static pthread_once_t max_once = PTHREAD_ONCE_INIT;

/* LUAFUTURES_MAX_MESSAGE: bytes, or with a K, M or G suffix (powers of
 * 1024); anything else leaves the default of 1 GiB. */
static void read_max(void) {
  const char *s = getenv("LUAFUTURES_MAX_MESSAGE");
  if (s == NULL || *s == '\0') return;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  int shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
  if (shift) end++;
  if (*end != '\0' || v == 0 || v > (~0ull >> 34)) return;
  max_message = (size_t)(v << shift);
}

/* The largest string a remote payload may hold, and the size a message
 * from another process may have: LUAFUTURES_MAX_MESSAGE bytes (K, M, G
 * suffixes), default 1 GiB. Read once. */
static size_t message_limit(void) {
  pthread_once(&max_once, read_max);
  return max_message;
}

/* ---- reading ---------------------------------------------------------------- */

static void dec_one(lfb_dec *d, lua_State *L);

/* lf_payload_oom() (no bytes) reads as a task that raised Lua's own memory
 * error; built once in static memory, since memory is what ran out. */
static _Alignas(8) char oom_bytes[64];
static void build_oom(void) {
  lfb_enc e;
  lfb_enc_init(&e, NULL); /* its inline buffer: nothing allocated */
  lfb_enc_u32(&e, 1); /* one outcome, as lfb_error_payload: a map chunk's */
  lfb_enc_u8(&e, 0);  /* failed as a whole */
  lfb_enc_str(&e, "not enough memory", 17);
  lfb_enc_u8(&e, T_NIL); /* no traceback */
  lf_payload *p = (lf_payload *)oom_bytes;
  p->len = (uint32_t)e.len;
  memcpy(p->data, e.buf, e.len);
}

static void init(lfb_dec *d, const lf_payload *p, int remote) {
  if (p == lf_payload_oom()) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, build_oom);
    p = (const lf_payload *)oom_bytes;
  }
  d->p = p;
  d->pos = 0;
  d->refs = 0;
  d->nrefs = 0;
  d->remote = remote;
  d->bad = 0;
  d->depth = 0;
  d->budget = p->len;
  d->ctx = NULL;
}

/* A payload that owns no objects may be bytes from another process (a
 * result read from a worker's socket is decoded by the same code as a
 * thread worker's): the bytes cannot tell, so it is held to the remote
 * rules. For one made here that only matters to a string over the limit or
 * a copied metatable with a named C function as __gc. */
void lfb_dec_init(lfb_dec *d, const lf_payload *p) {
  init(d, p, p->nobjs == 0);
}
void lfb_dec_init_remote(lfb_dec *d, const lf_payload *p) { init(d, p, 1); }

static size_t left(const lfb_dec *d) { return d->p->len - d->pos; }

static int corrupt(lua_State *L, const char *what) {
  return lfb_raise(L, "TransferError", "corrupt payload (%s)", what);
}

static const char *take(lfb_dec *d, size_t n) {
  if (d->pos > d->p->len || n > left(d)) {
    d->bad = 1;
    d->pos = d->p->len;
    return NULL;
  }
  const char *s = d->p->data + d->pos;
  d->pos += n;
  return s;
}

static const char *take_or_raise(lua_State *L, lfb_dec *d, size_t n) {
  const char *s = take(d, n);
  if (s == NULL || d->bad) corrupt(L, "truncated"); /* or its length was */
  return s;
}

unsigned lfb_dec_u8(lfb_dec *d) {
  const char *s = take(d, 1);
  return s ? (unsigned char)*s : 0;
}

/* Past the end, a count no payload can satisfy: the caller's next value
 * read raises (d->bad) instead of a short payload passing for an empty
 * one. */
uint32_t lfb_dec_u32(lfb_dec *d) {
  uint32_t v = UINT32_MAX;
  const char *s = take(d, 4);
  if (s) memcpy(&v, s, 4);
  return v;
}

static uint32_t count_or_raise(lua_State *L, lfb_dec *d, size_t each) {
  uint32_t n = lfb_dec_u32(d);
  if (d->bad) corrupt(L, "truncated");
  if (n > left(d) / each) corrupt(L, "a count larger than the payload");
  return n;
}

uint32_t lfb_dec_count(lfb_dec *d, lua_State *L) {
  return count_or_raise(L, d, 1);
}

/* The runtime object whose index comes next: one the payload holds. */
static lf_obj *payload_obj(lua_State *L, lfb_dec *d, const char *what) {
  if (d->remote) corrupt(L, what);
  uint32_t i = lfb_dec_u32(d);
  if (d->bad) corrupt(L, "truncated");
  if (i >= d->p->nobjs) corrupt(L, "object index out of range");
  return lf_payload_objs(d->p)[i];
}

/* The refs slot holds the first reference itself, and a table only from
 * the second on: a task whose one closure is its only reference (the
 * usual submit of a closure) makes no table. */
static void ref_store(lfb_dec *d, lua_State *L) {
  if (d->refs == 0) return; /* the caller expects no shared references */
  if (d->nrefs == 0) {
    lua_pushvalue(L, -1);
    lua_replace(L, d->refs);
    d->nrefs = 1;
    return;
  }
  if (d->nrefs == 1) {
    lua_createtable(L, 4, 0);
    lua_pushvalue(L, d->refs);
    lua_rawseti(L, -2, 1);
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
    corrupt(L, d->bad ? "truncated" : "a string expected");
  if (d->remote && *len > message_limit())
    corrupt(L, "a string over LUAFUTURES_MAX_MESSAGE");
  return take_or_raise(L, d, *len);
}

/* ---- functions -------------------------------------------------------------- */

/* The upvalues of the function on top, as the bytes give them. */
static void dec_upvalues(lfb_dec *d, lua_State *L, unsigned nups) {
  int fn = lua_gettop(L);
  for (unsigned i = 1; i <= nups; i++) {
    if (d->pos < d->p->len && (unsigned char)d->p->data[d->pos] == T_ENV) {
      d->pos++; /* the receiver's globals, only ever as an upvalue */
      lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    } else {
      lfb_dec_value(d, L);
    }
    lua_setupvalue(L, fn, (int)i); /* never fails: nups was checked */
  }
}

/* Loads the bytecode and checks its upvalue count against the payload's,
 * so that setting them can neither fail nor leave values on the stack. */
static void load_code(lua_State *L, const char *code, size_t len,
                      unsigned nups) {
  int rc = luaL_loadbufferx(L, code, len, "=?", "b");
  if (rc == LUA_ERRSYNTAX && lua_type(L, -1) == LUA_TSTRING)
    corrupt(L, lua_tostring(L, -1)); /* Lua's loader found it malformed */
  if (rc != LUA_OK) lua_error(L);
  lua_Debug ar;
  lua_pushvalue(L, -1);
  lua_getinfo(L, ">u", &ar);
  if (ar.nups != nups) corrupt(L, "wrong upvalue count");
}

/* A function whose upvalues are all _ENV, from a blob: the state's own copy,
 * loaded once. Pushes it. */
static void dec_shared_function(lfb_dec *d, lua_State *L, lfb_blob *b,
                                unsigned nups) {
  if (lfb_loaded_get(L, d->ctx, b)) return;
  load_code(L, b->data, b->len, nups);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  for (unsigned i = 1; i <= nups; i++) {
    lua_pushvalue(L, -1);
    lua_setupvalue(L, -3, (int)i);
  }
  lua_pop(L, 1);
  lfb_loaded_put(L, d->ctx, b);
}

/* A new closure of a blob's function with nil upvalues, from the state's
 * factory for it (closure.c): the prototype is loaded once. Returns 0 when
 * there is no factory, and the caller loads the code. */
static int dec_closure(lfb_dec *d, lua_State *L, lfb_blob *b, unsigned nups) {
  if (nups != (unsigned)b->nups) return 0; /* load_code says it is corrupt */
  if (!lfb_loaded_get(L, d->ctx, b)) {
    if (lfb_closure_factory(L, b) != 0) return 0;
    lfb_loaded_put(L, d->ctx, b);
  }
  lua_call(L, 0, 1);
  return 1;
}

static void dec_function(lfb_dec *d, lua_State *L) {
  unsigned fl = lfb_dec_u8(d), inl = fl & 1u, allenv = (fl >> 1) & 1u;
  const char *code;
  size_t len;
  lfb_blob *b = NULL;
  if (fl > 3u) corrupt(L, d->bad ? "truncated" : "function flags");
  if (inl) {
    len = lfb_dec_u32(d);
    if (d->remote && len > message_limit())
      corrupt(L, "bytecode over LUAFUTURES_MAX_MESSAGE");
    code = take_or_raise(L, d, len);
    const char *why = lfb_bytecode_check(code, len); /* made elsewhere */
    if (why) corrupt(L, why);
  } else {
    b = (lfb_blob *)payload_obj(L, d, "a function blob from another process");
    if (!lfb_blob_is(&b->obj)) corrupt(L, "not a function blob");
    code = b->data;
    len = b->len;
  }
  unsigned nups = lfb_dec_u8(d);
  if (d->bad) corrupt(L, "truncated");
  if (allenv && b) {
    dec_shared_function(d, L, b, nups);
    return;
  }
  if (b && !allenv && dec_closure(d, L, b, nups)) {
    ref_store(d, L);
    dec_upvalues(d, L, nups);
    return;
  }
  load_code(L, code, len, nups);
  if (allenv) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    for (unsigned i = 1; i <= nups; i++) {
      lua_pushvalue(L, -1);
      lua_setupvalue(L, -3, (int)i);
    }
    lua_pop(L, 1);
    return;
  }
  ref_store(d, L);
  dec_upvalues(d, L, nups);
}

/* ---- tables ------------------------------------------------------------------ */

/* Pushes a name "mod\0field" as people write it, "mod.field". */
static const char *push_dotted(lua_State *L, const char *s, size_t len) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < len; i++) luaL_addchar(&b, s[i] ? s[i] : '.');
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* The metatable of the table at t: by name (the receiver's own value,
 * which must be a table here too) or copied. */
static void dec_metatable(lfb_dec *d, lua_State *L, int t) {
  unsigned meta = lfb_dec_u8(d);
  if (meta == M_NONE) {
    if (d->bad) corrupt(L, "truncated");
    return;
  }
  if (meta == M_NAMED) {
    size_t len;
    const char *s = dec_string(L, d, &len);
    lfb_names_resolve(L, s, len);
    if (!lua_istable(L, -1))
      lfb_raise(L, "TransferError",
                "cannot transfer metatable '%s': a %s in this state, not a "
                "table", push_dotted(L, s, len), luaL_typename(L, -1));
  } else if (meta == M_COPY) {
    lfb_dec_value(d, L);
    if (!lua_istable(L, -1)) corrupt(L, "a metatable that is not a table");
    /* A finalizer would run here unasked, whenever the value is collected:
     * code from another process must be called, never just arrive. */
    if (d->remote) {
      lua_pushliteral(L, "__gc");
      int gc = lua_rawget(L, -2) != LUA_TNIL;
      lua_pop(L, 1);
      if (gc)
        lfb_raise(L, "TransferError", "cannot transfer a copied metatable "
                  "with __gc from another process");
    }
  } else {
    corrupt(L, "metatable kind");
  }
  lua_setmetatable(L, t);
}

/* An array's number, the common element, without lfb_dec_value's checks:
 * the table's own level made room on the stack for it. 0 when the next
 * value is not a whole number (lfb_dec_value then reads it). */
static int dec_number(lfb_dec *d, lua_State *L) {
  if (d->bad || d->pos > d->p->len || left(d) < 9) return 0;
  const unsigned char *s = (const unsigned char *)d->p->data + d->pos;
  if (s[0] == T_FLT) {
    double v;
    memcpy(&v, s + 1, 8);
    lua_pushnumber(L, v);
    d->pos += 9;
    return 1;
  }
  if (s[0] == T_SMALLINT) {
    int32_t v;
    memcpy(&v, s + 1, 4);
    lua_pushinteger(L, v);
    d->pos += 5;
    return 1;
  }
  return 0;
}

static void dec_table(lfb_dec *d, lua_State *L) {
  uint32_t narr = count_or_raise(L, d, 1), nhash = count_or_raise(L, d, 2);
  /* Pre-size from the counts, but all tables together by no more than the
   * payload's bytes: counts that lie cost no more memory than bytes. */
  uint32_t pa = narr < d->budget ? narr : (uint32_t)d->budget;
  d->budget -= pa;
  uint32_t ph = nhash < d->budget ? nhash : (uint32_t)d->budget;
  d->budget -= ph;
  lua_createtable(L, (int)(pa < 1u << 26 ? pa : 0),
                  (int)(ph < 1u << 26 ? ph : 0));
  ref_store(d, L);
  int t = lua_gettop(L);
  for (uint32_t i = 1; i <= narr; i++) {
    if (!dec_number(d, L)) lfb_dec_value(d, L);
    lua_rawseti(L, t, (lua_Integer)i);
  }
  for (uint32_t i = 0; i < nhash; i++) {
    lfb_dec_value(d, L);
    if (lua_isnil(L, -1) ||
        (lua_type(L, -1) == LUA_TNUMBER && isnan(lua_tonumber(L, -1))))
      corrupt(L, "a nil or NaN key");
    lfb_dec_value(d, L);
    lua_rawset(L, t);
  }
  dec_metatable(d, L, t);
}

/* ---- values ------------------------------------------------------------------ */

void lfb_dec_value(lfb_dec *d, lua_State *L) {
  if (d->bad) corrupt(L, "truncated");
  if (!lua_checkstack(L, 8)) corrupt(L, "nested too deep");
  LFB_STACK_BEGIN(L);
  dec_one(d, L);
  LFB_STACK_CHECK(L, 1);
}

/* A Shared sent inline (from another process, or for one): the bytes are
 * only copied here; they are decoded, by the remote rules, when get() is
 * first called. */
static void dec_shared(lfb_dec *d, lua_State *L) {
  uint64_t id;
  memcpy(&id, take_or_raise(L, d, 8), 8);
  uint32_t len = count_or_raise(L, d, 1);
  if (len > message_limit()) corrupt(L, "a Shared over LUAFUTURES_MAX_MESSAGE");
  const char *bytes = take_or_raise(L, d, len);
  lfb_shared_push_remote(L, id, bytes, len);
}

/* A Shared by id, for a process worker: its bytes come from the pool the
 * first time (shared.c). */
static void dec_shared_id(lfb_dec *d, lua_State *L) {
  uint64_t id;
  memcpy(&id, take_or_raise(L, d, 8), 8);
  uint32_t len = lfb_dec_u32(d);
  if (d->bad) corrupt(L, "truncated");
  if (len > message_limit()) corrupt(L, "a Shared over LUAFUTURES_MAX_MESSAGE");
  lfb_shared_push_id(L, id, len);
}

static void dec_scalar(lfb_dec *d, lua_State *L, unsigned tag) {
  switch (tag) {
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
    default: { /* T_FLT */
      double v;
      memcpy(&v, take_or_raise(L, d, 8), 8);
      lua_pushnumber(L, v);
      break;
    }
  }
}

static void dec_one(lfb_dec *d, lua_State *L) {
  unsigned tag = lfb_dec_u8(d);
  if (d->bad) corrupt(L, "truncated");
  switch (tag) {
    case T_NIL: lua_pushnil(L); break;
    case T_FALSE:
    case T_TRUE: lua_pushboolean(L, tag == T_TRUE); break;
    case T_SMALLINT:
    case T_INT:
    case T_FLT: dec_scalar(d, L, tag); break;
    case T_STR8:
    case T_STR: {
      d->pos--;
      size_t len;
      const char *s = dec_string(L, d, &len);
      lua_pushlstring(L, s, len);
      break;
    }
    case T_TABLE:
    case T_FUNC:
      if (++d->depth > LFB_MAXDEPTH) corrupt(L, "nested too deep");
      if (tag == T_TABLE)
        dec_table(d, L);
      else
        dec_function(d, L);
      d->depth--;
      break;
    case T_REF: {
      uint32_t id = lfb_dec_u32(d);
      if (d->bad) corrupt(L, "truncated");
      if (d->refs == 0 || id == 0 || id > (uint32_t)d->nrefs)
        corrupt(L, "a reference to nothing");
      if (d->nrefs == 1)
        lua_pushvalue(L, d->refs);
      else
        lua_rawgeti(L, d->refs, id);
      break;
    }
    case T_CFUNC:
    case T_NAMED: {
      size_t len;
      const char *s = dec_string(L, d, &len);
      lfb_names_resolve(L, s, len);
      break;
    }
    case T_HANDLE: {
      const lfb_handle_type *h = lfb_handle_by_tag(lfb_dec_u8(d));
      if (d->remote) corrupt(L, "a handle from another process");
      if (h == NULL) corrupt(L, "unknown handle class");
      h->push(L, payload_obj(L, d, "a handle from another process"));
      break;
    }
    case T_SHARED: dec_shared(d, L); break;
    case T_SHARED_ID: dec_shared_id(d, L); break;
    default:
      corrupt(L, "unknown tag");
  }
}

/* ---- a protected decode --------------------------------------------------- */

typedef struct pargs {
  lfb_dec *d;
  int n;
} pargs;

static int pdecode(lua_State *L) { /* args refs */
  pargs *a = lua_touserdata(L, 1);
  if (a->d->refs) a->d->refs = 2;
  if (!lua_checkstack(L, a->n + 8)) corrupt(L, "too many values");
  for (int i = 0; i < a->n; i++) lfb_dec_value(a->d, L);
  return lua_gettop(L) - 1; /* refs and the values */
}

int lfb_dec_protected(lfb_dec *d, lua_State *L, int n) {
  int saved = d->refs;
  if (!lua_checkstack(L, n + 8)) {
    lua_pushliteral(L, "stack overflow (too many values)");
    return LUA_ERRMEM;
  }
  int base = lua_gettop(L) + 1;
  lua_pushcfunction(L, pdecode);
  pargs a = {d, n};
  lua_pushlightuserdata(L, &a);
  if (saved) lua_pushvalue(L, saved);
  else lua_pushnil(L);
  int rc = lua_pcall(L, 2, LUA_MULTRET, 0);
  d->refs = saved;
  if (rc != LUA_OK) return rc;
  if (saved) lua_copy(L, base, saved); /* the refs table it may have made */
  lua_remove(L, base);
  return 0;
}

/* ---- skipping ---------------------------------------------------------------- */

static void skip_string(lfb_dec *d) {
  unsigned tag = lfb_dec_u8(d);
  if (tag != T_STR8 && tag != T_STR) d->bad = 1;
  else take(d, tag == T_STR8 ? lfb_dec_u8(d) : lfb_dec_u32(d));
}

static void skip(lfb_dec *d) {
  unsigned tag = lfb_dec_u8(d);
  if (d->bad) return;
  switch (tag) {
    case T_NIL: case T_FALSE: case T_TRUE: break;
    case T_SMALLINT: take(d, 4); break;
    case T_INT:
    case T_FLT: take(d, 8); break;
    case T_STR8:
    case T_STR: d->pos--; skip_string(d); break;
    case T_TABLE: {
      if (++d->depth > LFB_MAXDEPTH) { d->bad = 1; return; }
      uint32_t narr = lfb_dec_u32(d), nhash = lfb_dec_u32(d);
      for (uint32_t i = 0; i < narr && !d->bad; i++) skip(d);
      for (uint32_t i = 0; i < nhash && !d->bad; i++) { skip(d); skip(d); }
      unsigned meta = lfb_dec_u8(d);
      if (meta == M_NAMED) skip_string(d);
      else if (meta == M_COPY) skip(d);
      else if (meta != M_NONE) d->bad = 1;
      d->depth--;
      break;
    }
    case T_REF: take(d, 4); break;
    case T_FUNC: {
      if (++d->depth > LFB_MAXDEPTH) { d->bad = 1; return; }
      unsigned fl = lfb_dec_u8(d), allenv = (fl >> 1) & 1u;
      take(d, (fl & 1u) ? lfb_dec_u32(d) : 4);
      unsigned nups = lfb_dec_u8(d);
      if (!allenv)
        for (unsigned i = 0; i < nups && !d->bad; i++) skip(d);
      d->depth--;
      break;
    }
    case T_ENV: break;
    case T_CFUNC:
    case T_NAMED: skip_string(d); break;
    case T_HANDLE: take(d, 5); break;
    case T_SHARED: take(d, 8); take(d, lfb_dec_u32(d)); break;
    case T_SHARED_ID: take(d, 12); break;
    default: d->bad = 1;
  }
}

int lfb_dec_skip(lfb_dec *d) {
  skip(d);
  if (d->bad) d->pos = d->p->len; /* whatever reads next fails */
  return d->bad ? -1 : 0;
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
    case T_HANDLE:
    case T_SHARED:
    case T_SHARED_ID: return "userdata";
    default: return "table";
  }
}
