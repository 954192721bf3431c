/*
 * lf_mpi.h -- process pools whose workers are the ranks of an MPI job.
 *
 * The MPI transport (transport_mpi.c) is built only where mpicc is found,
 * into its own module, so nothing here names an MPI type: the module that
 * holds the pool core (and the payload functions) reaches the transport
 * through the table `lf_mpi`, which transport_mpi.c fills
 * (lf_mpi_transport). The pool core itself is the process pool's
 * (lf_proc.h): lf_mpipool_new runs it over this transport.
 *
 * Roles. One rank, the client, makes pools; every other rank of the job is
 * a worker that serves them: each pool starts by sending a worker rank a
 * HELLO (the pool's first message, as lf_proc_config's hello), then TASKs,
 * then a BYE; the rank answers READY (or INITFAIL), RESULTs and BYE, and a
 * rank serves several pools at once, told apart by the pool id. EXIT ends
 * a rank's service (lf_mpi.release). Bytes from another rank are judged
 * as untrusted: a message that breaks this protocol breaks the pool that
 * the sender serves.
 *
 * MPI is fail-stop: a rank that dies ends the job (mpiexec exits non-zero);
 * nothing here waits for a rank that is gone.
 *
 * Threads. Every MPI call is made on one thread of the transport's own,
 * which calls MPI_Init_thread(MPI_THREAD_FUNNELED) and, at finalize,
 * MPI_Finalize; a worker rank's serve function runs on it too. Everything
 * in the table may be called from any thread (but serve's fn, on the MPI
 * thread, must not call serve or finalize).
 */
#ifndef LF_MPI_H
#define LF_MPI_H

#include "lf_proc.h"

/* What the transport asks of the module that holds the payloads. */
typedef struct lf_mpi_host {
  lf_payload *(*payload_new)(const void *data, size_t len,
                             lf_obj *const *objs, uint32_t nobjs,
                             uint32_t flags);
  void (*payload_free)(lf_payload *p);
  size_t max_message; /* the largest body a rank may send this one */
} lf_mpi_host;

/* This module's: its payload functions and LUAFUTURES_MAX_MESSAGE. */
void lf_mpi_host_default(lf_mpi_host *h);

/* Messages a worker rank is sent (lf_mpi.next). */
enum lf_mpi_kind {
  LF_MPI_HELLO = 1, /* a pool's first message: its hello bytes */
  LF_MPI_TASK,      /* task `id` of the pool */
  LF_MPI_BYE,       /* the pool has no more tasks: answer with reply_bye */
  LF_MPI_DROP,      /* the pool is broken: forget it, answer nothing */
  LF_MPI_EXIT       /* the service ends */
};

typedef struct lf_mpi_msg {
  int kind;            /* enum lf_mpi_kind */
  int from;            /* the client's rank */
  uint32_t pool, id;
  lf_payload *data;    /* HELLO, TASK: owned by the receiver; else NULL */
} lf_mpi_msg;

#define LF_MPI_VERSION 1

typedef struct lf__tp lf__tp;
struct lf__tp_config;

typedef struct lf_mpi {
  unsigned version; /* LF_MPI_VERSION */
  /* Starts MPI on the transport's thread, once per process (later calls
   * return what the first found). 0 with this rank, the job's size and
   * the processor name, or LF_ESPAWN (why in host). */
  int (*init)(const lf_mpi_host *h, int *rank, int *size, char *host,
              size_t hostlen);
  /* The transport for the pool core (lf_mpipool_new). */
  lf__tp *(*open)(const struct lf__tp_config *cfg, int *err);
  /* The worker's side. serve runs fn(ud, m) on the MPI thread for each
   * message this rank gets as a worker, in order, until fn returns 0 (or
   * -1: it cannot go on), and blocks the caller meanwhile: a task runs
   * with no thread between it and its messages. fn owns m->data. 0, or
   * LF_ENOMEM when fn could not be given a message or returned -1. */
  int (*serve)(int (*fn)(void *ud, lf_mpi_msg *m), void *ud);
  int (*reply)(int to, uint32_t pool, uint32_t id, lf_payload *result,
               int failed); /* takes result */
  int (*reply_ready)(int to, uint32_t pool);
  int (*reply_initfail)(int to, uint32_t pool);
  int (*reply_bye)(int to, uint32_t pool, uint32_t received);
  /* Sends EXIT to every other rank as soon as this rank has no pool open
   * (at once when it has none). */
  void (*release)(void);
  /* Waits for every message to leave, then MPI_Finalize and the thread's
   * end. Afterwards nothing in the table may be called. */
  void (*finalize)(void);
  /* Ends the whole job with status `code` (MPI_Abort). */
  void (*abort)(int code);
  /* Messages received that fit no pool (dropped), for tests and stats. */
  long (*dropped)(void);
} lf_mpi;

/* The table of transport_mpi.c (in the module built with mpicc). */
const lf_mpi *lf_mpi_transport(void);

/* A process pool over the MPI transport `m`, as lf_procpool_new; its
 * workers are the job's other ranks (so max_workers is at most size - 1).
 * The worker path and start method are ignored. */
lf_procpool *lf_mpipool_new(const lf_mpi *m, const lf_proc_config *cfg,
                            const lf_proc_hooks *hooks, void *ud, int *err);

#endif
