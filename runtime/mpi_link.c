/*
 * mpi_link.c -- the MPI transport's link (lf_mpi.h): the one thread that
 * makes every MPI call of the process, and the worker side.
 *
 * The MPI thread calls MPI_Init_thread(MPI_THREAD_FUNNELED), then loops:
 * it posts what the outbox holds with MPI_Isend, tests the sends still in
 * flight, and takes what has come with MPI_Improbe and MPI_Mrecv, routing
 * each message to the pool it names (transport_mpi.c) or to the worker
 * side, whose serve function runs on this thread too: a worker rank runs
 * its tasks here, between two rounds, so no thread stands between a task
 * and its messages (sends still in flight complete first: a large one
 * needs this side's progress). A round that finds nothing sleeps on `cv` with a backoff
 * that doubles from 1 us to 1 ms (as mpi4py.futures does), so an idle
 * rank does not spin a core; queuing a message wakes it at once. It talks
 * on its own duplicate of MPI_COMM_WORLD, so a program's own MPI messages
 * never meet ours, with MPI_ERRORS_RETURN so that a message above the size
 * limit can be dropped (truncated) instead of ending the job.
 *
 * Bytes from another rank are untrusted: a message shorter than its
 * header or above the host's max_message names no pool we can believe,
 * so every pool its sender serves hears of it (and breaks); the others
 * are judged by the pool they name (transport_mpi.c).
 *
 * Locks. lf__mpi.mu guards the link (mpi_link.h) and the pools'
 * transports; the sends in flight are the MPI thread's alone. The pool
 * core calls its transport with its own pool lock held, so mu nests
 * inside that; the MPI thread takes no other lock, and nothing is called
 * back with mu held. `cv` wakes the MPI thread, `serve_cv` the caller of
 * serve when its function stopped, and callers of init waiting for MPI
 * to start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mpi_link.h"

#define BACKOFF_MIN 1e-6
#define BACKOFF_MAX 1e-3
#define W lf__mpi
#define LOCK LF__MPI_LOCK
#define UNLOCK LF__MPI_UNLOCK
typedef lf__mpimsg msg;

lf__mpilink lf__mpi = {.mu = PTHREAD_MUTEX_INITIALIZER,
                       .cv = PTHREAD_COND_INITIALIZER,
                       .serve_cv = PTHREAD_COND_INITIALIZER};

static msg *inflight; /* the MPI thread's own */

void lf__mpi_check(int rc, const char *what) {
  if (rc != 0) {
    fprintf(stderr, "luafutures: %s failed (%s)\n", what, strerror(rc));
    abort();
  }
}
#define check lf__mpi_check

/* ---- messages -------------------------------------------------------------- */

static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
uint32_t lf__mpi_get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}
#define get32 lf__mpi_get32

msg *lf__mpi_msg(int peer, int tag, const uint32_t hdr[4], const void *body,
                 size_t len) {
  msg *m = malloc(sizeof *m + HDR + len);
  if (m == NULL) return NULL;
  m->next = NULL;
  m->peer = peer;
  m->tag = tag;
  m->len = HDR + len;
  for (int i = 0; i < 4; i++) put32(m->buf + 4 * i, hdr ? hdr[i] : 0);
  if (len) memcpy(m->buf + HDR, body, len);
  return m;
}

void lf__mpi_queue_locked(msg *m) {
  *W.outtail = m;
  W.outtail = &m->next;
  check(pthread_cond_signal(&W.cv), "pthread_cond_signal");
}

int lf__mpi_post(int peer, int tag, uint32_t pool, uint32_t id,
                 uint32_t flags, uint32_t aux, const void *body, size_t len) {
  uint32_t hdr[4] = {pool, id, flags, aux};
  msg *m = lf__mpi_msg(peer, tag, hdr, body, len);
  if (m == NULL) return LF_ENOMEM;
  LOCK();
  lf__mpi_queue_locked(m);
  UNLOCK();
  return 0;
}

void lf__mpi_cond_init(pthread_cond_t *c) {
  pthread_condattr_t a;
  check(pthread_condattr_init(&a), "pthread_condattr_init");
  check(pthread_condattr_setclock(&a, CLOCK_MONOTONIC),
        "pthread_condattr_setclock");
  check(pthread_cond_init(c, &a), "pthread_cond_init");
  pthread_condattr_destroy(&a);
}

