/*
 * encfast.c -- submit's short way (the codec's; codec.h has the map).
 *
 * The common task is the function submitted last, whose blob the context
 * caches, called with a few scalars. Its bytes are written here straight
 * into a buffer on the C stack and then the future's room: no encoder
 * state, no stack slots, no Lua call that can raise. Anything else (a
 * function met for the first time, a table, a handle, upvalues that are
 * not scalars, a process pool, more bytes than fit) takes the encoder's
 * full way, which writes the same bytes: the decoder cannot tell them
 * apart, and spec/encfast_spec.lua checks that both ways agree.
 */
#include <string.h>

#define LFB_CODEC_PARTS
#include "lfb.h"

/* Bytes this way writes at most: beyond, the full way. */
#define FAST_BYTES 128

/* Appends the scalar at idx to out[at..]: the new length, or 0 when the
 * value is not a scalar or does not fit. */
static size_t put_scalar(lua_State *L, int idx, unsigned char *out,
                         size_t at) {
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      if (at + 1 > FAST_BYTES) return 0;
      out[at] = T_NIL;
      return at + 1;
    case LUA_TBOOLEAN:
      if (at + 1 > FAST_BYTES) return 0;
      out[at] = lua_toboolean(L, idx) ? T_TRUE : T_FALSE;
      return at + 1;
    case LUA_TNUMBER:
      if (at + 9 > FAST_BYTES) return 0;
      return at + lfb_put_number(L, idx, out + at);
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      if (len > 255 || at + 2 + len > FAST_BYTES) return 0;
      out[at] = T_STR8;
      out[at + 1] = (unsigned char)len;
      memcpy(out + at + 2, s, len);
      return at + 2 + len;
    }
    default:
      return 0;
  }
}

/* The function's upvalues after its header: _ENV by name, the rest
 * scalars; 0 when one is not. */
static size_t put_upvalues(lua_State *L, int nups, unsigned char *out,
                           size_t at) {
  for (int i = 1; at && i <= nups; i++) {
    const char *name = lua_getupvalue(L, 2, i);
    if (name && strcmp(name, "_ENV") == 0)
      at = at + 1 > FAST_BYTES ? 0 : (out[at] = T_ENV, at + 1);
    else
      at = put_scalar(L, -1, out, at);
    lua_pop(L, 1);
  }
  return at;
}

lf_future *lfb_enc_task_fast(lua_State *L, lfb_ctx *ctx, int top) {
  if (ctx->last_blob == NULL || lua_type(L, 2) != LUA_TFUNCTION ||
      lua_topointer(L, 2) != ctx->last_fn || top - 2 > FAST_BYTES)
    return NULL;
  unsigned char out[FAST_BYTES];
  uint32_t one = 1, blob_index = 0, nargs = (uint32_t)(top - 2);
  memcpy(out, &one, 4);
  out[4] = T_FUNC;
  out[5] = ctx->last_allenv ? 2u : 0u; /* bytecode by reference */
  memcpy(out + 6, &blob_index, 4);
  out[10] = (unsigned char)ctx->last_nups;
  size_t at = 11;
  if (!ctx->last_allenv) at = put_upvalues(L, ctx->last_nups, out, at);
  if (at == 0 || at + 4 > FAST_BYTES) return NULL;
  memcpy(out + at, &nargs, 4);
  at += 4;
  for (int i = 3; at && i <= top; i++) at = put_scalar(L, i, out, at);
  if (at == 0) return NULL;
  /* A function with upvalues takes a reference number, as in the full
   * way, so the payload says it holds references. */
  unsigned flags = (ctx->last_allenv ? 0u : LFB_HASREFS) |
                   (lfb_tracing ? LFB_TRACED : 0u);
  lf_obj *blob = lfb_last_ref(ctx);
  lf_future *f = lf_future_new_task(out, at, &blob, 1, flags);
  if (f == NULL) ctx->last_credit++; /* the full way reports it */
  return f;
}
