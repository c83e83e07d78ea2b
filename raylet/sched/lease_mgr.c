#include "raylet/sched/lease_mgr.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"

#define LEASE_ID_MAX 64

typedef enum {
    LEASE_QUEUED,         /* waiting for resources */
    LEASE_WAITING_WORKER, /* resources held, waiting for the pool */
    LEASE_GRANTED,
} lease_state_t;

typedef struct lease {
    struct lease *next, *prev;
    lease_mgr_t *mgr;
    uint8_t id[LEASE_ID_MAX];
    size_t id_len;
    rpc_call_t *call; /* the RequestWorkerLease call, until answered */
    lease_state_t state;
    res_set_t *request;
    char *shape; /* canonical "CPU=1,GPU=1" for load reports; made on first report */
    uint8_t job_id[ID_JOB_SIZE];
    int language;
    int task_type;
    int runtime_env_hash;
    char *runtime_env;          /* serialized, NULL for none */
    uint8_t *runtime_env_config; /* serialized rpc::RuntimeEnvConfig */
    size_t runtime_env_config_len;
    bool grant_or_reject;
    bool infeasible; /* no node can ever run it: demand for the autoscaler */
    bool affinity_local_only; /* hard node affinity to this node */
    res_alloc_t *alloc;     /* everything but CPU */
    res_alloc_t *cpu_alloc; /* CPU, lent out while the worker is blocked */
    res_set_t *cpu_set;     /* what cpu_alloc holds */
    worker_t *worker;
    pool_pop_t *pop;
    uint64_t class_key;   /* the scheduling class, hashed */
    bool class_counted;   /* holds one of its class's granted slots */
} lease_t;

/* One scheduling class with leases holding resources: the worker cap's
 * bookkeeping (see lease_mgr.h). */
typedef struct lease_class {
    uint64_t key;
    size_t granted;          /* leases holding resources (blocked ones too) */
    size_t capacity;         /* node CPUs / the class's CPU; SIZE_MAX: no cap */
    uint64_t next_grant_ms;  /* over capacity: no new lease before this */
    bool warned_throttle;    /* the back-off reached its maximum (logged once) */
} lease_class_t;

typedef struct lease_backlog {
    char *shape;
    int64_t backlog;
    uint8_t worker_id[ID_UNIQUE_SIZE];
} lease_backlog_t;

struct lease_mgr {
    loop_t *loop;
    res_node_t *res;
    pool_t *pool;
    uint8_t node_id[ID_UNIQUE_SIZE];
    char *node_ip;
    lease_mgr_callbacks_t cbs;
    void *ctx;
    lease_t leases; /* list head: queued first-come first-served, then others */
    size_t granted;
    bool scheduling;
    bool reschedule;
    lease_backlog_t *backlogs;
    size_t backlog_count, backlog_cap;
    lease_class_t *classes;
    size_t class_count, class_cap;
    bool cap_enabled;
    uint64_t cap_initial_ms, cap_max_ms;
    uint64_t cap_timer, cap_timer_at; /* wakes the queue when a back-off ends */
    /* Storage behind the last lease_mgr_fill_load() result. */
    void **load_mem;
    size_t load_mem_count, load_mem_cap;
};

static void *lease_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        abort();
    return p;
}

/* ---- helpers ----------------------------------------------------------------- */

static char *lease_shape_key(const res_set_t *set)
{
    size_t cap = 64, len = 0;
    char *s = lease_xcalloc(cap, 1);
    for (size_t i = 0; i < res_set_count(set); i++) {
        char item[256];
        int n = snprintf(item, sizeof item, "%s%s=%.4f", i ? "," : "", res_set_name_at(set, i),
                         res_amount_to_double(res_set_amount_at(set, i)));
        if (n < 0)
            continue;
        if (len + (size_t)n + 1 > cap) {
            cap = (len + (size_t)n + 1) * 2;
            s = realloc(s, cap);
            if (!s)
                abort();
        }
        memcpy(s + len, item, (size_t)n + 1);
        len += (size_t)n;
    }
    return s;
}

/* FNV-1a, 64 bit: a scheduling class is identified by a hash of what
 * defines it; a collision only merges the caps of two classes. */
