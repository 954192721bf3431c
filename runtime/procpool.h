/*
 * procpool.h -- the process pool object, shared by the two files of the
 * pool core only: procpool.c makes, frees and reports on it; proc.c runs
 * it (submit, shutdown, the manager thread). Nothing else may look inside:
 * lf_proc.h is the interface. The locks are described in proc.c.
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
  int nomem;       /* res NULL because its copy had no memory */
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
  /* completions collected under the lock, run after it */
  done *dl;
  size_t ndl, dlcap;
  lf_proc_hooks hooks;
  void *ud;
};

#endif
