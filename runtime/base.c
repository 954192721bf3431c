/*
 * base.c -- the runtime's small shared pieces: error table, sync wrappers,
 * the future lock stripes, reference counts, payloads and the clock.
 *
 * Nothing here blocks except the condition waits. The stripes are 256 plain
 * mutexes, made once, and a future's is picked by a hash of its address.
 * The allocation counters are atomics and need no lock.
 */

#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

const char *lf_strerror(int err) {
  switch (err) {
#define LF__TEXT(name, code, text) \
  case code:                       \
    return text;
    LF_ERRORS(LF__TEXT)
#undef LF__TEXT
    case 0:
      return "success";
  }
  return "unknown error";
}

const char *lf_err_name(int err) {
  switch (err) {
#define LF__NAME(name, code, text) \
  case code:                       \
    return "LF_" #name;
    LF_ERRORS(LF__NAME)
#undef LF__NAME
  }
  return "LF_UNKNOWN";
}

void lf__die(const char *call, int rc, const char *file, int line) {
  fprintf(stderr, "luafutures: %s failed (%s) at %s:%d\n", call, strerror(rc),
          file, line);
  abort();
}

void lf__cond_init(pthread_cond_t *c) {
  pthread_condattr_t a;
  LF__CHECK(pthread_condattr_init(&a));
  LF__CHECK(pthread_condattr_setclock(&a, CLOCK_MONOTONIC));
  LF__CHECK(pthread_cond_init(c, &a));
  pthread_condattr_destroy(&a);
}

void lf__cond_wait(pthread_cond_t *c, pthread_mutex_t *m) {
  LF__CHECK(pthread_cond_wait(c, m));
}

int lf__cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, double secs) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  if (secs > 1e9) secs = 1e9; /* about 31 years: no overflow */
  time_t whole = (time_t)secs;
  long nsec = ts.tv_nsec + (long)((secs - (double)whole) * 1e9);
  ts.tv_sec += whole + nsec / 1000000000L;
  ts.tv_nsec = nsec % 1000000000L;
  int rc = pthread_cond_timedwait(c, m, &ts);
  if (rc == ETIMEDOUT) return 1;
  if (rc != 0) lf__die("pthread_cond_timedwait", rc, __FILE__, __LINE__);
  return 0;
}

#define LF__NSTRIPES 256
static pthread_mutex_t stripes[LF__NSTRIPES];
static pthread_once_t stripes_once = PTHREAD_ONCE_INIT;
static void stripes_init(void) {
  for (int i = 0; i < LF__NSTRIPES; i++)
    LF__CHECK(pthread_mutex_init(&stripes[i], NULL));
}

pthread_mutex_t *lf__stripe(const void *f) {
  pthread_once(&stripes_once, stripes_init);
  uintptr_t h = (uintptr_t)f >> 4;
  h ^= h >> 8;
  return &stripes[h % LF__NSTRIPES];
}

void lf__stripes_reset(void) {
  pthread_once(&stripes_once, stripes_init);
  for (int i = 0; i < LF__NSTRIPES; i++)
    LF__CHECK(pthread_mutex_init(&stripes[i], NULL));
}

void lf_obj_ref(lf_obj *o) {
  atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
}

void lf_obj_unref(lf_obj *o) {
  if (o == NULL) return;
  if (atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) == 1)
    o->destroy(o);
}

/* ---- allocation ----------------------------------------------------------- */

static _Atomic int tracking;
static _Atomic long live_allocs, fail_countdown;

void lf__alloc_test(long fail_at) {
  atomic_store(&live_allocs, 0);
  atomic_store(&fail_countdown, fail_at);
  atomic_store(&tracking, 1);
}

long lf__alloc_live(void) { return atomic_load(&live_allocs); }

int lf__alloc_reached(void) { return atomic_load(&fail_countdown) <= 0; }

static int tracked(void) {
  return atomic_load_explicit(&tracking, memory_order_relaxed);
}

