/*
 * lf_queue.h -- a FIFO of payloads between threads, as Python's
 * queue.Queue: a bound (maxsize), blocking put and get with relative
 * timeouts, the unfinished-task count of task_done/join, and shutdown.
 *
 * Pure C like the rest of the runtime. A queue is reference counted
 * (lf_queue_obj makes it a payload's object, so a queue can travel inside
 * a payload). Every blocking call sleeps on a waiter the caller passes, so
 * anything that kicks that waiter (an inbox post, an interrupt) wakes the
 * call, which then returns LF_EKICKED: the caller does its work and calls
 * again with what is left of its timeout. Timeouts are relative seconds;
 * < 0 means no limit and 0 means "now or never" (the _nowait forms).
 */
#ifndef LF_QUEUE_H
#define LF_QUEUE_H

#include "lf.h"

typedef struct lf_queue lf_queue;

/* A new empty queue with one reference owned by the caller; maxsize 0 is
 * unbounded. NULL when out of memory. */
lf_queue *lf_queue_new(size_t maxsize);
#define lf_queue_obj(q) ((lf_obj *)(q))
void lf_queue_ref(lf_queue *q);
/* Drops a reference (NULL is ignored). Unlike lf_obj_unref it also wakes
 * a get waiting for the queue to have no other holder (see lf_queue_get). */
void lf_queue_unref(lf_queue *q);

/* Appends `item`, waiting up to `timeout` for room. On 0 the queue owns
 * `item`; otherwise the caller still does: LF_EFULL (no room in time),
 * LF_EQSHUTDOWN, LF_EKICKED (`w` was kicked: call again), LF_ENOMEM.
 * `w` (a waiter watching no future, owned by the caller) is what the call
 * sleeps on; NULL: one is made for the call when it must sleep. */
int lf_queue_put(lf_queue *q, lf_payload *item, double timeout, lf_waiter *w);

/* Takes the oldest item into *out (the caller owns it), waiting up to
 * `timeout`: 0, LF_EEMPTY (none in time), LF_EQSHUTDOWN (shut down and
 * empty), LF_EKICKED, LF_ENOMEM. With no limit and `mine` > 0 (the number
 * of references the caller holds), a wait while no one else holds the
 * queue can never end: LF_EDEADLK, at once or when the last other holder
 * lets go through lf_queue_unref. */
int lf_queue_get(lf_queue *q, lf_payload **out, double timeout, lf_waiter *w,
                 int mine);

/* One item taken by get is processed: LF_EINVALSTATE when called more
 * times than items were put. */
int lf_queue_task_done(lf_queue *q);
/* Waits until every item put has been marked done: 0, LF_ETIMEDOUT,
 * LF_EKICKED, LF_ENOMEM. */
int lf_queue_join(lf_queue *q, double timeout, lf_waiter *w);

/* Later puts fail with LF_EQSHUTDOWN, gets once the queue is empty; every
 * blocked put and get wakes. `immediate` also drops the items (counting
 * them done, so join wakes when nothing taken is unfinished). Idempotent. */
void lf_queue_shutdown(lf_queue *q, int immediate);

size_t lf_queue_qsize(lf_queue *q);
size_t lf_queue_maxsize(lf_queue *q);
int lf_queue_full(lf_queue *q);
int lf_queue_is_shutdown(lf_queue *q);
long lf_queue_unfinished(lf_queue *q);
/* Calls asleep in put, get or join now (not those still spinning). */
size_t lf_queue_nwaiting(lf_queue *q);

/* Live queues in this process (for tests' teardown). */
long lf_live_queues(void);

#endif