static uint64_t lease_hash(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static uint64_t lease_hash_msg(uint64_t h, const ProtobufCMessage *m)
{
    if (!m)
        return lease_hash(h, "-", 1);
    uint8_t stack[512];
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = len <= sizeof stack ? stack : lease_xcalloc(len, 1);
    protobuf_c_message_pack(m, buf);
    h = lease_hash(h, buf, len);
    if (buf != stack)
        free(buf);
    return lease_hash(h, "|", 1);
}

static uint64_t lease_class_key(const Ray__Rpc__LeaseSpec *spec, const res_set_t *request)
{
    uint64_t h = 14695981039346656037ull;
    char *shape = lease_shape_key(request);
    h = lease_hash(h, shape, strlen(shape) + 1);
    free(shape);
    int64_t depth = spec->depth;
    h = lease_hash(h, &depth, sizeof depth);
    h = lease_hash_msg(h, (const ProtobufCMessage *)spec->function_descriptor);
    h = lease_hash_msg(h, (const ProtobufCMessage *)spec->scheduling_strategy);
    h = lease_hash_msg(h, (const ProtobufCMessage *)spec->label_selector);
    h = lease_hash_msg(h, (const ProtobufCMessage *)spec->fallback_strategy);
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
        mgr->classes = realloc(mgr->classes, mgr->class_cap * sizeof *mgr->classes);
        if (!mgr->classes)
            abort();
    }
    c = &mgr->classes[mgr->class_count++];
    c->key = l->class_key;
    c->granted = 0;
    c->next_grant_ms = UINT64_MAX;
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
    if (c->granted == 0)
        *c = mgr->classes[--mgr->class_count];
}

