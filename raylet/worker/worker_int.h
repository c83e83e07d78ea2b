/* The worker record itself, for the pool and the raylet socket only
 * (raylet/worker/); everyone else reads it through worker.h. */
#ifndef CRAYLET_RAYLET_WORKER_WORKER_INT_H
#define CRAYLET_RAYLET_WORKER_WORKER_INT_H

#include "common/conn.h"
#include "common/list.h"
#include "common/rpc.h"
#include "object_store/idtab.h"
#include "raylet/worker/worker.h"

struct worker {
    list_t node;                /* pool->workers */
    idtab_node_t by_id;         /* pool->by_id, keyed by `id` */
    bool cpus_bound;            /* pool_bind_cpus() narrowed its CPUs for a lease */
    bool memory_moved;          /* pool_move_memory() moved its pages ... */
    unsigned memory_node;       /* ... to this NUMA node */
    bool detached;              /* leased to a detached actor's tree: survives its job's end */
    uint8_t id[ID_UNIQUE_SIZE];
    char id_hex[ID_HEX_BUF];
    uint8_t job_id[ID_JOB_SIZE];
    worker_type_t type;
    int language;
    int runtime_env_hash;
    pid_t pid;             /* -1 once reaped (never signal it again) */
    pid_t spawned_pid;     /* kept after reaping, for reports */
    worker_state_t state;
    conn_t *conn;          /* NULL until registered */
    void *client;          /* the socket layer's per-connection state */
    int port;              /* the worker's gRPC port, once announced */
    int assigned_port;     /* from the port pool, 0 if none; returned on exit */
    rpc_channel_t *channel; /* to its CoreWorkerService, created on demand */
    struct pool_exit_call *exit_calls; /* Exit calls in flight on `channel` (pool.c) */
    bool is_actor;         /* took an actor-creation lease: never pooled again */
    int gpu_kind;          /* 0: not leased yet, 1: ran CPU-only work, 2: ran GPU work */
    bool ran_tasks;        /* has run normal tasks (it may own objects others hold) */
    bool exit_requested;   /* asked to exit (idle reaping); do not reuse */
    bool failed_while_leased; /* its owner returned the lease saying it failed */
    bool io_busy;          /* WORKER_IO: taken by pool_io_take */
    uint64_t idle_since_ms;
    uint64_t register_deadline_ms; /* STARTING: killed if not registered by then */
    uint64_t kill_deadline_ms;     /* asked to exit (job finished): SIGKILL at, 0: none */
    uint64_t launch_wall_ms;
};

#endif
