#include "raylet/node.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grpc/grpc.h>

#include "common/alloc.h"
#include "common/auth_token.h"
#include "common/cq_bridge.h"
#include "common/error.h"
#include "common/id.h"
#include "common/list.h"
#include "common/listen.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/ray_event.h"
#include "common/rpc.h"
#include "gcs_client/gcs_client.h"
#include "gcs_client/pubsub.h"
#include "gcs_client/syncer.h"
#include "object_store/store.h"
#include "raylet/cluster/drain.h"
#include "raylet/cluster/peers.h"
#include "raylet/config.h"
#include "raylet/debug_dump.h"
#include "raylet/sched/gpu_gang.h"
#include "raylet/flags.h"
#include "raylet/objects/channels.h"
#include "raylet/objects/lease_args.h"
#include "raylet/objects/obj_wait.h"
#include "raylet/objects/owner_sub.h"
#include "raylet/objects/spill.h"
#include "raylet/objects/fs_monitor.h"
#include "raylet/metrics/metrics.h"
#include "raylet/metrics/node_metrics.h"
#include "proto/gen/ray_version.h"
#include "raylet/sched/bundles.h"
#include "raylet/sched/lease_mgr.h"
#include "raylet/sched/mem_monitor.h"
#include "raylet/sched/resources.h"
#include "raylet/service/node_manager.h"
#include "raylet/worker/agent.h"
#include "raylet/worker/child_output.h"
#include "raylet/worker/jobs.h"
#include "raylet/worker/pool.h"
#include "raylet/worker/renv_client.h"
#include "raylet/worker/worker_sock.h"
#include "raylet/objects/transfer.h"
#include "raylet/service/object_manager.h"

typedef enum {
    RAYLET_FETCHING_CONFIG,
    RAYLET_WAITING_AGENTS,
    RAYLET_REGISTERING,
    RAYLET_RUNNING,
    RAYLET_STOPPING,
} raylet_state_t;

/* The node: every component, built in dependency order and stopped in
 * reverse.  No other file sees this struct; components get the handles
 * they need at creation and reach the node only through callbacks. */
struct raylet {
    flags_t flags;
    config_t config;
    loop_t *loop;
    cq_bridge_t *bridge;
    gcs_client_t *gcs;
    rpc_server_t *server;        /* NodeManagerService + health, on node_manager_port */
    rpc_server_t *object_server; /* ObjectManagerService, on object_manager_port */
    nm_service_t *service;       /* NodeManagerService on `server` */
    om_service_t *om_service;    /* ObjectManagerService on `object_server` */
    xfer_t *xfer;                /* objects between nodes, once serving */
    largs_t *largs;              /* leases' arguments on their way here */
    gcs_sub_t *sub;
    syncer_t *syncer;
    agent_t *dashboard_agent;
    agent_t *runtime_env_agent;
    res_node_t *resources;
    bundles_t *bundles;
    gpu_gang_t *gang;     /* GPU packing; NULL without a GPU graph */
    bool cpu_affinity;    /* bind GPU leases to their GPUs' cores */
    gpu_cpuset_t own_cpus; /* the CPUs this daemon may use */
    bool numa_absent_logged; /* said once that the GPUs' NUMA node is not here */
    peers_t *peers;       /* the other nodes */
    jobs_t *jobs;
    pool_t *pool;         /* once the NodeManagerService port is known */
    lease_mgr_t *leases;  /* with the pool */
    mem_monitor_t *mem;   /* with the leases */
    wsock_t *wsock;       /* the raylet socket's connections, with the pool */
    renv_client_t *renv;  /* the runtime-env agent, once its port is known */
    owait_t *owait;
    osub_t *osub;         /* owners of the primary copies pinned here */
    spill_t *spill;       /* primaries to and from external storage */
    chan_set_t *channels; /* compiled graphs' channels written from other nodes */
    fs_monitor_t *fs_monitor; /* is the disk too full for objects? once configured */
    ray_event_log_t *events;  /* <log_dir>/events/event_RAYLET.log; NULL without a log dir */
    metrics_t *metrics;   /* exports to the dashboard agent; NULL when off */
    store_t *store;
    listener_t *raylet_listener;  /* --raylet_socket_name */
    child_output_t *child_output; /* children's fd 1/2, copied into ours; NULL: they inherit ours */
    debug_dump_t *debug_dump;     /* debug_state.txt, once registered */

    bool grpc_started;
    bool view_urgent; /* report resources to GCS before sleeping */
    drain_t drain;    /* accepted DrainRaylet: exit once idle */
    raylet_state_t state;
    int exit_code;
    uint8_t node_id[ID_UNIQUE_SIZE];
    char node_hex[ID_UNIQUE_SIZE * 2 + 1];

    int node_manager_port;
    int object_manager_port;
    int metrics_agent_port;
    int metrics_export_port;
    int runtime_env_agent_port;
    int dashboard_agent_listen_port;

    uint64_t start_wall_ms;
    uint64_t idle_since_ms; /* loop time the leases last went to none */
    bool store_in_use;             /* the store holds bytes the view counts */
    uint64_t store_idle_since_ms;  /* loop time it last held none */
    uint64_t port_wait_deadline;
    uint64_t port_timer;
    uint64_t check_alive_timer;
    uint64_t stop_timer;
};

/* Begin an orderly shutdown: unregister from GCS when `unregister`, then
 * stop the loop.  `exit_code` becomes raylet_run()'s result.  Idempotent. */
static void raylet_shutdown(struct raylet *r, int exit_code, bool unregister, int death_reason,
                            const char *message);

#define RAYLET_PORT_POLL_MS 50
#define RAYLET_UNREGISTER_WAIT_MS 3000
#define RAYLET_AGENT_GRACE_MS 2000

static uint64_t raylet_wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* ---- the raylet socket ---------------------------------------------------- */

static void raylet_on_unix_accept(void *ctx, int fd, uid_t uid, pid_t pid)
{
    struct raylet *r = ctx;
    if (!r->wsock || r->state == RAYLET_STOPPING) {
        close(fd); /* not serving workers yet, or any more */
        return;
    }
    wsock_accept(r->wsock, fd, pid);
}

/* ---- jobs ------------------------------------------------------------------ */

static void raylet_job_finished(struct raylet *r, const uint8_t id[ID_JOB_SIZE])
{
    if (!jobs_finish(r->jobs, id))
        return;
    char hex[ID_HEX_BUF];
    log_info("job %s finished; stopping its workers", id_to_hex(id, ID_JOB_SIZE, hex));
    if (r->pool)
        pool_kill_job(r->pool, id);
}

static void raylet_on_gcs_reply_logged(void *ctx, int err, const char *message, ProtobufCMessage *reply)
{
    if (err && err != CR_ECLOSED)
        log_warn("%s: %s", (const char *)ctx, message);
}

/* A worker that dies of a system error while holding a lease or an actor:
 * its driver hears of it (the "worker_died" error ray prints), as from
 * the stock raylet. */
static void raylet_report_worker_died(struct raylet *r, const worker_t *w, const char *detail)
{
    char msg[1024];
    snprintf(msg, sizeof msg,
             "A worker died or was killed while executing a task by an unexpected system error. "
             "To troubleshoot the problem, check the logs for the dead worker. Worker ID: %s Node ID: %s "
             "Worker IP address: %s Worker port: %d Worker PID: %d Worker exit type: SYSTEM_ERROR "
             "Worker exit detail: %s",
             worker_id_hex(w), r->node_hex, r->flags.node_ip_address ? r->flags.node_ip_address : "", worker_port(w),
             (int)worker_spawned_pid(w), detail ? detail : "");
    gcs_report_job_error(r->gcs, worker_job_id(w), ID_JOB_SIZE, "worker_died", msg, (double)raylet_wall_ms());
}

/* A worker or driver anywhere in the cluster is gone: leases it asked for
 * here, primaries pinned here for it and the locations we followed on it
 * have nobody left to want them. */
static void raylet_owner_gone(struct raylet *r, const uint8_t worker[ID_UNIQUE_SIZE])
{
    lease_mgr_owner_died(r->leases, worker);
    if (r->osub)
        osub_owner_died(r->osub, worker);
    if (r->xfer)
        xfer_worker_died(r->xfer, (const id_worker_t *)worker);
}

