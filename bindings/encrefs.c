/*
 * encrefs.c -- the encoder's reference cache: the lua_topointer of each
 * table and function an encode has met -> its reference number, so that
 * a value met twice (or a cycle) travels once. The first few live in the
 * encoder's inline arrays, scanned; beyond, an open-addressing hash of
 * rcap slots, malloc'd, at most half full. No Lua call: nothing raises.
 */
#include <stdint.h>
#include <stdlib.h>

#include "lfb.h"

void lfb_enc_refs_clear(lfb_enc *e) {
  if (e->rkeys != e->irkeys) {
    free(e->rkeys);
    free(e->rids);
  }
  e->rkeys = e->irkeys;
  e->rids = e->irids;
  e->rcap = 0;
  e->nrefs = 0;
}

static uint32_t slot_of(const void *p, uint32_t cap) {
  uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15u;
  return (uint32_t)(h >> 32) & (cap - 1);
}

/* The hash's slot for p: where p is, or the free one where it goes. */
static uint32_t find(const lfb_enc *e, const void *p) {
  uint32_t i = slot_of(p, e->rcap);
  while (e->rkeys[i] != NULL && e->rkeys[i] != p) i = (i + 1) & (e->rcap - 1);
  return i;
}

/* Moves the references into a hash twice as large (or the first hash,
 * from the inline arrays); -1 when out of memory. */
static int refs_grow(lfb_enc *e) {
  uint32_t cap = e->rcap ? e->rcap * 2 : 64;
  const void **okeys = e->rkeys;
  int *oids = e->rids;
  uint32_t n = e->rcap ? e->rcap : (uint32_t)e->nrefs;
  e->rkeys = calloc(cap, sizeof *e->rkeys);
  e->rids = malloc(cap * sizeof *e->rids);
  if (e->rkeys == NULL || e->rids == NULL) {
    free(e->rkeys);
    free(e->rids);
    e->rkeys = okeys;
    e->rids = oids;
    return -1;
  }
  e->rcap = cap;
  for (uint32_t j = 0; j < n; j++) {
    if (okeys[j] == NULL) continue;
    uint32_t i = find(e, okeys[j]);
    e->rkeys[i] = okeys[j];
    e->rids[i] = oids[j];
  }
  if (okeys != e->irkeys) {
    free(okeys);
    free(oids);
  }
  return 0;
}

int lfb_enc_ref(lfb_enc *e, const void *p) {
  if (e->rcap == 0) {
    for (int i = 0; i < e->nrefs; i++)
      if (e->irkeys[i] == p) return e->irids[i];
    if (e->nrefs < (int)(sizeof e->irkeys / sizeof e->irkeys[0])) {
      e->irkeys[e->nrefs] = p;
      e->irids[e->nrefs] = e->nrefs + 1;
      e->flags |= LFB_HASREFS;
      return (e->nrefs++, 0);
    }
    if (refs_grow(e) != 0) return -1;
  }
  uint32_t i = find(e, p);
  if (e->rkeys[i] == p) return e->rids[i];
  if ((uint32_t)e->nrefs + 1 > e->rcap / 2) {
    if (refs_grow(e) != 0) return -1;
    i = find(e, p);
  }
  e->rkeys[i] = p;
  e->rids[i] = ++e->nrefs;
  e->flags |= LFB_HASREFS;
  return 0;
}
