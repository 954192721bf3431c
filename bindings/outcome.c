/*
 * outcome.c -- the one place that knows how a finished task is laid out.
 *
 * A result payload is a u32 count of outcomes, then each outcome: a u8
 * ok flag, then either a u32 count n and n values, or the error value and
 * its traceback (a string, or nil). A thread or process worker writes one
 * outcome per call of its task (a map chunk has several), set_result and
 * set_exception write one, and a broken pool's error is one failed outcome
 * standing for every call. Futures, map iterators and tostring read them
 * only through the functions below, so the layout can change here alone.
 *
 * Every value of an outcome is encoded with a reference cache of its own:
 * a value that cannot be transferred fails its own call, not its
 * neighbours. No lock and no state of this file's own.
 */
#include <limits.h>
#include <string.h>

#define LFB_CODEC_PARTS
#include "lfb.h"

void lfb_checkstack(lua_State *L, size_t n, const char *what) {
  /* n comes from a payload: a count near INT_MAX must not wrap the sum. */
  if (n > (size_t)(INT_MAX - LUA_MINSTACK) ||
      !lua_checkstack(L, (int)n + LUA_MINSTACK))
    luaL_error(L, "stack overflow (%s)", what);
}

/* ---- writing -------------------------------------------------------------- */

/* Forgets what an outcome begun at len / nobjs appended. */
static void rollback(lfb_enc *e, size_t len, uint32_t nobjs) {
  while (e->nobjs > nobjs) lf_obj_unref(e->objs[--e->nobjs]);
  e->len = len;
}

int lfb_outcome_values(lfb_enc *e, lua_State *L, int first, int n) {
  size_t len = e->len;
  uint32_t nobjs = e->nobjs;
  lfb_enc_u8(e, 1);
  lfb_enc_u32(e, (uint32_t)n);
  lfb_enc_reset_refs(e, L);
  e->what = "result";
  for (int i = 0; i < n; i++) {
    e->argno = i + 1;
    if (lfb_enc_value(e, L, first + i) != 0) {
      rollback(e, len, nobjs);
      return -1;
    }
  }
  return 0;
}

/* tb 0: no traceback, written as an encoded nil (this file knows no tag). */
int lfb_outcome_try_error(lfb_enc *e, lua_State *L, int err, int tb) {
  int top = lua_gettop(L);
  err = lua_absindex(L, err);
  if (tb == 0) {
    lua_pushnil(L);
    tb = top + 1;
  }
  tb = lua_absindex(L, tb);
  size_t len = e->len;
  uint32_t nobjs = e->nobjs;
  lfb_enc_u8(e, 0);
  lfb_enc_reset_refs(e, L);
  e->what = "error value";
  e->argno = 0;
  int rc = lfb_enc_value(e, L, err);
  if (rc == 0) rc = lfb_enc_value(e, L, tb);
  if (rc != 0) rollback(e, len, nobjs);
  lua_settop(L, top);
  return rc;
}

void lfb_outcome_error(lfb_enc *e, lua_State *L, int err, int tb) {
  int top = lua_gettop(L);
  if (tb != 0) tb = lua_absindex(L, tb);
  e->err[0] = '\0';
  if (lfb_outcome_try_error(e, L, err, tb) != 0) {
    /* An error value that cannot be copied is replaced by the
     * TransferError that says why: the call still fails, visibly. */
    lfb_enc_pusherror(e, L);
    e->err[0] = '\0';
    lfb_outcome_try_error(e, L, top + 1, tb);
  }
  lua_settop(L, top);
}

lf_payload *lfb_outcome_canned(lua_State *L, const char *type,
                               const char *message) {
  LFB_STACK_BEGIN(L);
  lfb_pusherror(L, type, "%s", message);
  int err = lua_gettop(L);
  lfb_enc e;
  lfb_enc_init(&e, L);
  e.handles_ok = 0; /* it may be read in any process */
  lfb_enc_u32(&e, 1);
  lfb_outcome_error(&e, L, err, 0);
  lf_payload *p = lfb_enc_finish(&e, L);
  lua_settop(L, err - 1);
  LFB_STACK_CHECK(L, 0);
  return p;
}

