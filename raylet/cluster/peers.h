/* The cluster as this node sees it: every other live node, its address
 * (GCS's node-liveness channel) and its resources (RaySyncer views), and
 * the choice of a node to spill a lease to.  Plain data: the decoders in
 * node.c feed it, sched/ asks it through a callback.  Loop thread only. */
#ifndef CRAYLET_RAYLET_CLUSTER_PEERS_H
#define CRAYLET_RAYLET_CLUSTER_PEERS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/id.h"
#include "raylet/sched/lease_mgr.h"
#include "raylet/sched/resources.h"

typedef struct peers peers_t;

typedef struct peer_info {
    const uint8_t *node_id; /* ID_UNIQUE_SIZE bytes */
    const char *address;    /* node manager address, "" until known */
    int port;
    int object_port;        /* its ObjectManagerService */
    bool draining;
} peer_info_t;

peers_t *peers_create(void);
void peers_destroy(peers_t *p);

/* A node is alive at this address.  Returns true if it was not known. */
bool peers_seen(peers_t *p, const uint8_t node_id[ID_UNIQUE_SIZE], const char *address, int port, int object_port);
/* The node's record, if it is alive and its address known; valid until the
 * table changes. */
bool peers_lookup(const peers_t *p, const uint8_t node_id[ID_UNIQUE_SIZE], peer_info_t *out);
/* A node left the cluster.  Returns true if it was known. */
bool peers_remove(peers_t *p, const uint8_t node_id[ID_UNIQUE_SIZE]);
/* Its resource view (each replaces the previous one whole); `total` and
 * `available` are borrowed. */
void peers_update_view(peers_t *p, const uint8_t node_id[ID_UNIQUE_SIZE], const res_set_t *total,
                       const res_set_t *available, bool draining);

size_t peers_count(const peers_t *p);
/* The i-th node; valid until the table changes. */
void peers_at(const peers_t *p, size_t i, peer_info_t *out);

/* Spillback target: a live, reachable, not draining node whose resources
 * are free now, else (unless `need_available`) one whose totals fit.  The
 * request is counted against the chosen node's view until its next report,
 * so a burst spreads over the nodes. */
bool peers_pick(peers_t *p, const res_set_t *request, bool need_available, lease_remote_t *out);
/* The same for one named node (node affinity): with `need_available`, only
 * when its resources are free now (counted as above); without, whenever it
 * is alive and reachable, whatever its view says (it queues there). */
bool peers_pick_node(peers_t *p, const uint8_t node_id[ID_UNIQUE_SIZE], const res_set_t *request,
                     bool need_available, lease_remote_t *out);

#endif