static void raylet_on_worker_dead(void *ctx, worker_t *w, const worker_exit_t *exit)
{
    struct raylet *r = ctx;
    int exit_type = exit->type;
    const char *detail = exit->detail;
    if (worker_type(w) == WORKER_TYPE_WORKER && (lease_mgr_worker_leased(r->leases, w) || worker_is_actor(w) || worker_failed_while_leased(w)) &&
        exit_type == RAY__RPC__WORKER_EXIT_TYPE__SYSTEM_ERROR && r->state == RAYLET_RUNNING)
        raylet_report_worker_died(r, w, detail);
    lease_mgr_worker_dead(r->leases, w);
    wsock_worker_dead(r->wsock, w);
    /* Leases it asked for here can never be returned by it, and what it
     * owned and pinned here has no owner left (GCS would tell us too,
     * later, and not for drivers). */
    raylet_owner_gone(r, worker_id(w));
    spill_worker_died(r->spill, w);
    if (worker_type(w) == WORKER_TYPE_SPILL || worker_type(w) == WORKER_TYPE_RESTORE)
        return; /* no job, no actor: nothing for GCS */
    if (worker_type(w) == WORKER_TYPE_DRIVER) {
        gcs_mark_job_finished(r->gcs, worker_job_id(w), raylet_on_gcs_reply_logged, "MarkJobFinished");
        raylet_job_finished(r, worker_job_id(w));
        return;
    }
    if (worker_state(w) == WORKER_STARTING && !detail)
        return;
    Ray__Rpc__WorkerTableData data = RAY__RPC__WORKER_TABLE_DATA__INIT;
    Ray__Rpc__Address addr;
    worker_rpc_address(w, r->node_id, r->flags.node_ip_address, &addr);
    data.worker_address = &addr;
    data.is_alive = false;
    data.timestamp = (int64_t)raylet_wall_ms();
    data.end_time_ms = raylet_wall_ms();
    data.worker_type = (Ray__Rpc__WorkerType)worker_type(w);
    data.pid = worker_pid(w) > 0 ? (uint32_t)worker_pid(w) : 0;
    data._exit_type_case = RAY__RPC__WORKER_TABLE_DATA___EXIT_TYPE_EXIT_TYPE;
    data.exit_type = exit_type;
    data._exit_detail_case = RAY__RPC__WORKER_TABLE_DATA___EXIT_DETAIL_EXIT_DETAIL;
    data.exit_detail = (char *)(detail ? detail : "");
#if CRAYLET_RAY_WORKER_TABLE_JOB_ID
    if (!id_is_nil(worker_job_id(w), ID_JOB_SIZE)) {
        data.job_id.data = (uint8_t *)worker_job_id(w);
        data.job_id.len = ID_JOB_SIZE;
    }
#endif
    /* The constructor's exception goes to GCS as the worker sent it: GCS
     * then records the actor as failed in its creation task (no restart,
     * `actor_init_failed` for callers) rather than as a dead worker. */
    Ray__Rpc__RayException *creation_exception = NULL;
    if (exit->creation_exception_len) {
        creation_exception = ray__rpc__ray_exception__unpack(NULL, exit->creation_exception_len,
                                                             exit->creation_exception);
        if (!creation_exception)
            log_warn("worker %d: its creation task exception is not a RayException; reported without it",
                     (int)worker_pid(w));
    }
    data.creation_task_exception = creation_exception;
    Ray__Rpc__ReportWorkerFailureRequest req = RAY__RPC__REPORT_WORKER_FAILURE_REQUEST__INIT;
    req.worker_failure = &data;
    gcs_report_worker_failure(r->gcs, &req, raylet_on_gcs_reply_logged, "ReportWorkerFailure");
    if (creation_exception)
        ray__rpc__ray_exception__free_unpacked(creation_exception, NULL);
}

/* Spillback target: a live node whose resources fit (now, if asked). */
static bool raylet_pick_remote(void *ctx, const res_set_t *request, bool need_available, lease_remote_t *out)
{
    struct raylet *r = ctx;
    return peers_pick(r->peers, request, need_available, out);
}

static bool raylet_pick_node(void *ctx, const uint8_t node_id[ID_UNIQUE_SIZE], const res_set_t *request,
                             bool need_available, lease_remote_t *out)
{
    struct raylet *r = ctx;
    return peers_pick_node(r->peers, node_id, request, need_available, out);
}

/* A GPU lease runs on the cores nearest its GPUs: bind the worker to them
 * (sched_setaffinity on every thread) until the lease ends.  New memory
 * follows by first touch on those cores; the pages it touched before are
 * moved to its GPUs' NUMA node once (common/numa.h). */
static void raylet_on_lease_granted(void *ctx, worker_t *w, const res_alloc_t *alloc)
{
    struct raylet *r = ctx;
    if (!r->gang || !r->cpu_affinity)
        return;
    uint32_t ids[GPU_TOPO_MAX_GPUS];
    size_t n = 0;
    for (size_t i = 0; i < res_alloc_count(alloc); i++) {
        res_grant_t g;
        res_alloc_at(alloc, i, &g);
        if (strcmp(g.name, "GPU") != 0 && strncmp(g.name, "GPU_group_", 10) != 0)
            continue;
        for (size_t k = 0; k < g.instance_count && n < GPU_TOPO_MAX_GPUS; k++)
            if (g.instance_amounts[k] > 0)
                ids[n++] = g.instance_ids[k];
    }
    if (n == 0)
        return;
    gpu_cpuset_t near;
    if (!gpu_gang_cpus(r->gang, ids, n, &r->own_cpus, &near))
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    for (unsigned c = 0; c < GPU_TOPO_MAX_CPUS && c < CPU_SETSIZE; c++)
        if (gpu_cpuset_has(&near, c))
            CPU_SET(c, &set);
    int rc = pool_bind_cpus(r->pool, w, &set);
    if (rc != 0) {
        log_warn("cannot bind worker %s to the cores of its GPUs: %s", worker_id_hex(w), cr_strerror(rc));
        return;
    }
    int node = gpu_gang_numa_node(r->gang, ids, n);
    if (node < 0)
        return;
    rc = pool_move_memory(r->pool, w, (unsigned)node);
    if (rc == -ENODEV && !r->numa_absent_logged) {
        /* A topology file describing another machine: nothing to move to. */
        log_info("GPU NUMA node %d has no memory on this machine; worker memory is left in place", node);
        r->numa_absent_logged = true;
    } else if (rc != 0 && rc != -ENODEV) {
        log_warn("cannot move worker %s's memory to NUMA node %d: %s", worker_id_hex(w), node, cr_strerror(rc));
    }
}

/* A queued lease's arguments, fetched before it is granted. */
static bool raylet_args_fetch(void *ctx, uint64_t token, const id_object_t *ids, const ray_addr_t *owners, size_t n)
{
    struct raylet *r = ctx;
    return largs_fetch(r->largs, token, ids, owners, n);
}

static void raylet_args_cancel(void *ctx, uint64_t token)
{
    struct raylet *r = ctx;
    largs_cancel(r->largs, token);
}

static void raylet_on_args_local(void *ctx, uint64_t token)
{
    struct raylet *r = ctx;
    lease_mgr_args_ready(r->leases, token);
}

static void raylet_on_lease_returned(void *ctx, worker_t *w)
{
    struct raylet *r = ctx;
    wsock_lease_returned(r->wsock, w);
}

static void raylet_on_busy_changed(void *ctx, bool busy)
{
    struct raylet *r = ctx;
    if (!busy)
        r->idle_since_ms = loop_now_ms(r->loop);
}

static bool raylet_store_contains(void *ctx, const uint8_t oid[ID_OBJECT_SIZE])
{
    struct raylet *r = ctx;
    return store_contains(r->store, (const id_object_t *)oid);
}

/* An owner let go of a primary copy (or died): unpin it and let the store
 * delete it once no client holds it. */
static void raylet_on_primary_released(void *ctx, const uint8_t oid[ID_OBJECT_SIZE])
{
    struct raylet *r = ctx;
    /* Every pin here came from this owner's PinObjectIDs: drop them all. */
    while (store_unpin(r->store, (const id_object_t *)oid) == 0)
        ;
    spill_release(r->spill, (const id_object_t *)oid);
    store_free(r->store, (const id_object_t *)oid);
#if !CRAYLET_RAY_FREE_LOCAL_OBJECTS
    /* Copies pulled elsewhere go too (from 2.60 on, owners free each). */
    if (r->xfer)
        xfer_free_everywhere(r->xfer, (const id_object_t *)oid);
#endif
}

static void raylet_on_object_sealed(void *ctx, const store_object_info_t *info)
{
    struct raylet *r = ctx;
    if (r->xfer)
        xfer_on_sealed(r->xfer, info);
    owait_on_sealed(r->owait, info->id.b);
    spill_on_sealed(r->spill);
}

/* ---- spilling --------------------------------------------------------------- */

static bool raylet_on_store_full(void *ctx, uint64_t bytes_needed)
{
    struct raylet *r = ctx;
    return spill_on_store_full(r->spill, bytes_needed);
}

static bool raylet_on_disk_check(void *ctx)
{
    struct raylet *r = ctx;
    return fs_monitor_over_capacity(r->fs_monitor, loop_now_ms(r->loop));
}

static void raylet_on_spilled(void *ctx, const id_object_t *oid, const ray_addr_t *owner, const char *url)
{
    struct raylet *r = ctx;
    if (r->xfer)
        xfer_on_spilled(r->xfer, owner, oid, url);
}

static int raylet_restore(void *ctx, const id_object_t *oid)
{
    struct raylet *r = ctx;
    return spill_restore(r->spill, oid);
}

