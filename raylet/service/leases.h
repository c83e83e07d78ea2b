/* The lease methods of NodeManagerService: decode the request into the
 * lease manager's plain form, call it, encode its outcome as the reply.
 * Nothing here decides anything; sched/lease_mgr.c does. */
#ifndef CRAYLET_RAYLET_SERVICE_LEASES_H
#define CRAYLET_RAYLET_SERVICE_LEASES_H

#include "common/rpc.h"
#include "proto/ray_proto.h"
#include "raylet/metrics/metrics.h"
#include "raylet/sched/lease_mgr.h"

/* Where granted workers live: this node.  Borrowed; must outlive every
 * call answered through it. */
typedef struct svc_lease_node {
    const uint8_t *node_id; /* ID_UNIQUE_SIZE bytes */
    const char *ip_address;
    metrics_t *metrics;     /* each request's time to its answer; NULL: none */
} svc_lease_node_t;

void svc_lease_request(lease_mgr_t *mgr, const svc_lease_node_t *node, rpc_call_t *call,
                       const Ray__Rpc__RequestWorkerLeaseRequest *req);
void svc_lease_return(lease_mgr_t *mgr, rpc_call_t *call, const Ray__Rpc__ReturnWorkerLeaseRequest *req);
void svc_lease_cancel(lease_mgr_t *mgr, rpc_call_t *call, const Ray__Rpc__CancelWorkerLeaseRequest *req);
void svc_lease_backlog(lease_mgr_t *mgr, rpc_call_t *call, const Ray__Rpc__ReportWorkerBacklogRequest *req);

/* A res_set_t of a LeaseSpec's required_resources; NULL if malformed. */
res_set_t *svc_lease_resources(const Ray__Rpc__LeaseSpec *spec);
/* ...and of its required_placement_resources (empty when it has none). */
res_set_t *svc_lease_placement(const Ray__Rpc__LeaseSpec *spec);

/* ResourceLoad (resource_load_by_shape) from the queued demand.  The
 * message and everything it points to live in `*storage` until
 * svc_lease_load_free(). */
typedef struct svc_lease_load {
    Ray__Rpc__ResourceLoad load;
    void *mem; /* one block behind the demand entries */
} svc_lease_load_t;
void svc_lease_load_fill(lease_mgr_t *mgr, svc_lease_load_t *storage);
void svc_lease_load_free(svc_lease_load_t *storage);

#endif
