/* Worker leases: the queue of lease requests and everything that grants,
 * returns, cancels or spills them.  Plain data in, plain data out: the
 * gRPC service decodes RequestWorkerLease into a lease_request_t and turns
 * the lease_outcome_t it gets back into a reply; the worker pool is reached
 * through a small ops table, so the whole scheduler runs in a unit test
 * with a fake pool and no gRPC.
 *
 * A lease asks for a resource shape (CPU, GPU instances, custom, placement
 * group names) and a worker of one job and language.  Requests that fit now
 * take their resources and a worker from the pool and are answered with the
 * worker and the instance ids they got.  The queue is served in order, but
 * one shape that does not fit never holds up another that does.  A request
 * this node can never satisfy is sent to a node that can (spillback), or
 * rejected when the caller asked for grant-or-reject, or kept as infeasible
 * demand for the autoscaler.
 *
 * Scheduling is batched: every event that may let a lease through marks the
 * manager dirty, and lease_mgr_flush() -- called once per loop iteration
 * from the node's before-sleep hook -- walks the queue once.  A burst of N
 * requests therefore costs one walk, not N.
 *
 * A worker blocked in ray.get lends its CPU back to the queue until it
 * unblocks, so nested tasks cannot deadlock a small node.  That alone would
 * let a flood of one kind of task (one scheduling class: shape, function,
 * nesting depth, strategy) start a worker for every queued task while the
 * first ones block; as in the stock raylet, a class already holding as many
 * leases as the node has CPUs for it gets one more only after a back-off
 * that doubles with each extra lease (the "worker cap"), while tasks of
 * other classes (the nested ones the blocked tasks wait for) go first.
 *
 * Everything runs on the loop thread. */
#ifndef CRAYLET_RAYLET_SCHED_LEASE_MGR_H
#define CRAYLET_RAYLET_SCHED_LEASE_MGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/id.h"
#include "common/loop.h"
#include "common/ray_addr.h"
#include "raylet/sched/resources.h"

typedef struct lease_mgr lease_mgr_t;
/* A worker record: the pool's, opaque here, compared by address. */
typedef struct worker worker_t;

#define LEASE_ID_MAX 64

/* ---- the pool, as the scheduler sees it ------------------------------------ */

/* What a granted lease needs its worker to be. */
typedef struct lease_worker_need {
    const uint8_t *job_id; /* ID_JOB_SIZE bytes */
    int language;          /* rpc::Language */
    const char *runtime_env;          /* serialized, NULL for none */
    const uint8_t *runtime_env_config; /* serialized rpc::RuntimeEnvConfig, may be NULL */
    size_t runtime_env_config_len;
    int runtime_env_hash;
    bool gpu;   /* GPU and CPU-only work never share a worker process */
    bool actor; /* an actor-creation lease */
    bool detached; /* for a detached actor or its descendants: outlives its job */
} lease_worker_need_t;

/* How a lease lets go of its worker. */
typedef enum {
    LEASE_RELEASE_IDLE,    /* returned: the worker may serve another lease */
    LEASE_RELEASE_RETIRE,  /* returned, but the worker is on its way out: never reuse */
    LEASE_RELEASE_FAILED,  /* its owner saw it misbehave: kill it, report a system error */
    LEASE_RELEASE_KILL,    /* the lease's resources are being taken away: kill it */
    LEASE_RELEASE_OOM,     /* the node runs out of memory: kill it (NODE_OUT_OF_MEMORY) */
} lease_release_t;

/* What a grant reply names. */
typedef struct lease_worker_info {
    uint8_t id[ID_UNIQUE_SIZE];
    int port;
    pid_t pid;
} lease_worker_info_t;

/* `w` is NULL when err < 0; `why` then says why and env_failed tells a
 * runtime-env failure from a spawn failure. */
typedef void (*lease_pop_cb)(void *ctx, worker_t *w, int err, const char *why, bool env_failed);

typedef struct lease_pool_ops {
    /* Find or start a worker.  The callback runs exactly once unless the
     * pop is cancelled; it may run before pop() returns, which then returns
     * NULL.  Otherwise returns a handle for pop_cancel(). */
    void *(*pop)(void *pool, const lease_worker_need_t *need, lease_pop_cb cb, void *cb_ctx);
    void (*pop_cancel)(void *pool, void *pop);
    /* `w` now serves a lease (normal_task: it ran a normal task). */
    void (*leased)(void *pool, worker_t *w, bool normal_task, bool detached);
    /* The lease on `w` ended; `detail` explains a FAILED or KILL release.
     * May re-enter the lease manager (lease_mgr_worker_dead) synchronously. */
    void (*release)(void *pool, worker_t *w, lease_release_t how, const char *detail);
    void (*describe)(void *pool, const worker_t *w, lease_worker_info_t *out);
} lease_pool_ops_t;

