/*
 * deadlock.c -- deciding that a wait can never end.
 *
 * The wait-for graph: a pool worker that blocks with no timeout records the
 * futures it waits on and whether it needs all of them or any one
 * (lf_worker.waiting_on, written under lf__graph_mu). A running future
 * names its worker (f->at.runner), a pending one its pool (f->at.pool);
 * both are read under the future's stripe. The messages name futures in
 * the host's words (lf_set_describe): the runtime only hands over facts.
 *
 * A future is doomed when it is running on a doomed worker, or queued on a
 * pool that cannot start another worker and whose every worker is doomed.
 * A worker is doomed when one future it needs is doomed (a wait for all),
 * or every future it could take is (a wait for any one). Workers that wait
 * on each other in a cycle are all doomed. Anything else -- a worker that
 * is not blocked, a bare Future() that someone may still set, a done
 * future, a pool with room -- is "not doomed", so there are no false
 * alarms; the last waiter to close a cycle is the one told.
 *
 * The whole check runs under lf__graph_mu; it takes pool locks and stripes
 * inside it, one at a time.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

pthread_mutex_t lf__graph_mu = PTHREAD_MUTEX_INITIALIZER;

/* What a future waits for before it can finish. */
typedef struct fview {
  int state, bound;
  lf_pool *pool;
  lf_worker *runner;
} fview;

static fview look(lf_future *f) {
  fview v;
  pthread_mutex_t *m = lf__stripe(f);
  lf__lock(m);
  v.state = lf_future_state(f);
  v.bound = f->bound;
  v.pool = v.state == LF_PENDING ? f->at.pool : NULL;
  v.runner = v.state == LF_RUNNING ? f->at.runner : NULL;
  lf__unlock(m);
  return v;
}

/* The blocked workers that the waiter's fate may depend on, each with a
 * verdict: all start doomed and are cleared until nothing changes (the
 * greatest fixpoint, so workers that wait on each other in a cycle stay
 * doomed). Each round is linear in the waits, so the whole check is
 * polynomial however the waits overlap. */
typedef struct graph {
  lf_worker **w;
  unsigned char *doomed;
  size_t n, cap;
  int oom;
} graph;

static long find(const graph *g, const lf_worker *w) {
  for (size_t i = 0; i < g->n; i++)
    if (g->w[i] == w) return (long)i;
  return -1;
}

/* Adds w if it is blocked (a worker that is not can still make progress,
 * so it is never doomed and is left out). */
static void add(graph *g, lf_worker *w) {
  if (w->nwaiting == 0 || find(g, w) >= 0) return;
  if (g->n == g->cap) {
    size_t cap = g->cap ? g->cap * 2 : 8;
    lf_worker **nw = lf__realloc(g->w, cap * sizeof *nw);
    if (nw) g->w = nw;
    unsigned char *nd = nw ? lf__realloc(g->doomed, cap) : NULL;
    if (nd) g->doomed = nd;
    if (nw == NULL || nd == NULL) {
      g->oom = 1;
      return;
    }
    g->cap = cap;
  }
  g->w[g->n] = w;
  g->doomed[g->n++] = 1;
}

static int doomed_worker(graph *g, lf_worker *w, int collect) {
  if (collect) add(g, w);
  long i = find(g, w);
  return i >= 0 && g->doomed[i];
}

/* Whether f can never finish while the doomed workers stay doomed. With
 * `collect`, the workers it depends on are added to the graph first. */
static int doomed_future(graph *g, lf_future *f, int collect) {
  fview v = look(f);
  if (!v.bound || v.state >= LF_CANCELLED) return 0;
  if (v.state == LF_RUNNING)
    return v.runner && doomed_worker(g, v.runner, collect);
  if (v.pool == NULL || lf__pool_can_run_more(v.pool)) return 0;
  lf_worker **ws;
  size_t n = lf__pool_workers(v.pool, &ws);
  int doomed = n > 0;
  for (size_t i = 0; i < n && (doomed || collect); i++)
    doomed = doomed_worker(g, ws[i], collect) && doomed;
  lf__free(ws);
  return doomed;
}

/* The first of w's futures that can never finish, if that dooms its wait
 * (one is enough when it needs them all, every one must be when any would
 * do); else NULL. */
static lf_future *dooming(graph *g, lf_worker *w) {
  lf_future *first = NULL;
  for (size_t i = 0; i < w->nwaiting; i++) {
    int d = doomed_future(g, w->waiting_on[i], 0);
    if (d && first == NULL) first = w->waiting_on[i];
    if (d && w->waiting_all) return first;
    if (!d && !w->waiting_all) return NULL;
  }
  return first;
}

static _Atomic(lf_describe_fn) describer;

void lf_set_describe(lf_describe_fn fn) { atomic_store(&describer, fn); }

/* Appends to why (of len bytes, of which *at are used), as snprintf. */
static int appended(char *why, size_t len, size_t *at, int n) {
  if (n < 0 || (size_t)n >= len - *at) return 0;
  *at += (size_t)n;
  return 1;
}

static void explain(lf_worker *self, lf_future *target, char *why,
                    size_t len) {
  fview v = look(target);
  size_t at = 0;
  int ok;
  if (self->nwaiting > 1 && !self->waiting_all)
    ok = appended(why, len, &at,
                  snprintf(why, len,
                           "worker '%s' waits on any of %zu futures, and "
                           "none can ever finish: ",
                           self->name, self->nwaiting));
  else
    ok = appended(why, len, &at,
                  snprintf(why, len, "worker '%s' waits on ", self->name));
  /* The future in the host's words: the runtime only hands over facts. */
  lf_describe_fn fn = atomic_load(&describer);
  if (ok)
    ok = appended(why, len, &at,
                  fn ? fn(target, v.state, why + at, len - at)
                     : snprintf(why + at, len - at, "future %p",
                                (void *)target));
  if (!ok) return;
  why += at;
  len -= at;
  if (v.state == LF_RUNNING && v.runner == self) {
    snprintf(why, len, " that it runs itself");
  } else if (v.state == LF_RUNNING && v.runner) {
    snprintf(why, len,
             " run by worker '%s', which waits, directly or through others, "
             "on '%s'",
             v.runner->name, self->name);
  } else if (v.pool == self->pool && lf_pool_max_workers(v.pool) == 1) {
    snprintf(why, len, " queued on its own pool, which has no other worker");
  } else if (v.pool == self->pool) {
    snprintf(why, len,
             " queued on its own pool, whose other workers are all blocked "
             "waiting on it");
  } else {
    snprintf(why, len,
             " queued on pool '%s', whose workers are all blocked waiting on "
             "it",
             v.pool ? lf_pool_prefix(v.pool) : "?");
  }
}

int lf__doomed(lf_worker *self, char *why, size_t whylen) {
  graph g = {0};
  add(&g, self);
  for (size_t i = 0; i < g.n && !g.oom; i++)
    for (size_t k = 0; k < g.w[i]->nwaiting; k++)
      doomed_future(&g, g.w[i]->waiting_on[k], 1);
  for (int changed = 1; changed && !g.oom;) {
    changed = 0;
    for (size_t i = 0; i < g.n; i++)
      if (g.doomed[i] && dooming(&g, g.w[i]) == NULL) {
        g.doomed[i] = 0;
        changed = 1;
      }
  }
  int d = !g.oom && g.n > 0 && g.doomed[0];
  if (d && why && whylen) {
    lf_future *target = dooming(&g, self);
    explain(self, target ? target : self->waiting_on[0], why, whylen);
  }
  lf__free(g.w);
  lf__free(g.doomed);
  return d;
}
