/* The craylet daemon as one object: built in dependency order from the
 * parsed flags, run on one event loop, torn down in reverse.
 *
 * Start-up follows the stock raylet: fetch the system config from GCS, bind
 * the sockets and the gRPC servers, start the agents and wait for their
 * port files, then register the node.  After that it subscribes to GCS
 * channels, streams its resource view (RaySyncer) and checks its own
 * liveness.  SIGTERM (ray stop) unregisters the node, stops the agents,
 * removes the sockets and exits 0. */
#ifndef CRAYLET_RAYLET_RAYLET_H
#define CRAYLET_RAYLET_RAYLET_H

#include <stdbool.h>

#include "raylet/flags.h"
#include "raylet/sched/gpu_pack.h"
#include "raylet/sched/gpu_topo.h"

typedef struct raylet raylet_t;

/* The node's GPUs as main() found them (environment and discovery are read
 * at the edge, before the node exists). */
typedef struct raylet_gpu {
    const gpu_topo_t *topo; /* NULL: no GPU graph, GPUs go by lowest free id (copied) */
    gpu_pack_mode_t packing;
    bool cpu_affinity; /* bind GPU workers to the GPUs' cores */
} raylet_gpu_t;

/* Takes ownership of *flags (moved out; the caller's copy is zeroed).
 * Returns NULL on a fatal construction error (logged). */
raylet_t *raylet_create(flags_t *flags, const raylet_gpu_t *gpu);
/* Runs until shutdown; returns the process exit code. */
int raylet_run(raylet_t *r);
void raylet_destroy(raylet_t *r);

#endif
