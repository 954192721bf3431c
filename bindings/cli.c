/*
 * cli.c -- the luafutures command: a Lua 5.4 interpreter with
 * concurrent.futures built in.
 *
 *   luafutures [options] [script [args]]
 *
 * It behaves as the stock `lua5.4` driver does, option for option and
 * message for message (-e -l -i -v -E -W, `--`, `-`, LUA_INIT_5_4 /
 * LUA_INIT, the global `arg` and the script's `...` taken from it, the
 * program name argv[0] before errors, exit statuses); it adds `-j N`, the
 * default `max_workers` of executors that name none, `-m mod`, a module
 * that runs the script (see run_script), and `--help`. `-v` prints one
 * line that ends with Lua's own, for tools that parse `lua -v`.
 *
 * The module is linked in and registered in package.preload, so
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
 * An uncaught error that is a task's error re-raised by result() (the
 * bindings note it in the registry, LFB_RAISED_ERROR) is shown with the
 * worker's traceback after the main state's.
 *
 * Threads: only the main thread runs the main state; no lock is held here.
 * SIGINT is caught while Lua code runs: as lua.c, it sets a hook that
 * raises "interrupted!" at the next Lua instruction, and the disposition
 * goes back to the default, so a second ^C kills a program stuck outside
 * Lua. It also calls luafutures_interrupt, so a wait the main state is
 * blocked in (result, wait, sleep, a map step, shutdown) raises it within
 * 10 ms; whichever raises first consumes the request, and a wait that
 * raised it re-arms the handler, since the program is back in Lua's hands.
 * A signal delivered to a worker thread is passed on to the main thread.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "lfb.h"

#ifndef LUAFUTURES_VERSION
#define LUAFUTURES_VERSION "0.2.0"
#endif

enum {
  F_INTERACTIVE = 1 << 0,
  F_VERSION = 1 << 1,
  F_NOENV = 1 << 2,
  F_HELP = 1 << 3,
  F_EXEC = 1 << 4, /* an -e: stdin is not run by default */
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

const char *lfb_cli_progname = "luafutures";

/* Registry key of the `main` of the last -m module that has one. */
static const char RUNNER[] = "luafutures.cli.runner";

static const char USAGE[] =
    "usage: %s [options] [script [args]]\n"
    "Available options are:\n"
    "  -e stat   execute string 'stat'\n"
    "  -i        enter interactive mode after executing 'script'\n"
    "  -l mod    require library 'mod' into global 'mod'\n"
    "  -l g=mod  require library 'mod' into global 'g'\n"
    "  -m mod    require 'mod' and let its 'main' run the script\n"
    "  -j N      default max_workers of executors that do not name one\n"
    "  -v        show version information\n"
    "  -E        ignore environment variables\n"
    "  -W        turn warnings on\n"
    "  --help    show this help\n"
    "  --        stop handling options\n"
    "  -         stop handling options and execute stdin\n";
static const char HELP_TAIL[] =
    "The module \"concurrent.futures\" is built in: require it, nothing to "
    "install.\n";

void lfb_cli_message(const char *pname, const char *msg) {
  if (pname) fprintf(stderr, "%s: ", pname);
  fprintf(stderr, "%s\n", msg ? msg : "(null)"); /* glibc's, as lua.c */
  fflush(stderr);
}

/* ---- arguments -------------------------------------------------------------- */

/* Whether argv[i] is an option that takes a value. */
static int takes_value(const char *a) {
  return a[0] == '-' && a[1] != '\0' && strchr("eljm", a[1]) != NULL;
}

/* The value of option argv[*i] ("-e stat" or "-estat"), advancing *i past
 * it; NULL when it is missing or looks like another option. */
static const char *optvalue(cli *c, int *i) {
  const char *a = c->argv[*i];
  if (a[2] != '\0') return a + 2;
  if (*i + 1 >= c->argc || c->argv[*i + 1][0] == '-') return NULL;
  return c->argv[++*i];
}

static int usage_error(const char *fmt, const char *what) {
  fprintf(stderr, "%s: ", lfb_cli_progname);
  fprintf(stderr, fmt, what);
  fputc('\n', stderr);
  fprintf(stderr, USAGE, lfb_cli_progname);
  fflush(stderr);
  return -1;
}

