#include "raylet/sched/lease_mgr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/hash.h"
#include "common/list.h"
#include "common/log.h"
#include "common/u64map.h"

typedef enum {
    LEASE_QUEUED,         /* waiting for resources */
    LEASE_WAITING_WORKER, /* resources held, waiting for the pool */
    LEASE_HELD,           /* granted: a worker runs it */
} lease_state_t;

typedef struct lease {
    list_t node; /* mgr->leases: queued first-come first-served, then others */
    lease_mgr_t *mgr;
    uint8_t id[LEASE_ID_MAX];
    size_t id_len;
    lease_reply_cb reply; /* until answered */
    void *call;
    lease_state_t state;
    res_set_t *request;
    res_set_t *placement; /* NULL: the same as `request` */
    char *shape; /* canonical "CPU=1,GPU=1" for load reports; made on first report */
    uint8_t job_id[ID_JOB_SIZE];
    int language;
    bool normal_task;
    bool actor_creation;
    int runtime_env_hash;
    char *runtime_env;           /* serialized, NULL for none */
    uint8_t *runtime_env_config; /* serialized rpc::RuntimeEnvConfig */
    size_t runtime_env_config_len;
    bool grant_or_reject;
    bool infeasible;  /* no node can ever run it: demand for the autoscaler */
    bool local_only;  /* hard node affinity to this node */
    bool affinity_elsewhere; /* node affinity to `affinity_node`, another node */
    bool affinity_soft;
    uint8_t affinity_node[ID_UNIQUE_SIZE];
    bool detached;    /* see lease_request_t */
    bool retriable;   /* see lease_request_t */
    uint8_t parent_task_id[ID_TASK_SIZE];
    char *task_name;        /* NULL: not said */
    uint64_t granted_at_ms; /* loop clock, once held */
    res_alloc_t *alloc;     /* everything but CPU */
    res_alloc_t *cpu_alloc; /* CPU, lent out while the worker is blocked */
    res_set_t *cpu_set;     /* what cpu_alloc holds */
    worker_t *worker;
    bool blocked;       /* its worker is in ray.get: CPU lent out */
    void *pop;          /* the pool's handle while waiting for a worker */
    uint64_t class_key; /* the scheduling class, hashed */
    bool class_counted; /* holds one of its class's granted slots */
    /* Its arguments: granted only once all are local. */
    id_object_t *args;
    ray_addr_t *arg_owners;
    size_t nargs;
    bool args_local;      /* all of them are (or there are none) */
    uint8_t caller_worker[ID_UNIQUE_SIZE]; /* who asked; zero: not said */
    uint8_t caller_node[ID_UNIQUE_SIZE];
    uint64_t args_token;  /* a fetch in progress; 0: none */
} lease_t;

/* One scheduling class with leases holding resources: the worker cap's
 * bookkeeping (see lease_mgr.h). */
typedef struct lease_class {
    uint64_t key;
    size_t granted;         /* leases holding resources (blocked ones too) */
    size_t capacity;        /* node CPUs / the class's CPU; SIZE_MAX: no cap */
    uint64_t next_grant_ms; /* over capacity: no new lease before this */
    bool warned_throttle;   /* the back-off reached its maximum (logged once) */
} lease_class_t;

typedef struct lease_backlog {
    char *shape;
    int64_t backlog;
    uint8_t worker_id[ID_UNIQUE_SIZE];
} lease_backlog_t;

struct lease_mgr {
    loop_t *loop;
    res_node_t *res;
    lease_pool_ops_t ops;
    void *pool;
    lease_mgr_callbacks_t cbs;
    void *ctx;
    list_t leases;
    u64map_t *by_worker; /* worker_t address -> its lease (WAITING handed over, HELD) */
    u64map_t *by_args;   /* args_token -> the lease whose arguments are coming */
    /* Workers and nodes that died (the newest LEASE_DEAD_MAX): a lease
     * request they sent before dying can still arrive after, and nobody
     * would ever return it. */
    uint8_t (*dead)[ID_UNIQUE_SIZE]; /* ring */
    size_t dead_next, dead_count;
    u64map_t *dead_index; /* hash of an id -> its ring slot + 1 */
    uint64_t next_args_token;
    size_t granted;
    size_t blocked;
    bool dirty;      /* something changed: walk the queue at the next flush */
    bool draining;   /* nothing more is granted here */
    bool scheduling; /* inside the walk */
    lease_t *current; /* the lease the walk is trying: pool callbacks must not free it */
    bool stopped;
    lease_backlog_t *backlogs;
    size_t backlog_count, backlog_cap;
    lease_class_t *classes;
    size_t class_count, class_cap;
    bool cap_enabled;
    uint64_t cap_initial_ms, cap_max_ms;
    uint64_t cap_timer, cap_timer_at; /* wakes the queue when a back-off ends */
    lease_demand_t *demand;           /* the last lease_mgr_demand() result */
    size_t demand_cap;
};

/* ---- helpers ----------------------------------------------------------------- */

static bool lease_owner_is_dead(const lease_mgr_t *mgr, const uint8_t id[ID_UNIQUE_SIZE]);

static lease_t *lease_of(const list_t *n) { return LIST_ENTRY(n, lease_t, node); }
static bool lease_same_shape(const res_set_t *a, const res_set_t *b);

/* What a node must have free to take the lease. */
static const res_set_t *lease_placement(const lease_t *l) { return l->placement ? l->placement : l->request; }

static char *lease_shape_key(const res_set_t *set)
{
    size_t cap = 64, len = 0;
    char *s = xcalloc(cap, 1);
    for (size_t i = 0; i < res_set_count(set); i++) {
        char item[256];
        int n = snprintf(item, sizeof item, "%s%s=%.4f", i ? "," : "", res_set_name_at(set, i),
                         res_amount_to_double(res_set_amount_at(set, i)));
        if (n < 0)
            continue;
        if (len + (size_t)n + 1 > cap) {
            cap = (len + (size_t)n + 1) * 2;
            s = xrealloc(s, cap);
        }
        memcpy(s + len, item, (size_t)n + 1);
        len += (size_t)n;
    }
    return s;
}

