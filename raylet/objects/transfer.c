#include "raylet/objects/transfer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/list.h"
#include "common/log.h"
#include "common/rpc.h"
#include "object_store/plasma_proto.h"
#include "object_store/transfer/push.h"
#include "proto/ray_proto.h"
#include "raylet/objects/owners.h"

#define OM_METHOD(name) "/ray.rpc.ObjectManagerService/" name
/* A chunk's Push gets this long; a Pull is answered at once. */
#define XFER_PUSH_TIMEOUT_MS 60000
#define XFER_PULL_TIMEOUT_MS 10000
/* Frees broadcast to other nodes go out this often, this many at most. */
#define XFER_FREE_PERIOD_MS 100
#define XFER_FREE_BATCH 1000

/* A peer's object manager. */
typedef struct xfer_peer {
    list_t link;
    id_node_t node;
    rpc_channel_t *channel;
    list_t calls; /* xfer_call_t in flight */
} xfer_peer_t;

/* A call in flight; freed by its completion or with its peer (a destroyed
 * channel runs no callbacks). */
typedef struct xfer_call {
    list_t link;
    xfer_t *x;
    uint64_t token; /* Push: the pusher's chunk token */
} xfer_call_t;

struct xfer {
    xfer_options_t o;
    pull_t *pull;
    push_t *push;
    owners_t *owners;
    list_t peers;
    size_t npeers;
    bool stopped;
    id_object_t *frees; /* to broadcast at the next flush */
    size_t nfrees, frees_cap;
    uint64_t free_timer;
    uint64_t chunks_received, chunks_refused, chunks_sent, objects_received;
};

/* ---- peers' channels ------------------------------------------------------ */

static xfer_peer_t *peer_find(xfer_t *x, const id_node_t *node)
{
    LIST_FOREACH_ENTRY(xfer_peer_t, p, &x->peers, link)
        if (memcmp(&p->node, node, sizeof *node) == 0)
            return p;
    return NULL;
}

static xfer_peer_t *peer_get(xfer_t *x, const id_node_t *node)
{
    xfer_peer_t *p = peer_find(x, node);
    if (p)
        return p;
    peer_info_t info;
    if (!peers_lookup(x->o.peers, node->b, &info) || info.object_port <= 0 || info.object_port > 65535)
        return NULL;
    char target[96];
    snprintf(target, sizeof target, "%s:%d", info.address, info.object_port);
    rpc_channel_t *ch = rpc_channel_create(x->o.bridge, target);
    if (!ch)
        return NULL;
    p = xcalloc(1, sizeof *p);
    p->node = *node;
    p->channel = ch;
    list_init(&p->calls);
    list_insert_tail(&x->peers, &p->link);
    x->npeers++;
    return p;
}

static void peer_free(xfer_t *x, xfer_peer_t *p)
{
    list_remove(&p->link);
    x->npeers--;
    rpc_channel_destroy(p->channel);
    while (!list_empty(&p->calls)) {
        xfer_call_t *c = LIST_ENTRY(p->calls.next, xfer_call_t, link);
        list_remove(&c->link);
        free(c);
    }
    free(p);
}

static xfer_call_t *call_new(xfer_t *x, xfer_peer_t *p, uint64_t token)
{
    xfer_call_t *c = xcalloc(1, sizeof *c);
    c->x = x;
    c->token = token;
    list_insert_tail(&p->calls, &c->link);
    return c;
}

static void call_done(xfer_call_t *c)
{
    list_remove(&c->link);
    free(c);
}

/* ---- the puller's and pusher's ops ----------------------------------------- */

static int xfer_locate(void *ctx, const ray_addr_t *owner, const id_object_t *oid)
{
    xfer_t *x = ctx;
    return owners_locate(x->owners, owner, oid);
}

static void xfer_forget(void *ctx, const ray_addr_t *owner, const id_object_t *oid)
{
    xfer_t *x = ctx;
    owners_forget(x->owners, owner, oid);
}

static void xfer_on_pull_sent(void *ctx, const rpc_status_t *st, ProtobufCMessage *reply)
{
    (void)reply;
    xfer_call_t *c = ctx;
    if (st->code != GRPC_STATUS_OK)
        log_debug("Pull refused or lost: %s", st->message);
    call_done(c);
}

