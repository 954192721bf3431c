/*
 * fuzz_decode.c -- the decoder's fuzz target, and a small driver around it.
 *
 * An input is one byte of mode, then a payload:
 *   0  values until the end, decoded as from another process;
 *   1  a u32 count, then that many values (the layout of results);
 *   2  values until the end, skipped (lfb_dec_skip, as map's traceback);
 *   3  values until the end, decoded as a payload of this process (the
 *      remote rules forced off) that owns no objects, so no object index
 *      can be valid.
 * Each input gets a fresh lua_State with the module, whose allocator refuses
 * any one block over 64 MiB (so a lie in a bytecode header is a memory error,
 * as on a machine without overcommit, not a fuzzer's out-of-memory report).
 * A decode may fail, with a TransferError; it must not crash, hang, leak or
 * leave the Lua stack unbalanced.
 *
 * Built with clang's -fsanitize=fuzzer, this is a libFuzzer target (make
 * fuzz). Built without it (make decode-check), main() decodes each file
 * named on the command line and prints one line per file: "ok N" (N values)
 * or the error; `-m SECONDS FILE...` mutates those files at random for that
 * long instead (the fallback where libFuzzer is missing); `-e DIR` writes
 * the valid part of the seed corpus (one encoded value of each kind).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lfb.h"

#define BLOCK_LIMIT ((size_t)64 << 20)

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  return nsize > BLOCK_LIMIT ? NULL : realloc(ptr, nsize);
}

/* A state like a worker's: standard libraries and the module, no paths (a
 * name in the payload must not load files from wherever this runs). */
static lua_State *new_state(void) {
  lua_State *L = lua_newstate(limited_alloc, NULL);
  if (L == NULL) abort();
  luaL_openlibs(L);
  luaL_requiref(L, LFB_MODNAME, luaopen_concurrent_futures, 0);
  lua_getglobal(L, "package");
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "path");
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "cpath");
  lua_settop(L, 0);
  return L;
}

/* Decodes per `mode`: the number of values, or -1 with the error on top. */
static int decode(lua_State *L, int mode, lfb_dec *d) {
  lua_pushnil(L); /* 1: refs */
  d->refs = 1;
  if (mode == 2) {
    int n = 0;
    while (d->pos < d->p->len && lfb_dec_skip(d) == 0) n++;
    if (d->bad) lua_pushliteral(L, "skip: corrupt payload");
    return d->bad ? -1 : n;
  }
  if (mode == 1) {
    uint32_t n = lfb_dec_u32(d);
    if (d->bad || n > d->p->len) { /* the caller's own bound, as outcomes do */
      lua_pushliteral(L, "count: corrupt payload");
      return -1;
    }
    return lfb_dec_protected(d, L, (int)n) == 0 ? (int)n : -1;
  }
  int n = 0;
  while (d->pos < d->p->len) {
    if (lfb_dec_protected(d, L, 1) != 0) return -1;
    n++;
  }
  return n;
}

/* Runs one input; writes "ok N" or the error into out. */
static void run_one(const uint8_t *data, size_t size, char *out, size_t cap) {
  if (size == 0) {
    snprintf(out, cap, "empty");
    return;
  }
  lf_payload *p = lf_payload_new(data + 1, size - 1, NULL, 0, LFB_HASREFS);
  if (p == NULL) abort();
  lua_State *L = new_state();
  lfb_dec d;
  int mode = data[0] & 3;
  lfb_dec_init_remote(&d, p);
  if (mode == 3) d.remote = 0; /* the checks of a local decode */
  int top = lua_gettop(L);
  int n = decode(L, mode, &d);
  if (n < 0) {
    snprintf(out, cap, "%s", lfb_tostring_safe(L, -1));
  } else {
    snprintf(out, cap, "ok %d", n);
    if (lua_gettop(L) != top + 1 + (mode == 2 ? 0 : n))
      abort(); /* refs and the values it pushed */
  }
  lua_close(L);
  lf_payload_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char out[512];
  run_one(data, size, out, sizeof out);
  return 0;
}

#ifndef LFB_LIBFUZZER

static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  size_t cap = 1 << 16, n = 0, got;
  uint8_t *buf = malloc(cap);
  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      uint8_t *nb = realloc(buf, cap *= 2);
      if (nb == NULL) free(buf);
      buf = nb;
    }
  }
  fclose(f);
  *len = n;
  return buf;
}

/* The fallback fuzzer: flips, inserts, deletes and overwrites bytes of the
 * seeds (with 0, 0xff and small numbers, which counts and tags are made
 * of) for `seconds`, from a fixed seed so that a failure reproduces. */