/* The scheduling class of a request: the caller's class hash folded with
 * every resource name and fixed-point amount (a set keeps its names
 * sorted, so equal shapes hash equal).  Called once per lease, so it
 * formats nothing and allocates nothing. */
static uint64_t lease_class_key(uint64_t class_hash, const res_set_t *set)
{
    uint64_t h = class_hash;
    for (size_t i = 0; i < res_set_count(set); i++) {
        const char *name = res_set_name_at(set, i);
        res_amount_t amount = res_set_amount_at(set, i);
        h = hash_fnv64(h, name, strlen(name) + 1);
        h = hash_fnv64(h, &amount, sizeof amount);
    }
    return h;
}

static lease_class_t *lease_class_find(lease_mgr_t *mgr, uint64_t key)
{
    for (size_t i = 0; i < mgr->class_count; i++)
        if (mgr->classes[i].key == key)
            return &mgr->classes[i];
    return NULL;
}

/* The class entry for a lease about to take resources, made on first use.
 * Valid until the class table next changes. */
static lease_class_t *lease_class_get(lease_mgr_t *mgr, const lease_t *l)
{
    lease_class_t *c = lease_class_find(mgr, l->class_key);
    if (c)
        return c;
    if (mgr->class_count == mgr->class_cap) {
        mgr->class_cap = mgr->class_cap ? mgr->class_cap * 2 : 16;
        mgr->classes = xrealloc(mgr->classes, mgr->class_cap * sizeof *mgr->classes);
    }
    c = &mgr->classes[mgr->class_count++];
    c->key = l->class_key;
    c->granted = 0;
    c->next_grant_ms = UINT64_MAX;
    c->warned_throttle = false;
    /* As many leases as the node's CPUs hold copies of the class's CPU
     * request, rounded; classes needing no CPU are never capped. */
    res_amount_t cpu = res_set_get(l->request, "CPU");
    res_amount_t total = res_node_total(mgr->res, "CPU");
    if (cpu <= 0 || total <= 0) {
        c->capacity = SIZE_MAX;
    } else {
        c->capacity = (size_t)((total + cpu / 2) / cpu);
        if (c->capacity == 0)
            c->capacity = 1;
    }
    return c;
}

static void lease_class_forget_if_empty(lease_mgr_t *mgr, lease_class_t *c)
{
    if (c->granted == 0)
        *c = mgr->classes[--mgr->class_count];
}

/* The lease gives back its class slot; an empty class is forgotten. */
static void lease_class_release(lease_mgr_t *mgr, lease_t *l)
{
    if (!l->class_counted)
        return;
    l->class_counted = false;
    lease_class_t *c = lease_class_find(mgr, l->class_key);
    if (!c)
        return;
    if (c->granted > 0)
        c->granted--;
    lease_class_forget_if_empty(mgr, c);
}

static void lease_on_cap_timer(loop_t *loop, uint64_t id, void *data)
{
    lease_mgr_t *mgr = data;
    mgr->cap_timer = 0;
    mgr->cap_timer_at = 0;
    lease_mgr_mark_dirty(mgr);
}

static void lease_arm_cap_timer(lease_mgr_t *mgr, uint64_t at_ms)
{
    if (mgr->cap_timer && mgr->cap_timer_at <= at_ms)
        return;
    if (mgr->cap_timer)
        loop_cancel_timer(mgr->loop, mgr->cap_timer);
    uint64_t now = loop_now_ms(mgr->loop);
    mgr->cap_timer = loop_add_timer(mgr->loop, at_ms > now ? at_ms - now : 0, lease_on_cap_timer, mgr);
    mgr->cap_timer_at = at_ms;
}

/* May a lease of class c take resources now?  Past its capacity a class
 * waits initial << (extra leases) ms, at most cap_max, counted from the
 * first time it was held back; a grant resets the clock. */
static bool lease_class_may_grant(lease_mgr_t *mgr, lease_class_t *c)
{
    if (!mgr->cap_enabled || c->granted < c->capacity)
        return true;
    uint64_t now = loop_now_ms(mgr->loop);
    if (now >= c->next_grant_ms)
        return true;
    size_t extra = c->granted - c->capacity;
    uint64_t wait = mgr->cap_max_ms;
    if (extra < 63 && mgr->cap_initial_ms <= (mgr->cap_max_ms >> extra))
        wait = mgr->cap_initial_ms << extra;
    if (wait == mgr->cap_max_ms && extra > 0 && !c->warned_throttle) {
        c->warned_throttle = true;
        log_warn("starting too many worker processes for one kind of task; worker start-up is throttled");
    }
    if (now + wait < c->next_grant_ms)
        c->next_grant_ms = now + wait;
    lease_arm_cap_timer(mgr, c->next_grant_ms);
    return false;
}

static void lease_args_stop(lease_mgr_t *mgr, lease_t *l)
{
    if (!l->args_token)
        return;
    u64map_del(mgr->by_args, l->args_token);
    if (mgr->cbs.args_cancel)
        mgr->cbs.args_cancel(mgr->ctx, l->args_token);
    l->args_token = 0;
}

/* Are the lease's arguments local?  If not, have them fetched (once). */
static bool lease_args_local(lease_mgr_t *mgr, lease_t *l)
{
    if (l->args_local || l->args_token)
        return l->args_local;
    if (!mgr->cbs.args_fetch) {
        l->args_local = true;
        return true;
    }
    uint64_t token = ++mgr->next_args_token;
    if (mgr->cbs.args_fetch(mgr->ctx, token, l->args, l->arg_owners, l->nargs)) {
        l->args_local = true;
        return true;
    }
    l->args_token = token;
    u64map_put(mgr->by_args, token, l);
    return false;
}