int lf__mpi_cond_wait(pthread_cond_t *c, double secs) {
  if (secs < 0) {
    check(pthread_cond_wait(c, &W.mu), "pthread_cond_wait");
    return 0;
  }
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  double whole = (double)(time_t)secs;
  long ns = ts.tv_nsec + (long)((secs - whole) * 1e9);
  ts.tv_sec += (time_t)whole + ns / 1000000000L;
  ts.tv_nsec = ns % 1000000000L;
  return pthread_cond_timedwait(c, &W.mu, &ts) != 0;
}
#define cond_wait lf__mpi_cond_wait

/* What came: for the worker side, or an answer for one of our pools. */
static void route_locked(msg *m, int src) {
  if (m->tag >= LF_MPI_HELLO && m->tag <= LF_MPI_EXIT) {
    if (m->len < HDR) { /* from a client: nothing to break, drop it */
      W.dropped++;
      free(m);
      return;
    }
    *W.servetail = m; /* run_served takes it, on this thread */
    W.servetail = &m->next;
  } else if (m->len < HDR) { /* no pool named: each one of src's hears */
    free(m);
    lf__mpi_bad_locked(src, "a message shorter than its header");
  } else {
    lf__mpi_answer_locked(m);
  }
}

/* ---- the MPI thread ---------------------------------------------------------- */

/* Takes one message that has come, if any; returns whether one had. */
static int receive_one(void) {
  int flag = 0;
  MPI_Message mm;
  MPI_Status st;
  if (MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, W.comm, &flag, &mm, &st) !=
          MPI_SUCCESS ||
      !flag)
    return 0;
  int count = 0;
  MPI_Get_count(&st, MPI_BYTE, &count);
  size_t len = count < 0 ? 0 : (size_t)count;
  int too_big = len > HDR + W.h.max_message;
  msg *m = malloc(sizeof *m + (too_big ? HDR : len));
  if (m == NULL || too_big) { /* take it off the wire, keep nothing */
    unsigned char sink[HDR];
    MPI_Mrecv(sink, 0, MPI_BYTE, &mm, MPI_STATUS_IGNORE); /* truncates */
    free(m);
    LOCK();
    lf__mpi_bad_locked(st.MPI_SOURCE, too_big ? "a message above the size limit "
                                        "(LUAFUTURES_MAX_MESSAGE)"
                                      : "a message too big for the memory");
    UNLOCK();
    return 1;
  }
  m->next = NULL;
  m->peer = st.MPI_SOURCE;
  m->tag = st.MPI_TAG;
  m->len = len;
  MPI_Mrecv(m->buf, count, MPI_BYTE, &mm, MPI_STATUS_IGNORE);
  LOCK();
  route_locked(m, st.MPI_SOURCE);
  UNLOCK();
  return 1;
}

static void send_all(msg *o) {
  while (o) {
    msg *next = o->next;
    MPI_Isend(o->buf, (int)o->len, MPI_BYTE, o->peer, o->tag, W.comm, &o->req);
    o->next = inflight;
    inflight = o;
    o = next;
  }
}

static void reap_sends(void) {
  for (msg **pp = &inflight; *pp;) {
    int done = 0;
    MPI_Test(&(*pp)->req, &done, MPI_STATUS_IGNORE);
    if (done) {
      msg *m = *pp;
      *pp = m->next;
      free(m);
    } else {
      pp = &(*pp)->next;
    }
  }
}

/* EXIT to every other rank, once no pool of ours is open (W.mu held). */
static void release_locked(void) {
  if (!W.release || W.released || W.npools) return;
  W.released = 1;
  for (int r = 0; r < W.size; r++)
    if (r != W.rank) {
      msg *m = lf__mpi_msg(r, LF_MPI_EXIT, NULL, NULL, 0);
      if (m) lf__mpi_queue_locked(m); /* else: that rank waits, mpiexec's guard */
    }
}

