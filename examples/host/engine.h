/* engine.h -- the example host's own C module, `engine`. */
#ifndef ENGINE_H
#define ENGINE_H
#include <lua.h>
int luaopen_engine(lua_State *L);
#endif
