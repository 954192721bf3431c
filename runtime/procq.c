/*
 * procq.c -- the process pool core's ring of unsent futures and table of
 * ids (procq.h). Plain data structures; the caller's lock guards them.
 */
#include "internal.h"
#include "procq.h"

int lf__ring_push(lf__ring *r, lf_future *f) {
  if (r->len == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 64;
    lf_future **nq = lf__malloc(cap * sizeof *nq);
    if (nq == NULL) return LF_ENOMEM;
    for (size_t i = 0; i < r->len; i++) nq[i] = r->q[(r->head + i) % r->cap];
    lf__free(r->q);
    r->q = nq;
    r->head = 0;
    r->cap = cap;
  }
  r->q[(r->head + r->len) % r->cap] = f;
  r->len++;
  return 0;
}

lf_future *lf__ring_pop(lf__ring *r) {
  lf_future *f = r->q[r->head];
  r->head = (r->head + 1) % r->cap;
  r->len--;
  return f;
}

void lf__ring_free(lf__ring *r) {
  lf__free(r->q);
  *r = (lf__ring){0};
}

#define SLOT_MASK ((1u << LF__ID_SLOTBITS) - 1)

/* Drops what slot s keeps. */
static void release(lf__ids *t, uint32_t s) {
  lf__kept *k = t->kept[s];
  if (k == NULL) return;
  t->kept[s] = NULL;
  for (uint32_t i = 0; i < k->n; i++) lf_obj_unref(k->o[i]);
  lf__free(k);
}

int lf__ids_alloc(lf__ids *t, lf_future *f, void *owner, uint32_t *id) {
  if (t->nfree == 0) {
    size_t n = t->n ? t->n * 2 : 16;
    if (n > (size_t)SLOT_MASK + 1) return LF_ENOMEM;
    lf_future **ns = lf__realloc(t->slot, n * sizeof *ns);
    if (ns == NULL) return LF_ENOMEM;
    t->slot = ns;
    void **no = lf__realloc(t->owner, n * sizeof *no);
    if (no == NULL) return LF_ENOMEM;
    t->owner = no;
    uint32_t *ni = lf__realloc(t->id, n * sizeof *ni);
    if (ni == NULL) return LF_ENOMEM;
    t->id = ni;
    lf__kept **nk = lf__realloc(t->kept, n * sizeof *nk);
    if (nk == NULL) return LF_ENOMEM;
    t->kept = nk;
    uint32_t *nf = lf__realloc(t->freeids, n * sizeof *nf);
    if (nf == NULL) return LF_ENOMEM;
    t->freeids = nf;
    for (size_t i = n; i > t->n; i--) {
      t->slot[i - 1] = NULL;
      t->id[i - 1] = (uint32_t)(i - 1);
      t->kept[i - 1] = NULL;
      t->freeids[t->nfree++] = (uint32_t)(i - 1);
    }
    t->n = n;
  }
  uint32_t s = t->freeids[--t->nfree];
  t->id[s] += SLOT_MASK + 1; /* the next use of the slot (it wraps) */
  *id = t->id[s];
  t->slot[s] = f;
  t->owner[s] = owner;
  t->nout++;
  return 0;
}

lf_future *lf__ids_get(const lf__ids *t, uint32_t id, void **owner) {
  uint32_t s = id & SLOT_MASK;
  if (s >= t->n || t->slot[s] == NULL || t->id[s] != id) return NULL;
  *owner = t->owner[s];
  return t->slot[s];
}

lf_future *lf__ids_take(lf__ids *t, uint32_t id, void **owner) {
  lf_future *f = lf__ids_get(t, id, owner);
  if (f == NULL) return NULL;
  uint32_t s = id & SLOT_MASK;
  t->slot[s] = NULL;
  t->freeids[t->nfree++] = s;
  t->nout--;
  release(t, s);
  return f;
}

uint32_t lf__ids_of_slot(const lf__ids *t, size_t s) { return t->id[s]; }

int lf__ids_keep(lf__ids *t, uint32_t id, const lf_payload *task) {
  if (task->nobjs == 0) return 0;
  lf__kept *k = lf__malloc(sizeof *k + task->nobjs * sizeof k->o[0]);
  if (k == NULL) return LF_ENOMEM;
  k->n = task->nobjs;
  lf_obj **objs = lf_payload_objs(task);
  for (uint32_t i = 0; i < k->n; i++) {
    lf_obj_ref(objs[i]);
    k->o[i] = objs[i];
  }
  t->kept[id & SLOT_MASK] = k;
  return 0;
}

const lf__kept *lf__ids_kept(const lf__ids *t, uint32_t id) {
  return t->kept[id & SLOT_MASK];
}

void lf__ids_free(lf__ids *t) {
  for (size_t s = 0; s < t->n; s++) release(t, (uint32_t)s);
  lf__free(t->slot);
  lf__free(t->owner);
  lf__free(t->id);
  lf__free(t->kept);
  lf__free(t->freeids);
  *t = (lf__ids){0};
}
