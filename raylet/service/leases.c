#include "raylet/service/leases.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/utf8.h"
#include "raylet/service/address.h"

/* One RequestWorkerLease in flight: freed when the lease manager answers. */
typedef struct svc_lease_call {
    rpc_call_t *call;
    const svc_lease_node_t *node;
    struct timespec received;
} svc_lease_call_t;

/* One entry of a LeaseSpec resource map; false if malformed. */
static bool svc_put_resource(res_set_t *set, const char *name, double value)
{
    res_amount_t a;
    if (!name || !*name || res_amount_from_double(value, &a) != 0)
        return false;
    res_set_put(set, name, a);
    return true;
}

res_set_t *svc_lease_resources(const Ray__Rpc__LeaseSpec *spec)
{
    res_set_t *set = res_set_create();
    for (size_t i = 0; i < spec->n_required_resources; i++)
        if (!svc_put_resource(set, spec->required_resources[i]->key, spec->required_resources[i]->value)) {
            res_set_destroy(set);
            return NULL;
        }
    return set;
}

res_set_t *svc_lease_placement(const Ray__Rpc__LeaseSpec *spec)
{
    res_set_t *set = res_set_create();
    for (size_t i = 0; i < spec->n_required_placement_resources; i++)
        if (!svc_put_resource(set, spec->required_placement_resources[i]->key,
                              spec->required_placement_resources[i]->value)) {
            res_set_destroy(set);
            return NULL;
        }
    return set;
}

static uint64_t svc_hash_msg(uint64_t h, const ProtobufCMessage *m)
{
    if (!m)
        return hash_fnv64(h, "-", 1);
    uint8_t stack[512];
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = len <= sizeof stack ? stack : xmalloc(len);
    protobuf_c_message_pack(m, buf);
    h = hash_fnv64(h, buf, len);
    if (buf != stack)
        free(buf);
    return hash_fnv64(h, "|", 1);
}

/* What makes a scheduling class besides its shape. */
/* An id field that names something: present and not Ray's nil (all 0xff). */
static bool svc_id_set(const ProtobufCBinaryData *id)
{
    for (size_t i = 0; i < id->len; i++)
        if (id->data[i] != 0xff)
            return true;
    return false;
}

static uint64_t svc_class_hash(const Ray__Rpc__LeaseSpec *spec)
{
    uint64_t h = HASH_FNV64_INIT;
    int64_t depth = spec->depth;
    h = hash_fnv64(h, &depth, sizeof depth);
    h = svc_hash_msg(h, (const ProtobufCMessage *)spec->function_descriptor);
    h = svc_hash_msg(h, (const ProtobufCMessage *)spec->scheduling_strategy);
    h = svc_hash_msg(h, (const ProtobufCMessage *)spec->label_selector);
    h = svc_hash_msg(h, (const ProtobufCMessage *)spec->fallback_strategy);
    return h;
}

static int svc_failure_type(lease_failure_t f)
{
    switch (f) {
    case LEASE_FAIL_RUNTIME_ENV:
        return RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_CANCELLED_RUNTIME_ENV_SETUP_FAILED;
    case LEASE_FAIL_INTENDED:
        return RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_CANCELLED_INTENDED;
    case LEASE_FAIL_UNSCHEDULABLE:
        return RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_CANCELLED_UNSCHEDULABLE;
    case LEASE_FAIL_PG_REMOVED:
        return RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_CANCELLED_PLACEMENT_GROUP_REMOVED;
    case LEASE_FAIL_SCHEDULING:
    case LEASE_FAIL_SHUTDOWN:
    default:
        return RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_FAILED;
    }
}

/* Instance ids of one allocation, as the core worker reads them:
 * unit-instance resources list the instances they touched; pooled ones
 * report instance 0 with the amount, as the stock raylet does. */
