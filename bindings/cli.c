/*
 * cli.c -- the luafutures command: a Lua 5.4 interpreter with
 * concurrent.futures built in.
 *
 *   luafutures [options] [script [args]]
 *
 * It behaves like the stock `lua5.4` driver (options -e -l -i -v -E -W,
 * `--`, `-`, LUA_INIT_5_4 / LUA_INIT, the global `arg`), plus `-j N`, the
 * default `max_workers` of executors that name none, and `--help`. The
 * module is linked in and registered in package.preload, so
 * `require "concurrent.futures"` needs no package.cpath; worker states open
 * it by calling luaopen directly, and the preload searcher comes before the
 * C searchers, so a script that points package.cpath at a built .so still
 * gets this very copy (two copies of the runtime would not know each
 * other's futures).
 *
 * Everything runs in one protected call on the main state, and lua_close
 * follows on every way out: closing the state collects the script's
 * executors, whose __gc shuts them down and waits, so no task is cut off.
 * `os.exit` is replaced for the same reason: it always closes the state
 * before exiting (Lua's own does so only when asked).
 *
 * Threads: only the main thread runs the main state. SIGINT is caught
 * while Lua code runs: it sets a hook that raises "interrupted!" at the
 * next Lua instruction (a task's result() blocked in C is not cut short),
 * and the disposition goes back to the default, so a second ^C kills. A
 * signal delivered to a worker thread is passed on to the main thread.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lfb.h"

#define PROGNAME "luafutures"

enum {
  F_INTERACTIVE = 1 << 0,
  F_VERSION = 1 << 1,
  F_NOENV = 1 << 2,
  F_WARN = 1 << 3,
  F_HELP = 1 << 4,
  F_EXEC = 1 << 5, /* an -e: stdin is not run by default */
};

typedef struct cli {
  int argc;
  char **argv;
  unsigned flags;
  int optend;   /* argv index of the first argument that is not an option */
  int script;   /* argv index of the script, 0 if none */
  int dashdash; /* options ended with "--": a script "-" is a file name */
  int ok;       /* set by pmain when everything ran */
} cli;

static const char USAGE[] =
    "usage: " PROGNAME " [options] [script [args]]\n"
    "Available options are:\n"
    "  -e stat   execute string 'stat'\n"
    "  -i        enter interactive mode after executing 'script'\n"
    "  -l mod    require library 'mod' into global 'mod'\n"
    "  -l g=mod  require library 'mod' into global 'g'\n"
    "  -j N      default max_workers of executors that do not name one\n"
    "  -v        show version information\n"
    "  -E        ignore environment variables\n"
    "  -W        turn warnings on\n"
    "  --help    show this help\n"
    "  --        stop handling options\n"
    "  -         stop handling options and execute stdin\n"
    "The module \"concurrent.futures\" is built in: require it, nothing to "
    "install.\n";

static void message(const char *msg) {
  fprintf(stderr, "%s: %s\n", PROGNAME, msg);
  fflush(stderr);
}

/* ---- arguments -------------------------------------------------------------- */

/* The value of option argv[*i] ("-e stat" or "-estat"), advancing *i past
 * it; NULL when it is missing. */
static const char *optvalue(cli *c, int *i) {
  const char *a = c->argv[*i];
  if (a[2] != '\0') return a + 2;
  if (*i + 1 >= c->argc || c->argv[*i + 1][0] == '-') return NULL;
  return c->argv[++*i];
}

static int usage_error(const char *fmt, const char *what) {
  fprintf(stderr, "%s: ", PROGNAME);
  fprintf(stderr, fmt, what);
  fprintf(stderr, "\n%s", USAGE);
  fflush(stderr);
  return -1;
}

/* Reads the options; applies -j at once. Returns 0, or -1 after printing
 * the error and the usage. */