static void raylet_on_io_ready(void *ctx, worker_type_t type)
{
    struct raylet *r = ctx;
    spill_io_ready(r->spill, type);
}

static void raylet_on_object_deleted(void *ctx, const id_object_t *id)
{
    struct raylet *r = ctx;
    if (r->xfer)
        xfer_on_deleted(r->xfer, id);
}

/* ---- registration --------------------------------------------------------- */

static void raylet_on_check_alive_timer(loop_t *loop, uint64_t id, void *data);

static void raylet_on_check_alive(void *ctx, int err, const char *message, ProtobufCMessage *reply)
{
    struct raylet *r = ctx;
    if (r->state != RAYLET_RUNNING)
        return;
    if (err == 0) {
        const Ray__Rpc__CheckAliveReply *a = (const Ray__Rpc__CheckAliveReply *)reply;
        if (a->n_raylet_alive >= 1 && !a->raylet_alive[0]) {
            log_error("GCS reports this node dead; exiting");
            raylet_shutdown(r, 1, false, 0, NULL);
            return;
        }
    } else if (err == CR_EAUTH) {
        /* A GCS that restarted without its storage has a new cluster id and
         * refuses ours: this node belongs to a cluster that no longer exists. */
        log_error("GCS refused this node's liveness check (%s): it restarted without "
                  "persistent storage or lost its data; exiting", message);
        raylet_shutdown(r, 1, false, 0, NULL);
        return;
    } else {
        log_warn("liveness self-check failed: %s", message);
    }
    r->check_alive_timer = loop_add_timer(r->loop, (uint64_t)r->config.raylet_liveness_self_check_interval_ms,
                                          raylet_on_check_alive_timer, r);
}

static void raylet_on_check_alive_timer(loop_t *loop, uint64_t id, void *data)
{
    struct raylet *r = data;
    r->check_alive_timer = 0;
    if (gcs_check_alive(r->gcs, r->node_id, raylet_on_check_alive, r) != 0)
        raylet_on_check_alive(r, CR_ERPC, "cannot start CheckAlive", NULL);
}

static void raylet_on_liveness(struct raylet *r, const Ray__Rpc__GcsNodeAddressAndLiveness *n)
{
    if (!n || n->node_id.len != ID_UNIQUE_SIZE)
        return;
    bool self = memcmp(n->node_id.data, r->node_id, ID_UNIQUE_SIZE) == 0;
    if (n->state == RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD) {
        if (self && r->state == RAYLET_RUNNING) {
            log_error("GCS marked this node dead; exiting");
            raylet_shutdown(r, 1, false, 0, NULL);
        } else if (!self) {
            char hex[ID_HEX_BUF];
            if (peers_remove(r->peers, n->node_id.data))
                log_info("node %s left the cluster", id_to_hex(n->node_id.data, ID_UNIQUE_SIZE, hex));
            /* Its workers owned objects pinned here and leases: nobody can
             * ask for the one or return the other. */
            if (r->osub)
                osub_node_died(r->osub, n->node_id.data);
            lease_mgr_owner_node_died(r->leases, n->node_id.data);
            if (r->xfer)
                xfer_node_removed(r->xfer, (const id_node_t *)n->node_id.data);
        }
    } else if (!self && peers_seen(r->peers, n->node_id.data, n->node_manager_address, n->node_manager_port,
                                     n->object_manager_port)) {
        char hex[ID_HEX_BUF];
        log_info("node %s at %s:%d is alive", id_to_hex(n->node_id.data, ID_UNIQUE_SIZE, hex),
                 n->node_manager_address ? n->node_manager_address : "", n->node_manager_port);
        /* Its resources may have arrived first: a queued lease can spill now. */
        lease_mgr_mark_dirty(r->leases);
    }
}

static void raylet_on_pub_message(void *ctx, const Ray__Rpc__PubMessage *m)
{
    struct raylet *r = ctx;
    if (m->inner_message_case == RAY__RPC__PUB_MESSAGE__INNER_MESSAGE_NODE_ADDRESS_AND_LIVENESS_MESSAGE) {
        raylet_on_liveness(r, m->node_address_and_liveness_message);
    } else if (m->inner_message_case == RAY__RPC__PUB_MESSAGE__INNER_MESSAGE_JOB_MESSAGE && m->job_message &&
               m->job_message->job_id.len == ID_JOB_SIZE) {
        if (m->job_message->is_dead) {
            raylet_job_finished(r, m->job_message->job_id.data);
            /* Its driver is gone: what it owned here (primaries pinned for
             * it, leases it asked for) has nobody left to ask for it. */
            const Ray__Rpc__Address *d = m->job_message->driver_address;
            if (d && d->worker_id.len == ID_UNIQUE_SIZE)
                raylet_owner_gone(r, d->worker_id.data);
        } else
            jobs_add(r->jobs, m->job_message->job_id.data, NULL, 0);
    } else if (m->inner_message_case == RAY__RPC__PUB_MESSAGE__INNER_MESSAGE_WORKER_DELTA_MESSAGE &&
               m->worker_delta_message && m->worker_delta_message->worker_id.len == ID_UNIQUE_SIZE) {
        /* A worker died somewhere in the cluster: release what it owned. */
        raylet_owner_gone(r, m->worker_delta_message->worker_id.data);
    }
}

static void raylet_on_node_snapshot(void *ctx, int err, const char *message, ProtobufCMessage *reply)
{
    struct raylet *r = ctx;
    if (err) {
        if (err != CR_ECLOSED)
            log_warn("cannot list the cluster's nodes: %s", message);
        return;
    }
    const Ray__Rpc__GetAllNodeAddressAndLivenessReply *a = (const Ray__Rpc__GetAllNodeAddressAndLivenessReply *)reply;
    for (size_t i = 0; i < a->n_node_info_list; i++)
        raylet_on_liveness(r, a->node_info_list[i]);
}

/* After each (re)subscription: a snapshot of the nodes, so that nodes which
 * joined before we subscribed are known too. */
static void raylet_on_subscribed(void *ctx)
{
    struct raylet *r = ctx;
    gcs_get_all_node_liveness(r->gcs, raylet_on_node_snapshot, r);
}

/* Object store memory is measured, not allocated: before each view the
 * store's use is read and object_store_memory's availability set from it.
 * By default only primary copies count (a node holding nothing but
 * evictable secondary copies may be scaled down); with
 * scheduler_report_pinned_bytes_only off, every byte in the store does. */
static void raylet_refresh_store_use(struct raylet *r)
{
    res_amount_t total = res_node_total(r->resources, "object_store_memory");
    if (total <= 0)
        return;
    store_stats_t st;
    store_get_stats(r->store, &st);
    uint64_t used = r->config.scheduler_report_pinned_bytes_only ? st.bytes_pinned : st.bytes_used;
    res_amount_t used_amount;
    if (res_amount_from_double((double)used, &used_amount) != 0)
        used_amount = total;
    uint64_t before = res_node_version(r->resources);
    res_node_set_available(r->resources, "object_store_memory", total - used_amount);
    if (res_node_version(r->resources) == before)
        return;
    bool in_use = used > 0;
    if (r->store_in_use && !in_use)
        r->store_idle_since_ms = loop_now_ms(r->loop);
    r->store_in_use = in_use;
}

/* How long the node has been idle, 0 when it is not: no lease holds
 * resources and the store holds nothing the view counts, since the later
 * of the two went quiet (as the stock raylet, which takes the latest idle
 * time over its resources).  The autoscaler terminates idle nodes, so a
 * busy node must never read as idle. */
static uint64_t raylet_idle_ms(struct raylet *r)
{
    if ((r->leases && lease_mgr_granted(r->leases) > 0) || r->store_in_use)
        return 0;
    uint64_t since = r->idle_since_ms > r->store_idle_since_ms ? r->idle_since_ms : r->store_idle_since_ms;
    uint64_t now = loop_now_ms(r->loop);
    return now > since ? now - since : 1; /* idle is reported as at least 1 ms */
}

/* RaySyncer: our view out, the others' in. */

static uint64_t raylet_view_version(void *ctx)
{
    struct raylet *r = ctx;
    raylet_refresh_store_use(r);
    /* Draining only ever turns on: adding it keeps the version rising. */
    return res_node_version(r->resources) + (r->drain.active ? 1 : 0);
}

