/* <log_dir>/debug_state.txt, rewritten atomically every
 * debug_dump_period_milliseconds (a temporary file renamed over it): the
 * node's resources, workers, leases, waits, RaySyncer and store counters,
 * in the stock raylet's section names, for `ray cluster-dump` and people.
 * A failed write is logged once until a write succeeds again. */
#ifndef CRAYLET_RAYLET_DEBUG_DUMP_H
#define CRAYLET_RAYLET_DEBUG_DUMP_H

#include <stddef.h>
#include <stdint.h>

#include "common/loop.h"
#include "gcs_client/syncer.h"
#include "object_store/store.h"
#include "raylet/objects/channels.h"
#include "raylet/objects/lease_args.h"
#include "raylet/objects/obj_wait.h"
#include "raylet/objects/transfer.h"
#include "raylet/sched/bundles.h"
#include "raylet/sched/gpu_gang.h"
#include "raylet/sched/lease_mgr.h"
#include "raylet/sched/resources.h"
#include "raylet/worker/jobs.h"
#include "raylet/worker/pool.h"

/* What the dump reads; every pointer borrowed (NULL: section empty) and
 * must outlive the dumper. */
typedef struct debug_dump_sources {
    const char *node_hex;
    const char *node_ip_address;
    int node_manager_port;
    uint64_t start_wall_ms;
    res_node_t *resources;
    bundles_t *bundles;
    gpu_gang_t *gang;
    owait_t *owait;
    store_t *store;
    jobs_t *jobs;
    pool_t *pool;
    lease_mgr_t *leases;
    syncer_t *syncer;
    xfer_t *xfer;
    largs_t *largs;
    chan_set_t *channels;
} debug_dump_sources_t;

typedef struct debug_dump debug_dump_t;

/* Starts writing at once, then every period_ms.  NULL when disabled
 * (period 0 or no log dir). */
debug_dump_t *debug_dump_create(loop_t *loop, const char *log_dir, uint64_t period_ms,
                                const debug_dump_sources_t *src);
void debug_dump_stop(debug_dump_t *dd);
void debug_dump_destroy(debug_dump_t *dd);

/* The text, snprintf-style: returns the full length, writes at most cap. */
size_t debug_dump_format(const debug_dump_sources_t *src, char *buf, size_t cap);

#endif
