/*
 * luafutures.h -- the C API of luafutures, for a host that embeds Lua and
 * links the module in (lib/libluafutures.a) or loads concurrent/futures.so.
 *
 * Only the names of this header are visible outside the library: the rest
 * is compiled with -fvisibility=hidden, so a host's own symbols never
 * clash with the runtime's. The header needs nothing but lua.h.
 *
 * Every function takes a lua_State the host owns and keeps owning; none of
 * them raises a Lua error into the host's C code unless it says so. Return
 * codes are 0 for success and negative on failure, as documented beside
 * each prototype.
 */
#ifndef LUAFUTURES_H
#define LUAFUTURES_H

#include <lua.h>

#define LUAFUTURES_VERSION_MAJOR 0
#define LUAFUTURES_VERSION_MINOR 2
#define LUAFUTURES_VERSION_PATCH 0
/* The build passes the Makefile's VERSION; this is the same string. */
#ifndef LUAFUTURES_VERSION
#define LUAFUTURES_VERSION "0.2.0"
#endif

/* The one mark of a public name: everything else stays inside. */
#if defined(__GNUC__) || defined(__clang__)
#define LUAFUTURES_API __attribute__((visibility("default")))
#else
#define LUAFUTURES_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The lua_CFunction that require("concurrent.futures") calls: pushes the
 * module table and returns 1. Raises only when out of memory. */
LUAFUTURES_API int luaopen_concurrent_futures(lua_State *L);

/* Sets package.preload["concurrent.futures"] in L, so a script's require
 * finds the linked-in module without a package.cpath search. Needs the
 * package library opened in L; raises only when out of memory. */
LUAFUTURES_API void luafutures_preload(lua_State *L);

/* A host module that every worker state of this process gets: it is
 * in package.preload there (so `require(name)` works in a task) and its
 * C functions travel by name like those of package.loaded. Process-wide,
 * for states created afterwards. The name is copied. Returns 0, -1 when
 * out of memory, or -2 for a NULL or empty name or a NULL function. */
LUAFUTURES_API int luafutures_register(const char *name, lua_CFunction openf);

typedef struct luafutures_hooks {
  /* after the libraries and the module are open, before the initializer */
  void (*state_created)(void *ud, lua_State *W, const char *worker_name);
  void (*state_closing)(void *ud, lua_State *W);
  /* where the module reports what it cannot raise (a callback's error, an
   * initializer's failure); NULL: stderr, as today */
  void (*report)(void *ud, const char *message);
  lua_Alloc alloc; void *alloc_ud;  /* NULL: the standard allocator */
  void *ud;
} luafutures_hooks;

/* Installs the hooks for worker states created afterwards (a state keeps
 * the allocator and state_closing it was made with; report applies at
 * once). *h is copied: the caller keeps ownership of it; ud is passed back
 * to every hook. NULL clears them. Thread-safe. */
LUAFUTURES_API void luafutures_set_hooks(const luafutures_hooks *h);

/* Runs the done callbacks pending in L's state, each protected (an error
 * is reported, never raised); returns how many ran, or -1 (reported) when
 * even the protected call failed. 0 for a state that never loaded the
 * module. */
LUAFUTURES_API int luafutures_poll(lua_State *L);

/* How many done callbacks wait in L's state; nothing runs. */
LUAFUTURES_API int luafutures_pending(lua_State *L);

/* A file descriptor (an eventfd), owned by the module (never close it),
 * that is readable exactly while callbacks are pending in L's state: for
 * poll(2) or an event loop. -1 when L never loaded the module or no
 * descriptor could be made. */
LUAFUTURES_API int luafutures_notify_fd(lua_State *L);

/* Every executor L's state created: cancel what is queued if asked, wait
 * at most `timeout` seconds (< 0: no limit); 0, or -2 when time ran out
 * (or an interrupt cut it short): then lua_close does not wait for what
 * still runs. -1 (reported) when the call itself failed. */
LUAFUTURES_API int luafutures_shutdown_all(lua_State *L, int cancel_futures,
                                           double timeout);

/* Async-signal-safe: the state's next runtime entry, and any wait it is
 * blocked in now, raises "interrupted!" within 50 ms (10 ms here). L is
 * the state luaL_newstate returned; one that never loaded the module is
 * ignored. */
LUAFUTURES_API void luafutures_interrupt(lua_State *L);

/* The main of a process worker, for a host that builds its own worker
 * executable with its modules registered (start_method = "spawn").
 * Returns the process's exit status. */
LUAFUTURES_API int luafutures_worker_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif
