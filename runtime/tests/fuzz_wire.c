/*
 * fuzz_wire.c -- the fuzz target of the process pool's reply parser (the
 * reader and frame judge of wire.h, which the Unix transport feeds with a
 * worker's bytes). Runtime only: no Lua.
 *
 * An input is three bytes of setup, then the bytes "a worker sent":
 *   [0] seeds the sizes of the pieces they arrive in (as recv() splits a
 *       stream), [1] the size limit in units of 64 bytes (0: 1 GiB),
 *   [2] which allocation of the run fails (0: none).
 * After each piece every whole frame is taken and checked: a kind a worker
 * may send, a body within the limit and inside the buffer. The buffer may
 * never exceed twice what arrived plus one read chunk, whatever a header
 * announces; once the reader is bad it takes nothing more. Nothing may
 * crash, leak or read out of bounds (run under ASan+UBSan).
 *
 * Built with clang's -fsanitize=fuzzer and -DLFB_LIBFUZZER it is a
 * libFuzzer target (make fuzz, FUZZ_TARGETS); otherwise main() runs each
 * file named (`fuzz_wire FILE...`), mutates them at random for a while
 * (`-m SECONDS FILE...`), or writes the seed corpus (`-e DIR`).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../internal.h"
#include "wire.h"

#define CHECK(c)                                                       \
  do {                                                                 \
    if (!(c)) {                                                        \
      fprintf(stderr, "fuzz_wire: %s:%d: %s\n", __FILE__, __LINE__, #c); \
      abort();                                                         \
    }                                                                  \
  } while (0)

static void take_frames(lf__rd *r) {
  size_t at = 0;
  lf__hdr h;
  const char *data;
  while (lf__rd_next(r, &at, &h, &data)) {
    CHECK(h.kind == LF__K_OK || h.kind == LF__K_FAILED ||
          h.kind == LF__K_READY || h.kind == LF__K_BYE ||
          h.kind == LF__K_INITFAIL || h.kind == LF__K_NEED);
    CHECK(h.len <= r->max || h.kind == LF__K_NEED);
    CHECK(h.kind != LF__K_NEED || h.len == LF__NEED_LEN);
    CHECK(data >= r->buf && data + h.len <= r->buf + r->scan);
    CHECK(at <= r->scan && r->scan <= r->len && r->len <= r->cap);
    if (h.len) CHECK(data[0] == data[0] && data[h.len - 1] == data[h.len - 1]);
  }
  lf__rd_drop(r, at);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n) {
  if (n < 3) return 0;
  uint32_t seed = in[0] * 2654435761u + 1;
  lf__rd r = {0};
  r.max = in[1] ? (size_t)in[1] * 64 : (size_t)1 << 30;
  lf__alloc_test(in[2]);
  const uint8_t *p = in + 3;
  size_t left = n - 3, fed = 0;
  while (left > 0 && r.bad == NULL) {
    char *at;
    size_t room;
    if (lf__rd_room(&r, &at, &room) != 0) break;
    if (room == 0) { /* a whole frame waits: the transport's collect runs */
      take_frames(&r);
      continue;
    }
    seed = seed * 1103515245u + 12345u;
    size_t k = 1 + (seed >> 8) % (room < left ? room : left);
    memcpy(at, p, k);
    p += k;
    left -= k;
    fed += k;
    lf__rd_got(&r, k);
    CHECK(r.cap <= 2 * fed + 64 * 1024);
    take_frames(&r);
  }
  if (r.bad == NULL) lf__rd_eof(&r);
  if (r.bad == NULL) CHECK(r.len == 0); /* nothing left but whole frames */
  lf__rd_free(&r);
  CHECK(lf__alloc_live() == 0);
  lf__alloc_test(0);
  return 0;
}

#ifndef LFB_LIBFUZZER
static uint8_t *slurp(const char *path, size_t *n, size_t *capp) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  rewind(f);
  /* room for the mutator's inserts, up to 1 MiB in all */
  size_t cap = size < 0 ? 0 : (size_t)size + 64 < (1 << 20) ? (size_t)size + 64 : 1 << 20;
  uint8_t *s = malloc(cap ? cap : 1);
  *n = s ? fread(s, 1, cap, f) : 0;
  *capp = cap;
  fclose(f);
  return s;
}

/* Random flips, inserts, deletes and header-shaped words, for `secs`. */
static int mutate(double secs, char **files, int nfiles) {
  srand((unsigned)time(NULL));
  time_t end = time(NULL) + (time_t)secs;
  long runs = 0;
  while (time(NULL) < end && nfiles > 0) {
    size_t n, cap;
    uint8_t *s = slurp(files[rand() % nfiles], &n, &cap);
    if (s == NULL) return 1;
    for (int m = rand() % 8; m >= 0 && n > 0; m--) {
      size_t at = (size_t)rand() % n;
      switch (rand() % 4) {
        case 0: s[at] ^= (uint8_t)(1u << (rand() % 8)); break;
        case 1: s[at] = (uint8_t)rand(); break;
        case 2: if (n + 4 <= cap) { memmove(s + at + 4, s + at, n - at);
                  uint32_t v = (uint32_t)rand() % 9; memcpy(s + at, &v, 4);
                  n += 4; } break;
        case 3: memmove(s + at, s + at + 1, n - at - 1); n--; break;
      }
    }
    LLVMFuzzerTestOneInput(s, n);
    free(s);
    runs++;
  }
  printf("fuzz_wire: %ld inputs, none failed\n", runs);
  return 0;
}

static void seed_file(const char *dir, const char *name, uint8_t setup0,
                      uint8_t limit, const lf__hdr *hs, int nh) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (f == NULL) return;
  uint8_t setup[3] = {setup0, limit, 0};
  fwrite(setup, 1, 3, f);
  for (int i = 0; i < nh; i++) {
    fwrite(&hs[i], sizeof hs[i], 1, f);
    for (uint32_t j = 0; j < hs[i].len && j < 300; j++) fputc('x', f);
  }
  fclose(f);
}

static void write_seeds(const char *dir) {
  lf__hdr good[] = {{0, LF__K_READY, 0, 0}, {5, LF__K_OK, 3, 1},
                    {7, LF__K_FAILED, 4, 0}, {0, LF__K_BYE, 2, 0}};
  seed_file(dir, "replies", 7, 0, good, 4);
  lf__hdr big[] = {{0, LF__K_READY, 0, 0}, {250, LF__K_OK, 0, 0}};
  seed_file(dir, "over_limit", 1, 2, big, 2);
  lf__hdr cut[] = {{300, LF__K_OK, 9, 0}, {4000, LF__K_OK, 1, 0}};
  seed_file(dir, "truncated", 200, 0, cut, 2);
  lf__hdr odd[] = {{0, LF__K_INITFAIL, 0, 0}, {3, LF__K_BYE, 0, 0}};
  seed_file(dir, "control_with_body", 3, 0, odd, 2);
}

int main(int argc, char **argv) {
  if (argc > 2 && strcmp(argv[1], "-e") == 0) {
    write_seeds(argv[2]);
    return 0;
  }
  if (argc > 2 && strcmp(argv[1], "-m") == 0)
    return mutate(atof(argv[2]), argv + 3, argc - 3);
  for (int i = 1; i < argc; i++) {
    size_t n, cap;
    uint8_t *s = slurp(argv[i], &n, &cap);
    if (s == NULL) return 1;
    LLVMFuzzerTestOneInput(s, n);
    free(s);
    printf("ok %s\n", argv[i]);
  }
  return 0;
}
#endif