static void lease_on_cap_timer(loop_t *loop, uint64_t id, void *data)
{
    lease_mgr_t *mgr = data;
    mgr->cap_timer = 0;
    mgr->cap_timer_at = 0;
    lease_mgr_schedule(mgr);
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

static void lease_unlink(lease_t *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->next = l->prev = l;
}

static void lease_free(lease_t *l)
{
    res_set_destroy(l->cpu_set);
    free(l->runtime_env);
    free(l->runtime_env_config);
    res_set_destroy(l->request);
    free(l->shape);
    free(l);
}

static lease_t *lease_find(lease_mgr_t *mgr, const uint8_t *id, size_t len)
{
    for (lease_t *l = mgr->leases.next; l != &mgr->leases; l = l->next)
        if (l->id_len == len && memcmp(l->id, id, len) == 0)
            return l;
    return NULL;
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

/* ---- replies -------------------------------------------------------------------- */

static void lease_reply_failure(lease_t *l, bool canceled, bool rejected, int failure_type, const char *message)
{
    if (!l->call)
        return;
    Ray__Rpc__RequestWorkerLeaseReply reply = RAY__RPC__REQUEST_WORKER_LEASE_REPLY__INIT;
    reply.canceled = canceled;
    reply.rejected = rejected;
    reply.failure_type = failure_type;
    reply.scheduling_failure_message = (char *)(message ? message : "");
    rpc_call_reply(l->call, &reply.base);
    l->call = NULL;
}

static void lease_reply_spillback(lease_t *l, const lease_remote_t *remote)
{
    Ray__Rpc__RequestWorkerLeaseReply reply = RAY__RPC__REQUEST_WORKER_LEASE_REPLY__INIT;
    Ray__Rpc__Address addr = RAY__RPC__ADDRESS__INIT;
    addr.node_id.data = (uint8_t *)remote->node_id;
    addr.node_id.len = ID_UNIQUE_SIZE;
    addr.ip_address = (char *)remote->address;
    addr.port = remote->port;
    reply.retry_at_raylet_address = &addr;
    rpc_call_reply(l->call, &reply.base);
    l->call = NULL;
}

/* Adds one ResourceMapEntry per grant: unit-instance resources list the
 * instances they touched; pooled ones report instance 0 with the amount,
 * as the stock raylet does. */
static size_t lease_add_mapping(const res_alloc_t *a, Ray__Rpc__ResourceMapEntry **entries, size_t n,
                                Ray__Rpc__ResourceId **ids_out, size_t *id_n)
{
    if (!a)
        return n;
    for (size_t i = 0; i < res_alloc_count(a); i++) {
        res_grant_t g;
        res_alloc_at(a, i, &g);
        Ray__Rpc__ResourceMapEntry *e = lease_xcalloc(1, sizeof *e);
        ray__rpc__resource_map_entry__init(e);
        e->name = (char *)g.name;
        size_t k = g.instance_count ? g.instance_count : 1;
        e->resource_ids = lease_xcalloc(k, sizeof *e->resource_ids);
        for (size_t j = 0; j < k; j++) {
            Ray__Rpc__ResourceId *rid = lease_xcalloc(1, sizeof *rid);
            ray__rpc__resource_id__init(rid);
            rid->index = g.instance_count ? (int64_t)g.instance_ids[j] : 0;
            rid->quantity = res_amount_to_double(g.instance_count ? g.instance_amounts[j] : g.amount);
            e->resource_ids[j] = rid;
            ids_out[(*id_n)++] = rid;
        }
        e->n_resource_ids = k;
        entries[n++] = e;
    }
    return n;
}

static void lease_reply_grant(lease_mgr_t *mgr, lease_t *l)
{
    worker_t *w = l->worker;
    Ray__Rpc__RequestWorkerLeaseReply reply = RAY__RPC__REQUEST_WORKER_LEASE_REPLY__INIT;
    Ray__Rpc__Address addr = RAY__RPC__ADDRESS__INIT;
    addr.node_id.data = mgr->node_id;
    addr.node_id.len = ID_UNIQUE_SIZE;
    addr.ip_address = mgr->node_ip;
    addr.port = w->port;
    addr.worker_id.data = w->id;
    addr.worker_id.len = ID_UNIQUE_SIZE;
    reply.worker_address = &addr;
    reply.worker_pid = (uint32_t)w->pid;

    size_t max_entries = (l->alloc ? res_alloc_count(l->alloc) : 0) + (l->cpu_alloc ? res_alloc_count(l->cpu_alloc) : 0);
    size_t max_ids = 0;
    const res_alloc_t *allocs[2] = {l->alloc, l->cpu_alloc};
    for (int a = 0; a < 2; a++)
        for (size_t i = 0; allocs[a] && i < res_alloc_count(allocs[a]); i++) {
            res_grant_t g;
            res_alloc_at(allocs[a], i, &g);
            max_ids += g.instance_count ? g.instance_count : 1;
        }
    Ray__Rpc__ResourceMapEntry **entries = lease_xcalloc(max_entries, sizeof *entries);
    Ray__Rpc__ResourceId **ids = lease_xcalloc(max_ids, sizeof *ids);
    size_t n = 0, id_n = 0;
    n = lease_add_mapping(l->cpu_alloc, entries, n, ids, &id_n);
    n = lease_add_mapping(l->alloc, entries, n, ids, &id_n);
    reply.resource_mapping = entries;
    reply.n_resource_mapping = n;
    rpc_call_reply(l->call, &reply.base);
    l->call = NULL;
    for (size_t i = 0; i < n; i++) {
        free(entries[i]->resource_ids);
        free(entries[i]);
    }
    for (size_t i = 0; i < id_n; i++)
        free(ids[i]);
    free(entries);
    free(ids);
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
        lease_reply_failure(l, true, false,
                            env_failed ? RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_CANCELLED_RUNTIME_ENV_SETUP_FAILED
                                       : RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_FAILED,
                            why ? why : "could not start a worker");
        if (mgr->scheduling) {
            /* Called from inside the queue walk: it frees answered leases. */
            l->state = LEASE_QUEUED;
            return;
        }
        lease_unlink(l);
        lease_free(l);
        lease_mgr_schedule(mgr);
        return;
    }
    if (!l->call) {
        /* The caller went away (cancelled) while we waited: recycle. */
        lease_release_resources(mgr, l);
        lease_unlink(l);
        lease_free(l);
        pool_push_idle(mgr->pool, w);
        lease_mgr_schedule(mgr);
        return;
    }
    l->worker = w;
    w->lease = l;
    w->state = WORKER_LEASED;
    if (l->task_type == RAY__RPC__TASK_TYPE__NORMAL_TASK)
        w->ran_tasks = true;
    l->state = LEASE_GRANTED;
    lease_set_granted_count(mgr, mgr->granted + 1);
    lease_reply_grant(mgr, l);
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
    pool_env_t env = {.serialized = l->runtime_env,
                      .config = l->runtime_env_config,
                      .config_len = l->runtime_env_config_len,
                      .hash = l->runtime_env_hash,
                      .gpu = gpu,
                      .actor = l->task_type == RAY__RPC__TASK_TYPE__ACTOR_CREATION_TASK};
    l->pop = pool_pop(mgr->pool, l->job_id, l->language, &env, lease_on_worker, l);
}

/* Returns true if the lease left the queue (answered or handed on). */
static bool lease_try_one(lease_mgr_t *mgr, lease_t *l)
{
    int rc = res_check(mgr->res, l->request);
    if (rc == 0) {
        lease_class_t *c = lease_class_get(mgr, l);
        if (!lease_class_may_grant(mgr, c)) {
            /* Held back by the worker cap: another node with the resources
             * free may run it now. */
            lease_remote_t remote;
            if (!l->grant_or_reject && !l->affinity_local_only && mgr->cbs.pick_remote &&
                mgr->cbs.pick_remote(mgr->ctx, l->request, true, &remote)) {
                lease_reply_spillback(l, &remote);
                if (c->granted == 0)
                    *c = mgr->classes[--mgr->class_count];
                return true;
            }
            return false;
        }
        if (lease_take_resources(mgr, l) != 0) {
            if (c->granted == 0)
                *c = mgr->classes[--mgr->class_count];
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
        lease_reply_failure(l, true, false,
                            RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_CANCELLED_UNSCHEDULABLE,
                            "malformed resource request");
        return true;
    }
    /* Busy (-EAGAIN) or never here (-ENOSPC). */
    if (l->grant_or_reject && rc == -ENOSPC) {
        lease_reply_failure(l, false, true,
                            RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__NOT_FAILED, "");
        return true;
    }
    if (!l->grant_or_reject && !l->affinity_local_only && mgr->cbs.pick_remote) {
        lease_remote_t remote;
        bool need_available = rc == -EAGAIN;
        if (mgr->cbs.pick_remote(mgr->ctx, l->request, need_available, &remote)) {
            lease_reply_spillback(l, &remote);
            return true;
        }
    }
    l->infeasible = rc == -ENOSPC;
    return false;
}

void lease_mgr_schedule(lease_mgr_t *mgr)
{
    /* Callbacks below may re-enter (a pool pop answered at once); run the
     * queue once more instead of recursing. */
    if (mgr->scheduling) {
        mgr->reschedule = true;
        return;
    }
    mgr->scheduling = true;
    do {
        mgr->reschedule = false;
        for (lease_t *l = mgr->leases.next; l != &mgr->leases;) {
            lease_t *next = l->next;
            if (l->state == LEASE_QUEUED && lease_try_one(mgr, l)) {
                if (!l->call && l->state == LEASE_QUEUED) {
                    lease_unlink(l);
                    lease_free(l);
                }
            }
            l = next;
        }
    } while (mgr->reschedule);
    mgr->scheduling = false;
}

/* A job's runtime env keys the worker pool by a hash of its serialized
 * form (FNV-1a: stable, and the worker only echoes it back); no env is 0. */
static void lease_set_runtime_env(lease_t *l, const Ray__Rpc__RuntimeEnvInfo *info)
{
    const char *env = info ? info->serialized_runtime_env : NULL;
    if (!env || !*env || strcmp(env, "{}") == 0)
        return;
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)env; *p; p++)
        h = (h ^ *p) * 16777619u;
    l->runtime_env_hash = (int)(h & 0x7fffffff) | 1;
    l->runtime_env = strdup(env);
    if (!l->runtime_env)
        abort();
    if (info->runtime_env_config) {
        l->runtime_env_config_len = protobuf_c_message_get_packed_size(&info->runtime_env_config->base);
        l->runtime_env_config = malloc(l->runtime_env_config_len ? l->runtime_env_config_len : 1);
        if (!l->runtime_env_config)
            abort();
        protobuf_c_message_pack(&info->runtime_env_config->base, l->runtime_env_config);
    }
}

