/*
 * procworker.c -- the life of a process worker: the main of
 * bin/luafutures-worker and of a forked worker (start_method "fork").
 *
 * A worker process builds one Lua state the way a thread worker does
 * (worker.c), from the hello the pool sends it first: the creator's
 * package.path and package.cpath and the initializer. It then runs tasks
 * until the pool closes the queue or max_tasks_per_child is reached, and
 * says goodbye. In a worker, thread_name() is "MainThread": it is its
 * process's main thread, as in Python. A task that brings a Shared by id
 * the worker has no copy of asks the pool for its bytes (fetch_shared), so
 * they come once per worker process. Out of memory never ends a worker
 * silently: a task that finds none (for the state, or for its result)
 * fails with `not enough memory` and the worker goes on, as a thread
 * worker does. Single-threaded: no lock.
 */
#include <malloc.h>
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

/* The worker's state, built from the hello it keeps: out of memory, L
 * stays NULL and building is tried again before each task, as a thread
 * worker does (pool.c), so memory that comes back is used. */
typedef struct wstate {
  hello hl;
  lua_State *L;
  size_t max_tasks;
  luafutures_hooks hooks; /* a host's worker executable may have set them */
} wstate;

static int build_state(wstate *w);

/* The task running now and the channel to ask on, for lfb_shared_fetch. */
static uint32_t cur_task;
static int cur_cfd = -1;

/* The bytes of a Shared the running task brought by id, from the pool. */
static const char *fetch_shared(uint64_t id, lf_payload **p) {
  int rc = lf_proc_child_need(cur_cfd, cur_task, id, p);
  if (rc == 0) return NULL;
  return rc == 1 ? "the pool could not send them (out of memory or "
                   "descriptors)"
                 : "the pool is gone";
}

/* Runs one task: the reply, or lf_payload_oom() (it travels as a failed
 * answer with no bytes, which the pool reads as `not enough memory`) when
 * there was no memory for the state or for the result. */
static lf_payload *run_one(wstate *w, lf_payload *task, int *failed, int *rc) {
  if (w->L == NULL && (*rc = build_state(w)) != 0 && *rc != LFB_W_NOMEM) {
    lf_payload_free(task);
    return NULL;
  }
  *rc = 0;
  *failed = 1;
  if (w->L == NULL) {
    lf_payload_free(task);
    return lf_payload_oom();
  }
  *failed = 0;
  lf_payload *res = lfb_worker_run(w->L, NULL, task, failed, 0);
  if (res == NULL) *failed = 1;
  return res ? res : lf_payload_oom();
}

/* Runs tasks until the queue closes or max_tasks ran: 0. Anything else
 * means a task may be lost, so the worker must not say goodbye: the pool
 * then breaks instead of waiting for it. LFB_W_INITFAILED: an initializer
 * run again (its first run found no memory) failed. */
static int worker_life(wstate *w, int qfd, int cfd) {
  int rc = 0;
  for (size_t ran = 0; rc == 0 && (w->max_tasks == 0 || ran < w->max_tasks);
       ran++) {
    lf_payload *task;
    uint32_t id;
    int got = lf_proc_child_next(qfd, &task, &id);
    if (got == 1) break; /* no more work */
    if (got != 0) return 6;
    int failed;
    cur_task = id;
    lf_payload *res = run_one(w, task, &failed, &rc);
    if (res == NULL) return rc;
    /* What the task printed comes out before its result is known. */
    fflush(stdout);
    if (lf_proc_child_reply(cfd, id, res, failed) != 0) return 7; /* no pool */
  }
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

static int build_state(wstate *w) {
  lua_State *L = lfb_new_state(&w->hooks);
  if (L == NULL) return LFB_W_NOMEM;
  lua_pushcfunction(L, read_hello);
  lua_pushlightuserdata(L, &w->hl);
  /* The hello comes from the pool, which is trusted: only memory fails. */
  int rc = lua_pcall(L, 1, 5, 0) == LUA_OK ? setup_from_hello(L, &w->hooks)
                                            : LFB_W_NOMEM;
  if (rc == LFB_W_INITFAILED) {
    w->L = L; /* left to exit with the worker: the pool is broken anyway */
    return rc;
  }
  if (rc != 0) lfb_worker_close(L);
  else w->L = L;
  return rc;
}

int lfb_worker_process;

/* The process is the pool's: its heap keeps what a task freed, up to
 * sizes that big tasks reach, instead of handing it back to the kernel
 * and faulting it in again, a page at a time, for the next task (glibc's
 * own thresholds start at 128 KiB and adapt only up to 32 MiB). */
static void keep_freed_memory(void) {
#ifdef M_MMAP_THRESHOLD
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
#endif
}

int lfb_proc_worker(int qfd, int cfd) {
  keep_freed_memory();
  lfb_worker_process = 1; /* it never traces: its parent does */
  cur_cfd = cfd;
  lfb_shared_fetch = fetch_shared;
  char *h;
  size_t hlen;
  wstate w = {{NULL, 0}, NULL, 0, {0}};
  lfb_hooks_get(&w.hooks);
  int started = lf_proc_child_start(qfd, cfd, &h, &hlen, &w.max_tasks);
  if (started != 0) return started == LF_ENOMEM ? LF_PROC_EXIT_NOMEM : 6;
  w.hl = (hello){h, hlen};
  int rc = build_state(&w);
  if (rc != LFB_W_INITFAILED) rc = worker_life(&w, qfd, cfd);
  free(h);
  if (rc == LFB_W_INITFAILED) {
    fflush(stdout);
    lf_proc_child_initfailed(cfd);
    return 1;
  }
  if (w.L) lfb_worker_close(w.L);
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
