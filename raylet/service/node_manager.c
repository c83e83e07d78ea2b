/* NodeManagerService (node_manager.h).  Methods not registered here are
 * answered UNIMPLEMENTED by the rpc layer at once, so no caller waits on
 * something this build does not do. */
#include "raylet/service/node_manager.h"
#include "raylet/service/address.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raylet/worker/core_worker_client.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/utf8.h"
#include "common/list.h"
#include "raylet/cluster/drain.h"
#include "raylet/service/leases.h"

struct nm_service;

/* A call answered later (a fan-out to workers or nodes, an actor kill):
 * what every such call holds, so one function can silence it.  cancel()
 * answers UNAVAILABLE, silences and frees. */
typedef struct nm_pending {
    list_t node; /* nm_service_t.pending */
    struct nm_service *svc;
    rpc_call_t *call;
    uint64_t timer;            /* its deadline, 0 once fired */
    rpc_channel_t **channels;  /* owned: destroying them silences their calls */
    size_t channel_count;
    void (*cancel)(struct nm_pending *p);
} nm_pending_t;

#define NM_MAX_METHODS 40

/* What each registered method carries as its context: the service and the
 * handler, so that one trampoline can refuse calls once stopped. */
typedef struct nm_method {
    struct nm_service *svc;
    rpc_method_fn fn;
} nm_method_t;

struct nm_service {
    nm_service_deps_t d;
    nm_method_t methods[NM_MAX_METHODS];
    nm_node_ops_t ops;
    void *ctx;
    pool_t *pool;          /* NULL until attached */
    lease_mgr_t *leases;   /* NULL until attached */
    osub_t *osub;          /* NULL until attached */
    spill_t *spill;        /* NULL until attached */
    mem_monitor_t *mem;    /* NULL until attached */
    agent_t *dashboard_agent, *runtime_env_agent;
    svc_lease_node_t lease_node; /* this node, as lease replies name it */
    list_t pending;              /* nm_pending_t */
    bool stopped;
};

static void nm_health_check(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    const Grpc__Health__V1__HealthCheckRequest *req = (const Grpc__Health__V1__HealthCheckRequest *)msg;
    /* GCS asks for the node id as the service name; "" is the whole server. */
    if (req->service && req->service[0] && strcmp(req->service, svc->d.node_hex) != 0) {
        rpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "unknown service");
        return;
    }
    Grpc__Health__V1__HealthCheckResponse reply = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    reply.status = !svc->ops.serving(svc->ctx)
                       ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
                       : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    rpc_call_reply(call, &reply.base);
}

static void nm_get_resource_load(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    size_t n = res_node_count(svc->d.resources);
    Ray__Rpc__ResourcesData data = RAY__RPC__RESOURCES_DATA__INIT;
    Ray__Rpc__ResourcesData__ResourcesAvailableEntry *avail = xcalloc(n, sizeof *avail);
    Ray__Rpc__ResourcesData__ResourcesTotalEntry *total = xcalloc(n, sizeof *total);
    Ray__Rpc__ResourcesData__ResourcesAvailableEntry **availp = xcalloc(n, sizeof *availp);
    Ray__Rpc__ResourcesData__ResourcesTotalEntry **totalp = xcalloc(n, sizeof *totalp);
    for (size_t i = 0; i < n; i++) {
        res_entry_t e;
        res_node_entry_at(svc->d.resources, i, &e);
        ray__rpc__resources_data__resources_available_entry__init(&avail[i]);
        ray__rpc__resources_data__resources_total_entry__init(&total[i]);
        avail[i].key = total[i].key = (char *)e.name;
        avail[i].value = res_amount_to_double(e.available);
        total[i].value = res_amount_to_double(e.total);
        availp[i] = &avail[i];
        totalp[i] = &total[i];
    }
    data.node_id.data = (uint8_t *)svc->d.node_id;
    data.node_id.len = ID_UNIQUE_SIZE;
    data.n_resources_available = data.n_resources_total = n;
    data.resources_available = availp;
    data.resources_total = totalp;
    data.node_manager_address = (char *)svc->d.node_ip_address;
    svc_lease_load_t load;
    svc_lease_load_fill(svc->leases, &load);
    data.resource_load_by_shape = &load.load;
    data.idle_duration_ms = (int64_t)svc->ops.idle_ms(svc->ctx);
    data.is_draining = svc->ops.draining(svc->ctx, &data.draining_deadline_timestamp_ms);

    Ray__Rpc__GetResourceLoadReply reply = RAY__RPC__GET_RESOURCE_LOAD_REPLY__INIT;
    reply.resources = &data;
    rpc_call_reply(call, &reply.base);
    svc_lease_load_free(&load);
    free(avail);
    free(total);
    free(availp);
    free(totalp);
}

static void nm_get_system_config(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    Ray__Rpc__GetSystemConfigReply reply = RAY__RPC__GET_SYSTEM_CONFIG_REPLY__INIT;
    reply.system_config = (char *)svc->d.system_config_json;
    rpc_call_reply(call, &reply.base);
}

static void nm_get_agent_pids(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    Ray__Rpc__GetAgentPIDsReply reply = RAY__RPC__GET_AGENT_PIDS_REPLY__INIT;
    if (svc->dashboard_agent && !agent_exited(svc->dashboard_agent)) {
        reply._dashboard_agent_pid_case = RAY__RPC__GET_AGENT_PIDS_REPLY___DASHBOARD_AGENT_PID_DASHBOARD_AGENT_PID;
        reply.dashboard_agent_pid = agent_pid(svc->dashboard_agent);
    }
    if (svc->runtime_env_agent && !agent_exited(svc->runtime_env_agent)) {
        reply._runtime_env_agent_pid_case =
            RAY__RPC__GET_AGENT_PIDS_REPLY___RUNTIME_ENV_AGENT_PID_RUNTIME_ENV_AGENT_PID;
        reply.runtime_env_agent_pid = agent_pid(svc->runtime_env_agent);
    }
    rpc_call_reply(call, &reply.base);
}

static void nm_get_worker_pids(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    Ray__Rpc__GetWorkerPIDsReply reply = RAY__RPC__GET_WORKER_PIDS_REPLY__INIT;
    int32_t pids[4096];
    reply.n_pids = svc->pool ? pool_pids(svc->pool, pids, sizeof pids / sizeof pids[0]) : 0;
    reply.pids = pids;
    rpc_call_reply(call, &reply.base);
}

/* Leases are refused until the pool exists (between binding the port and
 * finishing start-up): callers retry. */
static bool nm_ready(nm_service_t *svc, rpc_call_t *call)
{
    if (svc->leases && !svc->stopped && svc->ops.serving(svc->ctx))
        return true;
    rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "raylet is not serving leases");
    return false;
}

static void nm_request_worker_lease(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    if (nm_ready(svc, call))
        svc_lease_request(svc->leases, &svc->lease_node, call, (const Ray__Rpc__RequestWorkerLeaseRequest *)msg);
}

static void nm_return_worker_lease(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    if (nm_ready(svc, call))
        svc_lease_return(svc->leases, call, (const Ray__Rpc__ReturnWorkerLeaseRequest *)msg);
}

static void nm_cancel_worker_lease(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    if (nm_ready(svc, call))
        svc_lease_cancel(svc->leases, call, (const Ray__Rpc__CancelWorkerLeaseRequest *)msg);
}

static void nm_report_worker_backlog(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    if (svc->leases) {
        svc_lease_backlog(svc->leases, call, (const Ray__Rpc__ReportWorkerBacklogRequest *)msg);
        return;
    }
    Ray__Rpc__ReportWorkerBacklogReply reply = RAY__RPC__REPORT_WORKER_BACKLOG_REPLY__INIT;
    rpc_call_reply(call, &reply.base);
}

static void nm_prestart_workers(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    const Ray__Rpc__PrestartWorkersRequest *req = (const Ray__Rpc__PrestartWorkersRequest *)msg;
    if (!nm_ready(svc, call))
        return;
    if (req->_job_id_case != RAY__RPC__PRESTART_WORKERS_REQUEST___JOB_ID_JOB_ID ||
        req->job_id.len != ID_JOB_SIZE) {
        rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "job_id is required");
        return;
    }
    /* Bounded by the start-up concurrency inside the pool. */
    size_t n = req->num_workers > 64 ? 64 : (size_t)req->num_workers;
    pool_prestart(svc->pool, req->job_id.data, req->language, n);
    Ray__Rpc__PrestartWorkersReply reply = RAY__RPC__PRESTART_WORKERS_REPLY__INIT;
    rpc_call_reply(call, &reply.base);
}

