/*
 * stats.c -- ex:stats() for every kind of pool: what each kind counts,
 * and the method the executor class shares.
 *
 * How a task ended is counted by the runtime as its future ends (the kind
 * names the tally when it queued it: no hook, no allocation per task), so
 * a cancel, a shutdown that cancels, a broken pool and a worker all count
 * the same way, on whichever thread ends it. Whether a
 * task runs is the kind's knowledge: a thread pool sees its worker start
 * and end it (threadpool.c), a process pool asks its runtime what is out
 * (lf_procpool_load), and another kind fills lfb_stats itself through its
 * ops. The counters are atomics in the kind's configuration, which lives
 * as long as the pool, so no future outlives them. No lock.
 */
#include "lfb.h"

int lfb_counts_submit(lfb_counts *c, lf_future *f, int rc) {
  if (rc == 0) atomic_fetch_add(&c->submitted, 1);
  else lf_future_tally(f, NULL); /* refused: still only the caller's */
  return rc;
}

void lfb_counts_fill(const lfb_counts *c, lfb_stats *s) {
  s->done = atomic_load(&c->ended_as.done);
  s->failed = atomic_load(&c->ended_as.failed);
  s->cancelled = atomic_load(&c->ended_as.cancelled);
  /* Read last: a task counted as ended may not be counted as done yet. */
  long q = atomic_load(&c->submitted) - s->done - s->failed - s->cancelled -
           s->running;
  s->queued = q > 0 ? q : 0;
}