void lease_mgr_args_ready(lease_mgr_t *mgr, uint64_t token)
{
    void *v;
    if (!mgr || !u64map_get(mgr->by_args, token, &v))
        return;
    u64map_del(mgr->by_args, token);
    lease_t *l = v;
    l->args_token = 0;
    l->args_local = true;
    lease_mgr_mark_dirty(mgr);
}

static void lease_free(lease_t *l)
{
    lease_args_stop(l->mgr, l);
    free(l->args);
    free(l->arg_owners);
    list_remove(&l->node);
    res_set_destroy(l->cpu_set);
    free(l->runtime_env);
    free(l->runtime_env_config);
    res_set_destroy(l->request);
    res_set_destroy(l->placement);
    free(l->shape);
    free(l->task_name);
    free(l);
}

static lease_t *lease_find(lease_mgr_t *mgr, const uint8_t *id, size_t len)
{
    list_t *n;
    LIST_FOREACH(n, &mgr->leases) {
        lease_t *l = lease_of(n);
        if (l->id_len == len && memcmp(l->id, id, len) == 0)
            return l;
    }
    return NULL;
}

static lease_t *lease_of_worker(const lease_mgr_t *mgr, const worker_t *w)
{
    void *l = NULL;
    if (!mgr || !w || !u64map_get(mgr->by_worker, (uint64_t)(uintptr_t)w, &l))
        return NULL;
    return l;
}

static void lease_set_granted_count(lease_mgr_t *mgr, size_t n)
{
    bool was = mgr->granted > 0;
    mgr->granted = n;
    if (was != (n > 0) && mgr->cbs.on_busy_changed)
        mgr->cbs.on_busy_changed(mgr->ctx, n > 0);
}

static void lease_release_resources(lease_mgr_t *mgr, lease_t *l)
{
    lease_class_release(mgr, l);
    if (l->alloc)
        res_free(mgr->res, l->alloc);
    if (l->cpu_alloc)
        res_free(mgr->res, l->cpu_alloc);
    l->alloc = l->cpu_alloc = NULL;
}

/* The lease lets go of its worker (if it has one) and is freed; returns
 * the worker, for the caller to hand back to the pool. */
static worker_t *lease_retire(lease_mgr_t *mgr, lease_t *l)
{
    worker_t *w = l->worker;
    if (w)
        u64map_del(mgr->by_worker, (uint64_t)(uintptr_t)w);
    if (l->blocked && mgr->blocked > 0)
        mgr->blocked--;
    lease_release_resources(mgr, l);
    if (l->state == LEASE_HELD)
        lease_set_granted_count(mgr, mgr->granted - 1);
    lease_free(l);
    return w;
}

/* ---- replies -------------------------------------------------------------------- */

static void lease_answer_failed(lease_t *l, lease_failure_t why, const char *message);

/* A lease not granted yet leaves: answered, its pop (if any) cancelled,
 * its resources back, freed. */
static void lease_drop_unheld(lease_mgr_t *mgr, lease_t *l, lease_failure_t why, const char *message)
{
    lease_answer_failed(l, why, message);
    if (l->pop)
        mgr->ops.pop_cancel(mgr->pool, l->pop);
    l->pop = NULL;
    lease_release_resources(mgr, l);
    lease_free(l);
}

static void lease_answer(lease_t *l, const lease_outcome_t *out)
{
    lease_reply_cb reply = l->reply;
    l->reply = NULL;
    if (reply)
        reply(l->call, out);
}

static void lease_answer_failed(lease_t *l, lease_failure_t why, const char *message)
{
    lease_outcome_t out = {.kind = LEASE_FAILED, .failure = why, .message = message ? message : ""};
    lease_answer(l, &out);
}

static void lease_answer_grant(lease_mgr_t *mgr, lease_t *l)
{
    if (mgr->cbs.on_granted && l->alloc)
        mgr->cbs.on_granted(mgr->ctx, l->worker, l->alloc);
    lease_outcome_t out = {.kind = LEASE_GRANTED, .cpu_alloc = l->cpu_alloc, .alloc = l->alloc};
    mgr->ops.describe(mgr->pool, l->worker, &out.worker);
    lease_answer(l, &out);
}

/* ---- granting ------------------------------------------------------------------- */

static void lease_on_worker(void *ctx, worker_t *w, int err, const char *why, bool env_failed)
{
    lease_t *l = ctx;
    lease_mgr_t *mgr = l->mgr;
    l->pop = NULL;
    if (err || !w) {
        log_warn("no worker for lease: %s", why ? why : cr_strerror(err));
        lease_release_resources(mgr, l);
        lease_answer_failed(l, env_failed ? LEASE_FAIL_RUNTIME_ENV : LEASE_FAIL_SCHEDULING,
                            why ? why : "could not start a worker");
        if (l == mgr->current) {
            /* The walk is trying this very lease and frees it when the
             * pool returns. */
            l->state = LEASE_QUEUED;
            return;
        }
        /* Any other lease (starting workers for one pop can fail an older
         * one at once) goes now; its resources may serve the queue. */
        lease_free(l);
        lease_mgr_mark_dirty(mgr);
        return;
    }
    if (!l->reply) {
        /* The caller went away while we waited: recycle the worker. */
        lease_release_resources(mgr, l);
        lease_free(l);
        mgr->ops.release(mgr->pool, w, LEASE_RELEASE_IDLE, NULL);
        lease_mgr_mark_dirty(mgr);
        return;
    }
    l->worker = w;
    if (u64map_put(mgr->by_worker, (uint64_t)(uintptr_t)w, l) < 0) {
        log_error("out of memory indexing a lease; aborting");
        abort();
    }
    mgr->ops.leased(mgr->pool, w, l->normal_task, l->detached);
    l->state = LEASE_HELD;
    l->granted_at_ms = loop_now_ms(mgr->loop);
    lease_set_granted_count(mgr, mgr->granted + 1);
    lease_answer_grant(mgr, l);
}