static void nm_pin_object_ids(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    const Ray__Rpc__PinObjectIDsRequest *req = (const Ray__Rpc__PinObjectIDsRequest *)msg;
    protobuf_c_boolean *ok = xcalloc(req->n_object_ids, sizeof *ok);
    for (size_t i = 0; i < req->n_object_ids; i++) {
        ok[i] = req->object_ids[i].len == ID_OBJECT_SIZE &&
                store_pin(svc->d.store, (const id_object_t *)req->object_ids[i].data) == 0;
        /* Without an owner to watch, the pin lasts until the node stops. */
        if (ok[i] && svc->osub)
            osub_watch(svc->osub, req->owner_address, req->object_ids[i].data);
        if (ok[i] && svc->spill && req->owner_address) {
            ray_addr_t owner;
            svc_address_decode(req->owner_address, &owner);
            spill_track(svc->spill, (const id_object_t *)req->object_ids[i].data, &owner);
        }
    }
    Ray__Rpc__PinObjectIDsReply reply = RAY__RPC__PIN_OBJECT_IDS_REPLY__INIT;
    reply.n_successes = req->n_object_ids;
    reply.successes = ok;
    rpc_call_reply(call, &reply.base);
    free(ok);
}

static void nm_get_worker_failure_cause(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    const Ray__Rpc__GetWorkerFailureCauseRequest *req = (const Ray__Rpc__GetWorkerFailureCauseRequest *)msg;
    Ray__Rpc__GetWorkerFailureCauseReply reply = RAY__RPC__GET_WORKER_FAILURE_CAUSE_REPLY__INIT;
    Ray__Rpc__RayErrorInfo cause = RAY__RPC__RAY_ERROR_INFO__INIT;
    const char *message;
    bool should_retry;
    /* Only kills for memory are recorded, as in the stock raylet; for any
     * other death the owner goes by its own view (the worker died: retry
     * if allowed). */
    if (svc->mem && mem_monitor_failure_cause(svc->mem, req->lease_id.data, req->lease_id.len, &message,
                                              &should_retry)) {
        cause.error_type = RAY__RPC__ERROR_TYPE__OUT_OF_MEMORY;
        cause.error_message = (char *)message;
        reply._failure_cause_case = RAY__RPC__GET_WORKER_FAILURE_CAUSE_REPLY___FAILURE_CAUSE_FAILURE_CAUSE;
        reply.failure_cause = &cause;
        reply.fail_task_immediately = !should_retry;
    }
    rpc_call_reply(call, &reply.base);
}

/* Calls answered later (the stats aggregates below) are kept on
 * svc->pending, so that nm_service_stop() can answer them UNAVAILABLE and
 * silence their channels before the components they read are freed. */
static void nm_pending_add(nm_service_t *svc, nm_pending_t *p, rpc_call_t *call, size_t max_channels,
                           void (*cancel)(nm_pending_t *))
{
    p->svc = svc;
    p->call = call;
    p->channels = xcalloc(max_channels, sizeof *p->channels);
    p->cancel = cancel;
    list_insert_tail(&svc->pending, &p->node);
}

/* No reply, deadline or callback reaches the call's owner after this. */
static void nm_pending_silence(nm_pending_t *p)
{
    list_remove(&p->node);
    if (p->timer)
        loop_cancel_timer(p->svc->d.loop, p->timer);
    p->timer = 0;
    for (size_t i = 0; i < p->channel_count; i++)
        rpc_channel_destroy(p->channels[i]);
    p->channel_count = 0;
}

static void nm_pending_free(nm_pending_t *p)
{
    free(p->channels);
}

void nm_service_stop(nm_service_t *svc)
{
    if (!svc)
        return;
    svc->stopped = true;
    svc->dashboard_agent = svc->runtime_env_agent = NULL; /* destroyed before us */
    while (!list_empty(&svc->pending)) {
        nm_pending_t *p = LIST_ENTRY(svc->pending.next, nm_pending_t, node);
        list_remove(&p->node);
        p->cancel(p);
    }
}

/* Every live worker and driver record (owned array, records valid until
 * the pool next changes); *n gets the count.  None without a pool. */
static worker_t **nm_list_workers(nm_service_t *svc, size_t *n)
{
    size_t cap = 256;
    worker_t **list = xmalloc(cap * sizeof *list);
    *n = 0;
    if (!svc->pool)
        return list;
    while ((*n = pool_list(svc->pool, list, cap)) == cap) {
        cap *= 2;
        list = xrealloc(list, cap * sizeof *list);
    }
    return list;
}

/* A new channel to worker `w`'s CoreWorkerService, owned by the caller;
 * NULL when it has no port or none can be made. */
static rpc_channel_t *nm_worker_channel(nm_service_t *svc, worker_t *w)
{
    if (worker_port(w) <= 0)
        return NULL;
    char target[96];
    snprintf(target, sizeof target, "%s:%d", svc->d.node_ip_address, worker_port(w));
    return rpc_channel_create(svc->d.bridge, target);
}

/* This node's store, as GetNodeStats and `ray memory` report it. */
static void nm_store_stats(nm_service_t *svc, Ray__Rpc__ObjectStoreStats *out)
{
    store_stats_t st;
    store_get_stats(svc->d.store, &st);
    ray__rpc__object_store_stats__init(out);
    out->object_store_bytes_used = (int64_t)st.bytes_used;
    out->object_store_bytes_avail = (int64_t)st.capacity;
    out->object_store_bytes_primary_copy = (int64_t)st.bytes_pinned;
    out->object_store_bytes_fallback = (int64_t)st.bytes_fallback;
    out->num_local_objects = (int64_t)st.num_objects;
    out->num_object_store_primary_copies = (int64_t)st.num_pinned;
    out->cumulative_created_objects = (int64_t)st.num_created;
    out->cumulative_created_bytes = (int64_t)st.bytes_created;
    if (svc->spill) {
        /* Primary copies as the stock raylet counts them: those in memory
         * (not being spilled), and every one tracked, spilled or not. */
        spill_stats_t sp;
        spill_get_stats(svc->spill, &sp);
        out->spill_time_total_s = sp.spill_time_total_s;
        out->spilled_bytes_total = (int64_t)sp.spilled_bytes_total;
        out->spilled_objects_total = (int64_t)sp.spilled_objects_total;
        out->restore_time_total_s = sp.restore_time_total_s;
        out->restored_bytes_total = (int64_t)sp.restored_bytes_total;
        out->restored_objects_total = (int64_t)sp.restored_objects_total;
        out->object_store_bytes_primary_copy = (int64_t)sp.pinned_bytes;
        out->num_object_store_primary_copies = (int64_t)sp.primaries;
    }
}

/* GetNodeStats and GetObjectsInfo ask every worker and driver for its
 * CoreWorkerStats (the dashboard's worker table, `ray memory`, `ray list
 * objects`) and answer when all replied or the deadline passed.  The
 * aggregate owns one channel per worker, so destroying them silences any
 * reply still on its way. */
#define NM_STATS_DEADLINE_MS 3000
#define NM_OBJECTS_DEADLINE_MS 25000

typedef enum { NM_STATS_NODE, NM_STATS_OBJECTS } nm_stats_kind_t;

typedef struct nm_stats {
    nm_pending_t p; /* first */
    nm_stats_kind_t kind;
    int64_t limit;  /* object refs wanted (GetObjectsInfo); < 0: all */
    size_t pending; /* replies still expected */
    uint8_t **packed; /* serialized CoreWorkerStats, one per reply */
    size_t *packed_len;
    size_t packed_count;
} nm_stats_t;

static void nm_stats_free(nm_stats_t *a)
{
    for (size_t i = 0; i < a->packed_count; i++)
        free(a->packed[i]);
    free(a->packed);
    free(a->packed_len);
    nm_pending_free(&a->p);
    free(a);
}

static void nm_stats_cancel(nm_pending_t *p)
{
    nm_stats_t *a = (nm_stats_t *)p;
    nm_pending_silence(&a->p);
    rpc_call_fail(a->p.call, GRPC_STATUS_UNAVAILABLE, "raylet shutting down");
    nm_stats_free(a);
}

