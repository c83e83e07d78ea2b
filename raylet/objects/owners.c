#include "raylet/objects/owners.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/list.h"
#include "common/log.h"
#include "common/rpc.h"
#include "object_store/idtab.h"
#include "proto/ray_proto.h"
#include "raylet/worker/core_worker_client.h"

/* Updates per UpdateObjectLocationBatch (max_object_report_batch_size). */
#define OWNERS_BATCH_MAX 2000
#define OWNERS_CALL_TIMEOUT_MS 30000

typedef struct owner_update {
    id_object_t id;
    bool added;
    char *spilled_url; /* owned; set: a spill, not a copy added or removed */
} owner_update_t;

/* A subscribe or unsubscribe waiting for the owner's command batch. */
typedef struct owner_cmd {
    id_object_t id;
    bool subscribe;
} owner_cmd_t;

typedef struct owner_rec {
    list_t link;
    ray_addr_t addr;
    rpc_channel_t *channel;
    list_t calls; /* owner_call_t in flight */
    owner_update_t *queued;
    size_t nqueued, cap;
    bool report_inflight;
    /* Location subscriptions on the owner's pubsub: the objects (a table
     * of owner_sub_t: a pull of many objects from one owner asks about
     * each as it arrives), the commands not yet sent, and the long poll
     * that brings the news. */
    idtab_t *subs;
    owner_cmd_t *cmds;
    size_t ncmds, cmds_cap;
    bool cmd_inflight;
    bool polling;
    int64_t max_seq;
    uint8_t publisher_id[64];
    size_t publisher_id_len;
} owner_rec_t;

/* A call in flight: freed by its completion, or with its owner (a
 * destroyed channel runs no callbacks). */
typedef struct owner_call {
    list_t link;
    owners_t *o;
    owner_rec_t *rec;
    bool locate;     /* a GetObjectLocationsOwner for oid */
    id_object_t oid;
    size_t sent;     /* report: updates in the batch; commands: in the batch */
} owner_call_t;

/* An object whose locations we follow on its owner's pubsub. */
typedef struct owner_sub {
    idtab_node_t node;
} owner_sub_t;

/* A copy sealed here, with the owner to tell when it goes. */
typedef struct owner_copy {
    idtab_node_t node;
    ray_addr_t owner;
} owner_copy_t;

struct owners {
    cq_bridge_t *bridge;
    id_node_t self;
    /* Who we are to owners' publishers.  Not the node id: up to Ray 2.5x the
     * pin-release subscriptions (owner_sub.c) use that, and a publisher
     * keeps one mailbox per subscriber. */
    uint8_t subscriber_id[ID_UNIQUE_SIZE];
    owners_stats_t stats;
    owners_callbacks_t cbs;
    void *ctx;
    list_t owners;
    idtab_t *copies;
};

static owner_rec_t *owner_find(owners_t *o, const id_worker_t *w)
{
    LIST_FOREACH_ENTRY(owner_rec_t, r, &o->owners, link)
        if (memcmp(&r->addr.worker_id, w, sizeof *w) == 0)
            return r;
    return NULL;
}

static owner_rec_t *owner_get(owners_t *o, const ray_addr_t *addr)
{
    owner_rec_t *r = owner_find(o, &addr->worker_id);
    if (r)
        return r;
    char target[RAY_ADDR_IP_MAX + 16];
    snprintf(target, sizeof target, "%s:%d", addr->ip, (int)addr->port);
    rpc_channel_t *ch = rpc_channel_create(o->bridge, target);
    if (!ch)
        return NULL;
    r = xcalloc(1, sizeof *r);
    r->addr = *addr;
    r->channel = ch;
    r->subs = idtab_xcreate();
    list_init(&r->calls);
    list_insert_tail(&o->owners, &r->link);
    return r;
}

/* Empties `r`'s subscriptions; the ids go to *ids (NULL: dropped), the
 * count is returned. */
static size_t subs_take(owner_rec_t *r, id_object_t **ids)
{
    size_t n = idtab_count(r->subs), i = 0;
    if (ids)
        *ids = xcalloc(n ? n : 1, sizeof **ids);
    for (idtab_node_t *e = idtab_first(r->subs), *next; e; e = next) {
        next = idtab_next(r->subs, e);
        if (ids)
            (*ids)[i++] = e->id;
        idtab_remove(r->subs, e);
        free(LIST_ENTRY(e, owner_sub_t, node));
    }
    return n;
}