static int parse_args(cli *c) {
  int i;
  for (i = 1; i < c->argc; i++) {
    const char *a = c->argv[i];
    if (a[0] != '-' || a[1] == '\0') break; /* the script, or "-" */
    if (strcmp(a, "--") == 0) {
      c->dashdash = 1;
      i++;
      break;
    }
    if (strcmp(a, "--help") == 0) {
      c->flags |= F_HELP;
      continue;
    }
    unsigned flag = 0;
    switch (a[1]) {
    case 'i': flag = F_INTERACTIVE | F_VERSION; break;
    case 'v': flag = F_VERSION; break;
    case 'E': flag = F_NOENV; break;
    case 'W': flag = F_WARN; break;
    case 'e':
    case 'l':
    case 'j': {
      const char *v = optvalue(c, &i);
      char opt[3] = {'-', a[1], '\0'};
      if (v == NULL) return usage_error("'%s' needs argument", opt);
      if (a[1] == 'e') c->flags |= F_EXEC;
      if (a[1] == 'j') {
        char *end;
        long n = strtol(v, &end, 10);
        if (end == v || *end != '\0' || n < 1 || n > 100000)
          return usage_error("'-j' needs a number of workers from 1 to "
                             "100000, got '%s'", v);
        lfb_default_max_workers = (int)n;
      }
      continue;
    }
    default: break;
    }
    if (flag == 0 || a[2] != '\0')
      return usage_error("unrecognized option '%s'", a);
    c->flags |= flag;
  }
  c->optend = i;
  c->script = i < c->argc ? i : 0;
  return 0;
}

/* ---- running code ------------------------------------------------------------- */

static lua_State *volatile interrupted_L;
static pthread_t main_thread;

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

static void on_sigint(int sig) {
  if (!pthread_equal(pthread_self(), main_thread)) {
    pthread_kill(main_thread, sig); /* only the main thread runs the script */
    return;
  }
  signal(sig, SIG_DFL); /* a second ^C kills */
  lua_sethook(interrupted_L, interrupt_hook,
              LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* The message handler: the error as a string (through __tostring when it
 * has one), with the traceback. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)",
                            luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Calls the function below its `narg` arguments, in protected mode with
 * the message handler and ^C caught. */
static int docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  interrupted_L = L;
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old);
  int status = lua_pcall(L, narg, nres, base);
  sigaction(SIGINT, &old, NULL);
  lua_remove(L, base);
  return status;
}

/* Prints the error on top (if status says there is one) and pops it. */
static int report(lua_State *L, int status) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    message(msg ? msg : "(error object is not a string)");
    lua_pop(L, 1);
  }
  return status;
}

static int dochunk(lua_State *L, int status) {
  if (status == LUA_OK) status = docall(L, 0, 0);
  return report(L, status);
}

static int dostring(lua_State *L, const char *s, const char *name) {
  return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

/* -l [g=]mod: global g (or mod) = require(mod). */
static int dorequire(lua_State *L, const char *spec) {
  const char *eq = strchr(spec, '=');
  const char *mod = eq ? eq + 1 : spec;
  lua_getglobal(L, "require");
  lua_pushstring(L, mod);
  int status = docall(L, 1, 1);
  if (status == LUA_OK) {
    if (eq)
      lua_pushlstring(L, spec, (size_t)(eq - spec));
    else
      lua_pushstring(L, spec);
    lua_insert(L, -2);
    lua_setglobal(L, lua_tostring(L, -2));
    lua_pop(L, 1);
  }
  return report(L, status);
}

static int run_options(lua_State *L, cli *c) {
  for (int i = 1; i < c->optend; i++) {
    const char *a = c->argv[i];
    if (a[0] != '-' || (a[1] != 'e' && a[1] != 'l' && a[1] != 'j')) continue;
    const char *v = optvalue(c, &i);
    int status = LUA_OK;
    if (a[1] == 'e')
      status = dostring(L, v, "=(command line)");
    else if (a[1] == 'l')
      status = dorequire(L, v);
    if (status != LUA_OK) return status;
  }
  return LUA_OK;
}

static int run_init(lua_State *L) {
  const char *name = "=LUA_INIT_5_4";
  const char *init = getenv(name + 1);
  if (init == NULL) {
    name = "=LUA_INIT";
    init = getenv(name + 1);
  }
  if (init == NULL) return LUA_OK;
  if (init[0] == '@') return dochunk(L, luaL_loadfile(L, init + 1));
  return dostring(L, init, name);
}

static int run_script(lua_State *L, cli *c) {
  const char *fname = c->argv[c->script];
  if (strcmp(fname, "-") == 0 && !c->dashdash) fname = NULL; /* stdin */
  int status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    int n = c->argc - c->script - 1;
    luaL_checkstack(L, n + 3, "too many arguments to script");
    for (int i = c->script + 1; i < c->argc; i++) lua_pushstring(L, c->argv[i]);
    status = docall(L, n, 0);
  }
  return report(L, status);
}