int lf__alloc_refused(void) {
  return tracked() && atomic_fetch_sub(&fail_countdown, 1) == 1;
}

void lf__alloc_count(const void *p, int delta) {
  if (p && tracked()) atomic_fetch_add(&live_allocs, delta);
}

static void *counted(void *p) {
  lf__alloc_count(p, +1);
  return p;
}

void *lf__malloc(size_t n) {
  return lf__alloc_refused() ? NULL : counted(malloc(n));
}

void *lf__calloc(size_t count, size_t n) {
  return lf__alloc_refused() ? NULL : counted(calloc(count, n));
}

void *lf__realloc(void *p, size_t n) {
  if (lf__alloc_refused()) return NULL;
  void *q = realloc(p, n);
  return p == NULL ? counted(q) : q;
}

char *lf__strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = lf__malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

void lf__free(void *p) {
  lf__alloc_count(p, -1);
  free(p);
}

/* ---- big blocks ----------------------------------------------------------- */

/* A big round trip holds two or three at once (the task's, the result's,
 * an encoder's), so a few are kept, BIG_KEEP bytes in all. Sizes are
 * powers of two, so that one payload's block fits the next of about its
 * size, and an encoder's, which doubles. */
#define BIG_SLOTS 4
#define BIG_KEEP ((size_t)64 << 20)

static pthread_mutex_t big_lock = PTHREAD_MUTEX_INITIALIZER;
static void *big_slot[BIG_SLOTS];
static size_t big_cap[BIG_SLOTS], big_kept;
static pthread_once_t big_once = PTHREAD_ONCE_INIT;

/* A forked worker finds the cache whole: the lock is held across fork(). */
static void big_lock_fork(void) { lf__lock(&big_lock); }
static void big_unlock_fork(void) { lf__unlock(&big_lock); }
static void big_init(void) {
  LF__CHECK(pthread_atfork(big_lock_fork, big_unlock_fork, big_unlock_fork));
}
static void big_enter(void) {
  pthread_once(&big_once, big_init);
  lf__lock(&big_lock);
}

void *lf_big_take(size_t n, size_t *cap) {
  size_t want = LF_BIG_MIN;
  while (want < n && want < SIZE_MAX / 2) want *= 2;
  n = want >= n ? want : n;
  int best = -1;
  big_enter();
  for (int i = 0; i < BIG_SLOTS; i++)
    if (big_slot[i] && big_cap[i] >= n &&
        (best < 0 || big_cap[i] < big_cap[best]))
      best = i;
  void *p = NULL;
  if (best >= 0) {
    p = big_slot[best];
    *cap = big_cap[best];
    big_slot[best] = NULL;
    big_kept -= *cap;
  }
  lf__unlock(&big_lock);
  if (p) return p;
  if ((p = malloc(n)) != NULL) *cap = malloc_usable_size(p);
  return p;
}

void lf_big_give(void *block) {
  if (block == NULL) return;
  size_t cap = malloc_usable_size(block);
  void *out = block; /* what is freed */
  big_enter();
  int at = -1;
  for (int i = 0; i < BIG_SLOTS && at < 0; i++)
    if (big_slot[i] == NULL) at = i;
  if (at >= 0 && cap >= LF_BIG_MIN && big_kept + cap <= BIG_KEEP) {
    big_slot[at] = block;
    big_cap[at] = cap;
    big_kept += cap;
    out = NULL;
  }
  lf__unlock(&big_lock);
  free(out);
}

/* ---- payloads ------------------------------------------------------------- */

lf_payload *lf_payload_new(const void *data, size_t len, lf_obj *const *objs,
                           uint32_t nobjs, uint32_t flags) {
  lf_payload *p = lf__payload_blank(len, nobjs);
  if (p)
    lf__payload_fill(p, data, len, objs, nobjs, flags & LF_PAYLOAD_HOSTFLAGS);
  return p;
}

