#include "raylet/worker/core_worker_client.h"
#include "raylet/objects/owner_sub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/list.h"
#include "common/log.h"
#include "common/rpc.h"
#include "object_store/idtab.h"

typedef struct osub_owner osub_owner_t;

/* One pinned object being watched: in the table by object id (an object
 * has one owner, so one watch) and on its owner's list for the state it
 * is in. */
typedef struct osub_watch {
    idtab_node_t node;
    list_t link;
    osub_owner_t *owner;
} osub_watch_t;

struct osub_owner {
    osub_owner_t *next;
    osub_t *s;
    uint8_t worker_id[ID_UNIQUE_SIZE];
    uint8_t node_id[ID_UNIQUE_SIZE]; /* where the owner runs; nil if not said */
    rpc_channel_t *channel;          /* NULL without an eviction channel */
    /* With an eviction channel a watch goes queued -> sending (in the
     * command batch in flight) -> subscribed; without one it is
     * subscribed at once (the owner calls FreeLocalObjects). */
    list_t queued, sending, subscribed;
    size_t count; /* watches on the three lists */
    bool command_inflight;
    bool polling;
    bool dead;
    int64_t max_seq;
    uint8_t publisher_id[64];
    size_t publisher_id_len;
};

struct osub {
    loop_t *loop;
    cq_bridge_t *bridge;
    uint8_t node_id[ID_UNIQUE_SIZE];
    char *node_ip;
    int node_port;
    osub_released_fn released;
    void *ctx;
    osub_owner_t *owners;
    idtab_t *watches; /* osub_watch_t by object id */
};

/* Owners are referred to by id from RPC completions: the record may be gone. */
typedef struct osub_call {
    osub_t *s;
    uint8_t worker_id[ID_UNIQUE_SIZE];
} osub_call_t;

static osub_watch_t *watch_of(idtab_node_t *n) { return n ? LIST_ENTRY(n, osub_watch_t, node) : NULL; }

static osub_owner_t *osub_find(osub_t *s, const uint8_t *worker_id)
{
    for (osub_owner_t *o = s->owners; o; o = o->next)
        if (memcmp(o->worker_id, worker_id, ID_UNIQUE_SIZE) == 0)
            return o;
    return NULL;
}

static void osub_forget(osub_t *s, osub_watch_t *w)
{
    idtab_remove(s->watches, &w->node);
    list_remove(&w->link);
    w->owner->count--;
    free(w);
}

static void osub_owner_free(osub_t *s, osub_owner_t *o);

/* The owner let `w` go: forget it, the owner too once it has nothing left
 * and no call in flight, then release the pin. */
static void osub_release(osub_t *s, osub_watch_t *w)
{
    id_object_t id = w->node.id;
    osub_owner_t *o = w->owner;
    osub_forget(s, w);
    if (o->count == 0 && !o->command_inflight && !o->polling)
        osub_owner_free(s, o);
    s->released(s->ctx, id.b);
}

/* Forgets the owner's watches too (without releasing them). */
static void osub_owner_free(osub_t *s, osub_owner_t *o)
{
    for (osub_owner_t **p = &s->owners; *p; p = &(*p)->next)
        if (*p == o) {
            *p = o->next;
            break;
        }
    list_t *lists[] = {&o->queued, &o->sending, &o->subscribed};
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++)
        while (!list_empty(lists[i]))
            osub_forget(s, LIST_ENTRY(lists[i]->next, osub_watch_t, link));
    if (o->channel)
        rpc_channel_destroy(o->channel);
    free(o);
}

/* The owner is gone: release everything it owned, then forget it.  The ids
 * are copied out first: `released` may reach back into this module. */
