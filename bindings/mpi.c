/*
 * mpi.c -- the executors of concurrent.futures.mpi: MPIPoolExecutor and
 * MPICommExecutor, the process pool's core (lf_mpi.h) over the MPI
 * transport, for the executor class (executor.c).
 *
 * The transport is built with mpicc into concurrent/futures/mpi.so, whose
 * stub (mpi_module.c) requires this module and calls the opener this file
 * leaves in the registry with the transport's table: so everything else
 * -- core, codec, futures, this file -- exists once per process, and MPI
 * futures mix with thread and process futures.
 *
 * Launch modes, as mpi4py.futures: `mpiexec -n N luafutures -m
 * concurrent.futures.mpi script.lua` calls this module's main: rank 0
 * runs the script, every other rank serves each MPIPoolExecutor it makes
 * (mpiworker.c) until the state of rank 0 closes, which releases them.
 * In a program that every rank runs, MPICommExecutor{root = r} is
 * collective: the root gets an executor, the others serve it until the
 * root shuts it down, then get nil. Tasks are encoded as for a process
 * pool (no handles, bytecode inline); a result from another rank is the
 * same untrusted bytes a process worker's is. MPI is fail-stop: a lost
 * rank ends the job, which mpiexec reports with a non-zero status.
 *
 * No lock of this file's own: the transport, rank and mode are written
 * once, by the state that opens the module first, before any pool exists.
 */
#include <stdio.h>
#include <string.h>

#include "lfb_mpi.h"
#include "remote.h"

const lf_mpi *lfb_mpi;
int lfb_mpi_rank, lfb_mpi_size;
char lfb_mpi_host[256];

/* How the job runs: known once main or MPICommExecutor ran. */
enum { MODE_UNKNOWN, MODE_POOL, MODE_COMM };
static int mode;

#define OPENER "luafutures.mpi_open"

/* By enum lf_proc_cause, as remote.h. */
static const char *const cause_text[LFB_NCAUSES] = {
    [0] = "not enough memory",
    [LF_PROC_DIED] = "an MPI worker rank left without a goodbye, the "
                     "executor is not usable anymore",
    [LF_PROC_INITFAILED] = "an MPI worker's initializer failed, the "
                           "executor is not usable anymore",
    [LF_PROC_SPAWNFAILED] = "no MPI worker rank could be claimed, the "
                            "executor is not usable anymore",
    [LF_PROC_IOERROR] = "a task could not be sent to the MPI worker ranks, "
                        "the executor is not usable anymore",
    [LF_PROC_NOANSWER] = "an MPI worker rank did not answer when the "
                         "executor started (is it serving?), the executor "
                         "is not usable anymore",
    [LF_PROC_PROTOCOL] = "an MPI worker rank broke the protocol, the "
                         "executor is not usable anymore",
};

/* No blobs: MPI tasks carry their Shared values inline (decisions.md). */
static const lf_proc_hooks mpi_hooks = {NULL, lfb_remote_broken,
                                        lfb_remote_release, NULL};

/* ---- operations ------------------------------------------------------------ */

/* The ranks an MPICommExecutor frees must know no task can follow: they
 * are released once its pool has stopped. Its shutdown(false) waits too
 * (waits_always); a wait here may be another thread's (embed.c's joiner),
 * so that an interrupt or luafutures_shutdown_all's timeout cuts the
 * caller's wait short while the ranks are released all the same. */
static int o_comm_shutdown(void *p, int wait, int cancel) {
  int rc = lf_procpool_shutdown(p, wait, cancel);
  if (wait && rc == 0) lfb_mpi->release();
  return rc;
}
static const char *o_host(void *p) { return lfb_mpi_host; }
static const char *o_broken_message(void *p) {
  return lfb_remote_cause(cause_text, p);
}
/* stats(): what is queued and out, from the runtime; how the futures
 * ended, from the counts every remote pool keeps. */
static void o_stats(void *p, lfb_stats *s) {
  size_t unsent, out;
  lf_procpool_load(p, &unsent, &out);
  s->queued = (long)unsent;
  s->running = (long)out;
  s->workers = (long)lf_procpool_nworkers(p);
  s->busy = s->running < s->workers ? s->running : s->workers;
  lfb_counts_fill(&((lfb_remote *)lf_procpool_ud(p))->counts, s);
}

