/*
 * proc.c -- the process pool's core: the queue of futures not yet sent,
 * the ids of those sent and not answered, the send-ahead window, the
 * workers' bookkeeping, breaking, and the manager thread. How tasks reach
 * the workers and answers come back is the transport's business
 * (transport.h; transport_unix.c is the one lf_procpool_new uses). The
 * pool object, its making, freeing and queries are procpool.c's
 * (procpool.h shows it to both files).
 *
 * Flow control. At most `window` tasks are out (sent and not answered):
 * one per accepting worker plus up to two more each (eight in all), so a
 * worker finds its next task waiting the moment it finishes one, and a
 * future not yet sent can still be cancelled.
 *
 * Blobs. A task's objects are kept with its id until it is answered; a
 * worker that lacks a blob of its task asks for it (NEED) and the manager
 * sends it the bytes (the transport's `give`), so a blob reaches each
 * worker process at most once. Asking for a blob the task does not hold
 * is a protocol violation like any other (procworkers.c).
 *
 * Every protocol violation is that worker's death: a frame the transport
 * judged bad, an answer to a task the worker was not given, a goodbye from
 * a worker still holding a task, a worker gone without a goodbye. The pool
 * breaks with a cause and a detail naming the worker (lf_procpool_detail);
 * every queued and running future fails with the host's `broken` payload
 * (or, with no memory for it, lf_payload_oom()): none is left pending.
 *
 * Threads. Submitters queue futures, start workers and send tasks while
 * the window has room (with a LF__TP_FUNNELED transport they only wake the
 * manager, which does both). The manager waits on the transport without
 * the lock, then, under it, collects what came (results, goodbyes, deaths),
 * refills the window, starts replacements (max_tasks_per_child) and breaks
 * the pool; futures are completed after it unlocks. Only the manager
 * removes workers, once the transport reports them gone and reaped.
 *
 * The workers' bookkeeping and the transport's events are procworkers.c;
 * the struct both share, procpool.h.
 *
 * Locks. `mu` guards everything here and every transport call but
 * wait/wake; it is taken before any lock of lf.h; host hooks and future
 * completions run without it. `join_mu` serialises joining the manager
 * (taken alone). No blocking waitpid is made under either.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "procpool.h"

/* ---- completions ---------------------------------------------------------- */

void lf__proc_wake(lf_procpool *p) {
  if (p->tp) p->tp->ops->wake(p->tp);
}

static int funneled(lf_procpool *p) {
  return (p->tp->ops->caps & LF__TP_FUNNELED) != 0;
}

/* The payload that fails a future of the broken pool: the host's, else
 * the static one. */
static lf_payload *broken_payload(lf_procpool *p) {
  lf_payload *res = p->hooks.broken(p->ud, p->cause, p->detail);
  return res ? res : lf_payload_oom();
}

/* Collects a completion (res NULL: the broken payload); takes the caller's
 * reference to f and ownership of res. A task that found no memory (for
 * its id, its result's copy, or in the worker) has res lf_payload_oom():
 * the pool is not broken for that. */
void lf__proc_add_done(lf_procpool *p, lf_future *f, lf_payload *res,
                     int failed) {
  if (p->ndl == p->dlcap) {
    size_t cap = p->dlcap ? p->dlcap * 2 : 16;
    done *nd = lf__realloc(p->dl, cap * sizeof *nd);
    if (nd == NULL) { /* out of memory: complete it now, under the lock */
      if (res == NULL) failed = 1;
      lf_future_finish(f, res ? res : broken_payload(p), failed);
      lf_future_unref(f);
      return;
    }
    p->dl = nd;
    p->dlcap = cap;
  }
  p->dl[p->ndl++] = (done){f, res, failed};
}

/* Completes what the lock collected; called without the lock. The list is
 * swapped out first, so the manager and a submitter never share one. */
static void run_done(lf_procpool *p, done *dl, size_t n) {
  for (size_t i = 0; i < n; i++) {
    lf_payload *res = dl[i].res;
    int failed = dl[i].failed;
    if (res == NULL) {
      res = broken_payload(p);
      failed = 1;
    }
    lf_future_finish(dl[i].f, res, failed);
    lf_future_unref(dl[i].f);
  }
}

