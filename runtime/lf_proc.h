/*
 * lf_proc.h -- process pools: the tasks of a pool run in worker processes.
 *
 * The same shape as the thread pool of lf.h: futures start in submission
 * order, workers start lazily (one per submit while none is free) and are
 * reused, shutdown may wait and cancel what is queued. A task and its
 * result cross as the bytes of their payloads; a task's objects stay
 * here, kept until it is answered, and the only ones a worker can reach
 * are blobs (the host's `blob` hook says which): read-only bytes with a
 * 64-bit id, which a worker that lacks them asks for while it runs that
 * task (lf_proc_child_need), so each goes to a worker process at most
 * once however many of its tasks refer to it. A worker is either a fresh executable
 * (LF_START_SPAWN) or a fork of this process that runs the host's
 * `child_main` hook (LF_START_FORK). The worker's half of the wire protocol
 * is the lf_proc_child_* functions below, so the host never sees the bytes
 * of a frame.
 *
 * A worker that dies without saying goodbye, or breaks the protocol in any
 * way, breaks the pool: every queued and running future fails with the
 * host's `broken` payload (lf_payload_oom() when it returns NULL), the
 * other workers are killed, and later submits get LF_EBROKEN; the cause and
 * a detail naming the worker say why. Every worker process is reaped, and
 * never with a blocking wait under a lock. A frame above
 * LUAFUTURES_MAX_MESSAGE bytes (default 1 GiB) is a protocol violation.
 *
 * Inside, a core (proc.c) runs over a transport (transport.h): this
 * header's pools use Unix sockets (transport_unix.c).
 *
 * Linux only (glibc 2.34 or later): unix datagram sockets, memfd, eventfd,
 * closefrom.
 */
#ifndef LF_PROC_H
#define LF_PROC_H

#include "lf.h"

typedef struct lf_procpool lf_procpool;

enum lf_start_method { LF_START_SPAWN, LF_START_FORK };

/* Why a process pool broke (lf_procpool_cause). */
enum lf_proc_cause {
  LF_PROC_DIED = 1,    /* a worker terminated abruptly */
  LF_PROC_INITFAILED,  /* a worker's initializer failed */
  LF_PROC_SPAWNFAILED, /* no worker could be started for queued work */
  LF_PROC_IOERROR,     /* a task could not be sent */
  LF_PROC_NOANSWER,    /* a worker did not answer its hello in time */
  LF_PROC_PROTOCOL     /* a worker broke the protocol (see the detail) */
};

/* The descriptors a worker finds its two channels on. */
#define LF_PROC_QFD 3 /* the task queue, shared by the pool's workers */
#define LF_PROC_CFD 4 /* its own channel: hello in, results out */

typedef struct lf_proc_hooks {
  /* LF_START_FORK: runs in the forked child, which has one thread, the
   * runtime's locks free, default signal handlers, stdio buffers emptied,
   * and only fds 0-2 and its two channels open. Returns the exit status. */
  int (*child_main)(void *ud, int qfd, int cfd);
  /* The error payload that fails a future of a broken pool: `cause` and
   * the detail of lf_procpool_detail. Called with no runtime lock held, on
   * any thread; NULL makes the future fail with lf_payload_oom(). (A task
   * that found no memory, here or in its worker, fails with
   * lf_payload_oom() and breaks nothing.) */
  lf_payload *(*broken)(void *ud, int cause, const char *detail);
  /* Called once when the pool is destroyed (may be NULL). */
  void (*release)(void *ud);
  /* Whether object o of a task is a blob: its bytes, and its id in *id;
   * NULL when it is not. Called under the pool lock; must not block. NULL:
   * no object is, and a worker that asks for one breaks the pool. */
  const lf_payload *(*blob)(void *ud, lf_obj *o, uint64_t *id);
} lf_proc_hooks;

typedef struct lf_proc_config {
  size_t max_workers;         /* at least 1 */
  size_t max_tasks_per_child; /* 0: no limit */
  int start_method;           /* enum lf_start_method */
  const char *worker_path;    /* the worker executable (copied): needed by
                               * LF_START_SPAWN; "" if none */
  const void *hello;          /* copied: the first message of every worker */
  size_t hello_len;
  double answer_timeout;      /* seconds a new worker has to answer its
                               * hello before the pool breaks; 0: 30 */
} lf_proc_config;

/* A new pool with one reference owned by the caller; no process and no
 * thread starts before the first submit. NULL with *err set on failure. */