/* Take the resources: CPU separately, so a blocked worker can lend it. */
static int lease_take_resources(lease_mgr_t *mgr, lease_t *l)
{
    res_set_t *rest = res_set_create();
    res_set_t *cpu = res_set_create();
    for (size_t i = 0; i < res_set_count(l->request); i++) {
        const char *name = res_set_name_at(l->request, i);
        /* A task in a placement group holds its CPU as CPU_group_* names:
         * those are lent out while it blocks, like plain CPU. */
        bool is_cpu = strcmp(name, "CPU") == 0 || strncmp(name, "CPU_group_", 10) == 0;
        res_set_put(is_cpu ? cpu : rest, name, res_set_amount_at(l->request, i));
    }
    int rc = res_allocate(mgr->res, rest, &l->alloc);
    if (rc == 0 && res_set_count(cpu) > 0) {
        rc = res_allocate(mgr->res, cpu, &l->cpu_alloc);
        if (rc != 0) {
            res_free(mgr->res, l->alloc);
            l->alloc = NULL;
        }
    }
    res_set_destroy(l->cpu_set);
    l->cpu_set = cpu; /* kept: re-acquired when the worker unblocks */
    res_set_destroy(rest);
    return rc;
}

static void lease_start_grant(lease_mgr_t *mgr, lease_t *l)
{
    l->state = LEASE_WAITING_WORKER;
    bool gpu = false;
    for (size_t i = 0; i < res_set_count(l->request) && !gpu; i++) {
        const char *name = res_set_name_at(l->request, i);
        gpu = strcmp(name, "GPU") == 0 || strncmp(name, "GPU_group_", 10) == 0;
    }
    lease_worker_need_t need = {.job_id = l->job_id,
                                .language = l->language,
                                .runtime_env = l->runtime_env,
                                .runtime_env_config = l->runtime_env_config,
                                .runtime_env_config_len = l->runtime_env_config_len,
                                .runtime_env_hash = l->runtime_env_hash,
                                .gpu = gpu,
                                .actor = l->actor_creation,
                                .detached = l->detached};
    void *pop = mgr->ops.pop(mgr->pool, &need, lease_on_worker, l);
    /* Answered at once: `l` may already be granted (or gone back to the
     * queue); only a pending pop leaves a handle. */
    if (pop)
        l->pop = pop;
}

static bool lease_spill(lease_mgr_t *mgr, lease_t *l, bool need_available)
{
    lease_remote_t remote;
    if (l->grant_or_reject || l->local_only || !mgr->cbs.pick_remote ||
        !mgr->cbs.pick_remote(mgr->ctx, lease_placement(l), need_available, &remote))
        return false;
    lease_outcome_t out = {.kind = LEASE_SPILLBACK, .remote = remote};
    lease_answer(l, &out);
    return true;
}

#define LEASE_AFFINITY_GONE                                                                               \
    "The node specified via NodeAffinitySchedulingStrategy doesn't exist any more or is infeasible, and "   \
    "soft=False was specified."

/* Node affinity to another node: a hard one always goes there (spilled
 * back, or rejected for GCS to place again) unless that node is gone; a
 * soft one goes there while it has the resources free.  Returns true if
 * the lease was answered. */
static bool lease_try_affinity(lease_mgr_t *mgr, lease_t *l)
{
    lease_remote_t there;
    bool go = mgr->cbs.pick_node &&
              mgr->cbs.pick_node(mgr->ctx, l->affinity_node, lease_placement(l), l->affinity_soft, &there);
    if (!go && l->affinity_soft)
        return false;
    if (!go) {
        lease_answer_failed(l, LEASE_FAIL_UNSCHEDULABLE, LEASE_AFFINITY_GONE);
        return true;
    }
    lease_outcome_t out = {.kind = l->grant_or_reject ? LEASE_REJECTED : LEASE_SPILLBACK, .remote = there};
    lease_answer(l, &out);
    return true;
}

/* A draining node grants nothing: the lease goes elsewhere or waits. */
static bool lease_try_one_draining(lease_mgr_t *mgr, lease_t *l)
{
    if (l->local_only) {
        lease_answer_failed(l, LEASE_FAIL_UNSCHEDULABLE, LEASE_AFFINITY_GONE);
        return true;
    }
    if (l->grant_or_reject) {
        lease_outcome_t out = {.kind = LEASE_REJECTED};
        lease_answer(l, &out);
        return true;
    }
    if (lease_spill(mgr, l, true) || lease_spill(mgr, l, false))
        return true;
    l->infeasible = true;
    return false;
}

/* Returns true if the lease left the queue (answered or handed on). */
static bool lease_try_one(lease_mgr_t *mgr, lease_t *l)
{
    if (l->affinity_elsewhere && lease_try_affinity(mgr, l))
        return true;
    if (mgr->draining)
        return lease_try_one_draining(mgr, l);
    int rc = res_check(mgr->res, lease_placement(l));
    if (rc == 0 && l->placement)
        rc = res_check(mgr->res, l->request);
    if (rc == 0) {
        /* It would run here: its arguments come first (no resources or
         * worker held meanwhile). */
        if (!lease_args_local(mgr, l))
            return false;
        lease_class_t *c = lease_class_get(mgr, l);
        if (!lease_class_may_grant(mgr, c)) {
            /* Held back by the worker cap: another node with the resources
             * free may run it now. */
            if (lease_spill(mgr, l, true)) {
                lease_class_forget_if_empty(mgr, c);
                return true;
            }
            return false;
        }
        if (lease_take_resources(mgr, l) != 0) {
            lease_class_forget_if_empty(mgr, c);
            return false;
        }
        c->granted++;
        c->next_grant_ms = UINT64_MAX;
        l->class_counted = true;
        l->infeasible = false;
        lease_start_grant(mgr, l);
        return true;
    }
    if (rc == -EINVAL) {
        lease_answer_failed(l, LEASE_FAIL_UNSCHEDULABLE, "malformed resource request");
        return true;
    }
    /* Busy (-EAGAIN) or never here (-ENOSPC).  A grant-or-reject lease
     * (GCS placing an actor after a spillback) is rejected when it can never
     * run here, or when it is busy here but another node has the resources
     * free now: GCS then asks again elsewhere instead of waiting on us.
     * With no node free it waits here, as in the stock raylet. */
    if (l->grant_or_reject) {
        lease_remote_t elsewhere;
        if (rc == -ENOSPC ||
            (mgr->cbs.pick_remote && mgr->cbs.pick_remote(mgr->ctx, lease_placement(l), true, &elsewhere))) {
            lease_outcome_t out = {.kind = LEASE_REJECTED};
            lease_answer(l, &out);
            return true;
        }
    }
    if (lease_spill(mgr, l, rc == -EAGAIN))
        return true;
    l->infeasible = rc == -ENOSPC;
    /* Queued here for resources: fetch its arguments meanwhile. */
    if (rc == -EAGAIN)
        lease_args_local(mgr, l);
    return false;
}