/* ---- requests and their outcomes --------------------------------------------- */

/* A decoded RequestWorkerLease.  Every pointer is borrowed for the call and
 * copied. */
typedef struct lease_request {
    const uint8_t *id; /* lease id, 1..LEASE_ID_MAX bytes */
    size_t id_len;
    const uint8_t *job_id; /* ID_JOB_SIZE bytes, or NULL (nil job) */
    int language;
    bool normal_task;    /* rpc::TaskType NORMAL_TASK */
    bool actor_creation; /* rpc::TaskType ACTOR_CREATION_TASK */
    const res_set_t *resources;
    /* What a node must have free to be chosen, when it differs from
     * `resources` (an actor placed with 1 CPU that runs on none), or NULL.
     * Node choice (here, spillback, affinity, load reports) goes by this;
     * what the lease holds is `resources`. */
    const res_set_t *placement;
    /* The scheduling class beyond its shape (function, depth, strategy),
     * hashed by the decoder; the shape is mixed in here. */
    uint64_t class_hash;
    const char *runtime_env; /* serialized, NULL/""/"{}" for none */
    const uint8_t *runtime_env_config;
    size_t runtime_env_config_len;
    bool grant_or_reject;
    bool local_only; /* hard node affinity to this node */
    /* Node affinity to another node (ID_UNIQUE_SIZE bytes), or NULL: a hard
     * one is sent there (or fails when that node is gone), a soft one goes
     * there while it has the resources free. */
    const uint8_t *affinity_node;
    bool affinity_soft;
    /* A detached actor, or work under one (LeaseSpec is_detached_actor or
     * root_detached_actor_id): its worker outlives the job that made it. */
    bool detached;
    /* The creation of a detached actor itself (is_detached_actor): GCS
     * restarts it long after its creator died, so a dead caller does not
     * make this request stale. */
    bool detached_actor;
    /* The objects the task reads (LeaseSpec.dependencies), decoded.  As in
     * the stock raylet, a lease is granted only once all are in the local
     * store, so no worker sits idle while its arguments travel. */
    const id_object_t *args;
    const ray_addr_t *arg_owners;
    size_t nargs;
    /* Who asked (LeaseSpec.caller_address): the lease dies with it.  Either
     * may be NULL (not said). */
    const uint8_t *caller_worker_id; /* ID_UNIQUE_SIZE bytes */
    const uint8_t *caller_node_id;   /* ID_UNIQUE_SIZE bytes */
    /* For the memory monitor's choice (sched/oom_policy.h): whether the
     * work survives its worker being killed (max_retries or
     * max_actor_restarts not 0), the task that submitted it (ID_TASK_SIZE
     * bytes, NULL: not said) and its name (NULL: not said). */
    bool retriable;
    const uint8_t *parent_task_id;
    const char *task_name;
} lease_request_t;

typedef struct lease_remote {
    char address[64];
    int port;
    uint8_t node_id[ID_UNIQUE_SIZE];
} lease_remote_t;

typedef enum {
    LEASE_GRANTED,
    LEASE_SPILLBACK,
    LEASE_REJECTED, /* grant-or-reject, and this node cannot */
    LEASE_FAILED,   /* cancelled; `failure` says why */
} lease_outcome_kind_t;

typedef enum {
    LEASE_FAIL_SCHEDULING,     /* no worker could be started */
    LEASE_FAIL_RUNTIME_ENV,    /* the runtime env could not be built */
    LEASE_FAIL_INTENDED,       /* cancelled by its owner */
    LEASE_FAIL_UNSCHEDULABLE,  /* no node can ever satisfy it */
    LEASE_FAIL_PG_REMOVED,     /* its placement group went away */
    LEASE_FAIL_SHUTDOWN,       /* the node is stopping */
} lease_failure_t;

/* Everything borrowed: valid only during the callback. */
typedef struct lease_outcome {
    lease_outcome_kind_t kind;
    /* LEASE_GRANTED */
    lease_worker_info_t worker;
    const res_alloc_t *cpu_alloc; /* may be NULL */
    const res_alloc_t *alloc;     /* everything but CPU, may be NULL */
    /* LEASE_SPILLBACK */
    lease_remote_t remote;
    /* LEASE_FAILED */
    lease_failure_t failure;
    const char *message;
} lease_outcome_t;