/* The worker side's view of m, which it frees: 0, or LF_ENOMEM. */
static int to_msg(msg *m, lf_mpi_msg *out) {
  out->kind = m->tag;
  out->from = m->peer;
  out->pool = get32(m->buf);
  out->id = get32(m->buf + 4);
  out->data = NULL;
  int rc = 0;
  if (m->tag == LF_MPI_HELLO || m->tag == LF_MPI_TASK) {
    out->data = W.h.payload_new(m->buf + HDR, m->len - HDR, NULL, 0,
                                get32(m->buf + 8));
    if (out->data == NULL) rc = LF_ENOMEM;
  }
  free(m);
  return rc;
}

/* Sends still in flight complete before a task runs on this thread: a
 * large one (rendezvous) needs this side's progress, and its receiver
 * waits in MPI_Mrecv meanwhile. */
static void idle_wait(double secs) {
  LOCK();
  if (W.out == NULL && !W.stop && !W.abort_code) cond_wait(&W.cv, secs);
  UNLOCK();
}

static void flush(void) {
  LOCK();
  msg *o = W.out;
  W.out = NULL;
  W.outtail = &W.out;
  UNLOCK();
  send_all(o);
}

static void drain_sends(void) {
  double backoff = BACKOFF_MIN;
  flush();
  for (reap_sends(); inflight; reap_sends()) {
    idle_wait(backoff);
    backoff = backoff * 2 < BACKOFF_MAX ? backoff * 2 : BACKOFF_MAX;
  }
}

/* Hands what came for the worker side to its serve function, here on the
 * MPI thread (no thread between a task and its messages); returns how
 * many it handled. What a stop leaves waits for the next serve. */
static int run_served(void) {
  LOCK();
  int (*fn)(void *, lf_mpi_msg *) = W.serve_fn;
  void *ud = W.serve_ud;
  msg *list = fn ? W.serve : NULL;
  if (list) {
    W.serve = NULL;
    W.servetail = &W.serve;
  }
  UNLOCK();
  int n = 0, more = 1;
  while (list && more) {
    msg *m = list;
    list = m->next;
    drain_sends();
    lf_mpi_msg mm;
    more = to_msg(m, &mm) == 0 ? fn(ud, &mm) : -1;
    n++;
  }
  if (more == 1) return n;
  LOCK(); /* stopped: what is left goes back first, the caller is woken */
  if (list) {
    msg **tail = &list;
    while (*tail) tail = &(*tail)->next;
    *tail = W.serve;
    if (W.serve == NULL) W.servetail = tail;
    W.serve = list;
  }
  W.serve_fn = NULL;
  W.serve_rc = more == 0 ? 0 : LF_ENOMEM;
  check(pthread_cond_broadcast(&W.serve_cv), "pthread_cond_broadcast");
  UNLOCK();
  return n;
}

static int mpi_start(void) {
  int provided = 0, len = 0;
  if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) !=
      MPI_SUCCESS)
    return -1;
  MPI_Comm_dup(MPI_COMM_WORLD, &W.comm);
  MPI_Comm_set_errhandler(W.comm, MPI_ERRORS_RETURN); /* truncation */
  MPI_Comm_rank(W.comm, &W.rank);
  MPI_Comm_size(W.comm, &W.size);
  MPI_Get_processor_name(W.host, &len);
  W.host[len > 0 ? len : 0] = '\0';
  return 0;
}


static void *mpi_main(void *arg) {
  (void)arg;
  int ok = mpi_start() == 0;
  LOCK();
  W.state = ok ? 2 : -1;
  if (!ok) snprintf(W.why, sizeof W.why, "MPI_Init_thread failed");
  check(pthread_cond_broadcast(&W.serve_cv), "pthread_cond_broadcast");
  UNLOCK();
  if (!ok) return NULL;
  double backoff = BACKOFF_MIN;
  for (;;) {
    LOCK();
    release_locked();
    msg *o = W.out;
    W.out = NULL;
    W.outtail = &W.out;
    int stop = W.stop, code = W.abort_code;
    int releasing = W.release && !W.released; /* goes out before the end */
    UNLOCK();
    if (code) MPI_Abort(MPI_COMM_WORLD, code);
    send_all(o);
    reap_sends();
    int got = 0;
    while (receive_one()) got++;
    got += run_served();
    if (stop && o == NULL && inflight == NULL && !releasing) break;
    if (got || o) {
      backoff = BACKOFF_MIN;
    } else {
      idle_wait(backoff);
      backoff = backoff * 2 < BACKOFF_MAX ? backoff * 2 : BACKOFF_MAX;
    }
  }
  MPI_Comm_free(&W.comm);
  MPI_Finalize();
  return NULL;
}