lf_payload *lfb_outcome_copy(const lf_payload *canned) {
  if (canned == NULL) return NULL;
  return lf_payload_new(canned->data, canned->len, NULL, 0, canned->flags);
}

/* ---- reading -------------------------------------------------------------- */

uint32_t lfb_outcome_open(lfb_dec *d, const lf_payload *p) {
  lfb_dec_init(d, p);
  return lfb_dec_u32(d);
}

int lfb_outcome_push(lua_State *L, lfb_dec *d, int with_tb, int *ok) {
  *ok = (int)lfb_dec_u8(d);
  if (!*ok) {
    lfb_dec_value(d, L);
    if (!with_tb) {
      lfb_dec_skip(d);
      lfb_hint_task_error(L, -1, 0);
      return 1;
    }
    lfb_dec_value(d, L);
    lfb_hint_task_error(L, -2, -1);
    return 2;
  }
  uint32_t n = lfb_dec_count(d, L);
  lfb_checkstack(L, n, "too many results");
  for (uint32_t i = 0; i < n; i++) lfb_dec_value(d, L);
  return (int)n;
}

void lfb_outcome_skip(lfb_dec *d) {
  if (lfb_dec_u8(d)) {
    for (uint32_t n = lfb_dec_u32(d); n > 0 && !d->bad; n--)
      if (lfb_dec_skip(d) != 0) return;
  } else if (lfb_dec_skip(d) == 0) {
    lfb_dec_skip(d);
  }
}

const char *lfb_outcome_describe(const lf_payload *p, int *ok) {
  lfb_dec d;
  lfb_outcome_open(&d, p);
  *ok = (int)lfb_dec_u8(&d);
  if (*ok && lfb_dec_u32(&d) == 0) return "nil";
  return lfb_dec_peek_type(&d);
}

/* ---- the run stamp -------------------------------------------------------- */

/* Who ran a task, after the last outcome and marked by the LFB_STAMPED
 * flag: the worker's name (n < LFB_STAMP_NAME bytes), for a traced task
 * f64 start, f64 end, i32 pid, i32 tid, then u8 n and u8 timed. It is read
 * from the end, so the readers of outcomes never see it, and it is short,
 * so a small result still fits its future's room. Bytes from a worker
 * process are untrusted: a tail that does not add up is no stamp. */
#define TIMES (8 + 8 + 4 + 4)
/* Seconds a monotonic clock may read (some 31 years since boot): small
 * enough that a difference of two, in nanoseconds, fits a long. */
#define CLOCK_LIMIT 1e9

void lfb_outcome_stamp(lfb_enc *e, const lfb_stamp *s) {
  size_t n = strnlen(s->worker, LFB_STAMP_NAME - 1);
  unsigned char t[LFB_STAMP_NAME + TIMES + 2]; /* one append: it is per task */
  memcpy(t, s->worker, n);
  size_t len = n;
  if (s->timed) {
    int32_t pid = (int32_t)s->pid, tid = (int32_t)s->tid;
    memcpy(t + len, &s->start, 8);
    memcpy(t + len + 8, &s->end, 8);
    memcpy(t + len + 16, &pid, 4);
    memcpy(t + len + 20, &tid, 4);
    len += TIMES;
  }
  t[len++] = (unsigned char)n;
  t[len++] = s->timed ? 1 : 0;
  lfb_enc_raw(e, t, len);
  e->flags |= LFB_STAMPED;
}