static done *take_done(lf_procpool *p, size_t *n) {
  done *dl = p->dl;
  *n = p->ndl;
  p->dl = NULL;
  p->ndl = p->dlcap = 0;
  return dl;
}

/* ---- the ids ------------------------------------------------------------ */

static int slot_alloc(lf_procpool *p, lf_future *f, wproc *to, uint32_t *id) {
  int rc = lf__ids_alloc(&p->ids, f, to, id);
  if (rc == 0 && to) to->nheld++;
  return rc;
}

lf_future *lf__proc_slot_take(lf_procpool *p, uint32_t id) {
  void *owner;
  lf_future *f = lf__ids_take(&p->ids, id, &owner);
  if (f && owner) ((wproc *)owner)->nheld--;
  return f;
}

/* ---- breaking ------------------------------------------------------------- */

void lf__proc_not_accepting(lf_procpool *p, wproc *w) {
  if (w->accepting) {
    w->accepting = 0;
    p->naccepting--;
  }
}

/* Every queued and running future is to fail; every worker is killed.
 * The first break's cause and detail stay. */
void lf__proc_break(lf_procpool *p, int cause, const char *fmt, ...) {
  if (p->status == LF_POOL_BROKEN) return;
  p->status = LF_POOL_BROKEN;
  p->cause = cause;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->detail, sizeof p->detail, fmt, ap);
  va_end(ap);
  /* First: a held-back task may live in a future freed below. */
  if (p->qopen) p->tp->ops->close_queue(p->tp);
  p->qopen = 0;
  while (p->q.len > 0) lf__proc_add_done(p, lf__ring_pop(&p->q), NULL, 1);
  for (size_t s = 0; s < p->ids.n; s++) {
    lf_future *f = lf__proc_slot_take(p, lf__ids_of_slot(&p->ids, s));
    if (f) lf__proc_add_done(p, f, NULL, 1);
  }
  for (size_t i = 0; i < p->nw; i++) {
    if (!p->w[i]->bye) p->tp->ops->kill(p->tp, p->w[i]->tw);
    p->w[i]->accepting = 0;
  }
  p->naccepting = 0;
  lf__proc_wake(p);
}

/* ---- sending tasks -------------------------------------------------------- */

/* Two tasks ahead per worker, at most eight in all (a unix datagram queue
 * holds ten): fewer and the workers sleep between tasks, which costs far
 * more than the tasks themselves; more and cancel() has little left to
 * cancel. */
static size_t window(lf_procpool *p) {
  if (p->tp->ops->caps & LF__TP_DEEP) return 33 * p->naccepting;
  size_t extra = 2 * p->naccepting < 8 ? 2 * p->naccepting : 8;
  return p->naccepting + extra;
}

/* Where the next task goes: NULL for the shared queue, else the accepting
 * worker holding fewest (none: *none set). */
static wproc *choose(lf_procpool *p, int *none) {
  *none = 0;
  if (p->tp->ops->caps & LF__TP_ANY) return NULL;
  wproc *best = NULL;
  for (size_t i = 0; i < p->nw; i++)
    if (p->w[i]->accepting && (!best || p->w[i]->nheld < best->nheld))
      best = p->w[i];
  *none = best == NULL;
  return best;
}

