/*
 * engine.c -- the example host's C module: what a game engine would
 * expose to its scripts. The host and its worker executable both link it
 * and register it, so every worker state can require it.
 */
#include <lauxlib.h>

#include "engine.h"

/* engine.noise(x, y): a cheap value noise in [0, 1000). */
static int engine_noise(lua_State *L) {
  lua_Integer x = luaL_checkinteger(L, 1), y = luaL_checkinteger(L, 2);
  unsigned h = (unsigned)(x * 374761393 + y * 668265263);
  h = (h ^ (h >> 13)) * 1274126177u;
  lua_pushinteger(L, (lua_Integer)((h ^ (h >> 16)) % 1000));
  return 1;
}

int luaopen_engine(lua_State *L) {
  static const luaL_Reg funcs[] = {{"noise", engine_noise}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
