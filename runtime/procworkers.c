/*
 * procworkers.c -- the process pool core's bookkeeping of its workers
 * (procpool.h): starting one, and what the transport reports of each
 * (ready, an answer, a request for a blob, a goodbye, a fault, its end),
 * judged against what the pool sent it. A violation of the protocol breaks the pool, naming the
 * worker. Everything here runs with the pool's `mu` held (proc.c); no
 * lock of its own.
 */
#include <string.h>
#include <sys/wait.h>

#include "internal.h"
#include "procpool.h"

/* Starts one worker; 0 or LF_ESPAWN / LF_ENOMEM (the reason in detail). */
int lf__proc_start_worker(lf_procpool *p) {
  if (p->nw == p->wcap) {
    size_t cap = p->wcap ? p->wcap * 2 : 4;
    wproc **nw = lf__realloc(p->w, cap * sizeof *nw);
    if (nw == NULL) return LF_ENOMEM;
    p->w = nw;
    p->wcap = cap;
  }
  wproc *w = lf__calloc(1, sizeof *w);
  if (w == NULL) return LF_ENOMEM;
  int rc = p->tp->ops->start(p->tp, w, &w->tw, &w->num, p->spawn_why,
                             sizeof p->spawn_why);
  if (rc != 0) {
    lf__free(w);
    return rc;
  }
  w->born = lf_now();
  w->accepting = 1;
  p->w[p->nw++] = w;
  p->naccepting++;
  lf__proc_wake(p); /* the manager watches the new worker */
  return 0;
}

static void remove_worker_locked(lf_procpool *p, wproc *w) {
  lf__proc_not_accepting(p, w);
  if (w->bye) p->nleaving--;
  for (size_t i = 0; i < p->nw; i++)
    if (p->w[i] == w) {
      p->w[i] = p->w[--p->nw];
      break;
    }
  lf__free(w);
}

/* A worker is gone and reaped: without a goodbye, it died. */
static void worker_gone_locked(lf_procpool *p, wproc *w, const lf__tev *ev) {
  if (!w->bye) {
    int st = ev->status;
    if (ev->closed_early || st == -1)
      lf__proc_break(p, LF_PROC_DIED,
                   "worker %ld closed its channel without a goodbye", w->num);
    else if (WIFSIGNALED(st))
      lf__proc_break(p, LF_PROC_DIED, "worker %ld was killed by signal %d",
                   w->num, WTERMSIG(st));
    else if (!w->ready && WEXITSTATUS(st) == LF_PROC_EXIT_NOMEM)
      lf__proc_break(p, LF_PROC_DIED,
                     "worker %ld exited with status %d: out of memory "
                     "before it could start", w->num, WEXITSTATUS(st));
    else
      lf__proc_break(p, LF_PROC_DIED, "worker %ld exited with status %d",
                   w->num, WEXITSTATUS(st));
  }
  remove_worker_locked(p, w);
}

static void result_locked(lf_procpool *p, wproc *w, const lf__tev *ev) {
  void *owner;
  int mine = lf__ids_get(&p->ids, ev->id, &owner) && (!owner || owner == w);
  if (!mine) {
    if (p->status != LF_POOL_BROKEN) /* else: failed already */
      lf__proc_break(p, LF_PROC_PROTOCOL,
                   "worker %ld answered task %u, which it was not given",
                   w->num, (unsigned)ev->id);
    return;
  }
  lf_future *f = lf__proc_slot_take(p, ev->id);
  w->nresults++;
  if (p->max_tasks && w->nresults >= p->max_tasks) lf__proc_not_accepting(p, w);
  /* A failed answer with no bytes is a task that ran out of memory: the
   * worker's (lf_proc_child_reply of lf_payload_oom()), or ours, when the
   * transport had no room for its bytes and dropped them. */
  lf_payload *res = ev->failed && ev->len == 0
                        ? lf_payload_oom()
                        : lf_payload_new(ev->data, ev->len, NULL, 0, ev->flags);
  if (res == NULL) res = lf_payload_oom();
  lf__proc_add_done(p, f, res, res == lf_payload_oom() || ev->failed);
}

/* The bytes of the blob `want` among what task id keeps, or NULL. */
static const lf_payload *find_blob(lf_procpool *p, uint32_t id,
                                   uint64_t want) {
  const lf__kept *k = lf__ids_kept(&p->ids, id);
  for (uint32_t i = 0; k && p->hooks.blob && i < k->n; i++) {
    uint64_t bid;
    const lf_payload *b = p->hooks.blob(p->ud, k->o[i], &bid);
    if (b && bid == want) return b;
  }
  return NULL;
}

/* A worker asks for a blob its task refers to: only one that task holds,
 * so a worker reaches no bytes but those of the tasks it was given. */
static void need_locked(lf_procpool *p, wproc *w, const lf__tev *ev) {
  if (p->status == LF_POOL_BROKEN) return; /* it is being killed */
  uint64_t want;
  memcpy(&want, ev->data, sizeof want); /* the frame's size was judged */
  void *owner;
  int mine = lf__ids_get(&p->ids, ev->id, &owner) && (!owner || owner == w);
  const lf_payload *b = mine ? find_blob(p, ev->id, want) : NULL;
  if (b == NULL) {
    lf__proc_break(p, LF_PROC_PROTOCOL,
                   "worker %ld asked for Shared value %#llx, which task %u "
                   "%s", w->num, (unsigned long long)want, (unsigned)ev->id,
                   mine ? "does not hold" : "was not given to it");
    return;
  }
  if (p->tp->ops->give == NULL || p->tp->ops->give(p->tp, w->tw, b) != 0) {
    lf__proc_break(p, LF_PROC_IOERROR,
                   "a Shared value could not be sent to worker %ld", w->num);
    return;
  }
  p->sent_blob += b->len;
  p->nblobs++;
}

/* A goodbye is in good order only from a worker that answered every task
 * it received. */
static void bye_locked(lf_procpool *p, wproc *w, const lf__tev *ev) {
  if (!w->bye) p->nleaving++;
  w->bye = 1;
  lf__proc_not_accepting(p, w);
  size_t held = p->tp->ops->caps & LF__TP_ANY
                    ? (ev->id > w->nresults ? ev->id - w->nresults : 0)
                    : w->nheld;
  if (held || ev->id < w->nresults)
    lf__proc_break(p, LF_PROC_PROTOCOL,
                 "worker %ld said goodbye holding %zu unanswered task%s",
                 w->num, held, held == 1 ? "" : "s");
}

void lf__proc_on_event(void *ctx, const lf__tev *ev) {
  lf_procpool *p = ctx;
  wproc *w = ev->worker;
  switch (ev->kind) {
    case LF__TEV_READY: w->ready = 1; break;
    case LF__TEV_RESULT: result_locked(p, w, ev); break;
    case LF__TEV_BYE: bye_locked(p, w, ev); break;
    case LF__TEV_NEED: need_locked(p, w, ev); break;
    case LF__TEV_INITFAIL:
      lf__proc_not_accepting(p, w);
      lf__proc_break(p, LF_PROC_INITFAILED, "worker %ld", w->num);
      break;
    case LF__TEV_BAD:
      lf__proc_break(p, LF_PROC_PROTOCOL, "worker %ld sent %s", w->num,
                   ev->why);
      p->tp->ops->kill(p->tp, w->tw);
      break;
    case LF__TEV_IOERROR:
      lf__proc_break(p, LF_PROC_IOERROR, "%s", ev->why);
      break;
    case LF__TEV_GONE: worker_gone_locked(p, w, ev); break;
  }
}