static void nm_stats_reply_node(nm_stats_t *a, Ray__Rpc__CoreWorkerStats **stats, size_t n)
{
    nm_service_t *svc = a->p.svc;
    Ray__Rpc__GetNodeStatsReply reply = RAY__RPC__GET_NODE_STATS_REPLY__INIT;
    reply.core_workers_stats = stats;
    reply.n_core_workers_stats = n;
    Ray__Rpc__ObjectStoreStats store;
    nm_store_stats(svc, &store);
    reply.store_stats = &store;
    reply.num_workers = svc->pool ? (uint32_t)(pool_count(svc->pool, WORKER_IDLE) + pool_count(svc->pool, WORKER_LEASED))
                                : 0;
    rpc_call_reply(a->p.call, &reply.base);
}

/* As the stock raylet counts: every worker's objects in `total`; whole
 * workers' stats kept until the refs they carry reach the limit (so a
 * reply may hold more refs than asked for; -1 is no limit, and any other
 * negative one keeps none). */
static void nm_stats_reply_objects(nm_stats_t *a, Ray__Rpc__CoreWorkerStats **stats, size_t n)
{
    Ray__Rpc__GetObjectsInfoReply reply = RAY__RPC__GET_OBJECTS_INFO_REPLY__INIT;
    Ray__Rpc__CoreWorkerStats **kept = xcalloc(n, sizeof *kept);
    int64_t refs = 0;
    for (size_t i = 0; i < n; i++) {
        reply.total += stats[i]->objects_total;
        if (a->limit != -1 && refs >= a->limit)
            continue;
        refs += (int64_t)stats[i]->n_object_refs;
        kept[reply.n_core_workers_stats++] = stats[i];
    }
    reply.core_workers_stats = kept;
    rpc_call_reply(a->p.call, &reply.base);
    free(kept);
}

static void nm_stats_finish(nm_stats_t *a)
{
    nm_pending_silence(&a->p);
    Ray__Rpc__CoreWorkerStats **stats = xcalloc(a->packed_count, sizeof *stats);
    size_t n = 0;
    for (size_t i = 0; i < a->packed_count; i++) {
        stats[n] = ray__rpc__core_worker_stats__unpack(NULL, a->packed_len[i], a->packed[i]);
        if (stats[n])
            n++;
    }
    if (a->kind == NM_STATS_OBJECTS)
        nm_stats_reply_objects(a, stats, n);
    else
        nm_stats_reply_node(a, stats, n);
    for (size_t i = 0; i < n; i++)
        ray__rpc__core_worker_stats__free_unpacked(stats[i], NULL);
    free(stats);
    nm_stats_free(a);
}

static void nm_stats_on_reply(void *ctx, const rpc_status_t *st, ProtobufCMessage *msg)
{
    nm_stats_t *a = ctx;
    const Ray__Rpc__GetCoreWorkerStatsReply *reply = (const Ray__Rpc__GetCoreWorkerStatsReply *)msg;
    if (st->code == GRPC_STATUS_OK && reply->core_worker_stats) {
        size_t len = protobuf_c_message_get_packed_size(&reply->core_worker_stats->base);
        uint8_t *buf = xmalloc(len);
        protobuf_c_message_pack(&reply->core_worker_stats->base, buf);
        a->packed[a->packed_count] = buf;
        a->packed_len[a->packed_count++] = len;
    }
    if (--a->pending == 0)
        nm_stats_finish(a);
}

static void nm_stats_on_deadline(loop_t *loop, uint64_t id, void *data)
{
    nm_stats_t *a = data;
    a->p.timer = 0;
    nm_stats_finish(a); /* whoever has not answered is left out */
}

static void nm_stats_start(nm_service_t *svc, rpc_call_t *call, nm_stats_kind_t kind, bool include_memory_info,
                           int64_t limit)
{
    nm_stats_t *a = xcalloc(1, sizeof *a);
    a->kind = kind;
    a->limit = limit;
    /* The dashboard refreshes node stats every few seconds and wants them
     * promptly; `ray list objects` waits up to 30 s for a complete list. */
    uint64_t deadline_ms = kind == NM_STATS_OBJECTS ? NM_OBJECTS_DEADLINE_MS : NM_STATS_DEADLINE_MS;
    size_t n;
    worker_t **list = nm_list_workers(svc, &n);
    nm_pending_add(svc, &a->p, call, n, nm_stats_cancel);
    a->packed = xcalloc(n, sizeof *a->packed);
    a->packed_len = xcalloc(n, sizeof *a->packed_len);
    for (size_t i = 0; i < n; i++) {
        worker_t *w = list[i];
        if (worker_state(w) != WORKER_IDLE && worker_state(w) != WORKER_LEASED && worker_state(w) != WORKER_DRIVER)
            continue;
        rpc_channel_t *ch = nm_worker_channel(svc, w);
        if (!ch)
            continue;
        a->p.channels[a->p.channel_count++] = ch;
        Ray__Rpc__GetCoreWorkerStatsRequest creq = RAY__RPC__GET_CORE_WORKER_STATS_REQUEST__INIT;
        creq.intended_worker_id.data = (uint8_t *)worker_id(w);
        creq.intended_worker_id.len = ID_UNIQUE_SIZE;
        creq.include_memory_info = include_memory_info;
        if (limit >= 0) {
            creq._limit_case = RAY__RPC__GET_CORE_WORKER_STATS_REQUEST___LIMIT_LIMIT;
            creq.limit = limit;
        }
        if (cwc_get_stats(ch, &creq, deadline_ms, nm_stats_on_reply, a) == 0)
            a->pending++;
    }
    free(list);
    if (a->pending == 0) {
        nm_stats_finish(a);
        return;
    }
    a->p.timer = loop_add_timer(svc->d.loop, deadline_ms + 500, nm_stats_on_deadline, a);
}

static void nm_get_node_stats(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    const Ray__Rpc__GetNodeStatsRequest *req = (const Ray__Rpc__GetNodeStatsRequest *)msg;
    nm_stats_start(ctx, call, NM_STATS_NODE, req->include_memory_info, -1);
}

/* GetObjectsInfo (the state API's `ray list objects`): every worker's
 * object refs, with their memory information. */
static void nm_get_objects_info(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    const Ray__Rpc__GetObjectsInfoRequest *req = (const Ray__Rpc__GetObjectsInfoRequest *)msg;
    int64_t limit = req->_limit_case == RAY__RPC__GET_OBJECTS_INFO_REQUEST___LIMIT_LIMIT ? req->limit : -1;
    nm_stats_start(ctx, call, NM_STATS_OBJECTS, true, limit);
}

/* FormatGlobalMemoryInfo (`ray memory`): this node's store statistics
 * summed with every other live node's, asked for through GetNodeStats. */
typedef struct nm_mem {
    nm_pending_t p; /* first */
    size_t pending; /* replies still expected */
    size_t nodes;
    Ray__Rpc__ObjectStoreStats sum;
} nm_mem_t;

static void nm_mem_add(nm_mem_t *m, const Ray__Rpc__ObjectStoreStats *s)
{
    m->sum.object_store_bytes_used += s->object_store_bytes_used;
    m->sum.object_store_bytes_avail += s->object_store_bytes_avail;
    m->sum.object_store_bytes_primary_copy += s->object_store_bytes_primary_copy;
    m->sum.object_store_bytes_fallback += s->object_store_bytes_fallback;
    m->sum.num_local_objects += s->num_local_objects;
    /* As the stock raylet aggregates (FormatGlobalMemoryInfo): times are
     * the slowest node's, the primary-copy count is not summed. */
    m->sum.cumulative_created_objects += s->cumulative_created_objects;
    if (s->spill_time_total_s > m->sum.spill_time_total_s)
        m->sum.spill_time_total_s = s->spill_time_total_s;
    if (s->restore_time_total_s > m->sum.restore_time_total_s)
        m->sum.restore_time_total_s = s->restore_time_total_s;
    m->sum.object_pulls_queued = m->sum.object_pulls_queued || s->object_pulls_queued;
    m->sum.cumulative_created_bytes += s->cumulative_created_bytes;
    m->sum.spilled_bytes_total += s->spilled_bytes_total;
    m->sum.spilled_objects_total += s->spilled_objects_total;
    m->sum.restored_bytes_total += s->restored_bytes_total;
    m->sum.restored_objects_total += s->restored_objects_total;
    m->nodes++;
}

static void nm_mem_cancel(nm_pending_t *p)
{
    nm_mem_t *m = (nm_mem_t *)p;
    nm_pending_silence(&m->p);
    rpc_call_fail(m->p.call, GRPC_STATUS_UNAVAILABLE, "raylet shutting down");
    nm_pending_free(&m->p);
    free(m);
}