static void osub_owner_dead(osub_t *s, osub_owner_t *o, const char *why)
{
    char hex[ID_HEX_BUF];
    log_info("owner %s unreachable (%s); releasing %zu pinned objects", id_to_hex(o->worker_id, ID_UNIQUE_SIZE, hex),
             why, o->count);
    o->dead = true;
    size_t n = 0;
    id_object_t *ids = xcalloc(o->count ? o->count : 1, sizeof *ids);
    list_t *lists[] = {&o->queued, &o->sending, &o->subscribed};
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++)
        LIST_FOREACH_ENTRY(osub_watch_t, w, lists[i], link)
            ids[n++] = w->node.id;
    osub_owner_free(s, o);
    for (size_t i = 0; i < n; i++)
        s->released(s->ctx, ids[i].b);
    free(ids);
}

#if CRAYLET_RAY_OBJECT_EVICTION_CHANNEL
static void osub_poll(osub_t *s, osub_owner_t *o);
static void osub_send_commands(osub_t *s, osub_owner_t *o);

static osub_call_t *osub_call_new(osub_t *s, osub_owner_t *o)
{
    osub_call_t *c = xcalloc(1, sizeof *c);
    c->s = s;
    memcpy(c->worker_id, o->worker_id, ID_UNIQUE_SIZE);
    return c;
}

static void osub_on_poll(void *ctx, const rpc_status_t *st, ProtobufCMessage *reply)
{
    osub_call_t *c = ctx;
    osub_t *s = c->s;
    osub_owner_t *o = osub_find(s, c->worker_id);
    free(c);
    if (!o)
        return;
    o->polling = false;
    if (st->code != GRPC_STATUS_OK) {
        osub_owner_dead(s, o, st->message);
        return;
    }
    const Ray__Rpc__PubsubLongPollingReply *r = (const Ray__Rpc__PubsubLongPollingReply *)reply;
    if (r->publisher_id.len > 0 && r->publisher_id.len <= sizeof o->publisher_id &&
        (r->publisher_id.len != o->publisher_id_len ||
         memcmp(r->publisher_id.data, o->publisher_id, r->publisher_id.len) != 0)) {
        memcpy(o->publisher_id, r->publisher_id.data, r->publisher_id.len);
        o->publisher_id_len = r->publisher_id.len;
        o->max_seq = 0;
    }
    int64_t before = o->max_seq;
    for (size_t i = 0; i < r->n_pub_messages; i++)
        if (r->pub_messages[i]->sequence_id > o->max_seq)
            o->max_seq = r->pub_messages[i]->sequence_id;
    uint8_t worker_id[ID_UNIQUE_SIZE];
    memcpy(worker_id, o->worker_id, ID_UNIQUE_SIZE);
    osub_poll(s, o);
    for (size_t i = 0; i < r->n_pub_messages; i++) {
        const Ray__Rpc__PubMessage *m = r->pub_messages[i];
        if (m->sequence_id <= before)
            continue;
        const uint8_t *oid = NULL;
        if (m->inner_message_case == RAY__RPC__PUB_MESSAGE__INNER_MESSAGE_WORKER_OBJECT_EVICTION_MESSAGE &&
            m->worker_object_eviction_message && m->worker_object_eviction_message->object_id.len == ID_OBJECT_SIZE)
            oid = m->worker_object_eviction_message->object_id.data;
        else if (m->key_id.len == ID_OBJECT_SIZE)
            oid = m->key_id.data; /* failure messages carry the object as key */
        if (!oid)
            continue;
        /* Only what this owner owns and we still watch: a publisher
         * cannot release another owner's objects, nor one twice. */
        osub_watch_t *w = watch_of(idtab_find(s->watches, (const id_object_t *)oid));
        if (!w || memcmp(w->owner->worker_id, worker_id, ID_UNIQUE_SIZE) != 0)
            continue;
        osub_release(s, w);
    }
}

static void osub_poll(osub_t *s, osub_owner_t *o)
{
    if (o->polling || o->dead)
        return;
    Ray__Rpc__PubsubLongPollingRequest req = RAY__RPC__PUBSUB_LONG_POLLING_REQUEST__INIT;
    req.subscriber_id.data = s->node_id;
    req.subscriber_id.len = ID_UNIQUE_SIZE;
    req.max_processed_sequence_id = o->max_seq;
    req.publisher_id.data = o->publisher_id;
    req.publisher_id.len = o->publisher_id_len;
    osub_call_t *c = osub_call_new(s, o);
    if (cwc_pubsub_long_polling(o->channel, &req, 0, osub_on_poll, c) != 0) {
        free(c);
        return;
    }
    o->polling = true;
}