/* The worker that asked for leases died, or every worker of a node did
 * (`node_id`): its queued leases are dropped and the workers it holds
 * leases on are killed (detached actors' leases excepted), as the stock
 * raylet does; nobody else could ever return them.  Returns how many
 * leases went. */
size_t lease_mgr_owner_died(lease_mgr_t *mgr, const uint8_t worker_id[ID_UNIQUE_SIZE]);
size_t lease_mgr_owner_node_died(lease_mgr_t *mgr, const uint8_t node_id[ID_UNIQUE_SIZE]);

/* The arguments fetched under `token` are all local: the lease may be
 * granted at the next flush.  Unknown tokens are ignored. */
void lease_mgr_args_ready(lease_mgr_t *mgr, uint64_t token);

/* Whether a serialized runtime env means "none" (NULL, "" or "{}"): then
 * the request's runtime_env_config is ignored, so decoders need not build it. */
bool lease_runtime_env_is_none(const char *serialized);

/* Runs exactly once per lease_mgr_request (or never after lease_mgr_stop). */
typedef void (*lease_reply_cb)(void *call, const lease_outcome_t *outcome);

/* ---- construction ---------------------------------------------------------- */

typedef struct lease_mgr_callbacks {
    /* Find another node for a request; `need_available` asks for one with
     * the resources free right now, otherwise one whose totals fit.
     * Returns true and fills *out. */
    bool (*pick_remote)(void *ctx, const res_set_t *request, bool need_available, lease_remote_t *out);
    /* The same for one named node (node affinity): false when it is not a
     * live node (or, with `need_available`, has not the resources free). */
    bool (*pick_node)(void *ctx, const uint8_t node_id[ID_UNIQUE_SIZE], const res_set_t *request,
                      bool need_available, lease_remote_t *out);
    /* The number of granted leases went to zero or away from it. */
    void (*on_busy_changed)(void *ctx, bool busy);
    /* A lease was granted to `w` holding `alloc` (everything but CPU), just
     * before the reply goes out: CPU affinity for GPU leases. Optional. */
    void (*on_granted)(void *ctx, worker_t *w, const res_alloc_t *alloc);
    /* The lease on `w` was returned by its owner (the task is done), just
     * before the worker goes back to the pool.  Optional. */
    void (*on_returned)(void *ctx, worker_t *w);
    /* Bring a queued lease's arguments into the local store; `token` names
     * the fetch.  Returns true when all are local already (nothing
     * started); otherwise lease_mgr_args_ready(token) follows once they
     * are, unless args_cancel(token) comes first.  Optional: without it
     * arguments are not waited for. */
    bool (*args_fetch)(void *ctx, uint64_t token, const id_object_t *ids, const ray_addr_t *owners, size_t n);
    void (*args_cancel)(void *ctx, uint64_t token);
} lease_mgr_callbacks_t;

typedef struct lease_mgr_options {
    bool worker_cap_enabled;
    uint64_t worker_cap_initial_backoff_ms; /* first extra lease of a capped class */
    uint64_t worker_cap_max_backoff_ms;     /* the doubling stops here */
} lease_mgr_options_t;

/* `loop`, `resources` and `pool` are borrowed and must outlive the manager;
 * `ops` and `cbs` are copied. */
lease_mgr_t *lease_mgr_create(loop_t *loop, res_node_t *resources, const lease_pool_ops_t *ops, void *pool,
                              const lease_mgr_options_t *opts, const lease_mgr_callbacks_t *cbs, void *ctx);
/* Answers every queued request (LEASE_FAIL_SHUTDOWN), cancels pops and
 * timers and forgets granted leases (their workers are the pool's to kill).
 * No callback runs after it returns; later calls answer at once.
 * Idempotent. */
void lease_mgr_stop(lease_mgr_t *mgr);
/* Stops if needed, then frees. */
void lease_mgr_destroy(lease_mgr_t *mgr);

/* ---- requests --------------------------------------------------------------- */

/* Queue a request; `reply` runs with `call` when it is decided.  A request
 * whose lease id is already granted is answered with the same grant (a
 * retry); one already queued is refused with -EEXIST (no callback).  A
 * malformed request returns -EINVAL (no callback). */
int lease_mgr_request(lease_mgr_t *mgr, const lease_request_t *req, lease_reply_cb reply, void *call);
/* ReturnWorkerLease: frees the lease's resources and hands the worker back
 * (RETIRE when `worker_exiting`, FAILED when `disconnect_worker`).  Unknown
 * or ungranted leases are ignored (the worker died first). */
void lease_mgr_return(lease_mgr_t *mgr, const uint8_t *id, size_t id_len, bool disconnect_worker,
                      bool worker_exiting, const char *detail);
