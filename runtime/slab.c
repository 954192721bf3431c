/*
 * slab.c -- the memory of futures.
 *
 * A program that submits in a burst makes futures faster than the kernel
 * hands out fresh pages. With malloc every new 4 KiB page of the heap costs
 * a page fault, and on a virtual machine one fault can cost more than the
 * rest of a submit (14 us against 1 us, measured on the 2-vCPU machine of
 * the README's table). So futures, which are all one size, are cut from
 * 2 MiB chunks aligned to their size, populated ahead of use 64 KiB at a
 * time, one call each; every chunk after the first also asks for a huge
 * page, since a program that needs two will likely need more. A cell's
 * chunk is found by masking its address; a freed cell goes on its chunk's
 * free list, and a chunk left with no live cell is unmapped unless it is
 * the one being allocated from (so a program that makes one future at a
 * time maps one chunk, once).
 *
 * One mutex, `mu`, guards the chunk list, `cur` and every chunk header;
 * nothing else is locked while it is held. Cells are taken and given back
 * on any thread. The slab of futures holds its lock across fork() (a
 * pthread_atfork handler), so a forked child finds its lists whole.
 *
 * Under AddressSanitizer futures come from malloc instead (lf__cell_*), so
 * a use after free is still caught; the slab itself is tested directly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define CHUNK ((size_t)2 << 20)
#define STEP ((size_t)64 << 10)

typedef struct chunk chunk;
struct chunk {
  chunk *prev, *next; /* every chunk, in a ring through `ring` */
  void *free;         /* freed cells, linked through their first word */
  size_t bump;        /* offset of the first cell never handed out */
  size_t populated;   /* bytes from the start populated ahead */
  size_t live;        /* cells handed out */
  size_t cell;        /* cell size */
};

struct lf__slab {
  pthread_mutex_t mu;
  size_t cell; /* bytes per cell, a multiple of 8 */
  chunk *cur;  /* where cells come from first, or NULL */
  chunk ring;  /* list head */
  size_t nchunks;
};

static size_t first_cell(size_t cell) {
  return (sizeof(chunk) + cell - 1) / cell * cell;
}

static void populate(chunk *c, size_t upto) {
  while (c->populated < upto && c->populated < CHUNK) {
#ifdef MADV_POPULATE_WRITE
    /* Fails on kernels before 5.14: then pages fault in as they are used. */
    madvise((char *)c + c->populated, STEP, MADV_POPULATE_WRITE);
#endif
    c->populated += STEP;
  }
}

