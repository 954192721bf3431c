/*
 * test_embed.c -- the C API of include/luafutures.h, used as a host uses
 * it: a lua_State of the test's own, the module linked in.
 *
 * Each test runs in a child with a time limit (test.h). Synchronisation is
 * by orderings only: a task that must be running before the test goes on
 * says so through a C function of the host module (engine.arrive), and a
 * task that must still be running waits on a future the test completes.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "../../include/luafutures.h"
#include "../../runtime/tests/test.h"
#include "embed_test.h"

/* ---- the host module and helpers ------------------------------------------ */

static _Atomic int arrived; /* tasks that called engine.arrive() */

static int engine_noise(lua_State *L) {
  lua_Number x = luaL_checknumber(L, 1), y = luaL_checknumber(L, 2);
  lua_pushnumber(L, x * 31 + y);
  return 1;
}

static int engine_arrive(lua_State *L) {
  atomic_fetch_add(&arrived, 1);
  return 0;
}

static _Atomic int released; /* engine.hold() returns once it is set */

static int engine_hold(lua_State *L) {
  while (!atomic_load(&released)) sched_yield();
  return 0;
}

static int luaopen_engine(lua_State *L) {
  static const luaL_Reg f[] = {{"noise", engine_noise},
                               {"arrive", engine_arrive},
                               {"hold", engine_hold},
                               {NULL, NULL}};
  luaL_newlib(L, f);
  return 1;
}

static int hostonly_secret(lua_State *L) { return 0; }

static int luaopen_hostonly(lua_State *L) {
  static const luaL_Reg f[] = {{"secret", hostonly_secret}, {NULL, NULL}};
  luaL_newlib(L, f);
  return 1;
}

static int luaopen_extra(lua_State *L) {
  lua_pushliteral(L, "extra");
  return 1;
}

/* A host state with the module preloaded and `futures` a global; the
 * engine module is registered for workers, "hostonly" is not. */
static lua_State *host(void) {
  ASSERT_EQ(luafutures_register("engine", luaopen_engine), 0);
  lua_State *L = luaL_newstate();
  ASSERT(L != NULL);
  luaL_openlibs(L);
  luafutures_preload(L);
  luaL_requiref(L, "engine", luaopen_engine, 1);
  luaL_requiref(L, "hostonly", luaopen_hostonly, 1);
  lua_pop(L, 2);
  ASSERT(luaL_dostring(L, "futures = require 'concurrent.futures'") == 0);
  return L;
}

/* Runs code in L; it must fail. Returns its message (until the next
 * call). */
static const char *run_err(lua_State *L, const char *code) {
  ASSERT(luaL_loadstring(L, code) == 0);
  ASSERT(lua_pcall(L, 0, 0, 0) != 0);
  static char msg[512];
  snprintf(msg, sizeof msg, "%s", luaL_tolstring(L, -1, NULL));
  lua_pop(L, 2);
  return msg;
}

static void wait_arrived(int n) {
  while (atomic_load(&arrived) < n) sched_yield(); /* an ordering */
}

/* ---- luafutures_register ---------------------------------------------------- */

static void test_register(void) {
  ASSERT(luafutures_register(NULL, luaopen_engine) < 0);
  ASSERT(luafutures_register("engine", NULL) < 0);
  ASSERT(luafutures_register("", luaopen_engine) < 0);
  lua_State *L = host();
  /* a task requires it, and its C functions travel by name */
  ASSERT_EQ(run(L, "ex = futures.ThreadPoolExecutor(1)\n"
                   "local a = ex:submit(function(x) return require('engine').noise(x, 1) end, 2):result()\n"
                   "local b = ex:submit(engine.noise, 1, 2):result()\n"
                   "return a * 100 + b"),
            63 * 100 + 33);
  /* registered after a pool exists: the states created afterwards have it */
  ASSERT_EQ(luafutures_register("extra", luaopen_extra), 0);
  ASSERT_EQ(run(L, "return ex:submit(function() return package.preload.extra == nil end):result() and 1 or 0"), 1);
  ASSERT_EQ(run(L, "local e2 <close> = futures.ThreadPoolExecutor(1)\n"
                   "return e2:submit(function() return require 'extra' end):result() == 'extra' and 1 or 0"),
            1);
  run(L, "ex:shutdown()");
  lua_close(L);
}

/* ---- luafutures_set_hooks ------------------------------------------------- */

static pthread_mutex_t hmu = PTHREAD_MUTEX_INITIALIZER;
static char names[8][64];
static int ncreated, nclosing;
static char reported[512];

static void on_created(void *ud, lua_State *W, const char *name) {
  ASSERT(ud == (void *)&hmu);
  pthread_mutex_lock(&hmu);
  if (ncreated < 8) snprintf(names[ncreated], sizeof names[0], "%s", name);
  ncreated++;
  pthread_mutex_unlock(&hmu);
  /* before the initializer: it can see what the hook did */
  lua_pushstring(W, name);
  lua_setglobal(W, "hooked");
}

