/*
 * stats.c -- ex:stats() for every kind of pool: what each kind counts,
 * and the method the executor class shares.
 *
 * How a task ended is counted by a done hook on its future (added when the
 * kind queued it), so a cancel, a shutdown that cancels, a broken pool and
 * a worker all count the same way, on whichever thread ends it. Whether a
 * task runs is the kind's knowledge: a thread pool sees its worker start
 * and end it (threadpool.c), a process pool asks its runtime what is out
 * (lf_procpool_load), and another kind fills lfb_stats itself through its
 * ops. The counters are atomics in the kind's configuration, which lives
 * as long as the pool, so no hook outlives them. No lock.
 */
#include "lfb.h"

static void counted(lfb_counts *c, lf_future *f) {
  if (f == NULL || lf_future_state(f) == LF_CANCELLED) {
    atomic_fetch_add(&c->cancelled, 1);
    return;
  }
  int failed = 0;
  lf_future_result(f, &failed);
  atomic_fetch_add(failed ? &c->failed : &c->done, 1);
}

static void count_hook(void *arg, lf_future *f) { counted(arg, f); }

void lfb_counts_track(lfb_counts *c, lf_future *f) {
  atomic_fetch_add(&c->submitted, 1);
  if (lf_future_add_hook(f, count_hook, c) == 1) counted(c, f); /* done */
}

void lfb_counts_fill(const lfb_counts *c, lfb_stats *s) {
  s->done = atomic_load(&c->done);
  s->failed = atomic_load(&c->failed);
  s->cancelled = atomic_load(&c->cancelled);
  /* Read last: a task counted as ended may not be counted as done yet. */
  long q = atomic_load(&c->submitted) - s->done - s->failed - s->cancelled -
           s->running;
  s->queued = q > 0 ? q : 0;
}
