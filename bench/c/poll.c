/*
 * poll.c -- what a frame loop pays for polling when nothing is pending:
 * luafutures_poll from C, beside futures.poll() from Lua. Prints the cost
 * of one call in nanoseconds for each (`make bench-poll`).
 */
#include <stdio.h>
#include <time.h>

#include <lauxlib.h>
#include <lualib.h>
#include <luafutures.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void) {
  enum { N = 10000000 };
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luafutures_preload(L);
  if (luaL_dostring(L, "futures = require 'concurrent.futures'\n"
                       "local ex <close> = futures.ThreadPoolExecutor(1)\n"
                       "ex:submit(print, 'a pool has run'):result()") != 0) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    return 1;
  }
  int ran = 0;
  double t0 = now();
  for (int i = 0; i < N; i++) ran += luafutures_poll(L);
  double c = (now() - t0) / N * 1e9;
  luaL_dostring(L, "local poll, n = futures.poll, 0\n"
                   "local t0 = futures.now()\n"
                   "for i = 1, 10000000 do n = n + poll() end\n"
                   "return (futures.now() - t0) / 10000000 * 1e9");
  double lua = lua_tonumber(L, -1);
  printf("luafutures_poll, nothing pending: %6.1f ns per call (C)\n", c);
  printf("futures.poll(),  nothing pending: %6.1f ns per call (Lua)\n", lua);
  lua_close(L);
  return ran != 0;
}
