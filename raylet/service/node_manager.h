/* NodeManagerService: the gRPC methods GCS, workers and the dashboard call
 * on a raylet, plus grpc.health.v1 (GCS's liveness probe).  Each handler
 * decodes its request, calls the component that owns the answer, and
 * encodes the reply; calls answered later (node stats, actor kills) are
 * tracked so that stopping answers them.
 *
 * The service sees components only through their handles; what belongs to
 * the node as a whole (is it serving, how long idle, shut it down) comes
 * through nm_node_ops_t.  Loop thread only. */
#ifndef CRAYLET_RAYLET_SERVICE_NODE_MANAGER_H
#define CRAYLET_RAYLET_SERVICE_NODE_MANAGER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/cq_bridge.h"
#include "common/loop.h"
#include "common/rpc.h"
#include "object_store/store.h"
#include "raylet/cluster/peers.h"
#include "raylet/objects/channels.h"
#include "raylet/objects/owner_sub.h"
#include "raylet/metrics/metrics.h"
#include "raylet/objects/spill.h"
#include "raylet/sched/bundles.h"
#include "raylet/sched/lease_mgr.h"
#include "raylet/sched/mem_monitor.h"
#include "raylet/sched/resources.h"
#include "raylet/worker/agent.h"
#include "raylet/worker/pool.h"

typedef struct nm_service nm_service_t;

typedef struct nm_node_ops {
    /* False once the node is stopping: health says NOT_SERVING, leases and
     * bundles are refused. */
    bool (*serving)(void *ctx);
    /* How long the node has been idle (ms), 0 while leases or stored
     * objects keep it busy; for GetResourceLoad. */
    uint64_t (*idle_ms)(void *ctx);
    /* DrainRaylet: a drain_verdict_t (raylet/cluster/drain.h); *why is
     * set unless accepted. */
    int (*drain)(void *ctx, int reason, const char *message, int64_t deadline_ms, const char **why);
    /* The node is draining: no bundles here; GetResourceLoad says so.
     * `deadline_ms` gets the drain deadline (0: none). */
    bool (*draining)(void *ctx, int64_t *deadline_ms);
    /* ShutdownRaylet: stop the node (unregistering when `graceful`). */
    void (*shutdown)(void *ctx, bool graceful);
    /* Totals or availability changed outside a lease (bundles given back,
     * totals resized): GCS should hear of it now, not at the next periodic
     * report (it holds pending groups until it does; what it reserves it
     * already counts). */
    void (*resources_changed)(void *ctx);
    /* NotifyGCSRestart: re-send the node's GCS subscriptions and re-read
     * what they describe. */
    void (*gcs_restarted)(void *ctx);
} nm_node_ops_t;

/* Everything borrowed; each must outlive the service. */
typedef struct nm_service_deps {
    loop_t *loop;
    cq_bridge_t *bridge;
    res_node_t *resources;
    bundles_t *bundles;
    store_t *store;
    peers_t *peers;
    const uint8_t *node_id; /* ID_UNIQUE_SIZE bytes */
    const char *node_hex;
    const char *node_ip_address;
    const char *system_config_json;
    uint64_t kill_worker_timeout_ms;
    metrics_t *metrics; /* lease latencies; NULL: none */
    chan_set_t *channels; /* compiled graphs' channels from other nodes' writers; NULL: none */
} nm_service_deps_t;

/* Registers every method on `server` (before rpc_server_start).  Returns
 * NULL on failure (logged). */
nm_service_t *nm_service_create(rpc_server_t *server, const nm_service_deps_t *deps, const nm_node_ops_t *ops,
                                void *ctx);
/* Components made after the server is up (the pool needs its port): until
 * attached, leases are refused UNAVAILABLE and the rest answer empty. */
void nm_service_attach_workers(nm_service_t *svc, pool_t *pool, lease_mgr_t *leases, osub_t *osub);
/* Spilling's books (spilled bytes in GetNodeStats, pins to track). */
void nm_service_attach_spill(nm_service_t *svc, spill_t *spill);
/* The causes of workers killed for memory, for GetWorkerFailureCause. */
void nm_service_attach_mem_monitor(nm_service_t *svc, mem_monitor_t *mem);
void nm_service_attach_agents(nm_service_t *svc, agent_t *dashboard_agent, agent_t *runtime_env_agent);
/* Answer every call still pending (UNAVAILABLE) and silence its channels;
 * no service callback runs afterwards.  Idempotent. */
void nm_service_stop(nm_service_t *svc);
void nm_service_destroy(nm_service_t *svc);

#endif
