/*
 * process.c -- ProcessPoolExecutor: the Lua class over a runtime process
 * pool (runtime/lf_proc.h), and the life of a worker process.
 *
 * Tasks are encoded as for a thread pool (the payload format is described
 * at the top of executor.c) but with handles refused and function bytecode
 * inlined, since the bytes leave the process; a Future or executor among
 * the arguments is a TransferError at submit. A worker process builds one
 * Lua state the way a thread worker does (lfb_worker_setup), from the hello
 * the pool sends it first: the creator's package.path and package.cpath and
 * the initializer. It then runs tasks with executor.c's own runner
 * (lfb_run_task) until the pool closes the queue or max_tasks_per_child is
 * reached, and says goodbye. In a worker, thread_name() is "MainThread":
 * it is its process's main thread, as in Python.
 *
 * The worker executable is found by the `worker` option, then the
 * LUAFUTURES_WORKER environment variable, then beside the module: dladdr()
 * names the file this code was loaded from (concurrent/futures.so, or a
 * program that links the module in; /proc/self/exe when the program is
 * linked statically) and bin/luafutures-worker is looked
 * for in the build tree's and in a Lua tree's layout.
 *
 * The object that created a pool owns it: collecting it or closing its
 * state shuts the pool down and waits. No lock of this file's own: the
 * runtime pool does the locking.
 */
#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../runtime/lf_proc.h"
#include "lfb.h"

#define WORKER_EXE "luafutures-worker"

typedef struct lfb_procexec {
  lf_procpool *pool;
} lfb_procexec;

static const char *const methods_names[] = {"spawn", "fork", NULL};

/* ---- the worker process --------------------------------------------------- */

typedef struct hello {
  const char *data;
  size_t len;
} hello;

/* Decodes the hello: path, cpath, initializer bytes (or nil), their flags. */
static int read_hello(lua_State *L) {
  hello *h = lua_touserdata(L, 1);
  lf_payload *p = lf_payload_new(h->data, h->len, NULL, 0, 0);
  if (p == NULL) return luaL_error(L, "not enough memory");
  lua_settop(L, 0);
  lfb_dec d;
  lfb_dec_init_remote(&d, p);
  int rc = lfb_dec_protected(&d, L, 4);
  lf_payload_free(p);
  return rc == 0 ? 4 : lua_error(L);
}

/* Runs tasks until the queue closes or max_tasks ran: 0. Anything else
 * means a task may be lost, so the worker must not say goodbye: the pool
 * then breaks instead of waiting for it. */
static int worker_life(lua_State *L, int qfd, int cfd, size_t max_tasks) {
  size_t ran = 0;
  while (max_tasks == 0 || ran < max_tasks) {
    lf_payload *task;
    uint32_t id;
    int got = lf_proc_child_next(qfd, &task, &id);
    if (got == 1) break; /* no more work */
    if (got != 0) return 6;
    int failed = 0;
    lf_payload *res = lfb_run_task(L, NULL, task, &failed, 0);
    if (res == NULL) {
      res = lfb_error_payload("RuntimeError", "not enough memory");
      failed = 1;
      if (res == NULL) return 5;
    }
    /* What the task printed comes out before its result is known. */
    fflush(stdout);
    if (lf_proc_child_reply(cfd, id, res, failed) != 0) return 7; /* no pool */
    ran++;
  }
  return 0;
}

int lfb_proc_worker(int qfd, int cfd) {
  char *h;
  size_t hlen, max_tasks;
  if (lf_proc_child_start(qfd, cfd, &h, &hlen, &max_tasks) != 0) return 3;
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    free(h);
    return 4;
  }
  hello hl = {h, hlen};
  lua_pushcfunction(L, read_hello);
  lua_pushlightuserdata(L, &hl);
  if (lua_pcall(L, 1, 4, 0) != LUA_OK) {
    free(h);
    lua_close(L);
    return 4;
  }
  free(h);
  char *path = strdup(luaL_optstring(L, 1, ""));
  char *cpath = strdup(luaL_optstring(L, 2, ""));
  size_t ilen = 0;
  const char *ibytes = lua_tolstring(L, 3, &ilen);
  lf_payload *init =
      ibytes ? lf_payload_new(ibytes, ilen, NULL, 0,
                              (uint32_t)lua_tointeger(L, 4))
             : NULL;
  lua_settop(L, 0);
  char label[48];
  snprintf(label, sizeof label, "process %ld", (long)getpid());
  int rc = path && cpath && (ibytes == NULL || init)
               ? lfb_worker_setup(L, "MainThread", label, path, cpath, init)
               : -1;
  free(path);
  free(cpath);
  lf_payload_free(init);
  if (rc != 0) {
    fflush(stdout);
    lf_proc_child_initfailed(cfd);
    return 1; /* the state is left to exit: the pool is broken anyway */
  }
  rc = worker_life(L, qfd, cfd, max_tasks);
  lua_close(L);
  fflush(stdout);
  if (rc == 0) lf_proc_child_bye(cfd);
  return rc;
}