static void owner_free(owner_rec_t *r)
{
    list_remove(&r->link);
    rpc_channel_destroy(r->channel);
    while (!list_empty(&r->calls)) {
        owner_call_t *c = LIST_ENTRY(r->calls.next, owner_call_t, link);
        list_remove(&c->link);
        free(c);
    }
    for (size_t i = 0; i < r->nqueued; i++)
        free(r->queued[i].spilled_url);
    free(r->queued);
    subs_take(r, NULL);
    idtab_destroy(r->subs);
    free(r->cmds);
    free(r);
}

static owner_call_t *call_new(owners_t *o, owner_rec_t *r)
{
    owner_call_t *c = xcalloc(1, sizeof *c);
    c->o = o;
    c->rec = r;
    list_insert_tail(&r->calls, &c->link);
    return c;
}

static void call_done(owner_call_t *c)
{
    list_remove(&c->link);
    free(c);
}

/* ---- locate -------------------------------------------------------------- */

/* What an owner knows of one object (a lookup's answer or a published
 * change), handed to the puller. */
static void pub_locations(owners_t *o, const id_object_t *oid, const Ray__Rpc__WorkerObjectLocationsPubMessage *m)
{
    id_node_t *nodes = xcalloc(m->n_node_ids ? m->n_node_ids : 1, sizeof *nodes);
    size_t n = 0;
    for (size_t i = 0; i < m->n_node_ids; i++)
        if (m->node_ids[i].len == ID_UNIQUE_SIZE)
            memcpy(nodes[n++].b, m->node_ids[i].data, ID_UNIQUE_SIZE);
    pull_locations_t loc = {.nodes = nodes,
                            .count = n,
                            .object_size = m->object_size,
                            .pending_creation = m->pending_creation,
                            .ref_removed = m->ref_removed};
    /* A nil spilled node would mean storage any node reads from (cloud
     * storage); only node-local filesystem spilling is followed. */
    if (m->spilled_url && m->spilled_url[0] && m->spilled_node_id.len == ID_UNIQUE_SIZE &&
        !id_is_nil(m->spilled_node_id.data, ID_UNIQUE_SIZE)) {
        loc.spilled = true;
        memcpy(loc.spilled_node.b, m->spilled_node_id.data, ID_UNIQUE_SIZE);
    }
    o->cbs.located(o->ctx, oid, &loc);
    free(nodes);
}

static void owners_on_located(void *ctx, const rpc_status_t *st, ProtobufCMessage *reply)
{
    owner_call_t *c = ctx;
    owners_t *o = c->o;
    id_object_t oid = c->oid;
    call_done(c);
    if (st->code != GRPC_STATUS_OK) {
        o->cbs.locate_failed(o->ctx, &oid, false);
        return;
    }
    const Ray__Rpc__GetObjectLocationsOwnerReply *r = (const Ray__Rpc__GetObjectLocationsOwnerReply *)reply;
    if (r->n_object_location_infos != 1 || !r->object_location_infos[0]) {
        o->cbs.locate_failed(o->ctx, &oid, false);
        return;
    }
    pub_locations(o, &oid, r->object_location_infos[0]);
}

/* ---- location subscriptions --------------------------------------------- */

static bool sub_find(const owner_rec_t *r, const id_object_t *oid)
{
    return idtab_find(r->subs, oid) != NULL;
}

static void cmd_push(owner_rec_t *r, const id_object_t *oid, bool subscribe)
{
    if (r->ncmds == r->cmds_cap) {
        r->cmds_cap = r->cmds_cap ? r->cmds_cap * 2 : 16;
        r->cmds = xrealloc(r->cmds, r->cmds_cap * sizeof *r->cmds);
    }
    r->cmds[r->ncmds++] = (owner_cmd_t){.id = *oid, .subscribe = subscribe};
}

static bool sub_remove(owner_rec_t *r, const id_object_t *oid)
{
    idtab_node_t *e = idtab_find(r->subs, oid);
    if (!e)
        return false;
    idtab_remove(r->subs, e);
    free(LIST_ENTRY(e, owner_sub_t, node));
    return true;
}

/* The owner's pubsub failed us: every object it was to tell us about is
 * asked again by the puller (which re-subscribes), or given up. */
static void subs_lost(owners_t *o, owner_rec_t *r)
{
    id_object_t *ids;
    size_t n = subs_take(r, &ids);
    r->ncmds = 0;
    r->max_seq = 0;
    r->publisher_id_len = 0;
    for (size_t i = 0; i < n; i++)
        o->cbs.locate_failed(o->ctx, &ids[i], false);
    free(ids);
}