/* CancelWorkerLease: true if a lease not yet granted was cancelled (its
 * request is answered LEASE_FAIL_INTENDED). */
bool lease_mgr_cancel(lease_mgr_t *mgr, const uint8_t *id, size_t id_len);

/* One worker's backlog report replaces its previous one. */
typedef struct lease_backlog_entry {
    const res_set_t *shape; /* borrowed */
    int64_t backlog;
} lease_backlog_entry_t;
void lease_mgr_report_backlog(lease_mgr_t *mgr, const uint8_t worker_id[ID_UNIQUE_SIZE],
                              const lease_backlog_entry_t *entries, size_t n);

/* ---- worker events ------------------------------------------------------------ */

void lease_mgr_worker_blocked(lease_mgr_t *mgr, worker_t *w);
void lease_mgr_worker_unblocked(lease_mgr_t *mgr, worker_t *w);
/* The worker is dying: free its lease's resources (it never comes back). */
void lease_mgr_worker_dead(lease_mgr_t *mgr, worker_t *w);
/* Whether `w` holds a granted lease. */
bool lease_mgr_worker_leased(const lease_mgr_t *mgr, const worker_t *w);

/* ---- resources going away -------------------------------------------------------- */

/* A placement group's bundle is going away: answer queued requests whose
 * resources name `needle` (a "_group_<pg>" suffix) as LEASE_FAIL_PG_REMOVED,
 * and release the workers of granted ones with LEASE_RELEASE_KILL so the
 * bundle's resources come back.  Returns the number of workers killed. */
size_t lease_mgr_drop_matching(lease_mgr_t *mgr, const char *needle);
/* The autoscaler gave up on these shapes: answer queued infeasible
 * requests of exactly one of them as unschedulable.  Returns the count. */
size_t lease_mgr_cancel_shapes(lease_mgr_t *mgr, res_set_t *const *shapes, size_t n);

/* ---- scheduling ---------------------------------------------------------------------- */

/* Something changed that may let queued leases through (resources or
 * workers freed, the cluster view changed): schedule at the next flush. */
void lease_mgr_mark_dirty(lease_mgr_t *mgr);
/* The node drains (raylet/cluster/drain.h): nothing more is granted here.
 * Queued leases, and later ones, spill to another node that can run them
 * (busy or not); a grant-or-reject lease is rejected, one bound to this
 * node by hard affinity fails UNSCHEDULABLE, and with no other node able
 * the lease waits here as infeasible (demand for the autoscaler).  Leases
 * already granted run to their end.  There is no way back. */
void lease_mgr_set_draining(lease_mgr_t *mgr);
/* Walk the queue if dirty.  Called from the before-sleep hook; tests call
 * it directly. */
void lease_mgr_flush(lease_mgr_t *mgr);

/* ---- reports ----------------------------------------------------------------------- */

/* Queued demand by shape, for ResourcesData.resource_load_by_shape. */
typedef struct lease_demand {
    const res_set_t *shape;
    uint64_t ready;      /* queued and feasible here */
    uint64_t infeasible; /* no node can run it */
    int64_t backlog;     /* reported by owners */
} lease_demand_t;
/* The array stays valid until the next call or until the queue changes. */
size_t lease_mgr_demand(lease_mgr_t *mgr, const lease_demand_t **out);
size_t lease_mgr_granted(const lease_mgr_t *mgr);
size_t lease_mgr_queued(const lease_mgr_t *mgr);

/* A granted lease, as the memory monitor sees it.  Pointers borrowed until
 * the lease manager next changes. */
typedef struct lease_granted_info {
    const uint8_t *id;
    size_t id_len;
    worker_t *worker;
    pid_t pid;
    bool retriable, actor_creation;
    const uint8_t *parent_task_id; /* ID_TASK_SIZE bytes; zeros when not said */
    const char *task_name;         /* "" when not said */
    uint64_t granted_at_ms;        /* loop clock */
} lease_granted_info_t;
/* Up to `max` granted leases with a live worker, oldest first; the count. */
size_t lease_mgr_granted_list(lease_mgr_t *mgr, lease_granted_info_t *out, size_t max);
/* Take granted lease `id` away for lack of memory: its resources come back
 * and its worker is killed (LEASE_RELEASE_OOM, `detail` reported as the
 * worker's exit detail).  False for an unknown or ungranted lease. */
bool lease_mgr_evict(lease_mgr_t *mgr, const uint8_t *id, size_t id_len, const char *detail);
size_t lease_mgr_blocked(const lease_mgr_t *mgr);

#endif
