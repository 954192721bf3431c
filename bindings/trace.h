/*
 * trace.h -- what trace.c (recording, the Chrome trace JSON) and
 * trace_svg.c (the timeline picture) share. Only the traced state's
 * thread touches any of it, so there is no lock.
 */
#ifndef LFB_TRACE_H
#define LFB_TRACE_H

#include <stddef.h>

/* A row of the picture, and a thread of the trace: the main thread first,
 * then each worker thread or process in the order it was first seen. */
typedef struct lfb_trow {
  long pid, tid;
  char name[64];
} lfb_trow;

enum { LFB_TEV_TASK, LFB_TEV_WAIT };
enum { LFB_OUT_RETURNED, LFB_OUT_RAISED, LFB_OUT_CANCELLED };

/* A bar of the picture (kept only when the path ends in .svg). */
typedef struct lfb_tbar {
  int row, kind, outcome;
  double ts, dur; /* seconds since the trace began */
  char label[64];
} lfb_tbar;

/* Writes the whole picture to fd: 0, or -1 with errno. */
int lfb_svg_write(int fd, const lfb_trow *rows, size_t nrows,
                  const lfb_tbar *bars, size_t nbars, double span);

#endif
