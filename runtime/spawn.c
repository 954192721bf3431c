/*
 * spawn.c -- starts a worker process: posix_spawn of the worker executable
 * (LF_START_SPAWN) or fork() running the host's child_main (LF_START_FORK).
 *
 * The forked child is the delicate part: it has one thread, the one that
 * called fork(), and every lock another thread of the parent held at that
 * moment stays held forever in it. So it resets the runtime's global locks
 * (the future stripes, the graph lock; it never touches what they guard),
 * restores default signal handling, drops the parent's buffered output and
 * closes every descriptor but 0-2 and its two channels. No lock of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <unistd.h>

#include "internal.h"
#include "lf_proc.h"
#include "spawning.h"

extern char **environ;

#if defined(__SANITIZE_ADDRESS__)
#define LF__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LF__ASAN 1
#endif
#endif
#ifndef LF__ASAN
#define LF__ASAN 0
#endif
#if defined(__SANITIZE_THREAD__)
#define LF__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LF__TSAN 1
#endif
#endif
#ifndef LF__TSAN
#define LF__TSAN 0
#endif

int lf__high_fd(int fd) {
  if (fd < 0 || fd > LF_PROC_CFD) return fd;
  int nfd = fcntl(fd, F_DUPFD_CLOEXEC, LF_PROC_CFD + 1);
  close(fd);
  return nfd;
}

/* In the forked child: this thread is the only one. */
static void child_after_fork(const lf__spawn_spec *s, int chfd) {
  lf__stripes_reset();
  LF__CHECK(pthread_mutex_init(&lf__graph_mu, NULL));
  lf__self = NULL;
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, NULL);
  for (int sig = 1; sig < NSIG; sig++) { /* handlers are the parent's */
    struct sigaction sa;
    if (sigaction(sig, NULL, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) &&
        (sa.sa_handler == SIG_IGN || sa.sa_handler == SIG_DFL))
      continue;
    signal(sig, SIG_DFL);
  }
  /* Output the parent had buffered is the parent's to write. */
  __fpurge(stdout);
  __fpurge(stderr);
  if (dup2(s->qfd, LF_PROC_QFD) < 0 || dup2(chfd, LF_PROC_CFD) < 0)
    _exit(127);
  closefrom(LF_PROC_CFD + 1);
#if LF__ASAN || LF__TSAN
  /* GCC 12's AddressSanitizer and ThreadSanitizer do not hold their
   * allocators' locks across fork(), so a child forked while another thread
   * allocates can block in malloc forever (glibc's malloc, in a plain
   * build, is fork-safe; TSan itself only expects exec after such a fork).
   * A sanitized child therefore becomes the worker executable at once,
   * before it allocates anything; without one it goes on as in a plain
   * build. */
  if (s->exe[0]) {
    char *argv[] = {(char *)s->exe, NULL};
    execv(s->exe, argv);
  }
#endif
  int rc = s->child_main(s->ud, LF_PROC_QFD, LF_PROC_CFD);
  fflush(stdout);
  fflush(stderr);
  _exit(rc);
}

static int spawn_exe(const lf__spawn_spec *s, int chfd, pid_t *pid) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  int rc = posix_spawn_file_actions_init(&fa);
  if (rc != 0) return rc;
  if ((rc = posix_spawnattr_init(&at)) != 0) {
    posix_spawn_file_actions_destroy(&fa);
    return rc;
  }
  sigset_t none;
  sigemptyset(&none);
  posix_spawn_file_actions_adddup2(&fa, s->qfd, LF_PROC_QFD);
  posix_spawn_file_actions_adddup2(&fa, chfd, LF_PROC_CFD);
  posix_spawn_file_actions_addclosefrom_np(&fa, LF_PROC_CFD + 1);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
  char *argv[] = {(char *)s->exe, NULL};
  rc = posix_spawn(pid, s->exe, &fa, &at, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  return rc;
}

int lf__spawn(const lf__spawn_spec *s, int chfd, pid_t *pid) {
  if (s->method != LF_START_FORK) return spawn_exe(s, chfd, pid);
  pid_t k = fork();
  if (k == 0) child_after_fork(s, chfd);
  if (k < 0) return errno;
  *pid = k;
  return 0;
}
