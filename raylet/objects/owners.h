/* Talking to the owners of objects about where copies are.
 *
 * Every object has an owner (the worker that created it) who keeps its
 * locations.  This raylet
 *  - reports each copy sealed here and each copy deleted here
 *    (CoreWorkerService.UpdateObjectLocationBatch: one batch in flight per
 *    owner, later updates queued behind it), so pulls elsewhere find it;
 *  - learns where an object it needs is, as the stock raylet does, by
 *    subscribing to the object on the owner's WORKER_OBJECT_LOCATIONS
 *    pubsub channel (PubsubCommandBatch; one long poll per owner brings
 *    the owner's snapshot at once and every change after it), and hands
 *    each to the puller; asked again while subscribed (a copy did not
 *    come), it asks the owner directly (GetObjectLocationsOwner).
 * One gRPC channel per owner, dropped when its worker dies.  Loop thread
 * only. */
#ifndef CRAYLET_RAYLET_OBJECTS_OWNERS_H
#define CRAYLET_RAYLET_OBJECTS_OWNERS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/cq_bridge.h"
#include "common/id.h"
#include "common/ray_addr.h"
#include "object_store/transfer/pull.h"

typedef struct owners owners_t;

typedef struct owners_callbacks {
    /* The owner's answer; `loc` is borrowed. */
    void (*located)(void *ctx, const id_object_t *oid, const pull_locations_t *loc);
    /* The owner could not be asked (owner_gone: it is certainly dead). */
    void (*locate_failed)(void *ctx, const id_object_t *oid, bool owner_gone);
} owners_callbacks_t;

/* `self` is this node (the location reported).  `cbs` is copied. */
owners_t *owners_create(cq_bridge_t *bridge, const id_node_t *self, const owners_callbacks_t *cbs, void *ctx);
/* Cancels calls in flight (no callback after) and frees.  NULL is fine. */
void owners_destroy(owners_t *o);

/* Ask `owner` where `oid` is: the answer comes through `located`, then
 * again on every change until owners_forget.  0, or CR_EBADMSG for an
 * owner that cannot be reached (no worker id, ip or port), or CR_ERPC. */
int owners_locate(owners_t *o, const ray_addr_t *owner, const id_object_t *oid);
/* Nothing here needs `oid` any more: unsubscribe.  Unknown ids are
 * ignored. */
void owners_forget(owners_t *o, const ray_addr_t *owner, const id_object_t *oid);

/* A copy of `oid` was sealed here (added) or deleted here.  Objects whose
 * owner cannot be reached are not reported.  The owner of a deleted copy
 * is remembered from its seal. */
void owners_copy_added(owners_t *o, const ray_addr_t *owner, const id_object_t *oid);
void owners_copy_removed(owners_t *o, const id_object_t *oid);

/* A primary copy of `oid` was spilled here to `url` (copied): the owner
 * hands the URL and this node to whoever asks where the object is. */
void owners_copy_spilled(owners_t *o, const ray_addr_t *owner, const id_object_t *oid, const char *url);

/* The worker died: forget its channel and whatever was queued for it. */
void owners_worker_died(owners_t *o, const id_worker_t *worker);

/* Copies whose removal would be reported (sealed here, owner known). */
size_t owners_tracked(const owners_t *o);

typedef struct owners_stats {
    uint64_t subscribes; /* location subscriptions opened */
    uint64_t published;  /* location messages the owners published to us */
    uint64_t lookups;    /* direct GetObjectLocationsOwner asks */
    size_t subscribed;   /* subscriptions open now */
} owners_stats_t;
void owners_get_stats(const owners_t *o, owners_stats_t *out);

#endif