static size_t svc_add_mapping(const res_alloc_t *a, Ray__Rpc__ResourceMapEntry *entries,
                              Ray__Rpc__ResourceMapEntry **entry_ptrs, size_t n, Ray__Rpc__ResourceId *ids,
                              Ray__Rpc__ResourceId **id_ptrs, size_t *id_n)
{
    if (!a)
        return n;
    for (size_t i = 0; i < res_alloc_count(a); i++) {
        res_grant_t g;
        res_alloc_at(a, i, &g);
        Ray__Rpc__ResourceMapEntry *e = &entries[n];
        ray__rpc__resource_map_entry__init(e);
        e->name = (char *)g.name;
        size_t k = g.instance_count ? g.instance_count : 1;
        e->resource_ids = &id_ptrs[*id_n];
        for (size_t j = 0; j < k; j++) {
            Ray__Rpc__ResourceId *rid = &ids[*id_n];
            ray__rpc__resource_id__init(rid);
            rid->index = g.instance_count ? (int64_t)g.instance_ids[j] : 0;
            rid->quantity = res_amount_to_double(g.instance_count ? g.instance_amounts[j] : g.amount);
            id_ptrs[(*id_n)++] = rid;
        }
        e->n_resource_ids = k;
        entry_ptrs[n++] = e;
    }
    return n;
}

static size_t svc_count_ids(const res_alloc_t *a, size_t *entries)
{
    size_t ids = 0;
    for (size_t i = 0; a && i < res_alloc_count(a); i++) {
        res_grant_t g;
        res_alloc_at(a, i, &g);
        ids += g.instance_count ? g.instance_count : 1;
        (*entries)++;
    }
    return ids;
}

static void svc_reply_grant(svc_lease_call_t *c, const lease_outcome_t *o)
{
    Ray__Rpc__RequestWorkerLeaseReply reply = RAY__RPC__REQUEST_WORKER_LEASE_REPLY__INIT;
    Ray__Rpc__Address addr = RAY__RPC__ADDRESS__INIT;
    addr.node_id.data = (uint8_t *)c->node->node_id;
    addr.node_id.len = ID_UNIQUE_SIZE;
    addr.ip_address = (char *)c->node->ip_address;
    addr.port = o->worker.port;
    addr.worker_id.data = (uint8_t *)o->worker.id;
    addr.worker_id.len = ID_UNIQUE_SIZE;
    reply.worker_address = &addr;
    reply.worker_pid = (uint32_t)o->worker.pid;

    size_t n_entries = 0;
    size_t n_ids = svc_count_ids(o->cpu_alloc, &n_entries) + svc_count_ids(o->alloc, &n_entries);
    Ray__Rpc__ResourceMapEntry *entries = xcalloc(n_entries, sizeof *entries);
    Ray__Rpc__ResourceMapEntry **entry_ptrs = xcalloc(n_entries, sizeof *entry_ptrs);
    Ray__Rpc__ResourceId *ids = xcalloc(n_ids, sizeof *ids);
    Ray__Rpc__ResourceId **id_ptrs = xcalloc(n_ids, sizeof *id_ptrs);
    size_t n = 0, id_n = 0;
    n = svc_add_mapping(o->cpu_alloc, entries, entry_ptrs, n, ids, id_ptrs, &id_n);
    n = svc_add_mapping(o->alloc, entries, entry_ptrs, n, ids, id_ptrs, &id_n);
    reply.resource_mapping = entry_ptrs;
    reply.n_resource_mapping = n;
    rpc_call_reply(c->call, &reply.base);
    free(entries);
    free(entry_ptrs);
    free(ids);
    free(id_ptrs);
}