static void on_closing(void *ud, lua_State *W) {
  pthread_mutex_lock(&hmu);
  nclosing++;
  pthread_mutex_unlock(&hmu);
}

static void on_report(void *ud, const char *msg) {
  pthread_mutex_lock(&hmu);
  snprintf(reported, sizeof reported, "%s", msg);
  pthread_mutex_unlock(&hmu);
}

static void test_hooks(void) {
  luafutures_hooks h = {on_created, on_closing, on_report, NULL, NULL, &hmu};
  luafutures_set_hooks(&h);
  memset(&h, 0, sizeof h); /* copied: the caller's struct may go */
  lua_State *L = host();
  run(L, "local gate = futures.Future()\n"
         "local ex = futures.ThreadPoolExecutor{max_workers = 3, thread_name_prefix = 'P',\n"
         "  initializer = function() assert(hooked == require('concurrent.futures').thread_name()) end}\n"
         "local fs = {}\n"
         "for i = 1, 3 do fs[i] = ex:submit(function(g) require('engine').arrive(); return g:result() end, gate) end\n"
         "_G.ex, _G.gate, _G.fs = ex, gate, fs");
  wait_arrived(3); /* three tasks at once: three worker states */
  run(L, "gate:set_result(1); for _, f in ipairs(fs) do f:result() end; ex:shutdown()");
  ASSERT_EQ(ncreated, 3);
  ASSERT_EQ(nclosing, 3);
  qsort(names, 3, sizeof names[0], (int (*)(const void *, const void *))strcmp);
  ASSERT(strcmp(names[0], "P_0") == 0 && strcmp(names[2], "P_2") == 0);
  /* a callback's error and an initializer's failure go to report */
  run(L, "local f = futures.Future(); f:add_done_callback(function() error('cb-boom') end); f:set_result(1)");
  ASSERT(strstr(reported, "exception calling callback") && strstr(reported, "cb-boom"));
  const char *m = run_err(L, "local ex <close> = futures.ThreadPoolExecutor{max_workers = 1,\n"
                             "  initializer = function() error('init-boom') end}\n"
                             "ex:submit(print):result()");
  ASSERT(strstr(m, "BrokenThreadPool") && strstr(m, "init-boom"));
  ASSERT(strstr(reported, "exception in initializer") && strstr(reported, "init-boom"));
  luafutures_set_hooks(NULL);
  lua_close(L);
}

/* Hooks set while a pool runs: its worker keeps what it was made with
 * (none), a state created afterwards gets the new ones. */
static void test_hooks_while_running(void) {
  lua_State *L = host();
  run(L, "old = futures.ThreadPoolExecutor(1); old:submit(math.max, 1, 2):result()");
  luafutures_hooks h = {on_created, on_closing, NULL, NULL, NULL, &hmu};
  luafutures_set_hooks(&h);
  ASSERT_EQ(run(L, "return old:submit(function() return hooked == nil end):result() and 1 or 0"), 1);
  ASSERT_EQ(run(L, "local new <close> = futures.ThreadPoolExecutor(1)\n"
                   "return new:submit(function() return hooked end):result() and 1 or 0"),
            1);
  ASSERT_EQ(ncreated, 1);
  ASSERT_EQ(nclosing, 1);
  run(L, "old:shutdown()");
  ASSERT_EQ(nclosing, 1); /* the old worker was made without hooks */
  luafutures_set_hooks(NULL);
  lua_close(L);
}

/* An initargs value that cannot be decoded in the worker says why. */
static void test_init_decode(void) {
  luafutures_hooks h = {NULL, NULL, on_report, NULL, NULL, NULL};
  luafutures_set_hooks(&h);
  lua_State *L = host();
  /* hostonly.secret travels by name; the worker cannot require
   * "hostonly" (not registered), so the initargs cannot be decoded there */
  const char *m = run_err(L, "local ex <close> = futures.ThreadPoolExecutor{max_workers = 1,\n"
                             "  initializer = print, initargs = {hostonly.secret}}\n"
                             "ex:submit(print):result()");
  ASSERT(strstr(m, "BrokenThreadPool") && strstr(m, "cannot decode"));
  ASSERT(strstr(reported, "cannot decode the initializer") && strstr(reported, "hostonly"));
  luafutures_set_hooks(NULL);
  lua_close(L);
}

static _Atomic long alloc_calls, alloc_live;

static void *count_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  ASSERT(ud == (void *)&alloc_calls);
  atomic_fetch_add(&alloc_calls, 1);
  if (ptr) atomic_fetch_sub(&alloc_live, (long)osize);
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (p) atomic_fetch_add(&alloc_live, (long)nsize);
  else if (ptr) atomic_fetch_add(&alloc_live, (long)osize);
  return p;
}