static void raylet_fill_view(void *ctx, Ray__Rpc__Syncer__ResourceViewSyncMessage *v)
{
    struct raylet *r = ctx;
    size_t n = res_node_count(r->resources);
    Ray__Rpc__Syncer__ResourceViewSyncMessage__ResourcesAvailableEntry *avail = xcalloc(n, sizeof *avail);
    Ray__Rpc__Syncer__ResourceViewSyncMessage__ResourcesTotalEntry *total = xcalloc(n, sizeof *total);
    v->resources_available = xcalloc(n, sizeof *v->resources_available);
    v->resources_total = xcalloc(n, sizeof *v->resources_total);
    for (size_t i = 0; i < n; i++) {
        res_entry_t e;
        res_node_entry_at(r->resources, i, &e);
        ray__rpc__syncer__resource_view_sync_message__resources_available_entry__init(&avail[i]);
        ray__rpc__syncer__resource_view_sync_message__resources_total_entry__init(&total[i]);
        avail[i].key = total[i].key = (char *)e.name;
        avail[i].value = res_amount_to_double(e.available);
        total[i].value = res_amount_to_double(e.total);
        v->resources_available[i] = &avail[i];
        v->resources_total[i] = &total[i];
    }
    v->n_resources_available = v->n_resources_total = n;
    v->idle_duration_ms = (int64_t)raylet_idle_ms(r);
    v->is_draining = r->drain.active;
    v->draining_deadline_timestamp_ms = r->drain.active ? r->drain.deadline_ms : 0;
    size_t nl = r->flags.label_count + 1;
    Ray__Rpc__Syncer__ResourceViewSyncMessage__LabelsEntry *labels = xcalloc(nl, sizeof *labels);
    v->labels = xcalloc(nl, sizeof *v->labels);
    for (size_t i = 0; i < nl; i++) {
        ray__rpc__syncer__resource_view_sync_message__labels_entry__init(&labels[i]);
        if (i < r->flags.label_count) {
            labels[i].key = r->flags.labels[i].key;
            labels[i].value = r->flags.labels[i].value;
        } else {
            labels[i].key = "ray.io/node-id";
            labels[i].value = r->node_hex;
        }
        v->labels[i] = &labels[i];
    }
    v->n_labels = nl;
}

static void raylet_release_view(void *ctx, Ray__Rpc__Syncer__ResourceViewSyncMessage *v)
{
    if (v->n_resources_available)
        free(v->resources_available[0]);
    if (v->n_resources_total)
        free(v->resources_total[0]);
    if (v->n_labels)
        free(v->labels[0]);
    free(v->resources_available);
    free(v->resources_total);
    free(v->labels);
}

static void raylet_on_remote_view(void *ctx, const uint8_t node_id[ID_UNIQUE_SIZE],
                                  const Ray__Rpc__Syncer__ResourceViewSyncMessage *v)
{
    struct raylet *r = ctx;
    res_set_t *total = res_set_create();
    res_set_t *available = res_set_create();
    for (size_t i = 0; i < v->n_resources_total; i++) {
        res_amount_t a;
        if (v->resources_total[i]->key && res_amount_from_double(v->resources_total[i]->value, &a) == 0)
            res_set_put(total, v->resources_total[i]->key, a);
    }
    for (size_t i = 0; i < v->n_resources_available; i++) {
        res_amount_t a;
        if (v->resources_available[i]->key && res_amount_from_double(v->resources_available[i]->value, &a) == 0)
            res_set_put(available, v->resources_available[i]->key, a);
    }
    peers_update_view(r->peers, node_id, total, available, v->is_draining);
    res_set_destroy(total);
    res_set_destroy(available);
    /* Another node's resources changed: a queued lease may spill there. */
    lease_mgr_mark_dirty(r->leases);
}

static void raylet_on_registered(void *ctx, int err, const char *message, ProtobufCMessage *reply)
{
    struct raylet *r = ctx;
    if (r->state != RAYLET_REGISTERING)
        return;
    if (err) {
        log_error("cannot register this node with GCS: %s", message);
        raylet_shutdown(r, 1, false, 0, NULL);
        return;
    }
    r->state = RAYLET_RUNNING;
    log_info("node %s registered with GCS at %s (node manager port %d, object manager port %d)",
             r->node_hex, r->flags.gcs_address, r->node_manager_port, r->object_manager_port);

    static const int channels[] = {
        RAY__RPC__CHANNEL_TYPE__GCS_NODE_ADDRESS_AND_LIVENESS_CHANNEL,
        RAY__RPC__CHANNEL_TYPE__GCS_WORKER_DELTA_CHANNEL,
        RAY__RPC__CHANNEL_TYPE__GCS_JOB_CHANNEL,
    };
    r->sub = gcs_sub_create(r->loop, r->gcs, channels, 3, raylet_on_pub_message, raylet_on_subscribed, r);
    static const syncer_callbacks_t cbs = {
        .local_version = raylet_view_version,
        .fill_view = raylet_fill_view,
        .release_view = raylet_release_view,
        .on_remote_view = raylet_on_remote_view,
    };
    r->syncer = syncer_create(r->loop, r->gcs, r->node_id,
                              (uint64_t)r->config.raylet_report_resources_period_milliseconds, &cbs, r);
    debug_dump_sources_t dsrc = {
        .node_hex = r->node_hex,
        .node_ip_address = r->flags.node_ip_address,
        .node_manager_port = r->node_manager_port,
        .start_wall_ms = r->start_wall_ms,
        .resources = r->resources,
        .bundles = r->bundles,
        .gang = r->gang,
        .owait = r->owait,
        .store = r->store,
        .jobs = r->jobs,
        .pool = r->pool,
        .leases = r->leases,
        .syncer = r->syncer,
        .xfer = r->xfer,
        .largs = r->largs,
        .channels = r->channels,
    };
    r->debug_dump = debug_dump_create(r->loop, r->flags.log_dir,
                                      r->config.debug_dump_period_milliseconds > 0
                                          ? (uint64_t)r->config.debug_dump_period_milliseconds
                                          : 0,
                                      &dsrc);
    r->check_alive_timer = loop_add_timer(r->loop, (uint64_t)r->config.raylet_liveness_self_check_interval_ms,
                                          raylet_on_check_alive_timer, r);
}

/* One export's worth of the node (raylet/metrics/node_metrics.h). */
static void raylet_collect_metrics(void *ctx, otlp_export_t *e)
{
    struct raylet *r = ctx;
    node_metrics_sources_t src = {
        .resources = r->resources,
        .store = r->store,
        .spill = r->spill,
        .pool = r->pool,
        .leases = r->leases,
        .gang = r->gang,
        .mem = r->mem,
    };
    node_metrics_collect(&src, e);
}

static void raylet_register(struct raylet *r)
{
    r->state = RAYLET_REGISTERING;
    metrics_start(r->metrics, r->metrics_agent_port);
    r->renv = renv_client_create(r->loop, r->flags.node_ip_address, r->runtime_env_agent_port, 0,
                                 cq_bridge_authorization(r->bridge));
    pool_set_renv(r->pool, r->renv);
    Ray__Rpc__GcsNodeInfo info = RAY__RPC__GCS_NODE_INFO__INIT;
    info.node_id.data = r->node_id;
    info.node_id.len = ID_UNIQUE_SIZE;
    info.node_manager_address = r->flags.node_ip_address;
    info.raylet_socket_name = r->flags.raylet_socket_name;
    info.object_store_socket_name = r->flags.store_socket_name;
    info.node_manager_port = r->node_manager_port;
    info.object_manager_port = r->object_manager_port;
    info.state = RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE;
    char hostname[256] = "";
    gethostname(hostname, sizeof hostname - 1);
    info.node_manager_hostname = hostname;
    info.metrics_export_port = r->metrics_export_port;
    info.runtime_env_agent_port = r->runtime_env_agent_port;
    info.metrics_agent_port = r->metrics_agent_port;
    info.dashboard_agent_listen_port = r->dashboard_agent_listen_port;
    info.node_name = r->flags.node_name ? r->flags.node_name : r->flags.node_ip_address;
    const char *env;
    if ((env = getenv("RAY_CLOUD_INSTANCE_ID")))
        info.instance_id = (char *)env;
    if ((env = getenv("RAY_NODE_TYPE_NAME")))
        info.node_type_name = (char *)env;
    if ((env = getenv("RAY_CLOUD_INSTANCE_TYPE_NAME")))
        info.instance_type_name = (char *)env;
    info.start_time_ms = r->start_wall_ms;
    info.is_head_node = r->flags.head;
#if CRAYLET_RAY_NODE_INFO_DIRS
    /* Drivers that join this node put their session files here. */
    info.temp_dir = r->flags.temp_dir ? r->flags.temp_dir : "";
    info.session_dir = r->flags.session_dir;
#endif

    size_t n = res_node_count(r->resources);
    Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry *res = xcalloc(n, sizeof *res);
    Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry **resp = xcalloc(n, sizeof *resp);
    for (size_t i = 0; i < n; i++) {
        res_entry_t e;
        res_node_entry_at(r->resources, i, &e);
        ray__rpc__gcs_node_info__resources_total_entry__init(&res[i]);
        res[i].key = (char *)e.name;
        res[i].value = res_amount_to_double(e.total);
        resp[i] = &res[i];
    }
    info.n_resources_total = n;
    info.resources_total = resp;

    size_t nl = r->flags.label_count + 1;
    Ray__Rpc__GcsNodeInfo__LabelsEntry *labels = xcalloc(nl, sizeof *labels);
    Ray__Rpc__GcsNodeInfo__LabelsEntry **labelp = xcalloc(nl, sizeof *labelp);
    for (size_t i = 0; i < nl; i++) {
        ray__rpc__gcs_node_info__labels_entry__init(&labels[i]);
        labels[i].key = i < r->flags.label_count ? r->flags.labels[i].key : "ray.io/node-id";
        labels[i].value = i < r->flags.label_count ? r->flags.labels[i].value : r->node_hex;
        labelp[i] = &labels[i];
    }
    info.n_labels = nl;
    info.labels = labelp;

    Ray__Rpc__NodeSnapshot snapshot = RAY__RPC__NODE_SNAPSHOT__INIT;
    snapshot.state = RAY__RPC__NODE_SNAPSHOT__STATE__ACTIVE;
    info.state_snapshot = &snapshot;

    if (gcs_register_node(r->gcs, &info, raylet_on_registered, r) != 0) {
        log_error("cannot start RegisterNode");
        raylet_shutdown(r, 1, false, 0, NULL);
    }
    free(res);
    free(resp);
    free(labels);
    free(labelp);
}