static void subs_poll(owners_t *o, owner_rec_t *r);
static void subs_send(owners_t *o, owner_rec_t *r);

static void subs_on_poll(void *ctx, const rpc_status_t *st, ProtobufCMessage *reply)
{
    owner_call_t *c = ctx;
    owners_t *o = c->o;
    owner_rec_t *r = c->rec;
    call_done(c);
    r->polling = false;
    if (st->code != GRPC_STATUS_OK) {
        subs_lost(o, r);
        return;
    }
    const Ray__Rpc__PubsubLongPollingReply *rep = (const Ray__Rpc__PubsubLongPollingReply *)reply;
    /* A restarted publisher numbers its messages from 1 again. */
    if (rep->publisher_id.len > 0 && rep->publisher_id.len <= sizeof r->publisher_id &&
        (rep->publisher_id.len != r->publisher_id_len ||
         memcmp(rep->publisher_id.data, r->publisher_id, rep->publisher_id.len) != 0)) {
        memcpy(r->publisher_id, rep->publisher_id.data, rep->publisher_id.len);
        r->publisher_id_len = rep->publisher_id.len;
        r->max_seq = 0;
    }
    int64_t seen = r->max_seq;
    for (size_t i = 0; i < rep->n_pub_messages; i++)
        if (rep->pub_messages[i]->sequence_id > r->max_seq)
            r->max_seq = rep->pub_messages[i]->sequence_id;
    /* Poll again before delivering: a callback may drop this owner. */
    subs_poll(o, r);
    ray_addr_t owner = r->addr;
    for (size_t i = 0; i < rep->n_pub_messages; i++) {
        const Ray__Rpc__PubMessage *m = rep->pub_messages[i];
        if (m->sequence_id <= seen || m->channel_type != RAY__RPC__CHANNEL_TYPE__WORKER_OBJECT_LOCATIONS_CHANNEL ||
            m->key_id.len != ID_OBJECT_SIZE)
            continue;
        id_object_t oid;
        memcpy(oid.b, m->key_id.data, ID_OBJECT_SIZE);
        owner_rec_t *cur = owner_find(o, &owner.worker_id);
        if (!cur || !sub_find(cur, &oid))
            continue; /* no longer wanted */
        o->stats.published++;
        if (m->inner_message_case == RAY__RPC__PUB_MESSAGE__INNER_MESSAGE_WORKER_OBJECT_LOCATIONS_MESSAGE &&
            m->worker_object_locations_message) {
            pub_locations(o, &oid, m->worker_object_locations_message);
        } else if (m->inner_message_case == RAY__RPC__PUB_MESSAGE__INNER_MESSAGE_FAILURE_MESSAGE) {
            /* The owner has let the object go (out of scope, freed). */
            sub_remove(cur, &oid);
            pull_locations_t gone = {.ref_removed = true};
            o->cbs.located(o->ctx, &oid, &gone);
        }
    }
}

static void subs_poll(owners_t *o, owner_rec_t *r)
{
    if (r->polling || idtab_count(r->subs) == 0)
        return;
    Ray__Rpc__PubsubLongPollingRequest req = RAY__RPC__PUBSUB_LONG_POLLING_REQUEST__INIT;
    req.subscriber_id.data = o->subscriber_id;
    req.subscriber_id.len = ID_UNIQUE_SIZE;
    req.max_processed_sequence_id = r->max_seq;
    req.publisher_id.data = r->publisher_id;
    req.publisher_id.len = r->publisher_id_len;
    owner_call_t *c = call_new(o, r);
    /* No deadline: the publisher answers an idle poll itself. */
    if (cwc_pubsub_long_polling(r->channel, &req, 0, subs_on_poll, c) != 0) {
        call_done(c);
        return;
    }
    r->polling = true;
}

static void subs_on_commands(void *ctx, const rpc_status_t *st, ProtobufCMessage *reply)
{
    (void)reply;
    owner_call_t *c = ctx;
    owners_t *o = c->o;
    owner_rec_t *r = c->rec;
    size_t sent = c->sent;
    call_done(c);
    r->cmd_inflight = false;
    if (st->code != GRPC_STATUS_OK) {
        subs_lost(o, r);
        return;
    }
    memmove(r->cmds, r->cmds + sent, (r->ncmds - sent) * sizeof *r->cmds);
    r->ncmds -= sent;
    subs_poll(o, r);
    subs_send(o, r);
}