/* The bytes of p's stamp, or 0 when it has none that adds up. */
static size_t stamp_len(const lf_payload *p) {
  if (p == NULL || !(p->flags & LFB_STAMPED) || p->len < 4 + 2) return 0;
  const unsigned char *end = (const unsigned char *)p->data + p->len;
  size_t n = end[-2], timed = end[-1];
  size_t tail = 2 + n + (timed ? TIMES : 0);
  if (n >= LFB_STAMP_NAME || timed > 1 || p->len < 4 + tail) return 0;
  return tail;
}

int lfb_outcome_stamp_read(const lf_payload *p, lfb_stamp *s) {
  size_t tail = stamp_len(p);
  if (tail == 0) return 0;
  const unsigned char *end = (const unsigned char *)p->data + p->len;
  size_t n = end[-2], timed = end[-1];
  const unsigned char *at = end - tail;
  memcpy(s->worker, at, n);
  s->worker[n] = '\0';
  s->timed = (int)timed;
  if (!timed) return 1;
  int32_t pid, tid;
  memcpy(&s->start, at + n, 8);
  memcpy(&s->end, at + n + 8, 8);
  memcpy(&pid, at + n + 16, 4);
  memcpy(&tid, at + n + 20, 4);
  s->pid = pid;
  s->tid = tid;
  /* Times are lf_now() readings: from 0 to CLOCK_LIMIT, and ordered. The
   * test is written so that NaN fails it; anything else (an infinity, a
   * huge value) would overflow the trace's conversion to nanoseconds. */
  if (!(0 <= s->start && s->start <= s->end && s->end <= CLOCK_LIMIT))
    s->timed = 0;
  return 1;
}

/* ---- the common result --------------------------------------------------- */

/* The outcome at s (len bytes to the end) if it returned one number or
 * boolean: pushes it and returns the outcome's length; else 0, nothing
 * pushed. An outcome is u8 ok, u32 count, then the values. */
static size_t push_scalar_at(lua_State *L, const unsigned char *s, size_t len) {
  uint32_t n;
  if (len < 6) return 0;
  memcpy(&n, s + 1, 4);
  if (s[0] != 1 || n != 1) return 0;
  const unsigned char *v = s + 6;
  size_t rest = len - 6;
  switch (s[5]) {
    case T_SMALLINT: {
      int32_t i;
      if (rest < 4) return 0;
      memcpy(&i, v, 4);
      lua_pushinteger(L, i);
      return 6 + 4;
    }
    case T_INT: {
      int64_t i;
      if (rest < 8) return 0;
      memcpy(&i, v, 8);
      lua_pushinteger(L, (lua_Integer)i);
      return 6 + 8;
    }
    case T_FLT: {
      double d;
      if (rest < 8) return 0;
      memcpy(&d, v, 8);
      lua_pushnumber(L, d);
      return 6 + 8;
    }
    case T_TRUE:
    case T_FALSE:
      lua_pushboolean(L, s[5] == T_TRUE);
      return 6;
    default:
      return 0;
  }
}

/* A future's: the payload is exactly u32 1 and one such outcome (and the
 * stamp, if any). */
int lfb_outcome_push_scalar(lua_State *L, const lf_payload *p) {
  const unsigned char *s = (const unsigned char *)p->data;
  uint32_t count;
  size_t len = p->len - stamp_len(p);
  if (len < 4 + 6) return 0;
  memcpy(&count, s, 4);
  if (count != 1) return 0;
  size_t used = push_scalar_at(L, s + 4, len - 4);
  if (used == len - 4) return 1;
  if (used) lua_pop(L, 1); /* more bytes than one value: the full way */
  return 0;
}

/* A map chunk's: the outcome at d, which is then past it. */
int lfb_outcome_next_scalar(lua_State *L, lfb_dec *d) {
  if (d->bad || d->pos >= d->p->len) return 0;
  size_t used = push_scalar_at(L, (const unsigned char *)d->p->data + d->pos,
                               d->p->len - d->pos);
  d->pos += used;
  return used != 0;
}
