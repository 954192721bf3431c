/*
 * remote.h -- what the executors of remote pools share (remote.c): the
 * kinds whose tasks leave the process, ProcessPoolExecutor and the MPI
 * executors, each a runtime process pool over its own transport.
 */
#ifndef LFB_REMOTE_H
#define LFB_REMOTE_H

#include "../runtime/lf_proc.h"
#include "lfb.h"

/* By enum lf_proc_cause; 0: no cause (a result that found no memory). */
#define LFB_NCAUSES (LF_PROC_PROTOCOL + 1)

/* What a pool keeps of its creator: the errors that fail its futures
 * once it is broken, and the hello until the pool has copied it. It is the
 * `ud` of the pool's hooks. */
typedef struct lfb_remote {
  const char *type;                /* the error type: BrokenProcessPool */
  const char *const *texts;        /* the kind's message of each cause */
  lf_payload *canned[LFB_NCAUSES]; /* those errors, encoded */
  lf_payload *hello;
} lfb_remote;

/* A new config held by the executor object ex (so an error half way
 * leaks nothing), with its errors encoded and its hello: path, cpath,
 * the initializer at fn, fn + 1 (bytes and flags), then the nextra values
 * on top of the stack, which it pops. Raises when out of memory. */
lfb_remote *lfb_remote_new(lua_State *L, lfb_executor *ex, const char *type,
                           const char *const texts[LFB_NCAUSES], int fn,
                           int nextra);
/* After ex->pool = lf_*pool_new(..., c, ...): raises if the pool is NULL,
 * else hands c over to the pool and returns 1 (the executor object). */
int lfb_remote_adopt(lua_State *L, lfb_executor *ex, lfb_remote *c);
/* How long a new worker may take to answer its hello: the seconds of
 * LUAFUTURES_WORKER_TIMEOUT (for machines slower than any we know), or
 * dflt when it is unset or not positive. */
double lfb_remote_answer_timeout(double dflt);

/* The hooks' `broken` and `release` (ud: the lfb_remote). */
lf_payload *lfb_remote_broken(void *ud, int cause, const char *detail);
void lfb_remote_release(void *ud);

/* lfb_exec_ops entries that are the lf_procpool's own functions. */
int lfb_remote_submit(void *p, lf_future *f);
int lfb_remote_shutdown(void *p, int wait, int cancel);
int lfb_remote_status(void *p);
size_t lfb_remote_nworkers(void *p);
size_t lfb_remote_max_workers(void *p);
void lfb_remote_unref(void *p);
void lfb_remote_ref(void *p);
void lfb_remote_failure(void *p, char *buf, size_t len);
/* Why the pool is broken: its cause's text in texts. */
const char *lfb_remote_cause(const char *const texts[LFB_NCAUSES], void *p);

#endif