/* A new chunk, aligned to CHUNK, linked in; NULL when out of memory. */
static chunk *chunk_new(lf__slab *s) {
  char *raw = mmap(NULL, 2 * CHUNK, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return NULL;
  char *at = (char *)(((uintptr_t)raw + CHUNK - 1) & ~(uintptr_t)(CHUNK - 1));
  if (at > raw) munmap(raw, (size_t)(at - raw));
  if (at + CHUNK < raw + 2 * CHUNK)
    munmap(at + CHUNK, (size_t)(raw + 2 * CHUNK - (at + CHUNK)));
#ifdef MADV_HUGEPAGE
  if (s->nchunks > 0) madvise(at, CHUNK, MADV_HUGEPAGE); /* a mere hint */
#endif
  chunk *c = (chunk *)at;
  c->populated = 0;
  populate(c, STEP);
  c->free = NULL;
  c->bump = first_cell(s->cell);
  c->live = 0;
  c->cell = s->cell;
  c->next = s->ring.next;
  c->prev = &s->ring;
  s->ring.next->prev = c;
  s->ring.next = c;
  s->nchunks++;
  return c;
}

static int has_room(const chunk *c) {
  return c->free != NULL || c->bump + c->cell <= CHUNK;
}

static void slab_init(lf__slab *s, size_t size) {
  memset(s, 0, sizeof *s);
  LF__CHECK(pthread_mutex_init(&s->mu, NULL));
  s->cell = (size + 7) & ~(size_t)7;
  s->ring.next = s->ring.prev = &s->ring;
}

lf__slab *lf__slab_new(size_t size) {
  lf__slab *s = lf__malloc(sizeof *s);
  if (s) slab_init(s, size);
  return s;
}

void lf__slab_free(lf__slab *s) {
  if (s == NULL) return;
  for (chunk *c = s->ring.next, *next; c != &s->ring; c = next) {
    next = c->next;
    munmap(c, CHUNK);
  }
  pthread_mutex_destroy(&s->mu);
  lf__free(s);
}

void *lf__slab_take(lf__slab *s) {
  lf__lock(&s->mu);
  chunk *c = s->cur;
  if (c == NULL || !has_room(c)) {
    for (c = s->ring.next; c != &s->ring && !has_room(c); c = c->next) {
    }
    if (c == &s->ring) c = chunk_new(s);
    s->cur = c;
  }
  void *p = NULL;
  if (c && c->free) {
    p = c->free;
    c->free = *(void **)p;
  } else if (c) {
    p = (char *)c + c->bump;
    c->bump += c->cell;
    populate(c, c->bump + STEP / 2);
  }
  if (c) c->live++;
  lf__unlock(&s->mu);
  return p;
}

void lf__slab_give(lf__slab *s, void *p) {
  if (p == NULL) return;
  chunk *c = (chunk *)((uintptr_t)p & ~(uintptr_t)(CHUNK - 1));
  lf__lock(&s->mu);
  *(void **)p = c->free;
  c->free = p;
  int drop = --c->live == 0 && c != s->cur;
  if (drop) {
    c->prev->next = c->next;
    c->next->prev = c->prev;
    s->nchunks--;
  } else if (s->cur && !has_room(s->cur)) {
    s->cur = c;
  }
  lf__unlock(&s->mu);
  if (drop) munmap(c, CHUNK);
}

size_t lf__slab_chunks(lf__slab *s) {
  lf__lock(&s->mu);
  size_t n = s->nchunks;
  lf__unlock(&s->mu);
  return n;
}

/* ---- the cells of futures ------------------------------------------------ */

#if defined(__SANITIZE_ADDRESS__)
#define CELLS_FROM_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CELLS_FROM_MALLOC 1
#endif
#endif

#ifndef CELLS_FROM_MALLOC /* else malloc serves, and none of this is used */
/* The process's one slab of futures, never freed. */
static lf__slab cells;
static pthread_once_t cells_once = PTHREAD_ONCE_INIT;

/* fork() keeps the slab whole: the lock is held across it, so no other
 * thread is half way through a list, and each side then releases it. */
static void cells_lock(void) { lf__lock(&cells.mu); }
static void cells_unlock(void) { lf__unlock(&cells.mu); }

static void cells_init(void) {
  slab_init(&cells, LF__CELL_SIZE);
  LF__CHECK(pthread_atfork(cells_lock, cells_unlock, cells_unlock));
}
#endif

/* Counted as allocations, so the C tests see a leaked future and can make
 * the making of one fail. */
void *lf__cell_take(void) {
#ifdef CELLS_FROM_MALLOC
  return lf__malloc(LF__CELL_SIZE);
#else
  if (lf__alloc_refused()) return NULL;
  pthread_once(&cells_once, cells_init);
  void *p = lf__slab_take(&cells);
  lf__alloc_count(p, +1);
  return p;
#endif
}

void lf__cell_give(void *p) {
#ifdef CELLS_FROM_MALLOC
  lf__free(p);
#else
  if (p == NULL) return;
  lf__alloc_count(p, -1);
  lf__slab_give(&cells, p);
#endif
}

void lf__cells_ready(void) {
#ifndef CELLS_FROM_MALLOC
  pthread_once(&cells_once, cells_init);
#endif
}