/* ---- gRPC handlers ---------------------------------------------------------------- */

void lease_mgr_request(lease_mgr_t *mgr, rpc_call_t *call, const Ray__Rpc__RequestWorkerLeaseRequest *req)
{
    const Ray__Rpc__LeaseSpec *spec = req->lease_spec;
    if (!spec || spec->lease_id.len == 0 || spec->lease_id.len > LEASE_ID_MAX) {
        rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "lease_spec with a lease_id is required");
        return;
    }
    lease_t *dup = lease_find(mgr, spec->lease_id.data, spec->lease_id.len);
    if (dup) {
        if (dup->state == LEASE_GRANTED && dup->worker) {
            /* A retried request for a lease we already granted: same answer. */
            dup->call = call;
            lease_reply_grant(mgr, dup);
        } else {
            rpc_call_fail(call, GRPC_STATUS_ALREADY_EXISTS, "lease already queued");
        }
        return;
    }
    lease_t *l = lease_xcalloc(1, sizeof *l);
    l->next = l->prev = l;
    l->mgr = mgr;
    memcpy(l->id, spec->lease_id.data, spec->lease_id.len);
    l->id_len = spec->lease_id.len;
    l->call = call;
    l->state = LEASE_QUEUED;
    l->request = res_set_create();
    for (size_t i = 0; i < spec->n_required_resources; i++) {
        res_amount_t a;
        const char *name = spec->required_resources[i]->key;
        if (!name || !*name || res_amount_from_double(spec->required_resources[i]->value, &a) != 0) {
            lease_free(l);
            rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "malformed required_resources");
            return;
        }
        res_set_put(l->request, name, a);
    }
    if (spec->job_id.len == ID_JOB_SIZE)
        memcpy(l->job_id, spec->job_id.data, ID_JOB_SIZE);
    l->language = spec->language;
    l->task_type = spec->type;
    l->class_key = lease_class_key(spec, l->request);
    lease_set_runtime_env(l, spec->runtime_env_info);
    l->grant_or_reject = req->grant_or_reject;
    const Ray__Rpc__SchedulingStrategy *ss = spec->scheduling_strategy;
    if (ss && ss->scheduling_strategy_case ==
                  RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_NODE_AFFINITY_SCHEDULING_STRATEGY &&
        ss->node_affinity_scheduling_strategy &&
        ss->node_affinity_scheduling_strategy->node_id.len == ID_UNIQUE_SIZE) {
        const Ray__Rpc__NodeAffinitySchedulingStrategy *na = ss->node_affinity_scheduling_strategy;
        bool here = memcmp(na->node_id.data, mgr->node_id, ID_UNIQUE_SIZE) == 0;
        if (here && !na->soft)
            l->affinity_local_only = true;
    }

    /* Append: first come, first served. */
    l->prev = mgr->leases.prev;
    l->next = &mgr->leases;
    mgr->leases.prev->next = l;
    mgr->leases.prev = l;
    lease_mgr_schedule(mgr);
}

