#include "gcs_client/pubsub.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/log.h"

/* The channels this subscriber serves (job, node, worker, actor) are the
 * control plane's; Ray 2.60 moved them to a service of their own. */
#if CRAYLET_RAY_SPLIT_GCS_PUBSUB
#define SUB_SERVICE "/ray.rpc.ControlPlanePubSubGcsService/"
#else
#define SUB_SERVICE "/ray.rpc.InternalPubSubGcsService/"
#endif

#define SUB_BACKOFF_INITIAL_MS 200
#define SUB_BACKOFF_MAX_MS 5000

struct gcs_sub {
    loop_t *loop;
    gcs_client_t *gcs;
    int *channels;
    size_t channel_count;
    gcs_sub_message_cb on_message;
    gcs_sub_ready_cb on_ready;
    void *ctx;
    uint8_t subscriber_id[ID_UNIQUE_SIZE];
    uint8_t publisher_id[ID_UNIQUE_SIZE];
    size_t publisher_id_len;
    int64_t max_processed;
    uint64_t backoff_ms;
    uint64_t timer;
    /* The in-flight call's context points back here; when the subscriber is
     * destroyed first, `dead` tells the completion to only free itself. */
    struct sub_call *inflight;
};

typedef struct sub_call {
    gcs_sub_t *sub; /* NULL once the subscriber is gone */
} sub_call_t;

static void sub_subscribe(gcs_sub_t *sub);
static void sub_poll(gcs_sub_t *sub);

static void sub_on_timer(loop_t *loop, uint64_t id, void *data)
{
    gcs_sub_t *sub = data;
    sub->timer = 0;
    sub_subscribe(sub);
}

static void sub_retry_later(gcs_sub_t *sub)
{
    sub->timer = loop_add_timer(sub->loop, sub->backoff_ms, sub_on_timer, sub);
    sub->backoff_ms = sub->backoff_ms * 2 > SUB_BACKOFF_MAX_MS ? SUB_BACKOFF_MAX_MS : sub->backoff_ms * 2;
}

static sub_call_t *sub_call_new(gcs_sub_t *sub)
{
    sub_call_t *c = xmalloc(sizeof *c);
    c->sub = sub;
    sub->inflight = c;
    return c;
}

/* Returns the subscriber if it still exists, and forgets the call. */
static gcs_sub_t *sub_call_finish(sub_call_t *c)
{
    gcs_sub_t *sub = c->sub;
    if (sub)
        sub->inflight = NULL;
    free(c);
    return sub;
}

static void sub_on_subscribed(void *ctx, int err, const char *message, ProtobufCMessage *reply)
{
    gcs_sub_t *sub = sub_call_finish(ctx);
    if (!sub)
        return;
    if (err) {
        log_warn("GCS subscribe failed (%s); retrying", message);
        sub_retry_later(sub);
        return;
    }
    sub->backoff_ms = SUB_BACKOFF_INITIAL_MS;
    sub_poll(sub);
    if (sub->on_ready)
        sub->on_ready(sub->ctx);
}

static void sub_subscribe(gcs_sub_t *sub)
{
    Ray__Rpc__GcsSubscriberCommandBatchRequest req = RAY__RPC__GCS_SUBSCRIBER_COMMAND_BATCH_REQUEST__INIT;
    Ray__Rpc__Command *cmds = xcalloc(sub->channel_count, sizeof *cmds);
    Ray__Rpc__Command **ptrs = xcalloc(sub->channel_count, sizeof *ptrs);
    Ray__Rpc__SubMessage empty = RAY__RPC__SUB_MESSAGE__INIT;
    for (size_t i = 0; i < sub->channel_count; i++) {
        ray__rpc__command__init(&cmds[i]);
        cmds[i].channel_type = sub->channels[i];
        /* An empty but present SubMessage is what marks a subscribe. */
        cmds[i].command_message_one_of_case = RAY__RPC__COMMAND__COMMAND_MESSAGE_ONE_OF_SUBSCRIBE_MESSAGE;
        cmds[i].subscribe_message = &empty;
        ptrs[i] = &cmds[i];
    }
    req.subscriber_id.data = sub->subscriber_id;
    req.subscriber_id.len = sizeof sub->subscriber_id;
    req.n_commands = sub->channel_count;
    req.commands = ptrs;
    sub_call_t *c = sub_call_new(sub);
    int rc = gcs_call(sub->gcs, SUB_SERVICE "GcsSubscriberCommandBatch",
                      &req.base, &ray__rpc__gcs_subscriber_command_batch_reply__descriptor, false,
                      sub_on_subscribed, c);
    free(cmds);
    free(ptrs);
    if (rc != 0) {
        sub_call_finish(c);
        sub_retry_later(sub);
    }
}

