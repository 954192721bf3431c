/*
 * mpipool.c -- the process pool's core (proc.c) over the MPI transport.
 *
 * The transport lives in another module, built with mpicc
 * (transport_mpi.c), and reaches this one only through its lf_mpi table,
 * so the core is shared and not copied into it. No state, no lock.
 */
#include "lf_mpi.h"
#include "transport.h"
#include "wire.h"

void lf_mpi_host_default(lf_mpi_host *h) {
  h->payload_new = lf_payload_new;
  h->payload_free = lf_payload_free;
  h->max_message = lf__wire_max_message();
}

lf_procpool *lf_mpipool_new(const lf_mpi *m, const lf_proc_config *cfg,
                            const lf_proc_hooks *hooks, void *ud, int *err) {
  if (m == NULL || m->version != LF_MPI_VERSION) {
    *err = LF_ESPAWN; /* a transport of another version */
    return NULL;
  }
  return lf__procpool_new_on(cfg, hooks, ud, m->open, err);
}
