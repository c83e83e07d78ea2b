#include "gcs_client/gcs_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/list.h"
#include "common/log.h"

#define GCS_BACKOFF_INITIAL_MS 100
#define GCS_BACKOFF_MAX_MS 2000

struct gcs_client {
    loop_t *loop;
    rpc_channel_t *channel;
    char *address;
    uint64_t reconnect_timeout_ms;
    uint64_t call_timeout_ms;
    /* Outage tracking: any answer from GCS (even an error) proves it up;
     * UNAVAILABLE starts an outage, and one that outlasts the reconnect
     * timeout is reported through on_unreachable, as the stock raylet
     * exits when GCS stays away (with Redis, a restarted GCS comes back
     * well within it). */
    uint64_t down_since; /* loop ms; 0 while reachable */
    uint64_t down_timer;
    gcs_unreachable_cb on_unreachable;
    void *unreachable_ctx;
    /* Every logical call whose callback has not run yet (in flight or
     * waiting on a retry timer): answered CR_ECLOSED by destroy. */
    list_t calls;
};

/* One logical call: the serialised request is kept so it can be re-sent. */
typedef struct gcs_pending {
    list_t node; /* gcs->calls */
    gcs_client_t *gcs;
    const char *method;
    uint8_t *request;
    size_t request_len;
    const ProtobufCMessageDescriptor *reply_desc;
    bool retry;
    uint64_t timeout_ms; /* per attempt; 0 = none */
    uint64_t give_up_at;
    uint64_t backoff_ms;
    uint64_t timer;
    unsigned attempts;
    gcs_reply_cb cb;
    void *ctx;
} gcs_pending_t;

static void gcs_pending_free(gcs_pending_t *p)
{
    list_remove(&p->node);
    free(p->request);
    free(p);
}

static int gcs_attempt(gcs_pending_t *p);

static void gcs_on_retry_timer(loop_t *loop, uint64_t id, void *data)
{
    gcs_pending_t *p = data;
    p->timer = 0;
    if (gcs_attempt(p) != 0) {
        p->cb(p->ctx, CR_ERPC, "cannot start gRPC call", NULL);
        gcs_pending_free(p);
    }
}

/* GcsStatus inside a reply: most GCS replies carry one as `status`. */
static const Ray__Rpc__GcsStatus *gcs_reply_status(const ProtobufCMessage *reply)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(reply->descriptor, "status");
    if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE || f->descriptor != &ray__rpc__gcs_status__descriptor)
        return NULL;
    return *(const Ray__Rpc__GcsStatus *const *)((const char *)reply + f->offset);
}

static void gcs_on_down_timer(loop_t *loop, uint64_t id, void *data)
{
    gcs_client_t *gcs = data;
    gcs->down_timer = 0;
    uint64_t down_ms = loop_update_time(loop) - gcs->down_since;
    log_error("GCS at %s unreachable for %.1f s", gcs->address, down_ms / 1000.0);
    if (gcs->on_unreachable)
        gcs->on_unreachable(gcs->unreachable_ctx, down_ms);
}

static void gcs_note_health(gcs_client_t *gcs, grpc_status_code code)
{
    if (code == GRPC_STATUS_UNAVAILABLE) {
        if (gcs->down_since)
            return;
        gcs->down_since = loop_update_time(gcs->loop);
        if (gcs->down_since == 0)
            gcs->down_since = 1;
        log_warn("GCS at %s is unavailable; waiting up to %.0f s for it to come back", gcs->address,
                 gcs->reconnect_timeout_ms / 1000.0);
        gcs->down_timer = loop_add_timer(gcs->loop, gcs->reconnect_timeout_ms, gcs_on_down_timer, gcs);
        return;
    }
    if (code == GRPC_STATUS_DEADLINE_EXCEEDED || code == GRPC_STATUS_CANCELLED || !gcs->down_since)
        return; /* proves nothing either way, or nothing to end */
    log_info("GCS at %s reachable again after %.1f s", gcs->address,
             (loop_update_time(gcs->loop) - gcs->down_since) / 1000.0);
    gcs->down_since = 0;
    if (gcs->down_timer)
        loop_cancel_timer(gcs->loop, gcs->down_timer);
    gcs->down_timer = 0;
}

