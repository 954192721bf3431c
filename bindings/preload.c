/*
 * preload.c -- luafutures_preload, the public way for a C host that links
 * the module in to make require("concurrent.futures") find it.
 *
 * A preload entry rather than an eager luaL_requiref: the host's scripts
 * keep deciding when the module opens, exactly as with the .so. No state of
 * its own, no lock.
 */
#include "lfb.h"

void luafutures_preload(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE); /* preload */
  lua_pushcfunction(L, luaopen_concurrent_futures);
  lua_setfield(L, -2, LFB_MODNAME);
  lua_pop(L, 1);
}