/* ---- agents and their port files ----------------------------------------- */

typedef struct raylet_port_file {
    const char *name;
    size_t offset; /* of the int in struct raylet */
} raylet_port_file_t;

static const raylet_port_file_t raylet_port_files[] = {
    {"metrics_agent_port", offsetof(struct raylet, metrics_agent_port)},
    {"metrics_export_port", offsetof(struct raylet, metrics_export_port)},
    {"dashboard_agent_listen_port", offsetof(struct raylet, dashboard_agent_listen_port)},
    {"runtime_env_agent_port", offsetof(struct raylet, runtime_env_agent_port)},
};
#define RAYLET_PORT_UNKNOWN (-2)

static void raylet_on_port_timer(loop_t *loop, uint64_t id, void *data)
{
    struct raylet *r = data;
    r->port_timer = 0;
    const char *missing = NULL;
    for (size_t i = 0; i < sizeof raylet_port_files / sizeof raylet_port_files[0]; i++) {
        int *port = (int *)((char *)r + raylet_port_files[i].offset);
        if (*port != RAYLET_PORT_UNKNOWN)
            continue;
        int rc = agent_read_port_file(r->flags.session_dir, raylet_port_files[i].name, r->node_hex, port);
        if (rc == CR_EBADMSG) {
            log_error("port file %s_%s in %s does not hold a port", raylet_port_files[i].name,
                      r->node_hex, r->flags.session_dir);
            raylet_shutdown(r, 1, false, 0, NULL);
            return;
        }
        if (rc != 0) {
            *port = RAYLET_PORT_UNKNOWN;
            missing = raylet_port_files[i].name;
        }
    }
    if (!missing) {
        raylet_register(r);
        return;
    }
    if (loop_now_ms(loop) >= r->port_wait_deadline) {
        log_error("timed out after %lld ms waiting for the agents' port file %s_%s",
                  (long long)r->config.agent_port_file_timeout_ms, missing, r->node_hex);
        raylet_shutdown(r, 1, false, 0, NULL);
        return;
    }
    r->port_timer = loop_add_timer(loop, RAYLET_PORT_POLL_MS, raylet_on_port_timer, r);
}

static int raylet_start_agent(struct raylet *r, const char *name, const char *command, agent_t **out)
{
    if (!command || !*command) {
        log_warn("no %s command given; running without it", name);
        return 0;
    }
    agent_options_t opts = {
        .name = name,
        .command = command,
        .node_manager_port = r->node_manager_port,
        .node_id_hex = r->node_hex,
        .pipe_health_check = r->config.enable_pipe_based_agent_to_parent_health_check,
        .stdout_fd = child_output_stdout(r->child_output),
        .stderr_fd = child_output_stderr(r->child_output),
    };
    return agent_spawn(&opts, out);
}

/* What the service asks of the node as a whole. */
static void raylet_svc_resources_changed(void *ctx)
{
    struct raylet *r = ctx;
    r->view_urgent = true; /* sent once this loop iteration is done */
}

static bool raylet_svc_serving(void *ctx) { return ((struct raylet *)ctx)->state != RAYLET_STOPPING; }

static uint64_t raylet_svc_idle_ms(void *ctx) { return raylet_idle_ms(ctx); }

/* Idle now, the store's use measured afresh (a drain decides on it). */
static bool raylet_idle_now(struct raylet *r)
{
    raylet_refresh_store_use(r);
    return raylet_idle_ms(r) > 0;
}

static int raylet_svc_drain(void *ctx, int reason, const char *message, int64_t deadline_ms, const char **why)
{
    struct raylet *r = ctx;
    bool was = r->drain.active;
    drain_verdict_t v = drain_request(&r->drain, reason, message, deadline_ms, raylet_idle_now(r), why);
    if (v == DRAIN_ACCEPTED && !was) {
        log_info("draining: no new work here; the node exits once idle");
        lease_mgr_set_draining(r->leases);
        r->view_urgent = true; /* GCS and the other nodes stop sending work */
    }
    return (int)v;
}

static bool raylet_svc_draining(void *ctx, int64_t *deadline_ms)
{
    struct raylet *r = ctx;
    *deadline_ms = r->drain.active ? r->drain.deadline_ms : 0;
    return r->drain.active;
}

static void raylet_svc_shutdown(void *ctx, bool graceful)
{
    raylet_shutdown(ctx, 0, graceful, RAY__RPC__NODE_DEATH_INFO__REASON__EXPECTED_TERMINATION,
                    "Terminated by autoscaler.");
}

static void raylet_svc_gcs_restarted(void *ctx)
{
    struct raylet *r = ctx;
    if (r->sub)
        gcs_sub_resubscribe(r->sub);
}

