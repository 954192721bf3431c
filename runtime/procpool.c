/*
 * procpool.c -- the process pool object of the pool core: its making over
 * a transport, its freeing, and what it reports (status, the cause and
 * detail of a break, its workers). proc.c runs it. The queries take the
 * pool lock `mu` (proc.c describes it) for fields the manager writes;
 * the configuration, set before any thread sees the pool, is read
 * without it.
 */
#include <stdio.h>
#include <string.h>

#include "procpool.h"

static void pool_destroy(lf_obj *o);

lf_procpool *lf__procpool_new_on(const lf_proc_config *cfg,
                                 const lf_proc_hooks *hooks, void *ud,
                                 lf__tp *(*open)(const lf__tp_config *, int *),
                                 int *err) {
  lf__cells_ready();
  lf_procpool *p = lf__calloc(1, sizeof *p);
  char *exe = lf__strdup(cfg->worker_path ? cfg->worker_path : "");
  char *hello = lf__malloc(cfg->hello_len + 1);
  if (p == NULL || exe == NULL || hello == NULL) {
    lf__free(p);
    lf__free(exe);
    lf__free(hello);
    *err = LF_ENOMEM;
    return NULL;
  }
  if (cfg->hello_len) memcpy(hello, cfg->hello, cfg->hello_len);
  atomic_init(&p->obj.refs, 1);
  p->obj.destroy = pool_destroy;
  LF__CHECK(pthread_mutex_init(&p->mu, NULL));
  LF__CHECK(pthread_mutex_init(&p->join_mu, NULL));
  p->max = cfg->max_workers ? cfg->max_workers : 1;
  p->max_tasks = cfg->max_tasks_per_child;
  p->answer_timeout = cfg->answer_timeout > 0 ? cfg->answer_timeout : 30;
  p->method = cfg->start_method;
  p->exe = exe;
  p->hello = hello;
  p->hello_len = cfg->hello_len;
  p->open = open;
  p->status = LF_POOL_RUNNING;
  p->hooks = *hooks;
  p->ud = ud;
  *err = 0;
  return p;
}

lf_procpool *lf_procpool_new(const lf_proc_config *cfg,
                             const lf_proc_hooks *hooks, void *ud, int *err) {
  return lf__procpool_new_on(cfg, hooks, ud, lf__tp_unix_new, err);
}

void lf_procpool_ref(lf_procpool *p) { lf_obj_ref(&p->obj); }
void lf_procpool_unref(lf_procpool *p) {
  if (p) lf_obj_unref(&p->obj);
}

static void pool_destroy(lf_obj *o) {
  lf_procpool *p = (lf_procpool *)o;
  lf_procpool_shutdown(p, 1, 1);
  if (p->hooks.release) p->hooks.release(p->ud);
  while (p->q.len > 0) /* never started: no manager ran */
    lf_future_unref(lf__ring_pop(&p->q));
  lf__ring_free(&p->q);
  lf__ids_free(&p->ids);
  lf__free(p->w);
  lf__free(p->dl);
  lf__free(p->exe);
  lf__free(p->hello);
  pthread_mutex_destroy(&p->mu);
  pthread_mutex_destroy(&p->join_mu);
  lf__free(p);
}

int lf_procpool_status(lf_procpool *p) {
  lf__lock(&p->mu);
  int s = p->status;
  lf__unlock(&p->mu);
  return s;
}

int lf_procpool_cause(lf_procpool *p) {
  lf__lock(&p->mu);
  int c = p->cause;
  lf__unlock(&p->mu);
  return c;
}

size_t lf_procpool_detail(lf_procpool *p, char *buf, size_t len) {
  lf__lock(&p->mu);
  const char *d = p->status == LF_POOL_BROKEN ? p->detail : p->spawn_why;
  size_t n = strlen(d);
  if (len) snprintf(buf, len, "%s", d);
  lf__unlock(&p->mu);
  return n;
}

size_t lf_procpool_nworkers(lf_procpool *p) {
  lf__lock(&p->mu);
  size_t n = p->nw;
  lf__unlock(&p->mu);
  return n;
}

size_t lf_procpool_max_workers(lf_procpool *p) { return p->max; }
int lf_procpool_start_method(lf_procpool *p) { return p->method; }

void *lf_procpool_ud(lf_procpool *p) { return p->ud; }

void lf_procpool_load(lf_procpool *p, size_t *unsent, size_t *out) {
  lf__lock(&p->mu);
  *unsent = p->q.len;
  *out = p->ids.nout;
  lf__unlock(&p->mu);
}

void lf_procpool_sent(lf_procpool *p, uint64_t *task_bytes,
                      uint64_t *blob_bytes, uint64_t *blobs) {
  lf__lock(&p->mu);
  *task_bytes = p->sent_task;
  *blob_bytes = p->sent_blob;
  *blobs = p->nblobs;
  lf__unlock(&p->mu);
}