static int xfer_request(void *ctx, const id_node_t *holder, const id_object_t *oid)
{
    xfer_t *x = ctx;
    xfer_peer_t *p = peer_get(x, holder);
    if (!p)
        return -ENOENT;
    Ray__Rpc__PullRequest req = RAY__RPC__PULL_REQUEST__INIT;
    req.node_id.data = x->o.self.b;
    req.node_id.len = ID_UNIQUE_SIZE;
    /* One id per Pull: a 2.54 raylet reads only one. */
    ProtobufCBinaryData id = {.data = (uint8_t *)oid->b, .len = ID_OBJECT_SIZE};
    req.n_object_ids = 1;
    req.object_ids = &id;
    xfer_call_t *c = call_new(x, p, 0);
    if (rpc_unary(p->channel, OM_METHOD("Pull"), &req.base, &ray__rpc__pull_reply__descriptor, XFER_PULL_TIMEOUT_MS,
                  xfer_on_pull_sent, c) != 0) {
        call_done(c);
        return CR_ERPC;
    }
    return 0;
}

static void xfer_on_push_sent(void *ctx, const rpc_status_t *st, ProtobufCMessage *reply)
{
    (void)reply;
    xfer_call_t *c = ctx;
    xfer_t *x = c->x;
    uint64_t token = c->token;
    call_done(c);
    if (st->code != GRPC_STATUS_OK)
        log_debug("Push chunk failed: %s", st->message);
    else
        x->chunks_sent++;
    push_on_sent(x->push, token, st->code == GRPC_STATUS_OK);
}

static int xfer_send(void *ctx, const id_node_t *to, const transfer_chunk_t *chunk, uint64_t token)
{
    xfer_t *x = ctx;
    xfer_peer_t *p = peer_get(x, to);
    if (!p)
        return -ENOENT;
    Ray__Rpc__Address owner = RAY__RPC__ADDRESS__INIT;
    owner.node_id.data = (uint8_t *)chunk->owner.node_id.b;
    owner.node_id.len = ID_UNIQUE_SIZE;
    owner.worker_id.data = (uint8_t *)chunk->owner.worker_id.b;
    owner.worker_id.len = ID_UNIQUE_SIZE;
    owner.ip_address = (char *)chunk->owner.ip;
    owner.port = chunk->owner.port;
    /* Receivers ignore it; unique per chunk is enough. */
    uint8_t push_id[ID_UNIQUE_SIZE] = {0};
    memcpy(push_id, &token, sizeof token);
    Ray__Rpc__PushRequest req = RAY__RPC__PUSH_REQUEST__INIT;
    req.push_id.data = push_id;
    req.push_id.len = sizeof push_id;
    req.object_id.data = (uint8_t *)chunk->id.b;
    req.object_id.len = ID_OBJECT_SIZE;
    req.node_id.data = x->o.self.b;
    req.node_id.len = ID_UNIQUE_SIZE;
    req.owner_address = &owner;
    req.chunk_index = chunk->index;
    req.data_size = chunk->total_size;
    req.metadata_size = chunk->metadata_size;
    /* Everything but `data` is packed here; `data` (field 8) follows as its
     * key and length, then the object's own bytes, lent to gRPC in place:
     * the chunk is never copied on this side. */
    size_t fixed = protobuf_c_message_get_packed_size(&req.base);
    uint8_t *head = xmalloc(fixed + 11);
    size_t n = protobuf_c_message_pack(&req.base, head);
    head[n++] = (8 << 3) | 2;
    for (uint64_t v = chunk->len;; v >>= 7) {
        head[n++] = (uint8_t)(v & 0x7f) | (v >= 0x80 ? 0x80 : 0);
        if (v < 0x80)
            break;
    }
    rpc_lent_t lent = {.iov = chunk->iov,
                       .iovcnt = chunk->iovcnt,
                       .retain = push_pin_retain,
                       .release = push_pin_release,
                       .keep = chunk->pin};
    xfer_call_t *c = call_new(x, p, token);
    int rc = rpc_unary_lent(p->channel, OM_METHOD("Push"), head, n, &lent, &ray__rpc__push_reply__descriptor,
                            XFER_PUSH_TIMEOUT_MS, xfer_on_push_sent, c);
    free(head);
    if (rc != 0) {
        call_done(c);
        return CR_ERPC;
    }
    return 0;
}

static void xfer_located(void *ctx, const id_object_t *oid, const pull_locations_t *loc)
{
    xfer_t *x = ctx;
    pull_on_locations(x->pull, oid, loc);
}

static void xfer_locate_failed(void *ctx, const id_object_t *oid, bool owner_gone)
{
    xfer_t *x = ctx;
    pull_on_locate_failed(x->pull, oid, owner_gone);
}

/* ---- frees broadcast (2.5x) ------------------------------------------------- */

static void xfer_on_freed(void *ctx, const rpc_status_t *st, ProtobufCMessage *reply)
{
    (void)reply;
    xfer_call_t *c = ctx;
    if (st->code != GRPC_STATUS_OK)
        log_debug("FreeObjects to a peer failed: %s", st->message);
    call_done(c);
}

