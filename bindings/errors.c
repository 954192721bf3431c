/*
 * errors.c -- the error classes: futures.Error and its descendants.
 *
 * An error is a table {type = "TimeoutError", message = "..."} whose
 * metatable is its class. A class is a table with __index (itself),
 * __tostring, `base` (its parent class) and `is`; calling a class makes an
 * instance. Classes are reachable from package.loaded, so an error crosses
 * states by the name of its class and stays an instance there.
 */
#include <stdarg.h>
#include <string.h>

#include "lfb.h"

static const struct {
  const char *name, *base;
} classes[] = {
    {"Error", NULL},
    {"TimeoutError", "Error"},
    {"CancelledError", "Error"},
    {"InvalidStateError", "Error"},
    {"RuntimeError", "Error"},
    {"TransferError", "Error"},
    {"DeadlockError", "Error"},
    {"BrokenExecutor", "Error"},
    {"BrokenThreadPool", "BrokenExecutor"},
    {"BrokenProcessPool", "BrokenExecutor"},
    {"QueueEmpty", "Error"},
    {"QueueFull", "Error"},
    {"QueueShutDown", "Error"},
};

static const char CLASSES[] = "luafutures.classes";

/* Never raises, whatever an instance was given or set to. */
static int error_tostring(lua_State *L) {
  const char *type = "Error";
  if (lua_istable(L, 1) && lua_getfield(L, 1, "type") == LUA_TSTRING)
    type = lua_tostring(L, -1);
  else if (luaL_getmetafield(L, 1, "__name") == LUA_TSTRING)
    type = lua_tostring(L, -1);
  const char *msg = "";
  if (lua_istable(L, 1) && lua_getfield(L, 1, "message") != LUA_TNIL)
    msg = lfb_tostring_safe(L, -1);
  lua_pushfstring(L, "%s: %s", type, msg);
  return 1;
}

static int tostring_k(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

const char *lfb_tostring_safe(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING) {
    lua_pushvalue(L, idx);
    return lua_tostring(L, -1);
  }
  lua_pushcfunction(L, tostring_k);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) return lua_tostring(L, -1);
  lua_pop(L, 1);
  return lua_pushfstring(L, "(error object is a %s value)",
                         luaL_typename(L, idx));
}

/* Class:is(v): is v an instance of Class or of a class below it? */
static int error_is(lua_State *L) {
  if (!lua_getmetatable(L, 2)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  for (int hops = 0; hops < 16 && lua_istable(L, -1); hops++) {
    if (lua_rawequal(L, -1, 1)) {
      lua_pushboolean(L, 1);
      return 1;
    }
    lua_pushliteral(L, "base"); /* raw: `is` never raises */
    lua_rawget(L, -2);
    lua_remove(L, -2);
  }
  lua_pushboolean(L, 0);
  return 1;
}

/* Class(message) or Class{message = ...}: a new instance. A table is
 * copied (raw), never changed: a class or a module passed by mistake stays
 * as it was. Called through __call, so the class is argument 1 and the
 * caller's first argument is 2; messages count as the caller does. */
static int error_new(lua_State *L) {
  lua_settop(L, 2);
  lua_getfield(L, 1, "__name");
  const char *name = lua_tostring(L, -1);
  int t = lua_type(L, 2);
  if (t == LUA_TTABLE) {
    if (lua_getmetatable(L, 2))
      return luaL_error(L, "bad argument #1 to '%s' (table without a "
                        "metatable expected)", name);
    lua_newtable(L);
    int copy = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, 2)) { /* key value */
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, copy); /* key */
    }
    t = lua_getfield(L, -1, "message");
    lua_pop(L, 1);
    if (t != LUA_TNIL && t != LUA_TSTRING && t != LUA_TNUMBER)
      return luaL_error(L, "bad argument #1 to '%s' ('message' must be a "
                        "string)", name);
  } else if (t == LUA_TNIL || t == LUA_TSTRING || t == LUA_TNUMBER) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, t == LUA_TNIL ? "" : lua_tostring(L, 2));
    lua_setfield(L, -2, "message");
  } else {
    return luaL_error(L, "bad argument #1 to '%s' (string or table "
                      "expected, got %s)", name, luaL_typename(L, 2));
  }
  lua_pushstring(L, name);
  lua_setfield(L, -2, "type");
  lua_pushvalue(L, 1);
  lua_setmetatable(L, -2);
  return 1;
}

void lfb_open_errors(lua_State *L) {
  int mod = lua_gettop(L);
  lua_newtable(L); /* name -> class, for lfb_pusherror */
  int reg = lua_gettop(L);
  for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++) {
    lua_newtable(L);
    int c = lua_gettop(L);
    lua_pushvalue(L, c);
    lua_setfield(L, c, "__index");
    lua_pushstring(L, classes[i].name);
    lua_setfield(L, c, "__name");
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, c, "__tostring");
    lua_pushcfunction(L, error_is);
    lua_setfield(L, c, "is");
    lua_newtable(L); /* the class's own metatable: inheritance, calls */
    if (classes[i].base) {
      lua_getfield(L, reg, classes[i].base);
      lua_pushvalue(L, -1);
      lua_setfield(L, c, "base");
      lua_setfield(L, -2, "__index");
    }
    lua_pushcfunction(L, error_new);
    lua_setfield(L, -2, "__call");
    lua_setmetatable(L, c);
    lua_pushvalue(L, c);
    lua_setfield(L, reg, classes[i].name);
    lua_setfield(L, mod, classes[i].name);
  }
  lua_rawsetp(L, LUA_REGISTRYINDEX, CLASSES);
}

void lfb_pusherror(lua_State *L, const char *type, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_createtable(L, 0, 2);
  lua_pushstring(L, type);
  lua_setfield(L, -2, "type");
  lua_pushvfstring(L, fmt, ap);
  lua_setfield(L, -2, "message");
  va_end(ap);
  lua_rawgetp(L, LUA_REGISTRYINDEX, CLASSES);
  lua_getfield(L, -1, type);
  lua_setmetatable(L, -3);
  lua_pop(L, 1);
}

int lfb_raise(lua_State *L, const char *type, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lfb_pusherror(L, type, "%s", lua_tostring(L, -1));
  return lua_error(L);
}