lf_payload *lf__payload_blank(size_t len, uint32_t nobjs) {
  if (len > UINT32_MAX || nobjs > UINT16_MAX) return NULL;
  size_t size = lf__payload_size(len, nobjs), cap;
  lf_payload *p = size < LF_BIG_MIN ? lf__malloc(size)
                  : lf__alloc_refused() ? NULL
                                        : lf_big_take(size, &cap);
  if (p == NULL) return NULL;
  if (size >= LF_BIG_MIN) lf__alloc_count(p, +1);
  p->len = (uint32_t)len;
  p->nobjs = 0;
  p->flags = 0;
  return p;
}

lf_payload *lf_payload_adopt(void *block, size_t len, lf_obj *const *objs,
                             uint32_t nobjs, uint32_t flags) {
  if (len > UINT32_MAX || nobjs > UINT16_MAX || lf__alloc_refused())
    return NULL;
  size_t size = lf__payload_size(len, nobjs);
  lf_payload *p = block;
  if (malloc_usable_size(block) < size && (p = realloc(block, size)) == NULL)
    return NULL;
  lf__alloc_count(p, +1);
  p->len = (uint32_t)len;
  p->nobjs = (uint16_t)nobjs;
  p->flags = (uint16_t)(flags & LF_PAYLOAD_HOSTFLAGS);
  if (nobjs) memcpy(lf_payload_objs(p), objs, nobjs * sizeof(lf_obj *));
  return p;
}

size_t lf__payload_size(size_t len, uint32_t nobjs) {
  return LF__ALIGN(sizeof(lf_payload) + len) + nobjs * sizeof(lf_obj *);
}

void lf__payload_fill(lf_payload *p, const void *data, size_t len,
                      lf_obj *const *objs, uint32_t nobjs, uint32_t flags) {
  p->len = (uint32_t)len;
  p->nobjs = (uint16_t)nobjs;
  p->flags = (uint16_t)flags;
  if (len) memcpy(p->data, data, len);
  if (nobjs) memcpy(lf_payload_objs(p), objs, nobjs * sizeof(lf_obj *));
}

/* Static and empty: it costs nothing to hand out when nothing else can be
 * allocated, and freeing it is a no-op, so any path may pass it on. */
static lf_payload oom_payload;

lf_payload *lf_payload_oom(void) { return &oom_payload; }

void lf_payload_free(lf_payload *p) {
  if (p == NULL || p == &oom_payload) return;
  lf_obj **objs = lf_payload_objs(p);
  for (uint32_t i = 0; i < p->nobjs; i++) lf_obj_unref(objs[i]);
  if (p->flags & LF__PAYLOAD_INROOM) {
    lf_future *f = (lf_future *)((char *)p - offsetof(lf_future, roombuf));
    f->room_used = 0;
  } else if (p->len >= LF_BIG_MIN / 2) {
    /* Made in a big block, or adopted from one at least half full: back
     * to the cache (lf_big_give frees what is not big after all). */
    lf__alloc_count(p, -1);
    lf_big_give(p);
  } else {
    lf__free(p);
  }
}

int lf__spin_until_done(lf_future *f, double secs) {
  double end = 0;
  for (unsigned i = 0;; i++) {
    if (lf_future_done(f)) return 1;
    lf__relax();
    if ((i & 63) == 63) {
      if ((i & 511) == 511) sched_yield();
      double now = lf_now();
      if (end == 0) end = now + secs;
      else if (now > end) return 0;
    }
  }
}

double lf_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void lf_sleep(double seconds) {
  /* In steps of at most ~31 years, so no time_t overflows: an infinite
   * sleep sleeps forever. */
  while (seconds > 0) {
    double step = seconds > 1e9 ? 1e9 : seconds;
    if (seconds != HUGE_VAL) seconds -= step;
    struct timespec ts;
    ts.tv_sec = (time_t)step;
    ts.tv_nsec = (long)((step - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
  }
}

int lf_cpu_count(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}
