/*
 * procq.h -- the two tables of the process pool's core: the FIFO ring of
 * futures not yet sent, and the ids of those sent and not answered, each
 * with the worker it went to (NULL: whichever took it from a shared
 * queue), and the objects its task held (the Shared values a worker may
 * ask for while it runs). No lock of their own: the pool lock guards
 * both.
 */
#ifndef LF_PROCQ_H
#define LF_PROCQ_H

#include <stddef.h>
#include <stdint.h>

#include "lf.h"

typedef struct lf__ring {
  lf_future **q;
  size_t head, len, cap;
} lf__ring;

int lf__ring_push(lf__ring *r, lf_future *f); /* 0 or LF_ENOMEM */
lf_future *lf__ring_pop(lf__ring *r);          /* len > 0 */
void lf__ring_free(lf__ring *r);               /* the futures are not */

/* References to the objects of a task sent, kept until it is answered. */
typedef struct lf__kept {
  uint32_t n;
  lf_obj *o[];
} lf__kept;

/* An id is a slot (its low LF__ID_SLOTBITS bits) and that slot's use
 * count: a slot is reused at once, and its new id tells an answer to the
 * new task from a second answer to the old one. */
#define LF__ID_SLOTBITS 20
typedef struct lf__ids {
  lf_future **slot;
  void **owner;
  uint32_t *id;      /* each slot's current id */
  lf__kept **kept;   /* per slot; NULL: its task held no objects */
  uint32_t *freeids; /* free slots */
  size_t n, nfree, nout;
} lf__ids;

/* A free id for f sent to owner: 0, or LF_ENOMEM (also when every one of
 * the 2^LF__ID_SLOTBITS slots is in use). */
int lf__ids_alloc(lf__ids *t, lf_future *f, void *owner, uint32_t *id);
/* The future of id (NULL if none: an id from outside is checked) and its
 * owner, without freeing it. */
lf_future *lf__ids_get(const lf__ids *t, uint32_t id, void **owner);
/* The same, and id is free again (what it kept is released). */
lf_future *lf__ids_take(lf__ids *t, uint32_t id, void **owner);
/* The id slot s (s < t->n) holds, or last held. */
uint32_t lf__ids_of_slot(const lf__ids *t, size_t s);
/* Keeps a reference to each object of `task`, sent as id: 0 or LF_ENOMEM. */
int lf__ids_keep(lf__ids *t, uint32_t id, const lf_payload *task);
/* What id keeps (NULL: nothing); id is one lf__ids_get found. */
const lf__kept *lf__ids_kept(const lf__ids *t, uint32_t id);
void lf__ids_free(lf__ids *t);

#endif
