/* Worker leases: the RequestWorkerLease queue and everything that grants,
 * returns, cancels or spills it.
 *
 * A lease asks for a resource shape (CPU, GPU instances, custom, placement
 * group names) and a worker of one job and language.  Requests that fit now
 * take their resources and a worker from the pool and are answered with the
 * worker's address and the instance ids they got (resource_mapping).  The
 * queue is served in order, but one shape that does not fit never holds up
 * another that does.  A request this node can never satisfy is sent to a
 * node that can (spillback), or rejected when the caller asked for
 * grant-or-reject, or kept as infeasible demand for the autoscaler.
 *
 * A worker blocked in ray.get lends its CPU back to the queue until it
 * unblocks, so nested tasks cannot deadlock a small node.  That alone would
 * let a flood of one kind of task (one scheduling class: shape, function,
 * nesting depth, strategy) start a worker for every queued task while the
 * first ones block; as in the stock raylet, a class already holding as many
 * leases as the node has CPUs for it gets one more only after a back-off
 * that doubles with each extra lease (the "worker cap"), while tasks of
 * other classes (the nested ones the blocked tasks wait for) go first. */
#ifndef CRAYLET_RAYLET_LEASE_MGR_H
#define CRAYLET_RAYLET_LEASE_MGR_H

#include <stdbool.h>
#include <stdint.h>

#include "common/loop.h"
#include "common/rpc.h"
#include "proto/ray_proto.h"
#include "raylet/sched/resources.h"
#include "raylet/worker/worker.h"
#include "raylet/worker/pool.h"

typedef struct lease_mgr lease_mgr_t;

typedef struct lease_remote {
    char address[64];
    int port;
    uint8_t node_id[ID_UNIQUE_SIZE];
} lease_remote_t;

typedef struct lease_mgr_callbacks {
    /* Find another node for a request; `need_available` asks for one with
     * the resources free right now, otherwise one whose totals fit.
     * Returns true and fills *out. */
    bool (*pick_remote)(void *ctx, const res_set_t *request, bool need_available, lease_remote_t *out);
    /* The number of granted leases went to zero or away from it. */
    void (*on_busy_changed)(void *ctx, bool busy);
} lease_mgr_callbacks_t;

typedef struct lease_mgr_options {
    const uint8_t *node_id; /* 28 bytes, copied */
    const char *node_ip_address;
    bool worker_cap_enabled;
    uint64_t worker_cap_initial_backoff_ms; /* first extra lease of a capped class */
    uint64_t worker_cap_max_backoff_ms;     /* the doubling stops here */
} lease_mgr_options_t;

lease_mgr_t *lease_mgr_create(loop_t *loop, res_node_t *resources, pool_t *pool,
                              const lease_mgr_options_t *opts, const lease_mgr_callbacks_t *cbs,
                              void *ctx);
/* Answers every queued request as cancelled and frees all leases (their
 * workers are the pool's to kill). */
void lease_mgr_destroy(lease_mgr_t *mgr);

/* gRPC handlers; each answers `call` now or later. */
void lease_mgr_request(lease_mgr_t *mgr, rpc_call_t *call, const Ray__Rpc__RequestWorkerLeaseRequest *req);
void lease_mgr_return(lease_mgr_t *mgr, rpc_call_t *call, const Ray__Rpc__ReturnWorkerLeaseRequest *req);
void lease_mgr_cancel(lease_mgr_t *mgr, rpc_call_t *call, const Ray__Rpc__CancelWorkerLeaseRequest *req);
void lease_mgr_report_backlog(lease_mgr_t *mgr, const Ray__Rpc__ReportWorkerBacklogRequest *req);

/* Worker events from the socket and the pool. */
void lease_mgr_worker_blocked(lease_mgr_t *mgr, worker_t *w);
void lease_mgr_worker_unblocked(lease_mgr_t *mgr, worker_t *w);
/* The worker is dying: free its lease's resources (it never comes back). */
void lease_mgr_worker_dead(lease_mgr_t *mgr, worker_t *w);
/* An actor-creation lease's worker became an actor: keep its resources for
 * the worker's lifetime. */
void lease_mgr_actor_created(lease_mgr_t *mgr, worker_t *w);

/* A placement group's bundle is going away: answer queued requests whose
 * resources name `needle` (a "_group_<pg>" suffix) as cancelled, and kill
 * the workers of granted ones so the bundle's resources come back.  Returns
 * the number of workers killed. */
size_t lease_mgr_drop_matching(lease_mgr_t *mgr, const char *needle);

/* The autoscaler gave up on these shapes: answer queued infeasible
 * requests of exactly one of them as unschedulable.  Returns the count. */
size_t lease_mgr_cancel_shapes(lease_mgr_t *mgr, res_set_t *const *shapes, size_t n);

/* Try to grant queued requests (after resources or workers freed up, or
 * the cluster view changed). */
void lease_mgr_schedule(lease_mgr_t *mgr);

/* Fill the load part of ResourcesData (resource_load_by_shape); the
 * message's storage stays valid until the next call. */
void lease_mgr_fill_load(lease_mgr_t *mgr, Ray__Rpc__ResourcesData *data);
size_t lease_mgr_granted(const lease_mgr_t *mgr);
size_t lease_mgr_queued(const lease_mgr_t *mgr);

#endif
