/*
 * trace.h -- what trace.c (recording, the writer thread), trace_json.c
 * (the Chrome trace JSON) and trace_svg.c (the timeline picture) share.
 * Only the thread that writes the trace touches any of it (the writer, or
 * the traced state's thread once it has joined the writer), so there is
 * no lock; lfb_tfile's fd and t0, set before the writer starts, are read
 * by both.
 */
#ifndef LFB_TRACE_H
#define LFB_TRACE_H

#include <stddef.h>

struct lf_future;
struct lfb_stamp;

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

/* ---- the JSON (trace_json.c) ---------------------------------------------- */

#define LFB_NUMMAX 24               /* the most bytes a formatted number takes */
#define LFB_JSON_BUFCAP (64 * 1024) /* the buffer of lfb_tfile */

/* The trace file. fd and t0 are set when the trace starts and read by both
 * threads; the JSON not yet written (buf, a malloc'd LFB_JSON_BUFCAP bytes
 * or NULL, and len) and the count of events are the writer's. */
typedef struct lfb_tfile {
  int fd;             /* -1: no trace */
  double t0;          /* the monotonic second of ts 0 */
  int nevents;        /* JSON events written: a comma before the next */
  char *buf;
  size_t len;
} lfb_tfile;

/* `"pid":P,"tid":T` of a row, formatted once. */
typedef struct lfb_tident {
  char s[2 * LFB_NUMMAX + 16];
  size_t n;
} lfb_tident;

/* An interned string of the trace: function and executor names, waits. */
typedef struct lfb_tstr {
  char *json;         /* escaped, with its quotes */
  size_t njson;
  char *raw;
} lfb_tstr;

/* What the traced state recorded of a submit, or of a wait. */
typedef struct lfb_trec {
  struct lf_future *f; /* NULL: a wait */
  unsigned long id;
  double t0, t1;
  const lfb_tstr *name, *exec; /* interned: they stay until the trace ends */
} lfb_trec;

/* The head of the file, up to the first event. */
void lfb_json_head(lfb_tfile *tf);
/* The end of the file after the last event, and everything written. */
void lfb_json_end(lfb_tfile *tf);
/* s escaped as a JSON string, with its quotes, and only printable ASCII
 * kept: malloc'd (the caller frees it), or NULL. */
char *lfb_json_escape(const char *s);
void lfb_json_ident(lfb_tident *id, long pid, long tid);
/* A metadata event `what` (process_name, thread_name) of the row who:
 * json is its name, escaped, or NULL ("?"). */
void lfb_json_meta(lfb_tfile *tf, const char *what, const lfb_tident *who,
                   const char *json);
/* The events of the task of s, whose future is done with this outcome and
 * stamp (st->timed 0: not run on a known worker); main is the main
 * thread's row, who the one it ran on. */
void lfb_json_task(lfb_tfile *tf, const lfb_trec *s, const struct lfb_stamp *st,
                   int outcome, const lfb_tident *main, const lfb_tident *who);
/* The slice of the wait of s, on the main thread's row. */
void lfb_json_wait(lfb_tfile *tf, const lfb_trec *s, const lfb_tident *main);

#endif
