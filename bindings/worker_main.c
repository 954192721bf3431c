/*
 * worker_main.c -- bin/luafutures-worker, the executable a
 * ProcessPoolExecutor spawns (start_method "spawn"): the module linked in
 * and luafutures_worker_main, which a host's own worker executable calls
 * after registering its modules.
 */
#include "../include/luafutures.h"

int main(int argc, char **argv) { return luafutures_worker_main(argc, argv); }