static void osub_on_commands(void *ctx, const rpc_status_t *st, ProtobufCMessage *reply)
{
    osub_call_t *c = ctx;
    osub_t *s = c->s;
    osub_owner_t *o = osub_find(s, c->worker_id);
    free(c);
    if (!o)
        return;
    o->command_inflight = false;
    if (st->code != GRPC_STATUS_OK) {
        osub_owner_dead(s, o, st->message);
        return;
    }
    /* What was freed meanwhile has left the list already. */
    list_move_all(&o->subscribed, &o->sending);
    osub_poll(s, o);
    osub_send_commands(s, o);
}

static void osub_send_commands(osub_t *s, osub_owner_t *o)
{
    if (o->command_inflight || list_empty(&o->queued))
        return;
    size_t n = 0;
    list_t *e;
    LIST_FOREACH(e, &o->queued)
        n++;
    Ray__Rpc__Command *cmds = xcalloc(n, sizeof *cmds);
    Ray__Rpc__Command **ptrs = xcalloc(n, sizeof *ptrs);
    Ray__Rpc__SubMessage *subs = xcalloc(n, sizeof *subs);
    Ray__Rpc__WorkerObjectEvictionSubMessage *ev = xcalloc(n, sizeof *ev);
    Ray__Rpc__Address me = RAY__RPC__ADDRESS__INIT;
    me.node_id.data = s->node_id;
    me.node_id.len = ID_UNIQUE_SIZE;
    me.ip_address = s->node_ip;
    me.port = s->node_port;
    size_t i = 0;
    LIST_FOREACH_ENTRY(osub_watch_t, w, &o->queued, link) {
        const uint8_t *oid = w->node.id.b;
        ray__rpc__worker_object_eviction_sub_message__init(&ev[i]);
        ev[i].intended_worker_id.data = o->worker_id;
        ev[i].intended_worker_id.len = ID_UNIQUE_SIZE;
        ev[i].object_id.data = (uint8_t *)oid;
        ev[i].object_id.len = ID_OBJECT_SIZE;
        ev[i].subscriber_address = &me;
        ray__rpc__sub_message__init(&subs[i]);
        subs[i].sub_message_one_of_case = RAY__RPC__SUB_MESSAGE__SUB_MESSAGE_ONE_OF_WORKER_OBJECT_EVICTION_MESSAGE;
        subs[i].worker_object_eviction_message = &ev[i];
        ray__rpc__command__init(&cmds[i]);
        cmds[i].channel_type = RAY__RPC__CHANNEL_TYPE__WORKER_OBJECT_EVICTION;
        cmds[i].key_id.data = (uint8_t *)oid;
        cmds[i].key_id.len = ID_OBJECT_SIZE;
        cmds[i].command_message_one_of_case = RAY__RPC__COMMAND__COMMAND_MESSAGE_ONE_OF_SUBSCRIBE_MESSAGE;
        cmds[i].subscribe_message = &subs[i];
        ptrs[i] = &cmds[i];
        i++;
    }
    Ray__Rpc__PubsubCommandBatchRequest req = RAY__RPC__PUBSUB_COMMAND_BATCH_REQUEST__INIT;
    req.subscriber_id.data = s->node_id;
    req.subscriber_id.len = ID_UNIQUE_SIZE;
    req.n_commands = n;
    req.commands = ptrs;
    osub_call_t *c = osub_call_new(s, o);
    if (cwc_pubsub_command_batch(o->channel, &req, 30000, osub_on_commands, c) == 0) {
        o->command_inflight = true;
        list_move_all(&o->sending, &o->queued);
    } else {
        free(c);
    }
    free(cmds);
    free(ptrs);
    free(subs);
    free(ev);
}

