/*
 * bytecode.c -- checks the structure of a Lua 5.4 binary chunk before Lua's
 * loader sees it.
 *
 * Lua's loader trusts parts of a chunk: 5.4.4 (Debian 12's) writes one
 * upvalue name per count the debug info declares, into an array sized by
 * another count, so a chunk from another process with the two counts apart
 * is a write through NULL; nested prototypes recurse without a limit; the
 * closure's upvalue count is only asserted equal to its prototype's. This
 * walk reads the chunk as lundump.c does, every length bounded by the bytes
 * left, and refuses what the loader would misread, so a chunk that passes
 * can be loaded safely. It does not make running it safe: Lua has no
 * bytecode verifier (docs/decisions.md).
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <lua.h>

#define LFB_CODEC_PARTS
#include "lfb.h"

typedef struct walk {
  const unsigned char *p;
  size_t left;
  const char *why; /* set at the first fault */
  lfb_spans *spans; /* where the outermost prototype's parts lie, or NULL */
  const unsigned char *start;
} walk;

#define OFFSET(w) ((size_t)((w)->p - (w)->start))

#define MAXPROTODEPTH 200 /* the parser's own limit of nested functions */

static int fault(walk *w, const char *why) {
  if (w->why == NULL) w->why = why;
  w->left = 0;
  return -1;
}

static int bytes(walk *w, size_t n) {
  if (w->why || n > w->left) return fault(w, "truncated bytecode");
  w->p += n;
  w->left -= n;
  return 0;
}

static unsigned byte(walk *w) {
  if (bytes(w, 1) != 0) return 0;
  return w->p[-1];
}

/* lundump.c's loadUnsigned: 7 bits a byte, the last one has bit 7 set. */
static size_t varint(walk *w, size_t limit) {
  size_t x = 0;
  unsigned b;
  limit >>= 7;
  do {
    b = byte(w);
    if (x >= limit) {
      fault(w, "bytecode integer overflow");
      return 0;
    }
    x = (x << 7) | (b & 0x7f);
  } while ((b & 0x80) == 0 && w->why == NULL);
  return x;
}

static size_t count(walk *w) { return varint(w, INT_MAX); }

static void string(walk *w, int nonempty) {
  size_t n = varint(w, SIZE_MAX);
  if (n == 0 && nonempty) fault(w, "bad bytecode string");
  if (n > 0) bytes(w, n - 1);
}

static void constants(walk *w) {
  size_t n = count(w);
  for (size_t i = 0; i < n && w->why == NULL; i++) {
    switch (byte(w)) {
      case LUA_TNIL:
      case LUA_TBOOLEAN:      /* false */
      case LUA_TBOOLEAN | 16: /* true */
        break;
      case LUA_TNUMBER:      /* integer */
      case LUA_TNUMBER | 16: /* float */
        bytes(w, 8);
        break;
      case LUA_TSTRING:
      case LUA_TSTRING | 16:
        string(w, 1);
        break;
      default:
        fault(w, "bad bytecode constant");
    }
  }
}

/* One prototype; returns its upvalue count. */
static size_t function(walk *w, int depth) {
  if (depth > MAXPROTODEPTH) return (size_t)fault(w, "bytecode nested too deep");
  string(w, 0);             /* source */
  count(w);                 /* linedefined */
  count(w);                 /* lastlinedefined */
  bytes(w, 3);              /* numparams, is_vararg, maxstacksize */
  size_t n = count(w);      /* code */
  if (n > w->left / 4) return (size_t)fault(w, "truncated bytecode");
  bytes(w, n * 4);
  constants(w);
  size_t nups = count(w);
  if (nups > w->left / 3) return (size_t)fault(w, "truncated bytecode");
  lfb_spans *sp = depth == 0 ? w->spans : NULL;
  if (sp) sp->upvals = OFFSET(w);
  bytes(w, nups * 3);       /* instack, idx, kind */
  n = count(w);             /* nested prototypes */
  for (size_t i = 0; i < n && w->why == NULL; i++) {
    if (sp && i == 0) sp->child = OFFSET(w);
    function(w, depth + 1);
    if (sp && i == 0) sp->child_end = OFFSET(w);
  }
  n = count(w);             /* lineinfo */
  bytes(w, n);
  n = count(w);             /* abslineinfo */
  for (size_t i = 0; i < n && w->why == NULL; i++) {
    count(w);
    count(w);
  }
  n = count(w);             /* local variables */
  for (size_t i = 0; i < n && w->why == NULL; i++) {
    string(w, 0);
    count(w);
    count(w);
  }
  n = count(w);             /* upvalue names: the loader writes n of them */
  if (n > nups) return (size_t)fault(w, "bytecode upvalue names");
  for (size_t i = 0; i < n && w->why == NULL; i++) string(w, 0);
  return nups;
}

/* The header a chunk of this Lua has (lundump.c's checkHeader). */
static size_t header(unsigned char *h) {
  static const unsigned char fixed[] = {
      0x1b, 'L', 'u', 'a', 0x54, 0, 0x19, 0x93, '\r', '\n', 0x1a, '\n',
      4, sizeof(lua_Integer), sizeof(lua_Number)};
  lua_Integer i = 0x5678;
  lua_Number x = 370.5;
  memcpy(h, fixed, sizeof fixed);
  memcpy(h + sizeof fixed, &i, sizeof i);
  memcpy(h + sizeof fixed + sizeof i, &x, sizeof x);
  return sizeof fixed + sizeof i + sizeof x;
}

const char *lfb_bytecode_spans(const char *code, size_t len, lfb_spans *sp) {
  unsigned char h[64];
  size_t hlen = header(h);
  if (len < hlen + 1 || memcmp(code, h, hlen) != 0)
    return "not bytecode of this Lua";
  if (sp) {
    memset(sp, 0, sizeof *sp);
    sp->proto = hlen + 1;
  }
  walk w = {(const unsigned char *)code + hlen, len - hlen, NULL, sp,
            (const unsigned char *)code};
  unsigned nups = byte(&w); /* the closure's */
  size_t pnups = function(&w, 0);
  if (w.why) return w.why;
  if (pnups != nups) return "wrong upvalue count";
  if (w.left != 0) return "bytes after the bytecode";
  return NULL;
}

const char *lfb_bytecode_check(const char *code, size_t len) {
  return lfb_bytecode_spans(code, len, NULL);
}
