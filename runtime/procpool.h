/*
 * procpool.h -- the inside of the process pool's core, shared by its
 * files only: procpool.c makes, frees and reports on the pool; proc.c runs
 * it (completions, ids, breaking, sending, submit, shutdown, the manager
 * thread); procworkers.c keeps the workers' books and hears what the
 * transport reports of them. Nothing else may look inside: lf_proc.h is
 * the interface. Every field is guarded by the pool's `mu` (see proc.c),
 * and every function here is called with it held.
 */
#ifndef LF_PROCPOOL_H
#define LF_PROCPOOL_H

#include <pthread.h>

#include "internal.h"
#include "lf_proc.h"
#include "procq.h"
#include "transport.h"

typedef struct wproc {
  lf__tw *tw;
  long num;         /* its pid (or rank), for messages */
  int accepting;    /* may still take tasks */
  int bye, ready;
  double born;      /* when it started (lf_now) */
  size_t nresults;  /* answers it gave */
  size_t nheld;     /* tasks sent to it alone, unanswered */
} wproc;

typedef struct done {
  lf_future *f;
  lf_payload *res; /* NULL: fail it with the broken payload */
  int failed;
} done;

struct lf_procpool {
  lf_obj obj;
  pthread_mutex_t mu, join_mu;
  lf__ring q;       /* futures not yet sent */
  lf__ids ids;      /* futures sent and not answered, and to whom */
  wproc **w;
  size_t nw, wcap, naccepting;
  size_t nleaving;  /* of nw: said goodbye, not yet reaped (no slot) */
  size_t max, max_tasks;
  double answer_timeout;
  int method;
  char *exe;
  char *hello;
  size_t hello_len;
  lf__tp *tp;       /* NULL before the first submit and once closed */
  lf__tp *(*open)(const lf__tp_config *cfg, int *err);
  int qopen;        /* the transport still takes tasks */
  int started, joined;
  pthread_t manager;
  int status, cause;
  char detail[192]; /* why it broke; set once */
  char spawn_why[160]; /* why the last worker could not start */
  uint64_t sent_task, sent_blob, nblobs; /* lf_procpool_sent */
  /* completions collected under the lock, run after it */
  done *dl;
  size_t ndl, dlcap;
  lf_proc_hooks hooks;
  void *ud;
};

/* Wakes the manager from its wait on the transport. */
void lf__proc_wake(lf_procpool *p);
/* Collects a completion, run once the lock is released: res NULL fails f
 * with the broken payload; takes the caller's reference to f and res. */
void lf__proc_add_done(lf_procpool *p, lf_future *f, lf_payload *res,
                       int failed);
/* The future of id, whose id is free again (NULL if none). */
lf_future *lf__proc_slot_take(lf_procpool *p, uint32_t id);
void lf__proc_not_accepting(lf_procpool *p, wproc *w);
/* Breaks the pool (the first break's cause and detail stay): every queued
 * and running future is to fail, every worker is killed. */
void lf__proc_break(lf_procpool *p, int cause, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* procworkers.c: starts one worker (0, or LF_ESPAWN / LF_ENOMEM with the
 * reason in spawn_why), and the transport's callback of collect. */
int lf__proc_start_worker(lf_procpool *p);
void lf__proc_on_event(void *ctx, const lf__tev *ev);

#endif