#endif /* CRAYLET_RAY_OBJECT_EVICTION_CHANNEL */

int osub_watch(osub_t *s, const Ray__Rpc__Address *owner, const uint8_t oid[ID_OBJECT_SIZE])
{
    if (!owner || owner->worker_id.len != ID_UNIQUE_SIZE || owner->port <= 0 || owner->port > 65535 ||
        !owner->ip_address || !owner->ip_address[0])
        return CR_EBADMSG;
    if (idtab_find(s->watches, (const id_object_t *)oid))
        return 0; /* pinned twice: one watch is enough */
    osub_owner_t *o = osub_find(s, owner->worker_id.data);
    if (!o) {
        o = xcalloc(1, sizeof *o);
        o->s = s;
        memcpy(o->worker_id, owner->worker_id.data, ID_UNIQUE_SIZE);
        if (owner->node_id.len == ID_UNIQUE_SIZE)
            memcpy(o->node_id, owner->node_id.data, ID_UNIQUE_SIZE);
        list_init(&o->queued);
        list_init(&o->sending);
        list_init(&o->subscribed);
#if CRAYLET_RAY_OBJECT_EVICTION_CHANNEL
        char target[128];
        snprintf(target, sizeof target, "%s:%d", owner->ip_address, owner->port);
        o->channel = rpc_channel_create(s->bridge, target);
        if (!o->channel) {
            free(o);
            return CR_ERPC;
        }
#endif
        o->next = s->owners;
        s->owners = o;
    }
    osub_watch_t *w = xcalloc(1, sizeof *w);
    memcpy(w->node.id.b, oid, ID_OBJECT_SIZE);
    w->owner = o;
    idtab_insert(s->watches, &w->node);
    o->count++;
#if CRAYLET_RAY_OBJECT_EVICTION_CHANNEL
    list_insert_tail(&o->queued, &w->link);
    osub_send_commands(s, o);
#else
    list_insert_tail(&o->subscribed, &w->link);
#endif
    return 0;
}

bool osub_free(osub_t *s, const uint8_t oid[ID_OBJECT_SIZE])
{
    osub_watch_t *w = watch_of(idtab_find(s->watches, (const id_object_t *)oid));
    if (!w)
        return false;
    osub_release(s, w);
    return true;
}

size_t osub_owner_died(osub_t *s, const uint8_t worker_id[ID_UNIQUE_SIZE])
{
    osub_owner_t *o = osub_find(s, worker_id);
    if (!o)
        return 0;
    size_t n = o->count;
    osub_owner_dead(s, o, "its worker died");
    return n;
}

size_t osub_node_died(osub_t *s, const uint8_t node_id[ID_UNIQUE_SIZE])
{
    size_t n = 0;
    for (osub_owner_t *o = s->owners; o;) {
        osub_owner_t *next = o->next;
        if (memcmp(o->node_id, node_id, ID_UNIQUE_SIZE) == 0) {
            n += o->count;
            osub_owner_dead(s, o, "its node died");
        }
        o = next;
    }
    return n;
}

size_t osub_watched(const osub_t *s)
{
    return idtab_count(s->watches);
}

osub_t *osub_create(loop_t *loop, cq_bridge_t *bridge, const uint8_t node_id[ID_UNIQUE_SIZE],
                    const char *node_ip, int node_port, osub_released_fn released, void *ctx)
{
    osub_t *s = xcalloc(1, sizeof *s);
    s->loop = loop;
    s->bridge = bridge;
    memcpy(s->node_id, node_id, ID_UNIQUE_SIZE);
    s->node_ip = strdup(node_ip);
    s->node_port = node_port;
    s->released = released;
    s->ctx = ctx;
    s->watches = idtab_xcreate();
    return s;
}

void osub_destroy(osub_t *s)
{
    if (!s)
        return;
    while (s->owners)
        osub_owner_free(s, s->owners);
    idtab_destroy(s->watches);
    free(s->node_ip);
    free(s);
}