static void raylet_start_serving(struct raylet *r)
{
    const char *host = strcmp(r->flags.node_ip_address, "127.0.0.1") == 0 ? "127.0.0.1" : "0.0.0.0";
    r->server = rpc_server_create(r->bridge);
    nm_service_deps_t deps = {
        .loop = r->loop,
        .bridge = r->bridge,
        .resources = r->resources,
        .bundles = r->bundles,
        .store = r->store,
        .peers = r->peers,
        .node_id = r->node_id,
        .node_hex = r->node_hex,
        .node_ip_address = r->flags.node_ip_address,
        .system_config_json = r->config.system_config_json,
        .metrics = r->metrics,
        .channels = r->channels,
        .kill_worker_timeout_ms = r->config.kill_worker_timeout_milliseconds > 0
                                      ? (uint64_t)r->config.kill_worker_timeout_milliseconds
                                      : 0,
    };
    static const nm_node_ops_t svc_ops = {
        .serving = raylet_svc_serving, .idle_ms = raylet_svc_idle_ms, .drain = raylet_svc_drain,
        .draining = raylet_svc_draining, .shutdown = raylet_svc_shutdown,
        .resources_changed = raylet_svc_resources_changed, .gcs_restarted = raylet_svc_gcs_restarted};
    r->service = nm_service_create(r->server, &deps, &svc_ops, r);
    if (!r->service ||
        rpc_server_listen(r->server, host, r->flags.node_manager_port, &r->node_manager_port) != 0 ||
        rpc_server_start(r->server) != 0) {
        log_error("cannot serve NodeManagerService on port %d", r->flags.node_manager_port);
        raylet_shutdown(r, 1, false, 0, NULL);
        return;
    }
    xfer_options_t xo = {
        .loop = r->loop,
        .bridge = r->bridge,
        .store = r->store,
        .peers = r->peers,
        .chunk_size = r->config.object_manager_default_chunk_size > 0
                          ? (uint64_t)r->config.object_manager_default_chunk_size
                          : 0,
        .max_bytes_in_flight = r->config.object_manager_max_bytes_in_flight > 0
                                   ? (uint64_t)r->config.object_manager_max_bytes_in_flight
                                   : 0,
        .pull_timeout_ms = r->config.object_manager_pull_timeout_ms > 0
                               ? (uint64_t)r->config.object_manager_pull_timeout_ms
                               : 0,
        .push_timeout_ms = r->config.object_manager_push_timeout_ms,
        .fetch_fail_ms = r->config.fetch_fail_timeout_milliseconds > 0
                             ? (uint64_t)r->config.fetch_fail_timeout_milliseconds
                             : 600000,
        .no_room_grace_ms = r->config.oom_grace_period_s > 0 ? (uint64_t)r->config.oom_grace_period_s * 1000 : 0,
        .tick_ms = r->config.object_manager_timer_freq_ms > 0 ? (uint64_t)r->config.object_manager_timer_freq_ms
                                                               : 100,
        .restore = raylet_restore,
        .restore_ctx = r,
    };
    memcpy(xo.self.b, r->node_id, ID_UNIQUE_SIZE);
    r->xfer = xfer_create(&xo);
    r->object_server = rpc_server_create(r->bridge);
    r->om_service = om_service_create(r->object_server, r->xfer, r->store);
    if (!r->om_service ||
        rpc_server_listen(r->object_server, host, r->flags.object_manager_port, &r->object_manager_port) != 0 ||
        rpc_server_start(r->object_server) != 0) {
        log_error("cannot bind the object manager port %d", r->flags.object_manager_port);
        raylet_shutdown(r, 1, false, 0, NULL);
        return;
    }
    log_info("serving gRPC on %s:%d (object manager port %d)", host, r->node_manager_port,
             r->object_manager_port);

    /* Workers need the bound port (their command line carries it). */
    res_amount_t cpus = res_node_total(r->resources, "CPU");
    int max_io = r->config.max_io_workers > 0 ? (int)r->config.max_io_workers : 1;
    pool_options_t po = {
        .python_worker_command = r->flags.python_worker_command,
        .node_manager_port = r->node_manager_port,
        .node_id_hex = r->node_hex,
        .node_ip_address = r->flags.node_ip_address,
        .maximum_startup_concurrency = r->flags.maximum_startup_concurrency,
        .min_worker_port = r->flags.min_worker_port,
        .max_worker_port = r->flags.max_worker_port,
        .worker_port_list = r->flags.worker_port_list,
        .worker_port_count = r->flags.worker_port_count,
        .register_timeout_ms = (uint64_t)r->config.worker_register_timeout_seconds * 1000,
        .idle_timeout_ms = (uint64_t)r->config.idle_worker_killing_time_threshold_ms,
        .soft_limit = r->config.num_workers_soft_limit >= 0 ? (int)r->config.num_workers_soft_limit
                                                            : (int)(cpus / RES_UNIT),
        .ray_debugger_external = r->flags.ray_debugger_external,
        .support_fork = r->config.support_fork,
        .grpc_threads = (int)r->config.worker_num_grpc_internal_threads,
        .preload_modules = r->config.preload_python_modules,
        .stdout_fd = child_output_stdout(r->child_output),
        .stderr_fd = child_output_stderr(r->child_output),
        .object_spilling_config = r->config.object_spilling_config,
        .max_io_workers = max_io,
    };
    static const pool_callbacks_t pcbs = {.on_worker_dead = raylet_on_worker_dead, .io_ready = raylet_on_io_ready};
    r->pool = pool_create(r->loop, r->bridge, &po, &pcbs, r);
    if (r->pool) {
        spill_options_t so = {
            .loop = r->loop,
            .bridge = r->bridge,
            .store = r->store,
            .pool = r->pool,
            .node_ip_address = r->flags.node_ip_address,
            .enabled = r->config.object_spilling_config && r->config.object_spilling_config[0],
            .threshold = r->config.object_spilling_threshold,
            .min_spilling_size = r->config.min_spilling_size > 0 ? (uint64_t)r->config.min_spilling_size : 0,
            .max_fused_object_count =
                r->config.max_fused_object_count > 0 ? (size_t)r->config.max_fused_object_count : 1,
            .max_file_size = r->config.max_spilling_file_size_bytes,
            .max_io_workers = (size_t)max_io,
            .check_period_ms = r->config.free_objects_period_milliseconds > 0
                                   ? (uint64_t)r->config.free_objects_period_milliseconds
                                   : 0,
        };
        static const spill_ops_t sops = {.spilled = raylet_on_spilled};
        r->spill = spill_create(&so, &sops, r);
        store_set_spill_cb(r->store, raylet_on_store_full, r);
        fs_monitor_options_t fo = {
            .threshold = r->config.local_fs_capacity_threshold,
            .spilling_config = r->config.object_spilling_config,
            .spilling_is_fs = r->config.is_external_storage_type_fs,
            .fallback_directory = r->flags.fallback_directory,
            .events = r->events,
        };
        r->fs_monitor = fs_monitor_create(&fo);
        store_set_fs_capacity_threshold(r->store, r->config.local_fs_capacity_threshold);
        store_set_disk_full_cb(r->store, raylet_on_disk_check, r);
        if (so.enabled)
            log_info("spilling objects with %s (threshold %.2f, at least %llu bytes per file)",
                     r->config.object_spilling_config, so.threshold, (unsigned long long)so.min_spilling_size);
    }
    lease_mgr_options_t lo = {
        .worker_cap_enabled = r->config.worker_cap_enabled,
        .worker_cap_initial_backoff_ms = r->config.worker_cap_initial_backoff_delay_ms > 0
                                             ? (uint64_t)r->config.worker_cap_initial_backoff_delay_ms
                                             : 1,
        .worker_cap_max_backoff_ms = r->config.worker_cap_max_backoff_delay_ms > 0
                                         ? (uint64_t)r->config.worker_cap_max_backoff_delay_ms
                                         : 1,
    };
    static const lease_mgr_callbacks_t lcbs = {.pick_remote = raylet_pick_remote,
                                               .pick_node = raylet_pick_node,
                                               .on_busy_changed = raylet_on_busy_changed,
                                               .on_granted = raylet_on_lease_granted,
                                               .on_returned = raylet_on_lease_returned,
                                               .args_fetch = raylet_args_fetch,
                                               .args_cancel = raylet_args_cancel};
    r->largs = largs_create(r->store, r->owait, r->xfer, raylet_on_args_local, r);
    r->leases = r->pool ? lease_mgr_create(r->loop, r->resources, &pool_lease_ops, r->pool, &lo, &lcbs, r) : NULL;
    r->osub = osub_create(r->loop, r->bridge, r->node_id, r->flags.node_ip_address, r->node_manager_port,
                          raylet_on_primary_released, r);
    if (r->pool && r->config.enable_worker_prestart && r->flags.num_prestart_python_workers > 0) {
        uint8_t no_job[ID_JOB_SIZE];
        memset(no_job, 0xff, sizeof no_job);
        pool_prestart(r->pool, no_job, RAY__RPC__LANGUAGE__PYTHON, (size_t)r->flags.num_prestart_python_workers);
    }
    if (!r->pool || !r->leases) {
        raylet_shutdown(r, 1, false, 0, NULL);
        return;
    }
    bool prestart_first = r->config.prestart_worker_first_driver && !r->config.enable_worker_prestart &&
                          r->flags.num_prestart_python_workers > 0;
    wsock_options_t wo = {
        .loop = r->loop,
        .pool = r->pool,
        .leases = r->leases,
        .owait = r->owait,
        .xfer = r->xfer,
        .store = r->store,
        .gcs = r->gcs,
        .jobs = r->jobs,
        .node_id = r->node_id,
        .node_ip_address = r->flags.node_ip_address,
        .prestart_on_first_driver = prestart_first ? (size_t)r->flags.num_prestart_python_workers : 0,
        .record_frames_dir = getenv("CRAYLET_RECORD_FRAMES"),
    };
    r->wsock = wsock_create(&wo);

    mem_monitor_options_t mo = {
        .loop = r->loop,
        .leases = r->leases,
        .interval_ms = r->config.memory_monitor_refresh_ms > 0 ? (uint64_t)r->config.memory_monitor_refresh_ms : 0,
        .usage_threshold = r->config.memory_usage_threshold,
        .min_memory_free_bytes = r->config.min_memory_free_bytes,
        .failure_ttl_ms = r->config.task_failure_entry_ttl_ms > 0 ? (uint64_t)r->config.task_failure_entry_ttl_ms : 0,
        .by_group = r->config.worker_killing_policy_by_group,
        .max_kill_buffer_bytes = r->config.max_kill_memory_buffer_bytes,
        .node_ip = r->flags.node_ip_address,
        .node_id_hex = r->node_hex,
        .events = r->events,
    };
    r->mem = mem_monitor_create(&mo);

    nm_service_attach_workers(r->service, r->pool, r->leases, r->osub);
    nm_service_attach_spill(r->service, r->spill);
    nm_service_attach_mem_monitor(r->service, r->mem);
    if (raylet_start_agent(r, "dashboard_agent", r->flags.dashboard_agent_command, &r->dashboard_agent) != 0 ||
        raylet_start_agent(r, "runtime_env_agent", r->flags.runtime_env_agent_command,
                           &r->runtime_env_agent) != 0) {
        raylet_shutdown(r, 1, false, 0, NULL);
        return;
    }
    nm_service_attach_agents(r->service, r->dashboard_agent, r->runtime_env_agent);
    /* Ports given on the command line are final; 0 means "the agent picks
     * and writes a port file".  With no agent there is nothing to wait for. */
    r->metrics_agent_port = r->flags.metrics_agent_port;
    r->metrics_export_port = r->flags.metrics_export_port;
    r->dashboard_agent_listen_port = r->flags.dashboard_agent_listen_port;
    r->runtime_env_agent_port = r->flags.runtime_env_agent_port;
    if (r->metrics_agent_port == 0)
        r->metrics_agent_port = r->dashboard_agent ? RAYLET_PORT_UNKNOWN : -1;
    if (r->metrics_export_port == 0)
        r->metrics_export_port = r->dashboard_agent ? RAYLET_PORT_UNKNOWN : -1;
    if (r->dashboard_agent_listen_port == 0)
        r->dashboard_agent_listen_port = r->dashboard_agent ? RAYLET_PORT_UNKNOWN : -1;
    if (r->runtime_env_agent_port == 0)
        r->runtime_env_agent_port = r->runtime_env_agent ? RAYLET_PORT_UNKNOWN : -1;
    r->state = RAYLET_WAITING_AGENTS;
    r->port_wait_deadline = loop_update_time(r->loop) + (uint64_t)r->config.agent_port_file_timeout_ms;
    raylet_on_port_timer(r->loop, 0, r);
}