static void nm_mem_finish(nm_mem_t *m)
{
    nm_pending_silence(&m->p);
    char summary[256];
    snprintf(summary, sizeof summary, "%zu node(s): %lld objects, %.1f MiB used of %.1f MiB\n", m->nodes,
             (long long)m->sum.num_local_objects, m->sum.object_store_bytes_used / 1048576.0,
             m->sum.object_store_bytes_avail / 1048576.0);
    Ray__Rpc__FormatGlobalMemoryInfoReply reply = RAY__RPC__FORMAT_GLOBAL_MEMORY_INFO_REPLY__INIT;
    reply.memory_summary = summary;
    reply.store_stats = &m->sum;
    rpc_call_reply(m->p.call, &reply.base);
    nm_pending_free(&m->p);
    free(m);
}

static void nm_mem_on_reply(void *ctx, const rpc_status_t *st, ProtobufCMessage *msg)
{
    nm_mem_t *m = ctx;
    const Ray__Rpc__GetNodeStatsReply *reply = (const Ray__Rpc__GetNodeStatsReply *)msg;
    if (st->code == GRPC_STATUS_OK && reply->store_stats)
        nm_mem_add(m, reply->store_stats);
    if (--m->pending == 0)
        nm_mem_finish(m);
}

static void nm_mem_on_deadline(loop_t *loop, uint64_t id, void *data)
{
    nm_mem_t *m = data;
    m->p.timer = 0;
    nm_mem_finish(m);
}

static void nm_format_global_memory_info(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    nm_mem_t *m = xcalloc(1, sizeof *m);
    size_t peer_count = peers_count(svc->d.peers);
    nm_pending_add(svc, &m->p, call, peer_count, nm_mem_cancel);
    ray__rpc__object_store_stats__init(&m->sum);
    Ray__Rpc__ObjectStoreStats local;
    nm_store_stats(svc, &local);
    nm_mem_add(m, &local);

    for (size_t i = 0; i < peer_count; i++) {
        peer_info_t peer;
        peers_at(svc->d.peers, i, &peer);
        if (!peer.address[0] || peer.port <= 0)
            continue;
        char target[96];
        snprintf(target, sizeof target, "%s:%d", peer.address, peer.port);
        rpc_channel_t *ch = rpc_channel_create(svc->d.bridge, target);
        if (!ch)
            continue;
        m->p.channels[m->p.channel_count++] = ch;
        Ray__Rpc__GetNodeStatsRequest req = RAY__RPC__GET_NODE_STATS_REQUEST__INIT;
        if (rpc_unary(ch, "/ray.rpc.NodeManagerService/GetNodeStats", &req.base,
                      &ray__rpc__get_node_stats_reply__descriptor, NM_STATS_DEADLINE_MS, nm_mem_on_reply, m) == 0)
            m->pending++;
    }
    if (m->pending == 0) {
        nm_mem_finish(m);
        return;
    }
    m->p.timer = loop_add_timer(svc->d.loop, NM_STATS_DEADLINE_MS + 500, nm_mem_on_deadline, m);
}

static void nm_on_worker_notified(void *ctx, const rpc_status_t *st, ProtobufCMessage *reply)
{
    (void)ctx;
    (void)reply;
    if (st->code != GRPC_STATUS_OK)
        log_debug("RayletNotifyGCSRestart to a worker: %s", st->message);
}

static void nm_notify_gcs_restart(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    (void)msg;
    /* The node's own subscriber re-subscribes now; each worker and driver
     * hears it too (they connected to GCS after registering here, so every
     * one of them has subscriptions to renew). */
    size_t told = 0, n;
    worker_t **list = nm_list_workers(svc, &n);
    for (size_t i = 0; i < n; i++) {
        worker_state_t state = worker_state(list[i]);
        if (state != WORKER_IDLE && state != WORKER_LEASED && state != WORKER_DRIVER)
            continue;
        rpc_channel_t *ch = pool_channel(svc->pool, list[i]);
        if (ch && cwc_raylet_notify_gcs_restart(ch, NM_STATS_DEADLINE_MS, nm_on_worker_notified, NULL) == 0)
            told++;
    }
    free(list);
    log_info("GCS restarted: resubscribing and telling %zu workers and drivers", told);
    svc->ops.gcs_restarted(svc->ctx);
    Ray__Rpc__NotifyGCSRestartReply reply = RAY__RPC__NOTIFY_GCSRESTART_REPLY__INIT;
    rpc_call_reply(call, &reply.base);
}

static void nm_drain_raylet(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    const Ray__Rpc__DrainRayletRequest *req = (const Ray__Rpc__DrainRayletRequest *)msg;
    log_info("DrainRaylet requested: reason %d, deadline %lld ms, message \"%.200s\"", (int)req->reason,
             (long long)req->deadline_timestamp_ms, req->reason_message ? req->reason_message : "");
    const char *why = NULL;
    int verdict = svc->ops.drain(svc->ctx, (int)req->reason, req->reason_message, req->deadline_timestamp_ms, &why);
    if (verdict == DRAIN_INVALID) {
        log_warn("refused DrainRaylet from %s: %s", rpc_call_peer(call), why);
        rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, why);
        return;
    }
    Ray__Rpc__DrainRayletReply reply = RAY__RPC__DRAIN_RAYLET_REPLY__INIT;
    reply.is_accepted = verdict == DRAIN_ACCEPTED;
    if (!reply.is_accepted) {
        log_info("DrainRaylet rejected: %s", why);
        reply.rejection_reason_message = (char *)why;
    }
    rpc_call_reply(call, &reply.base);
}

static void nm_shutdown_raylet(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    const Ray__Rpc__ShutdownRayletRequest *req = (const Ray__Rpc__ShutdownRayletRequest *)msg;
    bool graceful = req->graceful;
    Ray__Rpc__ShutdownRayletReply reply = RAY__RPC__SHUTDOWN_RAYLET_REPLY__INIT;
    rpc_call_reply(call, &reply.base);
    log_info("ShutdownRaylet requested (graceful=%d)", graceful);
    svc->ops.shutdown(svc->ctx, graceful);
}

static void nm_is_local_worker_dead(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    const Ray__Rpc__IsLocalWorkerDeadRequest *req = (const Ray__Rpc__IsLocalWorkerDeadRequest *)msg;
    worker_t *w = svc->pool && req->worker_id.len == ID_UNIQUE_SIZE ? pool_find(svc->pool, req->worker_id.data) : NULL;
    Ray__Rpc__IsLocalWorkerDeadReply reply = RAY__RPC__IS_LOCAL_WORKER_DEAD_REPLY__INIT;
    reply.is_dead = !w || worker_state(w) == WORKER_DEAD;
    rpc_call_reply(call, &reply.base);
}

/* KillLocalActor and CancelLocalTask ask one local worker to do something
 * over its CoreWorkerService, with a grace timer after which the worker is
 * killed.  The call owns its one channel, so stopping it silences the
 * worker's answer; once it is answered (or the node stops) nothing reaches
 * it again. */
typedef struct nm_worker_call {
    nm_pending_t p; /* first */
    uint8_t worker_id[ID_UNIQUE_SIZE];
} nm_worker_call_t;

static void nm_worker_call_free(nm_worker_call_t *c)
{
    nm_pending_silence(&c->p);
    nm_pending_free(&c->p);
    free(c);
}

static void nm_worker_call_stop(nm_pending_t *p)
{
    nm_worker_call_t *c = (nm_worker_call_t *)p;
    rpc_call_fail(c->p.call, GRPC_STATUS_UNAVAILABLE, "raylet shutting down");
    nm_worker_call_free(c);
}

/* A pending call on `w`, with a channel to it unless it has no port or
 * none can be made (then c->p.channel_count is 0). */
static nm_worker_call_t *nm_worker_call_start(nm_service_t *svc, rpc_call_t *call, worker_t *w)
{
    nm_worker_call_t *c = xcalloc(1, sizeof *c);
    memcpy(c->worker_id, worker_id(w), ID_UNIQUE_SIZE);
    nm_pending_add(svc, &c->p, call, 1, nm_worker_call_stop);
    rpc_channel_t *ch = nm_worker_channel(svc, w);
    if (ch)
        c->p.channels[c->p.channel_count++] = ch;
    return c;
}

