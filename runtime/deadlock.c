/*
 * deadlock.c -- deciding that a wait can never end.
 *
 * The wait-for graph: a pool worker that blocks with no timeout records the
 * futures it waits on and whether it needs all of them or any one
 * (lf_worker.waiting_on, written under lf__graph_mu). A
 * running future names its worker (future.runner); a pending one its pool
 * (future.pool); both are read under the future's stripe.
 *
 * A future is doomed when it is running on a doomed worker, or queued on a
 * pool that cannot start another worker and whose every worker is doomed.
 * A worker is doomed when one future it needs is doomed (a wait for all),
 * or every future it could take is (a wait for any one). A worker met again on the path being
 * explored is doomed (the cycle closes). Anything else -- a worker that is
 * not blocked, a bare Future() that someone may still set, a done future,
 * a pool with room -- ends the search with "not doomed", so there are no
 * false alarms; the last waiter to close a cycle is the one told.
 *
 * The whole check runs under lf__graph_mu; it takes pool locks and stripes
 * inside it, one at a time.
 */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

pthread_mutex_t lf__graph_mu = PTHREAD_MUTEX_INITIALIZER;

typedef struct path {
  lf_worker **on; /* workers on the current path */
  size_t n, cap;
  lf_worker **cleared; /* proved not doomed */
  size_t ncleared, capcleared;
  int depth;
} path;

static int contains(lf_worker **ws, size_t n, lf_worker *w) {
  for (size_t i = 0; i < n; i++)
    if (ws[i] == w) return 1;
  return 0;
}

static int push(lf_worker ***ws, size_t *n, size_t *cap, lf_worker *w) {
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : 8;
    lf_worker **nw = lf__realloc(*ws, c * sizeof *nw);
    if (nw == NULL) return -1;
    *ws = nw;
    *cap = c;
  }
  (*ws)[(*n)++] = w;
  return 0;
}

static int doomed_worker(path *pa, lf_worker *w);

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

static int doomed_future(path *pa, lf_future *f) {
  fview v = look(f);
  if (!v.bound || v.state >= LF_CANCELLED) return 0;
  if (v.state == LF_RUNNING) return v.runner && doomed_worker(pa, v.runner);
  if (v.pool == NULL || lf__pool_can_run_more(v.pool)) return 0;
  lf_worker **ws;
  size_t n = lf__pool_workers(v.pool, &ws);
  int doomed = n > 0;
  for (size_t i = 0; i < n && doomed; i++) doomed = doomed_worker(pa, ws[i]);
  lf__free(ws);
  return doomed;
}

/* The first of w's futures that can never finish, if that dooms its wait
 * (one is enough when it needs them all, every one must be when any would
 * do); else NULL. */
static lf_future *dooming(path *pa, lf_worker *w) {
  lf_future *first = NULL;
  for (size_t i = 0; i < w->nwaiting; i++) {
    int d = doomed_future(pa, w->waiting_on[i]);
    if (d && first == NULL) first = w->waiting_on[i];
    if (d && w->waiting_all) return first;
    if (!d && !w->waiting_all) return NULL;
  }
  return first;
}

static int doomed_worker(path *pa, lf_worker *w) {
  if (contains(pa->on, pa->n, w)) return 1;
  if (contains(pa->cleared, pa->ncleared, w)) return 0;
  if (w->nwaiting == 0 || pa->depth > 1000) return 0;
  if (push(&pa->on, &pa->n, &pa->cap, w) != 0) return 0;
  pa->depth++;
  int d = dooming(pa, w) != NULL;
  pa->depth--;
  pa->n--;
  if (!d) push(&pa->cleared, &pa->ncleared, &pa->capcleared, w);
  return d;
}

static void explain(lf_worker *self, lf_future *target, char *why,
                    size_t len) {
  fview v = look(target);
  int n;
  if (self->nwaiting > 1 && !self->waiting_all)
    n = snprintf(why, len,
                 "worker '%s' waits on any of %zu futures, and none can ever "
                 "finish: <Future at %p state=%s>",
                 self->name, self->nwaiting, (void *)target,
                 v.state == LF_RUNNING ? "running" : "pending");
  else
    n = snprintf(why, len, "worker '%s' waits on <Future at %p state=%s>",
                 self->name, (void *)target,
                 v.state == LF_RUNNING ? "running" : "pending");
  if (n < 0 || (size_t)n >= len) return;
  why += n;
  len -= (size_t)n;
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
  path pa = {0};
  int d = doomed_worker(&pa, self);
  if (d && why && whylen) {
    /* Which future to name: explored again from self, on a path that
     * holds self, so a cycle through it still closes. */
    pa.n = pa.ncleared = 0;
    lf_future *target = NULL;
    if (push(&pa.on, &pa.n, &pa.cap, self) == 0) target = dooming(&pa, self);
    explain(self, target ? target : self->waiting_on[0], why, whylen);
  }
  lf__free(pa.on);
  lf__free(pa.cleared);
  return d;
}
