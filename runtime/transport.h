/*
 * transport.h -- what the process pool's core (proc.c) asks of the way
 * it reaches its workers. The core owns the queue, the ids, the send-ahead
 * window, the workers' bookkeeping and breaking; a transport owns the
 * channels and the bytes. transport_unix.c is the first one: worker
 * processes it spawns or forks, Unix sockets, one shared task queue.
 *
 * The shape is made for a second, MPI, transport too: its workers are
 * ranks that already exist (`start` claims one), tasks go to a chosen
 * rank (no LF__TP_ANY: the core picks the worker), replies are polled with
 * backoff (`wait` probes until something came, `wake` was called, or the
 * time is up), and every MPI call must happen on one thread
 * (LF__TP_FUNNELED: the core then calls start, send, kill, collect and
 * close only from its manager thread, and submitters merely `wake` it).
 *
 * Threads and locks. The core calls every operation but `wait` and `wake`
 * with its pool lock held; `wait` runs on the manager thread without it
 * (so it may block), between an `arm` and a `collect` of the same thread;
 * `wake` may be called from any thread, any lock held or none. No
 * operation may block for long while the lock is held (no blocking
 * waitpid: a transport reaps its processes in `collect`, without waiting).
 * `collect` reports what happened through the core's callback, with the
 * lock still held: the bytes of a result are valid during the call only.
 */
#ifndef LF_TRANSPORT_H
#define LF_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "lf_proc.h"

typedef struct lf__tp lf__tp;   /* a transport instance */
typedef struct lf__tw lf__tw;   /* one of its workers */

enum lf__tev_kind {
  LF__TEV_READY = 1, /* the worker read its hello: it is one of ours */
  LF__TEV_RESULT,    /* the answer to task `id` */
  LF__TEV_BYE,       /* it leaves in good order; `id`: tasks it received */
  LF__TEV_NEED,      /* task `id` refers to a Shared value whose bytes it
                      * lacks: `data` holds its 64-bit id (LF__NEED_LEN) */
  LF__TEV_INITFAIL,  /* its initializer failed */
  LF__TEV_BAD,       /* it broke the protocol (`why`); it is to be killed */
  LF__TEV_IOERROR,   /* a task could not be sent (`why`) */
  LF__TEV_GONE       /* it is gone and reaped: `status` (a wait status, or
                      * -1 when unknown); the lf__tw is freed after this */
};

typedef struct lf__tev {
  int kind;
  void *worker;       /* the cookie given to start; NULL for IOERROR */
  uint32_t id;
  int failed;         /* RESULT: the task raised */
  const void *data;   /* RESULT: its bytes, valid during the callback */
  size_t len;
  uint32_t flags;
  int status;         /* GONE */
  int closed_early;   /* GONE: it closed its channel and lingered, so the
                       * transport killed it (its status says SIGKILL) */
  const char *why;    /* BAD, IOERROR: static text */
} lf__tev;

typedef void (*lf__tev_fn)(void *ctx, const lf__tev *ev);

enum {
  LF__TP_ANY = 1,      /* send(NULL) reaches whichever worker is free */
  LF__TP_FUNNELED = 2, /* every call but wake on the manager thread */
  LF__TP_DEEP = 4      /* a worker queues what it is sent without limit, and
                        * each answer costs a long way round: the core sends
                        * 32 tasks ahead per worker (MPI) */
};

typedef struct lf__tp_ops {
  const char *name;
  unsigned caps;
  /* Starts (spawns, claims) a worker and sends it its hello. 0 with *w and
   * its number for messages (a pid, a rank), or a negative LF_E* code with
   * a reason (a path and an errno text) written into why. */
  int (*start)(lf__tp *t, void *cookie, lf__tw **w, long *num, char *why,
               size_t whylen);
  /* Whether a send may be made now (no earlier message is held back). */
  int (*can_send)(lf__tp *t);
  /* LF__TP_ANY: 1 when every task sent has been taken by some worker (none
   * is held back or waits in the shared queue), 0 when not, -1 when the
   * transport cannot tell. */
  int (*all_taken)(lf__tp *t);
  /* Sends task `id` to `to` (NULL: any, with LF__TP_ANY). Takes `task`
   * whatever it returns: 0 sent or held back to go first when there is
   * room (can_send says which), negative LF_E* when it cannot be sent. */
  int (*send)(lf__tp *t, lf__tw *to, uint32_t id, lf_payload *task);
  /* No more tasks: workers finish what they hold and say goodbye. Drops a
   * held-back message (its task may live in a future about to be freed). */
  void (*close_queue)(lf__tp *t);
  void (*kill)(lf__tp *t, lf__tw *w); /* asynchronous; GONE follows */
  void (*arm)(lf__tp *t);             /* what the next wait watches */
  /* Waits, without the lock, at most ms milliseconds (-1: no limit, which
   * a transport may shorten to poll or reap), or until wake. */
  void (*wait)(lf__tp *t, int ms);
  void (*wake)(lf__tp *t);
  void (*collect)(lf__tp *t, lf__tev_fn fn, void *ctx);
  void (*close)(lf__tp *t); /* frees it; every worker is gone */
  /* The answer to a NEED of worker w: the bytes of the Shared value it
   * asked for (copied before it returns), or NULL to say the pool cannot
   * send them (the worker's task then fails). 0, or -1 when w cannot be
   * told. NULL: the transport's workers never ask (their tasks carry the
   * bytes inline, as MPI's do). */
  int (*give)(lf__tp *t, lf__tw *w, const lf_payload *bytes);
} lf__tp_ops;

struct lf__tp {
  const lf__tp_ops *ops;
};

/* What a transport needs to start workers. */
typedef struct lf__tp_config {
  int method;            /* enum lf_start_method */
  const char *exe;       /* the worker executable ("" if none) */
  const char *hello;     /* the first message of every worker */
  size_t hello_len;
  size_t max_tasks;      /* max_tasks_per_child, told in the hello */
  int (*child_main)(void *ud, int qfd, int cfd);
  void *ud;
} lf__tp_config;

/* The Unix sockets transport; NULL with *err (LF_ENOMEM, LF_ESPAWN). The
 * config's strings must outlive it. */
lf__tp *lf__tp_unix_new(const lf__tp_config *cfg, int *err);

/* The core over another transport: as lf_procpool_new, with `open`
 * called by the first submit, on the submitter's thread and under the
 * pool lock (a funneled transport makes no MPI call there: its first
 * call on the manager thread can). */
lf_procpool *lf__procpool_new_on(const lf_proc_config *cfg,
                                 const lf_proc_hooks *hooks, void *ud,
                                 lf__tp *(*open)(const lf__tp_config *, int *),
                                 int *err);

#endif