static void raylet_on_config(void *ctx, int err, const char *message, ProtobufCMessage *reply)
{
    struct raylet *r = ctx;
    if (r->state != RAYLET_FETCHING_CONFIG)
        return;
    if (err == CR_EAUTH) {
        /* The cluster runs with token authentication and this node's token
         * is not the cluster's: it cannot join, and the operator should
         * know which token it used. */
        log_error("GCS at %s refused this node's authentication token (%s)", r->flags.gcs_address, message);
        fprintf(stderr,
                "craylet: GCS at %s refused this node's authentication token: the cluster runs with "
                "token authentication and this node has %s. Give it the cluster's token (RAY_AUTH_TOKEN, "
                "RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token).\n",
                r->flags.gcs_address, cq_bridge_authorization(r->bridge) ? "another token" : "none");
        raylet_shutdown(r, 1, false, 0, NULL);
        return;
    }
    if (err) {
        log_error("cannot get the system config from GCS: %s", message);
        fprintf(stderr, "craylet: cannot reach GCS at %s: %s\n", r->flags.gcs_address, message);
        raylet_shutdown(r, 1, false, 0, NULL);
        return;
    }
    const Ray__Rpc__GetInternalConfigReply *c = (const Ray__Rpc__GetInternalConfigReply *)reply;
    config_apply_json(&r->config, c->config);
#if CRAYLET_RAY_NODE_INFO_DIRS
    /* The release that gave nodes their own directories (GcsNodeInfo
     * temp_dir/session_dir) spills each node into its own. */
    config_localize_spilling(&r->config, r->flags.fallback_directory);
#endif
    gcs_client_set_reconnect_timeout(r->gcs, (uint64_t)r->config.gcs_rpc_server_reconnect_timeout_s * 1000);
    if (r->config.enable_open_telemetry) {
        metrics_options_t mo = {
            .loop = r->loop,
            .bridge = r->bridge,
            .interval_ms = r->config.metrics_report_interval_ms > 0 ? (uint64_t)r->config.metrics_report_interval_ms
                                                                     : 10000,
            .node_address = r->flags.node_ip_address,
            .session_name = r->flags.session_name,
            .version = CRAYLET_RAY_VERSION,
        };
        r->metrics = metrics_create(&mo, raylet_collect_metrics, r);
    }
    raylet_start_serving(r);
}

/* ---- signals and shutdown ------------------------------------------------- */

/* GCS stayed away for the whole reconnect timeout: without Redis it is not
 * coming back (with it, a restarted GCS answers well within the timeout).
 * The node cannot be scheduled or reached without GCS, so it exits 1 as the
 * stock raylet does, with the same explanation; its workers follow when
 * the raylet socket closes. */
static void raylet_on_gcs_unreachable(void *ctx, uint64_t down_ms)
{
    struct raylet *r = ctx;
    char msg[512];
    snprintf(msg, sizeof msg,
             "Failed to connect to GCS within %.0f seconds. GCS may have been killed. It's either GCS is "
             "terminated by `ray stop` or is killed unexpectedly. If it is killed unexpectedly, see the log "
             "file gcs_server.out. The program will terminate.",
             down_ms / 1000.0);
    log_error("%s", msg);
    fprintf(stderr, "craylet: %s\n", msg);
    raylet_shutdown(r, 1, false, 0, NULL);
}

static void raylet_reap_children(struct raylet *r)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            break;
        if (r->pool && pool_on_child_exit(r->pool, pid, status))
            continue;
        agent_t *agents[2] = {r->dashboard_agent, r->runtime_env_agent};
        for (int i = 0; i < 2; i++) {
            if (!agents[i] || agent_pid(agents[i]) != pid)
                continue;
            agent_mark_exited(agents[i], status);
            if (r->state == RAYLET_STOPPING)
                continue;
            char msg[160];
            snprintf(msg, sizeof msg, "%s failed and raylet fate-shares with it.", agent_name(agents[i]));
            log_error("%s (pid %d, %s %d)", msg, (int)pid,
                      WIFSIGNALED(status) ? "signal" : "exit code",
                      WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            raylet_shutdown(r, 1, true, RAY__RPC__NODE_DEATH_INFO__REASON__UNEXPECTED_TERMINATION, msg);
        }
    }
}

static void raylet_on_signal(loop_t *loop, int signo, void *data)
{
    struct raylet *r = data;
    if (signo == SIGCHLD) {
        raylet_reap_children(r);
        return;
    }
    /* Ray's agents look for this exact phrase in raylet.out to tell a
     * graceful stop from a crash. */
    log_info("Raylet received SIG%s; shutting down", signo == SIGTERM ? "TERM" : "INT");
    /* Taken away after its preemption deadline: that is why it dies. */
    if (drain_preempted_by(&r->drain, (int64_t)raylet_wall_ms()))
        raylet_shutdown(r, 0, true, drain_death_reason(&r->drain), r->drain.message);
    else
        raylet_shutdown(r, 0, true, RAY__RPC__NODE_DEATH_INFO__REASON__EXPECTED_TERMINATION, "received SIGTERM");
}

static void raylet_on_stop_timer(loop_t *loop, uint64_t id, void *data)
{
    struct raylet *r = data;
    r->stop_timer = 0;
    log_warn("UnregisterNode did not finish in time; exiting anyway");
    loop_stop(loop);
}

static void raylet_on_unregistered(void *ctx, int err, const char *message, ProtobufCMessage *reply)
{
    struct raylet *r = ctx;
    if (err && err != CR_ECLOSED)
        log_warn("UnregisterNode failed: %s", message);
    else
        log_info("node unregistered from GCS");
    if (r->stop_timer)
        loop_cancel_timer(r->loop, r->stop_timer);
    r->stop_timer = 0;
    loop_stop(r->loop);
}

static void raylet_shutdown(struct raylet *r, int exit_code, bool unregister, int death_reason,
                            const char *message)
{
    if (r->state == RAYLET_STOPPING)
        return;
    bool registered = r->state == RAYLET_RUNNING;
    r->state = RAYLET_STOPPING;
    r->exit_code = exit_code;
    if (r->port_timer)
        loop_cancel_timer(r->loop, r->port_timer);
    if (r->check_alive_timer)
        loop_cancel_timer(r->loop, r->check_alive_timer);
    r->port_timer = r->check_alive_timer = 0;
    debug_dump_stop(r->debug_dump);
    if (unregister && registered &&
        gcs_unregister_node(r->gcs, r->node_id, death_reason, message ? message : "",
                            raylet_on_unregistered, r) == 0) {
        r->stop_timer = loop_add_timer(r->loop, RAYLET_UNREGISTER_WAIT_MS, raylet_on_stop_timer, r);
        return;
    }
    loop_stop(r->loop);
}

/* ---- construction ----------------------------------------------------------- */

/* Once per loop iteration, after every event of the batch: work that many
 * events may ask for is done once here (Redis's beforeSleep). */
static void raylet_before_sleep(loop_t *loop, void *data)
{
    struct raylet *r = data;
    if (r->metrics)
        metrics_loop_turn(r->metrics, (double)loop_awake_us(loop) / 1000.0);
    lease_mgr_flush(r->leases);
    if (r->drain.active && r->state == RAYLET_RUNNING && raylet_idle_now(r)) {
        log_info("The node is drained, continue to shut down raylet...");
        raylet_shutdown(r, 0, true, drain_death_reason(&r->drain), r->drain.message);
        return;
    }
    if (r->view_urgent && r->syncer) {
        r->view_urgent = false;
        syncer_flush(r->syncer);
    }
}

