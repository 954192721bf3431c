/*
 * processpool.c -- ProcessPoolExecutor: its constructor and the
 * operations of a runtime process pool (runtime/lf_proc.h) for the
 * executor class (executor.c). The worker's side is procworker.c.
 *
 * Tasks are encoded as for a thread pool (the payload format is described
 * at the top of worker.c) but with handles refused and function bytecode
 * inlined, since the bytes leave the process; a Future or executor among
 * the arguments is a TransferError at submit. The pool sends every worker
 * a hello first: the creator's package.path and package.cpath and the
 * initializer. The errors that fail the futures of a broken pool are
 * encoded when the pool is made, one per cause, since the runtime's
 * manager thread that needs them has no Lua state; remote.c does both for
 * this file and for the MPI executors, from this file's texts.
 *
 * The worker executable is found by the `worker` option, then the
 * LUAFUTURES_WORKER environment variable, then beside the module: dladdr()
 * names the file this code was loaded from (concurrent/futures.so, or a
 * program that links the module in; /proc/self/exe when the program is
 * linked statically) and bin/luafutures-worker is looked for in the build
 * tree's and in a Lua tree's layout.
 *
 * Process pool objects never cross states: the creating object always
 * owns its pool. No lock of this file's own: the runtime pool does the
 * locking, and module_dir is written once (pthread_once).
 */
#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "remote.h"

#define WORKER_EXE "luafutures-worker"

static const char *const methods_names[] = {"spawn", "fork", NULL};

/* By enum lf_proc_cause, as remote.h. */
static const char *const cause_text[LFB_NCAUSES] = {
    [0] = "not enough memory",
    [LF_PROC_DIED] = "a child process terminated abruptly, the process pool "
                     "is not usable anymore",
    [LF_PROC_INITFAILED] = "a process initializer failed, the process pool "
                           "is not usable anymore",
    [LF_PROC_SPAWNFAILED] = "no worker process could be started, the "
                            "process pool is not usable anymore",
    [LF_PROC_IOERROR] = "a task could not be sent to the worker processes, "
                        "the process pool is not usable anymore",
    [LF_PROC_NOANSWER] = "a worker process did not answer when it started "
                         "(is it a luafutures worker?), the process pool is "
                         "not usable anymore",
    [LF_PROC_PROTOCOL] = "a worker process broke the protocol, the process "
                         "pool is not usable anymore",
};

/* ---- the runtime's hooks -------------------------------------------------- */

static int fork_main(void *ud, int qfd, int cfd) {
  (void)ud;
  return lfb_proc_worker(qfd, cfd);
}

static const lf_proc_hooks proc_hooks = {fork_main, lfb_remote_broken,
                                         lfb_remote_release, lfb_shared_blob};

/* ---- operations ----------------------------------------------------------- */

/* A worker writes to the same stdout as the caller but with buffers of
 * its own: flushing the caller's (every FILE* open for writing, the io
 * library's included) before each task keeps program order when stdout is
 * a pipe, where the caller's lines would otherwise come after the task's. */
static int p_submit(void *p, lf_future *f) {
  fflush(NULL);
  return lfb_remote_submit(p, f);
}
static const char *p_method(void *p) {
  return methods_names[lf_procpool_start_method(p)];
}
static const char *p_broken_message(void *p) {
  return lfb_remote_cause(cause_text, p);
}
/* A task counts as running once it is sent, as the runtime counts it; a
 * worker is busy while some task is out, at most one each. */
static void p_stats(void *p, lfb_stats *s) {
  size_t unsent, out; /* unsent counts cancelled futures still queued */
  lf_procpool_load(p, &unsent, &out);
  s->workers = (long)lf_procpool_nworkers(p);
  s->running = (long)out;
  s->busy = s->running < s->workers ? s->running : s->workers;
  uint64_t task, blob, nblobs;
  lf_procpool_sent(p, &task, &blob, &nblobs);
  s->bytes_sent = (long long)(task + blob);
  s->shared_sent = (long long)nblobs;
  lfb_counts_fill(&((lfb_remote *)lf_procpool_ud(p))->counts, s);
}

/* as thread_ops: tasks leave the process, so no handles; a Shared goes
 * by id, its bytes once to each worker that asks */
static const lfb_exec_ops proc_ops = {
    LFB_PROCPOOL, "BrokenProcessPool", 0, "start_method", p_method,
    p_submit, lfb_remote_shutdown, lfb_remote_status, lfb_remote_nworkers,
    lfb_remote_max_workers, p_broken_message, lfb_remote_unref,
    lfb_remote_failure, lfb_remote_ref, p_stats, 0, NULL, 1,
};

/* ---- finding the worker executable --------------------------------------- */

/* The directory of the file this code was loaded from, found once, when
 * the module is first opened (a relative name would not survive a chdir). */
static char module_dir[PATH_MAX];
static pthread_once_t module_dir_once = PTHREAD_ONCE_INIT;

static void find_module_dir(void) {
  Dl_info info;
  char self[PATH_MAX], real[PATH_MAX];
  const char *file = "";
  if (dladdr((void *)luaopen_concurrent_futures, &info) != 0 &&
      info.dli_fname != NULL)
    file = info.dli_fname;
  /* the main program, found on PATH, or a static one (no dladdr answer) */
  if (strchr(file, '/') == NULL) {
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return;
    self[n] = '\0';
    file = self;
  }
  if (realpath(file, real) != NULL)
    snprintf(module_dir, sizeof module_dir, "%s", dirname(real));
}

/* Whether path names a file this process may run: access() alone says
 * yes to a directory. errno says why not. */
