/*
 * names.c -- the values that travel by name: modules in package.loaded,
 * their direct fields that are tables, and C functions.
 *
 * The sender keeps an index value -> name per state (registry lfb_NAMES),
 * built on first use and rebuilt when package.loaded has changed size, so
 * a module loaded later is found too. The receiver resolves a name in its
 * own package.loaded, requiring the module when it is not loaded yet: a
 * module table and what it holds are that state's own, never a copy.
 * A name is "mod" or "mod\0field" (the NUL cannot occur in a module name
 * that require accepts from a file).
 */
#include <stdint.h>
#include <string.h>

#define LFB_CODEC_PARTS
#include "lfb.h"

const char lfb_NAMES[] = "luafutures.names";
const char lfb_FNCACHE[] = "luafutures.fncache";
const char lfb_LASTFN[] = "luafutures.lastfn";
const char lfb_LOADED[] = "luafutures.loaded";

/* A fingerprint of package.loaded: which tables and functions it holds,
 * so that a module loaded anew (same count, new table) is noticed too. */
static int fingerprint(lua_State *L) {
  unsigned h = 0;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    uintptr_t v = (uintptr_t)lua_topointer(L, -1);
    h = h * 31u + (unsigned)(v ^ (v >> 32)) + 1u;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return (int)(h & 0x7fffffff);
}

static lfb_ctx *state_ctx(lua_State *L) {
  lfb_ctx *ctx = lfb_ctx_push(L);
  lua_pop(L, 1);
  return ctx;
}

int lfb_names_stale(lua_State *L) {
  return state_ctx(L)->names_count != fingerprint(L);
}

/* Indexes the direct fields of the module at `mod` (its name below it):
 * tables and C functions; for _G, C functions only, since another state's
 * globals are its own. */
static void index_fields(lua_State *L, int names, int mod) {
  int isg = strcmp(lua_tostring(L, mod - 1), "_G") == 0;
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

/* Builds value -> "mod" (a module) or "mod\0field" (a direct field). A
 * module's own name wins over its being another module's field. Pushes
 * the new index. */
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
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TTABLE)
      index_fields(L, names, lua_gettop(L));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, lfb_NAMES);
  ctx->names_count = fingerprint(L);
}

void lfb_names_lookup(lua_State *L, int names, int idx, int refresh) {
  if (lua_isnil(L, names) || refresh) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, lfb_NAMES);
    if (lua_isnil(L, -1) || refresh) {
      lua_pop(L, 1);
      build_names(L, state_ctx(L));
    }
    lua_replace(L, names);
  }
  lua_pushvalue(L, idx);
  lua_rawget(L, names);
}

/* Pushes package.loaded[mod], requiring it when it is not loaded; a module
 * that fails to load is a TransferError that carries the loader's error. */
static void push_module(lua_State *L, const char *name, size_t modlen) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushlstring(L, name, modlen);
  if (lua_rawget(L, -2) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_getglobal(L, "require");
    lua_pushlstring(L, name, modlen);
    int rc = lua_pcall(L, 1, 1, 0);
    if (rc == LUA_ERRMEM) lua_error(L);
    if (rc != LUA_OK)
      lfb_raise(L, "TransferError", "cannot transfer '%s': %s",
                lua_pushlstring(L, name, modlen), lfb_tostring_safe(L, -1));
  }
  lua_remove(L, -2);
}

void lfb_names_resolve(lua_State *L, const char *name, size_t len) {
  const char *nul = memchr(name, '\0', len);
  size_t modlen = nul ? (size_t)(nul - name) : len;
  push_module(L, name, modlen);
  if (nul == NULL) return;
  const char *mod = lua_pushlstring(L, name, modlen);
  const char *field = lua_pushlstring(L, nul + 1, len - modlen - 1);
  if (!lua_istable(L, -3))
    lfb_raise(L, "TransferError",
              "cannot transfer '%s.%s': module '%s' is a %s in this state",
              mod, field, mod, luaL_typename(L, -3));
  lua_pushvalue(L, -1);
  lua_rawget(L, -4); /* mod modname field value */
  if (lua_isnil(L, -1))
    lfb_raise(L, "TransferError",
              "cannot transfer '%s.%s': not found in this state", mod, field);
  lua_replace(L, -4);
  lua_pop(L, 2);
}
