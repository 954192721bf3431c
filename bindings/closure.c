/*
 * closure.c -- a factory of closures over one prototype, so that a worker
 * loads a function with upvalues once, not once per task.
 *
 * The C API makes a Lua closure only by loading a chunk. For a blob's
 * function with k upvalues (none of them all _ENV: those are shared as they
 * are), this builds a chunk equivalent to
 *     local a1, ..., ak = ... return function() <the blob's body> end
 * by compiling that text with an empty body and putting the blob's own
 * prototype in place of the inner one, its upvalue descriptors rewritten
 * to the k locals. Each call of the loaded chunk then returns a new closure
 * of the one prototype, with k fresh upvalues (nil) that the decoder sets:
 * no bytecode is read again. Blobs come only from this process (lua_dump),
 * and both chunks pass lfb_bytecode_spans first. No state of its own.
 */
#include <stdlib.h>
#include <string.h>

#define LFB_CODEC_PARTS
#include "lfb.h"

/* The template's bytes for k upvalues (malloc'd, *len), or NULL. */
static char *template_dump(lua_State *L, int k, size_t *len) {
  luaL_Buffer src;
  luaL_buffinit(L, &src);
  luaL_addstring(&src, "local a1");
  for (int i = 2; i <= k; i++) lua_pushfstring(L, ",a%d", i), luaL_addvalue(&src);
  luaL_addstring(&src, "=... return function() return a1");
  for (int i = 2; i <= k; i++) lua_pushfstring(L, ",a%d", i), luaL_addvalue(&src);
  luaL_addstring(&src, " end");
  luaL_pushresult(&src);
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  char *t = NULL;
  if (luaL_loadbufferx(L, s, n, "=(closure factory)", "t") == LUA_OK)
    t = lfb_dump(L, -1, 1, len);
  lua_pop(L, 2);
  return t;
}

/* The factory's chunk: the template up to its inner prototype, the blob's
 * prototype with its upvalues pointed at the template's locals, the rest
 * of the template. Malloc'd, or NULL. */
static char *splice(const char *t, size_t tlen, const lfb_spans *ts,
                    const lfb_blob *b, const lfb_spans *bs, size_t *len) {
  size_t k = (size_t)b->nups, rest = bs->upvals + 3 * k;
  *len = ts->child + (b->len - bs->proto) + (tlen - ts->child_end);
  char *out = malloc(*len), *o = out;
  if (out == NULL) return NULL;
  memcpy(o, t, ts->child), o += ts->child;
  memcpy(o, b->data + bs->proto, bs->upvals - bs->proto);
  o += bs->upvals - bs->proto;
  for (size_t i = 0; i < k; i++) { /* in the stack, local i, a plain one */
    *o++ = 1;
    *o++ = (char)i;
    *o++ = 0;
  }
  memcpy(o, b->data + rest, b->len - rest), o += b->len - rest;
  memcpy(o, t + ts->child_end, tlen - ts->child_end);
  return out;
}

int lfb_closure_factory(lua_State *L, const lfb_blob *b) {
  int k = b->nups;
  if (k < 1 || k > 200) return -1; /* 200: Lua's limit of locals */
  size_t tlen = 0, len = 0;
  char *t = template_dump(L, k, &tlen), *out = NULL;
  lfb_spans ts, bs;
  if (t && lfb_bytecode_spans(t, tlen, &ts) == NULL && ts.child != 0 &&
      lfb_bytecode_spans(b->data, b->len, &bs) == NULL)
    out = splice(t, tlen, &ts, b, &bs, &len);
  int ok = out && lfb_bytecode_check(out, len) == NULL;
  if (ok && luaL_loadbufferx(L, out, len, "=?", "b") != LUA_OK) {
    lua_pop(L, 1); /* the loader's message */
    ok = 0;
  }
  free(t);
  free(out);
  return ok ? 0 : -1;
}
