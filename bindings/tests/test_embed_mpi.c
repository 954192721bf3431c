/*
 * test_embed_mpi.c -- luafutures_shutdown_all over an MPI executor, as a
 * host uses it: every rank of `mpiexec -n 2` runs this program, which
 * makes its own lua_State, requires concurrent.futures.mpi (from ./, the
 * build tree) and calls MPICommExecutor collectively. Rank 0 gets the
 * executor; rank 1 serves it until rank 0 shuts it down.
 *
 * No fork, unlike test_embed.c: a process that MPI started is the rank.
 * Synchronisation is by orderings only, through two FIFOs: the task opens
 * `started` for writing, which this program's open for reading waits
 * for, and then blocks on `release`, which this program opens only after
 * luafutures_shutdown_all has given up on it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "../../include/luafutures.h"
#include "../../runtime/tests/test.h"
#include "embed_test.h"

/* Opens path as flags and reads or writes nothing: its other end may go
 * on. */
static void touch(const char *path, int flags) {
  int fd = open(path, flags);
  ASSERT(fd >= 0);
  close(fd);
}

int main(void) {
  lua_State *L = luaL_newstate();
  ASSERT(L != NULL);
  luaL_openlibs(L);
  luafutures_preload(L);
  run(L, "package.cpath = './?.so;' .. package.cpath\n"
         "futures = require 'concurrent.futures'\n"
         "mpi = require 'concurrent.futures.mpi'");
  if (run(L, "return mpi.rank") != 0) {
    run(L, "assert(mpi.MPICommExecutor{root = 0} == nil)");
    lua_close(L);
    return 0;
  }
  char dir[] = "/tmp/lf-embed-mpi-XXXXXX", started[64], release[64];
  ASSERT(mkdtemp(dir) != NULL);
  snprintf(started, sizeof started, "%s/started", dir);
  snprintf(release, sizeof release, "%s/release", dir);
  ASSERT_EQ(mkfifo(started, 0600), 0);
  ASSERT_EQ(mkfifo(release, 0600), 0);
  lua_pushstring(L, started);
  lua_setglobal(L, "started");
  lua_pushstring(L, release);
  lua_setglobal(L, "release");
  /* The first task holds the one worker rank; of the 64 behind it no more
   * than the 33 sent ahead can have left: the rest are still queued. */
  run(L, "cx = mpi.MPICommExecutor{root = 0, max_workers = 1}\n"
         "first = cx:submit(function(s, r)\n"
         "  io.open(s, 'w'):close()\n"
         "  local h = io.open(r, 'r'); h:read('a'); h:close()\n"
         "  return 1\n"
         "end, started, release)\n"
         "rest = {}\n"
         "for i = 1, 64 do rest[i] = cx:submit(function() return i end) end");
  touch(started, O_RDONLY); /* the first task runs */
  /* Registered: its queue is cancelled, and the wait for the running task
   * gives up at once. */
  ASSERT_EQ(luafutures_shutdown_all(L, 1, 0), -2);
  ASSERT(run(L, "local n = 0\n"
                "for _, f in ipairs(rest) do n = n + (f:cancelled() and 1 or 0) end\n"
                "return n") > 0);
  ASSERT_EQ(run(L, "return first:cancelled() and 1 or 0"), 0);
  touch(release, O_WRONLY); /* now the first task may end */
  /* It was let go, but an explicit shutdown still waits, and releases
   * rank 1; whatever was not cancelled ran. */
  ASSERT_EQ(run(L, "cx:shutdown()\n"
                   "for _, f in ipairs(rest) do\n"
                   "  assert(f:cancelled() or f:result() > 0)\n"
                   "end\n"
                   "return first:result()"),
            1);
  lua_close(L);
  unlink(started);
  unlink(release);
  rmdir(dir);
  printf("ok 1 - shutdown_all_mpi\n");
  return 0;
}