/* Moves queued futures to the workers while the window has room. */
static void dispatch_locked(lf_procpool *p) {
  const lf__tp_ops *ops = p->tp->ops;
  while (p->qopen && p->q.len > 0 && p->ids.nout < window(p) &&
         ops->can_send(p->tp)) {
    int none;
    wproc *to = choose(p, &none);
    if (none) return;
    lf_future *f = lf__ring_pop(&p->q);
    uint32_t id;
    /* No memory for its id: that task cannot run, and fails as a task
     * whose result found none would. Putting it back to try later would
     * leave it pending for as long as no event wakes the manager. */
    if (slot_alloc(p, f, to, &id) != 0) {
      lf__proc_add_done(p, f, lf_payload_oom(), 1);
      continue;
    }
    lf_payload *task;
    /* Not bound to a thread pool: lf_future_start names no runner, so no
     * deadlock check ever counts a process future as blocked. */
    if (lf_future_start(f, &task) != 0) {
      lf_payload_free(task);
      lf__proc_slot_take(p, id);
      lf_future_unref(f); /* cancelled while queued */
      continue;
    }
    /* Its objects stay here while it is out: a worker may ask for one. */
    if (lf__ids_keep(&p->ids, id, task) != 0) {
      lf_payload_free(task);
      lf__proc_slot_take(p, id);
      lf__proc_add_done(p, f, lf_payload_oom(), 1);
      continue;
    }
    p->sent_task += task->len;
    if (ops->send(p->tp, to ? to->tw : NULL, id, task) != 0) {
      lf__proc_break(p, LF_PROC_IOERROR, "a task could not be sent");
      return;
    }
    if (!ops->can_send(p->tp))
      lf__proc_wake(p); /* the manager waits for room */
  }
}

/* ---- the manager ---------------------------------------------------------- */

/* Between two waits: close the queue once shutdown has nothing left to
 * send, and start workers for queued work that none would take. */
static void housekeeping_locked(lf_procpool *p) {
  if (p->status != LF_POOL_RUNNING && p->qopen && p->q.len == 0 &&
      p->ids.nout == 0) {
    p->tp->ops->close_queue(p->tp);
    p->qopen = 0;
  }
  if (p->status == LF_POOL_BROKEN) return;
  /* Every worker left, none of the tasks sent waits in the shared queue,
   * yet some are unanswered: a goodbye lied about what it received. */
  if ((p->tp->ops->caps & LF__TP_ANY) && p->ids.nout > 0 &&
      p->nw == p->nleaving && p->tp->ops->all_taken(p->tp) == 1) {
    lf__proc_break(p, LF_PROC_PROTOCOL,
                 "%zu task%s taken by workers that left without answering",
                 p->ids.nout, p->ids.nout == 1 ? "" : "s");
    return;
  }
  size_t work = p->q.len + p->ids.nout;
  size_t want = work < p->max ? work : p->max;
  while (p->naccepting < want && p->nw - p->nleaving < p->max) {
    if (lf__proc_start_worker(p) != 0) {
      if (p->nw == 0)
        lf__proc_break(p, LF_PROC_SPAWNFAILED,
                     "cannot start a worker process (%s)", p->spawn_why);
      break;
    }
  }
  dispatch_locked(p);
}

/* A worker that has not answered its hello in time is not one of ours (a
 * wrong `worker` program, say): the pool breaks rather than leave its
 * futures pending forever. Returns how long the manager may wait, in ms
 * (-1: no limit). */
static int answer_wait_ms_locked(lf_procpool *p) {
  wproc *first = NULL;
  for (size_t i = 0; i < p->nw; i++) {
    wproc *w = p->w[i];
    if (!w->ready && (first == NULL || w->born < first->born)) first = w;
  }
  if (first == NULL || p->status == LF_POOL_BROKEN) return -1;
  double left = first->born + p->answer_timeout - lf_now();
  if (left <= 0) {
    lf__proc_break(p, LF_PROC_NOANSWER, "worker %ld said nothing for %g s",
                 first->num, p->answer_timeout);
    return 0;
  }
  return left > 3600 ? 3600 * 1000 : (int)(left * 1000) + 1;
}

static int finished_locked(lf_procpool *p) {
  return p->status != LF_POOL_RUNNING && p->nw == 0 &&
         (p->status == LF_POOL_BROKEN || (p->q.len == 0 && p->ids.nout == 0));
}

