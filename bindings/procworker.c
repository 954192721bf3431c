/*
 * procworker.c -- the life of a process worker: the main of
 * bin/luafutures-worker and of a forked worker (start_method "fork").
 *
 * A worker process builds one Lua state the way a thread worker does
 * (worker.c), from the hello the pool sends it first: the creator's
 * package.path and package.cpath and the initializer. It then runs tasks
 * until the pool closes the queue or max_tasks_per_child is reached, and
 * says goodbye. In a worker, thread_name() is "MainThread": it is its
 * process's main thread, as in Python. Single-threaded: no lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../runtime/lf_proc.h"
#include "lfb.h"

typedef struct hello {
  const char *data;
  size_t len;
} hello;

/* Decodes the hello: path, cpath, initializer bytes (or nil), their
 * flags, the mask of the standard libraries. */
static int read_hello(lua_State *L) {
  hello *h = lua_touserdata(L, 1);
  lf_payload *p = lf_payload_new(h->data, h->len, NULL, 0, 0);
  if (p == NULL) return luaL_error(L, "not enough memory");
  lua_settop(L, 0);
  lfb_dec d;
  lfb_dec_init_remote(&d, p);
  int rc = lfb_dec_protected(&d, L, 5);
  lf_payload_free(p);
  return rc == 0 ? 5 : lua_error(L);
}

static int make_nomem(lua_State *L) {
  lf_payload **out = lua_touserdata(L, 1);
  *out = lfb_outcome_canned(L, "RuntimeError", "not enough memory");
  return 0;
}

/* Runs tasks until the queue closes or max_tasks ran: 0. Anything else
 * means a task may be lost, so the worker must not say goodbye: the pool
 * then breaks instead of waiting for it. A task whose result finds no
 * memory gets the error encoded before any task ran. */
static int worker_life(lua_State *L, int qfd, int cfd, size_t max_tasks) {
  lf_payload *nomem = NULL;
  lua_pushcfunction(L, make_nomem);
  lua_pushlightuserdata(L, &nomem);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK || nomem == NULL) return 5;
  int rc = 0;
  for (size_t ran = 0; rc == 0 && (max_tasks == 0 || ran < max_tasks); ran++) {
    lf_payload *task;
    uint32_t id;
    int got = lf_proc_child_next(qfd, &task, &id);
    if (got == 1) break; /* no more work */
    if (got != 0) {
      rc = 6;
      break;
    }
    int failed = 0;
    lf_payload *res = lfb_worker_run(L, NULL, task, &failed, 0);
    if (res == NULL) {
      res = lfb_outcome_copy(nomem);
      failed = 1;
      if (res == NULL) rc = 5;
    }
    /* What the task printed comes out before its result is known. */
    fflush(stdout);
    if (res && lf_proc_child_reply(cfd, id, res, failed) != 0)
      rc = 7; /* no pool */
  }
  lf_payload_free(nomem);
  return rc;
}

/* Builds the worker's state from the hello in L; 0 or an LFB_W_* code. */
static int setup_from_hello(lua_State *L, const luafutures_hooks *h) {
  char *path = strdup(luaL_optstring(L, 1, ""));
  char *cpath = strdup(luaL_optstring(L, 2, ""));
  size_t ilen = 0;
  const char *ibytes = lua_tolstring(L, 3, &ilen);
  lf_payload *init =
      ibytes ? lf_payload_new(ibytes, ilen, NULL, 0,
                              (uint32_t)lua_tointeger(L, 4))
             : NULL;
  unsigned libs = (unsigned)lua_tointeger(L, 5);
  lua_settop(L, 0);
  char label[48];
  snprintf(label, sizeof label, "process %ld", (long)getpid());
  lfb_wconf c = {"MainThread", label, path, cpath, init, 1, libs, NULL, 0, *h};
  int rc = path && cpath && (ibytes == NULL || init)
               ? lfb_worker_setup(L, &c)
               : LFB_W_NOMEM;
  free(path);
  free(cpath);
  lf_payload_free(init);
  return rc;
}

int lfb_proc_worker(int qfd, int cfd) {
  char *h;
  size_t hlen, max_tasks;
  if (lf_proc_child_start(qfd, cfd, &h, &hlen, &max_tasks) != 0) return 3;
  luafutures_hooks hooks;
  lfb_hooks_get(&hooks); /* a host's worker executable may have set them */
  lua_State *L = lfb_new_state(&hooks);
  if (L == NULL) {
    free(h);
    return 4;
  }
  hello hl = {h, hlen};
  lua_pushcfunction(L, read_hello);
  lua_pushlightuserdata(L, &hl);
  int ok = lua_pcall(L, 1, 5, 0) == LUA_OK;
  free(h);
  if (!ok) {
    lua_close(L);
    return 4;
  }
  int rc = setup_from_hello(L, &hooks);
  if (rc == LFB_W_INITFAILED) {
    fflush(stdout);
    lf_proc_child_initfailed(cfd);
    return 1; /* the state is left to exit: the pool is broken anyway */
  }
  /* Out of memory with no initializer to blame: the worker dies without
   * a word, and the pool says a worker terminated abruptly. */
  if (rc != 0) {
    lfb_worker_close(L);
    return 4;
  }
  rc = worker_life(L, qfd, cfd, max_tasks);
  lfb_worker_close(L);
  fflush(stdout);
  if (rc == 0) lf_proc_child_bye(cfd);
  return rc;
}

static int is_socket(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* The pool hands a spawned worker its task queue on fd 3 and its own
 * channel on fd 4 (runtime/lf_proc.h); run by hand, it says what it is. */
int luafutures_worker_main(int argc, char **argv) {
  (void)argc;
  if (!is_socket(LF_PROC_QFD) || !is_socket(LF_PROC_CFD)) {
    fprintf(stderr,
            "%s: runs the tasks of a ProcessPoolExecutor, which starts it; "
            "it is not run by hand\n",
            argv && argv[0] ? argv[0] : "luafutures-worker");
    return 2;
  }
  return lfb_proc_worker(LF_PROC_QFD, LF_PROC_CFD);
}