static void gcs_on_reply(void *ctx, const rpc_status_t *st, ProtobufCMessage *reply)
{
    gcs_pending_t *p = ctx;
    gcs_client_t *gcs = p->gcs;
    gcs_note_health(gcs, st->code);
    if (st->code == GRPC_STATUS_OK) {
        const Ray__Rpc__GcsStatus *gs = gcs_reply_status(reply);
        if (gs && gs->code != 0) {
            char msg[512];
            snprintf(msg, sizeof msg, "GCS %s failed: code %d: %s", p->method, gs->code,
                     gs->message ? gs->message : "");
            p->cb(p->ctx, CR_EGCS, msg, NULL);
        } else {
            p->cb(p->ctx, 0, "", reply);
        }
        gcs_pending_free(p);
        return;
    }
    bool transient = st->code == GRPC_STATUS_UNAVAILABLE || st->code == GRPC_STATUS_DEADLINE_EXCEEDED;
    uint64_t now = loop_update_time(gcs->loop);
    if (p->retry && transient && now < p->give_up_at) {
        if (p->attempts == 1 || p->attempts % 10 == 0)
            log_warn("GCS at %s unavailable for %s (%s); retrying", gcs->address, p->method,
                     st->message);
        uint64_t delay = p->backoff_ms;
        if (now + delay > p->give_up_at)
            delay = p->give_up_at - now;
        p->backoff_ms = p->backoff_ms * 2 > GCS_BACKOFF_MAX_MS ? GCS_BACKOFF_MAX_MS : p->backoff_ms * 2;
        p->timer = loop_add_timer(gcs->loop, delay, gcs_on_retry_timer, p);
        return;
    }
    char msg[512];
    if (p->retry && transient) {
        snprintf(msg, sizeof msg, "GCS at %s unreachable for %.1f s (%s: %s)", gcs->address,
                 gcs->reconnect_timeout_ms / 1000.0, p->method, st->message);
        p->cb(p->ctx, CR_ETIMEOUT, msg, NULL);
    } else {
        snprintf(msg, sizeof msg, "%s failed: gRPC status %d: %s", p->method, (int)st->code,
                 st->message);
        p->cb(p->ctx, st->code == GRPC_STATUS_UNAUTHENTICATED ? CR_EAUTH : CR_ERPC, msg, NULL);
    }
    gcs_pending_free(p);
}

static int gcs_attempt(gcs_pending_t *p)
{
    p->attempts++;
    return rpc_unary_bytes(p->gcs->channel, p->method, p->request, p->request_len, p->reply_desc,
                           p->timeout_ms, gcs_on_reply, p);
}

int gcs_call(gcs_client_t *gcs, const char *method, const ProtobufCMessage *request,
             const ProtobufCMessageDescriptor *reply_desc, bool retry, gcs_reply_cb cb, void *ctx)
{
    return gcs_call_with_timeout(gcs, method, request, reply_desc, retry, gcs->call_timeout_ms, cb,
                                 ctx);
}

int gcs_call_with_timeout(gcs_client_t *gcs, const char *method, const ProtobufCMessage *request,
                          const ProtobufCMessageDescriptor *reply_desc, bool retry,
                          uint64_t timeout_ms, gcs_reply_cb cb, void *ctx)
{
    gcs_pending_t *p = xcalloc(1, sizeof *p);
    list_init(&p->node);
    p->gcs = gcs;
    p->method = method;
    p->request_len = protobuf_c_message_get_packed_size(request);
    p->request = xmalloc(p->request_len);
    protobuf_c_message_pack(request, p->request);
    p->reply_desc = reply_desc;
    p->retry = retry;
    p->timeout_ms = timeout_ms == GCS_NO_DEADLINE ? 0 : timeout_ms;
    p->give_up_at = loop_update_time(gcs->loop) + gcs->reconnect_timeout_ms;
    p->backoff_ms = GCS_BACKOFF_INITIAL_MS;
    p->cb = cb;
    p->ctx = ctx;
    list_insert_tail(&gcs->calls, &p->node);
    int rc = gcs_attempt(p);
    if (rc != 0)
        gcs_pending_free(p);
    return rc;
}

