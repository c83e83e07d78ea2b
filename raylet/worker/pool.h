/* The worker pool: starting Python workers, matching them when they
 * register, handing them to leases, and reaping them.
 *
 * Workers are spawned from --python_worker_command (parsed once into an
 * argv, never through a shell) with the per-worker flags Ray's
 * default_worker.py expects, the raylet-chosen --worker-id among them; a
 * registering worker is matched by that id.  At most
 * maximum_startup_concurrency workers may be starting at once; pops beyond
 * that wait.  Idle workers above the soft limit are asked to exit after the
 * idle timeout; a worker that does not register in time is killed.
 *
 * The pool owns every worker_t.  Before a record is freed, on_worker_dead
 * runs so that leases and the GCS report can let go of it. */
#ifndef CRAYLET_RAYLET_WORKER_POOL_H
#define CRAYLET_RAYLET_WORKER_POOL_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cq_bridge.h"
#include "common/loop.h"
#include "common/conn.h"
#include "common/rpc.h"
#include "raylet/worker/worker.h"

typedef struct pool pool_t;

typedef struct pool_options {
    const char *python_worker_command; /* copied */
    int node_manager_port;
    const char *node_id_hex;
    const char *node_ip_address;
    int maximum_startup_concurrency;
    int min_worker_port, max_worker_port; /* 0,0: workers pick their own */
    const int *worker_port_list;          /* overrides the range; copied */
    size_t worker_port_count;
    uint64_t register_timeout_ms;
    uint64_t idle_timeout_ms;
    int soft_limit;                       /* idle workers kept beyond the timeout */
    bool ray_debugger_external;
    /* From the system config, as the stock raylet passes them on: */
    bool support_fork;              /* gRPC fork support in workers */
    int grpc_threads;               /* RAY_num_grpc_internal_threads; 0: unset */
    const char *preload_modules;    /* comma-joined names or NULL; copied */
    /* A worker's fd 1 and 2 (child_output.h); <= 0: inherit ours. */
    int stdout_fd, stderr_fd;
    /* I/O workers: the spilling config they are started with (JSON; copied;
     * NULL or "": none are started) and how many of each kind at most. */
    const char *object_spilling_config;
    int max_io_workers;
} pool_options_t;

/* Why a worker is gone, as GCS is told. */
typedef struct worker_exit {
    int type;           /* rpc::WorkerExitType */
    const char *detail; /* may be NULL */
    /* The serialized rpc::RayException a worker sends when its actor's
     * constructor raised (borrowed from its DisconnectClient; unchecked
     * peer bytes), or NULL. */
    const uint8_t *creation_exception;
    size_t creation_exception_len;
} worker_exit_t;

typedef struct pool_callbacks {
    /* `w` is about to be freed; `exit` is borrowed for the call. */
    void (*on_worker_dead)(void *ctx, worker_t *w, const worker_exit_t *exit);
    /* An I/O worker of `type` is ready to be taken (pool_io_take). */
    void (*io_ready)(void *ctx, worker_type_t type);
} pool_callbacks_t;

pool_t *pool_create(loop_t *loop, cq_bridge_t *bridge, const pool_options_t *opts,
                    const pool_callbacks_t *cbs, void *ctx);
/* Kills every worker process still alive, drops waiting pops and closes
 * every channel to a worker: no pool callback runs afterwards.
 * Idempotent. */
void pool_stop(pool_t *pool);
/* Stops if needed and frees all records. */
void pool_destroy(pool_t *pool);

/* ---- leasing a worker ----------------------------------------------------- */

typedef struct pool_pop pool_pop_t;
/* `w` is NULL when err < 0 (the spawn or the runtime env setup failed);
 * `why` then says so, and env_failed tells the two apart. */
typedef void (*pool_pop_cb)(void *ctx, worker_t *w, int err, const char *why, bool env_failed);

/* What a worker must run in: the job's runtime env (NULL, "" or "{}" for
 * none) and its hash, which keys the idle pool. */
typedef struct pool_env {
    const char *serialized;      /* copied */
    const uint8_t *config;       /* serialized rpc::RuntimeEnvConfig, copied; may be NULL */
    size_t config_len;
    int hash;
    /* Whether the work needs a GPU.  Like the stock raylet, a worker that
     * ran GPU work is never reused for CPU-only work and vice versa: CUDA
     * state and visible devices stick to a process. */
    bool gpu;
    /* For an actor.  A worker that ran normal tasks may own objects other
     * processes still use; making it an actor would tie their lifetime to
     * the actor's, so actors get workers that never ran tasks. */
    bool actor;
    /* For a detached actor's tree: the request outlives its job. */
    bool detached;
} pool_env_t;

/* Ask for a worker of this job/language/runtime env.  An idle one is handed
 * over at once (callback runs before this returns, and NULL is returned);
 * otherwise one is started (after the runtime-env agent built its
 * environment) or awaited, and a handle is returned that can be cancelled
 * until the callback runs. */
pool_pop_t *pool_pop(pool_t *pool, const uint8_t job_id[ID_JOB_SIZE], int language, const pool_env_t *env,
                     pool_pop_cb cb, void *ctx);
/* The agent that builds runtime environments, once its port is known
 * (borrowed; must outlive the pool). */
