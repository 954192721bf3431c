/*
 * threadpool.c -- ThreadPoolExecutor: its constructor and the operations
 * of a runtime thread pool (lf.h) for the executor class (executor.c).
 *
 * Each worker thread builds its own lua_State (worker.c) when it starts
 * and runs every task of that worker in it. The configuration every
 * worker is built from (paths, initializer) is allocated while the new
 * executor object holds it, then handed to the pool, which frees it when
 * it is destroyed. It also keeps why the pool broke and the error payloads
 * that say so, encoded when the pool is made: a worker thread that fails
 * has no Lua state to encode them in.
 *
 * Thread pool objects are handles: a task that receives one gets an
 * object for the same pool (lfb_executor_push) that does not own it.
 * `cause` is written once, by the first worker that fails (atomic).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lfb.h"

enum { CANNED_INIT, CANNED_NOMEM, NCANNED };

static const char *const canned_text[NCANNED] = {
    "a thread initializer failed, the thread pool is not usable anymore",
    "not enough memory",
};

typedef struct tcfg {
  char *path, *cpath;
  lf_payload *init; /* initializer and its arguments, or NULL */
  unsigned libs;     /* the standard libraries of each worker state */
  _Atomic int cause; /* 0, or why the pool broke: LFB_W_* */
  _Atomic int why_set; /* why[] is written, by the worker that set cause */
  char why[300];     /* the initializer's error, for the Broken* message */
  lfb_counts counts; /* for stats() */
  lf_payload *canned[NCANNED];
} tcfg;

static void cfg_release(void *ud) {
  tcfg *cfg = ud;
  free(cfg->path);
  free(cfg->cpath);
  lf_payload_free(cfg->init);
  for (int i = 0; i < NCANNED; i++) lf_payload_free(cfg->canned[i]);
  free(cfg);
}

/* ---- the runtime's hooks -------------------------------------------------- */

static void *w_init(void *ud, const char *name) {
  tcfg *cfg = ud;
  char why[sizeof cfg->why] = "";
  lfb_wconf c = {name, NULL, cfg->path, cfg->cpath, cfg->init, 0, cfg->libs,
                 why, sizeof why, {0}};
  int rc = 0;
  lua_State *W = lfb_worker_new(&c, &rc);
  /* No memory for the state: no initializer failed, so the pool stays;
   * the worker tries again before each task and fails it meanwhile. */
  if (W == NULL && rc == LFB_W_NOMEM) return lf_pool_nomem();
  if (W == NULL) {
    int none = 0;
    if (atomic_compare_exchange_strong(&cfg->cause, &none, rc)) {
      memcpy(cfg->why, why, sizeof why);
      atomic_store(&cfg->why_set, 1);
    }
  }
  return W;
}

/* What the initializer's failure said, or NULL. */
static const char *why_of(tcfg *cfg) {
  return atomic_load(&cfg->why_set) && cfg->why[0] ? cfg->why : NULL;
}

static lf_payload *w_run(void *wctx, lf_future *f, lf_payload *task,
                         int *failed) {
  tcfg *cfg = lf_pool_ud(lf_current_pool());
  atomic_fetch_add(&cfg->counts.started, 1);
  lf_payload *res = lfb_worker_run(wctx, f, task, failed, 1);
  atomic_fetch_add(&cfg->counts.ended, 1);
  return res;
}

static void w_fini(void *wctx) { lfb_worker_close(wctx); }

static int canned_index(tcfg *cfg) {
  switch (atomic_load(&cfg->cause)) {
    case LFB_W_INITFAILED: return CANNED_INIT;
  }
  return CANNED_NOMEM; /* not broken: a result that found no memory */
}

static lf_payload *thread_broken(void *ud) {
  tcfg *cfg = ud;
  const char *why = why_of(cfg);
  if (why) { /* the message says what the initializer said */
    char m[sizeof cfg->why + 100];
    snprintf(m, sizeof m, "%s (%s)", canned_text[canned_index(cfg)], why);
    lf_payload *p = lfb_error_payload("BrokenThreadPool", m);
    if (p) return p;
  }
  return lfb_outcome_copy(cfg->canned[canned_index(cfg)]);
}

static const lf_pool_hooks thread_hooks = {
    w_init, w_run, w_fini, cfg_release, thread_broken,
};

/* ---- operations ----------------------------------------------------------- */

static int t_submit(void *p, lf_future *f) {
  lfb_counts *c = &((tcfg *)lf_pool_ud(p))->counts;
  lf_future_tally(f, &c->ended_as);
  return lfb_counts_submit(c, f, lf_pool_submit(p, f));
}
static int t_shutdown(void *p, int wait, int cancel) {
  return lf_pool_shutdown(p, wait, cancel);
}
static int t_status(void *p) { return lf_pool_status(p); }
static size_t t_nworkers(void *p) { return lf_pool_nworkers(p); }
static size_t t_max_workers(void *p) { return lf_pool_max_workers(p); }
static const char *t_prefix(void *p) { return lf_pool_prefix(p); }
static void t_unref(void *p) { lf_pool_unref(p); }
static void t_ref(void *p) { lf_pool_ref(p); }
static lf_future *t_stopped(void *p) { return lf_pool_stopped(p); }
static void t_failure(void *p, char *buf, size_t len) {
  const char *why = p ? why_of(lf_pool_ud(p)) : NULL;
  snprintf(buf, len, "%s", why ? why : "");
}
static const char *t_broken_message(void *p) {
  return canned_text[canned_index(lf_pool_ud(p))];
}
static void t_stats(void *p, lfb_stats *s) {
  const lfb_counts *c = &((tcfg *)lf_pool_ud(p))->counts;
  long running = atomic_load(&c->started) - atomic_load(&c->ended);
  s->running = s->busy = running > 0 ? running : 0;
  lfb_counts_fill(c, s);
  s->workers = (long)lf_pool_nworkers(p);
}