static void svc_on_outcome(void *ctx, const lease_outcome_t *o)
{
    svc_lease_call_t *c = ctx;
    if (c->node->metrics) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double ms = (double)(now.tv_sec - c->received.tv_sec) * 1e3 + (double)(now.tv_nsec - c->received.tv_nsec) / 1e6;
        metrics_observe(c->node->metrics, METRICS_LEASE_LATENCY_MS, ms);
    }
    Ray__Rpc__RequestWorkerLeaseReply reply = RAY__RPC__REQUEST_WORKER_LEASE_REPLY__INIT;
    Ray__Rpc__Address addr = RAY__RPC__ADDRESS__INIT;
    switch (o->kind) {
    case LEASE_GRANTED:
        svc_reply_grant(c, o);
        break;
    case LEASE_SPILLBACK:
        addr.node_id.data = (uint8_t *)o->remote.node_id;
        addr.node_id.len = ID_UNIQUE_SIZE;
        addr.ip_address = (char *)o->remote.address;
        addr.port = o->remote.port;
        reply.retry_at_raylet_address = &addr;
        rpc_call_reply(c->call, &reply.base);
        break;
    case LEASE_REJECTED:
        reply.rejected = true;
        reply.failure_type = RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__NOT_FAILED;
        reply.scheduling_failure_message = "";
        rpc_call_reply(c->call, &reply.base);
        break;
    case LEASE_FAILED:
        reply.canceled = true;
        reply.failure_type = svc_failure_type(o->failure);
        reply.scheduling_failure_message = (char *)(o->message ? o->message : "");
        rpc_call_reply(c->call, &reply.base);
        break;
    }
    free(c);
}

void svc_lease_request(lease_mgr_t *mgr, const svc_lease_node_t *node, rpc_call_t *call,
                       const Ray__Rpc__RequestWorkerLeaseRequest *req)
{
    const Ray__Rpc__LeaseSpec *spec = req->lease_spec;
    if (!spec || spec->lease_id.len == 0 || spec->lease_id.len > LEASE_ID_MAX) {
        rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "lease_spec with a lease_id is required");
        return;
    }
    res_set_t *resources = svc_lease_resources(spec);
    if (!resources) {
        rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "malformed required_resources");
        return;
    }
    /* An actor placed with more than it holds (by default 1 CPU to be
     * placed, none to run): empty means the same as required. */
    res_set_t *placement = NULL;
    if (spec->n_required_placement_resources) {
        placement = svc_lease_placement(spec);
        if (!placement) {
            res_set_destroy(resources);
            rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "malformed required_placement_resources");
            return;
        }
    }
    lease_request_t lr = {
        .id = spec->lease_id.data,
        .id_len = spec->lease_id.len,
        .job_id = spec->job_id.len == ID_JOB_SIZE ? spec->job_id.data : NULL,
        .language = spec->language,
        .normal_task = spec->type == RAY__RPC__TASK_TYPE__NORMAL_TASK,
        .actor_creation = spec->type == RAY__RPC__TASK_TYPE__ACTOR_CREATION_TASK,
        .resources = resources,
        .placement = placement,
        .class_hash = svc_class_hash(spec),
        .grant_or_reject = req->grant_or_reject,
        .detached = spec->is_detached_actor || svc_id_set(&spec->root_detached_actor_id),
        .detached_actor = spec->is_detached_actor,
        /* As the stock LeaseSpecification::IsRetriable. */
        .retriable = !((spec->type == RAY__RPC__TASK_TYPE__ACTOR_CREATION_TASK && spec->max_actor_restarts == 0) ||
                       (spec->type == RAY__RPC__TASK_TYPE__NORMAL_TASK && spec->max_retries == 0)),
        .parent_task_id = spec->parent_task_id.len == ID_TASK_SIZE ? spec->parent_task_id.data : NULL,
        /* Echoed in OOM errors and metric labels: never invalid UTF-8. */
        .task_name = spec->task_name && utf8_valid(spec->task_name, strlen(spec->task_name)) ? spec->task_name : NULL,
    };
    uint8_t *env_config = NULL;
    const Ray__Rpc__RuntimeEnvInfo *info = spec->runtime_env_info;
    if (info) {
        lr.runtime_env = info->serialized_runtime_env;
        /* Packed only when there is an env to build: most leases have none. */
        if (info->runtime_env_config && !lease_runtime_env_is_none(lr.runtime_env)) {
            lr.runtime_env_config_len = protobuf_c_message_get_packed_size(&info->runtime_env_config->base);
            env_config = xmalloc(lr.runtime_env_config_len);
            protobuf_c_message_pack(&info->runtime_env_config->base, env_config);
            lr.runtime_env_config = env_config;
        }
    }
    const Ray__Rpc__SchedulingStrategy *ss = spec->scheduling_strategy;
    if (ss && ss->scheduling_strategy_case ==
                  RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_NODE_AFFINITY_SCHEDULING_STRATEGY &&
        ss->node_affinity_scheduling_strategy &&
        ss->node_affinity_scheduling_strategy->node_id.len == ID_UNIQUE_SIZE) {
        const Ray__Rpc__NodeAffinitySchedulingStrategy *na = ss->node_affinity_scheduling_strategy;
        bool here = memcmp(na->node_id.data, node->node_id, ID_UNIQUE_SIZE) == 0;
        lr.local_only = !na->soft && here;
        if (!here) {
            lr.affinity_node = na->node_id.data;
            lr.affinity_soft = na->soft;
        }
    }
    const Ray__Rpc__Address *caller = spec->caller_address;
    if (caller && caller->worker_id.len == ID_UNIQUE_SIZE)
        lr.caller_worker_id = caller->worker_id.data;
    if (caller && caller->node_id.len == ID_UNIQUE_SIZE)
        lr.caller_node_id = caller->node_id.data;
    /* The arguments in the store (by reference): fetched before the grant. */
    id_object_t *args = NULL;
    ray_addr_t *owners = NULL;
    if (spec->n_dependencies) {
        args = xcalloc(spec->n_dependencies, sizeof *args);
        owners = xcalloc(spec->n_dependencies, sizeof *owners);
        for (size_t i = 0; i < spec->n_dependencies; i++) {
            const Ray__Rpc__ObjectReference *ref = spec->dependencies[i];
            if (!ref || ref->object_id.len != ID_OBJECT_SIZE)
                continue; /* nothing to fetch by that */
            memcpy(args[lr.nargs].b, ref->object_id.data, ID_OBJECT_SIZE);
            svc_address_decode(ref->owner_address, &owners[lr.nargs]);
            lr.nargs++;
        }
        lr.args = args;
        lr.arg_owners = owners;
    }
    svc_lease_call_t *c = xmalloc(sizeof *c);
    c->call = call;
    c->node = node;
    clock_gettime(CLOCK_MONOTONIC, &c->received);
    int rc = lease_mgr_request(mgr, &lr, svc_on_outcome, c);
    if (rc != 0) {
        free(c);
        rpc_call_fail(call, rc == -EEXIST ? GRPC_STATUS_ALREADY_EXISTS : GRPC_STATUS_INVALID_ARGUMENT,
                      rc == -EEXIST ? "lease already queued" : "malformed lease request");
    }
    free(env_config);
    free(args);
    free(owners);
    res_set_destroy(resources);
    res_set_destroy(placement);
}

