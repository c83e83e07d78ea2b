/* Internal state shared by the raylet/ modules that make up the daemon
 * (raylet.c: lifecycle; nm_service.c: NodeManagerService).  Nothing outside
 * raylet/ includes this. */
#ifndef CRAYLET_RAYLET_RAYLET_INT_H
#define CRAYLET_RAYLET_RAYLET_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/cq_bridge.h"
#include "common/list.h"
#include "common/listen.h"
#include "common/loop.h"
#include "common/rpc.h"
#include "gcs_client/gcs_client.h"
#include "gcs_client/pubsub.h"
#include "gcs_client/syncer.h"
#include "raylet/worker/agent.h"
#include "raylet/worker/child_output.h"
#include "raylet/sched/bundles.h"
#include "raylet/config.h"
#include "raylet/flags.h"
#include "raylet/cluster/peers.h"
#include "raylet/sched/lease_mgr.h"
#include "raylet/service/leases.h"
#include "raylet/objects/obj_wait.h"
#include "raylet/objects/owner_sub.h"
#include "raylet/worker/renv_client.h"
#include "raylet/worker/pool.h"
#include "object_store/store.h"
#include "raylet/sched/resources.h"

/* A NodeManagerService call answered later (service/node_manager.c). */
typedef struct nm_pending {
    list_t node;
    void (*cancel)(struct nm_pending *p); /* answer UNAVAILABLE, silence, free */
} nm_pending_t;

typedef enum {
    RAYLET_FETCHING_CONFIG,
    RAYLET_WAITING_AGENTS,
    RAYLET_REGISTERING,
    RAYLET_RUNNING,
    RAYLET_STOPPING,
} raylet_state_t;

/* A job this node has heard of: its config is what workers for it need. */
typedef struct raylet_job {
    uint8_t id[ID_JOB_SIZE];
    uint8_t *config; /* serialized rpc::JobConfig, owned */
    size_t config_len;
    bool finished;
} raylet_job_t;

struct raylet {
    flags_t flags;
    config_t config;
    loop_t *loop;
    cq_bridge_t *bridge;
    gcs_client_t *gcs;
    rpc_server_t *server;        /* NodeManagerService + health, on node_manager_port */
    rpc_server_t *object_server; /* ObjectManagerService's port (methods come later) */
    gcs_sub_t *sub;
    syncer_t *syncer;
    agent_t *dashboard_agent;
    agent_t *runtime_env_agent;
    res_node_t *resources;
    pool_t *pool;
    lease_mgr_t *leases;
    bundles_t *bundles;
    renv_client_t *renv; /* the runtime-env agent, once its port is known */
    owait_t *owait;
    osub_t *osub; /* owners of the primary copies pinned here */
    store_t *store;
    raylet_job_t *jobs;
    size_t job_count, job_cap;

    bool grpc_started;
    bool first_driver_seen; /* workers are prestarted for the first one */
    raylet_state_t state;
    int exit_code;
    uint8_t node_id[ID_UNIQUE_SIZE];
    char node_hex[57];

    int node_manager_port;
    int object_manager_port;
    int metrics_agent_port;
    int metrics_export_port;
    int runtime_env_agent_port;
    int dashboard_agent_listen_port;

    listener_t *raylet_listener; /* --raylet_socket_name */
    child_output_t *child_output; /* children's fd 1/2, copied into ours; NULL: they inherit ours */

    uint64_t start_wall_ms;
    uint64_t idle_since_ms; /* loop time the node last became idle */
    uint64_t port_wait_deadline;
    uint64_t port_timer;
    uint64_t check_alive_timer;
    uint64_t stop_timer;
    uint64_t debug_dump_timer; /* debug_dump.c */
    bool debug_dump_failed;    /* the last write failed (logged once) */

    peers_t *peers; /* the other nodes */

    list_t nm_pending;            /* nm_pending_t: calls answered later */
    list_t wsock_clients;         /* worker_sock.c: every raylet-socket connection */
    svc_lease_node_t lease_node;  /* this node, as lease replies name it */
};

/* The worker socket (worker_sock.c): accept a connection. */
void wsock_accept(struct raylet *r, int fd, pid_t peer_pid);
/* Close every connection now, cancel their waits, no callbacks after. */
void wsock_stop(struct raylet *r);
/* A worker record is about to be freed: detach its connection state. */
void wsock_worker_dead(struct raylet *r, worker_t *w);

/* rpc::Address of a worker on this node; `out` borrows from r and w. */
void raylet_worker_address(const struct raylet *r, const worker_t *w, Ray__Rpc__Address *out);

/* Jobs (raylet.c). */
raylet_job_t *raylet_job_find(struct raylet *r, const uint8_t id[ID_JOB_SIZE]);
raylet_job_t *raylet_job_add(struct raylet *r, const uint8_t id[ID_JOB_SIZE], const uint8_t *config,
                             size_t config_len);
void raylet_job_finished(struct raylet *r, const uint8_t id[ID_JOB_SIZE]);

/* Publish an error to a job's driver through GCS (ReportJobError); the
 * strings are copied.  Failures are logged. */
void raylet_report_job_error(struct raylet *r, const uint8_t *job_id, size_t job_id_len, const char *type,
                             const char *message, double timestamp_ms);

/* Register every NodeManagerService / health method on r->server. */
int nm_service_register(struct raylet *r);
/* Answer every call still pending (UNAVAILABLE) and silence its channels;
 * no service callback runs afterwards. */
void nm_service_stop(struct raylet *r);

/* Begin an orderly shutdown: unregister from GCS when `unregister`, then
 * stop the loop.  `exit_code` becomes raylet_run()'s result.  Idempotent. */
void raylet_shutdown(struct raylet *r, int exit_code, bool unregister, int death_reason,
                     const char *message);

#endif
