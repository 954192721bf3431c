/*
 * cli.h -- what the two files of the luafutures command share: cli.c (the
 * options, running chunks, error display, main) and cli_repl.c (the
 * interactive loop). Only the main thread uses any of it.
 */
#ifndef LFB_CLI_H
#define LFB_CLI_H

#include <lauxlib.h>
#include <lua.h>

/* The name error messages start with: argv[0], as lua.c does; NULL while
 * the REPL runs, whose errors carry no prefix. */
extern const char *lfb_cli_progname;

/* Calls the function below its `narg` arguments in protected mode, with
 * the message handler (traceback, and a task's own traceback) and ^C
 * caught. Returns the lua_pcall status, the error on top. */
int lfb_cli_docall(lua_State *L, int narg, int nres);
/* Prints "progname: message" for a failed status and pops the message. */
int lfb_cli_report(lua_State *L, int status);
/* Prints one line on stderr, after "progname: " when there is a name. */
void lfb_cli_message(const char *pname, const char *msg);

/* The read-eval-print loop, until the end of input (cli_repl.c). */
void lfb_cli_repl(lua_State *L);

#endif
