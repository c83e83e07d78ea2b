/* Objects between nodes: the component that joins the puller and the
 * pusher (object_store/transfer/) to the network.
 *
 *  - pulls ask owners where objects are (objects/owners.h) and send Pull to
 *    a holder's ObjectManagerService;
 *  - pushes send Push chunks to the node that asked;
 *  - copies sealed or deleted here are reported to their owners;
 *  - one gRPC channel per peer's object manager port (from the node
 *    table), dropped when the node leaves.
 * The ObjectManagerService handlers (service/object_manager.c) hand what
 * they decoded to xfer_on_chunk / xfer_on_pull / xfer_on_free.  Loop
 * thread only. */
#ifndef CRAYLET_RAYLET_OBJECTS_TRANSFER_H
#define CRAYLET_RAYLET_OBJECTS_TRANSFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cq_bridge.h"
#include "common/id.h"
#include "common/loop.h"
#include "common/ray_addr.h"
#include "object_store/store.h"
#include "object_store/transfer/pull.h"
#include "raylet/cluster/peers.h"

typedef struct xfer xfer_t;

/* Everything borrowed must outlive the component. */
typedef struct xfer_options {
    loop_t *loop;
    cq_bridge_t *bridge;
    store_t *store;
    const peers_t *peers;
    id_node_t self;
    uint64_t chunk_size;
    uint64_t max_bytes_in_flight;
    uint64_t pull_timeout_ms;
    int64_t push_timeout_ms;
    uint64_t fetch_fail_ms;
    uint64_t no_room_grace_ms; /* oom_grace_period_s */
    uint64_t tick_ms;
    /* Bring back a copy this node spilled (objects/spill.h spill_restore):
     * 0 if under way.  NULL: nothing is ever spilled here. */
    int (*restore)(void *ctx, const id_object_t *oid);
    void *restore_ctx;
} xfer_options_t;

xfer_t *xfer_create(const xfer_options_t *opts);
/* Cancel pulls and pushes and every call in flight; no callback after.
 * Idempotent. */
void xfer_stop(xfer_t *x);
void xfer_destroy(xfer_t *x);

/* Make objects local (pull.h); 0 when all are local already. */
uint64_t xfer_pull(xfer_t *x, pull_priority_t prio, const id_object_t *ids, const ray_addr_t *owners, size_t n);
void xfer_cancel(xfer_t *x, uint64_t handle);

/* What happens in the store and the cluster. */
void xfer_on_sealed(xfer_t *x, const store_object_info_t *info);
void xfer_on_deleted(xfer_t *x, const id_object_t *id);
void xfer_node_removed(xfer_t *x, const id_node_t *node);
void xfer_worker_died(xfer_t *x, const id_worker_t *worker);
/* A primary copy of `oid` was spilled here to `url`: its owner hears. */
void xfer_on_spilled(xfer_t *x, const ray_addr_t *owner, const id_object_t *oid, const char *url);

/* Up to Ray 2.5x: a primary copy released here is freed on every other
 * node too (ObjectManagerService.FreeObjects, batched for 100 ms), as the
 * stock raylet does; from 2.60 on owners free each copy themselves. */
void xfer_free_everywhere(xfer_t *x, const id_object_t *oid);

/* From ObjectManagerService. */
int xfer_on_chunk(xfer_t *x, const transfer_chunk_t *chunk);
/* False (nothing done) for a node that is not a live member of the cluster. */
bool xfer_on_pull(xfer_t *x, const id_node_t *from, const id_object_t *oid);

typedef struct xfer_stats {
    size_t pull_bundles, pull_objects, receiving;
    size_t pushes, pushes_parked, chunks_in_flight;
    size_t channels;
    uint64_t chunks_received, chunks_refused, chunks_sent, objects_received;
    /* owners' location channels */
    size_t loc_subscribed;
    uint64_t loc_subscribes, loc_published, loc_lookups;
} xfer_stats_t;
void xfer_get_stats(const xfer_t *x, xfer_stats_t *out);

#endif
