/*
 * hints.c -- messages that say what to do, for the mistakes a newcomer
 * makes first.
 *
 * A task runs in a state of its own, so what lives only in the caller's
 * state is not there: its globals (a task calling the script's helper()
 * fails with "attempt to call a nil value (global 'helper')") and its open
 * files (a file handle cannot be copied). The runtime error alone names
 * the symptom; the hint names the cause and the way out. The globals hint
 * is added where the error arrives, by the state that receives it, since
 * only that state knows whether it has such a global. No lock and no state
 * of this file's own.
 */
#include <string.h>

#include "lfb.h"

static const char GLOBALS_HINT[] =
    "; globals of the caller are not copied to workers: pass it as an "
    "argument, capture it as a local, or define it in the initializer";

/* The global name of an "attempt to ... a nil value (global 'x')" error
 * in s (into name), or 0. */
static int nil_global(const char *s, char *name, size_t len) {
  static const char mark[] = "a nil value (global '";
  const char *at = strstr(s, mark);
  if (at == NULL || strstr(s, "attempt to ") == NULL) return 0;
  at += sizeof mark - 1;
  const char *end = strchr(at, '\'');
  if (end == NULL || end == at || (size_t)(end - at) >= len) return 0;
  memcpy(name, at, (size_t)(end - at));
  name[end - at] = '\0';
  return 1;
}

/* Whether this state has a global `name` (raw: a strict-mode __index
 * must not raise here). */
static int has_global(lua_State *L, const char *name) {
  int has = 0;
  if (lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS) == LUA_TTABLE) {
    lua_pushstring(L, name);
    has = lua_rawget(L, -2) != LUA_TNIL;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return has;
}

/* Replaces the string at idx by s with the hint after its first `cut`
 * bytes. */
static void insert_hint(lua_State *L, int idx, size_t cut) {
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, s, cut);
  luaL_addstring(&b, GLOBALS_HINT);
  luaL_addlstring(&b, s + cut, len - cut);
  luaL_pushresult(&b);
  lua_replace(L, idx);
}

void lfb_hint_task_error(lua_State *L, int err, int tb) {
  char name[128];
  err = lua_absindex(L, err);
  if (tb) tb = lua_absindex(L, tb);
  if (lua_type(L, err) != LUA_TSTRING) return;
  const char *s = lua_tostring(L, err);
  if (strstr(s, GLOBALS_HINT) || !nil_global(s, name, sizeof name) ||
      !has_global(L, name))
    return;
  size_t len = lua_rawlen(L, err);
  /* The worker's traceback begins with the message: hint it there too. */
  if (tb && lua_type(L, tb) == LUA_TSTRING && lua_rawlen(L, tb) >= len &&
      memcmp(lua_tostring(L, tb), s, len) == 0)
    insert_hint(L, tb, len);
  insert_hint(L, err, len);
}

const char *lfb_hint_userdata(lua_State *L, int idx) {
  if (luaL_testudata(L, idx, LUA_FILEHANDLE))
    return "file (a file handle stays in its state: open it inside the task)";
  return "userdata";
}