raylet_t *raylet_create(flags_t *flags, const raylet_gpu_t *gpu)
{
    struct raylet *r = xcalloc(1, sizeof *r);
    r->flags = *flags;
    memset(flags, 0, sizeof *flags);
    r->start_wall_ms = raylet_wall_ms();
    config_init(&r->config);
    if (id_from_hex(r->flags.node_id, strlen(r->flags.node_id), r->node_id, ID_UNIQUE_SIZE) != 0) {
        log_error("--node_id is not 56 hex characters");
        goto fail;
    }
    snprintf(r->node_hex, sizeof r->node_hex, "%s", r->flags.node_id);

    signal(SIGPIPE, SIG_IGN);
    r->loop = loop_create();
    if (!r->loop)
        goto fail;
    /* Before any thread exists (gRPC's included), so all inherit the mask. */
    static const int signals[] = {SIGTERM, SIGINT, SIGCHLD};
    if (loop_watch_signals(r->loop, signals, 3, raylet_on_signal, r) != 0) {
        log_error("cannot watch signals");
        goto fail;
    }
    loop_set_before_sleep(r->loop, raylet_before_sleep, r);
    grpc_init();
    r->grpc_started = true;
    r->bridge = cq_bridge_create(r->loop);
    if (!r->bridge)
        goto fail;
    /* Token authentication (Ray 2.60 turns it on for new local clusters):
     * before the first channel or server exists, so all of them use it. */
    char *authorization = NULL;
    char why[256];
    if (auth_token_load(&authorization, why, sizeof why) != 0) {
        log_error("token authentication is on (RAY_AUTH_MODE=token) but %s", why);
        goto fail;
    }
    if (authorization) {
        cq_bridge_set_authorization(r->bridge, authorization);
        free(authorization);
        log_info("token authentication on: every call to and from this node carries the cluster's token");
    }

    r->resources = res_node_create(NULL);
    for (size_t i = 0; i < r->flags.resource_count; i++) {
        res_amount_t a;
        if (res_amount_from_double(r->flags.resources[i].value, &a) != 0 ||
            res_node_add_total(r->resources, r->flags.resources[i].name, a) != 0) {
            log_error("resource %s=%g cannot be represented", r->flags.resources[i].name,
                      r->flags.resources[i].value);
            goto fail;
        }
    }
    r->idle_since_ms = r->store_idle_since_ms = loop_update_time(r->loop);
    if (gpu && gpu->topo) {
        char record[4096];
        gpu_gang_options_t gopts = {.mode = gpu->packing, .record_path = NULL};
        if (r->flags.log_dir && snprintf(record, sizeof record, "%s/%s", r->flags.log_dir, GPU_GANG_RECORD_FILE) <
                                    (int)sizeof record)
            gopts.record_path = record;
        r->gang = gpu_gang_create(gpu->topo, r->resources, &gopts);
        r->cpu_affinity = gpu->cpu_affinity;
        cpu_set_t own;
        if (sched_getaffinity(0, sizeof own, &own) == 0)
            for (unsigned c = 0; c < CPU_SETSIZE && c < GPU_TOPO_MAX_CPUS; c++)
                if (CPU_ISSET(c, &own))
                    gpu_cpuset_add(&r->own_cpus, c);
        unsigned island[GPU_TOPO_MAX_GPUS];
        log_info("GPU graph from %s: %zu GPUs in %zu NVLink islands%s; gang packing %s, CPU affinity %s",
                 gpu->topo->source, gpu->topo->n, gpu_topo_islands(gpu->topo, island),
                 gpu->topo->nvswitch ? " (NVSwitch)" : "", gpu_pack_mode_name(gpu->packing),
                 gpu->cpu_affinity ? "on" : "off");
    }
    r->bundles = bundles_create(r->resources, r->gang);
    r->peers = peers_create();
    r->jobs = jobs_create();

    gcs_client_options_t go = {
        .address = r->flags.gcs_address,
        .cluster_id_hex = r->flags.cluster_id,
        .reconnect_timeout_ms = (uint64_t)r->config.gcs_rpc_server_reconnect_timeout_s * 1000,
        .on_unreachable = raylet_on_gcs_unreachable,
        .unreachable_ctx = r,
    };
    r->gcs = gcs_client_create(r->loop, r->bridge, &go);
    if (!r->gcs)
        goto fail;

    store_options_t so;
    store_options_init(&so);
    so.socket_path = r->flags.store_socket_name;
    so.capacity = (uint64_t)r->flags.object_store_memory;
    so.plasma_directory = r->flags.plasma_directory;
    so.fallback_directory = r->flags.fallback_directory;
    so.huge_pages = r->flags.huge_pages;
    so.preallocate = r->config.preallocate_plasma_memory;
    so.full_delay_ms = (uint32_t)r->config.object_store_full_delay_ms;
    so.oom_grace_period_ms = (uint64_t)r->config.oom_grace_period_s * 1000;
    so.fs_capacity_threshold = r->config.local_fs_capacity_threshold;
    so.record_frames_dir = getenv("CRAYLET_RECORD_FRAMES");
    r->store = store_create(r->loop, &so);
    if (!r->store)
        goto fail;
    store_set_sealed_cb(r->store, raylet_on_object_sealed, r);
    store_set_deleted_cb(r->store, raylet_on_object_deleted, r);
    r->owait = owait_create(r->loop, raylet_store_contains, r);
    r->channels = chan_set_create(r->loop, r->store);
    r->events = ray_event_log_create(r->flags.log_dir, "RAYLET", r->node_hex);

    /* Children must not inherit raylet.out/raylet.err (see child_output.h);
     * when our output is not going to Ray's log files, they share it. */
    if (r->flags.stdout_filepath || r->flags.stderr_filepath) {
        int cerr = 0;
        r->child_output = child_output_create(r->loop, STDOUT_FILENO, STDERR_FILENO, &cerr);
        if (!r->child_output)
            goto fail;
    }
    listen_options_t lo = {.path = r->flags.raylet_socket_name, .what = "raylet socket"};
    int lerr = 0;
    r->raylet_listener = listener_create(r->loop, &lo, raylet_on_unix_accept, r, &lerr);
    if (!r->raylet_listener)
        goto fail;

    r->state = RAYLET_FETCHING_CONFIG;
    if (gcs_get_internal_config(r->gcs, raylet_on_config, r) != 0)
        goto fail;
    log_info("craylet starting: node %s, GCS %s, %s node", r->node_hex, r->flags.gcs_address,
             r->flags.head ? "head" : "worker");
    return r;
fail:
    raylet_destroy(r);
    return NULL;
}

int raylet_run(raylet_t *r)
{
    int rc = loop_run(r->loop);
    if (rc != 0) {
        log_error("event loop failed: %s", cr_strerror(rc));
        return 1;
    }
    return r->exit_code;
}

void raylet_destroy(raylet_t *r)
{
    if (!r)
        return;
    /* 1. Stop, in reverse order of construction: each component answers
     *    its pending calls, cancels its timers and silences its channels,
     *    so no callback can reach freed state later. */
    syncer_destroy(r->syncer);
    r->syncer = NULL;
    gcs_sub_destroy(r->sub);
    r->sub = NULL;
    if (r->dashboard_agent)
        agent_destroy(r->dashboard_agent, RAYLET_AGENT_GRACE_MS);
    if (r->runtime_env_agent)
        agent_destroy(r->runtime_env_agent, RAYLET_AGENT_GRACE_MS);
    r->dashboard_agent = r->runtime_env_agent = NULL;
    listener_destroy(r->raylet_listener);
    r->raylet_listener = NULL;
    wsock_stop(r->wsock);
    nm_service_stop(r->service);
    chan_set_stop(r->channels);
    mem_monitor_stop(r->mem);
    lease_mgr_stop(r->leases);
    osub_destroy(r->osub);
    if (r->store) {
        store_set_spill_cb(r->store, NULL, NULL);
        store_set_disk_full_cb(r->store, NULL, NULL);
    }
    spill_stop(r->spill);
    metrics_stop(r->metrics);
    r->osub = NULL;
    om_service_stop(r->om_service);
    xfer_stop(r->xfer);
    if (r->pool)
        pool_set_renv(r->pool, NULL);
    renv_client_destroy(r->renv);
    r->renv = NULL;
    pool_stop(r->pool);

    /* 2. Drain gRPC: servers cancel their calls, then the bridge delivers
     *    every completion still queued while all state is still alive. */
    rpc_server_destroy(r->server);
    rpc_server_destroy(r->object_server);
    r->server = r->object_server = NULL;
    gcs_client_destroy(r->gcs);
    r->gcs = NULL;
    cq_bridge_destroy(r->bridge);
    r->bridge = NULL;

    /* 3. Free. */
    child_output_destroy(r->child_output);
    mem_monitor_destroy(r->mem);
    lease_mgr_destroy(r->leases);
    largs_destroy(r->largs); /* after the leases, which cancel their fetches */
    spill_destroy(r->spill);
    fs_monitor_destroy(r->fs_monitor);
    ray_event_log_destroy(r->events);
    metrics_destroy(r->metrics);
    pool_destroy(r->pool);
    owait_destroy(r->owait);
    xfer_destroy(r->xfer);
    om_service_destroy(r->om_service);
    chan_set_destroy(r->channels); /* before the store it holds objects in */
    store_destroy(r->store);
    debug_dump_destroy(r->debug_dump);
    nm_service_destroy(r->service);
    wsock_destroy(r->wsock);
    jobs_destroy(r->jobs);
    peers_destroy(r->peers);
    bundles_destroy(r->bundles);
    gpu_gang_destroy(r->gang);
    res_node_destroy(r->resources);
    if (r->grpc_started)
        grpc_shutdown();
    loop_destroy(r->loop);
    config_free(&r->config);
    flags_free(&r->flags);
    free(r);
}
