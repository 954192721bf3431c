/*
 * remote.c -- what the executors of remote pools share: those whose tasks
 * leave the process (ProcessPoolExecutor in processpool.c, the MPI
 * executors in mpi.c), all of them a runtime process pool (lf_proc.h)
 * over some transport. Here: the errors that fail a broken pool's
 * futures, encoded once per pool since the manager thread that needs them
 * has no Lua state; the hello every worker reads first; and the executor
 * operations that are the pool's own functions.
 *
 * A kind brings its error type and a table of texts, one per
 * lf_proc_cause. No lock: a config is written by its creating state
 * before the pool exists and only read afterwards, from any thread.
 */
#include <stdio.h>
#include <stdlib.h>

#include "remote.h"

static int cause_index(int cause) {
  return cause > 0 && cause < LFB_NCAUSES ? cause : 0;
}

void lfb_remote_release(void *ud) {
  lfb_remote *c = ud;
  for (int i = 0; i < LFB_NCAUSES; i++) lf_payload_free(c->canned[i]);
  lf_payload_free(c->hello);
  free(c);
}

/* The runtime's detail names the worker and what it did; without memory
 * for that message, the canned one without the detail. */
lf_payload *lfb_remote_broken(void *ud, int cause, const char *detail) {
  lfb_remote *c = ud;
  if (*detail) {
    char m[400];
    snprintf(m, sizeof m, "%s (%s)", c->texts[cause_index(cause)], detail);
    lf_payload *p = lfb_error_payload(c->type, m);
    if (p != NULL) return p;
  }
  return lfb_outcome_copy(c->canned[cause_index(cause)]);
}

/* The hello, kept in c: path, cpath, the initializer (at fn, fn + 1) as
 * bytes and their flags, then the kind's nextra values from the top of
 * the stack, which are popped. What raises leaves its allocation in c. */
static void encode_hello(lua_State *L, lfb_remote *c, int fn, int nextra) {
  int extra = lua_gettop(L) - nextra + 1;
  c->hello = lfb_encode_init(L, fn, 0);
  lfb_push_paths(L);
  if (c->hello) lua_pushlstring(L, c->hello->data, c->hello->len);
  else lua_pushnil(L);
  lua_pushinteger(L, c->hello ? c->hello->flags : 0);
  lf_payload_free(c->hello);
  c->hello = NULL;
  int top = lua_gettop(L), rc = 0; /* ... extras path cpath bytes flags */
  lfb_enc e;
  lfb_enc_init(&e, L);
  e.handles_ok = 0;
  for (int i = top - 3; i <= top && rc == 0; i++) rc = lfb_enc_value(&e, L, i);
  for (int i = extra; i < extra + nextra && rc == 0; i++)
    rc = lfb_enc_value(&e, L, i);
  if (rc == 0) c->hello = lfb_enc_finish(&e, L);
  else lfb_enc_free(&e, L);
  if (c->hello == NULL) luaL_error(L, "not enough memory");
  lua_settop(L, extra - 1);
}

lfb_remote *lfb_remote_new(lua_State *L, lfb_executor *ex, const char *type,
                           const char *const texts[LFB_NCAUSES], int fn,
                           int nextra) {
  lfb_remote *c = calloc(1, sizeof *c);
  if (c == NULL) luaL_error(L, "not enough memory");
  lfb_exec_hold(ex, c, lfb_remote_release);
  c->type = type;
  c->texts = texts;
  for (int i = 0; i < LFB_NCAUSES; i++) {
    c->canned[i] = lfb_outcome_canned(L, type, texts[i]);
    if (c->canned[i] == NULL) luaL_error(L, "not enough memory");
  }
  encode_hello(L, c, fn, nextra);
  return c;
}

double lfb_remote_answer_timeout(double dflt) {
  const char *wt = getenv("LUAFUTURES_WORKER_TIMEOUT");
  double t = wt ? strtod(wt, NULL) : 0;
  return t > 0 ? t : dflt;
}

int lfb_remote_adopt(lua_State *L, lfb_executor *ex, lfb_remote *c) {
  if (ex->pool == NULL) return luaL_error(L, "not enough memory");
  ex->held = NULL; /* the pool's now */
  lf_payload_free(c->hello); /* copied */
  c->hello = NULL;
  return 1;
}

/* ---- the operations that are the pool's own -------------------------------- */

int lfb_remote_submit(void *p, lf_future *f) {
  lfb_counts *c = &((lfb_remote *)lf_procpool_ud(p))->counts;
  lf_future_tally(f, &c->ended_as);
  return lfb_counts_submit(c, f, lf_procpool_submit(p, f));
}
int lfb_remote_shutdown(void *p, int wait, int cancel) {
  return lf_procpool_shutdown(p, wait, cancel);
}
int lfb_remote_status(void *p) { return lf_procpool_status(p); }
size_t lfb_remote_nworkers(void *p) { return lf_procpool_nworkers(p); }
size_t lfb_remote_max_workers(void *p) { return lf_procpool_max_workers(p); }
void lfb_remote_unref(void *p) { lf_procpool_unref(p); }
void lfb_remote_ref(void *p) { lf_procpool_ref(p); }
void lfb_remote_failure(void *p, char *buf, size_t len) {
  lf_procpool_detail(p, buf, len);
}
const char *lfb_remote_cause(const char *const texts[LFB_NCAUSES], void *p) {
  return texts[cause_index(lf_procpool_cause(p))];
}
