/*
 * mpiworker.c -- how a worker rank serves the pools of its client
 * (lf_mpi.h): the loop of `mpiexec ... -m concurrent.futures.mpi` on every
 * rank but 0, and of MPICommExecutor on every rank but the root.
 *
 * A pool's HELLO carries what a process worker's hello does (the client's
 * package.path and package.cpath, the initializer) and `isolate`. Without
 * isolate the rank builds a worker state for the pool the way a process
 * worker does (worker.c), named "MPIWorker-<rank>@<host>", and runs the
 * pool's tasks in it, in order, on this thread. With isolate it makes a
 * ProcessPoolExecutor of one worker instead (in the serving state L, with
 * the client's paths), hands it each task's bytes as they came and waits:
 * a task that exits or crashes kills only that child, its future fails
 * with BrokenProcessPool, and the next task gets a fresh pool.
 *
 * A failed task's traceback is headed by the rank and host, as
 * mpi4py.futures does: the result is decoded and encoded again with the
 * new traceback (a result from a child process is decoded as untrusted).
 * No lock: the served pools belong to this thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lfb_mpi.h"

typedef struct served {
  struct served *next;
  uint32_t pool;
  int from;
  uint32_t received;
  lua_State *W; /* its worker state; NULL when isolated */
  int iso;      /* isolated: registry ref of {opts, ex}, else LUA_NOREF */
} served;

static char worker_name[300];

/* ---- a pool's hello ---------------------------------------------------------- */

/* Decodes the hello (light userdata 1) into its five values. */
static int read_hello(lua_State *L) {
  const lf_payload *p = lua_touserdata(L, 1);
  lua_settop(L, 0);
  lfb_dec d;
  lfb_dec_init_remote(&d, p); /* from the client rank */
  for (int i = 0; i < LFB_MPI_HELLO_VALUES; i++) lfb_dec_value(&d, L);
  return LFB_MPI_HELLO_VALUES;
}

/* The initializer bytes at 3 (flags at 4) as the options of a one-worker
 * process pool: {max_workers = 1, initializer = fn, initargs = {...}}. */
static void push_iso_opts(lua_State *L) {
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, 1);
  lua_setfield(L, -2, "max_workers");
  if (lua_isnil(L, 3)) return;
  size_t len;
  const char *b = lua_tolstring(L, 3, &len);
  lf_payload *init = lf_payload_new(b, len, NULL, 0, (uint32_t)lua_tointeger(L, 4));
  if (init == NULL) luaL_error(L, "not enough memory");
  lfb_dec d;
  lfb_dec_init_remote(&d, init);
  int base = lua_gettop(L);
  lua_pushnil(L); /* refs */
  d.refs = base + 1;
  uint32_t n = lfb_dec_count(&d, L);
  lfb_checkstack(L, n, "too many 'initargs'");
  for (uint32_t i = 0; i < n; i++) lfb_dec_value(&d, L); /* fn args... */
  lf_payload_free(init); /* a decode error above leaks it: corrupt bytes */
  lua_createtable(L, (int)n, 0);
  for (uint32_t i = n; i > 1; i--) {
    lua_insert(L, -2);
    lua_rawseti(L, -2, i - 1);
  }
  lua_setfield(L, base, "initargs");
  lua_setfield(L, base, "initializer");
  lua_settop(L, base);
}

/* (hello values 1-5) -> {opts = ..., path =, cpath =}: what an isolated
 * pool is made from, again after each break. */
static int iso_new(lua_State *L) {
  lua_createtable(L, 0, 4);
  push_iso_opts(L);
  lua_setfield(L, -2, "opts");
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "path");
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "cpath");
  return 1;
}

/* Makes the isolated pool of record 1 (its `ex`), with the client's paths
 * in package.path and cpath while it reads them. */
static int iso_start(lua_State *L) {
  lua_getglobal(L, "package");           /* rec pkg */
  lua_getfield(L, 2, "path");
  lua_getfield(L, 2, "cpath");           /* rec pkg oldpath oldcpath */
  lua_getfield(L, 1, "path");
  lua_setfield(L, 2, "path");
  lua_getfield(L, 1, "cpath");
  lua_setfield(L, 2, "cpath");
  lua_getglobal(L, "require");
  lua_pushliteral(L, LFB_MODNAME);
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "ProcessPoolExecutor");
  lua_getfield(L, 1, "opts");
  int rc = lua_pcall(L, 1, 1, 0);        /* rec pkg op oc mod ex|err */
  lua_pushvalue(L, 3);
  lua_setfield(L, 2, "path");
  lua_pushvalue(L, 4);
  lua_setfield(L, 2, "cpath");
  if (rc != LUA_OK) return lua_error(L);
  lua_setfield(L, 1, "ex");
  return 0;
}