/* One command batch in flight per owner; what comes meanwhile waits. */
static void subs_send(owners_t *o, owner_rec_t *r)
{
    if (r->cmd_inflight || r->ncmds == 0)
        return;
    size_t n = r->ncmds < OWNERS_BATCH_MAX ? r->ncmds : OWNERS_BATCH_MAX;
    Ray__Rpc__Command *cmds = xcalloc(n, sizeof *cmds);
    Ray__Rpc__Command **ptrs = xcalloc(n, sizeof *ptrs);
    Ray__Rpc__SubMessage *subs = xcalloc(n, sizeof *subs);
    Ray__Rpc__WorkerObjectLocationsSubMessage *locs = xcalloc(n, sizeof *locs);
    Ray__Rpc__UnsubscribeMessage unsub = RAY__RPC__UNSUBSCRIBE_MESSAGE__INIT;
    for (size_t i = 0; i < n; i++) {
        ray__rpc__command__init(&cmds[i]);
        cmds[i].channel_type = RAY__RPC__CHANNEL_TYPE__WORKER_OBJECT_LOCATIONS_CHANNEL;
        cmds[i].key_id.data = r->cmds[i].id.b;
        cmds[i].key_id.len = ID_OBJECT_SIZE;
        if (r->cmds[i].subscribe) {
            ray__rpc__worker_object_locations_sub_message__init(&locs[i]);
            locs[i].intended_worker_id.data = r->addr.worker_id.b;
            locs[i].intended_worker_id.len = ID_UNIQUE_SIZE;
            locs[i].object_id.data = r->cmds[i].id.b;
            locs[i].object_id.len = ID_OBJECT_SIZE;
            ray__rpc__sub_message__init(&subs[i]);
            subs[i].sub_message_one_of_case = RAY__RPC__SUB_MESSAGE__SUB_MESSAGE_ONE_OF_WORKER_OBJECT_LOCATIONS_MESSAGE;
            subs[i].worker_object_locations_message = &locs[i];
            cmds[i].command_message_one_of_case = RAY__RPC__COMMAND__COMMAND_MESSAGE_ONE_OF_SUBSCRIBE_MESSAGE;
            cmds[i].subscribe_message = &subs[i];
        } else {
            cmds[i].command_message_one_of_case = RAY__RPC__COMMAND__COMMAND_MESSAGE_ONE_OF_UNSUBSCRIBE_MESSAGE;
            cmds[i].unsubscribe_message = &unsub;
        }
        ptrs[i] = &cmds[i];
    }
    Ray__Rpc__PubsubCommandBatchRequest req = RAY__RPC__PUBSUB_COMMAND_BATCH_REQUEST__INIT;
    req.subscriber_id.data = o->subscriber_id;
    req.subscriber_id.len = ID_UNIQUE_SIZE;
    req.n_commands = n;
    req.commands = ptrs;
    owner_call_t *c = call_new(o, r);
    c->sent = n;
    if (cwc_pubsub_command_batch(r->channel, &req, OWNERS_CALL_TIMEOUT_MS, subs_on_commands, c) == 0)
        r->cmd_inflight = true;
    else
        call_done(c);
    free(cmds);
    free(ptrs);
    free(subs);
    free(locs);
}

void owners_forget(owners_t *o, const ray_addr_t *owner, const id_object_t *oid)
{
    owner_rec_t *r = owner_find(o, &owner->worker_id);
    if (!r || !sub_remove(r, oid))
        return;
    cmd_push(r, oid, false);
    subs_send(o, r);
}

