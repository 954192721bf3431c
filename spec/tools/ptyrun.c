/*
 * ptyrun.c -- runs a command on a pseudo-terminal and types into it, each
 * piece of input only once the output shows what it waits for, so the
 * spec of an interactive program needs no sleeps:
 *
 *   ptyrun EXPECT1 SEND1 [EXPECT2 SEND2 ...] -- command [args]
 *
 * Each EXPECT is looked for in the output after the previous one matched.
 * Everything the command writes is copied to stdout; the exit status is
 * the command's, 128 + N when signal N ended it, or 124 when it has not
 * ended within 30 seconds, so a hang fails a test instead of blocking it.
 * One thread, no lock.
 */
#include <errno.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t child;

static void on_alarm(int sig) {
  (void)sig;
  kill(child, SIGKILL);
  _exit(124);
}

/* Writes every SEND whose EXPECT is in seen[*from..len), in turn. */
static void type_ahead(int fd, char **argv, int *next, int sep,
                       const char *seen, size_t len, size_t *from) {
  while (*next < sep) {
    const char *want = argv[*next];
    const char *at = memmem(seen + *from, len - *from, want, strlen(want));
    if (at == NULL) return;
    *from = (size_t)(at - seen) + strlen(want);
    const char *send = argv[*next + 1];
    if (write(fd, send, strlen(send)) < 0) perror("ptyrun: write");
    *next += 2;
  }
}

int main(int argc, char **argv) {
  int sep = 1;
  while (sep < argc && strcmp(argv[sep], "--") != 0) sep++;
  if (sep + 1 >= argc || (sep - 1) % 2 != 0) {
    fprintf(stderr, "usage: ptyrun [EXPECT SEND]... -- command [args]\n");
    return 2;
  }
  int master;
  child = forkpty(&master, NULL, NULL, NULL);
  if (child < 0) {
    perror("ptyrun: forkpty");
    return 2;
  }
  if (child == 0) {
    execvp(argv[sep + 1], argv + sep + 1);
    perror(argv[sep + 1]);
    _exit(127);
  }
  signal(SIGALRM, on_alarm);
  alarm(30);
  size_t len = 0, cap = 1 << 16, from = 0;
  char *seen = malloc(cap);
  int next = 1;
  if (seen == NULL) on_alarm(0);
  for (;;) {
    type_ahead(master, argv, &next, sep, seen, len, &from);
    char buf[4096];
    ssize_t n = read(master, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break; /* EIO: the command has closed the terminal */
    fwrite(buf, 1, (size_t)n, stdout);
    if (len + (size_t)n > cap) {
      char *more = realloc(seen, cap = 2 * (len + (size_t)n));
      if (more == NULL) on_alarm(0);
      seen = more;
    }
    memcpy(seen + len, buf, (size_t)n);
    len += (size_t)n;
  }
  free(seen);
  int st;
  while (waitpid(child, &st, 0) < 0 && errno == EINTR) {
  }
  fflush(stdout);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
