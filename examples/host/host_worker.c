/*
 * host_worker.c -- the example host's own process worker: the one a
 * ProcessPoolExecutor{worker = ...} spawns, with `engine` registered, so
 * tasks in worker processes can require it too.
 */
#include <luafutures.h>

#include "engine.h"

int main(int argc, char **argv) {
  if (luafutures_register("engine", luaopen_engine) != 0) return 1;
  return luafutures_worker_main(argc, argv);
}
