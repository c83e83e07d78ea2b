/* Watching owners for the objects whose primary copies this node pins.
 *
 * A pinned object (PinObjectIDs) stays in the store until its owner says it
 * is out of scope, or dies.  How the owner says it depends on the Ray
 * version (see proto/gen/ray_version.h):
 *  - with CRAYLET_RAY_OBJECT_EVICTION_CHANNEL (up to 2.5x), like the stock
 *    raylet we subscribe to each owner's WORKER_OBJECT_EVICTION channel on
 *    its CoreWorkerService pubsub (one command batch per burst of new
 *    objects, one long poll in flight per owner) and release the pin when
 *    the eviction message arrives, or when the poll fails (owner gone);
 *  - with CRAYLET_RAY_FREE_LOCAL_OBJECTS (2.60), the owner calls
 *    FreeLocalObjects, which lands in osub_free().
 * In both, the GCS's worker-failure and node-liveness channels report dead
 * owners (osub_owner_died, osub_node_died): nobody can ask for what a dead
 * owner owned, so all of it is released. */
#ifndef CRAYLET_RAYLET_OWNER_SUB_H
#define CRAYLET_RAYLET_OWNER_SUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cq_bridge.h"
#include "common/id.h"
#include "common/loop.h"
#include "proto/ray_proto.h"

typedef struct osub osub_t;

typedef void (*osub_released_fn)(void *ctx, const uint8_t oid[ID_OBJECT_SIZE]);

/* `node_*` describe this raylet (the subscriber address owners record). */
osub_t *osub_create(loop_t *loop, cq_bridge_t *bridge, const uint8_t node_id[ID_UNIQUE_SIZE],
                    const char *node_ip, int node_port, osub_released_fn released, void *ctx);
/* Drops every subscription without callbacks. */
void osub_destroy(osub_t *s);

/* Release `oid` when `owner` evicts it or dies.  Returns 0, or CR_EBADMSG
 * for an owner address without a worker id or port. */
int osub_watch(osub_t *s, const Ray__Rpc__Address *owner, const uint8_t oid[ID_OBJECT_SIZE]);
size_t osub_watched(const osub_t *s);

/* The owner released `oid`: release the pin.  False if it was not pinned. */
bool osub_free(osub_t *s, const uint8_t oid[ID_OBJECT_SIZE]);
/* Release everything owned by a dead worker, or by any worker of a dead
 * node.  Return how many objects were released. */
size_t osub_owner_died(osub_t *s, const uint8_t worker_id[ID_UNIQUE_SIZE]);
size_t osub_node_died(osub_t *s, const uint8_t node_id[ID_UNIQUE_SIZE]);

#endif