static void test_alloc(void) {
  luafutures_hooks h = {0};
  h.alloc = count_alloc;
  h.alloc_ud = &alloc_calls;
  luafutures_set_hooks(&h);
  lua_State *L = host(); /* the host's own state: luaL_newstate's */
  ASSERT_EQ(atomic_load(&alloc_calls), 0);
  ASSERT_EQ(run(L, "local ex <close> = futures.ThreadPoolExecutor(1)\n"
                   "return ex:submit(function() return #string.rep('x', 1000) end):result()"),
            1000);
  ASSERT(atomic_load(&alloc_calls) > 0);
  ASSERT_EQ(atomic_load(&alloc_live), 0); /* closed with it, too */
  luafutures_set_hooks(NULL);
  lua_close(L);
}

/* ---- memory errors in the host's state -------------------------------------- */

/* Allocations the host's state may still make before each fails; -1: no
 * limit. Frees and shrinks always succeed. */
static _Atomic long alloc_left = -1;

static void *failing_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  if (ptr == NULL || nsize > osize) {
    long n = atomic_load(&alloc_left);
    if (n == 0) return NULL;
    if (n > 0) atomic_fetch_sub(&alloc_left, 1);
  }
  return realloc(ptr, nsize);
}

/* Runs `code` with its nth allocation failing, for n = 0, 1, ... until it
 * succeeds; `before` runs first each time with no limit. A memory error
 * must be raised as an error, and (the teardown checks) leave nothing of
 * the runtime behind: no future, payload or queue. */
static void sweep(lua_State *L, const char *before, const char *code) {
  for (long n = 0;; n++) {
    ASSERT(n < 100000);
    run(L, before);
    ASSERT(luaL_loadstring(L, code) == 0);
    atomic_store(&alloc_left, n);
    int rc = lua_pcall(L, 0, 0, 0);
    atomic_store(&alloc_left, -1);
    if (rc == LUA_OK) return;
    lua_pop(L, 1);
  }
}

static void test_oom_no_leak(void) {
  lua_State *L = lua_newstate(failing_alloc, NULL);
  ASSERT(L != NULL);
  luaL_openlibs(L);
  luafutures_preload(L);
  run(L, "futures = require 'concurrent.futures'\n"
         "ex = futures.ThreadPoolExecutor(1)\n"
         "q = futures.Queue()\n"
         "fn = function() end\n"
         "ex:submit(fn):result() -- its blob is cached\n"
         "t = {}");
  /* A module loaded anew makes the encoder rebuild its names index for t,
   * after q's reference is taken: that rebuild is where memory runs out. */
  const char *stale = "package.loaded.fresh = {}";
  sweep(L, stale, "ex:submit(fn, q, t)");
  sweep(L, stale, "local g = futures.Future(); g:set_result(q, t)");
  sweep(L, stale, "q:put(t)");
  sweep(L, "q:put(string.rep('x', 1000))", "q:get()");
  run(L, "ex:shutdown()");
  lua_close(L);
}

/* ---- poll, pending, notify_fd --------------------------------------------- */

static int readable(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1;
}

static void test_no_module(void) {
  lua_State *L = luaL_newstate(); /* never loaded the module */
  ASSERT_EQ(luafutures_poll(L), 0);
  ASSERT_EQ(luafutures_pending(L), 0);
  ASSERT_EQ(luafutures_notify_fd(L), -1);
  ASSERT_EQ(luafutures_shutdown_all(L, 1, 0), 0);
  luafutures_interrupt(L);
  ASSERT_EQ(luafutures_poll(NULL), 0);
  ASSERT_EQ(lua_gettop(L), 0);
  lua_close(L);
}

static void test_poll(void) {
  lua_State *L = host();
  run(L, "ex = futures.ThreadPoolExecutor(2); ran = {}\n"
         "for i = 1, 3 do\n"
         "  ex:submit(function() require('engine').hold(); return i end)\n"
         "    :add_done_callback(function(f) ran[#ran + 1] = futures.thread_name() end)\n"
         "end");
  atomic_store(&released, 1); /* the tasks end after their callbacks were added */
  while (luafutures_pending(L) < 3) sched_yield(); /* posted, not run */
  ASSERT_EQ(run(L, "return #ran"), 0);
  ASSERT_EQ(luafutures_poll(L), 3);
  ASSERT_EQ(luafutures_pending(L), 0);
  ASSERT_EQ(luafutures_poll(L), 0);
  ASSERT_EQ(run(L, "return #ran == 3 and ran[3] == 'MainThread' and 1 or 0"), 1);
  ASSERT_EQ(lua_gettop(L), 0);
  run(L, "ex:shutdown()");
  lua_close(L);
}

