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
} owner_update_t;

typedef struct owner_rec {
    list_t link;
    ray_addr_t addr;
    rpc_channel_t *channel;
    list_t calls; /* owner_call_t in flight */
    owner_update_t *queued;
    size_t nqueued, cap;
    bool report_inflight;
} owner_rec_t;

/* A call in flight: freed by its completion, or with its owner (a
 * destroyed channel runs no callbacks). */
typedef struct owner_call {
    list_t link;
    owners_t *o;
    owner_rec_t *rec;
    id_object_t oid; /* locate */
    size_t sent;     /* report: updates in the batch */
} owner_call_t;

/* A copy sealed here, with the owner to tell when it goes. */
typedef struct owner_copy {
    idtab_node_t node;
    ray_addr_t owner;
} owner_copy_t;

struct owners {
    cq_bridge_t *bridge;
    id_node_t self;
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
    list_init(&r->calls);
    list_insert_tail(&o->owners, &r->link);
    return r;
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
    free(r->queued);
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
    const Ray__Rpc__WorkerObjectLocationsPubMessage *m = r->object_location_infos[0];
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
    o->cbs.located(o->ctx, &oid, &loc);
    free(nodes);
}

int owners_locate(owners_t *o, const ray_addr_t *owner, const id_object_t *oid)
{
    if (!ray_addr_reachable(owner))
        return CR_EBADMSG;
    owner_rec_t *r = owner_get(o, owner);
    if (!r)
        return CR_ERPC;
    Ray__Rpc__GetObjectLocationsOwnerRequest req = RAY__RPC__GET_OBJECT_LOCATIONS_OWNER_REQUEST__INIT;
    req.intended_worker_id.data = r->addr.worker_id.b;
    req.intended_worker_id.len = ID_UNIQUE_SIZE;
    ProtobufCBinaryData id = {.data = (uint8_t *)oid->b, .len = ID_OBJECT_SIZE};
    req.n_object_ids = 1;
    req.object_ids = &id;
    owner_call_t *c = call_new(o, r);
    c->oid = *oid;
    if (cwc_get_object_locations_owner(r->channel, &req, OWNERS_CALL_TIMEOUT_MS, owners_on_located, c) != 0) {
        call_done(c);
        return CR_ERPC;
    }
    return 0;
}

/* ---- reports ------------------------------------------------------------- */

static void owners_send_reports(owners_t *o, owner_rec_t *r);

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
        r->nqueued = 0;
        return;
    }
    memmove(r->queued, r->queued + sent, (r->nqueued - sent) * sizeof *r->queued);
    r->nqueued -= sent;
    owners_send_reports(o, r);
}

static void owners_send_reports(owners_t *o, owner_rec_t *r)
{
    if (r->report_inflight || r->nqueued == 0)
        return;
    size_t n = r->nqueued < OWNERS_BATCH_MAX ? r->nqueued : OWNERS_BATCH_MAX;
    Ray__Rpc__ObjectLocationUpdate *ups = xcalloc(n, sizeof *ups);
    Ray__Rpc__ObjectLocationUpdate **ptrs = xcalloc(n, sizeof *ptrs);
    for (size_t i = 0; i < n; i++) {
        ray__rpc__object_location_update__init(&ups[i]);
        ups[i].object_id.data = r->queued[i].id.b;
        ups[i].object_id.len = ID_OBJECT_SIZE;
        /* A proto3 optional: ADDED is 0 and must still be on the wire. */
        ups[i]._plasma_location_update_case =
            RAY__RPC__OBJECT_LOCATION_UPDATE___PLASMA_LOCATION_UPDATE_PLASMA_LOCATION_UPDATE;
        ups[i].plasma_location_update = r->queued[i].added ? RAY__RPC__OBJECT_PLASMA_LOCATION_UPDATE__ADDED
                                                           : RAY__RPC__OBJECT_PLASMA_LOCATION_UPDATE__REMOVED;
        ptrs[i] = &ups[i];
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
}

static void owners_queue(owners_t *o, const ray_addr_t *owner, const id_object_t *oid, bool added)
{
    owner_rec_t *r = owner_get(o, owner);
    if (!r)
        return;
    if (r->nqueued == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->queued = xrealloc(r->queued, r->cap * sizeof *r->queued);
    }
    r->queued[r->nqueued++] = (owner_update_t){.id = *oid, .added = added};
    owners_send_reports(o, r);
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
    owners_queue(o, owner, oid, true);
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
        owners_queue(o, &c->owner, oid, false);
    free(c);
}

void owners_worker_died(owners_t *o, const id_worker_t *worker)
{
    owner_rec_t *r = owner_find(o, worker);
    if (r)
        owner_free(r);
}

size_t owners_tracked(const owners_t *o) { return idtab_count(o->copies); }

owners_t *owners_create(cq_bridge_t *bridge, const id_node_t *self, const owners_callbacks_t *cbs, void *ctx)
{
    owners_t *o = xcalloc(1, sizeof *o);
    o->bridge = bridge;
    o->self = *self;
    o->cbs = *cbs;
    o->ctx = ctx;
    list_init(&o->owners);
    o->copies = idtab_create();
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
