/*
 * lfb_mpi.h -- what the two files of the MPI executors share: mpi.c (the
 * module's table, the executor classes, launching) and mpiworker.c (how a
 * worker rank serves pools).
 */
#ifndef LFB_MPI_H
#define LFB_MPI_H

#include "../runtime/lf_mpi.h"
#include "lfb.h"

/* The transport, its rank, the job's size and this processor's name: set
 * once, by the first state that opens the module (mpi.c). */
extern const lf_mpi *lfb_mpi;
extern int lfb_mpi_rank, lfb_mpi_size;
extern char lfb_mpi_host[256];

/* Serves the pools of the client rank until it sends EXIT, on L's thread
 * (mpiworker.c): every pool gets a worker state of its own, named
 * "MPIWorker-<rank>@<host>", or with isolate a process pool of one worker
 * that runs each task in a child process. Raises only when out of memory
 * (the job then ends: a rank cannot leave quietly). */
void lfb_mpi_serve(lua_State *L);

/* The hello of an MPI pool: package.path, package.cpath, the initializer
 * payload as bytes (or nil) and its flags, and isolate. */
enum { LFB_MPI_HELLO_VALUES = 5 };

#endif