int owners_locate(owners_t *o, const ray_addr_t *owner, const id_object_t *oid)
{
    if (!ray_addr_reachable(owner))
        return CR_EBADMSG;
    owner_rec_t *r = owner_get(o, owner);
    if (!r)
        return CR_ERPC;
    if (!sub_find(r, oid)) {
        /* First ask: subscribe.  The owner publishes what it knows at once,
         * then every change, so the answer comes through the long poll. */
        owner_sub_t *sub = xcalloc(1, sizeof *sub);
        sub->node.id = *oid;
        idtab_insert(r->subs, &sub->node);
        cmd_push(r, oid, true);
        o->stats.subscribes++;
        subs_send(o, r);
        return 0;
    }
    /* Asked again while subscribed (a copy did not come): ask directly. */
    o->stats.lookups++;
    Ray__Rpc__GetObjectLocationsOwnerRequest req = RAY__RPC__GET_OBJECT_LOCATIONS_OWNER_REQUEST__INIT;
    req.intended_worker_id.data = r->addr.worker_id.b;
    req.intended_worker_id.len = ID_UNIQUE_SIZE;
    ProtobufCBinaryData id = {.data = (uint8_t *)oid->b, .len = ID_OBJECT_SIZE};
    req.n_object_ids = 1;
    req.object_ids = &id;
    owner_call_t *c = call_new(o, r);
    c->locate = true;
    c->oid = *oid;
    if (cwc_get_object_locations_owner(r->channel, &req, OWNERS_CALL_TIMEOUT_MS, owners_on_located, c) != 0) {
        call_done(c);
        return CR_ERPC;
    }
    return 0;
}

/* ---- reports ------------------------------------------------------------- */

static void owners_send_reports(owners_t *o, owner_rec_t *r);

/* The first n queued updates are done with. */
static void owner_updates_drop(owner_rec_t *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(r->queued[i].spilled_url);
    memmove(r->queued, r->queued + n, (r->nqueued - n) * sizeof *r->queued);
    r->nqueued -= n;
}

static void owners_on_reported(void *ctx, const rpc_status_t *st, ProtobufCMessage *reply)
{
    (void)reply;
    owner_call_t *c = ctx;
    owners_t *o = c->o;
    owner_rec_t *r = c->rec;
    size_t sent = c->sent;
    call_done(c);
    r->report_inflight = false;
    if (st->code != GRPC_STATUS_OK) {
        /* As the stock raylet: an owner that cannot take reports is gone
         * or going; what was queued for it is dropped. */
        owner_updates_drop(r, r->nqueued);
        return;
    }
    owner_updates_drop(r, sent);
    owners_send_reports(o, r);
}

static void owners_send_reports(owners_t *o, owner_rec_t *r)
{
    if (r->report_inflight || r->nqueued == 0)
        return;
    size_t n = r->nqueued < OWNERS_BATCH_MAX ? r->nqueued : OWNERS_BATCH_MAX;
    Ray__Rpc__ObjectLocationUpdate *ups = xcalloc(n, sizeof *ups);
    Ray__Rpc__ObjectLocationUpdate **ptrs = xcalloc(n, sizeof *ptrs);
    Ray__Rpc__ObjectSpilledLocationUpdate *spills = xcalloc(n, sizeof *spills);
    for (size_t i = 0; i < n; i++) {
        ray__rpc__object_location_update__init(&ups[i]);
        ups[i].object_id.data = r->queued[i].id.b;
        ups[i].object_id.len = ID_OBJECT_SIZE;
        ptrs[i] = &ups[i];
        if (r->queued[i].spilled_url) {
            /* In this node's own storage: the owner names this node as
             * the one to restore it. */
            ray__rpc__object_spilled_location_update__init(&spills[i]);
            spills[i].spilled_url = r->queued[i].spilled_url;
            spills[i].spilled_to_local_storage = true;
            ups[i]._spilled_location_update_case =
                RAY__RPC__OBJECT_LOCATION_UPDATE___SPILLED_LOCATION_UPDATE_SPILLED_LOCATION_UPDATE;
            ups[i].spilled_location_update = &spills[i];
            continue;
        }
        /* A proto3 optional: ADDED is 0 and must still be on the wire. */
        ups[i]._plasma_location_update_case =
            RAY__RPC__OBJECT_LOCATION_UPDATE___PLASMA_LOCATION_UPDATE_PLASMA_LOCATION_UPDATE;
        ups[i].plasma_location_update = r->queued[i].added ? RAY__RPC__OBJECT_PLASMA_LOCATION_UPDATE__ADDED
                                                           : RAY__RPC__OBJECT_PLASMA_LOCATION_UPDATE__REMOVED;
    }
    Ray__Rpc__UpdateObjectLocationBatchRequest req = RAY__RPC__UPDATE_OBJECT_LOCATION_BATCH_REQUEST__INIT;
    req.intended_worker_id.data = r->addr.worker_id.b;
    req.intended_worker_id.len = ID_UNIQUE_SIZE;
    req.node_id.data = o->self.b;
    req.node_id.len = ID_UNIQUE_SIZE;
    req.n_object_location_updates = n;
    req.object_location_updates = ptrs;
    owner_call_t *c = call_new(o, r);
    c->sent = n;
    if (cwc_update_object_location_batch(r->channel, &req, OWNERS_CALL_TIMEOUT_MS, owners_on_reported, c) == 0)
        r->report_inflight = true;
    else
        call_done(c);
    free(ups);
    free(ptrs);
    free(spills);
}