static int mutate_loop(double seconds, char **files, int nfiles) {
  srand(12345);
  time_t end = time(NULL) + (time_t)seconds;
  unsigned long runs = 0;
  uint8_t buf[4096];
  char out[512];
  const char *last = getenv("FUZZ_LAST");
  while (time(NULL) < end) {
    size_t len = 0;
    uint8_t *seed = read_file(files[rand() % nfiles], &len);
    if (seed == NULL) return 2;
    if (len > sizeof buf) len = sizeof buf;
    memcpy(buf, seed, len);
    free(seed);
    for (int k = 1 + rand() % 4; k > 0 && len > 1; k--) {
      size_t at = 1 + (size_t)rand() % (len - 1);
      static const uint8_t magic[] = {0, 1, 2, 8, 9, 10, 13, 14, 0x7f, 0xff};
      switch (rand() % 4) {
        case 0: buf[at] ^= (uint8_t)(1u << (rand() % 8)); break;
        case 1: buf[at] = magic[rand() % sizeof magic]; break;
        case 2: memmove(buf + at, buf + at + 1, len - at - 1); len--; break;
        default:
          if (len < sizeof buf) {
            memmove(buf + at + 1, buf + at, len - at);
            buf[at] = magic[rand() % sizeof magic];
            len++;
          }
      }
    }
    if (last) { /* what ran last, for a crash to be replayed */
      FILE *f = fopen(last, "wb");
      if (f) {
        fwrite(buf, 1, len, f);
        fclose(f);
      }
    }
    run_one(buf, len, out, sizeof out);
    runs++;
  }
  printf("%lu runs, no crash\n", runs);
  return 0;
}

/* Lua chunks whose value is encoded into a seed each: every tag, in the
 * form a process payload takes (bytecode inline); a Future and an executor
 * encoded for this process give the object-index tags. */
static const char *const seeds[] = {
    "return nil", "return true", "return false", "return 42",
    "return math.maxinteger", "return 1.5", "return 'short'",
    "return string.rep('x', 300)", "return {1, 2, {3}, x = 'y', [1.5] = 2}",
    "local t = {} t.self = t return {t, t}",
    "local up = {1} return function() return up[1] end",
    "return function(...) return select('#', ...) end",
    "local up = 1 return function() return tostring(up) end", /* T_ENV */
    "return math.max", "return string",
    "return setmetatable({}, require('concurrent.futures').TimeoutError)",
    "return setmetatable({}, {__index = {a = 1}})",
    "return require('concurrent.futures').Future()",
    "return require('concurrent.futures').ThreadPoolExecutor(1)",
};

static int write_seed(const char *dir, int i, int mode, const char *data,
                      size_t len) {
  char path[512];
  /* "local": a handle, whose object a file cannot carry */
  snprintf(path, sizeof path, "%s/%s-%02d-mode%d", dir,
           mode == 3 ? "local" : "valid", i, mode);
  FILE *f = fopen(path, "wb");
  if (f == NULL) return -1;
  unsigned char m = (unsigned char)mode;
  fwrite(&m, 1, 1, f);
  if (mode == 1) fwrite("\1\0\0\0", 1, 4, f); /* one value follows */
  fwrite(data, 1, len, f);
  return fclose(f);
}

static int write_corpus(const char *dir) {
  lua_State *L = new_state();
  int rc = 0;
  for (int i = 0; i < (int)(sizeof seeds / sizeof seeds[0]); i++) {
    if (luaL_dostring(L, seeds[i]) != LUA_OK) {
      fprintf(stderr, "%s: %s\n", seeds[i], lua_tostring(L, -1));
      return 1;
    }
    lfb_enc e;
    lfb_enc_init(&e, L);
    e.handles_ok = strstr(seeds[i], "Executor") || strstr(seeds[i], "Future(");
    if (lfb_enc_value(&e, L, -3) != 0) {
      fprintf(stderr, "%s: %s\n", seeds[i], e.err);
      return 1;
    }
    for (int mode = e.handles_ok ? 3 : 0; mode < 3; mode++)
      rc |= write_seed(dir, i, mode, e.buf, e.len);
    if (e.handles_ok) rc |= write_seed(dir, i, 3, e.buf, e.len);
    lfb_enc_free(&e, L);
    if (strstr(seeds[i], "Executor")) {
      lua_getfield(L, -1, "shutdown");
      lua_insert(L, -2);
      lua_call(L, 1, 0);
    }
    lua_settop(L, 0);
  }
  lua_close(L);
  return rc ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[1], "-e") == 0)
    return write_corpus(argv[2]);
  if (argc >= 4 && strcmp(argv[1], "-m") == 0)
    return mutate_loop(atof(argv[2]), argv + 3, argc - 3);
  char out[512];
  for (int i = 1; i < argc; i++) {
    size_t len;
    uint8_t *data = read_file(argv[i], &len);
    if (data == NULL) {
      printf("%s: cannot read\n", argv[i]);
      continue;
    }
    run_one(data, len, out, sizeof out);
    free(data);
    printf("%s\n", out);
  }
  return 0;
}

#endif