/* The grace period is over: the worker goes if it is still here. */
static void nm_worker_call_kill(nm_worker_call_t *c, const char *what, const char *reason)
{
    worker_t *w = c->p.svc->pool ? pool_find(c->p.svc->pool, c->worker_id) : NULL;
    if (!w || worker_state(w) == WORKER_DEAD)
        return;
    log_info("worker %s (pid %d) did not %s in time; killing it", worker_id_hex(w), (int)worker_pid(w), what);
    pool_kill(c->p.svc->pool, w, RAY__RPC__WORKER_EXIT_TYPE__INTENDED_SYSTEM_EXIT, reason);
}

/* KillLocalActor: ask the actor's worker to exit (KillActor); if it is
 * still registered when the grace period ends, kill the process.  The
 * reply waits for one or the other, as GCS expects. */
static void nm_kill_on_timer(loop_t *loop, uint64_t id, void *data)
{
    nm_worker_call_t *c = data;
    c->p.timer = 0;
    nm_worker_call_kill(c, "exit", "Actor killed by GCS");
    Ray__Rpc__KillLocalActorReply reply = RAY__RPC__KILL_LOCAL_ACTOR_REPLY__INIT;
    rpc_call_reply(c->p.call, &reply.base);
    nm_worker_call_free(c);
}

static void nm_kill_on_reply(void *ctx, const rpc_status_t *st, ProtobufCMessage *reply)
{
    nm_worker_call_t *c = ctx;
    /* A dying actor does not answer; only a failure to reach it does, and
     * then the grace timer still decides. */
    if (st->code == GRPC_STATUS_OK)
        return;
    char msg[256];
    snprintf(msg, sizeof msg, "KillActor RPC failed: %s", st->message);
    rpc_call_fail(c->p.call, GRPC_STATUS_INVALID_ARGUMENT, msg);
    nm_worker_call_free(c);
}

static void nm_kill_local_actor(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    const Ray__Rpc__KillLocalActorRequest *req = (const Ray__Rpc__KillLocalActorRequest *)msg;
    worker_t *w = svc->pool && req->worker_id.len == ID_UNIQUE_SIZE ? pool_find(svc->pool, req->worker_id.data) : NULL;
    if (!w || worker_state(w) == WORKER_DEAD) {
        Ray__Rpc__KillLocalActorReply reply = RAY__RPC__KILL_LOCAL_ACTOR_REPLY__INIT;
        rpc_call_reply(call, &reply.base); /* already gone */
        return;
    }
    nm_worker_call_t *c = nm_worker_call_start(svc, call, w);
    c->p.timer = loop_add_timer(svc->d.loop, (uint64_t)svc->d.kill_worker_timeout_ms, nm_kill_on_timer, c);
    Ray__Rpc__KillActorRequest kreq = RAY__RPC__KILL_ACTOR_REQUEST__INIT;
    kreq.intended_actor_id = req->intended_actor_id;
    kreq.force_kill = req->force_kill;
    kreq.death_cause = req->death_cause;
    /* Without a call the grace timer alone finishes the job. */
    if (c->p.channel_count)
        cwc_kill_actor(c->p.channels[0], &kreq, 0, nm_kill_on_reply, c);
}

/* CancelLocalTask (ray.cancel of a task that is running here): the
 * executing worker is asked to cancel it (CancelTask) and the owner gets
 * its answer.  With force_kill, a worker still registered when the grace
 * period ends is killed and the task counts as cancelled; an answer that
 * comes first stops the timer, as on the stock raylet (the worker exits by
 * itself after a forced cancel). */
static void nm_cancel_answer(rpc_call_t *call, bool succeeded, bool running)
{
    Ray__Rpc__CancelLocalTaskReply reply = RAY__RPC__CANCEL_LOCAL_TASK_REPLY__INIT;
    reply.attempt_succeeded = succeeded;
    reply.requested_task_running = running;
    rpc_call_reply(call, &reply.base);
}

static void nm_cancel_on_timer(loop_t *loop, uint64_t id, void *data)
{
    nm_worker_call_t *c = data;
    c->p.timer = 0;
    nm_worker_call_kill(c, "cancel its task", "Force-killed by ray.cancel(force=True)");
    nm_cancel_answer(c->p.call, true, false);
    nm_worker_call_free(c);
}

static void nm_cancel_on_reply(void *ctx, const rpc_status_t *st, ProtobufCMessage *msg)
{
    nm_worker_call_t *c = ctx;
    if (st->code != GRPC_STATUS_OK) {
        char hex[ID_HEX_BUF];
        id_to_hex(c->worker_id, ID_UNIQUE_SIZE, hex);
        if (c->p.timer) {
            /* Forced: the worker is likely exiting; the grace timer decides. */
            log_debug("CancelTask on worker %s: %s", hex, st->message);
            return;
        }
        log_warn("CancelTask on worker %s failed: %s", hex, st->message);
        rpc_call_fail(c->p.call, st->code, st->message);
        nm_worker_call_free(c);
        return;
    }
    const Ray__Rpc__CancelTaskReply *r = (const Ray__Rpc__CancelTaskReply *)msg;
    nm_cancel_answer(c->p.call, r->attempt_succeeded, r->requested_task_running);
    nm_worker_call_free(c);
}

static void nm_cancel_local_task(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    const Ray__Rpc__CancelLocalTaskRequest *req = (const Ray__Rpc__CancelLocalTaskRequest *)msg;
    if (req->executor_worker_id.len != ID_UNIQUE_SIZE) {
        rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "executor_worker_id is not a worker id");
        return;
    }
    worker_t *w = svc->pool ? pool_find(svc->pool, req->executor_worker_id.data) : NULL;
    if (!w || worker_state(w) == WORKER_DEAD) {
        nm_cancel_answer(call, true, false); /* gone, and its task with it */
        return;
    }
    nm_worker_call_t *c = nm_worker_call_start(svc, call, w);
    if (req->force_kill)
        c->p.timer = loop_add_timer(svc->d.loop, (uint64_t)svc->d.kill_worker_timeout_ms, nm_cancel_on_timer, c);
    Ray__Rpc__CancelTaskRequest creq = RAY__RPC__CANCEL_TASK_REQUEST__INIT;
    creq.intended_task_id = req->intended_task_id;
    creq.force_kill = req->force_kill;
    creq.recursive = req->recursive;
    creq.caller_worker_id = req->caller_worker_id;
    bool asked = c->p.channel_count && cwc_cancel_task(c->p.channels[0], &creq, 0, nm_cancel_on_reply, c) == 0;
    if (!asked && !c->p.timer) {
        rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "cannot reach the executing worker");
        nm_worker_call_free(c);
    }
}

/* The request's totals, checked before anything changes: names non-empty
 * UTF-8 and not per-instance resources (GPU and the like cannot be resized,
 * the stock raylet's words), amounts ones a node can hold.  0, or -1 with
 * `why` filled. */
static int nm_resize_targets(const res_node_t *node, const Ray__Rpc__ResizeLocalResourceInstancesRequest *req,
                             res_amount_t *targets, char *why, size_t why_len)
{
    for (size_t i = 0; i < req->n_resources; i++) {
        const char *name = req->resources[i]->key;
        if (!name || !*name || !utf8_valid(name, strlen(name))) {
            snprintf(why, why_len, "a resource name is empty or not UTF-8");
            return -1;
        }
        if (res_node_is_unit_instance(node, name)) {
            snprintf(why, why_len,
                     "Cannot resize unit instance resource '%.200s'. Unit instance resources (e.g., GPU) cannot be "
                     "resized dynamically.",
                     name);
            return -1;
        }
        if (res_amount_from_double(req->resources[i]->value, &targets[i]) != 0) {
            snprintf(why, why_len, "resource '%.200s': %g is not a total this node can have", name,
                     req->resources[i]->value);
            return -1;
        }
    }
    return 0;
}

/* ResizeLocalResourceInstances: set this node's totals of the named
 * resources, as the stock raylet does (see res_node_resize: a shrink takes
 * back nothing granted, a new resource is created).  The reply carries
 * every total after the change. */