/* name, broken error, handles ok, tostring's field, then the operations */
static const lfb_exec_ops thread_ops = {
    LFB_THREADPOOL, "BrokenThreadPool", 1, "prefix", t_prefix,
    t_submit, t_shutdown, t_status, t_nworkers, t_max_workers,
    t_broken_message, t_unref, t_failure, t_ref, t_stats, 0, t_stopped,
    0, /* a Shared travels as a handle */
};

void lfb_executor_push(lua_State *L, lf_pool *p) {
  LFB_STACK_BEGIN(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, lfb_PROXIES);
  if (lua_rawgetp(L, -1, p) == LUA_TUSERDATA) {
    lua_remove(L, -2);
    LFB_STACK_CHECK(L, 1);
    return;
  }
  lua_pop(L, 1);
  lfb_executor *ex = lfb_exec_new(L, &thread_ops);
  ex->owner = 0;
  ex->pool = p;
  lf_pool_ref(p);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, -3, p);
  lua_remove(L, -2);
  LFB_STACK_CHECK(L, 1);
}

/* ---- the constructor ------------------------------------------------------ */

typedef struct topts {
  lua_Integer max;
  const char *prefix; /* NULL: the default one; its string stays on the stack */
  unsigned libs;
} topts;

/* Reads the arguments of ThreadPoolExecutor(opts | max_workers); the
 * initializer and initargs of a table are pushed, or two nils. */
static void read_options(lua_State *L, topts *o) {
  static const char *const known[] = {"max_workers", "thread_name_prefix",
                                      "initializer", "initargs", "libs",
                                      NULL};
  o->max = lfb_default_max_workers > 0 ? lfb_default_max_workers
                                       : lf_cpu_count() + 4;
  if (lfb_default_max_workers <= 0 && o->max > 32) o->max = 32;
  o->prefix = NULL;
  o->libs = LFB_LIBS_ALL;
  if (lua_istable(L, 1)) {
    lfb_check_options(L, 1, known);
    o->libs = lfb_libs_option(L, 1);
    if (lua_getfield(L, 1, "thread_name_prefix") != LUA_TNIL) {
      o->prefix = lfb_optstring(L, 1, "thread_name_prefix");
      if (*o->prefix == '\0') o->prefix = NULL; /* as Python: the default */
    }
  }
  lfb_exec_args(L, &o->max, 1000000);
}

static void nomem_if(lua_State *L, int cond) {
  if (cond) luaL_error(L, "not enough memory");
}

static _Atomic int pool_counter;

static int m_threadpool(lua_State *L) {
  topts o;
  read_options(L, &o);
  int fn = lua_gettop(L) - 1; /* initializer initargs */
  lfb_executor *ex = lfb_exec_new(L, &thread_ops);
  tcfg *cfg = calloc(1, sizeof *cfg);
  nomem_if(L, cfg == NULL);
  lfb_exec_hold(ex, cfg, cfg_release);
  cfg->libs = o.libs;
  cfg->init = lfb_encode_init(L, fn, 1);
  for (int i = 0; i < NCANNED; i++) {
    cfg->canned[i] = lfb_outcome_canned(
        L, i == CANNED_NOMEM ? "RuntimeError" : "BrokenThreadPool",
        canned_text[i]);
    nomem_if(L, cfg->canned[i] == NULL);
  }
  lfb_push_paths(L);
  cfg->path = strdup(lua_tostring(L, -2));
  cfg->cpath = strdup(lua_tostring(L, -1));
  lua_pop(L, 2);
  nomem_if(L, cfg->path == NULL || cfg->cpath == NULL);
  char name[64];
  if (o.prefix == NULL) {
    snprintf(name, sizeof name, "ThreadPoolExecutor-%d",
             atomic_fetch_add(&pool_counter, 1));
    o.prefix = name;
  }
  int err = 0;
  ex->pool = lf_pool_new((size_t)o.max, o.prefix, &thread_hooks, cfg, &err);
  nomem_if(L, ex->pool == NULL);
  ex->held = NULL; /* the pool's now */
  lfb_proxy_remember(L, ex->pool, -1);
  lfb_exec_remember(L);
  return 1;
}

static const luaL_Reg ctors[] = {
    {"ThreadPoolExecutor", m_threadpool},
    {NULL, NULL},
};

void lfb_open_threadpool(lua_State *L) {
  lfb_exec_open(L, &thread_ops, ctors);
}