static int runnable(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return 0;
  if (S_ISDIR(st.st_mode)) {
    errno = EISDIR;
    return 0;
  }
  return access(path, X_OK) == 0;
}

/* Writes the executable to use into out; returns whether it is runnable
 * (else out holds the first place looked at, for the message). */
static int find_worker(char *out, size_t len) {
  const char *env = getenv("LUAFUTURES_WORKER");
  if (env && *env) {
    snprintf(out, len, "%s", env);
    return runnable(out);
  }
  pthread_once(&module_dir_once, find_module_dir);
  out[0] = '\0';
  if (module_dir[0] == '\0') return 0;
  /* build tree: concurrent/futures.so or bin/luafutures beside bin/;
   * a Lua tree: lib/lua/5.4/concurrent/futures.so and bin/ at its root */
  static const char *const rel[] = {"/../bin/", "/../../../../bin/", "/"};
  for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
    char cand[PATH_MAX + 64];
    snprintf(cand, sizeof cand, "%s%s%s", module_dir, rel[i], WORKER_EXE);
    if (i == 0) snprintf(out, len, "%s", cand);
    if (runnable(cand)) {
      snprintf(out, len, "%s", cand);
      return 1;
    }
  }
  errno = ENOENT;
  return 0;
}

/* ---- the constructor ------------------------------------------------------ */

typedef struct popts {
  lua_Integer max, max_tasks;
  int method;
  const char *worker; /* NULL: look for it; the string stays in opts */
  unsigned libs;
} popts;

static int read_method(lua_State *L) {
  const char *m = lfb_optstring(L, 1, "start_method");
  for (int i = 0; methods_names[i]; i++)
    if (strcmp(m, methods_names[i]) == 0) return i;
  return luaL_argerror(L, 1,
                       lua_pushfstring(L, "invalid start_method '%s'", m));
}

/* Reads the options table at 1 into o. */
static void read_table(lua_State *L, popts *o) {
  static const char *const known[] = {
      "max_workers", "initializer", "initargs", "max_tasks_per_child",
      "start_method", "worker", "libs", NULL};
  lfb_check_options(L, 1, known);
  o->libs = lfb_libs_option(L, 1);
  if (lua_getfield(L, 1, "max_tasks_per_child") != LUA_TNIL) {
    luaL_argcheck(L, lfb_getint(L, -1, &o->max_tasks), 1,
                  "'max_tasks_per_child' must be an integer");
    luaL_argcheck(L, o->max_tasks > 0, 1,
                  "'max_tasks_per_child' must be greater than 0");
    luaL_argcheck(L, o->max_tasks <= UINT32_MAX, 1,
                  "'max_tasks_per_child' is too large");
  }
  if (lua_getfield(L, 1, "start_method") != LUA_TNIL) o->method = read_method(L);
  lua_pop(L, 2);
  /* The path string stays on the stack while it is used. */
  if (lua_getfield(L, 1, "worker") != LUA_TNIL)
    o->worker = lfb_optstring(L, 1, "worker");
}

/* Reads ProcessPoolExecutor(opts | max_workers); the initializer and
 * initargs of a table are pushed, or two nils. */
static void read_options(lua_State *L, popts *o) {
  o->max = lfb_default_max_workers > 0 ? lfb_default_max_workers
                                       : lf_cpu_count();
  o->max_tasks = 0;
  o->method = LF_START_SPAWN;
  o->worker = NULL;
  o->libs = LFB_LIBS_ALL;
  if (lua_istable(L, 1)) read_table(L, o);
  lfb_exec_args(L, &o->max, 100000);
}

/* The worker executable into exe ("" for a fork pool that found none: it
 * needs none, though a sanitized build uses one if found); raises when a
 * spawn pool has none it can run. */
static void resolve_worker(lua_State *L, const popts *o, char *exe,
                           size_t len) {
  int ok;
  if (o->worker) {
    snprintf(exe, len, "%s", o->worker);
    ok = runnable(exe);
  } else {
    ok = find_worker(exe, len);
  }
  if (ok) return;
  int e = errno;
  if (o->method == LF_START_FORK) {
    exe[0] = '\0';
    return;
  }
  lfb_raise(L, "RuntimeError",
            "cannot run the worker executable '%s': %s (build it with make, "
            "or name it with the 'worker' option or LUAFUTURES_WORKER)",
            exe[0] ? exe : WORKER_EXE, exe[0] ? strerror(e) : "not found");
}

static int m_processpool(lua_State *L) {
  popts o;
  read_options(L, &o);
  int fn = lua_gettop(L) - 1; /* initializer initargs */
  char exe[PATH_MAX + 64] = "";
  resolve_worker(L, &o, exe, sizeof exe);
  lfb_executor *ex = lfb_exec_new(L, &proc_ops);
  lua_pushinteger(L, (lua_Integer)o.libs); /* the hello's extra value */
  lfb_remote *c = lfb_remote_new(L, ex, "BrokenProcessPool", cause_text, fn, 1);
  lf_proc_config cfg = {(size_t)o.max, (size_t)o.max_tasks, o.method, exe,
                        c->hello->data, c->hello->len,
                        lfb_remote_answer_timeout(0)};
  int err = 0;
  ex->pool = lf_procpool_new(&cfg, &proc_hooks, c, &err);
  lfb_remote_adopt(L, ex, c);
  lfb_exec_remember(L);
  return 1;
}

static const luaL_Reg ctors[] = {
    {"ProcessPoolExecutor", m_processpool},
    {NULL, NULL},
};

void lfb_open_processpool(lua_State *L) {
  pthread_once(&module_dir_once, find_module_dir);
  lfb_exec_open(L, &proc_ops, ctors);
}