void lease_mgr_set_draining(lease_mgr_t *mgr)
{
    if (!mgr || mgr->draining)
        return;
    mgr->draining = true;
    mgr->dirty = true;
}

void lease_mgr_mark_dirty(lease_mgr_t *mgr)
{
    if (mgr)
        mgr->dirty = true;
}

void lease_mgr_flush(lease_mgr_t *mgr)
{
    if (!mgr || mgr->stopped || mgr->scheduling)
        return;
    /* Pool callbacks inside the walk may mark the manager dirty again (a
     * pop answered at once frees resources): walk until it stays clean. */
    mgr->scheduling = true;
    while (mgr->dirty) {
        mgr->dirty = false;
        list_t *n, *next;
        LIST_FOREACH_SAFE(n, next, &mgr->leases) {
            lease_t *l = lease_of(n);
            if (l->state != LEASE_QUEUED)
                continue;
            mgr->current = l;
            bool left = lease_try_one(mgr, l);
            mgr->current = NULL;
            /* The pool may have freed other leases (never `l`): take the
             * successor from `l` now, not the one saved before. */
            next = l->node.next;
            /* Answered without being handed on (a rejection, a failure):
             * it leaves the queue. */
            if (left && !l->reply && l->state == LEASE_QUEUED)
                lease_free(l);
        }
    }
    mgr->scheduling = false;
}

bool lease_runtime_env_is_none(const char *serialized)
{
    return !serialized || !*serialized || strcmp(serialized, "{}") == 0;
}

/* A job's runtime env keys the worker pool by a hash of its serialized
 * form (FNV-1a: stable, and the worker only echoes it back); no env is 0. */
static void lease_set_runtime_env(lease_t *l, const lease_request_t *req)
{
    const char *env = req->runtime_env;
    if (lease_runtime_env_is_none(env))
        return;
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)env; *p; p++)
        h = (h ^ *p) * 16777619u;
    l->runtime_env_hash = (int)(h & 0x7fffffff) | 1;
    l->runtime_env = xstrdup(env);
    if (req->runtime_env_config && req->runtime_env_config_len) {
        l->runtime_env_config = xmemdup(req->runtime_env_config, req->runtime_env_config_len);
        l->runtime_env_config_len = req->runtime_env_config_len;
    }
}

/* ---- requests ---------------------------------------------------------------- */

int lease_mgr_request(lease_mgr_t *mgr, const lease_request_t *req, lease_reply_cb reply, void *call)
{
    if (!req->id || req->id_len == 0 || req->id_len > LEASE_ID_MAX || !req->resources)
        return -EINVAL;
    if (mgr->stopped) {
        lease_outcome_t out = {.kind = LEASE_FAILED, .failure = LEASE_FAIL_SHUTDOWN,
                               .message = "raylet shutting down"};
        reply(call, &out);
        return 0;
    }
    if (!req->detached_actor &&
        ((req->caller_worker_id && lease_owner_is_dead(mgr, req->caller_worker_id)) ||
         (req->caller_node_id && lease_owner_is_dead(mgr, req->caller_node_id)))) {
        /* Sent just before its owner died, arriving after. */
        lease_outcome_t out = {.kind = LEASE_FAILED, .failure = LEASE_FAIL_INTENDED,
                               .message = "the owner of the lease has died"};
        reply(call, &out);
        return 0;
    }
    lease_t *dup = lease_find(mgr, req->id, req->id_len);
    if (dup) {
        if (dup->state != LEASE_HELD || !dup->worker)
            return -EEXIST;
        /* A retried request for a lease we already granted: same answer. */
        dup->reply = reply;
        dup->call = call;
        lease_answer_grant(mgr, dup);
        return 0;
    }
    lease_t *l = xcalloc(1, sizeof *l);
    list_init(&l->node);
    l->mgr = mgr;
    memcpy(l->id, req->id, req->id_len);
    l->id_len = req->id_len;
    l->reply = reply;
    l->call = call;
    l->state = LEASE_QUEUED;
    l->request = res_set_copy(req->resources);
    /* Kept only where it differs: Ray's owners send every task's resources
     * in both maps, and a second copy would double the check per attempt. */
    if (req->placement && !lease_same_shape(req->placement, req->resources))
        l->placement = res_set_copy(req->placement);
    if (req->job_id)
        memcpy(l->job_id, req->job_id, ID_JOB_SIZE);
    l->language = req->language;
    l->normal_task = req->normal_task;
    l->actor_creation = req->actor_creation;
    /* A hash collision only merges the caps of two classes. */
    l->class_key = lease_class_key(req->class_hash, l->request);
    lease_set_runtime_env(l, req);
    l->grant_or_reject = req->grant_or_reject;
    l->local_only = req->local_only;
    if (req->affinity_node) {
        l->affinity_elsewhere = true;
        l->affinity_soft = req->affinity_soft;
        memcpy(l->affinity_node, req->affinity_node, ID_UNIQUE_SIZE);
    }
    l->detached = req->detached;
    l->retriable = req->retriable;
    if (req->parent_task_id)
        memcpy(l->parent_task_id, req->parent_task_id, ID_TASK_SIZE);
    if (req->task_name && req->task_name[0])
        l->task_name = xstrdup(req->task_name);
    if (req->caller_worker_id)
        memcpy(l->caller_worker, req->caller_worker_id, ID_UNIQUE_SIZE);
    if (req->caller_node_id)
        memcpy(l->caller_node, req->caller_node_id, ID_UNIQUE_SIZE);
    if (req->nargs && req->args && req->arg_owners) {
        l->args = xmalloc(req->nargs * sizeof *l->args);
        l->arg_owners = xmalloc(req->nargs * sizeof *l->arg_owners);
        memcpy(l->args, req->args, req->nargs * sizeof *l->args);
        memcpy(l->arg_owners, req->arg_owners, req->nargs * sizeof *l->arg_owners);
        l->nargs = req->nargs;
    } else {
        l->args_local = true;
    }
    list_insert_tail(&mgr->leases, &l->node); /* first come, first served */
    lease_mgr_mark_dirty(mgr);
    return 0;
}