/* ---- the runtime's hooks -------------------------------------------------- */

static int fork_main(void *ud, int qfd, int cfd) {
  (void)ud;
  return lfb_proc_worker(qfd, cfd);
}

static const char *broken_message(int cause) {
  switch (cause) {
    case LF_PROC_DIED:
      return "a child process terminated abruptly, the process pool is not "
             "usable anymore";
    case LF_PROC_INITFAILED:
      return "a process initializer failed, the process pool is not usable "
             "anymore";
    case LF_PROC_SPAWNFAILED:
      return "no worker process could be started, the process pool is not "
             "usable anymore";
    case LF_PROC_NOANSWER:
      return "a worker process did not answer when it started (is it a "
             "luafutures worker?), the process pool is not usable anymore";
    case LF_PROC_IOERROR:
      return "a task could not be sent to the worker processes, the process "
             "pool is not usable anymore";
  }
  return "not enough memory";
}

static lf_payload *proc_broken(void *ud, int cause) {
  (void)ud;
  return lfb_error_payload("BrokenProcessPool", broken_message(cause));
}

static const lf_proc_hooks proc_hooks = {fork_main, proc_broken, NULL};

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

/* Writes the executable to use into out; returns whether it is runnable
 * (else out holds the first place looked at, for the message). */
static int find_worker(char *out, size_t len) {
  const char *env = getenv("LUAFUTURES_WORKER");
  if (env && *env) {
    snprintf(out, len, "%s", env);
    return access(out, X_OK) == 0;
  }
  pthread_once(&module_dir_once, find_module_dir);
  out[0] = '\0';
  if (module_dir[0] == '\0') return 0;
  const char *dir = module_dir;
  /* build tree: concurrent/futures.so or bin/luafutures beside bin/;
   * a Lua tree: lib/lua/5.4/concurrent/futures.so and bin/ at its root */
  static const char *const rel[] = {"/../bin/", "/../../../../bin/", "/"};
  for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
    char cand[PATH_MAX + 64];
    snprintf(cand, sizeof cand, "%s%s%s", dir, rel[i], WORKER_EXE);
    if (i == 0) snprintf(out, len, "%s", cand);
    if (access(cand, X_OK) == 0) {
      snprintf(out, len, "%s", cand);
      return 1;
    }
  }
  return 0;
}

/* ---- the Lua class -------------------------------------------------------- */

/* The executor at 1, for submit and map (see check_exec). */
static lfb_procexec *check_proc(lua_State *L) {
  lfb_procexec *ex = luaL_checkudata(L, 1, LFB_PROCPOOL);
  if (ex->pool == NULL) lfb_submit_error(L, LF_ESHUTDOWN);
  lfb_check_closing(L);
  return ex;
}

static int proc_error(lua_State *L, void *pool, int rc) {
  if (rc == LF_EBROKEN)
    return lfb_raise(L, "BrokenProcessPool", "%s",
                     broken_message(lf_procpool_cause(pool)));
  if (rc == LF_ESHUTDOWN)
    return lfb_raise(L, "RuntimeError",
                     "cannot schedule new futures after shutdown");
  if (rc == LF_ENOMEM) return luaL_error(L, "not enough memory");
  return lfb_raise(L, "RuntimeError", "%s", lf_strerror(rc));
}

static int proc_submit(void *pool, lf_future *f) {
  return lf_procpool_submit(pool, f);
}

static int p_submit(lua_State *L) {
  lfb_procexec *ex = check_proc(L);
  lf_future *f = lfb_task_future(L, 0);
  int rc = lf_procpool_submit(ex->pool, f);
  if (rc != 0) {
    lf_future_unref(f);
    return proc_error(L, ex->pool, rc);
  }
  lfb_future_push_new(L, f);
  return 1;
}