static void xfer_flush_frees(loop_t *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    xfer_t *x = data;
    x->free_timer = 0;
    size_t n = x->nfrees < XFER_FREE_BATCH ? x->nfrees : XFER_FREE_BATCH;
    ProtobufCBinaryData *ids = xcalloc(n ? n : 1, sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = (ProtobufCBinaryData){.data = x->frees[i].b, .len = ID_OBJECT_SIZE};
    Ray__Rpc__FreeObjectsRequest req = RAY__RPC__FREE_OBJECTS_REQUEST__INIT;
    req.n_object_ids = n;
    req.object_ids = ids;
    for (size_t i = 0; i < peers_count(x->o.peers); i++) {
        peer_info_t info;
        peers_at(x->o.peers, i, &info);
        xfer_peer_t *p = peer_get(x, (const id_node_t *)info.node_id);
        if (!p)
            continue;
        xfer_call_t *c = call_new(x, p, 0);
        if (rpc_unary(p->channel, OM_METHOD("FreeObjects"), &req.base, &ray__rpc__free_objects_reply__descriptor,
                      XFER_PULL_TIMEOUT_MS, xfer_on_freed, c) != 0)
            call_done(c);
    }
    free(ids);
    memmove(x->frees, x->frees + n, (x->nfrees - n) * sizeof *x->frees);
    x->nfrees -= n;
    if (x->nfrees)
        x->free_timer = loop_add_timer(x->o.loop, XFER_FREE_PERIOD_MS, xfer_flush_frees, x);
}

void xfer_free_everywhere(xfer_t *x, const id_object_t *oid)
{
    if (x->stopped || peers_count(x->o.peers) == 0)
        return;
    if (x->nfrees == x->frees_cap) {
        x->frees_cap = x->frees_cap ? x->frees_cap * 2 : 64;
        x->frees = xrealloc(x->frees, x->frees_cap * sizeof *x->frees);
    }
    x->frees[x->nfrees++] = *oid;
    if (!x->free_timer)
        x->free_timer = loop_add_timer(x->o.loop, XFER_FREE_PERIOD_MS, xfer_flush_frees, x);
}

/* ---- API ------------------------------------------------------------------ */

uint64_t xfer_pull(xfer_t *x, pull_priority_t prio, const id_object_t *ids, const ray_addr_t *owners, size_t n)
{
    if (x->stopped)
        return 0;
    /* Alone in the cluster, every object is made here: nothing to fetch,
     * and no owner need be asked (a one-node cluster pays nothing), unless
     * it was spilled here, when it comes back from storage. */
    if (peers_count(x->o.peers) == 0) {
        for (size_t i = 0; i < n && x->o.restore; i++)
            if (!store_contains(x->o.store, &ids[i]))
                x->o.restore(x->o.restore_ctx, &ids[i]);
        return 0;
    }
    return pull_bundle(x->pull, prio, ids, owners, n);
}

void xfer_cancel(xfer_t *x, uint64_t handle)
{
    if (!x->stopped)
        pull_cancel(x->pull, handle);
}

void xfer_on_sealed(xfer_t *x, const store_object_info_t *info)
{
    if (x->stopped)
        return;
    if (info->source == PLASMA_SOURCE_RECEIVED_FROM_REMOTE_RAYLET)
        x->objects_received++;
    /* Error objects this raylet stored are local answers, not copies. */
    if (info->source != PLASMA_SOURCE_ERROR_STORED_BY_RAYLET) {
        ray_addr_t owner = {.node_id = info->owner.node_id, .worker_id = info->owner.worker_id,
                            .port = info->owner.port};
        snprintf(owner.ip, sizeof owner.ip, "%s", info->owner.ip ? info->owner.ip : "");
        owners_copy_added(x->owners, &owner, &info->id);
    }
    push_on_sealed(x->push, &info->id);
}

void xfer_on_deleted(xfer_t *x, const id_object_t *id)
{
    if (!x->stopped)
        owners_copy_removed(x->owners, id);
}

void xfer_node_removed(xfer_t *x, const id_node_t *node)
{
    if (x->stopped)
        return;
    pull_node_removed(x->pull, node);
    push_node_removed(x->push, node);
    xfer_peer_t *p = peer_find(x, node);
    if (p)
        peer_free(x, p);
}

void xfer_worker_died(xfer_t *x, const id_worker_t *worker)
{
    if (!x->stopped)
        owners_worker_died(x->owners, worker);
}

int xfer_on_chunk(xfer_t *x, const transfer_chunk_t *chunk)
{
    if (x->stopped)
        return -ENOENT;
    int rc = pull_on_chunk(x->pull, chunk);
    if (rc == 0)
        x->chunks_received++;
    else
        x->chunks_refused++;
    return rc;
}

bool xfer_on_pull(xfer_t *x, const id_node_t *from, const id_object_t *oid)
{
    peer_info_t info;
    /* A node not in the cluster could not be sent anything: nothing is
     * parked for it either. */
    if (x->stopped || !peers_lookup(x->o.peers, from->b, &info))
        return false;
    /* Spilled here and evicted since: the push waits for the restore. */
    if (!store_contains(x->o.store, oid) && x->o.restore)
        x->o.restore(x->o.restore_ctx, oid);
    push_request(x->push, from, oid);
    return true;
}

void xfer_on_spilled(xfer_t *x, const ray_addr_t *owner, const id_object_t *oid, const char *url)
{
    if (!x->stopped)
        owners_copy_spilled(x->owners, owner, oid, url);
}

void xfer_get_stats(const xfer_t *x, xfer_stats_t *out)
{
    *out = (xfer_stats_t){
        .pull_bundles = pull_bundle_count(x->pull),
        .pull_objects = pull_object_count(x->pull),
        .receiving = pull_receiving_count(x->pull),
        .pushes = push_active_count(x->push),
        .pushes_parked = push_parked_count(x->push),
        .chunks_in_flight = push_chunks_in_flight(x->push),
        .channels = x->npeers,
        .chunks_received = x->chunks_received,
        .chunks_refused = x->chunks_refused,
        .chunks_sent = x->chunks_sent,
        .objects_received = x->objects_received,
    };
    owners_stats_t os;
    owners_get_stats(x->owners, &os);
    out->loc_subscribed = os.subscribed;
    out->loc_subscribes = os.subscribes;
    out->loc_published = os.published;
    out->loc_lookups = os.lookups;
}

static int xfer_restore(void *ctx, const id_object_t *oid)
{
    xfer_t *x = ctx;
    return x->o.restore ? x->o.restore(x->o.restore_ctx, oid) : -ENOENT;
}

xfer_t *xfer_create(const xfer_options_t *opts)
{
    xfer_t *x = xcalloc(1, sizeof *x);
    x->o = *opts;
    /* Flags and config are untrusted: keep the chunk size sane. */
    if (x->o.chunk_size < 1024 || x->o.chunk_size > (256u << 20))
        x->o.chunk_size = 5u << 20;
    if (x->o.max_bytes_in_flight == 0)
        x->o.max_bytes_in_flight = 2ull << 30;
    if (x->o.pull_timeout_ms == 0)
        x->o.pull_timeout_ms = 10000;
    list_init(&x->peers);
    pull_options_t po = {.self = x->o.self,
                         .chunk_size = x->o.chunk_size,
                         .retry_ms = x->o.pull_timeout_ms,
                         .fetch_fail_ms = x->o.fetch_fail_ms,
                         .no_room_grace_ms = x->o.no_room_grace_ms,
                         .tick_ms = x->o.tick_ms,
                         .locations_pushed = true};
    static const pull_ops_t pull_ops = {
        .locate = xfer_locate, .request = xfer_request, .forget = xfer_forget, .restore = xfer_restore};
    x->pull = pull_create(x->o.loop, x->o.store, &po, &pull_ops, x);
    push_options_t so = {.chunk_size = x->o.chunk_size,
                         .max_bytes_in_flight = x->o.max_bytes_in_flight,
                         .park_ms = x->o.push_timeout_ms};
    static const push_ops_t push_ops = {.send = xfer_send};
    x->push = push_create(x->o.loop, x->o.store, &so, &push_ops, x);
    static const owners_callbacks_t ocbs = {.located = xfer_located, .locate_failed = xfer_locate_failed};
    x->owners = owners_create(x->o.bridge, &x->o.self, &ocbs, x);
    return x;
}

void xfer_stop(xfer_t *x)
{
    if (!x || x->stopped)
        return;
    pull_stop(x->pull);
    push_stop(x->push);
    if (x->free_timer)
        loop_cancel_timer(x->o.loop, x->free_timer);
    x->free_timer = 0;
    free(x->frees);
    x->frees = NULL;
    x->nfrees = 0;
    while (!list_empty(&x->peers))
        peer_free(x, LIST_ENTRY(x->peers.next, xfer_peer_t, link));
    owners_destroy(x->owners);
    x->owners = NULL;
    x->stopped = true;
}

void xfer_destroy(xfer_t *x)
{
    if (!x)
        return;
    xfer_stop(x);
    pull_destroy(x->pull);
    push_destroy(x->push);
    free(x);
}