static void hello(lua_State *L, served *s, lf_payload *h) {
  lua_pushcfunction(L, read_hello);
  lua_pushlightuserdata(L, h);
  int ok = lua_pcall(L, 1, LFB_MPI_HELLO_VALUES, 0) == LUA_OK;
  if (ok && lua_toboolean(L, -1)) {
    lua_pushcfunction(L, iso_new);
    lua_rotate(L, -6, 1);
    ok = lua_pcall(L, 5, 1, 0) == LUA_OK;
    if (ok) s->iso = luaL_ref(L, LUA_REGISTRYINDEX);
  } else if (ok) {
    size_t ilen = 0;
    const char *ib = lua_tolstring(L, -3, &ilen);
    lf_payload *init = ib ? lf_payload_new(ib, ilen, NULL, 0,
                                           (uint32_t)lua_tointeger(L, -2))
                          : NULL;
    const char *path = lua_tostring(L, -5), *cpath = lua_tostring(L, -4);
    lfb_wconf c = {worker_name, NULL, path ? path : "", cpath ? cpath : "",
                   init, 1, 0, NULL, 0, {0}};
    int why = LFB_W_NOMEM;
    s->W = ib && !init ? NULL : lfb_worker_new(&c, &why);
    lf_payload_free(init);
    ok = s->W != NULL;
    if (why == LFB_W_INITFAILED) lua_pushnil(L); /* worker.c said why */
  }
  if (!ok && !lua_isnil(L, -1))
    fprintf(stderr, "luafutures: %s: %s\n", worker_name,
            lua_isstring(L, -1) ? lua_tostring(L, -1)
                                : "cannot build the pool's worker state");
  lua_settop(L, 0);
  if (ok) lfb_mpi->reply_ready(s->from, s->pool);
  else lfb_mpi->reply_initfail(s->from, s->pool);
}

/* ---- tracebacks headed by rank and host --------------------------------------- */

typedef struct heading {
  const lf_payload *res;
  lf_payload *out;
} heading;

static int head(lua_State *L) {
  heading *h = lua_touserdata(L, 1);
  lua_settop(L, 0);
  lfb_dec d;
  uint32_t n = lfb_outcome_open(&d, h->res);
  lua_pushnil(L);
  d.refs = 1;
  lfb_enc e;
  lfb_enc_init(&e, L); /* 2, 3 */
  e.handles_ok = 0;
  lfb_enc_u32(&e, n);
  for (uint32_t i = 0; i < n; i++) {
    int top = lua_gettop(L), ok;
    int k = lfb_outcome_push(L, &d, 1, &ok);
    if (ok) {
      if (lfb_outcome_values(&e, L, top + 1, k) != 0) {
        lfb_enc_pusherror(&e, L); /* what could not be copied again */
        e.err[0] = '\0';
        lfb_outcome_error(&e, L, -1, 0);
      }
    } else {
      lua_pushfstring(L, "rank %d of %d on %s:\n%s", lfb_mpi_rank,
                      lfb_mpi_size, lfb_mpi_host,
                      lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
      lfb_outcome_error(&e, L, top + 1, -1);
    }
    lua_settop(L, top);
  }
  h->out = lfb_enc_finish(&e, L);
  return 0;
}

/* The result with each traceback headed; the result as it was when that
 * fails (out of memory). Takes res. */
static lf_payload *headed(lua_State *L, lf_payload *res) {
  heading h = {res, NULL};
  lua_pushcfunction(L, head);
  lua_pushlightuserdata(L, &h);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK || h.out == NULL) {
    lua_settop(L, 0);
    return res;
  }
  lua_settop(L, 0);
  lf_payload_free(res);
  return h.out;
}

/* ---- running tasks -------------------------------------------------------------- */

/* Out of memory, as every pool kind says it: lf_payload_oom() travels as
 * a failed answer with no bytes, which the client reads as Lua's own
 * `not enough memory` (procworker.c does the same). */
static lf_payload *nomem(int *failed) {
  *failed = 1;
  return lf_payload_oom();
}

/* The task in a child process of the pool's isolated executor, made anew
 * when the last one broke. */
static lf_payload *run_isolated(lua_State *L, served *s, lf_payload *task,
                                int *failed) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->iso); /* rec */
  lfb_executor *ex = NULL;
  if (lua_getfield(L, -1, "ex") == LUA_TUSERDATA) ex = lua_touserdata(L, -1);
  if (ex && ex->ops->status(ex->pool) == LF_POOL_BROKEN) {
    ex->ops->shutdown(ex->pool, 1, 0);
    ex = NULL;
  }
  lua_pop(L, 1);
  if (ex == NULL) {
    lua_pushcfunction(L, iso_start);
    lua_pushvalue(L, -2);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
      lua_settop(L, 0);
      lf_payload_free(task);
      return nomem(failed);
    }
    lua_getfield(L, -1, "ex");
    ex = lua_touserdata(L, -1);
  }
  lf_future *f = lf_future_new();
  if (f == NULL) {
    lua_settop(L, 0);
    lf_payload_free(task);
    return nomem(failed);
  }
  lf_future_set_task(f, task);
  int rc = ex->ops->submit(ex->pool, f);
  char why[200];
  if (rc == 0) rc = lfb_await(L, lfb_ctx_push(L), f, -1, why, sizeof why);
  lua_settop(L, 0);
  lf_payload *res = NULL;
  if (rc == 0) {
    const lf_payload *r = lf_future_result(f, failed);
    res = r == lf_payload_oom() /* the child's, or its pool's, shortage */
              ? nomem(failed)
              : lf_payload_new(r->data, r->len, NULL, 0, r->flags);
  }
  lf_future_unref(f);
  return res ? res : nomem(failed);
}