static int p_map(lua_State *L) {
  lfb_submitter s = {check_proc(L)->pool, proc_submit, proc_error, 0};
  return lfb_map_on(L, &s);
}

static int p_shutdown(lua_State *L) {
  lfb_procexec *ex = luaL_checkudata(L, 1, LFB_PROCPOOL);
  if (ex->pool == NULL) return 0; /* its __gc shut it down */
  int wait, cancel;
  lfb_shutdown_args(L, &wait, &cancel);
  lf_procpool_shutdown(ex->pool, wait, cancel);
  lfb_poll(L, lfb_ctx_of(L));
  return 0;
}

static int p_close(lua_State *L) {
  lfb_procexec *ex = luaL_checkudata(L, 1, LFB_PROCPOOL);
  if (ex->pool == NULL) return 0;
  lf_procpool_shutdown(ex->pool, 1, 0);
  lfb_poll(L, lfb_ctx_of(L));
  return 0;
}

static int p_gc(lua_State *L) {
  lfb_procexec *ex = luaL_checkudata(L, 1, LFB_PROCPOOL);
  if (ex->pool == NULL) return 0;
  lf_procpool_shutdown(ex->pool, 1, 0);
  lfb_poll(L, lfb_ctx_of(L));
  lf_procpool_unref(ex->pool);
  ex->pool = NULL;
  return 0;
}

static int p_tostring(lua_State *L) {
  lfb_procexec *ex = luaL_checkudata(L, 1, LFB_PROCPOOL);
  if (ex->pool == NULL) {
    lua_pushliteral(L, "<ProcessPoolExecutor (collected)>");
    return 1;
  }
  static const char *const states[] = {"running", "shutdown", "broken"};
  lua_pushfstring(
      L, "<ProcessPoolExecutor at %p start_method='%s' workers=%d/%d state=%s>",
      (void *)ex->pool, methods_names[lf_procpool_start_method(ex->pool)],
      (int)lf_procpool_nworkers(ex->pool),
      (int)lf_procpool_max_workers(ex->pool),
      states[lf_procpool_status(ex->pool)]);
  return 1;
}

/* Encodes the initializer and its arguments (at fn, fn + 1) for another
 * process; pushes the bytes as a string and returns the payload's flags,
 * or pushes nil when there is no initializer. */
static uint32_t encode_init(lua_State *L, int fn) {
  lf_payload *p = lfb_encode_init(L, fn, 0);
  if (p == NULL) {
    lua_pushnil(L);
    return 0;
  }
  lua_pushlstring(L, p->data, p->len); /* may raise: p is lost then, rarely */
  uint32_t flags = p->flags;
  lf_payload_free(p);
  return flags;
}

