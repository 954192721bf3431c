/*
 * mailbox.h -- a test transport shaped like MPI's, for test_proc.c: its
 * workers are threads of this process with a mailbox each. No shared queue
 * (the core must choose the worker), every call but wake must come from
 * one thread (LF__TP_FUNNELED: counted in mailbox_off_thread), and wait
 * probes with backoff, as an MPI_Iprobe loop would. It shows the core runs
 * over such a transport unchanged.
 */
#ifndef LF_TEST_MAILBOX_H
#define LF_TEST_MAILBOX_H

#include "transport.h"

extern int (*mailbox_run)(const lf_payload *task); /* a task's int result */
extern int mailbox_open_now;   /* transports open */
extern int mailbox_off_thread; /* calls not made on the manager thread */
lf__tp *mailbox_open(const lf__tp_config *cfg, int *err);

#endif
