/*
 * encbuf.c -- the encoder's buffer (codec.h): where its bytes go, and how
 * they become a payload when the encode is finished.
 *
 * The buffer starts in the encoder itself (ibuf); one that grows past it
 * is a block of its own from malloc, which starts LF_PAYLOAD_HEAD bytes in
 * so that a big one becomes its payload where it lies (adopt), without a
 * copy. Past LF_BIG_MIN the block is a big one (lf_big_take): likely a
 * block a payload gave back, its pages still mapped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LFB_CODEC_PARTS
#include "lfb.h"

#define HEAD LF_PAYLOAD_HEAD

static char *block_of(lfb_enc *e) { return e->buf - HEAD; }
static int is_big(lfb_enc *e) {
  return e->buf != e->ibuf && HEAD + e->cap >= LF_BIG_MIN;
}

static void free_buf(lfb_enc *e) {
  if (is_big(e)) lf_big_give(block_of(e));
  else if (e->buf != e->ibuf) free(block_of(e));
  e->buf = e->ibuf;
}

int lfb_enc_grow(lfb_enc *e, size_t n) {
  size_t cap = e->cap * 2;
  while (cap < e->len + n) cap *= 2;
  char *nb;
  if (HEAD + cap >= LF_BIG_MIN) {
    /* Big blocks are powers of two: asking for what is needed (more than
     * the block holds) doubles it; a doubled cap would ask past one. */
    size_t got;
    if ((nb = lf_big_take(HEAD + e->len + n, &got)) == NULL) return -1;
    memcpy(nb + HEAD, e->buf, e->len);
    free_buf(e);
    cap = got - HEAD;
  } else if (e->buf == e->ibuf) {
    if ((nb = malloc(HEAD + cap)) == NULL) return -1;
    memcpy(nb + HEAD, e->ibuf, e->len);
  } else if ((nb = realloc(block_of(e), HEAD + cap)) == NULL) {
    return -1;
  }
  e->buf = nb + HEAD;
  e->cap = cap;
  return 0;
}

static void enc_release(lfb_enc *e, lua_State *L, int keep_objs) {
  if (!keep_objs)
    for (uint32_t i = 0; i < e->nobjs; i++) lf_obj_unref(e->objs[i]);
  free_buf(e);
  if (e->objs != e->iobjs) free(e->objs);
  e->objs = e->iobjs;
  e->nobjs = 0;
  lfb_enc_refs_clear(e);
  if (L && e->cache) lua_settop(L, e->cache - 1);
}

lf_payload *lfb_enc_finish(lfb_enc *e, lua_State *L) {
  return lfb_enc_finish_for(e, L, NULL);
}

/* A big buffer as the payload itself, or NULL (then it is copied): one
 * that is at least half full, so a short payload (an error written over a
 * big result, booleans in a buffer sized for numbers) holds no big block. */
static lf_payload *adopt(lfb_enc *e) {
  if (!is_big(e) || e->len < (HEAD + e->cap) / 2) return NULL;
  lf_payload *p =
      lf_payload_adopt(block_of(e), e->len, e->objs, e->nobjs, e->flags);
  if (p) e->buf = e->ibuf; /* the payload's now */
  return p;
}

lf_payload *lfb_enc_finish_for(lfb_enc *e, lua_State *L, lf_future *f) {
  lf_payload *p = adopt(e);
  if (p == NULL)
    p = f ? lf_future_payload_new(f, e->buf, e->len, e->objs, e->nobjs,
                                  e->flags)
          : lf_payload_new(e->buf, e->len, e->objs, e->nobjs, e->flags);
  enc_release(e, L, p != NULL);
  return p;
}

lf_future *lfb_enc_finish_task(lfb_enc *e, lua_State *L) {
  lf_payload *p = adopt(e);
  lf_future *f;
  if (p) {
    f = lf_future_new_with(p);
    if (f == NULL) { /* the references go back to the encoder to drop */
      p->nobjs = 0;
      lf_payload_free(p);
    }
  } else {
    f = lf_future_new_task(e->buf, e->len, e->objs, e->nobjs, e->flags);
  }
  enc_release(e, L, f != NULL);
  return f;
}

void lfb_enc_free(lfb_enc *e, lua_State *L) { enc_release(e, L, 0); }

void lfb_enc_pusherror(lfb_enc *e, lua_State *L) {
  lfb_pusherror(L, "TransferError", "%s", e->err);
}

lf_payload *lfb_error_payload(const char *type, const char *message) {
  lfb_enc e;
  lfb_enc_init(&e, NULL);
  lfb_enc_u32(&e, 1);
  lfb_enc_u8(&e, 0);
  lfb_enc_u8(&e, T_TABLE);
  lfb_enc_u32(&e, 0);
  lfb_enc_u32(&e, 2);
  lfb_enc_str(&e, "type", 4);
  lfb_enc_str(&e, type, strlen(type));
  lfb_enc_str(&e, "message", 7);
  lfb_enc_str(&e, message, strlen(message));
  lfb_enc_u8(&e, M_NAMED);
  char name[96];
  int n = snprintf(name, sizeof name, "%s%c%s", LFB_MODNAME, '\0', type);
  lfb_enc_str(&e, name, (size_t)n);
  lfb_enc_u8(&e, T_NIL); /* no traceback */
  e.flags |= LFB_HASREFS;
  return lfb_enc_finish(&e, NULL);
}