static void nm_resize_local_resources(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    const Ray__Rpc__ResizeLocalResourceInstancesRequest *req =
        (const Ray__Rpc__ResizeLocalResourceInstancesRequest *)msg;
    res_node_t *node = svc->d.resources;
    char why[320];
    res_amount_t *targets = xcalloc(req->n_resources, sizeof *targets);
    if (nm_resize_targets(node, req, targets, why, sizeof why) != 0) {
        rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, why);
        free(targets);
        return;
    }
    bool changed = false;
    for (size_t i = 0; i < req->n_resources; i++) {
        const char *name = req->resources[i]->key;
        bool moved;
        int rc = res_node_resize(node, name, targets[i], &moved);
        if (rc != 0) {
            log_warn("resizing %s to %.4f: %s", name, res_amount_to_double(targets[i]), strerror(-rc));
        } else if (moved) {
            changed = true;
            log_info("resized %s to %.4f (%.4f available)", name, res_amount_to_double(res_node_total(node, name)),
                     res_amount_to_double(res_node_available(node, name)));
        }
    }
    free(targets);
    if (changed) {
        if (svc->leases)
            lease_mgr_mark_dirty(svc->leases);
        svc->ops.resources_changed(svc->ctx);
    }

    size_t n = res_node_count(node);
    Ray__Rpc__ResizeLocalResourceInstancesReply__TotalResourcesEntry *entries = xcalloc(n, sizeof *entries);
    Ray__Rpc__ResizeLocalResourceInstancesReply__TotalResourcesEntry **ptrs = xcalloc(n, sizeof *ptrs);
    for (size_t i = 0; i < n; i++) {
        res_entry_t e;
        res_node_entry_at(node, i, &e);
        ray__rpc__resize_local_resource_instances_reply__total_resources_entry__init(&entries[i]);
        entries[i].key = (char *)e.name;
        entries[i].value = res_amount_to_double(e.total);
        ptrs[i] = &entries[i];
    }
    Ray__Rpc__ResizeLocalResourceInstancesReply reply = RAY__RPC__RESIZE_LOCAL_RESOURCE_INSTANCES_REPLY__INIT;
    reply.n_total_resources = n;
    reply.total_resources = ptrs;
    rpc_call_reply(call, &reply.base);
    free(ptrs);
    free(entries);
}

static void nm_global_gc(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    /* Workers collect their own garbage; nothing here holds Python objects. */
    Ray__Rpc__GlobalGCReply reply = RAY__RPC__GLOBAL_GCREPLY__INIT;
    rpc_call_reply(call, &reply.base);
}

static void nm_release_unused_actor_workers(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    const Ray__Rpc__ReleaseUnusedActorWorkersRequest *req = (const Ray__Rpc__ReleaseUnusedActorWorkersRequest *)msg;
    size_t n;
    worker_t **list = nm_list_workers(svc, &n);
    for (size_t i = 0; i < n; i++) {
        worker_t *w = list[i];
        if (!worker_is_actor(w))
            continue;
        bool in_use = false;
        for (size_t k = 0; k < req->n_worker_ids_in_use && !in_use; k++)
            in_use = req->worker_ids_in_use[k].len == ID_UNIQUE_SIZE &&
                     memcmp(req->worker_ids_in_use[k].data, worker_id(w), ID_UNIQUE_SIZE) == 0;
        if (in_use)
            continue;
        log_info("GCS no longer knows actor worker %s; killing it", worker_id_hex(w));
        pool_kill(svc->pool, w, RAY__RPC__WORKER_EXIT_TYPE__INTENDED_SYSTEM_EXIT, "unused actor worker released");
    }
    free(list);
    Ray__Rpc__ReleaseUnusedActorWorkersReply reply = RAY__RPC__RELEASE_UNUSED_ACTOR_WORKERS_REPLY__INIT;
    rpc_call_reply(call, &reply.base);
}

static void nm_cancel_leases_with_shapes(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    const Ray__Rpc__CancelLeasesWithResourceShapesRequest *req =
        (const Ray__Rpc__CancelLeasesWithResourceShapesRequest *)msg;
    res_set_t **shapes = xcalloc(req->n_resource_shapes, sizeof *shapes);
    for (size_t i = 0; i < req->n_resource_shapes; i++) {
        shapes[i] = res_set_create();
        const Ray__Rpc__CancelLeasesWithResourceShapesRequest__ResourceShape *sh = req->resource_shapes[i];
        for (size_t k = 0; k < sh->n_resource_shape; k++) {
            res_amount_t a;
            if (sh->resource_shape[k]->key && res_amount_from_double(sh->resource_shape[k]->value, &a) == 0)
                res_set_put(shapes[i], sh->resource_shape[k]->key, a);
        }
    }
    if (svc->leases)
        lease_mgr_cancel_shapes(svc->leases, shapes, req->n_resource_shapes);
    for (size_t i = 0; i < req->n_resource_shapes; i++)
        res_set_destroy(shapes[i]);
    free(shapes);
    Ray__Rpc__CancelLeasesWithResourceShapesReply reply = RAY__RPC__CANCEL_LEASES_WITH_RESOURCE_SHAPES_REPLY__INIT;
    rpc_call_reply(call, &reply.base);
}

/* ---- placement groups: GCS's two-phase commit ------------------------------ */

/* Bundle specs decoded for sched/bundles.c, with the resource sets they
 * borrow. */
typedef struct nm_bundles {
    bundle_spec_t *specs;
    res_set_t **sets;
    size_t n;
} nm_bundles_t;

static bool nm_bundle_decode_one(const Ray__Rpc__Bundle *in, bool with_resources, bundle_spec_t *out,
                                 res_set_t **set)
{
    *set = NULL;
    if (!in || !in->bundle_id || in->bundle_id->placement_group_id.len != ID_PG_SIZE ||
        in->bundle_id->bundle_index < 0 || in->bundle_id->bundle_index > INT32_MAX)
        return false;
    memcpy(out->pg_id, in->bundle_id->placement_group_id.data, ID_PG_SIZE);
    out->index = (int32_t)in->bundle_id->bundle_index;
    out->resources = NULL;
    if (!with_resources)
        return true;
    *set = res_set_create();
    for (size_t k = 0; k < in->n_unit_resources; k++) {
        res_amount_t a;
        const char *name = in->unit_resources[k]->key;
        if (!name || !*name || res_amount_from_double(in->unit_resources[k]->value, &a) != 0 ||
            res_set_put(*set, name, a) != 0) {
            res_set_destroy(*set);
            *set = NULL;
            return false;
        }
    }
    out->resources = *set;
    return true;
}

/* `strict`: one malformed spec fails the lot (prepare); otherwise
 * malformed specs are left out (commit, release: GCS retries). */
static bool nm_bundles_decode(Ray__Rpc__Bundle *const *in, size_t n, bool with_resources, bool strict,
                              nm_bundles_t *out)
{
    out->specs = xcalloc(n, sizeof *out->specs);
    out->sets = xcalloc(n, sizeof *out->sets);
    out->n = 0;
    for (size_t i = 0; i < n; i++) {
        if (nm_bundle_decode_one(in[i], with_resources, &out->specs[out->n], &out->sets[out->n]))
            out->n++;
        else if (strict)
            return false;
    }
    return true;
}

static void nm_bundles_free(nm_bundles_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        res_set_destroy(b->sets[i]);
    free(b->specs);
    free(b->sets);
}

static void nm_prepare_bundles(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    const Ray__Rpc__PrepareBundleResourcesRequest *req = (const Ray__Rpc__PrepareBundleResourcesRequest *)msg;
    Ray__Rpc__PrepareBundleResourcesReply reply = RAY__RPC__PREPARE_BUNDLE_RESOURCES_REPLY__INIT;
    nm_bundles_t b;
    bool ok = nm_bundles_decode(req->bundle_specs, req->n_bundle_specs, true, true, &b);
    if (!ok)
        log_warn("PrepareBundleResources with a malformed bundle spec: refused");
    int64_t deadline;
    reply.success = ok && svc->ops.serving(svc->ctx) && !svc->ops.draining(svc->ctx, &deadline) &&
                    bundles_prepare(svc->d.bundles, b.specs, b.n) == 0;
    nm_bundles_free(&b);
    rpc_call_reply(call, &reply.base);
}

static void nm_commit_bundles(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    const Ray__Rpc__CommitBundleResourcesRequest *req = (const Ray__Rpc__CommitBundleResourcesRequest *)msg;
    nm_bundles_t b;
    nm_bundles_decode(req->bundle_specs, req->n_bundle_specs, false, false, &b);
    bundles_commit(svc->d.bundles, b.specs, b.n);
    nm_bundles_free(&b);
    Ray__Rpc__CommitBundleResourcesReply reply = RAY__RPC__COMMIT_BUNDLE_RESOURCES_REPLY__INIT;
    rpc_call_reply(call, &reply.base);
    lease_mgr_mark_dirty(svc->leases);
}

