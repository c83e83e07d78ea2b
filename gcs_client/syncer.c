#include "gcs_client/syncer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/log.h"

#define SYNCER_RECONNECT_MS 2000
#define SYNCER_METHOD "/ray.rpc.syncer.RaySyncer/StartSync"

/* Last version seen per remote node: a short array is plenty (clusters here
 * are tens of nodes; later issues can swap in a hash). */
typedef struct syncer_peer {
    uint8_t node_id[ID_UNIQUE_SIZE];
    int64_t version;
} syncer_peer_t;

struct syncer {
    loop_t *loop;
    gcs_client_t *gcs;
    uint8_t node_id[ID_UNIQUE_SIZE];
    char node_hex[57];
    uint64_t period_ms;
    syncer_callbacks_t cbs;
    void *ctx;
    rpc_stream_t *stream;
    bool ready;
    uint64_t tick_timer;
    uint64_t reconnect_timer;
    int64_t wire_version; /* last version put on the wire; strictly increasing */
    uint64_t sent_local_version;
    bool resend;
    uint64_t sent, received;
    syncer_peer_t *peers;
    size_t peer_count, peer_cap;
};

static void syncer_connect(syncer_t *s);

static void syncer_send(syncer_t *s)
{
    Ray__Rpc__Syncer__ResourceViewSyncMessage view = RAY__RPC__SYNCER__RESOURCE_VIEW_SYNC_MESSAGE__INIT;
    uint64_t local = s->cbs.local_version(s->ctx);
    s->cbs.fill_view(s->ctx, &view);
    size_t len = protobuf_c_message_get_packed_size(&view.base);
    uint8_t *packed = xmalloc(len);
    protobuf_c_message_pack(&view.base, packed);
    s->cbs.release_view(s->ctx, &view);

    Ray__Rpc__Syncer__RaySyncMessage msg = RAY__RPC__SYNCER__RAY_SYNC_MESSAGE__INIT;
    msg.version = ++s->wire_version;
    msg.message_type = RAY__RPC__SYNCER__MESSAGE_TYPE__RESOURCE_VIEW;
    msg.sync_message.data = packed;
    msg.sync_message.len = len;
    msg.node_id.data = s->node_id;
    msg.node_id.len = sizeof s->node_id;
    Ray__Rpc__Syncer__RaySyncMessage *one = &msg;
    Ray__Rpc__Syncer__RaySyncMessageBatch batch = RAY__RPC__SYNCER__RAY_SYNC_MESSAGE_BATCH__INIT;
    batch.n_messages = 1;
    batch.messages = &one;
    if (rpc_stream_write(s->stream, &batch.base) == 0) {
        s->sent++;
        s->sent_local_version = local;
        s->resend = false;
    }
    free(packed);
}

void syncer_flush(syncer_t *s)
{
    if (!s->stream || !s->ready)
        return;
    /* Only the newest view matters: don't pile up writes behind a slow GCS. */
    if (rpc_stream_backlog(s->stream) > 0)
        return;
    if (s->resend || s->cbs.local_version(s->ctx) != s->sent_local_version)
        syncer_send(s);
}

static void syncer_on_tick(loop_t *loop, uint64_t id, void *data)
{
    syncer_t *s = data;
    s->tick_timer = loop_add_timer(loop, s->period_ms, syncer_on_tick, s);
    syncer_flush(s);
}

static syncer_peer_t *syncer_peer(syncer_t *s, const uint8_t *node_id)
{
    for (size_t i = 0; i < s->peer_count; i++)
        if (memcmp(s->peers[i].node_id, node_id, ID_UNIQUE_SIZE) == 0)
            return &s->peers[i];
    if (s->peer_count == s->peer_cap) {
        s->peer_cap = s->peer_cap ? s->peer_cap * 2 : 8;
        s->peers = xrealloc(s->peers, s->peer_cap * sizeof *s->peers);
    }
    syncer_peer_t *p = &s->peers[s->peer_count++];
    memcpy(p->node_id, node_id, ID_UNIQUE_SIZE);
    p->version = -1;
    return p;
}

static void syncer_on_ready(void *ctx, rpc_stream_t *stream)
{
    syncer_t *s = ctx;
    s->ready = true;
    s->resend = true;
    log_info("RaySyncer stream to GCS established");
    syncer_flush(s);
}