static int check_workers(const char *v) {
  char *end;
  long n = strtol(v, &end, 10);
  if (end == v || *end != '\0' || n < 1 || n > 100000)
    return usage_error("'-j' needs a number of workers from 1 to 100000, "
                       "got '%s'", v);
  lfb_default_max_workers = (int)n;
  return 0;
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
    if (takes_value(a)) {
      const char *v = optvalue(c, &i);
      if (v == NULL) return usage_error("'%s' needs argument", a);
      if (a[1] == 'e') c->flags |= F_EXEC;
      if (a[1] == 'j' && check_workers(v) != 0) return -1;
      continue;
    }
    unsigned flag = 0;
    switch (a[1]) {
    case 'i': flag = F_INTERACTIVE | F_VERSION; break;
    case 'v': flag = F_VERSION; break;
    case 'E': flag = F_NOENV; break;
    case 'W': flag = 0; break; /* applied in order, with -e and -l */
    default: return usage_error("unrecognized option '%s'", a);
    }
    if (a[2] != '\0') return usage_error("unrecognized option '%s'", a);
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
  lfb_interrupt_clear(L); /* raised here: no wait raises it again */
  luaL_error(L, "interrupted!");
}

static void on_sigint(int sig) {
  if (!pthread_equal(pthread_self(), main_thread)) {
    pthread_kill(main_thread, sig); /* only the main thread runs the script */
    return;
  }
  signal(sig, SIG_DFL); /* a second ^C kills */
  luafutures_interrupt(interrupted_L); /* atomics only */
  lua_sethook(interrupted_L, interrupt_hook,
              LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static void arm_sigint(struct sigaction *old) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, old);
}

static void rearm_sigint(void) { arm_sigint(NULL); }

/* When the error at index 1 is the task error that result() re-raised
 * last, appends the frames of the worker's traceback to the message on
 * top (they follow its "stack traceback:" line). */
static void add_task_traceback(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, LFB_RAISED_ERROR);
  int same = lua_rawequal(L, 1, -1);
  lua_pop(L, 1);
  if (!same || lua_isnil(L, 1)) return;
  lua_getfield(L, LUA_REGISTRYINDEX, LFB_RAISED_TRACEBACK);
  const char *tb = lua_tostring(L, -1);
  if (tb == NULL) {
    lua_pop(L, 1);
    return;
  }
  static const char head[] = "stack traceback:\n";
  const char *frames = strstr(tb, head);
  frames = frames ? frames + sizeof head - 1 : tb;
  lua_pushfstring(L, "%s\nraised by a task; the worker's traceback:\n%s",
                  lua_tostring(L, -2), frames);
  lua_replace(L, -3); /* message tb -> full tb */
  lua_pop(L, 1);
}

/* The message handler, lua.c's: a string or a number gets a traceback; an
 * object whose __tostring gives a string is shown as that string alone;
 * any other says its type, with the traceback. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
      add_task_traceback(L);
      return 1;
    }
    msg = lua_pushfstring(L, "(error object is a %s value)",
                          luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  add_task_traceback(L);
  return 1;
}

int lfb_cli_docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  interrupted_L = L;
  lfb_interrupt_hook = interrupt_hook;
  lfb_interrupt_rearm = rearm_sigint;
  struct sigaction old;
  arm_sigint(&old);
  int status = lua_pcall(L, narg, nres, base);
  sigaction(SIGINT, &old, NULL);
  lfb_interrupt_rearm = NULL; /* out of the call: ^C is the default's */
  lua_remove(L, base);
  return status;
}

/* The message is a string by now (the handler made it one), but for the
 * REPL's prompt left where input ended, which lua.c prints as it is. */
