/*
 * handles.c -- the classes whose objects travel between the states of one
 * process as handles: the receiver gets an object for the very same
 * runtime object, not a copy.
 *
 * One row per class. The encoder finds the row of a userdata by its
 * metatable, asks the row for the runtime object (which the payload then
 * holds a reference to) and writes the row's tag; the decoder finds the row
 * by tag and asks it to push the receiving state's object. A handle never
 * leaves its process: a payload for another process refuses it, and a
 * payload from one owns no objects for a tag to refer to.
 *
 * lf_future_obj(), lf_pool_obj() and lf_queue_obj() are casts (runtime/lf.h: the object
 * header comes first), so the way back is a cast too.
 */
#include <stdatomic.h>
#include <stdlib.h>

#define LFB_CODEC_PARTS
#include "lfb.h"

static lf_obj *future_get(lua_State *L, int idx) {
  lfb_future *fu = lua_touserdata(L, idx);
  return fu->f ? lf_future_obj(fu->f) : NULL;
}

static void future_push(lua_State *L, lf_obj *o) {
  lfb_future_push(L, (lf_future *)o);
}

static lf_obj *threadpool_get(lua_State *L, int idx) {
  lfb_executor *ex = lua_touserdata(L, idx);
  return ex->pool ? lf_pool_obj(ex->pool) : NULL;
}

static void threadpool_push(lua_State *L, lf_obj *o) {
  lfb_executor_push(L, (lf_pool *)o);
}

static lf_obj *queue_get(lua_State *L, int idx) {
  lf_queue *q = lfb_queue_test(L, idx);
  return q ? lf_queue_obj(q) : NULL;
}

static void queue_push(lua_State *L, lf_obj *o) {
  lfb_queue_push(L, (lf_queue *)o);
}

/* A light userdata travels in a box of its own, so that the payload refers
 * to an object as every handle does (never to an address on the wire) and
 * bytes from another process, which own no objects, cannot make one up. */
typedef struct lightbox {
  lf_obj obj;
  void *ptr;
} lightbox;

static void light_destroy(lf_obj *o) { free(o); }

lf_obj *lfb_light_box(void *ptr) {
  lightbox *b = malloc(sizeof *b);
  if (b == NULL) return NULL;
  atomic_init(&b->obj.refs, 1);
  b->obj.destroy = light_destroy;
  b->ptr = ptr;
  return &b->obj;
}

static lf_obj *light_get(lua_State *L, int idx) { return NULL; }

static void light_push(lua_State *L, lf_obj *o) {
  if (o->destroy != light_destroy) luaL_error(L, "corrupt payload (not a pointer)");
  lua_pushlightuserdata(L, ((lightbox *)o)->ptr);
}

static const lfb_handle_type rows[] = {
    {1, LFB_FUTURE, "Future", future_get, future_push},
    {2, LFB_THREADPOOL, "executor", threadpool_get, threadpool_push},
    {3, LFB_QUEUE, "Queue", queue_get, queue_push},
    /* no metatable of that name: lfb_handle_of never finds this row */
    {LFB_LIGHT_TAG, "luafutures.light", "light userdata", light_get, light_push},
    /* Its object belongs to the state that made it (no runtime handle). */
    {0, LFB_PROCPOOL, "executor", NULL, NULL},
};
#define NROWS (sizeof rows / sizeof rows[0])

const lfb_handle_type *lfb_handle_of(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx))
    return NULL;
  const lfb_handle_type *row = NULL;
  for (size_t i = 0; i < NROWS && row == NULL; i++) {
    luaL_getmetatable(L, rows[i].mtname);
    if (lua_rawequal(L, -1, -2)) row = &rows[i];
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return row;
}

const lfb_handle_type *lfb_handle_by_tag(unsigned tag) {
  for (size_t i = 0; i < NROWS; i++)
    if (rows[i].get && rows[i].tag == tag) return &rows[i];
  return NULL;
}