/* Give bundles back: the group's leases go first, or its resources would
 * still be in use.  Like the stock raylet, any lease on the group goes
 * (wildcard ones too), since every resource of the group is named after
 * its id's hex.  Bundles this node does not hold count as returned, so a
 * retried call is answered the same way.  Returns false when a bundle is
 * still busy (its workers are on their way out): GCS asks again. */
static bool nm_return_bundles(nm_service_t *svc, const bundle_spec_t *specs, size_t n)
{
    bool all = true;
    for (size_t i = 0; i < n; i++) {
        char hex[ID_HEX_BUF];
        id_to_hex(specs[i].pg_id, ID_PG_SIZE, hex);
        if (svc->leases)
            lease_mgr_drop_matching(svc->leases, hex);
        if (bundles_return(svc->d.bundles, &specs[i]) != 0)
            all = false;
    }
    lease_mgr_mark_dirty(svc->leases);
    svc->ops.resources_changed(svc->ctx);
    return all;
}

#if CRAYLET_RAY_CANCEL_RESOURCE_RESERVE
static void nm_cancel_resource_reserve(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    const Ray__Rpc__CancelResourceReserveRequest *req = (const Ray__Rpc__CancelResourceReserveRequest *)msg;
    bundle_spec_t spec;
    res_set_t *unused;
    if (!nm_bundle_decode_one(req->bundle_spec, false, &spec, &unused)) {
        rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "bundle_spec without a placement group id");
        return;
    }
    if (!nm_return_bundles(svc, &spec, 1)) {
        rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "Bundle resources are still in use. Retry again.");
        return;
    }
    Ray__Rpc__CancelResourceReserveReply reply = RAY__RPC__CANCEL_RESOURCE_RESERVE_REPLY__INIT;
    rpc_call_reply(call, &reply.base);
}
#endif

#if CRAYLET_RAY_REMOVE_PG_BUNDLES
/* A removed placement group (or one whose prepare failed elsewhere): every
 * listed bundle goes back, prepared or committed. */
static void nm_remove_pg_bundles(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    const Ray__Rpc__RemovePlacementGroupBundlesRequest *req = (const Ray__Rpc__RemovePlacementGroupBundlesRequest *)msg;
    nm_bundles_t b;
    if (!nm_bundles_decode(req->bundle_specs, req->n_bundle_specs, false, true, &b)) {
        rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "bundle_specs: a bundle without a placement group id");
        return;
    }
    /* Stock Ray aborts on a bundle of another group; a peer's mistake is
     * refused here instead, before anything is returned. */
    for (size_t i = 0; i < b.n; i++) {
        if (req->placement_group_id.len != ID_PG_SIZE ||
            memcmp(b.specs[i].pg_id, req->placement_group_id.data, ID_PG_SIZE) != 0) {
            nm_bundles_free(&b);
            rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "a bundle of another placement group");
            return;
        }
    }
    bool all = nm_return_bundles(svc, b.specs, b.n);
    nm_bundles_free(&b);
    if (!all) {
        rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "Bundle resources are still in use. Retry again.");
        return;
    }
    Ray__Rpc__RemovePlacementGroupBundlesReply reply = RAY__RPC__REMOVE_PLACEMENT_GROUP_BUNDLES_REPLY__INIT;
    rpc_call_reply(call, &reply.base);
}
#endif

#if CRAYLET_RAY_FREE_LOCAL_OBJECTS
/* An owner's references to these objects are gone: release the primary
 * copies pinned for it here and delete every local copy (now, or when the
 * last reader lets go).  Unknown ids are fine: the owner retries, and may
 * send the same ids to every node that had a copy. */
static void nm_free_local_objects(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    const Ray__Rpc__FreeLocalObjectsRequest *req = (const Ray__Rpc__FreeLocalObjectsRequest *)msg;
    for (size_t i = 0; i < req->n_object_ids; i++) {
        if (req->object_ids[i].len != ID_OBJECT_SIZE)
            continue;
        if (!svc->osub || !osub_free(svc->osub, req->object_ids[i].data))
            store_free(svc->d.store, (const id_object_t *)req->object_ids[i].data);
    }
    Ray__Rpc__FreeLocalObjectsReply reply = RAY__RPC__FREE_LOCAL_OBJECTS_REPLY__INIT;
    rpc_call_reply(call, &reply.base);
}
#endif

static void nm_release_unused_bundles(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    const Ray__Rpc__ReleaseUnusedBundlesRequest *req = (const Ray__Rpc__ReleaseUnusedBundlesRequest *)msg;
    nm_bundles_t b;
    nm_bundles_decode(req->bundles_in_use, req->n_bundles_in_use, false, false, &b);
    size_t busy = bundles_release_unused(svc->d.bundles, b.specs, b.n);
    nm_bundles_free(&b);
    svc->ops.resources_changed(svc->ctx);
    if (busy)
        log_warn("%zu unused bundles are still leased; GCS will ask again", busy);
    Ray__Rpc__ReleaseUnusedBundlesReply reply = RAY__RPC__RELEASE_UNUSED_BUNDLES_REPLY__INIT;
    rpc_call_reply(call, &reply.base);
    lease_mgr_mark_dirty(svc->leases);
}

/* ---- compiled graphs' channels (raylet/objects/channels.h) ---- */

static bool nm_is_object_id(const ProtobufCBinaryData *b) { return b->len == ID_OBJECT_SIZE; }

static grpc_status_code nm_chan_status(int err)
{
    switch (err) {
    case -ENOENT:
        return GRPC_STATUS_NOT_FOUND;
    case -EEXIST:
        return GRPC_STATUS_ALREADY_EXISTS;
    case -EPIPE:
        return GRPC_STATUS_FAILED_PRECONDITION; /* the channel was closed */
    case -ECANCELED:
        return GRPC_STATUS_UNAVAILABLE; /* the node is stopping */
    default:
        return GRPC_STATUS_INVALID_ARGUMENT;
    }
}

static void nm_register_mutable_object(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    const Ray__Rpc__RegisterMutableObjectRequest *req = (const Ray__Rpc__RegisterMutableObjectRequest *)msg;
    if (!nm_is_object_id(&req->writer_object_id) || !nm_is_object_id(&req->reader_object_id)) {
        rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "object ids must be 28 bytes");
        return;
    }
    int rc = svc->d.channels ? chan_register(svc->d.channels, (const id_object_t *)req->writer_object_id.data,
                                             req->num_readers, (const id_object_t *)req->reader_object_id.data)
                             : -ENOENT;
    if (rc != 0) {
        char hex[ID_HEX_BUF];
        id_to_hex(req->reader_object_id.data, ID_OBJECT_SIZE, hex);
        log_warn("RegisterMutableObject for reader object %s refused: %s", hex, cr_strerror(rc));
        rpc_call_fail(call, nm_chan_status(rc), cr_strerror(rc));
        return;
    }
    Ray__Rpc__RegisterMutableObjectReply reply = RAY__RPC__REGISTER_MUTABLE_OBJECT_REPLY__INIT;
    rpc_call_reply(call, &reply.base);
}

static void nm_push_mutable_on_written(void *ctx, int err, bool done)
{
    rpc_call_t *call = ctx;
    if (err != 0) {
        rpc_call_fail(call, nm_chan_status(err), cr_strerror(err));
        return;
    }
    Ray__Rpc__PushMutableObjectReply reply = RAY__RPC__PUSH_MUTABLE_OBJECT_REPLY__INIT;
    reply.done = done;
    rpc_call_reply(call, &reply.base);
}

/* Answered once the chunk is in the reader object: when local readers
 * still hold the last version, that is later (the writer waits, as the
 * stock raylet makes it). */
static void nm_push_mutable_object(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    nm_service_t *svc = ctx;
    const Ray__Rpc__PushMutableObjectRequest *req = (const Ray__Rpc__PushMutableObjectRequest *)msg;
    if (!nm_is_object_id(&req->writer_object_id) || req->data.len != req->chunk_size ||
        req->metadata.len != req->total_metadata_size) {
        rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                      "a chunk's data must be chunk_size bytes and its metadata total_metadata_size bytes");
        return;
    }
    chan_chunk_t chunk = {.total_data_size = req->total_data_size,
                          .total_metadata_size = req->total_metadata_size,
                          .offset = req->offset,
                          .data = req->data.data,
                          .size = req->chunk_size,
                          .metadata = req->metadata.data};
    int rc = svc->d.channels ? chan_push(svc->d.channels, (const id_object_t *)req->writer_object_id.data, &chunk,
                                         nm_push_mutable_on_written, call)
                             : -ENOENT;
    if (rc != 0)
        rpc_call_fail(call, nm_chan_status(rc), rc == -ENOENT ? "no reader registered for this writer"
                                                              : "the chunk does not fit the reader object");
}