void svc_lease_return(lease_mgr_t *mgr, rpc_call_t *call, const Ray__Rpc__ReturnWorkerLeaseRequest *req)
{
    Ray__Rpc__ReturnWorkerLeaseReply reply = RAY__RPC__RETURN_WORKER_LEASE_REPLY__INIT;
    /* Answer first: handing the worker back may take a while (a kill). */
    rpc_call_reply(call, &reply.base);
    lease_mgr_return(mgr, req->lease_id.data, req->lease_id.len, req->disconnect_worker, req->worker_exiting,
                     req->disconnect_worker_error_detail);
}

void svc_lease_cancel(lease_mgr_t *mgr, rpc_call_t *call, const Ray__Rpc__CancelWorkerLeaseRequest *req)
{
    Ray__Rpc__CancelWorkerLeaseReply reply = RAY__RPC__CANCEL_WORKER_LEASE_REPLY__INIT;
    bool cancelled = lease_mgr_cancel(mgr, req->lease_id.data, req->lease_id.len);
#if CRAYLET_RAY_CANCEL_LEASE_REPLY_SUCCESS
    reply.success = cancelled;
#else
    (void)cancelled; /* the owner learns it from the lease request's reply */
#endif
    rpc_call_reply(call, &reply.base);
}

void svc_lease_backlog(lease_mgr_t *mgr, rpc_call_t *call, const Ray__Rpc__ReportWorkerBacklogRequest *req)
{
    if (req->worker_id.len == ID_UNIQUE_SIZE) {
        lease_backlog_entry_t *entries = xcalloc(req->n_backlog_reports, sizeof *entries);
        size_t n = 0;
        for (size_t i = 0; i < req->n_backlog_reports; i++) {
            const Ray__Rpc__WorkerBacklogReport *r = req->backlog_reports[i];
            if (!r->lease_spec || r->backlog_size <= 0)
                continue;
            /* Entries with malformed amounts are skipped, not the report. */
            res_set_t *set = res_set_create();
            for (size_t k = 0; k < r->lease_spec->n_required_resources; k++) {
                res_amount_t a;
                if (r->lease_spec->required_resources[k]->key &&
                    res_amount_from_double(r->lease_spec->required_resources[k]->value, &a) == 0)
                    res_set_put(set, r->lease_spec->required_resources[k]->key, a);
            }
            entries[n].shape = set;
            entries[n].backlog = r->backlog_size;
            n++;
        }
        lease_mgr_report_backlog(mgr, req->worker_id.data, entries, n);
        for (size_t i = 0; i < n; i++)
            res_set_destroy((res_set_t *)entries[i].shape);
        free(entries);
    }
    Ray__Rpc__ReportWorkerBacklogReply reply = RAY__RPC__REPORT_WORKER_BACKLOG_REPLY__INIT;
    rpc_call_reply(call, &reply.base);
}