static void *manager_main(void *arg) {
  lf_procpool *p = arg;
  lf__tp *tp = p->tp;
  lf__lock(&p->mu);
  for (;;) {
    housekeeping_locked(p);
    size_t ndl;
    done *dl = take_done(p, &ndl);
    if (ndl) {
      lf__unlock(&p->mu);
      run_done(p, dl, ndl);
      lf__free(dl);
      lf__lock(&p->mu);
      continue;
    }
    lf__free(dl);
    if (finished_locked(p)) break;
    int wait_ms = answer_wait_ms_locked(p);
    tp->ops->arm(tp);
    lf__unlock(&p->mu);
    tp->ops->wait(tp, wait_ms);
    lf__lock(&p->mu);
    tp->ops->collect(tp, lf__proc_on_event, p);
    dispatch_locked(p);
  }
  p->tp = NULL; /* every worker is gone: nothing of the pool stays open */
  p->qopen = 0;
  lf__unlock(&p->mu);
  tp->ops->close(tp);
  return NULL;
}

/* The transport and the manager, made by the first submit. */
static int start_locked(lf_procpool *p) {
  lf__tp_config cfg = {p->method, p->exe, p->hello, p->hello_len,
                       p->max_tasks, p->hooks.child_main, p->ud};
  int err;
  p->tp = p->open(&cfg, &err);
  if (p->tp == NULL) {
    snprintf(p->spawn_why, sizeof p->spawn_why, "the task queue: %s",
             strerror(errno));
    return err;
  }
  if (pthread_create(&p->manager, NULL, manager_main, p) != 0) {
    p->tp->ops->close(p->tp);
    p->tp = NULL;
    return LF_ESPAWN;
  }
  p->qopen = 1;
  p->started = 1;
  return 0;
}

/* ---- submitting and shutting down ------------------------------------------ */

int lf_procpool_submit(lf_procpool *p, lf_future *f) {
  lf__lock(&p->mu);
  int rc = 0;
  if (p->status != LF_POOL_RUNNING) {
    rc = p->status == LF_POOL_BROKEN ? LF_EBROKEN : LF_ESHUTDOWN;
  } else if (!p->started) {
    rc = start_locked(p);
  }
  if (rc == 0 && !funneled(p) && p->q.len + p->ids.nout + 1 > p->naccepting &&
      p->nw - p->nleaving < p->max) {
    rc = lf__proc_start_worker(p);
    if (p->nw > 0) rc = 0; /* the others will do */
  }
  if (rc == 0) rc = lf__ring_push(&p->q, f);
  if (rc != 0) {
    lf__unlock(&p->mu);
    return rc;
  }
  lf_future_ref(f);
  if (funneled(p)) lf__proc_wake(p);
  else dispatch_locked(p);
  size_t ndl;
  done *dl = take_done(p, &ndl);
  lf__unlock(&p->mu);
  run_done(p, dl, ndl);
  lf__free(dl);
  return 0;
}

int lf_procpool_shutdown(lf_procpool *p, int wait, int cancel_futures) {
  lf__lock(&p->mu);
  if (p->status == LF_POOL_RUNNING) p->status = LF_POOL_SHUTDOWN;
  lf_future **q = NULL;
  size_t nq = 0;
  if (cancel_futures && p->q.len > 0) {
    q = lf__malloc(p->q.len * sizeof *q);
    while (p->q.len > 0) {
      lf_future *f = lf__ring_pop(&p->q);
      if (q) {
        q[nq++] = f;
        continue;
      }
      /* No memory to take them out: cancelled under the lock, as
       * add_done completes a future it has no room for, since shutdown
       * must have cancelled them all by the time it returns. */
      lf_future_cancel(f);
      lf_future_unref(f);
    }
  }
  int started = p->started;
  lf__proc_wake(p);
  lf__unlock(&p->mu);
  for (size_t i = 0; i < nq; i++) {
    lf_future_cancel(q[i]);
    lf_future_unref(q[i]);
  }
  lf__free(q);
  if (wait && started) {
    lf__lock(&p->join_mu);
    if (!p->joined) {
      LF__CHECK(pthread_join(p->manager, NULL));
      p->joined = 1;
    }
    lf__unlock(&p->join_mu);
  }
  return 0;
}
