/* A worker or driver process as the raylet sees it.
 *
 * Records are owned by the worker pool (worker_pool.c) and live from spawn
 * (or a driver's registration) until the process is gone and its
 * connection closed.  Other modules keep pointers only while the worker is
 * not WORKER_DEAD; the pool tells them through pool callbacks before it
 * frees a record. */
#ifndef CRAYLET_RAYLET_WORKER_H
#define CRAYLET_RAYLET_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/id.h"
#include "common/rpc.h"
#include "common/conn.h"

/* rpc::WorkerType */
typedef enum {
    WORKER_TYPE_WORKER = 0,
    WORKER_TYPE_DRIVER = 1,
    WORKER_TYPE_SPILL = 2,
    WORKER_TYPE_RESTORE = 3,
} worker_type_t;

typedef enum {
    WORKER_STARTING,   /* spawned, not registered yet */
    WORKER_REGISTERED, /* connected, waiting for AnnounceWorkerPort */
    WORKER_IDLE,       /* in the idle pool */
    WORKER_LEASED,     /* granted to a lease */
    WORKER_DRIVER,     /* a driver (never leased) */
    WORKER_DEAD,       /* gone; the record is about to be freed */
} worker_state_t;

typedef struct worker {
    struct worker *next, *prev; /* pool's list of all workers */
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
    bool is_actor;         /* took an actor-creation lease: never pooled again */
    int gpu_kind;          /* 0: not leased yet, 1: ran CPU-only work, 2: ran GPU work */
    bool ran_tasks;        /* has run normal tasks (it may own objects others hold) */
    bool exit_requested;   /* asked to exit (idle reaping); do not reuse */
    bool failed_while_leased; /* its owner returned the lease saying it failed */
    uint64_t idle_since_ms;
    uint64_t launch_wall_ms;
} worker_t;

#endif