static void task(lua_State *L, served *s, lf_mpi_msg *m) {
  s->received++;
  int failed = 0;
  lf_payload *res = s->W ? lfb_worker_run(s->W, NULL, m->data, &failed, 0)
                         : run_isolated(L, s, m->data, &failed);
  m->data = NULL; /* taken */
  if (res == NULL) res = nomem(&failed);
  /* No bytes to head: the client reads it as `not enough memory`. */
  if (failed && res != lf_payload_oom()) res = headed(s->W ? s->W : L, res);
  fflush(stdout); /* what the task printed comes out before its result */
  lfb_mpi->reply(s->from, s->pool, m->id, res, failed);
}

/* ---- the loop --------------------------------------------------------------------- */

static void forget(lua_State *L, served **list, served *s) {
  for (served **pp = list; *pp; pp = &(*pp)->next)
    if (*pp == s) {
      *pp = s->next;
      break;
    }
  if (s->W) lfb_worker_close(s->W);
  if (s->iso != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->iso);
    if (lua_getfield(L, -1, "ex") == LUA_TUSERDATA) {
      lfb_executor *ex = lua_touserdata(L, -1);
      ex->ops->shutdown(ex->pool, 1, 0);
    }
    lua_settop(L, 0);
    luaL_unref(L, LUA_REGISTRYINDEX, s->iso);
  }
  free(s);
}

static served *find(served *s, uint32_t pool) {
  while (s && s->pool != pool) s = s->next;
  return s;
}

/* One message; returns 0 when the service ends. */
static int serve_one(lua_State *L, served **list, lf_mpi_msg *m) {
  served *s = find(*list, m->pool);
  switch (m->kind) {
    case LF_MPI_HELLO:
      if (s) break; /* a pool says hello once */
      s = calloc(1, sizeof *s);
      if (s == NULL) luaL_error(L, "not enough memory");
      s->pool = m->pool;
      s->from = m->from;
      s->iso = LUA_NOREF;
      s->next = *list;
      *list = s;
      hello(L, s, m->data);
      break;
    case LF_MPI_TASK: /* not for a pool that dropped this rank, or whose
                       * worker state could not be built (it is broken) */
      if (s && (s->W || s->iso != LUA_NOREF)) task(L, s, m);
      break;
    case LF_MPI_BYE:
      if (s == NULL) break;
      lfb_mpi->reply_bye(s->from, s->pool, s->received);
      forget(L, list, s);
      break;
    case LF_MPI_DROP:
      if (s) forget(L, list, s);
      break;
    case LF_MPI_EXIT: return 0;
  }
  return 1;
}

typedef struct service {
  lua_State *L;
  served *list;
  lf_mpi_msg *m; /* the message being handled */
  int more;
} service;

static int serve_protected(lua_State *L) {
  service *sv = lua_touserdata(L, 1);
  lua_settop(L, 0);
  sv->more = serve_one(L, &sv->list, sv->m);
  return 0;
}

/* The transport's serve function, on its MPI thread: L is ours meanwhile
 * (its own thread waits in lfb_mpi_serve), but an error must not jump to
 * a frame of that thread, so each message is handled under lua_pcall. */
static int serve_cb(void *ud, lf_mpi_msg *m) {
  service *sv = ud;
  sv->m = m;
  lua_pushcfunction(sv->L, serve_protected);
  lua_pushlightuserdata(sv->L, sv);
  int ok = lua_pcall(sv->L, 1, 0, 0) == LUA_OK;
  lf_payload_free(m->data);
  m->data = NULL;
  if (!ok) { /* out of memory: say so on this rank, and stop */
    fprintf(stderr, "luafutures: %s: %s\n", worker_name,
            lfb_tostring_safe(sv->L, -1));
    lua_settop(sv->L, 0);
    return -1;
  }
  return sv->more;
}

void lfb_mpi_serve(lua_State *L) {
  snprintf(worker_name, sizeof worker_name, "MPIWorker-%d@%s", lfb_mpi_rank,
           lfb_mpi_host);
  lua_settop(L, 0);
  service sv = {L, NULL, NULL, 1};
  int rc = lfb_mpi->serve(serve_cb, &sv);
  while (sv.list) forget(L, &sv.list, sv.list);
  if (rc != 0) luaL_error(L, "not enough memory");
}
