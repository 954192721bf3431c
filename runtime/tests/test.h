/*
 * test.h -- the assertions of the runtime's C tests. A failed one prints
 * both sides with its place and ends the test's child process.
 */
#ifndef LF_TEST_H
#define LF_TEST_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../internal.h"

#define ASSERT(c)                                                        \
  do {                                                                   \
    if (!(c)) {                                                          \
      fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #c); \
      exit(1);                                                           \
    }                                                                    \
  } while (0)
#define ASSERT_EQ(a, b)                                                  \
  do {                                                                   \
    long long a_ = (long long)(a), b_ = (long long)(b);                  \
    if (a_ != b_) {                                                      \
      fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, \
              __LINE__, #a, #b, a_, b_);                                 \
      exit(1);                                                           \
    }                                                                    \
  } while (0)

/* One test of a list; each runs in a forked child with a time limit, so a
 * hang or a crash fails that test alone. Every test must end with no pool,
 * worker thread, worker process or runtime allocation left. */
typedef struct test {
  const char *name;
  void (*fn)(void);
} test;

static void test_teardown(void) {
  const char *left = NULL;
  if (lf_live_pools() != 0) left = "a pool";
  else if (lf_live_threads() != 0) left = "a worker thread";
  else if (lf__alloc_live() != 0) left = "an allocation";
  else if (waitpid(-1, NULL, WNOHANG) != -1 || errno != ECHILD)
    left = "a worker process";
  if (left) {
    fprintf(stderr, "left behind: %s (%ld allocations live)\n", left,
            lf__alloc_live());
    _exit(1);
  }
}

/* Runs the tests (only the one named by argv[1], if given) and prints a
 * TAP-like line each; returns the exit status. */
__attribute__((unused)) /* by helpers that share the assertions */
static int run_tests(const test *tests, int n, int argc, char **argv,
                     const char *what) {
  int failures = 0;
  for (int i = 0; i < n; i++) {
    if (argc > 1 && strcmp(argv[1], tests[i].name) != 0) continue;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      alarm(20);
      lf__alloc_test(0); /* count, fail nothing */
      tests[i].fn();
      test_teardown();
      _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    printf("%s %d - %s", ok ? "ok" : "not ok", i + 1, tests[i].name);
    if (WIFSIGNALED(st)) printf(" (signal %d)", WTERMSIG(st));
    printf("\n");
    failures += !ok;
  }
  printf("%d of %d %s tests failed\n", failures, n, what);
  return failures != 0;
}

#endif