static void syncer_on_message(void *ctx, rpc_stream_t *stream, const uint8_t *data, size_t len)
{
    syncer_t *s = ctx;
    Ray__Rpc__Syncer__RaySyncMessageBatch *batch =
        ray__rpc__syncer__ray_sync_message_batch__unpack(NULL, len, data);
    if (!batch) {
        log_warn("undecodable RaySyncer batch from GCS (%zu bytes); ignored", len);
        return;
    }
    s->received++;
    for (size_t i = 0; i < batch->n_messages; i++) {
        const Ray__Rpc__Syncer__RaySyncMessage *m = batch->messages[i];
        if (m->node_id.len != ID_UNIQUE_SIZE || memcmp(m->node_id.data, s->node_id, ID_UNIQUE_SIZE) == 0)
            continue; /* malformed, or our own view echoed */
        if (m->message_type != RAY__RPC__SYNCER__MESSAGE_TYPE__RESOURCE_VIEW)
            continue; /* COMMANDS (global GC) are handled by a later issue */
        syncer_peer_t *p = syncer_peer(s, m->node_id.data);
        if (m->version <= p->version)
            continue;
        p->version = m->version;
        if (!s->cbs.on_remote_view)
            continue;
        Ray__Rpc__Syncer__ResourceViewSyncMessage *view =
            ray__rpc__syncer__resource_view_sync_message__unpack(NULL, m->sync_message.len,
                                                                 m->sync_message.data);
        if (!view) {
            log_warn("undecodable resource view in RaySyncer message; ignored");
            continue;
        }
        s->cbs.on_remote_view(s->ctx, m->node_id.data, view);
        ray__rpc__syncer__resource_view_sync_message__free_unpacked(view, NULL);
    }
    ray__rpc__syncer__ray_sync_message_batch__free_unpacked(batch, NULL);
}

static void syncer_on_reconnect_timer(loop_t *loop, uint64_t id, void *data)
{
    syncer_t *s = data;
    s->reconnect_timer = 0;
    syncer_connect(s);
}

static void syncer_on_closed(void *ctx, rpc_stream_t *stream, const rpc_status_t *st)
{
    syncer_t *s = ctx;
    log_warn("RaySyncer stream closed (status %d: %s); reconnecting in %d ms", (int)st->code,
             st->message, SYNCER_RECONNECT_MS);
    s->stream = NULL;
    s->ready = false;
    s->reconnect_timer = loop_add_timer(s->loop, SYNCER_RECONNECT_MS, syncer_on_reconnect_timer, s);
}

static void syncer_connect(syncer_t *s)
{
    static const rpc_stream_callbacks_t cbs = {
        .on_ready = syncer_on_ready,
        .on_message = syncer_on_message,
        .on_closed = syncer_on_closed,
    };
    const char *md[2] = {"node_id", s->node_hex};
    s->stream = rpc_stream_open(gcs_client_channel(s->gcs), SYNCER_METHOD, md, 2, &cbs, s);
    if (!s->stream)
        s->reconnect_timer =
            loop_add_timer(s->loop, SYNCER_RECONNECT_MS, syncer_on_reconnect_timer, s);
}

syncer_t *syncer_create(loop_t *loop, gcs_client_t *gcs, const uint8_t node_id[ID_UNIQUE_SIZE],
                        uint64_t period_ms, const syncer_callbacks_t *cbs, void *ctx)
{
    syncer_t *s = xcalloc(1, sizeof *s);
    s->loop = loop;
    s->gcs = gcs;
    memcpy(s->node_id, node_id, ID_UNIQUE_SIZE);
    for (int i = 0; i < ID_UNIQUE_SIZE; i++)
        snprintf(s->node_hex + 2 * i, 3, "%02x", node_id[i]);
    s->period_ms = period_ms ? period_ms : 100;
    s->cbs = *cbs;
    s->ctx = ctx;
    s->wire_version = 0;
    s->resend = true;
    syncer_connect(s);
    s->tick_timer = loop_add_timer(loop, s->period_ms, syncer_on_tick, s);
    return s;
}

void syncer_destroy(syncer_t *s)
{
    if (!s)
        return;
    if (s->tick_timer)
        loop_cancel_timer(s->loop, s->tick_timer);
    if (s->reconnect_timer)
        loop_cancel_timer(s->loop, s->reconnect_timer);
    if (s->stream)
        rpc_stream_cancel(s->stream, true);
    free(s->peers);
    free(s);
}

uint64_t syncer_sent(const syncer_t *s) { return s->sent; }
uint64_t syncer_received(const syncer_t *s) { return s->received; }