lf_procpool *lf_procpool_new(const lf_proc_config *cfg,
                             const lf_proc_hooks *hooks, void *ud, int *err);
void lf_procpool_ref(lf_procpool *p);
void lf_procpool_unref(lf_procpool *p); /* the last one shuts down, waits */

/* Queues `f` (pending, holding a task payload without objects); the pool
 * takes its own reference. LF_ESHUTDOWN, LF_EBROKEN or LF_ESPAWN (no worker
 * could be started and none runs) on failure, the future untouched. */
int lf_procpool_submit(lf_procpool *p, lf_future *f);

/* Stops accepting work; with `cancel_futures` cancels every future not yet
 * sent to a worker before returning; with `wait` returns once every worker
 * has exited and been reaped and the pool's descriptors are closed.
 * Idempotent. */
int lf_procpool_shutdown(lf_procpool *p, int wait, int cancel_futures);

int lf_procpool_status(lf_procpool *p); /* enum lf_pool_status */
int lf_procpool_cause(lf_procpool *p);  /* enum lf_proc_cause, 0 if none */
/* Writes (truncated to len, NUL-terminated) why the pool broke -- "worker
 * 1234 exited with status 99", "worker 1234 was killed by signal 9",
 * "worker 1234 answered task 7, which it was not given" -- or, while it is
 * not broken, why the last worker could not start ("/path: Too many open
 * files"); "" if neither. Returns the detail's full length. */
size_t lf_procpool_detail(lf_procpool *p, char *buf, size_t len);
size_t lf_procpool_nworkers(lf_procpool *p); /* live worker processes */
size_t lf_procpool_max_workers(lf_procpool *p);
int lf_procpool_start_method(lf_procpool *p);
void *lf_procpool_ud(lf_procpool *p); /* the host's ud of lf_procpool_new */
/* How many futures wait to be sent, and how many are out (sent to the
 * workers, not answered yet): for a host's statistics. */
void lf_procpool_load(lf_procpool *p, size_t *unsent, size_t *out);
/* What went to the workers so far: the bytes of tasks and of blobs, and
 * how many blobs (each to one worker process). */
void lf_procpool_sent(lf_procpool *p, uint64_t *task_bytes,
                      uint64_t *blob_bytes, uint64_t *blobs);

/* ---- the worker's side ---------------------------------------------------- */

/* Starts a worker's life: marks both channels close-on-exec and reads the
 * hello. 0 with *hello (malloc'd, NUL-terminated, the caller frees it), its
 * length and the pool's max_tasks_per_child; LF_ENOMEM when there is no
 * memory for the hello (read to its end, so that the pool's send of it
 * completes: the worker should then exit with LF_PROC_EXIT_NOMEM); -1 if
 * the pool is gone. */
int lf_proc_child_start(int qfd, int cfd, char **hello, size_t *len,
                        size_t *max_tasks);
/* The exit status of a worker that found no memory to start: from a
 * worker that has not said it is ready, the pool's broken error says
 * `worker N exited with status 3: out of memory before it could start`. */
#define LF_PROC_EXIT_NOMEM 3

/* Waits for the next task: 0 with *task (the caller owns it) and its id, 1
 * when the pool has no more work for this worker, -1 on error. Only one
 * thread of a process may call it. */
int lf_proc_child_next(int qfd, lf_payload **task, uint32_t *id);

/* While it runs task `id`: the bytes of the blob `blob` that task refers
 * to, asked for from the pool. 0 with *bytes (the caller owns them), 1
 * when the pool could not send them (out of memory or descriptors), -1
 * when the pool is gone or answered out of turn. A worker that names a
 * blob its task does not hold breaks the pool (and is killed). */
int lf_proc_child_need(int cfd, uint32_t id, uint64_t blob,
                       lf_payload **bytes);

/* Sends the result of task `id`; takes ownership of `result` (not NULL).
 * lf_payload_oom() (failed) travels as a failed answer with no bytes, and
 * the pool's future gets lf_payload_oom() too. 0, or -1 when the pool is
 * gone. */
int lf_proc_child_reply(int cfd, uint32_t id, lf_payload *result, int failed);

/* The last word of a worker: its initializer failed (the pool breaks), or
 * it leaves in good order (after its last reply: the goodbye says how many
 * tasks it received, and a worker that leaves one unanswered breaks the
 * pool). */
int lf_proc_child_initfailed(int cfd);
int lf_proc_child_bye(int cfd);

#endif
