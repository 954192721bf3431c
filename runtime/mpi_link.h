/*
 * mpi_link.h -- what the two files of the MPI transport share: the link
 * (mpi_link.c: the MPI thread, the messages, the worker side) and the
 * pools' transport (transport_mpi.c). Included by those two only; it
 * names MPI types, so only the mpicc build sees it.
 *
 * A message is a 16-byte header (pool id, task id, payload flags, and a
 * count or a failed flag, each a little-endian u32) and a body; its MPI
 * tag is its kind: the worker side's kinds (enum lf_mpi_kind), then the
 * answers (T_*).
 */
#ifndef LF_MPI_LINK_H
#define LF_MPI_LINK_H

#include <mpi.h>
#include <pthread.h>
#include <stdint.h>

#include "lf_mpi.h"
#include "transport.h"

#define HDR 16
enum { T_READY = 16, T_RESULT, T_INITFAIL, T_BYE };

typedef struct lf__mpimsg {
  struct lf__mpimsg *next;
  int peer, tag;
  size_t len;
  MPI_Request req;
  unsigned char buf[]; /* HDR + body */
} lf__mpimsg;

/* The link's state; `mu` guards all of it but what the MPI thread keeps
 * to itself. */
typedef struct lf__mpilink {
  pthread_mutex_t mu;
  pthread_cond_t cv, serve_cv; /* wakes the MPI thread; the worker side */
  int state; /* 0 not started, 1 starting, 2 running, -1 failed, 3 done */
  int rank, size;
  char host[MPI_MAX_PROCESSOR_NAME + 1];
  char why[160];
  lf_mpi_host h;
  pthread_t th;
  MPI_Comm comm;
  lf__mpimsg *out, **outtail;     /* to be sent */
  lf__mpimsg *serve, **servetail; /* for the worker side */
  int npools;                     /* transports open */
  int (*serve_fn)(void *ud, lf_mpi_msg *m); /* the worker side's, or NULL */
  void *serve_ud;
  int serve_rc;
  uint32_t next_pool;
  int release, released, stop, abort_code;
  long dropped;
} lf__mpilink;
extern lf__mpilink lf__mpi;

void lf__mpi_check(int rc, const char *what); /* aborts on rc != 0 */
#define LF__MPI_LOCK() lf__mpi_check(pthread_mutex_lock(&lf__mpi.mu), "pthread_mutex_lock")
#define LF__MPI_UNLOCK() \
  lf__mpi_check(pthread_mutex_unlock(&lf__mpi.mu), "pthread_mutex_unlock")

uint32_t lf__mpi_get32(const unsigned char *p);
/* A message (malloc'd; NULL when out of memory); hdr NULL: all zero. */
lf__mpimsg *lf__mpi_msg(int peer, int tag, const uint32_t hdr[4],
                        const void *body, size_t len);
void lf__mpi_queue_locked(lf__mpimsg *m); /* to be sent; wakes the thread */
int lf__mpi_post(int peer, int tag, uint32_t pool, uint32_t id,
                 uint32_t flags, uint32_t aux, const void *body, size_t len);
void lf__mpi_cond_init(pthread_cond_t *c); /* on CLOCK_MONOTONIC */
/* Waits on c, mu held, at most secs (< 0: no limit); 1 if time ran out. */
int lf__mpi_cond_wait(pthread_cond_t *c, double secs);

/* transport_mpi.c, called by the MPI thread with mu held: an answer for
 * one of our pools (taking m), and a rank that broke the protocol. */
void lf__mpi_answer_locked(lf__mpimsg *m);
void lf__mpi_bad_locked(int rank, const char *why);
/* The pools' transport (the lf_mpi table's open). */
lf__tp *lf__tp_mpi_open(const lf__tp_config *cfg, int *err);

#endif