void lease_mgr_return(lease_mgr_t *mgr, const uint8_t *id, size_t id_len, bool disconnect_worker,
                      bool worker_exiting, const char *detail)
{
    lease_t *l = lease_find(mgr, id, id_len);
    if (!l || l->state != LEASE_HELD)
        return; /* already gone (the worker died first): nothing to return */
    worker_t *w = lease_retire(mgr, l);
    lease_mgr_mark_dirty(mgr);
    if (!w)
        return;
    if (mgr->cbs.on_returned)
        mgr->cbs.on_returned(mgr->ctx, w);
    /* The owner saw it misbehave, or it is on its way out: never reuse. */
    lease_release_t how = disconnect_worker ? LEASE_RELEASE_FAILED
                          : worker_exiting  ? LEASE_RELEASE_RETIRE
                                            : LEASE_RELEASE_IDLE;
    mgr->ops.release(mgr->pool, w, how, detail);
}

bool lease_mgr_cancel(lease_mgr_t *mgr, const uint8_t *id, size_t id_len)
{
    lease_t *l = lease_find(mgr, id, id_len);
    if (!l || l->state == LEASE_HELD)
        return false;
    if (l->state == LEASE_QUEUED || l->pop) {
        lease_drop_unheld(mgr, l, LEASE_FAIL_INTENDED, "lease cancelled by its owner");
        lease_mgr_mark_dirty(mgr);
    } else {
        /* WAITING without a pop handle: inside a synchronous pool answer;
         * lease_on_worker sees it unanswered and recycles the worker. */
        lease_answer_failed(l, LEASE_FAIL_INTENDED, "lease cancelled by its owner");
    }
    return true;
}

void lease_mgr_report_backlog(lease_mgr_t *mgr, const uint8_t worker_id[ID_UNIQUE_SIZE],
                              const lease_backlog_entry_t *entries, size_t n)
{
    for (size_t i = 0; i < mgr->backlog_count;) {
        if (memcmp(mgr->backlogs[i].worker_id, worker_id, ID_UNIQUE_SIZE) == 0) {
            free(mgr->backlogs[i].shape);
            mgr->backlogs[i] = mgr->backlogs[--mgr->backlog_count];
        } else {
            i++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!entries[i].shape || entries[i].backlog <= 0)
            continue;
        if (mgr->backlog_count == mgr->backlog_cap) {
            mgr->backlog_cap = mgr->backlog_cap ? mgr->backlog_cap * 2 : 16;
            mgr->backlogs = xrealloc(mgr->backlogs, mgr->backlog_cap * sizeof *mgr->backlogs);
        }
        lease_backlog_t *b = &mgr->backlogs[mgr->backlog_count++];
        b->shape = lease_shape_key(entries[i].shape);
        b->backlog = entries[i].backlog;
        memcpy(b->worker_id, worker_id, ID_UNIQUE_SIZE);
    }
}

/* ---- worker events ----------------------------------------------------------------- */

void lease_mgr_worker_blocked(lease_mgr_t *mgr, worker_t *w)
{
    lease_t *l = lease_of_worker(mgr, w);
    if (!l || l->blocked || l->state != LEASE_HELD)
        return;
    l->blocked = true;
    mgr->blocked++;
    if (l->cpu_alloc) {
        res_free(mgr->res, l->cpu_alloc);
        l->cpu_alloc = NULL;
    }
    lease_mgr_mark_dirty(mgr);
}

void lease_mgr_worker_unblocked(lease_mgr_t *mgr, worker_t *w)
{
    lease_t *l = lease_of_worker(mgr, w);
    if (!l || !l->blocked)
        return;
    l->blocked = false;
    mgr->blocked--;
    if (!l->cpu_set || res_set_count(l->cpu_set) == 0 || l->cpu_alloc)
        return;
    /* If the CPU went to someone else meanwhile, run oversubscribed rather
     * than stall a task that is ready to go, as the stock raylet does. */
    if (res_allocate(mgr->res, l->cpu_set, &l->cpu_alloc) != 0)
        l->cpu_alloc = NULL;
}

void lease_mgr_worker_dead(lease_mgr_t *mgr, worker_t *w)
{
    lease_t *l = lease_of_worker(mgr, w);
    if (!l)
        return;
    lease_retire(mgr, l);
    lease_mgr_mark_dirty(mgr);
}

bool lease_mgr_worker_leased(const lease_mgr_t *mgr, const worker_t *w)
{
    const lease_t *l = lease_of_worker(mgr, w);
    return l && l->state == LEASE_HELD;
}

/* ---- resources going away ----------------------------------------------------------- */

static bool lease_uses(const lease_t *l, const char *needle)
{
    for (size_t i = 0; i < res_set_count(l->request); i++)
        if (strstr(res_set_name_at(l->request, i), needle))
            return true;
    return false;
}

