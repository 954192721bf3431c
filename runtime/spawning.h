/*
 * spawning.h -- starting a worker process (spawn or fork) with its two
 * channels on LF_PROC_QFD and LF_PROC_CFD. Used by the Unix transport; a
 * transport whose workers already exist (MPI ranks) does not need it.
 */
#ifndef LF_SPAWNING_H
#define LF_SPAWNING_H

#include <sys/types.h>

typedef struct lf__spawn_spec {
  int method;      /* enum lf_start_method */
  const char *exe; /* the worker executable ("" if none) */
  int qfd;         /* the workers' end of the task queue */
  int (*child_main)(void *ud, int qfd, int cfd); /* LF_START_FORK */
  void *ud;
} lf__spawn_spec;

/* Starts a worker on channel `chfd`: 0 with *pid, or an errno value. */
int lf__spawn(const lf__spawn_spec *s, int chfd, pid_t *pid);

/* Moves fd to a number above LF_PROC_CFD (close-on-exec), so placing the
 * channels on 3 and 4 in a child never overwrites one with the other. */
int lf__high_fd(int fd);

#endif