void lease_mgr_return(lease_mgr_t *mgr, rpc_call_t *call, const Ray__Rpc__ReturnWorkerLeaseRequest *req)
{
    Ray__Rpc__ReturnWorkerLeaseReply reply = RAY__RPC__RETURN_WORKER_LEASE_REPLY__INIT;
    lease_t *l = lease_find(mgr, req->lease_id.data, req->lease_id.len);
    if (!l || l->state != LEASE_GRANTED) {
        /* Already gone (the worker died first): nothing to return. */
        rpc_call_reply(call, &reply.base);
        return;
    }
    worker_t *w = l->worker;
    lease_release_resources(mgr, l);
    lease_unlink(l);
    lease_free(l);
    lease_set_granted_count(mgr, mgr->granted - 1);
    rpc_call_reply(call, &reply.base);
    if (w) {
        w->lease = NULL;
        if (req->disconnect_worker || req->worker_exiting) {
            /* The owner saw it misbehave, or it is on its way out: never reuse. */
            w->exit_requested = true;
            if (req->disconnect_worker && w->pid > 0) {
                w->failed_while_leased = true; /* its driver is told (worker_died) */
                log_info("killing worker %s on its owner's request: %s", w->id_hex,
                         req->disconnect_worker_error_detail ? req->disconnect_worker_error_detail : "");
                pool_disconnect(mgr->pool, w, RAY__RPC__WORKER_EXIT_TYPE__SYSTEM_ERROR,
                                req->disconnect_worker_error_detail);
            }
        } else {
            pool_push_idle(mgr->pool, w);
        }
    }
    lease_mgr_schedule(mgr);
}