gcs_client_t *gcs_client_create(loop_t *loop, cq_bridge_t *bridge, const gcs_client_options_t *opts)
{
    gcs_client_t *gcs = xcalloc(1, sizeof *gcs);
    list_init(&gcs->calls);
    gcs->loop = loop;
    gcs->address = strdup(opts->address);
    gcs->reconnect_timeout_ms = opts->reconnect_timeout_ms ? opts->reconnect_timeout_ms : 60000;
    gcs->call_timeout_ms = opts->call_timeout_ms ? opts->call_timeout_ms : 10000;
    gcs->on_unreachable = opts->on_unreachable;
    gcs->unreachable_ctx = opts->unreachable_ctx;
    gcs->channel = rpc_channel_create(bridge, opts->address);
    if (!gcs->address || !gcs->channel) {
        gcs_client_destroy(gcs);
        return NULL;
    }
    if (opts->cluster_id_hex && opts->cluster_id_hex[0])
        rpc_channel_add_metadata(gcs->channel, "ray_cluster_id", opts->cluster_id_hex);
    return gcs;
}

void gcs_client_destroy(gcs_client_t *gcs)
{
    if (!gcs)
        return;
    /* Attempts in flight are cancelled without callbacks; then every
     * caller still waiting hears CR_ECLOSED once, so it can free what it
     * passed as ctx.  Callbacks must not start new calls on this client. */
    if (gcs->down_timer)
        loop_cancel_timer(gcs->loop, gcs->down_timer);
    gcs->down_timer = 0;
    rpc_channel_destroy(gcs->channel);
    gcs->channel = NULL;
    while (!list_empty(&gcs->calls)) {
        gcs_pending_t *p = LIST_ENTRY(gcs->calls.next, gcs_pending_t, node);
        list_remove(&p->node);
        if (p->timer)
            loop_cancel_timer(gcs->loop, p->timer);
        p->cb(p->ctx, CR_ECLOSED, "GCS client shutting down", NULL);
        gcs_pending_free(p);
    }
    free(gcs->address);
    free(gcs);
}

void gcs_client_set_reconnect_timeout(gcs_client_t *gcs, uint64_t timeout_ms)
{
    if (timeout_ms)
        gcs->reconnect_timeout_ms = timeout_ms;
}

rpc_channel_t *gcs_client_channel(gcs_client_t *gcs) { return gcs->channel; }
const char *gcs_client_address(const gcs_client_t *gcs) { return gcs->address; }

int gcs_get_internal_config(gcs_client_t *gcs, gcs_reply_cb cb, void *ctx)
{
    Ray__Rpc__GetInternalConfigRequest req = RAY__RPC__GET_INTERNAL_CONFIG_REQUEST__INIT;
    return gcs_call(gcs, "/ray.rpc.InternalKVGcsService/GetInternalConfig", &req.base,
                    &ray__rpc__get_internal_config_reply__descriptor, true, cb, ctx);
}

int gcs_register_node(gcs_client_t *gcs, const Ray__Rpc__GcsNodeInfo *info, gcs_reply_cb cb,
                      void *ctx)
{
    Ray__Rpc__RegisterNodeRequest req = RAY__RPC__REGISTER_NODE_REQUEST__INIT;
    req.node_info = (Ray__Rpc__GcsNodeInfo *)info;
    return gcs_call(gcs, "/ray.rpc.NodeInfoGcsService/RegisterNode", &req.base,
                    &ray__rpc__register_node_reply__descriptor, true, cb, ctx);
}

int gcs_unregister_node(gcs_client_t *gcs, const uint8_t node_id[ID_UNIQUE_SIZE], int reason,
                        const char *message, gcs_reply_cb cb, void *ctx)
{
    Ray__Rpc__UnregisterNodeRequest req = RAY__RPC__UNREGISTER_NODE_REQUEST__INIT;
    Ray__Rpc__NodeDeathInfo death = RAY__RPC__NODE_DEATH_INFO__INIT;
    req.node_id.data = (uint8_t *)node_id;
    req.node_id.len = ID_UNIQUE_SIZE;
    death.reason = reason;
    death.reason_message = (char *)message;
    req.node_death_info = &death;
    return gcs_call(gcs, "/ray.rpc.NodeInfoGcsService/UnregisterNode", &req.base,
                    &ray__rpc__unregister_node_reply__descriptor, false, cb, ctx);
}

