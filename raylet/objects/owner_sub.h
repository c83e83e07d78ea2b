/* Watching owners for the objects whose primary copies this node pins.
 *
 * A pinned object (PinObjectIDs) stays in the store until its owner says it
 * is out of scope.  Like the stock raylet, we subscribe to each owner's
 * WORKER_OBJECT_EVICTION channel on its CoreWorkerService pubsub (one
 * command batch per burst of new objects, one long poll in flight per
 * owner) and release the pin when the eviction message arrives.  When the
 * owner is gone (its poll fails), every object it owned is released: nobody
 * can ask for them any more. */
#ifndef CRAYLET_RAYLET_OWNER_SUB_H
#define CRAYLET_RAYLET_OWNER_SUB_H

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

#endif
