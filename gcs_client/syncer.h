/* RaySyncer client: this node's side of the resource-view broadcast.
 *
 * The raylet dials GCS's RaySyncer service (/ray.rpc.syncer.RaySyncer/
 * StartSync, a bidi stream of RaySyncMessageBatch) with metadata
 * node_id=<hex>.  GCS relays every node's RESOURCE_VIEW to every other node.
 * Rules the peer enforces: a batch is never empty, and per (node, type) the
 * version strictly increases, across reconnects too.  The view is sent when
 * the local version advanced, checked every `period_ms`, and resent in full
 * after every reconnect (which GCS needs after it restarts). */
#ifndef CRAYLET_GCS_CLIENT_SYNCER_H
#define CRAYLET_GCS_CLIENT_SYNCER_H

#include <stdint.h>

#include "gcs_client/gcs_client.h"

typedef struct syncer syncer_t;

typedef struct syncer_callbacks {
    /* A counter that changes whenever the local view changes. */
    uint64_t (*local_version)(void *ctx);
    /* Fill `view` with the current local view.  Anything allocated for it is
     * released by release_view() after packing. */
    void (*fill_view)(void *ctx, Ray__Rpc__Syncer__ResourceViewSyncMessage *view);
    void (*release_view)(void *ctx, Ray__Rpc__Syncer__ResourceViewSyncMessage *view);
    /* Another node's view, already checked for a newer version.  `view` is
     * valid only during the call.  May be NULL. */
    void (*on_remote_view)(void *ctx, const uint8_t node_id[ID_UNIQUE_SIZE],
                           const Ray__Rpc__Syncer__ResourceViewSyncMessage *view);
} syncer_callbacks_t;

/* Connects at once; reconnects 2 s after any stream failure. */
syncer_t *syncer_create(loop_t *loop, gcs_client_t *gcs, const uint8_t node_id[ID_UNIQUE_SIZE],
                        uint64_t period_ms, const syncer_callbacks_t *cbs, void *ctx);
void syncer_destroy(syncer_t *s);

/* Send now if the view changed, without waiting for the period. */
void syncer_flush(syncer_t *s);
/* Count of batches sent and received, for tests and debug dumps. */
uint64_t syncer_sent(const syncer_t *s);
uint64_t syncer_received(const syncer_t *s);

#endif