static void test_notify_fd(void) {
  lua_State *L = host();
  int fd = luafutures_notify_fd(L);
  ASSERT(fd >= 0);
  ASSERT_EQ(luafutures_notify_fd(L), fd);
  ASSERT_EQ(run(L, "return futures.notify_fd()"), fd);
  ASSERT(!readable(fd));
  run(L, "ex = futures.ThreadPoolExecutor(1)\n"
         "f = ex:submit(function() require('engine').hold() end)\n"
         "f:add_done_callback(function() end)");
  ASSERT(!readable(fd)); /* nothing pending while the task waits */
  atomic_store(&released, 1);
  struct pollfd p = {fd, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, -1), 1); /* becomes readable: no timeout needed */
  ASSERT_EQ(luafutures_pending(L), 1);
  ASSERT(readable(fd));
  ASSERT_EQ(luafutures_poll(L), 1);
  ASSERT(!readable(fd));
  run(L, "ex:shutdown()");
  lua_close(L);
}

/* ---- shutdown_all ---------------------------------------------------------- */

static void test_shutdown_all(void) {
  lua_State *L = host();
  run(L, "local a = futures.ThreadPoolExecutor(2)\n"
         "local b = futures.ProcessPoolExecutor(1)\n"
         "fa, fb = a:submit(function() return 1 end), b:submit(function() return 2 end)");
  ASSERT_EQ(luafutures_shutdown_all(L, 0, -1), 0);
  ASSERT_EQ(run(L, "return fa:done() and fb:done() and fa:result() + fb:result() or 0"), 3);
  lua_close(L);
}

static void test_shutdown_all_runaway(void) {
  lua_State *L = host();
  run(L, "local ex = futures.ThreadPoolExecutor(1)\n"
         "ex:submit(function() require('engine').arrive(); while true do end end)\n"
         "queued = ex:submit(print)");
  wait_arrived(1);
  double t0 = lf_now();
  ASSERT_EQ(luafutures_shutdown_all(L, 1, 0.2), -2);
  ASSERT(lf_now() - t0 >= 0.2); /* it waited its time, then gave up */
  ASSERT_EQ(run(L, "return queued:cancelled() and 1 or 0"), 1);
  lua_close(L); /* returns: the runaway pool is not waited for */
  _exit(0);     /* the runaway thread is left to the process's exit */
}

/* ---- interrupt ---------------------------------------------------------- */

static lua_State *sigL;
static void on_sigusr1(int sig) { luafutures_interrupt(sigL); }

static void *raiser(void *arg) {
  wait_arrived(1); /* the task runs: result() is about to block, or is */
  pthread_kill(*(pthread_t *)arg, SIGUSR1);
  return NULL;
}

static void test_interrupt(void) {
  lua_State *L = host();
  sigL = L;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigusr1;
  sigaction(SIGUSR1, &sa, NULL);
  /* the next runtime entry raises, once */
  luafutures_interrupt(L);
  ASSERT(strcmp(run_err(L, "futures.sleep(0)"), "interrupted!") == 0);
  run(L, "futures.sleep(0)");
  /* a blocked result() wakes: the task cannot end before gate is set,
   * which happens only after the interrupt was raised */
  pthread_t self = pthread_self(), t;
  run(L, "ex = futures.ThreadPoolExecutor(1); gate = futures.Future()\n"
         "f = ex:submit(function(g) require('engine').arrive(); return g:result() end, gate)");
  pthread_create(&t, NULL, raiser, &self);
  ASSERT(strcmp(run_err(L, "f:result()"), "interrupted!") == 0);
  ASSERT_EQ(run(L, "return f:done() and 1 or 0"), 0);
  pthread_join(t, NULL);
  run(L, "gate:set_result(7); assert(f:result() == 7); ex:shutdown()");
  lua_close(L);
}

static void test_worker_main(void) {
  char *argv[] = {"host-worker", NULL};
  ASSERT(freopen("/dev/null", "w", stderr) != NULL); /* its expected word */
  ASSERT_EQ(luafutures_worker_main(1, argv), 2); /* not started by a pool */
}

static const test tests[] = {
    {"register", test_register},
    {"hooks", test_hooks},
    {"hooks_while_running", test_hooks_while_running},
    {"init_decode", test_init_decode},
    {"alloc", test_alloc},
    {"oom_no_leak", test_oom_no_leak},
    {"no_module", test_no_module},
    {"poll", test_poll},
    {"notify_fd", test_notify_fd},
    {"shutdown_all", test_shutdown_all},
    {"shutdown_all_runaway", test_shutdown_all_runaway},
    {"interrupt", test_interrupt},
    {"worker_main", test_worker_main},
};

int main(int argc, char **argv) {
  return run_tests(tests, (int)(sizeof tests / sizeof tests[0]), argc, argv,
                   "embedding");
}
