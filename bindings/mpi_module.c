/*
 * mpi_module.c -- the entry of concurrent/futures/mpi.so, the module that
 * make builds with mpicc. It holds only the MPI transport (runtime/,
 * lf_mpi.h) and this stub: the executors, the pool core and the codec
 * are those of the concurrent.futures already loaded, which the stub
 * requires and hands the transport's table to (bindings/mpi.c builds the
 * module's table from it). So the process has one runtime, and MPI
 * futures mix with the others in wait() and as_completed(). No state.
 */
#include <lauxlib.h>
#include <lua.h>

#ifndef LFB_NO_MPI
#include "../runtime/lf_mpi.h"
#endif

#define OPENER "luafutures.mpi_open" /* bindings/mpi.c puts it there */

/* Visible: the rest of the build hides what the header does not name.
 * No header declares it: only Lua's require looks it up. */
int luaopen_concurrent_futures_mpi(lua_State *L);
__attribute__((visibility("default"))) int luaopen_concurrent_futures_mpi(
    lua_State *L) {
#ifdef LFB_NO_MPI /* the stub a build without mpicc installs */
  return luaL_error(L, "concurrent.futures.mpi: luafutures was built "
                       "without MPI (install Open MPI: apt-get install "
                       "openmpi-bin libopenmpi-dev, then rebuild)");
#else
  lua_getglobal(L, "require");
  lua_pushliteral(L, "concurrent.futures");
  lua_call(L, 1, 0);
  if (lua_getfield(L, LUA_REGISTRYINDEX, OPENER) != LUA_TFUNCTION)
    return luaL_error(L, "concurrent.futures.mpi: the loaded "
                         "concurrent.futures has no MPI support (an older "
                         "build?)");
  lua_pushlightuserdata(L, (void *)lf_mpi_transport());
  lua_call(L, 1, 1);
  return 1;
#endif
}