size_t lease_mgr_drop_matching(lease_mgr_t *mgr, const char *needle)
{
    size_t killed = 0;
    list_t *n, *next;
    LIST_FOREACH_SAFE(n, next, &mgr->leases) {
        lease_t *l = lease_of(n);
        if (!lease_uses(l, needle))
            continue;
        if (l->state == LEASE_HELD) {
            /* Forget the lease first, so the pool's death report finds
             * nothing to free and the walk is not disturbed. */
            worker_t *w = lease_retire(mgr, l);
            if (w) {
                mgr->ops.release(mgr->pool, w, LEASE_RELEASE_KILL, "the placement group of its lease was removed");
                killed++;
            }
            next = mgr->leases.next; /* the pool may have changed anything */
            continue;
        }
        lease_drop_unheld(mgr, l, LEASE_FAIL_PG_REMOVED, "placement group removed");
    }
    lease_mgr_mark_dirty(mgr);
    return killed;
}

#define LEASE_DEAD_MAX 8192

static uint64_t lease_id_hash(const uint8_t id[ID_UNIQUE_SIZE]) { return hash_fnv64(0, id, ID_UNIQUE_SIZE); }

static bool lease_owner_is_dead(const lease_mgr_t *mgr, const uint8_t id[ID_UNIQUE_SIZE])
{
    void *v;
    if (!u64map_get(mgr->dead_index, lease_id_hash(id), &v))
        return false;
    size_t slot = (size_t)(uintptr_t)v - 1;
    return memcmp(mgr->dead[slot], id, ID_UNIQUE_SIZE) == 0;
}

static void lease_owner_remember_dead(lease_mgr_t *mgr, const uint8_t id[ID_UNIQUE_SIZE])
{
    if (lease_owner_is_dead(mgr, id))
        return;
    if (!mgr->dead)
        mgr->dead = xcalloc(LEASE_DEAD_MAX, ID_UNIQUE_SIZE);
    size_t slot = mgr->dead_next;
    if (mgr->dead_count == LEASE_DEAD_MAX) {
        /* Forget the oldest (its index entry only if it still points here). */
        void *v;
        uint64_t old = lease_id_hash(mgr->dead[slot]);
        if (u64map_get(mgr->dead_index, old, &v) && (size_t)(uintptr_t)v - 1 == slot)
            u64map_del(mgr->dead_index, old);
    } else {
        mgr->dead_count++;
    }
    memcpy(mgr->dead[slot], id, ID_UNIQUE_SIZE);
    u64map_put(mgr->dead_index, lease_id_hash(id), (void *)(uintptr_t)(slot + 1));
    mgr->dead_next = (slot + 1) % LEASE_DEAD_MAX;
}

static size_t lease_drop_owned(lease_mgr_t *mgr, const uint8_t *worker_id, const uint8_t *node_id)
{
    lease_owner_remember_dead(mgr, worker_id ? worker_id : node_id);
    static const uint8_t unset[ID_UNIQUE_SIZE];
    size_t dropped = 0;
    list_t *n, *next;
    LIST_FOREACH_SAFE(n, next, &mgr->leases) {
        lease_t *l = lease_of(n);
        const uint8_t *mine = worker_id ? l->caller_worker : l->caller_node;
        const uint8_t *dead = worker_id ? worker_id : node_id;
        if (memcmp(mine, unset, ID_UNIQUE_SIZE) == 0 || memcmp(mine, dead, ID_UNIQUE_SIZE) != 0)
            continue;
        if (l->state == LEASE_HELD) {
            if (l->detached)
                continue; /* a detached actor outlives whoever made it */
            worker_t *w = lease_retire(mgr, l);
            if (w)
                mgr->ops.release(mgr->pool, w, LEASE_RELEASE_KILL, "the owner of its lease died");
            dropped++;
            next = mgr->leases.next; /* the pool may have changed anything */
            continue;
        }
        if (l == mgr->current || (l->state == LEASE_WAITING_WORKER && !l->pop))
            continue; /* inside the pool's answer: it sees no caller and recycles */
        lease_drop_unheld(mgr, l, LEASE_FAIL_INTENDED, "the owner of the lease died");
        dropped++;
    }
    if (dropped) {
        char hex[ID_HEX_BUF];
        log_info("%zu leases of dead %s %s dropped", dropped, worker_id ? "worker" : "node",
                 id_to_hex(worker_id ? worker_id : node_id, ID_UNIQUE_SIZE, hex));
    }
    lease_mgr_mark_dirty(mgr);
    return dropped;
}

size_t lease_mgr_owner_died(lease_mgr_t *mgr, const uint8_t worker_id[ID_UNIQUE_SIZE])
{
    return mgr && !mgr->stopped ? lease_drop_owned(mgr, worker_id, NULL) : 0;
}

size_t lease_mgr_owner_node_died(lease_mgr_t *mgr, const uint8_t node_id[ID_UNIQUE_SIZE])
{
    return mgr && !mgr->stopped ? lease_drop_owned(mgr, NULL, node_id) : 0;
}

static bool lease_same_shape(const res_set_t *a, const res_set_t *b)
{
    if (res_set_count(a) != res_set_count(b))
        return false;
    for (size_t i = 0; i < res_set_count(a); i++)
        if (strcmp(res_set_name_at(a, i), res_set_name_at(b, i)) != 0 ||
            res_set_amount_at(a, i) != res_set_amount_at(b, i))
            return false;
    return true;
}

size_t lease_mgr_cancel_shapes(lease_mgr_t *mgr, res_set_t *const *shapes, size_t n)
{
    size_t cancelled = 0;
    list_t *node, *next;
    LIST_FOREACH_SAFE(node, next, &mgr->leases) {
        lease_t *l = lease_of(node);
        bool match = false;
        for (size_t k = 0; k < n && !match; k++)
            match = l->state == LEASE_QUEUED && l->infeasible && lease_same_shape(lease_placement(l), shapes[k]);
        if (!match)
            continue;
        lease_answer_failed(l, LEASE_FAIL_UNSCHEDULABLE,
                            "no node in the cluster can ever satisfy this resource request");
        lease_free(l);
        cancelled++;
    }
    return cancelled;
}

/* ---- reports ---------------------------------------------------------------------- */