/* ---- interactive mode ---------------------------------------------------------- */

/* Prints the prompt and pushes the next line without its newline; returns
 * 0 at the end of input. */
static int read_line(lua_State *L, int first) {
  lua_getglobal(L, first ? "_PROMPT" : "_PROMPT2");
  const char *prompt = lua_tostring(L, -1);
  fputs(prompt ? prompt : first ? "> " : ">> ", stdout);
  fflush(stdout);
  lua_pop(L, 1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  char chunk[512];
  int got = 0;
  while (fgets(chunk, sizeof chunk, stdin) != NULL) {
    size_t len = strlen(chunk);
    got = 1;
    if (len > 0 && chunk[len - 1] == '\n') {
      luaL_addlstring(&b, chunk, len - 1);
      luaL_pushresult(&b);
      return 1;
    }
    luaL_addlstring(&b, chunk, len);
  }
  luaL_pushresult(&b);
  if (got) return 1; /* the last line had no newline */
  lua_pop(L, 1);
  return 0;
}

/* Whether a syntax error only says the chunk is unfinished. */
static int incomplete(lua_State *L, int status) {
  static const char eof[] = "<eof>";
  size_t len;
  const char *msg = lua_tolstring(L, -1, &len);
  return status == LUA_ERRSYNTAX && len >= sizeof eof - 1 &&
         strcmp(msg + len - (sizeof eof - 1), eof) == 0;
}

/* Reads one command and leaves its compiled chunk (or the error) on top.
 * An expression is compiled as "return expr", so its values get printed;
 * "=expr" is the old spelling of the same. Returns -1 at end of input. */
static int read_command(lua_State *L) {
  if (!read_line(L, 1)) return -1;
  const char *line = lua_tostring(L, -1);
  if (line[0] == '=') line++;
  const char *ret = lua_pushfstring(L, "return %s", line);
  int status = luaL_loadbuffer(L, ret, strlen(ret), "=stdin");
  if (status == LUA_OK) {
    lua_replace(L, -3); /* chunk over the line; drops "return ..." */
    lua_pop(L, 1);
    return LUA_OK;
  }
  lua_pop(L, 2); /* line */
  for (;;) {
    size_t len;
    const char *src = lua_tolstring(L, -1, &len);
    status = luaL_loadbuffer(L, src, len, "=stdin"); /* src chunk|err */
    if (!incomplete(L, status) || !read_line(L, 0)) break;
    lua_remove(L, -2);                                /* src next */
    lua_pushliteral(L, "\n");
    lua_insert(L, -2);
    lua_concat(L, 3);                                 /* src.."\n"..next */
  }
  lua_remove(L, -2); /* the source */
  return status;
}

static void repl(lua_State *L) {
  int status;
  while ((status = read_command(L)) != -1) {
    int base = lua_gettop(L) - 1;
    if (status == LUA_OK) status = docall(L, 0, LUA_MULTRET);
    if (status == LUA_OK && lua_gettop(L) > base) {
      int n = lua_gettop(L) - base;
      luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
      lua_getglobal(L, "print");
      lua_insert(L, base + 1);
      if (lua_pcall(L, n, 0, 0) != LUA_OK)
        message(lua_pushfstring(L, "error calling 'print' (%s)",
                                luaL_tolstring(L, -1, NULL)));
    } else {
      report(L, status);
    }
    lua_settop(L, base);
  }
  lua_settop(L, 0);
  fputs("\n", stdout);
  fflush(stdout);
}

/* ---- the state -------------------------------------------------------------------- */

/* os.exit(code): closes the state first, whatever its second argument, so
 * the script's executors shut down and wait for their tasks. */
static int cli_exit(lua_State *L) {
  int status = EXIT_SUCCESS;
  if (lua_isboolean(L, 1))
    status = lua_toboolean(L, 1) ? EXIT_SUCCESS : EXIT_FAILURE;
  else
    status = (int)luaL_optinteger(L, 1, EXIT_SUCCESS);
  signal(SIGINT, SIG_DFL); /* the state is going away */
  lua_close(L);            /* closes the main state even from a coroutine */
  exit(status);
}

static void print_version(lua_State *L) {
  luaL_requiref(L, LFB_MODNAME, luaopen_concurrent_futures, 0);
  lua_getfield(L, -1, "_VERSION");
  printf("luafutures %s (%s)\n", lua_tostring(L, -1), LUA_RELEASE);
  fflush(stdout);
  lua_pop(L, 2);
}

static void make_arg(lua_State *L, const cli *c) {
  lua_createtable(L, c->script ? c->argc - c->script - 1 : c->argc - 1,
                  c->script + 1);
  for (int i = 0; i < c->argc; i++) {
    lua_pushstring(L, c->argv[i]);
    lua_rawseti(L, -2, i - c->script);
  }
  lua_setglobal(L, "arg");
}

static int pmain(lua_State *L) {
  cli *c = lua_touserdata(L, 1);
  luaL_checkversion(L);
  if (c->flags & F_NOENV) { /* the package library reads LUA_NOENV */
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);
  luafutures_preload(L);
  lua_getglobal(L, "os");
  lua_pushcfunction(L, cli_exit);
  lua_setfield(L, -2, "exit");
  lua_pop(L, 1);
  make_arg(L, c);
  if (c->flags & F_WARN) lua_warning(L, "@on", 0);
  lua_settop(L, 0);

  if (c->flags & F_VERSION) print_version(L);
  if (!(c->flags & F_NOENV) && run_init(L) != LUA_OK) return 0;
  if (run_options(L, c) != LUA_OK) return 0;
  if (c->script && run_script(L, c) != LUA_OK) return 0;
  if (c->flags & F_INTERACTIVE) {
    repl(L);
  } else if (c->script == 0 && !(c->flags & (F_EXEC | F_VERSION))) {
    if (isatty(STDIN_FILENO)) {
      print_version(L);
      repl(L);
    } else if (dochunk(L, luaL_loadfile(L, NULL)) != LUA_OK) {
      return 0;
    }
  }
  c->ok = 1;
  return 0;
}

int main(int argc, char **argv) {
  cli c = {.argc = argc, .argv = argv};
  static char *noname[] = {PROGNAME, NULL};
  if (argc < 1) { /* exec'd with an empty argv */
    c.argc = 1;
    c.argv = noname;
  }
  if (parse_args(&c) != 0) return EXIT_FAILURE;
  if (c.flags & F_HELP) {
    fputs(USAGE, stdout);
    return EXIT_SUCCESS;
  }
  main_thread = pthread_self();
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    message("cannot create state: not enough memory");
    return EXIT_FAILURE;
  }
  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, &c);
  report(L, lua_pcall(L, 1, 0, 0));
  lua_close(L); /* collects the executors: they shut down and wait */
  return c.ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