static int m_processpool(lua_State *L) {
  static const char *const known[] = {
      "max_workers", "initializer", "initargs", "max_tasks_per_child",
      "start_method", "worker", NULL};
  lua_Integer max = lfb_default_max_workers > 0 ? lfb_default_max_workers
                                                : lf_cpu_count();
  lua_Integer max_tasks = 0;
  int method = LF_START_SPAWN;
  const char *worker = NULL;
  int opts = 0;
  if (lua_istable(L, 1)) {
    opts = 1;
    lfb_check_options(L, 1, known);
    if (lua_getfield(L, 1, "max_workers") != LUA_TNIL)
      luaL_argcheck(L, lfb_getint(L, -1, &max), 1,
                    "'max_workers' must be an integer");
    if (lua_getfield(L, 1, "max_tasks_per_child") != LUA_TNIL) {
      luaL_argcheck(L, lfb_getint(L, -1, &max_tasks), 1,
                    "'max_tasks_per_child' must be an integer");
      luaL_argcheck(L, max_tasks > 0, 1,
                    "'max_tasks_per_child' must be greater than 0");
      luaL_argcheck(L, max_tasks <= UINT32_MAX, 1,
                    "'max_tasks_per_child' is too large");
    }
    if (lua_getfield(L, 1, "start_method") != LUA_TNIL) {
      luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 1,
                    "'start_method' must be a string");
      const char *m = lua_tostring(L, -1);
      method = -1;
      for (int i = 0; methods_names[i]; i++)
        if (strcmp(m, methods_names[i]) == 0) method = i;
      if (method < 0)
        luaL_argerror(L, 1, lua_pushfstring(L, "invalid start_method '%s'", m));
    }
    /* The path string stays on the stack while it is used. */
    if (lua_getfield(L, 1, "worker") != LUA_TNIL) {
      luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 1,
                    "'worker' must be a string");
      worker = lua_tostring(L, -1);
    }
  } else if (!lua_isnoneornil(L, 1)) {
    lfb_checkint(L, 1, &max, "table or integer");
  }
  luaL_argcheck(L, max > 0, 1, "'max_workers' must be greater than 0");
  luaL_argcheck(L, max <= 100000, 1, "'max_workers' is too large");

  char exe[PATH_MAX + 64] = "";
  int ok;
  if (worker) {
    snprintf(exe, sizeof exe, "%s", worker);
    ok = access(exe, X_OK) == 0;
  } else {
    ok = find_worker(exe, sizeof exe);
  }
  if (method == LF_START_FORK && !ok) {
    exe[0] = '\0'; /* fork needs none (a sanitized build uses one if found) */
  } else if (!ok) {
    int e = errno;
    return lfb_raise(L, "RuntimeError",
                     "cannot run the worker executable '%s': %s (build it "
                     "with make, or name it with the 'worker' option or "
                     "LUAFUTURES_WORKER)",
                     exe[0] ? exe : WORKER_EXE,
                     exe[0] ? strerror(e) : "not found");
  }

  /* The hello every worker reads first: paths, then the initializer. */
  int fn = lua_gettop(L) + 1;
  if (opts) {
    lua_getfield(L, 1, "initializer");
    lua_getfield(L, 1, "initargs");
  } else {
    lua_pushnil(L);
    lua_pushnil(L);
  }
  uint32_t iflags = encode_init(L, fn); /* fn fn+1 bytes */
  lua_pushinteger(L, iflags);
  lfb_push_paths(L, NULL, NULL);
  int top = lua_gettop(L); /* ... bytes flags path cpath */
  lfb_enc e;
  lfb_enc_init(&e, L);
  e.handles_ok = 0;
  int rc = lfb_enc_value(&e, L, top - 1);
  if (rc == 0) rc = lfb_enc_value(&e, L, top);
  if (rc == 0) rc = lfb_enc_value(&e, L, top - 3);
  if (rc == 0) rc = lfb_enc_value(&e, L, top - 2);
  if (rc != 0) {
    lfb_enc_free(&e, L);
    return luaL_error(L, "not enough memory");
  }
  lf_payload *h = lfb_enc_finish(&e, L);
  if (h == NULL) return luaL_error(L, "not enough memory");

  lfb_procexec *ex = lua_newuserdatauv(L, sizeof *ex, 0);
  ex->pool = NULL;
  luaL_setmetatable(L, LFB_PROCPOOL);
  /* How long a new worker may take to answer: LUAFUTURES_WORKER_TIMEOUT
   * seconds, for machines slower than any we know (0: the default). */
  const char *wt = getenv("LUAFUTURES_WORKER_TIMEOUT");
  lf_proc_config cfg = {(size_t)max, (size_t)max_tasks, method, exe,
                        h->data, h->len, wt ? strtod(wt, NULL) : 0};
  int err = 0;
  ex->pool = lf_procpool_new(&cfg, &proc_hooks, NULL, &err);
  lf_payload_free(h);
  if (ex->pool == NULL) return luaL_error(L, "not enough memory");
  return 1;
}

static const luaL_Reg meta[] = {
    {"__tostring", p_tostring},
    {"__gc", p_gc},
    {"__close", p_close},
    {NULL, NULL},
};

static const luaL_Reg methods[] = {
    {"submit", p_submit},
    {"map", p_map},
    {"shutdown", p_shutdown},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"ProcessPoolExecutor", m_processpool},
    {NULL, NULL},
};

void lfb_open_process(lua_State *L) {
  pthread_once(&module_dir_once, find_module_dir);
  luaL_newmetatable(L, LFB_PROCPOOL);
  lfb_setfuncs(L, meta);
  lua_newtable(L);
  lfb_setfuncs(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lfb_setfuncs(L, funcs);
}