/* Every call enters here.  Calls still arriving while the server drains
 * after nm_service_stop() are refused: the components they would read
 * are on their way out. */
static void nm_dispatch(void *ctx, rpc_call_t *call, ProtobufCMessage *request)
{
    const nm_method_t *m = ctx;
    if (m->svc->stopped) {
        rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "raylet shutting down");
        return;
    }
    m->fn(m->svc, call, request);
}

nm_service_t *nm_service_create(rpc_server_t *server, const nm_service_deps_t *deps, const nm_node_ops_t *ops,
                                void *ctx)
{
    nm_service_t *svc = xcalloc(1, sizeof *svc);
    svc->d = *deps;
    svc->ops = *ops;
    svc->ctx = ctx;
    list_init(&svc->pending);
    svc->lease_node.node_id = deps->node_id;
    svc->lease_node.ip_address = deps->node_ip_address;
    svc->lease_node.metrics = deps->metrics;
    static const struct {
        const char *path;
        const ProtobufCMessageDescriptor *desc;
        rpc_method_fn fn;
    } methods[] = {
        {"/grpc.health.v1.Health/Check", &grpc__health__v1__health_check_request__descriptor, nm_health_check},
        {"/ray.rpc.NodeManagerService/GetResourceLoad", &ray__rpc__get_resource_load_request__descriptor,
         nm_get_resource_load},
        {"/ray.rpc.NodeManagerService/GetSystemConfig", &ray__rpc__get_system_config_request__descriptor,
         nm_get_system_config},
        {"/ray.rpc.NodeManagerService/GetAgentPIDs", &ray__rpc__get_agent_pids_request__descriptor,
         nm_get_agent_pids},
        {"/ray.rpc.NodeManagerService/GetWorkerPIDs", &ray__rpc__get_worker_pids_request__descriptor,
         nm_get_worker_pids},
        {"/ray.rpc.NodeManagerService/GetNodeStats", &ray__rpc__get_node_stats_request__descriptor,
         nm_get_node_stats},
        {"/ray.rpc.NodeManagerService/NotifyGCSRestart", &ray__rpc__notify_gcsrestart_request__descriptor,
         nm_notify_gcs_restart},
        {"/ray.rpc.NodeManagerService/ShutdownRaylet", &ray__rpc__shutdown_raylet_request__descriptor,
         nm_shutdown_raylet},
        {"/ray.rpc.NodeManagerService/DrainRaylet", &ray__rpc__drain_raylet_request__descriptor, nm_drain_raylet},
        {"/ray.rpc.NodeManagerService/IsLocalWorkerDead", &ray__rpc__is_local_worker_dead_request__descriptor,
         nm_is_local_worker_dead},
        {"/ray.rpc.NodeManagerService/RequestWorkerLease", &ray__rpc__request_worker_lease_request__descriptor,
         nm_request_worker_lease},
        {"/ray.rpc.NodeManagerService/ReturnWorkerLease", &ray__rpc__return_worker_lease_request__descriptor,
         nm_return_worker_lease},
        {"/ray.rpc.NodeManagerService/CancelWorkerLease", &ray__rpc__cancel_worker_lease_request__descriptor,
         nm_cancel_worker_lease},
        {"/ray.rpc.NodeManagerService/ReportWorkerBacklog", &ray__rpc__report_worker_backlog_request__descriptor,
         nm_report_worker_backlog},
        {"/ray.rpc.NodeManagerService/PrestartWorkers", &ray__rpc__prestart_workers_request__descriptor,
         nm_prestart_workers},
        {"/ray.rpc.NodeManagerService/PinObjectIDs", &ray__rpc__pin_object_ids_request__descriptor,
         nm_pin_object_ids},
        {"/ray.rpc.NodeManagerService/FormatGlobalMemoryInfo",
         &ray__rpc__format_global_memory_info_request__descriptor, nm_format_global_memory_info},
        {"/ray.rpc.NodeManagerService/GlobalGC", &ray__rpc__global_gcrequest__descriptor, nm_global_gc},
        {"/ray.rpc.NodeManagerService/ReleaseUnusedActorWorkers",
         &ray__rpc__release_unused_actor_workers_request__descriptor, nm_release_unused_actor_workers},
        {"/ray.rpc.NodeManagerService/CancelLeasesWithResourceShapes",
         &ray__rpc__cancel_leases_with_resource_shapes_request__descriptor, nm_cancel_leases_with_shapes},
        {"/ray.rpc.NodeManagerService/PrepareBundleResources",
         &ray__rpc__prepare_bundle_resources_request__descriptor, nm_prepare_bundles},
        {"/ray.rpc.NodeManagerService/CommitBundleResources",
         &ray__rpc__commit_bundle_resources_request__descriptor, nm_commit_bundles},
#if CRAYLET_RAY_CANCEL_RESOURCE_RESERVE
        {"/ray.rpc.NodeManagerService/CancelResourceReserve",
         &ray__rpc__cancel_resource_reserve_request__descriptor, nm_cancel_resource_reserve},
#endif
#if CRAYLET_RAY_REMOVE_PG_BUNDLES
        {"/ray.rpc.NodeManagerService/RemovePlacementGroupBundles",
         &ray__rpc__remove_placement_group_bundles_request__descriptor, nm_remove_pg_bundles},
#endif
#if CRAYLET_RAY_FREE_LOCAL_OBJECTS
        {"/ray.rpc.NodeManagerService/FreeLocalObjects", &ray__rpc__free_local_objects_request__descriptor,
         nm_free_local_objects},
#endif
        {"/ray.rpc.NodeManagerService/ReleaseUnusedBundles",
         &ray__rpc__release_unused_bundles_request__descriptor, nm_release_unused_bundles},
        {"/ray.rpc.NodeManagerService/KillLocalActor", &ray__rpc__kill_local_actor_request__descriptor,
         nm_kill_local_actor},
        {"/ray.rpc.NodeManagerService/ResizeLocalResourceInstances",
         &ray__rpc__resize_local_resource_instances_request__descriptor, nm_resize_local_resources},
        {"/ray.rpc.NodeManagerService/GetObjectsInfo", &ray__rpc__get_objects_info_request__descriptor,
         nm_get_objects_info},
        {"/ray.rpc.NodeManagerService/CancelLocalTask", &ray__rpc__cancel_local_task_request__descriptor,
         nm_cancel_local_task},
        {"/ray.rpc.NodeManagerService/GetWorkerFailureCause",
         &ray__rpc__get_worker_failure_cause_request__descriptor, nm_get_worker_failure_cause},
        {"/ray.rpc.NodeManagerService/RegisterMutableObject",
         &ray__rpc__register_mutable_object_request__descriptor, nm_register_mutable_object},
        {"/ray.rpc.NodeManagerService/PushMutableObject", &ray__rpc__push_mutable_object_request__descriptor,
         nm_push_mutable_object},
    };
    _Static_assert(sizeof methods / sizeof methods[0] <= NM_MAX_METHODS, "raise NM_MAX_METHODS");
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        svc->methods[i] = (nm_method_t){.svc = svc, .fn = methods[i].fn};
        if (rpc_server_add_method(server, methods[i].path, methods[i].desc, nm_dispatch, &svc->methods[i]) != 0) {
            log_error("cannot register %s", methods[i].path);
            free(svc);
            return NULL;
        }
    }
    return svc;
}

void nm_service_attach_workers(nm_service_t *svc, pool_t *pool, lease_mgr_t *leases, osub_t *osub)
{
    svc->pool = pool;
    svc->leases = leases;
    svc->osub = osub;
}

void nm_service_attach_spill(nm_service_t *svc, spill_t *spill) { svc->spill = spill; }

void nm_service_attach_mem_monitor(nm_service_t *svc, mem_monitor_t *mem) { svc->mem = mem; }

void nm_service_attach_agents(nm_service_t *svc, agent_t *dashboard_agent, agent_t *runtime_env_agent)
{
    svc->dashboard_agent = dashboard_agent;
    svc->runtime_env_agent = runtime_env_agent;
}

void nm_service_destroy(nm_service_t *svc)
{
    if (!svc)
        return;
    nm_service_stop(svc);
    free(svc);
}