static void sub_on_poll(void *ctx, int err, const char *message, ProtobufCMessage *reply)
{
    gcs_sub_t *sub = sub_call_finish(ctx);
    if (!sub)
        return;
    if (err) {
        /* After a GCS restart the subscriber is unknown there: subscribe anew. */
        log_warn("GCS poll failed (%s); resubscribing", message);
        sub_retry_later(sub);
        return;
    }
    const Ray__Rpc__GcsSubscriberPollReply *r = (const Ray__Rpc__GcsSubscriberPollReply *)reply;
    if (r->publisher_id.len > 0 &&
        (r->publisher_id.len != sub->publisher_id_len ||
         memcmp(r->publisher_id.data, sub->publisher_id, r->publisher_id.len) != 0)) {
        if (sub->publisher_id_len)
            log_info("GCS publisher changed; restarting the message sequence");
        sub->publisher_id_len = r->publisher_id.len > sizeof sub->publisher_id
                                    ? sizeof sub->publisher_id
                                    : r->publisher_id.len;
        memcpy(sub->publisher_id, r->publisher_id.data, sub->publisher_id_len);
        sub->max_processed = 0;
    }
    /* Re-poll before dispatching: the next batch is on its way while this
     * one is handled. */
    int64_t max_seen = sub->max_processed;
    for (size_t i = 0; i < r->n_pub_messages; i++) {
        const Ray__Rpc__PubMessage *m = r->pub_messages[i];
        if (m->sequence_id > max_seen)
            max_seen = m->sequence_id;
    }
    int64_t before = sub->max_processed;
    sub->max_processed = max_seen;
    sub_poll(sub);
    for (size_t i = 0; i < r->n_pub_messages; i++) {
        const Ray__Rpc__PubMessage *m = r->pub_messages[i];
        if (m->sequence_id <= before)
            continue; /* already seen */
        sub->on_message(sub->ctx, m);
    }
}

static void sub_poll(gcs_sub_t *sub)
{
    Ray__Rpc__GcsSubscriberPollRequest req = RAY__RPC__GCS_SUBSCRIBER_POLL_REQUEST__INIT;
    req.subscriber_id.data = sub->subscriber_id;
    req.subscriber_id.len = sizeof sub->subscriber_id;
    req.max_processed_sequence_id = sub->max_processed;
    req.publisher_id.data = sub->publisher_id;
    req.publisher_id.len = sub->publisher_id_len;
    sub_call_t *c = sub_call_new(sub);
    /* No retry inside gcs_call: a long poll has no deadline worth retrying
     * against; failures resubscribe from scratch. */
    int rc = gcs_call_with_timeout(sub->gcs, SUB_SERVICE "GcsSubscriberPoll",
                                   &req.base, &ray__rpc__gcs_subscriber_poll_reply__descriptor, false,
                                   GCS_NO_DEADLINE, sub_on_poll, c);
    if (rc != 0) {
        sub_call_finish(c);
        sub_retry_later(sub);
    }
}

gcs_sub_t *gcs_sub_create(loop_t *loop, gcs_client_t *gcs, const int *channels, size_t count,
                          gcs_sub_message_cb on_message, gcs_sub_ready_cb on_ready, void *ctx)
{
    gcs_sub_t *sub = xcalloc(1, sizeof *sub);
    sub->loop = loop;
    sub->gcs = gcs;
    sub->channels = xmalloc(count * sizeof *channels);
    memcpy(sub->channels, channels, count * sizeof *channels);
    sub->channel_count = count;
    sub->on_message = on_message;
    sub->on_ready = on_ready;
    sub->ctx = ctx;
    sub->backoff_ms = SUB_BACKOFF_INITIAL_MS;
    if (getrandom(sub->subscriber_id, sizeof sub->subscriber_id, 0) != sizeof sub->subscriber_id) {
        for (size_t i = 0; i < sizeof sub->subscriber_id; i++)
            sub->subscriber_id[i] = (uint8_t)rand();
    }
    sub_subscribe(sub);
    return sub;
}

void gcs_sub_resubscribe(gcs_sub_t *sub)
{
    if (sub->timer)
        loop_cancel_timer(sub->loop, sub->timer);
    sub->timer = 0;
    if (sub->inflight)
        sub->inflight->sub = NULL;
    sub->inflight = NULL;
    sub->backoff_ms = SUB_BACKOFF_INITIAL_MS;
    sub_subscribe(sub);
}

void gcs_sub_destroy(gcs_sub_t *sub)
{
    if (!sub)
        return;
    if (sub->timer)
        loop_cancel_timer(sub->loop, sub->timer);
    if (sub->inflight)
        sub->inflight->sub = NULL;
    free(sub->channels);
    free(sub);
}
