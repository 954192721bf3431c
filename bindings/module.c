/*
 * module.c -- luaopen_concurrent_futures, the per-state context and the
 * helpers usable in every state (sleep, now, thread_name, getpid, ...).
 *
 * The context is a userdata in the registry, created by the first luaopen
 * in a state and shared as upvalue 1 by every function of the module. Its
 * __gc closes the inbox: the state is going away and callbacks posted to it
 * afterwards are dropped. It is created before any executor, so during
 * lua_close it is finalised after them.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/random.h>
#endif

#include "lfb.h"

static const char CTX[] = "luafutures.ctx";

static int ctx_gc(lua_State *L) {
  lfb_ctx *ctx = lua_touserdata(L, 1);
  lfb_slot_give(ctx->slot);
  ctx->slot = NULL;
  lfb_last_drop(ctx);
  if (ctx->inbox) {
    lf_inbox_close(ctx->inbox);
    lf_inbox_unref(ctx->inbox);
    ctx->inbox = NULL;
  }
  return 0;
}

void lfb_push_weak(lua_State *L, const char *key, const char *mode) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) != LUA_TNIL) return;
  lua_pop(L, 1);
  lua_newtable(L);
  if (mode) {
    lua_createtable(L, 0, 1);
    lua_pushstring(L, mode);
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
  }
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

#ifdef LFB_DEBUG
void lfb_stack_fail(const char *file, int line, int want, int got) {
  fprintf(stderr, "%s:%d: Lua stack top is %d, %d was promised\n", file, line,
          got, want);
  abort();
}
#endif

lfb_ctx *lfb_ctx_find(lua_State *L) {
  lfb_ctx *ctx = NULL;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, CTX) == LUA_TUSERDATA)
    ctx = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return ctx;
}

lfb_ctx *lfb_ctx_push(lua_State *L) {
  LFB_STACK_BEGIN(L);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, CTX) == LUA_TUSERDATA) {
    LFB_STACK_CHECK(L, 1);
    return lua_touserdata(L, -1);
  }
  lua_pop(L, 1);
  lfb_ctx *ctx = lua_newuserdatauv(L, sizeof *ctx, 0);
  memset(ctx, 0, sizeof *ctx);
  strcpy(ctx->name, "MainThread");
  ctx->inbox = lf_inbox_new();
  if (ctx->inbox == NULL) luaL_error(L, "not enough memory");
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  ctx->slot = lfb_slot_take(lua_tothread(L, -1)); /* NULL: no interrupts */
  lua_pop(L, 1);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, ctx_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, CTX);
  LFB_STACK_CHECK(L, 1);
  return ctx;
}

void lfb_setfuncs(lua_State *L, const luaL_Reg *l) {
  lfb_ctx_push(L);
  luaL_setfuncs(L, l, 1);
}

const char *lfb_typename(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  int t = luaL_getmetafield(L, idx, "__name"); /* pushed only if found */
  const char *name = t == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  if (t != LUA_TNIL) lua_pop(L, 1); /* a string stays in the metatable */
  if (name != NULL) return name;
  if (lua_type(L, idx) == LUA_TLIGHTUSERDATA) return "light userdata";
  return luaL_typename(L, idx);
}

void *lfb_toclass(lua_State *L, int idx, const void *key) {
  void *u = lua_touserdata(L, idx);
  if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx))
    return NULL; /* mt */
  lua_rawgetp(L, LUA_REGISTRYINDEX, key);
  int ok = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return ok ? u : NULL;
}

void lfb_newclass(lua_State *L, const char *name, const luaL_Reg *meta,
                  const luaL_Reg *methods) {
  luaL_newmetatable(L, name); /* mt */
  lfb_setfuncs(L, meta);
  lua_newtable(L);
  lfb_setfuncs(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

static int m_sleep(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  luaL_argcheck(L, s >= 0, 1, "non-negative number expected");
  lfb_ctx *ctx = lfb_ctx_of(L);
  lfb_check_interrupt(L, ctx);
  lfb_poll(L, ctx);
  if (s > 0 && lfb_pause(L, ctx, (double)s) == LF_EINTR)
    return lfb_raise_interrupt(L, ctx);
  lfb_poll(L, ctx);
  return 0;
}

static int m_now(lua_State *L) {
  lua_pushnumber(L, lf_now());
  return 1;
}

static int m_thread_name(lua_State *L) {
  lua_pushstring(L, lfb_ctx_of(L)->name);
  return 1;
}

static int m_getpid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getpid());
  return 1;
}

static int m_cpu_count(lua_State *L) {
  lua_pushinteger(L, lf_cpu_count());
  return 1;
}

static int m_poll(lua_State *L) {
  lfb_ctx *ctx = lfb_ctx_of(L);
  lfb_check_interrupt(L, ctx);
  lua_pushinteger(L, lfb_poll(L, ctx));
  return 1;
}

/* futures.notify_fd(): luafutures_notify_fd for a Lua event loop. */
static int m_notify_fd(lua_State *L) {
  lfb_ctx *ctx = lfb_ctx_of(L);
  int fd = ctx->inbox ? lf_inbox_notify_fd(ctx->inbox) : -1;
  if (fd < 0) return luaL_error(L, "cannot make the notify file descriptor");
  lua_pushinteger(L, fd);
  return 1;
}

static const luaL_Reg funcs[] = {
    {"sleep", m_sleep},
    {"now", m_now},
    {"thread_name", m_thread_name},
    {"getpid", m_getpid},
    {"cpu_count", m_cpu_count},
    {"poll", m_poll},
    {"notify_fd", m_notify_fd},
    {NULL, NULL},
};

uintptr_t lfb_tag_key;

/* Bytes of the kernel's random source of its own (not AT_RANDOM's, which
 * glibc uses for its stack guard and pointer guard), else the clock and an
 * address; never 0. */
static void draw_tag_key(void) {
  uintptr_t k = 0;
#ifdef __linux__
  if (getrandom(&k, sizeof k, GRND_NONBLOCK) != (ssize_t)sizeof k) k = 0;
#endif
  if (k == 0) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    k = ((uintptr_t)ts.tv_nsec * 0x9e3779b97f4a7c15u) ^ (uintptr_t)&ts;
  }
  lfb_tag_key = k | 1;
}

static void tag_init(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, draw_tag_key);
}

int luaopen_concurrent_futures(lua_State *L) {
  tag_init();
  lfb_ctx_push(L);
  lua_pop(L, 1);
  lfb_push_weak(L, lfb_PROXIES, "v");
  lfb_push_weak(L, lfb_FNCACHE, "k");
  lfb_push_weak(L, lfb_LOADED, NULL);
  lua_pop(L, 3);
  /* A reload makes new module tables: names must be indexed afresh. */
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, lfb_NAMES);
  lua_newtable(L);
  lfb_setfuncs(L, funcs);
  lua_pushliteral(L, LUAFUTURES_VERSION);
  lua_setfield(L, -2, "_VERSION");
  lfb_open_errors(L);
  lfb_open_future(L);
  lfb_open_queue(L);
  lfb_open_shared(L);
  lfb_open_wait(L);
  lfb_open_threadpool(L);
  lfb_open_processpool(L);
  lfb_open_map(L);
  lfb_open_progress(L);
  lfb_open_trace(L, lfb_worker_process || lfb_worker_building ||
                       lf_current_pool() != NULL);
  lfb_open_mpi(L); /* for concurrent.futures.mpi, when it is built */
  return 1;
}