struct renv_client;
void pool_set_renv(pool_t *pool, struct renv_client *renv);
void pool_pop_cancel(pool_t *pool, pool_pop_t *pop);

/* A leased worker is free again (lease returned). */
void pool_push_idle(pool_t *pool, worker_t *w);

/* ---- the worker socket's events ------------------------------------------- */

/* A client sent RegisterClientRequest.  The claimed `pid` must be positive
 * and, when the socket told us (`peer_pid` from SO_PEERCRED, else 0), the
 * connecting process's.  For workers the id must match a worker we started
 * and the pid the one we spawned; drivers are added.  Returns the record,
 * or NULL with a reason in err (the caller replies success=false and closes
 * only that connection). */
worker_t *pool_register(pool_t *pool, conn_t *conn, worker_type_t type, const uint8_t id[ID_UNIQUE_SIZE],
                        pid_t pid, pid_t peer_pid, const uint8_t job_id[ID_JOB_SIZE], int language,
                        int runtime_env_hash, char *err, size_t err_len);
/* The port the worker should bind its gRPC server on (0: any). */
int pool_assigned_port(const worker_t *w);
/* AnnounceWorkerPort from a worker: it is ready for work. */
void pool_announce(pool_t *pool, worker_t *w, int port);
/* The worker is gone (disconnect message, hang-up, or process exit).
 * Runs on_worker_dead, kills the process if still alive, frees the record. */
void pool_disconnect(pool_t *pool, worker_t *w, int exit_type, const char *detail);
/* The same, with everything the worker said about its exit. */
void pool_exit(pool_t *pool, worker_t *w, const worker_exit_t *exit);
/* SIGCHLD for a pid (already reaped by the caller).  Returns true if it was
 * one of our workers. */
bool pool_on_child_exit(pool_t *pool, pid_t pid, int wait_status);

/* ---- queries and control ------------------------------------------------- */

worker_t *pool_find(pool_t *pool, const uint8_t id[ID_UNIQUE_SIZE]);
/* A channel to the worker's CoreWorkerService (created on first use);
 * NULL before the worker announced its port. */
rpc_channel_t *pool_channel(pool_t *pool, worker_t *w);
/* Ask the workers of a finished job to exit, SIGKILL after a grace period. */
void pool_kill_job(pool_t *pool, const uint8_t job_id[ID_JOB_SIZE]);
/* Kill a worker the pool spawned (SIGKILL, never a pid it did not spawn or
 * already reaped) and disconnect it as pool_disconnect does.  Drivers are
 * disconnected but not signalled: they are the user's processes. */
void pool_kill(pool_t *pool, worker_t *w, int exit_type, const char *detail);
/* Bind every thread of a worker the pool spawned to `cpus` (a NULL set
 * undoes an earlier binding: the daemon's own CPUs at pool creation).  A
 * binding lasts until the worker's lease ends.  0, -ESRCH for a worker the
 * pool did not spawn or that is gone, or the failing call's -errno. */
int pool_bind_cpus(pool_t *pool, worker_t *w, const cpu_set_t *cpus);
/* Move the pages a worker the pool spawned touched before its binding to
 * NUMA node `node` (common/numa.h; off the loop thread).  Its new memory
 * follows its cores by itself.  0 when the move was started or is not
 * needed (a machine with one memory node, a worker already moved there);
 * -ENODEV when `node` has no memory on this machine (a topology file that
 * describes another machine); -ESRCH as pool_bind_cpus. */
int pool_move_memory(pool_t *pool, worker_t *w, unsigned node);

/* The worker took an actor-creation lease and became an actor: it is never
 * pooled again. */
void pool_mark_actor(pool_t *pool, worker_t *w);

/* The pool as the lease manager reaches it (sched/lease_mgr.h); pass the
 * pool_t as the ops' context. */
struct lease_pool_ops;
extern const struct lease_pool_ops pool_lease_ops;

/* ---- I/O workers ------------------------------------------------------------
 * Python processes that write objects to external storage and read them
 * back (default_worker.py --worker-type=SPILL_WORKER|RESTORE_WORKER, with
 * the spilling config): started on demand, at most max_io_workers of each
 * kind, never leased, never reaped for idleness, belonging to no job. */

/* A ready I/O worker of `type` (WORKER_TYPE_SPILL or _RESTORE), now taken
 * until pool_io_release; or NULL, and one more is started if the limit
 * allows (io_ready runs when one is ready). */
worker_t *pool_io_take(pool_t *pool, worker_type_t type);
void pool_io_release(pool_t *pool, worker_t *w);

/* Fill pids[] with live worker and driver pids; returns the count. */
size_t pool_pids(pool_t *pool, int32_t *pids, size_t max);
size_t pool_count(const pool_t *pool, worker_state_t state);
/* Worker processes started since the pool was made (any kind). */
uint64_t pool_started_total(const pool_t *pool);
/* Up to `max` live records (not DEAD), newest first; valid until the pool
 * next changes. */
size_t pool_list(pool_t *pool, worker_t **out, size_t max);
/* Start n idle workers ahead of demand (PrestartWorkers). */
void pool_prestart(pool_t *pool, const uint8_t job_id[ID_JOB_SIZE], int language, size_t n);

#endif
