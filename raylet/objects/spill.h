/* Spilling: primary copies written to external storage when the store
 * fills, read back when needed, deleted when their owners let go.
 *
 * As the stock raylet does it, the writing and reading is Python's: spill
 * and restore I/O workers (worker/pool.h) run Ray's external-storage code
 * with the cluster's object_spilling_config, and this component decides
 * what to spill, when, and keeps the books:
 *  - every primary copy pinned here is tracked (spill_track) with its owner,
 *    whose address goes into the spill file;
 *  - above object_spilling_threshold of the store (checked after each seal
 *    and periodically), or when a create cannot fit (spill_on_store_full),
 *    sealed primaries no client holds are batched (min_spilling_size,
 *    max_fused_object_count, max_spilling_file_size_bytes) into one
 *    CoreWorkerService.SpillObjects call to a spill worker, at most
 *    max_io_workers at once;
 *  - a spilled object is unpinned (its memory copy stays until evicted)
 *    and its URL ("<file>?offset=N&size=M") goes to its owner (ops.spilled),
 *    which hands it to whoever needs the object;
 *  - spill_restore asks a restore worker to put it back (RestoreSpilled-
 *    Objects); the copy it seals is an ordinary evictable one;
 *  - a released object drops its file's count, and a file nobody needs is
 *    deleted (DeleteSpilledObjects, retried).
 * Loop thread only. */
#ifndef CRAYLET_RAYLET_OBJECTS_SPILL_H
#define CRAYLET_RAYLET_OBJECTS_SPILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cq_bridge.h"
#include "common/id.h"
#include "common/loop.h"
#include "common/ray_addr.h"
#include "object_store/store.h"
#include "raylet/worker/pool.h"

typedef struct spill spill_t;

typedef struct spill_options {
    loop_t *loop;
    cq_bridge_t *bridge;
    store_t *store; /* borrowed; outlives the component */
    pool_t *pool;   /* borrowed; its I/O workers do the work */
    const char *node_ip_address; /* where the I/O workers listen; copied */
    bool enabled;   /* a spilling config exists */
    double threshold;              /* object_spilling_threshold */
    uint64_t min_spilling_size;
    size_t max_fused_object_count;
    int64_t max_file_size;         /* max_spilling_file_size_bytes; <= 0: none */
    size_t max_io_workers;
    uint64_t check_period_ms;      /* free_objects_period_milliseconds; 0: none */
} spill_options_t;

typedef struct spill_ops {
    /* A primary copy of `oid` is now stored at `url`, on this node: its
     * owner should know (the url is borrowed). */
    void (*spilled)(void *ctx, const id_object_t *oid, const ray_addr_t *owner, const char *url);
} spill_ops_t;

spill_t *spill_create(const spill_options_t *opts, const spill_ops_t *ops, void *ctx);
/* Cancels its calls and timers; nothing runs after.  Files still
 * referenced stay (the session directory is Ray's to remove). */
void spill_stop(spill_t *s);
void spill_destroy(spill_t *s);

/* A primary copy of `oid` was pinned here for `owner` (PinObjectIDs). */
void spill_track(spill_t *s, const id_object_t *oid, const ray_addr_t *owner);
/* Its owner let go (or died): forget it, deleting its spilled bytes once
 * nothing else in their file is needed. */
void spill_release(spill_t *s, const id_object_t *oid);

/* The store cannot fit a create: spill what can be.  True while spilling is
 * under way (the create waits for it rather than falling back to disk). */
bool spill_on_store_full(spill_t *s, uint64_t bytes_needed);
/* Something was sealed: check the threshold soon (once per burst). */
void spill_on_sealed(spill_t *s);

/* Bring a copy spilled here back into the store.  0: it is being restored
 * (its seal will tell); -ENOENT: nothing of it was spilled here. */
int spill_restore(spill_t *s, const id_object_t *oid);

/* The pool's news: an I/O worker is ready; one died. */
void spill_io_ready(spill_t *s, worker_type_t type);
void spill_worker_died(spill_t *s, const worker_t *w);

typedef struct spill_stats {
    double spill_time_total_s, restore_time_total_s;
    uint64_t spilled_bytes_total, spilled_objects_total;
    uint64_t restored_bytes_total, restored_objects_total;
    uint64_t spilled_bytes_current; /* in files now */
    uint64_t spilled_objects_current;
    uint64_t pinned_bytes;          /* primaries in memory, not being spilled */
    uint64_t pending_spill_bytes;
    size_t pending_spill_objects, pending_restore_objects;
    uint64_t pending_restore_bytes;
    size_t primaries;               /* every primary tracked, spilled or not */
    size_t files;                   /* spill files in use */
    uint64_t failed_deletions;
} spill_stats_t;
void spill_get_stats(const spill_t *s, spill_stats_t *out);

#endif
