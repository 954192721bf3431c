/*
 * embed_test.h -- what the C tests of the embedding API share
 * (test_embed.c, test_embed_mpi.c): running a chunk in the host's state.
 */
#ifndef LFB_EMBED_TEST_H
#define LFB_EMBED_TEST_H

#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>

/* Runs code in L; it must not fail. Returns its first result as an
 * integer (0 when it is not one). */
static long run(lua_State *L, const char *code) {
  if (luaL_loadstring(L, code) != 0 || lua_pcall(L, 0, 1, 0) != 0) {
    fprintf(stderr, "lua error: %s\n", lua_tostring(L, -1));
    exit(1);
  }
  long v = (long)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

#endif
