/*
 * cli_repl.c -- the interactive loop of the luafutures command, the one
 * lua5.4 has: the prompt is _PROMPT / _PROMPT2 through luaL_tolstring (so
 * a __tostring counts), a line is tried first as an expression
 * ("return <line>;", whose values are printed), then as a statement that
 * may go on over more lines while the only error is an unfinished chunk;
 * "=expr" is the old spelling of an expression. Errors print with no
 * program name in front.
 *
 * Built with GNU readline (-DLFB_READLINE, which the Makefile sets when
 * the headers are there), lines are read with it, so they can be edited
 * and recalled, and each command goes into the history, as Debian's lua5.4
 * does; readline then also echoes input that does not come from a
 * terminal, which lua5.4 shows too. Without it, fgets reads whole lines of
 * any length.
 *
 * Only the main thread runs this file; it holds no lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#ifdef LFB_READLINE
#include <readline/history.h>
#include <readline/readline.h>
#endif

/* Pushes the prompt to show and returns it. When the global is unset the
 * nil stays pushed: lua.c leaves that value where a message is expected
 * when input ends inside a statement, and prints "(null)" for it. */
static const char *push_prompt(lua_State *L, int first) {
  if (lua_getglobal(L, first ? "_PROMPT" : "_PROMPT2") == LUA_TNIL)
    return first ? "> " : ">> ";
  const char *p = luaL_tolstring(L, -1, NULL);
  lua_remove(L, -2);
  return p;
}

#ifdef LFB_READLINE
static int push_cstring(lua_State *L) {
  lua_pushstring(L, lua_touserdata(L, 1));
  return 1;
}

/* readline's line is malloc'd: it is copied in protected mode and freed
 * before any memory error is raised. */
static int read_raw(lua_State *L, const char *prompt) {
  char *s = readline(prompt);
  if (s == NULL) return 0;
  lua_pushcfunction(L, push_cstring);
  lua_pushlightuserdata(L, s);
  int status = lua_pcall(L, 1, 1, 0);
  free(s);
  if (status != LUA_OK) lua_error(L);
  return 1;
}

static void save_line(const char *line) { add_history(line); }
#else
static int read_raw(lua_State *L, const char *prompt) {
  fputs(prompt, stdout);
  fflush(stdout);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  char chunk[512];
  int got = 0;
  while (fgets(chunk, sizeof chunk, stdin) != NULL) {
    size_t len = strlen(chunk);
    got = 1;
    if (len > 0 && chunk[len - 1] == '\n') {
      luaL_addlstring(&b, chunk, len - 1);
      break;
    }
    luaL_addlstring(&b, chunk, len);
  }
  luaL_pushresult(&b);
  if (got) return 1; /* a last line without its newline counts */
  lua_pop(L, 1);
  return 0;
}

static void save_line(const char *line) { (void)line; }
#endif

/* Pushes the next line, without its newline, in place of the prompt;
 * returns 0 at the end of input, the prompt's value left on top. */
static int push_line(lua_State *L, int first) {
  const char *prompt = push_prompt(L, first);
  if (!read_raw(L, prompt)) return 0;
  lua_remove(L, -2);
  const char *line = lua_tostring(L, -1);
  if (first && line[0] == '=') {
    lua_pushfstring(L, "return %s", line + 1);
    lua_remove(L, -2);
  }
  return 1;
}

/* The line on top compiled as "return <line>;": on success the chunk
 * sits above the line (which goes into the history unless empty). */
static int try_expression(lua_State *L) {
  const char *line = lua_tostring(L, -1);
  const char *src = lua_pushfstring(L, "return %s;", line);
  int status = luaL_loadbuffer(L, src, strlen(src), "=stdin");
  if (status == LUA_OK) {
    lua_remove(L, -2); /* line chunk */
    if (line[0] != '\0') save_line(line);
  } else {
    lua_pop(L, 2); /* line */
  }
  return status;
}

/* Whether a syntax error only says the chunk is unfinished. */
static int unfinished(lua_State *L, int status) {
  static const char mark[] = "<eof>";
  const size_t marklen = sizeof mark - 1;
  size_t len;
  if (status != LUA_ERRSYNTAX) return 0;
  const char *msg = lua_tolstring(L, -1, &len);
  return len >= marklen && strcmp(msg + len - marklen, mark) == 0;
}

/* The source on top compiled as a statement, joined with further lines
 * while it is unfinished: leaves the chunk or the error above it. */
static int try_statement(lua_State *L) {
  for (;;) {
    size_t len;
    const char *src = lua_tolstring(L, -1, &len);
    int status = luaL_loadbuffer(L, src, len, "=stdin");
    if (!unfinished(L, status)) {
      save_line(src);
      return status;
    }
    lua_pop(L, 1); /* the message */
    if (!push_line(L, 0)) {
      save_line(src);
      return status; /* the prompt's value is what gets reported */
    }
    lua_pushliteral(L, "\n");
    lua_insert(L, -2);
    lua_concat(L, 3); /* src .. "\n" .. line */
  }
}

/* Reads one command above `base`: its chunk (or what to report) on top
 * and the status; -1 at the end of input. */
static int read_command(lua_State *L, int base) {
  lua_settop(L, base);
  if (!push_line(L, 1)) return -1;
  int status = try_expression(L);
  if (status != LUA_OK) status = try_statement(L);
  lua_remove(L, base + 1); /* the line */
  return status;
}

static void print_results(lua_State *L, int base) {
  int n = lua_gettop(L) - base;
  if (n <= 0) return;
  luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
  lua_getglobal(L, "print");
  lua_insert(L, base + 1);
  if (lua_pcall(L, n, 0, 0) != LUA_OK)
    lfb_cli_message(lfb_cli_progname,
                    lua_pushfstring(L, "error calling 'print' (%s)",
                                    lua_tostring(L, -1)));
}

void lfb_cli_repl(lua_State *L) {
  const char *progname = lfb_cli_progname;
  lfb_cli_progname = NULL; /* interactive errors carry no program name */
  int base = lua_gettop(L);
#ifdef LFB_READLINE
  rl_readline_name = "lua"; /* ~/.inputrc's "$if lua" applies here too */
#endif
  int status;
  while ((status = read_command(L, base)) != -1) {
    if (status == LUA_OK) status = lfb_cli_docall(L, 0, LUA_MULTRET);
    if (status == LUA_OK)
      print_results(L, base);
    else
      lfb_cli_report(L, status);
  }
  lua_settop(L, base);
  fputs("\n", stdout);
  fflush(stdout);
  lfb_cli_progname = progname;
}