void lease_mgr_cancel(lease_mgr_t *mgr, rpc_call_t *call, const Ray__Rpc__CancelWorkerLeaseRequest *req)
{
    Ray__Rpc__CancelWorkerLeaseReply reply = RAY__RPC__CANCEL_WORKER_LEASE_REPLY__INIT;
    lease_t *l = lease_find(mgr, req->lease_id.data, req->lease_id.len);
    if (l && l->state != LEASE_GRANTED) {
        lease_reply_failure(l, true, false,
                            RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_CANCELLED_INTENDED,
                            "lease cancelled by its owner");
        if (l->state == LEASE_QUEUED) {
            lease_unlink(l);
            lease_free(l);
        } else if (l->pop) {
            pool_pop_cancel(mgr->pool, l->pop);
            l->pop = NULL;
            lease_release_resources(mgr, l);
            lease_unlink(l);
            lease_free(l);
            lease_mgr_schedule(mgr);
        }
        reply.success = true;
    }
    rpc_call_reply(call, &reply.base);
}

void lease_mgr_report_backlog(lease_mgr_t *mgr, const Ray__Rpc__ReportWorkerBacklogRequest *req)
{
    if (req->worker_id.len != ID_UNIQUE_SIZE)
        return;
    /* Each report replaces that worker's previous one. */
    for (size_t i = 0; i < mgr->backlog_count;) {
        if (memcmp(mgr->backlogs[i].worker_id, req->worker_id.data, ID_UNIQUE_SIZE) == 0) {
            free(mgr->backlogs[i].shape);
            mgr->backlogs[i] = mgr->backlogs[--mgr->backlog_count];
        } else {
            i++;
        }
    }
    for (size_t i = 0; i < req->n_backlog_reports; i++) {
        const Ray__Rpc__WorkerBacklogReport *r = req->backlog_reports[i];
        if (!r->lease_spec || r->backlog_size <= 0)
            continue;
        res_set_t *set = res_set_create();
        for (size_t k = 0; k < r->lease_spec->n_required_resources; k++) {
            res_amount_t a;
            if (r->lease_spec->required_resources[k]->key &&
                res_amount_from_double(r->lease_spec->required_resources[k]->value, &a) == 0)
                res_set_put(set, r->lease_spec->required_resources[k]->key, a);
        }
        if (mgr->backlog_count == mgr->backlog_cap) {
            mgr->backlog_cap = mgr->backlog_cap ? mgr->backlog_cap * 2 : 16;
            mgr->backlogs = realloc(mgr->backlogs, mgr->backlog_cap * sizeof *mgr->backlogs);
            if (!mgr->backlogs)
                abort();
        }
        lease_backlog_t *b = &mgr->backlogs[mgr->backlog_count++];
        b->shape = lease_shape_key(set);
        b->backlog = r->backlog_size;
        memcpy(b->worker_id, req->worker_id.data, ID_UNIQUE_SIZE);
        res_set_destroy(set);
    }
}

/* ---- worker events ----------------------------------------------------------------- */

void lease_mgr_worker_blocked(lease_mgr_t *mgr, worker_t *w)
{
    lease_t *l = w->lease;
    if (!l || w->blocked)
        return;
    w->blocked = true;
    if (l->cpu_alloc) {
        res_free(mgr->res, l->cpu_alloc);
        l->cpu_alloc = NULL;
    }
    lease_mgr_schedule(mgr);
}

void lease_mgr_worker_unblocked(lease_mgr_t *mgr, worker_t *w)
{
    lease_t *l = w->lease;
    if (!w->blocked)
        return;
    w->blocked = false;
    if (!l || !l->cpu_set || res_set_count(l->cpu_set) == 0 || l->cpu_alloc)
        return;
    /* If the CPU went to someone else meanwhile, run oversubscribed rather
     * than stall a task that is ready to go, as the stock raylet does. */
    if (res_allocate(mgr->res, l->cpu_set, &l->cpu_alloc) != 0)
        l->cpu_alloc = NULL;
}