/* With ref, shutdown(wait) waits as a process pool's does: an interrupt
 * cuts it short (embed.c). */
static const lfb_exec_ops pool_ops = {
    "MPIPoolExecutor", "BrokenExecutor", 0, "host", o_host,
    lfb_remote_submit, lfb_remote_shutdown, lfb_remote_status,
    lfb_remote_nworkers, lfb_remote_max_workers, o_broken_message,
    lfb_remote_unref, lfb_remote_failure, lfb_remote_ref, o_stats, 0, NULL,
    0, /* a Shared travels inline (decisions.md) */
};

static const lfb_exec_ops comm_ops = {
    "MPICommExecutor", "BrokenExecutor", 0, "host", o_host,
    lfb_remote_submit, o_comm_shutdown, lfb_remote_status,
    lfb_remote_nworkers, lfb_remote_max_workers, o_broken_message,
    lfb_remote_unref, lfb_remote_failure, lfb_remote_ref, o_stats, 1, NULL,
    0, /* a Shared travels inline (decisions.md) */
};

/* ---- constructors ------------------------------------------------------------ */

/* Reads (opts | max_workers) at 1, the kind's own names in `known`; the
 * initializer and initargs are pushed. */
static void read_options(lua_State *L, const char *const known[],
                         lua_Integer *max, int *isolate) {
  *max = lfb_mpi_size - 1;
  *isolate = 0;
  if (lua_istable(L, 1)) {
    lfb_check_options(L, 1, known);
    lua_getfield(L, 1, "isolate");
    *isolate = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  lfb_exec_args(L, max, 100000);
  if (*max > lfb_mpi_size - 1)
    luaL_argerror(L, 1, lua_pushfstring(L, "'max_workers' is more than the "
                                           "%d worker ranks of the job",
                                        lfb_mpi_size - 1));
}

static int no_workers(lua_State *L, const char *what) {
  return lfb_raise(L, "RuntimeError",
                   "%s: the MPI job has no worker ranks (its size is 1): "
                   "start it with mpiexec -n 2 or more",
                   what);
}

/* The executor of kind ops, its options read. Its hello (lfb_mpi.h) ends
 * with isolate. */
static int make(lua_State *L, const lfb_exec_ops *ops, lua_Integer max,
                int isolate) {
  int fn = lua_gettop(L) - 1; /* initializer initargs */
  lfb_executor *ex = lfb_exec_new(L, ops);
  lua_pushboolean(L, isolate);
  lfb_remote *c = lfb_remote_new(L, ex, "BrokenExecutor", cause_text, fn, 1);
  /* A rank answers a hello after the task it runs for another executor,
   * however long: no limit unless LUAFUTURES_WORKER_TIMEOUT sets one. */
  lf_proc_config cfg = {(size_t)max, 0, LF_START_SPAWN, "",
                        c->hello->data, c->hello->len,
                        lfb_remote_answer_timeout(1e9)};
  int err = 0;
  ex->pool = lf_mpipool_new(lfb_mpi, &cfg, &mpi_hooks, c, &err);
  lfb_remote_adopt(L, ex, c);
  lfb_exec_remember(L); /* for luafutures_shutdown_all */
  return 1;
}

static int m_pool(lua_State *L) {
  static const char *const known[] = {"max_workers", "initializer",
                                      "initargs", "isolate", NULL};
  lua_Integer max;
  int isolate;
  if (lfb_mpi_size < 2) return no_workers(L, "MPIPoolExecutor");
  if (mode != MODE_POOL)
    return lfb_raise(L, "RuntimeError",
                     "MPIPoolExecutor: no rank serves it: run the script as "
                     "mpiexec -n N luafutures -m concurrent.futures.mpi "
                     "script.lua (or use MPICommExecutor where every rank "
                     "runs it)");
  read_options(L, known, &max, &isolate);
  return make(L, &pool_ops, max, isolate);
}

static int m_comm(lua_State *L) {
  static const char *const known[] = {"root", "max_workers", "initializer",
                                      "initargs", "isolate", NULL};
  lua_Integer max, root = 0;
  int isolate;
  if (lua_istable(L, 1) && lua_getfield(L, 1, "root") != LUA_TNIL) {
    luaL_argcheck(L, lfb_getint(L, -1, &root), 1, "'root' must be an integer");
    luaL_argcheck(L, root >= 0 && root < lfb_mpi_size, 1,
                  "'root' is not a rank of the job");
  }
  lua_settop(L, 1);
  if (mode == MODE_POOL)
    return lfb_raise(L, "RuntimeError",
                     "MPICommExecutor: under -m concurrent.futures.mpi the "
                     "other ranks serve MPIPoolExecutor: use that");
  if (lfb_mpi_size < 2) return no_workers(L, "MPICommExecutor");
  read_options(L, known, &max, &isolate);
  mode = MODE_COMM;
  if (root != lfb_mpi_rank) { /* collective: serve the root, then nil */
    lfb_mpi_serve(L);
    lua_pushnil(L);
    return 1;
  }
  return make(L, &comm_ops, max, isolate);
}

/* main(chunk, ...), as bin/luafutures -m calls it: rank 0 runs the script,
 * the other ranks serve until it is done. */
static int m_main(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (mode != MODE_UNKNOWN)
    return luaL_error(L, "concurrent.futures.mpi: main runs once, before "
                         "any executor");
  mode = MODE_POOL;
  if (lfb_mpi_rank == 0) {
    lua_call(L, lua_gettop(L) - 1, 0);
  } else {
    lfb_mpi_serve(L);
  }
  return 0;
}

/* ---- the module ------------------------------------------------------------------ */

/* Closing the state that opened the module first ends MPI for the
 * process: rank 0 of a pool job releases the serving ranks first (its
 * executors, made later, were shut down before this runs). */
static int finalize(lua_State *L) {
  if (mode == MODE_POOL && lfb_mpi_rank == 0) lfb_mpi->release();
  lfb_mpi->finalize();
  return 0;
}

static int start(lua_State *L, const lf_mpi *t) {
  if (t == NULL || t->version != LF_MPI_VERSION)
    return luaL_error(L, "concurrent.futures.mpi: its transport is of "
                         "another version than concurrent.futures");
  lf_mpi_host h;
  lf_mpi_host_default(&h);
  char why[256];
  int rank, size;
  if (t->init(&h, &rank, &size, why, sizeof why) != 0)
    return luaL_error(L, "concurrent.futures.mpi: cannot start MPI (%s)", why);
  lfb_mpi_rank = rank;
  lfb_mpi_size = size;
  snprintf(lfb_mpi_host, sizeof lfb_mpi_host, "%s", why);
  lfb_mpi = t;
  lua_newuserdatauv(L, 1, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, finalize);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, (void *)&lfb_mpi);
  return 0;
}

static const luaL_Reg pool_ctors[] = {
    {"MPIPoolExecutor", m_pool},
    {"main", m_main},
    {NULL, NULL},
};

static const luaL_Reg comm_ctors[] = {
    {"MPICommExecutor", m_comm},
    {NULL, NULL},
};

/* The registry's opener: (transport table) -> the module's table. */
static int open_mpi(lua_State *L) {
  const lf_mpi *t = lua_touserdata(L, 1);
  if (lfb_mpi == NULL) start(L, t);
  lua_newtable(L);
  lfb_exec_open(L, &pool_ops, pool_ctors);
  lfb_exec_open(L, &comm_ops, comm_ctors);
  lua_pushinteger(L, lfb_mpi_rank);
  lua_setfield(L, -2, "rank");
  lua_pushinteger(L, lfb_mpi_size);
  lua_setfield(L, -2, "size");
  lua_pushstring(L, lfb_mpi_host);
  lua_setfield(L, -2, "host");
  return 1;
}

void lfb_open_mpi(lua_State *L) {
  lua_pushcfunction(L, open_mpi);
  lua_setfield(L, LUA_REGISTRYINDEX, OPENER);
}
