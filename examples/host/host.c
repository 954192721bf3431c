/*
 * host.c -- a game-style C host embedding Lua with luafutures linked in
 * statically (lib/libluafutures.a).
 *
 * It registers a C module, `engine`, that every worker state gets; runs a
 * bounded 60 Hz-style frame loop that submits jobs calling engine.noise in
 * thread workers; collects their results with done callbacks that
 * luafutures_poll runs once per frame, on the host's own thread; then does
 * the same waiting on luafutures_notify_fd with poll(2) instead of a frame
 * clock; and bounds its exit with luafutures_shutdown_all before
 * lua_close. A third variant runs a job in a process worker: the host's
 * own worker executable (host_worker.c, beside this program), which
 * registers `engine` too. `host poll|fd|process` runs one; no argument,
 * all three.
 */
#include <libgen.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>
#include <luafutures.h>

#include "engine.h"

/* ---- the game's script --------------------------------------------------- */

static const char SCRIPT[] =
    "local futures = require 'concurrent.futures'\n"
    "local engine = require 'engine'\n"
    "local pool = futures.ThreadPoolExecutor{max_workers = 4}\n"
    "local game = {done = 0, sum = 0}\n"
    "-- one job: a row of terrain, computed in a worker with engine.noise\n"
    "local function row(y)\n"
    "  local s = 0\n"
    "  for x = 1, 64 do s = s + require('engine').noise(x, y) end\n"
    "  return s\n"
    "end\n"
    "function game.frame(n)\n"
    "  if n <= 8 then\n"
    "    pool:submit(row, n):add_done_callback(function(f)\n"
    "      game.done = game.done + 1\n"
    "      game.sum = game.sum + f:result()\n"
    "    end)\n"
    "  end\n"
    "end\n"
    "function game.expected()\n"
    "  local s = 0\n"
    "  for y = 1, 8 do for x = 1, 64 do s = s + engine.noise(x, y) end end\n"
    "  return s\n"
    "end\n"
    "return game\n";

/* Calls game.<name>(arg) and returns its integer result. */
static long call(lua_State *L, const char *name, long arg) {
  lua_getfield(L, 1, name);
  lua_pushinteger(L, arg);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  long v = (long)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

static long field(lua_State *L, const char *name) {
  lua_getfield(L, 1, name);
  long v = (long)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

static lua_State *start(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luafutures_preload(L);                       /* require finds the module */
  luaL_requiref(L, "engine", luaopen_engine, 0); /* and the host's own */
  lua_pop(L, 1);
  if (luaL_dostring(L, SCRIPT) != LUA_OK) {    /* the game table at 1 */
    fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return NULL;
  }
  return L;
}

/* Frames at a fixed step (a real game would sleep to the next vsync):
 * each submits a job and runs the callbacks of the jobs that finished. */
static int frame_loop(lua_State *L) {
  int frames = 0;
  for (long n = 1; field(L, "done") < 8 && frames < 1000000; n++, frames++) {
    call(L, "frame", n);
    luafutures_poll(L); /* callbacks run here, on this thread */
  }
  return frames;
}

/* No frame clock: sleep in poll(2) until a callback is pending. */
static void fd_loop(lua_State *L) {
  for (long n = 1; n <= 8; n++) call(L, "frame", n);
  struct pollfd p = {luafutures_notify_fd(L), POLLIN, 0};
  while (field(L, "done") < 8) {
    if (poll(&p, 1, -1) == 1) luafutures_poll(L);
  }
}

static int run(const char *variant) {
  lua_State *L = start();
  if (L == NULL) return 1;
  if (strcmp(variant, "poll") == 0)
    frame_loop(L);
  else
    fd_loop(L);
  long sum = field(L, "sum"), want = call(L, "expected", 0);
  printf("%s: %ld jobs, sum %ld (%s)\n", variant, field(L, "done"), sum,
         sum == want ? "ok" : "WRONG");
  /* At most a second for what still runs, queued jobs cancelled: the
   * host's exit is bounded even if a script left a runaway task. */
  if (luafutures_shutdown_all(L, 1, 1.0) != 0)
    fprintf(stderr, "host: some tasks were still running at exit\n");
  lua_close(L);
  return sum == want ? 0 : 1;
}

/* One job in a process worker: the host's worker executable registers
 * `engine` there, as this program does for thread workers. */
static int run_process(const char *worker) {
  lua_State *L = start();
  if (L == NULL) return 1;
  lua_settop(L, 0);
  lua_pushstring(L, worker);
  lua_setglobal(L, "HOST_WORKER");
  int rc = luaL_dostring(L,
      "local futures = require 'concurrent.futures'\n"
      "local ex <close> = futures.ProcessPoolExecutor{max_workers = 1,\n"
      "  worker = HOST_WORKER}\n"
      "local f = ex:submit(function(x, y) return require('engine').noise(x, y) end, 3, 4)\n"
      "return f:result() == require('engine').noise(3, 4)");
  int ok = rc == LUA_OK && lua_toboolean(L, -1);
  printf("process: %s\n", ok ? "ok" : luaL_tolstring(L, -1, NULL));
  luafutures_shutdown_all(L, 1, 1.0);
  lua_close(L);
  return !ok;
}

int main(int argc, char **argv) {
  /* Before any pool: every worker state gets `engine` in package.preload. */
  if (luafutures_register("engine", luaopen_engine) != 0) return 1;
  char self[4096], worker[4200]; /* host-worker is beside this program */
  snprintf(self, sizeof self, "%s", argv[0]);
  snprintf(worker, sizeof worker, "%s/host-worker", dirname(self));
  if (argc > 1 && strcmp(argv[1], "process") == 0) return run_process(worker);
  if (argc > 1) return run(argv[1]);
  return run("poll") | run("fd") | run_process(worker);
}
