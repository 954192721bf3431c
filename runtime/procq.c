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

static void release(lf__ids *t, uint32_t id) {
  lf__kept *k = t->kept[id];
  if (k == NULL) return;
  t->kept[id] = NULL;
  for (uint32_t i = 0; i < k->n; i++) lf_obj_unref(k->o[i]);
  lf__free(k);
}

int lf__ids_alloc(lf__ids *t, lf_future *f, void *owner, uint32_t *id) {
  if (t->nfree == 0) {
    size_t n = t->n ? t->n * 2 : 16;
    lf_future **ns = lf__realloc(t->slot, n * sizeof *ns);
    if (ns == NULL) return LF_ENOMEM;
    t->slot = ns;
    void **no = lf__realloc(t->owner, n * sizeof *no);
    if (no == NULL) return LF_ENOMEM;
    t->owner = no;
    lf__kept **nk = lf__realloc(t->kept, n * sizeof *nk);
    if (nk == NULL) return LF_ENOMEM;
    t->kept = nk;
    uint32_t *nf = lf__realloc(t->freeids, n * sizeof *nf);
    if (nf == NULL) return LF_ENOMEM;
    t->freeids = nf;
    for (size_t i = n; i > t->n; i--) {
      t->slot[i - 1] = NULL;
      t->kept[i - 1] = NULL;
      t->freeids[t->nfree++] = (uint32_t)(i - 1);
    }
    t->n = n;
  }
  *id = t->freeids[--t->nfree];
  t->slot[*id] = f;
  t->owner[*id] = owner;
  t->nout++;
  return 0;
}

lf_future *lf__ids_get(const lf__ids *t, uint32_t id, void **owner) {
  if (id >= t->n || t->slot[id] == NULL) return NULL;
  *owner = t->owner[id];
  return t->slot[id];
}

lf_future *lf__ids_take(lf__ids *t, uint32_t id, void **owner) {
  lf_future *f = lf__ids_get(t, id, owner);
  if (f == NULL) return NULL;
  t->slot[id] = NULL;
  t->freeids[t->nfree++] = id;
  t->nout--;
  release(t, id);
  return f;
}

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
  t->kept[id] = k;
  return 0;
}

const lf__kept *lf__ids_kept(const lf__ids *t, uint32_t id) {
  return t->kept[id];
}

void lf__ids_free(lf__ids *t) {
  for (size_t id = 0; id < t->n; id++) release(t, (uint32_t)id);
  lf__free(t->slot);
  lf__free(t->owner);
  lf__free(t->kept);
  lf__free(t->freeids);
  *t = (lf__ids){0};
}