static void owners_queue(owners_t *o, const ray_addr_t *owner, const id_object_t *oid, bool added,
                         const char *spilled_url)
{
    owner_rec_t *r = owner_get(o, owner);
    if (!r)
        return;
    if (r->nqueued == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->queued = xrealloc(r->queued, r->cap * sizeof *r->queued);
    }
    r->queued[r->nqueued++] = (owner_update_t){
        .id = *oid, .added = added, .spilled_url = spilled_url ? xstrdup(spilled_url) : NULL};
    owners_send_reports(o, r);
}

void owners_copy_spilled(owners_t *o, const ray_addr_t *owner, const id_object_t *oid, const char *url)
{
    if (ray_addr_reachable(owner))
        owners_queue(o, owner, oid, false, url);
}

void owners_copy_added(owners_t *o, const ray_addr_t *owner, const id_object_t *oid)
{
    if (!ray_addr_reachable(owner))
        return;
    idtab_node_t *n = idtab_find(o->copies, oid);
    if (!n) {
        owner_copy_t *c = xcalloc(1, sizeof *c);
        c->node.id = *oid;
        c->owner = *owner;
        idtab_insert(o->copies, &c->node);
    }
    owners_queue(o, owner, oid, true, NULL);
}

void owners_copy_removed(owners_t *o, const id_object_t *oid)
{
    idtab_node_t *n = idtab_find(o->copies, oid);
    if (!n)
        return;
    owner_copy_t *c = (owner_copy_t *)n;
    idtab_remove(o->copies, n);
    /* Only to an owner still connected: a dead owner's objects are gone. */
    if (owner_find(o, &c->owner.worker_id))
        owners_queue(o, &c->owner, oid, false, NULL);
    free(c);
}

void owners_worker_died(owners_t *o, const id_worker_t *worker)
{
    owner_rec_t *r = owner_find(o, worker);
    if (!r)
        return;
    /* Whatever we were to learn from it, we never will: tell the puller,
     * after the record is gone (a callback may locate anew). */
    size_t calls = 0;
    LIST_FOREACH_ENTRY(owner_call_t, c, &r->calls, link)
        calls++;
    id_object_t *subs;
    size_t n = subs_take(r, &subs);
    id_object_t *ids = xcalloc(n + calls + 1, sizeof *ids);
    memcpy(ids, subs, n * sizeof *ids);
    free(subs);
    LIST_FOREACH_ENTRY(owner_call_t, c, &r->calls, link)
        if (c->locate)
            ids[n++] = c->oid;
    owner_free(r);
    for (size_t i = 0; i < n; i++)
        o->cbs.locate_failed(o->ctx, &ids[i], true);
    free(ids);
}

size_t owners_tracked(const owners_t *o) { return idtab_count(o->copies); }

void owners_get_stats(const owners_t *o, owners_stats_t *out)
{
    *out = o->stats;
    out->subscribed = 0;
    LIST_FOREACH_ENTRY(owner_rec_t, r, &o->owners, link)
        out->subscribed += idtab_count(r->subs);
}

owners_t *owners_create(cq_bridge_t *bridge, const id_node_t *self, const owners_callbacks_t *cbs, void *ctx)
{
    owners_t *o = xcalloc(1, sizeof *o);
    o->bridge = bridge;
    o->self = *self;
    memcpy(o->subscriber_id, self->b, ID_UNIQUE_SIZE);
    o->subscriber_id[ID_UNIQUE_SIZE - 1] ^= 0xff;
    o->cbs = *cbs;
    o->ctx = ctx;
    list_init(&o->owners);
    o->copies = idtab_xcreate();
    return o;
}

void owners_destroy(owners_t *o)
{
    if (!o)
        return;
    while (!list_empty(&o->owners))
        owner_free(LIST_ENTRY(o->owners.next, owner_rec_t, link));
    idtab_node_t *n = idtab_first(o->copies);
    while (n) {
        idtab_node_t *next = idtab_next(o->copies, n);
        idtab_remove(o->copies, n);
        free(n);
        n = next;
    }
    idtab_destroy(o->copies);
    free(o);
}