static int t_init(const lf_mpi_host *h, int *rank, int *size, char *host,
                  size_t hostlen) {
  LOCK();
  if (W.state == 0) {
    W.h = *h;
    W.outtail = &W.out;
    W.servetail = &W.serve;
    W.next_pool = 1;
    W.state = 1;
    lf__mpi_cond_init(&W.cv); /* nothing waits on either before this */
    lf__mpi_cond_init(&W.serve_cv);
    if (pthread_create(&W.th, NULL, mpi_main, NULL) != 0) {
      W.state = -1;
      snprintf(W.why, sizeof W.why, "cannot start the MPI thread");
    }
  }
  while (W.state == 1) cond_wait(&W.serve_cv, -1);
  int rc = W.state == 2 ? 0 : LF_ESPAWN;
  *rank = W.rank;
  *size = W.size;
  snprintf(host, hostlen, "%s", rc == 0 ? W.host
                                        : W.state == 3 ? "MPI is finalized"
                                                       : W.why);
  UNLOCK();
  return rc;
}

static void t_finalize(void) {
  LOCK();
  int running = W.state == 2;
  W.stop = 1;
  check(pthread_cond_signal(&W.cv), "pthread_cond_signal");
  UNLOCK();
  if (running) check(pthread_join(W.th, NULL), "pthread_join");
  LOCK();
  if (W.state == 2) W.state = 3;
  for (msg *m = W.serve, *n; m; m = n) n = m->next, free(m);
  W.serve = NULL;
  W.servetail = &W.serve;
  UNLOCK();
}

static void t_abort(int code) {
  LOCK();
  W.abort_code = code ? code : 1;
  check(pthread_cond_signal(&W.cv), "pthread_cond_signal");
  UNLOCK();
  for (;;) pause(); /* MPI_Abort ends this process too */
}

static void t_release(void) {
  LOCK();
  W.release = 1;
  check(pthread_cond_signal(&W.cv), "pthread_cond_signal");
  UNLOCK();
}

static long t_dropped(void) {
  LOCK();
  long n = W.dropped;
  UNLOCK();
  return n;
}

/* ---- the worker side ------------------------------------------------------------ */

static int t_serve(int (*fn)(void *ud, lf_mpi_msg *m), void *ud) {
  LOCK();
  W.serve_fn = fn;
  W.serve_ud = ud;
  check(pthread_cond_signal(&W.cv), "pthread_cond_signal");
  while (W.serve_fn) cond_wait(&W.serve_cv, -1);
  int rc = W.serve_rc;
  UNLOCK();
  return rc;
}

static int t_reply(int to, uint32_t pool, uint32_t id, lf_payload *res,
                   int failed) {
  int rc = lf__mpi_post(to, T_RESULT, pool, id, res->flags, failed != 0, res->data,
                res->len);
  W.h.payload_free(res);
  return rc;
}

static int t_ready(int to, uint32_t pool) {
  return lf__mpi_post(to, T_READY, pool, 0, 0, 0, NULL, 0);
}
static int t_initfail(int to, uint32_t pool) {
  return lf__mpi_post(to, T_INITFAIL, pool, 0, 0, 0, NULL, 0);
}
static int t_bye(int to, uint32_t pool, uint32_t received) {
  return lf__mpi_post(to, T_BYE, pool, received, 0, 0, NULL, 0);
}


static const lf_mpi table = {
    LF_MPI_VERSION, t_init,  lf__tp_mpi_open, t_serve,    t_reply,
    t_ready,        t_initfail, t_bye,        t_release,  t_finalize,
    t_abort,        t_dropped};

const lf_mpi *lf_mpi_transport(void) { return &table; }