void svc_lease_load_fill(lease_mgr_t *mgr, svc_lease_load_t *s)
{
    ray__rpc__resource_load__init(&s->load);
    s->mem = NULL;
    const lease_demand_t *d;
    size_t n = mgr ? lease_mgr_demand(mgr, &d) : 0;
    if (n == 0)
        return;
    size_t shape_entries = 0;
    for (size_t k = 0; k < n; k++)
        shape_entries += res_set_count(d[k].shape);
    /* One block: demand pointers, demands, shape-entry pointers, entries. */
    size_t size = n * (sizeof(Ray__Rpc__ResourceDemand *) + sizeof(Ray__Rpc__ResourceDemand)) +
                  shape_entries * (sizeof(Ray__Rpc__ResourceDemand__ShapeEntry *) +
                                   sizeof(Ray__Rpc__ResourceDemand__ShapeEntry));
    char *mem = xcalloc(1, size);
    s->mem = mem;
    Ray__Rpc__ResourceDemand **demand_ptrs = (Ray__Rpc__ResourceDemand **)mem;
    Ray__Rpc__ResourceDemand *demands = (Ray__Rpc__ResourceDemand *)(demand_ptrs + n);
    Ray__Rpc__ResourceDemand__ShapeEntry **entry_ptrs = (Ray__Rpc__ResourceDemand__ShapeEntry **)(demands + n);
    Ray__Rpc__ResourceDemand__ShapeEntry *entries = (Ray__Rpc__ResourceDemand__ShapeEntry *)(entry_ptrs + shape_entries);
    size_t e = 0;
    for (size_t k = 0; k < n; k++) {
        Ray__Rpc__ResourceDemand *rd = &demands[k];
        ray__rpc__resource_demand__init(rd);
        size_t m = res_set_count(d[k].shape);
        rd->shape = &entry_ptrs[e];
        for (size_t j = 0; j < m; j++, e++) {
            ray__rpc__resource_demand__shape_entry__init(&entries[e]);
            entries[e].key = (char *)res_set_name_at(d[k].shape, j);
            entries[e].value = res_amount_to_double(res_set_amount_at(d[k].shape, j));
            entry_ptrs[e] = &entries[e];
        }
        rd->n_shape = m;
        rd->num_ready_requests_queued = d[k].ready;
        rd->num_infeasible_requests_queued = d[k].infeasible;
        rd->backlog_size = d[k].backlog;
        demand_ptrs[k] = rd;
    }
    s->load.resource_demands = demand_ptrs;
    s->load.n_resource_demands = n;
}

void svc_lease_load_free(svc_lease_load_t *s)
{
    free(s->mem);
    s->mem = NULL;
}