size_t lease_mgr_demand(lease_mgr_t *mgr, const lease_demand_t **out)
{
    size_t cap = 0;
    list_t *node;
    LIST_FOREACH(node, &mgr->leases)
        cap++;
    if (cap > mgr->demand_cap) {
        mgr->demand_cap = cap;
        mgr->demand = xrealloc(mgr->demand, cap * sizeof *mgr->demand);
    }
    lease_demand_t *d = mgr->demand;
    const char **keys = xcalloc(cap, sizeof *keys);
    size_t n = 0;
    LIST_FOREACH(node, &mgr->leases) {
        lease_t *l = lease_of(node);
        if (l->state != LEASE_QUEUED)
            continue;
        /* Only queued leases are reported, so only they ever need a key:
         * formatting one per granted lease would be wasted work. */
        if (!l->shape)
            l->shape = lease_shape_key(lease_placement(l));
        size_t k = 0;
        while (k < n && strcmp(keys[k], l->shape) != 0)
            k++;
        if (k == n) {
            keys[n] = l->shape;
            d[n] = (lease_demand_t){.shape = lease_placement(l)};
            n++;
        }
        if (l->infeasible)
            d[k].infeasible++;
        else
            d[k].ready++;
    }
    for (size_t b = 0; b < mgr->backlog_count; b++)
        for (size_t k = 0; k < n; k++)
            if (strcmp(keys[k], mgr->backlogs[b].shape) == 0)
                d[k].backlog += mgr->backlogs[b].backlog;
    free(keys);
    *out = d;
    return n;
}

size_t lease_mgr_granted(const lease_mgr_t *mgr) { return mgr ? mgr->granted : 0; }

size_t lease_mgr_granted_list(lease_mgr_t *mgr, lease_granted_info_t *out, size_t max)
{
    size_t n = 0;
    list_t *node;
    LIST_FOREACH(node, &mgr->leases) {
        lease_t *l = lease_of(node);
        if (n == max)
            break;
        if (l->state != LEASE_HELD || !l->worker)
            continue;
        lease_worker_info_t wi;
        mgr->ops.describe(mgr->pool, l->worker, &wi);
        out[n++] = (lease_granted_info_t){
            .id = l->id, .id_len = l->id_len, .worker = l->worker, .pid = wi.pid,
            .retriable = l->retriable, .actor_creation = l->actor_creation,
            .parent_task_id = l->parent_task_id, .task_name = l->task_name ? l->task_name : "",
            .granted_at_ms = l->granted_at_ms,
        };
    }
    return n;
}

bool lease_mgr_evict(lease_mgr_t *mgr, const uint8_t *id, size_t id_len, const char *detail)
{
    lease_t *l = lease_find(mgr, id, id_len);
    if (!l || l->state != LEASE_HELD)
        return false;
    /* Forgotten first, as in lease_mgr_drop_matching: the pool's death
     * report then finds nothing to free. */
    worker_t *w = lease_retire(mgr, l);
    lease_mgr_mark_dirty(mgr);
    if (w)
        mgr->ops.release(mgr->pool, w, LEASE_RELEASE_OOM, detail);
    return true;
}
size_t lease_mgr_blocked(const lease_mgr_t *mgr) { return mgr ? mgr->blocked : 0; }

size_t lease_mgr_queued(const lease_mgr_t *mgr)
{
    if (!mgr)
        return 0;
    size_t n = 0;
    const list_t *node;
    LIST_FOREACH(node, &mgr->leases)
        if (lease_of(node)->state != LEASE_HELD)
            n++;
    return n;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

lease_mgr_t *lease_mgr_create(loop_t *loop, res_node_t *resources, const lease_pool_ops_t *ops, void *pool,
                              const lease_mgr_options_t *opts, const lease_mgr_callbacks_t *cbs, void *ctx)
{
    lease_mgr_t *mgr = xcalloc(1, sizeof *mgr);
    mgr->loop = loop;
    mgr->res = resources;
    mgr->ops = *ops;
    mgr->pool = pool;
    if (cbs)
        mgr->cbs = *cbs;
    mgr->ctx = ctx;
    list_init(&mgr->leases);
    mgr->by_worker = u64map_create();
    mgr->by_args = u64map_create();
    mgr->dead_index = u64map_create();
    if (!mgr->by_worker) {
        free(mgr);
        return NULL;
    }
    mgr->cap_enabled = opts->worker_cap_enabled;
    mgr->cap_initial_ms = opts->worker_cap_initial_backoff_ms ? opts->worker_cap_initial_backoff_ms : 1;
    mgr->cap_max_ms = opts->worker_cap_max_backoff_ms;
    if (mgr->cap_max_ms < mgr->cap_initial_ms)
        mgr->cap_max_ms = mgr->cap_initial_ms;
    return mgr;
}

void lease_mgr_stop(lease_mgr_t *mgr)
{
    if (!mgr || mgr->stopped)
        return;
    mgr->stopped = true;
    while (!list_empty(&mgr->leases)) {
        lease_t *l = lease_of(mgr->leases.next);
        lease_answer_failed(l, LEASE_FAIL_SHUTDOWN, "raylet shutting down");
        if (l->pop)
            mgr->ops.pop_cancel(mgr->pool, l->pop);
        l->pop = NULL;
        lease_retire(mgr, l);
    }
    if (mgr->cap_timer)
        loop_cancel_timer(mgr->loop, mgr->cap_timer);
    mgr->cap_timer = 0;
}

void lease_mgr_destroy(lease_mgr_t *mgr)
{
    if (!mgr)
        return;
    lease_mgr_stop(mgr);
    u64map_destroy(mgr->by_worker);
    u64map_destroy(mgr->by_args);
    u64map_destroy(mgr->dead_index);
    free(mgr->dead);
    free(mgr->classes);
    free(mgr->demand);
    for (size_t i = 0; i < mgr->backlog_count; i++)
        free(mgr->backlogs[i].shape);
    free(mgr->backlogs);
    free(mgr);
}