void lease_mgr_worker_dead(lease_mgr_t *mgr, worker_t *w)
{
    lease_t *l = w->lease;
    w->lease = NULL;
    if (!l)
        return;
    lease_release_resources(mgr, l);
    if (l->state == LEASE_GRANTED)
        lease_set_granted_count(mgr, mgr->granted - 1);
    lease_unlink(l);
    lease_free(l);
    lease_mgr_schedule(mgr);
}

void lease_mgr_actor_created(lease_mgr_t *mgr, worker_t *w)
{
    w->is_actor = true;
}

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
    for (lease_t *l = mgr->leases.next; l != &mgr->leases;) {
        lease_t *next = l->next;
        if (!lease_uses(l, needle)) {
            l = next;
            continue;
        }
        if (l->state == LEASE_GRANTED && l->worker) {
            worker_t *w = l->worker;
            if (w->pid > 0)
                kill(w->pid, SIGKILL);
            /* Frees the lease (and may reorder the list): start over. */
            pool_disconnect(mgr->pool, w, RAY__RPC__WORKER_EXIT_TYPE__INTENDED_SYSTEM_EXIT,
                            "the placement group of its lease was removed");
            killed++;
            l = mgr->leases.next;
            continue;
        }
        lease_reply_failure(l, true, false,
                            RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_CANCELLED_PLACEMENT_GROUP_REMOVED,
                            "placement group removed");
        if (l->pop)
            pool_pop_cancel(mgr->pool, l->pop);
        lease_release_resources(mgr, l);
        lease_unlink(l);
        lease_free(l);
        l = next;
    }
    return killed;
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
    for (lease_t *l = mgr->leases.next; l != &mgr->leases;) {
        lease_t *next = l->next;
        bool match = false;
        for (size_t k = 0; k < n && !match; k++)
            match = l->state == LEASE_QUEUED && l->infeasible && lease_same_shape(l->request, shapes[k]);
        if (match) {
            lease_reply_failure(l, true, false,
                                RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_CANCELLED_UNSCHEDULABLE,
                                "no node in the cluster can ever satisfy this resource request");
            lease_unlink(l);
            lease_free(l);
            cancelled++;
        }
        l = next;
    }
    return cancelled;
}

/* ---- load report --------------------------------------------------------------------- */

static void *lease_load_keep(lease_mgr_t *mgr, void *p)
{
    if (mgr->load_mem_count == mgr->load_mem_cap) {
        mgr->load_mem_cap = mgr->load_mem_cap ? mgr->load_mem_cap * 2 : 32;
        mgr->load_mem = realloc(mgr->load_mem, mgr->load_mem_cap * sizeof *mgr->load_mem);
        if (!mgr->load_mem)
            abort();
    }
    mgr->load_mem[mgr->load_mem_count++] = p;
    return p;
}

static void lease_load_release(lease_mgr_t *mgr)
{
    for (size_t i = 0; i < mgr->load_mem_count; i++)
        free(mgr->load_mem[i]);
    mgr->load_mem_count = 0;
}

typedef struct lease_demand {
    const char *shape;
    const res_set_t *set;
    uint64_t ready, infeasible;
    int64_t backlog;
} lease_demand_t;