int lfb_cli_report(lua_State *L, int status) {
  if (status != LUA_OK) {
    lfb_cli_message(lfb_cli_progname, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return status;
}

static int dochunk(lua_State *L, int status) {
  if (status == LUA_OK) status = lfb_cli_docall(L, 0, 0);
  return lfb_cli_report(L, status);
}

static int dostring(lua_State *L, const char *s, const char *name) {
  return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

/* Pushes require(mod); the status, the error reported. */
static int require(lua_State *L, const char *mod, size_t len) {
  lua_getglobal(L, "require");
  lua_pushlstring(L, mod, len);
  int status = lfb_cli_docall(L, 1, 1);
  return status == LUA_OK ? status : lfb_cli_report(L, status);
}

/* -l [g=]mod: global g (or mod) = require(mod). */
static int dolibrary(lua_State *L, const char *spec) {
  const char *eq = strchr(spec, '=');
  const char *mod = eq ? eq + 1 : spec;
  int status = require(L, mod, strlen(mod));
  if (status != LUA_OK) return status;
  lua_pushlstring(L, spec, eq ? (size_t)(eq - spec) : strlen(spec));
  lua_insert(L, -2);
  lua_setglobal(L, lua_tostring(L, -2));
  lua_pop(L, 1);
  return LUA_OK;
}

/* -m mod: require(mod); a `main` function of what it returns will run the
 * script (the last such module's, if several). */
static int domodule(lua_State *L, const char *mod) {
  int status = require(L, mod, strlen(mod));
  if (status != LUA_OK) return status;
  int top = lua_gettop(L) - 1;
  if (lua_istable(L, -1) && lua_getfield(L, -1, "main") == LUA_TFUNCTION)
    lua_setfield(L, LUA_REGISTRYINDEX, RUNNER);
  lua_settop(L, top);
  return LUA_OK;
}

/* -e, -l, -m and -W, in the order given. */
static int run_options(lua_State *L, cli *c) {
  for (int i = 1; i < c->optend; i++) {
    const char *a = c->argv[i];
    if (strcmp(a, "-W") == 0) {
      lua_warning(L, "@on", 0);
      continue;
    }
    if (!takes_value(a)) continue;
    const char *v = optvalue(c, &i);
    int status = LUA_OK;
    if (a[1] == 'e')
      status = dostring(L, v, "=(command line)");
    else if (a[1] == 'l')
      status = dolibrary(L, v);
    else if (a[1] == 'm')
      status = domodule(L, v);
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

/* Pushes arg[1] .. arg[#arg]: what -e and -l left there is what the script
 * gets as `...`. Raises (unprotected, as lua.c) when `arg` is no table. */
static int push_script_args(lua_State *L) {
  if (lua_getglobal(L, "arg") != LUA_TTABLE)
    luaL_error(L, "'arg' is not a table");
  int n = (int)luaL_len(L, -1);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (int i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
  lua_remove(L, -n - 1);
  return n;
}

/* Runs the chunk loaded with `status` (its error reported if it failed)
 * with `n` arguments above it: itself, or through the -m module's main,
 * called as main(chunk, ...) to run it as it sees fit. */
static int run_chunk(lua_State *L, int status, int n) {
  if (status != LUA_OK) return lfb_cli_report(L, status);
  if (lua_getfield(L, LUA_REGISTRYINDEX, RUNNER) == LUA_TFUNCTION) {
    lua_insert(L, -n - 2); /* main chunk args */
    n++;
  } else {
    lua_pop(L, 1);
  }
  return lfb_cli_report(L, lfb_cli_docall(L, n, 0));
}

static int run_script(lua_State *L, cli *c) {
  const char *fname = c->argv[c->script];
  if (strcmp(fname, "-") == 0 && !c->dashdash) fname = NULL; /* stdin */
  int status = luaL_loadfile(L, fname);
  int n = status == LUA_OK ? push_script_args(L) : 0;
  return run_chunk(L, status, n);
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

static void print_version(void) {
  fputs("luafutures " LUAFUTURES_VERSION ", " LUA_COPYRIGHT "\n", stdout);
  fflush(stdout);
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

static void open_state(lua_State *L, const cli *c) {
  if (c->flags & F_NOENV) { /* the package library reads LUA_NOENV */
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_concurrent_futures);
  lua_setfield(L, -2, LFB_MODNAME);
  lua_pop(L, 1);
  lua_getglobal(L, "os");
  lua_pushcfunction(L, cli_exit);
  lua_setfield(L, -2, "exit");
  lua_pop(L, 1);
  make_arg(L, c);
  lua_gc(L, LUA_GCGEN, 0, 0); /* lua5.4 collects in generational mode */
}

static int pmain(lua_State *L) {
  cli *c = lua_touserdata(L, 1);
  lua_settop(L, 0);
  luaL_checkversion(L);
  if (c->flags & F_VERSION) print_version();
  open_state(L, c);
  if (!(c->flags & F_NOENV) && run_init(L) != LUA_OK) return 0;
  if (run_options(L, c) != LUA_OK) return 0;
  if (c->script && run_script(L, c) != LUA_OK) return 0;
  if (c->flags & F_INTERACTIVE) {
    lfb_cli_repl(L);
  } else if (c->script == 0 && !(c->flags & (F_EXEC | F_VERSION))) {
    if (isatty(STDIN_FILENO)) {
      print_version();
      lfb_cli_repl(L);
    } else if (run_chunk(L, luaL_loadfile(L, NULL), 0) != LUA_OK) {
      return 0;
    }
  }
  c->ok = 1;
  return 0;
}

int main(int argc, char **argv) {
  cli c = {.argc = argc, .argv = argv};
  static char *noname[] = {"luafutures", NULL};
  if (argc < 1) { /* exec'd with an empty argv */
    c.argc = 1;
    c.argv = noname;
  } else if (argv[0][0] != '\0') {
    lfb_cli_progname = argv[0];
  }
  if (parse_args(&c) != 0) return EXIT_FAILURE;
  if (c.flags & F_HELP) {
    printf(USAGE, lfb_cli_progname);
    fputs(HELP_TAIL, stdout);
    return EXIT_SUCCESS;
  }
  main_thread = pthread_self();
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    lfb_cli_message(c.argv[0], "cannot create state: not enough memory");
    return EXIT_FAILURE;
  }
  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, &c);
  lfb_cli_report(L, lua_pcall(L, 1, 0, 0));
  lua_close(L); /* collects the executors: they shut down and wait */
  return c.ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