int gcs_check_alive(gcs_client_t *gcs, const uint8_t node_id[ID_UNIQUE_SIZE], gcs_reply_cb cb, void *ctx)
{
    Ray__Rpc__CheckAliveRequest req = RAY__RPC__CHECK_ALIVE_REQUEST__INIT;
    ProtobufCBinaryData id = {.len = ID_UNIQUE_SIZE, .data = (uint8_t *)node_id};
    req.n_node_ids = 1;
    req.node_ids = &id;
    return gcs_call(gcs, "/ray.rpc.NodeInfoGcsService/CheckAlive", &req.base,
                    &ray__rpc__check_alive_reply__descriptor, false, cb, ctx);
}

int gcs_get_all_node_liveness(gcs_client_t *gcs, gcs_reply_cb cb, void *ctx)
{
    Ray__Rpc__GetAllNodeAddressAndLivenessRequest req = RAY__RPC__GET_ALL_NODE_ADDRESS_AND_LIVENESS_REQUEST__INIT;
    return gcs_call(gcs, "/ray.rpc.NodeInfoGcsService/GetAllNodeAddressAndLiveness", &req.base,
                    &ray__rpc__get_all_node_address_and_liveness_reply__descriptor, false, cb, ctx);
}

int gcs_add_job(gcs_client_t *gcs, const Ray__Rpc__AddJobRequest *req, gcs_reply_cb cb, void *ctx)
{
    return gcs_call(gcs, "/ray.rpc.JobInfoGcsService/AddJob", &req->base, &ray__rpc__add_job_reply__descriptor,
                    true, cb, ctx);
}

int gcs_mark_job_finished(gcs_client_t *gcs, const uint8_t job_id[ID_JOB_SIZE], gcs_reply_cb cb, void *ctx)
{
    Ray__Rpc__MarkJobFinishedRequest req = RAY__RPC__MARK_JOB_FINISHED_REQUEST__INIT;
    req.job_id.data = (uint8_t *)job_id;
    req.job_id.len = ID_JOB_SIZE;
    return gcs_call(gcs, "/ray.rpc.JobInfoGcsService/MarkJobFinished", &req.base,
                    &ray__rpc__mark_job_finished_reply__descriptor, true, cb, ctx);
}

static void gcs_on_reply_logged(void *ctx, int err, const char *message, ProtobufCMessage *reply)
{
    if (err && err != CR_ECLOSED)
        log_warn("%s: %s", (const char *)ctx, message);
}

int gcs_report_job_error(gcs_client_t *gcs, const uint8_t *job_id, size_t job_id_len, const char *type,
                         const char *message, double timestamp_ms)
{
    Ray__Rpc__ErrorTableData data = RAY__RPC__ERROR_TABLE_DATA__INIT;
    data.job_id.data = (uint8_t *)job_id;
    data.job_id.len = job_id_len;
    data.type = (char *)type;
    data.error_message = (char *)message;
    data.timestamp = timestamp_ms;
    Ray__Rpc__ReportJobErrorRequest req = RAY__RPC__REPORT_JOB_ERROR_REQUEST__INIT;
    req.job_error = &data;
#if CRAYLET_RAY_SPLIT_GCS_PUBSUB
#define REPORT_JOB_ERROR "/ray.rpc.ObservabilityPubSubService/ReportJobError"
#else
#define REPORT_JOB_ERROR "/ray.rpc.JobInfoGcsService/ReportJobError"
#endif
    return gcs_call(gcs, REPORT_JOB_ERROR, &req.base,
                    &ray__rpc__report_job_error_reply__descriptor, false, gcs_on_reply_logged, "ReportJobError");
}

int gcs_report_worker_failure(gcs_client_t *gcs, const Ray__Rpc__ReportWorkerFailureRequest *req,
                              gcs_reply_cb cb, void *ctx)
{
    return gcs_call(gcs, "/ray.rpc.WorkerInfoGcsService/ReportWorkerFailure", &req->base,
                    &ray__rpc__report_worker_failure_reply__descriptor, true, cb, ctx);
}