void lease_mgr_fill_load(lease_mgr_t *mgr, Ray__Rpc__ResourcesData *data)
{
    lease_load_release(mgr);
    size_t cap = 0;
    for (lease_t *l = mgr->leases.next; l != &mgr->leases; l = l->next)
        cap++;
    lease_demand_t *d = lease_load_keep(mgr, lease_xcalloc(cap, sizeof *d));
    size_t n = 0;
    for (lease_t *l = mgr->leases.next; l != &mgr->leases; l = l->next) {
        if (l->state != LEASE_QUEUED)
            continue;
        /* Only queued leases are reported, so only they ever need a key:
         * formatting one per granted lease would be wasted work. */
        if (!l->shape)
            l->shape = lease_shape_key(l->request);
        size_t k = 0;
        while (k < n && strcmp(d[k].shape, l->shape) != 0)
            k++;
        if (k == n) {
            d[n].shape = l->shape;
            d[n].set = l->request;
            n++;
        }
        if (l->infeasible)
            d[k].infeasible++;
        else
            d[k].ready++;
    }
    for (size_t b = 0; b < mgr->backlog_count; b++)
        for (size_t k = 0; k < n; k++)
            if (strcmp(d[k].shape, mgr->backlogs[b].shape) == 0)
                d[k].backlog += mgr->backlogs[b].backlog;

    Ray__Rpc__ResourceLoad *load = lease_load_keep(mgr, lease_xcalloc(1, sizeof *load));
    ray__rpc__resource_load__init(load);
    load->resource_demands = lease_load_keep(mgr, lease_xcalloc(n, sizeof *load->resource_demands));
    load->n_resource_demands = n;
    for (size_t k = 0; k < n; k++) {
        Ray__Rpc__ResourceDemand *rd = lease_load_keep(mgr, lease_xcalloc(1, sizeof *rd));
        ray__rpc__resource_demand__init(rd);
        size_t m = res_set_count(d[k].set);
        rd->shape = lease_load_keep(mgr, lease_xcalloc(m, sizeof *rd->shape));
        for (size_t j = 0; j < m; j++) {
            Ray__Rpc__ResourceDemand__ShapeEntry *e = lease_load_keep(mgr, lease_xcalloc(1, sizeof *e));
            ray__rpc__resource_demand__shape_entry__init(e);
            e->key = (char *)res_set_name_at(d[k].set, j);
            e->value = res_amount_to_double(res_set_amount_at(d[k].set, j));
            rd->shape[j] = e;
        }
        rd->n_shape = m;
        rd->num_ready_requests_queued = d[k].ready;
        rd->num_infeasible_requests_queued = d[k].infeasible;
        rd->backlog_size = d[k].backlog;
        load->resource_demands[k] = rd;
    }
    data->resource_load_by_shape = load;
}

size_t lease_mgr_granted(const lease_mgr_t *mgr) { return mgr->granted; }

size_t lease_mgr_queued(const lease_mgr_t *mgr)
{
    size_t n = 0;
    for (const lease_t *l = mgr->leases.next; l != &mgr->leases; l = l->next)
        if (l->state != LEASE_GRANTED)
            n++;
    return n;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

lease_mgr_t *lease_mgr_create(loop_t *loop, res_node_t *resources, pool_t *pool,
                              const lease_mgr_options_t *opts, const lease_mgr_callbacks_t *cbs,
                              void *ctx)
{
    lease_mgr_t *mgr = lease_xcalloc(1, sizeof *mgr);
    mgr->loop = loop;
    mgr->res = resources;
    mgr->pool = pool;
    memcpy(mgr->node_id, opts->node_id, ID_UNIQUE_SIZE);
    mgr->node_ip = strdup(opts->node_ip_address);
    mgr->cbs = *cbs;
    mgr->ctx = ctx;
    mgr->leases.next = mgr->leases.prev = &mgr->leases;
    mgr->cap_enabled = opts->worker_cap_enabled;
    mgr->cap_initial_ms = opts->worker_cap_initial_backoff_ms;
    mgr->cap_max_ms = opts->worker_cap_max_backoff_ms;
    if (mgr->cap_max_ms < mgr->cap_initial_ms)
        mgr->cap_max_ms = mgr->cap_initial_ms;
    return mgr;
}

void lease_mgr_destroy(lease_mgr_t *mgr)
{
    if (!mgr)
        return;
    while (mgr->leases.next != &mgr->leases) {
        lease_t *l = mgr->leases.next;
        lease_reply_failure(l, true, false,
                            RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_FAILED,
                            "raylet shutting down");
        if (l->pop)
            pool_pop_cancel(mgr->pool, l->pop);
        if (l->worker)
            l->worker->lease = NULL;
        lease_release_resources(mgr, l);
        lease_unlink(l);
        lease_free(l);
    }
    if (mgr->cap_timer)
        loop_cancel_timer(mgr->loop, mgr->cap_timer);
    free(mgr->classes);
    lease_load_release(mgr);
    free(mgr->load_mem);
    for (size_t i = 0; i < mgr->backlog_count; i++)
        free(mgr->backlogs[i].shape);
    free(mgr->backlogs);
    free(mgr->node_ip);
    free(mgr);
}
