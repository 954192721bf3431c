/*
 * worker_main.c -- bin/luafutures-worker, the executable a
 * ProcessPoolExecutor spawns (start_method "spawn").
 *
 * The module is linked in, so a worker starts with one lua_State and no
 * search for concurrent/futures.so. The pool hands it the task queue on fd
 * 3 and its own channel on fd 4 (see runtime/lf_proc.h); everything else
 * it needs comes down the channel. Single-threaded unless a task starts
 * threads of its own.
 */
#include <stdio.h>
#include <sys/stat.h>

#include "../runtime/lf_proc.h"
#include "lfb.h"

static int is_socket(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

int main(int argc, char **argv) {
  (void)argc;
  if (!is_socket(LF_PROC_QFD) || !is_socket(LF_PROC_CFD)) {
    fprintf(stderr,
            "%s: runs the tasks of a ProcessPoolExecutor, which starts it; "
            "it is not run by hand\n",
            argv[0] ? argv[0] : "luafutures-worker");
    return 2;
  }
  return lfb_proc_worker(LF_PROC_QFD, LF_PROC_CFD);
}
