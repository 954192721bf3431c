/*
 * hooks.c -- what a C host gives every worker state: its modules
 * (luafutures_register), its hooks (luafutures_set_hooks) and the one
 * place where the module reports what it cannot raise (lfb_report).
 *
 * Both are process-wide and read when a worker state is built, on the
 * worker's thread, while the host may change them from another: `mu`
 * guards the module list and the hooks. Readers copy what they need under
 * it and call the host with no lock held, so a hook may itself register a
 * module or set hooks. Registered modules are never removed (a state may
 * be built from them at any time); the list is freed by nothing, as the
 * host's C functions it names live as long as the process.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lfb.h"

typedef struct hostmod {
  struct hostmod *next;
  lua_CFunction openf;
  char name[];
} hostmod;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static hostmod *mods, **mods_tail = &mods; /* in registration order */
static luafutures_hooks hooks;

int luafutures_register(const char *name, lua_CFunction openf) {
  if (name == NULL || openf == NULL || *name == '\0') return -2;
  size_t len = strlen(name);
  hostmod *m = malloc(sizeof *m + len + 1);
  if (m == NULL) return -1;
  m->next = NULL;
  m->openf = openf;
  memcpy(m->name, name, len + 1);
  pthread_mutex_lock(&mu);
  /* The same name again replaces the function, as a preload entry would. */
  for (hostmod *o = mods; o; o = o->next)
    if (strcmp(o->name, name) == 0) {
      o->openf = openf;
      pthread_mutex_unlock(&mu);
      free(m);
      return 0;
    }
  *mods_tail = m;
  mods_tail = &m->next;
  pthread_mutex_unlock(&mu);
  return 0;
}

void lfb_preload_host_modules(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE); /* preload */
  pthread_mutex_lock(&mu);
  hostmod *first = mods;
  pthread_mutex_unlock(&mu);
  /* Nodes are never freed and only appended: the walk needs no lock but
   * for each link, which registration writes under it. */
  for (hostmod *m = first; m;) {
    pthread_mutex_lock(&mu);
    lua_CFunction f = m->openf;
    hostmod *next = m->next;
    pthread_mutex_unlock(&mu);
    lua_pushcfunction(L, f); /* cannot raise: a light C function */
    lua_setfield(L, -2, m->name); /* may raise for memory: no lock held */
    m = next;
  }
  lua_pop(L, 1);
}

void luafutures_set_hooks(const luafutures_hooks *h) {
  pthread_mutex_lock(&mu);
  if (h)
    hooks = *h;
  else
    memset(&hooks, 0, sizeof hooks);
  pthread_mutex_unlock(&mu);
}

void lfb_hooks_get(luafutures_hooks *out) {
  pthread_mutex_lock(&mu);
  *out = hooks;
  pthread_mutex_unlock(&mu);
}

void lfb_report(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  luafutures_hooks h;
  lfb_hooks_get(&h);
  if (h.report) {
    h.report(h.ud, msg);
    return;
  }
  fprintf(stderr, "luafutures: %s\n", msg);
  fflush(stderr);
}

/* ---- a worker's lua_State ------------------------------------------------- */

static int panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  lfb_report("PANIC: unprotected error in a worker state (%s)",
             msg ? msg : "error object is not a string");
  return 0; /* Lua aborts */
}

lua_State *lfb_new_state(const luafutures_hooks *h) {
  if (h->alloc == NULL) return luaL_newstate();
  lua_State *L = lua_newstate(h->alloc, h->alloc_ud);
  if (L) lua_atpanic(L, panic);
  return L;
}
