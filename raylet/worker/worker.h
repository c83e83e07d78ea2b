/* A worker or driver process as the raylet sees it.
 *
 * Records are owned by the worker pool (pool.c) and live from spawn
 * (or a driver's registration) until the process is gone and its
 * connection closed.  Other modules keep pointers only while the worker is
 * not WORKER_DEAD; the pool tells them through pool callbacks before it
 * frees a record. */
#ifndef CRAYLET_RAYLET_WORKER_H
#define CRAYLET_RAYLET_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/id.h"
#include "proto/ray_proto.h"

/* rpc::WorkerType */
typedef enum {
    WORKER_TYPE_WORKER = 0,
    WORKER_TYPE_DRIVER = 1,
    WORKER_TYPE_SPILL = 2,
    WORKER_TYPE_RESTORE = 3,
} worker_type_t;

typedef enum {
    WORKER_STARTING,   /* spawned, not registered yet */
    WORKER_REGISTERED, /* connected, waiting for AnnounceWorkerPort */
    WORKER_IDLE,       /* in the idle pool */
    WORKER_LEASED,     /* granted to a lease */
    WORKER_DRIVER,     /* a driver (never leased) */
    WORKER_IO,         /* a spill or restore worker, ready (pool_io_take) */
    WORKER_DEAD,       /* gone; the record is about to be freed */
} worker_state_t;

typedef struct worker worker_t; /* opaque outside raylet/worker/ (worker_int.h) */

/* Read-only views of a record; valid while the record lives. */
const uint8_t *worker_id(const worker_t *w);  /* ID_UNIQUE_SIZE bytes */
const char *worker_id_hex(const worker_t *w);
const uint8_t *worker_job_id(const worker_t *w); /* ID_JOB_SIZE bytes */
worker_type_t worker_type(const worker_t *w);
worker_state_t worker_state(const worker_t *w);
int worker_port(const worker_t *w);              /* its gRPC port; 0 until announced */
pid_t worker_pid(const worker_t *w);             /* -1 once reaped */
pid_t worker_spawned_pid(const worker_t *w);     /* kept after reaping, for reports */
bool worker_is_actor(const worker_t *w);
/* Its owner returned its lease saying it failed (its driver is told). */
bool worker_failed_while_leased(const worker_t *w);
/* Its rpc::Address on this node; `out` borrows from w, node_id and ip. */
void worker_rpc_address(const worker_t *w, const uint8_t node_id[ID_UNIQUE_SIZE], const char *ip,
                        Ray__Rpc__Address *out);

#endif
