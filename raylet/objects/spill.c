#include "raylet/objects/spill.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/list.h"
#include "common/log.h"
#include "common/rpc.h"
#include "object_store/idtab.h"
#include "proto/ray_proto.h"
#include "raylet/worker/core_worker_client.h"

/* URLs per DeleteSpilledObjects (free_objects_batch_size), and how often a
 * failed one is tried (as the stock raylet). */
#define SPILL_DELETE_BATCH 100
#define SPILL_DELETE_ATTEMPTS 3

typedef enum {
    SPILL_OBJ_PINNED,  /* in memory, pinned: a candidate */
    SPILL_OBJ_PENDING, /* in a SpillObjects call */
    SPILL_OBJ_SPILLED, /* in a file (and maybe still in memory, evictable) */
} spill_obj_state_t;

/* A file written by one SpillObjects call: deleted when the last object in
 * it is released. */
typedef struct spill_file {
    size_t refs;
} spill_file_t;

typedef struct spill_obj {
    idtab_node_t node;
    ray_addr_t owner;
    uint64_t size; /* data + metadata */
    spill_obj_state_t state;
    bool released;  /* let go while its spill was in flight */
    bool restoring; /* queued for or in a RestoreSpilledObjects */
    char *url;      /* SPILLED: where */
    spill_file_t *file;
} spill_obj_t;

typedef enum { SPILL_CALL_SPILL, SPILL_CALL_RESTORE, SPILL_CALL_DELETE } spill_call_kind_t;

/* Work for an I/O worker: queued until one is ready, then in flight on a
 * channel of its own (so an I/O worker's death fails the call instead of
 * silencing it). */
typedef struct spill_call {
    list_t link; /* s->waiting or s->inflight */
    spill_t *s;
    spill_call_kind_t kind;
    worker_t *w;          /* the worker doing it; NULL once it died */
    rpc_channel_t *channel;
    uint64_t started_ms;
    id_object_t *ids;     /* SPILL, RESTORE */
    size_t n;
    char **urls;          /* DELETE */
    size_t nurls;
    uint64_t bytes;       /* RESTORE: the object's size, as counted pending */
    unsigned attempts;
} spill_call_t;

struct spill {
    spill_options_t o;
    char *node_ip;
    spill_ops_t ops;
    void *ctx;
    idtab_t *objects;
    list_t waiting;  /* spill_call_t without a worker yet, oldest first */
    /* Files to delete, gathered until the next flush (every
     * free_objects_period_milliseconds, or when full), as stock batches
     * them; not on any list until then.  NULL when none. */
    spill_call_t *delete_batch;
    list_t inflight;
    size_t spills_active; /* SPILL calls waiting or in flight */
    uint64_t check_timer, soon_timer;
    bool stopped;
    uint64_t last_spill_done_ms, last_restore_done_ms;
    spill_stats_t st;
};

static spill_obj_t *spill_find(const spill_t *s, const id_object_t *oid)
{
    idtab_node_t *n = idtab_find(s->objects, oid);
    return n ? (spill_obj_t *)((char *)n - offsetof(spill_obj_t, node)) : NULL;
}

static void spill_obj_free(spill_t *s, spill_obj_t *obj)
{
    idtab_remove(s->objects, &obj->node);
    free(obj->url);
    free(obj);
}

static void spill_call_free(spill_call_t *c)
{
    list_remove(&c->link);
    if (c->channel)
        rpc_channel_destroy(c->channel);
    for (size_t i = 0; i < c->nurls; i++)
        free(c->urls[i]);
    free(c->urls);
    free(c->ids);
    free(c);
}

static spill_call_t *spill_call_new(spill_t *s, spill_call_kind_t kind)
{
    spill_call_t *c = xcalloc(1, sizeof *c);
    c->s = s;
    c->kind = kind;
    list_insert_tail(&s->waiting, &c->link);
    return c;
}

static void spill_pump(spill_t *s);

/* ---- deleting ---------------------------------------------------------------- */

/* The gathered deletes become work for a spill worker. */
static void spill_flush_deletes(spill_t *s)
{
    spill_call_t *c = s->delete_batch;
    if (!c)
        return;
    s->delete_batch = NULL;
    list_insert_tail(&s->waiting, &c->link);
}

static void spill_queue_delete(spill_t *s, char *url)
{
    spill_call_t *c = s->delete_batch;
    if (!c) {
        c = xcalloc(1, sizeof *c);
        c->s = s;
        c->kind = SPILL_CALL_DELETE;
        list_init(&c->link);
        c->urls = xcalloc(SPILL_DELETE_BATCH, sizeof *c->urls);
        s->delete_batch = c;
    }
    c->urls[c->nurls++] = url;
    if (c->nurls == SPILL_DELETE_BATCH || s->o.check_period_ms == 0)
        spill_flush_deletes(s);
}

/* The object's spilled bytes are no longer needed by it. */
static void spill_drop_spilled(spill_t *s, spill_obj_t *obj)
{
    s->st.spilled_bytes_current -= obj->size;
    s->st.spilled_objects_current--;
    if (obj->file && --obj->file->refs == 0) {
        free(obj->file);
        s->st.files--;
        /* The URL names the file; the worker drops the offset part. */
        spill_queue_delete(s, obj->url);
        obj->url = NULL;
    }
    obj->file = NULL;
}

/* ---- spilling ---------------------------------------------------------------- */

/* Gather the next batch: pinned primaries no client holds, up to the
 * count and size caps.  A batch smaller than min_spilling_size waits while
 * another spill is under way (its end looks again, with more to fuse),
 * unless the caps cut it short.  Returns the call, or NULL. */
static spill_call_t *spill_gather(spill_t *s)
{
    size_t cap = s->o.max_fused_object_count ? s->o.max_fused_object_count : 1;
    id_object_t *ids = NULL;
    size_t n = 0, alloc = 0;
    uint64_t bytes = 0;
    bool capped = false;
    for (idtab_node_t *nd = idtab_first(s->objects); nd; nd = idtab_next(s->objects, nd)) {
        spill_obj_t *obj = (spill_obj_t *)((char *)nd - offsetof(spill_obj_t, node));
        if (obj->state != SPILL_OBJ_PINNED || !store_is_spillable(s->o.store, &obj->node.id))
            continue;
        if (n == cap || (s->o.max_file_size > 0 && n > 0 && bytes + obj->size > (uint64_t)s->o.max_file_size)) {
            capped = true;
            break;
        }
        if (n == alloc) {
            alloc = alloc ? alloc * 2 : 16;
            ids = xrealloc(ids, alloc * sizeof *ids);
        }
        ids[n++] = obj->node.id;
        bytes += obj->size;
    }
    if (n == 0 || (!capped && bytes < s->o.min_spilling_size && s->spills_active > 0)) {
        free(ids);
        return NULL;
    }
    spill_call_t *c = spill_call_new(s, SPILL_CALL_SPILL);
    c->ids = ids;
    c->n = n;
    c->started_ms = loop_now_ms(s->o.loop);
    for (size_t i = 0; i < n; i++) {
        spill_obj_t *obj = spill_find(s, &ids[i]);
        obj->state = SPILL_OBJ_PENDING;
        s->st.pinned_bytes -= obj->size;
        s->st.pending_spill_bytes += obj->size;
        s->st.pending_spill_objects++;
    }
    s->spills_active++;
    log_debug("spilling %zu objects, %llu bytes", n, (unsigned long long)bytes);
    return c;
}

/* Start as many batches as there are I/O workers for. */
static void spill_some(spill_t *s)
{
    while (s->spills_active < s->o.max_io_workers && spill_gather(s))
        ;
    spill_pump(s);
}

static bool spill_over_threshold(spill_t *s)
{
    store_stats_t st;
    store_get_stats(s->o.store, &st);
    double primary = (double)(s->st.pinned_bytes + s->st.pending_spill_bytes);
    return st.capacity > 0 && primary >= s->o.threshold * (double)st.capacity;
}

static void spill_check(spill_t *s)
{
    if (s->o.enabled && !s->stopped && spill_over_threshold(s))
        spill_some(s);
}

static void spill_on_soon(loop_t *loop, uint64_t id, void *data)
{
    spill_t *s = data;
    s->soon_timer = 0;
    spill_check(s);
}

static void spill_on_check_timer(loop_t *loop, uint64_t id, void *data)
{
    spill_t *s = data;
    spill_flush_deletes(s);
    spill_check(s);
    spill_pump(s);
    s->check_timer = loop_add_timer(loop, s->o.check_period_ms, spill_on_check_timer, s);
}

/* The end of one SpillObjects: the first `done` objects are in files (the
 * reply's URLs are a prefix of the request); the rest go back to pinned. */
static void spill_finish_spill(spill_t *s, spill_call_t *c, char **urls, size_t done)
{
    uint64_t now = loop_now_ms(s->o.loop);
    spill_file_t *file = NULL;
    const char *file_path = NULL;
    size_t file_path_len = 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < c->n; i++) {
        spill_obj_t *obj = spill_find(s, &c->ids[i]);
        if (!obj || obj->state != SPILL_OBJ_PENDING)
            continue;
        s->st.pending_spill_bytes -= obj->size;
        s->st.pending_spill_objects--;
        if (i >= done) {
            if (obj->released) {
                spill_obj_free(s, obj);
                continue;
            }
            obj->state = SPILL_OBJ_PINNED;
            s->st.pinned_bytes += obj->size;
            continue;
        }
        /* Objects of one call share a file unless the storage says
         * otherwise: group by the URL's path. */
        const char *q = strchr(urls[i], '?');
        size_t plen = q ? (size_t)(q - urls[i]) : strlen(urls[i]);
        if (!file || plen != file_path_len || memcmp(urls[i], file_path, plen) != 0) {
            file = xcalloc(1, sizeof *file);
            s->st.files++;
            file_path = urls[i];
            file_path_len = plen;
        }
        file->refs++;
        obj->file = file;
        obj->url = xstrdup(urls[i]);
        obj->state = SPILL_OBJ_SPILLED;
        bytes += obj->size;
        s->st.spilled_bytes_total += obj->size;
        s->st.spilled_objects_total++;
        s->st.spilled_bytes_current += obj->size;
        s->st.spilled_objects_current++;
        /* Memory is given back: the copy stays readable until evicted. */
        while (store_unpin(s->o.store, &obj->node.id) == 0)
            ;
        if (obj->released) {
            spill_drop_spilled(s, obj);
            spill_obj_free(s, obj);
        } else if (s->ops.spilled) {
            s->ops.spilled(s->ctx, &obj->node.id, &obj->owner, obj->url);
        }
    }
    if (done > 0) {
        uint64_t from = c->started_ms > s->last_spill_done_ms ? c->started_ms : s->last_spill_done_ms;
        s->st.spill_time_total_s += (double)(now - from) / 1000.0;
        s->last_spill_done_ms = now;
        log_info("spilled %zu objects, %llu MiB", done, (unsigned long long)(bytes >> 20));
    }
}

/* ---- calls ------------------------------------------------------------------- */

static void spill_on_reply(void *ctx, const rpc_status_t *st, ProtobufCMessage *reply)
{
    spill_call_t *c = ctx;
    spill_t *s = c->s;
    if (c->w)
        pool_io_release(s->o.pool, c->w);
    c->w = NULL;
    bool ok = st->code == GRPC_STATUS_OK;
    switch (c->kind) {
    case SPILL_CALL_SPILL: {
        const Ray__Rpc__SpillObjectsReply *r = ok ? (const Ray__Rpc__SpillObjectsReply *)reply : NULL;
        size_t done = r ? r->n_spilled_objects_url : 0;
        if (done > c->n)
            done = 0; /* more URLs than objects: trust none of them */
        if (!ok)
            log_warn("spilling %zu objects failed: %s", c->n, st->message);
        else if (done < c->n)
            log_warn("the spill worker stored %zu of %zu objects; the rest stay in memory", done, c->n);
        spill_finish_spill(s, c, r ? r->spilled_objects_url : NULL, done);
        s->spills_active--;
        break;
    }
    case SPILL_CALL_RESTORE: {
        spill_obj_t *obj = spill_find(s, &c->ids[0]);
        if (obj)
            obj->restoring = false;
        s->st.pending_restore_objects--;
        s->st.pending_restore_bytes -= c->bytes;
        if (ok) {
            const Ray__Rpc__RestoreSpilledObjectsReply *r = (const Ray__Rpc__RestoreSpilledObjectsReply *)reply;
            uint64_t now = loop_now_ms(s->o.loop);
            uint64_t from = c->started_ms > s->last_restore_done_ms ? c->started_ms : s->last_restore_done_ms;
            s->st.restore_time_total_s += (double)(now - from) / 1000.0;
            s->last_restore_done_ms = now;
            s->st.restored_bytes_total += r->bytes_restored_total > 0 ? (uint64_t)r->bytes_restored_total : 0;
            s->st.restored_objects_total++;
        } else {
            log_warn("restoring a spilled object failed: %s", st->message);
        }
        break;
    }
    case SPILL_CALL_DELETE:
        if (!ok && ++c->attempts < SPILL_DELETE_ATTEMPTS) {
            log_warn("deleting %zu spill files failed (%s); trying again", c->nurls, st->message);
            rpc_channel_destroy(c->channel);
            c->channel = NULL;
            list_remove(&c->link);
            list_insert_tail(&s->waiting, &c->link);
            spill_pump(s);
            return;
        }
        if (!ok) {
            log_error("could not delete %zu spill files: %s", c->nurls, st->message);
            s->st.failed_deletions += c->nurls;
        }
        break;
    }
    /* The reply belongs to the finished call, not to its channel. */
    spill_call_free(c);
    spill_check(s);
    spill_pump(s);
}

static int spill_send(spill_t *s, spill_call_t *c)
{
    char target[96];
    snprintf(target, sizeof target, "%s:%d", s->node_ip, worker_port(c->w));
    c->channel = rpc_channel_create(s->o.bridge, target);
    if (!c->channel)
        return -ENOMEM;
    int rc = -EINVAL;
    switch (c->kind) {
    case SPILL_CALL_SPILL: {
        Ray__Rpc__ObjectReference *refs = xcalloc(c->n, sizeof *refs);
        Ray__Rpc__ObjectReference **ptrs = xcalloc(c->n, sizeof *ptrs);
        Ray__Rpc__Address *addrs = xcalloc(c->n, sizeof *addrs);
        for (size_t i = 0; i < c->n; i++) {
            spill_obj_t *obj = spill_find(s, &c->ids[i]);
            ray__rpc__object_reference__init(&refs[i]);
            ray__rpc__address__init(&addrs[i]);
            refs[i].object_id.data = c->ids[i].b;
            refs[i].object_id.len = ID_OBJECT_SIZE;
            if (obj) {
                addrs[i].node_id.data = obj->owner.node_id.b;
                addrs[i].node_id.len = ID_UNIQUE_SIZE;
                addrs[i].worker_id.data = obj->owner.worker_id.b;
                addrs[i].worker_id.len = ID_UNIQUE_SIZE;
                addrs[i].ip_address = obj->owner.ip;
                addrs[i].port = obj->owner.port;
            }
            refs[i].owner_address = &addrs[i];
            ptrs[i] = &refs[i];
        }
        Ray__Rpc__SpillObjectsRequest req = RAY__RPC__SPILL_OBJECTS_REQUEST__INIT;
        req.n_object_refs_to_spill = c->n;
        req.object_refs_to_spill = ptrs;
        rc = cwc_spill_objects(c->channel, &req, 0, spill_on_reply, c);
        free(refs);
        free(ptrs);
        free(addrs);
        break;
    }
    case SPILL_CALL_RESTORE: {
        spill_obj_t *obj = spill_find(s, &c->ids[0]);
        if (!obj || !obj->url)
            return -ENOENT;
        ProtobufCBinaryData id = {.data = c->ids[0].b, .len = ID_OBJECT_SIZE};
        Ray__Rpc__RestoreSpilledObjectsRequest req = RAY__RPC__RESTORE_SPILLED_OBJECTS_REQUEST__INIT;
        req.n_spilled_objects_url = 1;
        req.spilled_objects_url = &obj->url;
        req.n_object_ids_to_restore = 1;
        req.object_ids_to_restore = &id;
        rc = cwc_restore_spilled_objects(c->channel, &req, 0, spill_on_reply, c);
        break;
    }
    case SPILL_CALL_DELETE: {
        Ray__Rpc__DeleteSpilledObjectsRequest req = RAY__RPC__DELETE_SPILLED_OBJECTS_REQUEST__INIT;
        req.n_spilled_objects_url = c->nurls;
        req.spilled_objects_url = c->urls;
        rc = cwc_delete_spilled_objects(c->channel, &req, 0, spill_on_reply, c);
        break;
    }
    }
    if (rc == 0)
        c->started_ms = c->kind == SPILL_CALL_SPILL ? c->started_ms : loop_now_ms(s->o.loop);
    return rc;
}

/* Hand waiting work to ready I/O workers, oldest first: spills and deletes
 * to spill workers, restores to restore workers. */
static void spill_pump(spill_t *s)
{
    if (s->stopped)
        return;
    bool no_spiller = false, no_restorer = false;
    for (list_t *n = s->waiting.next, *next; n != &s->waiting; n = next) {
        next = n->next;
        spill_call_t *c = LIST_ENTRY(n, spill_call_t, link);
        worker_type_t type = c->kind == SPILL_CALL_RESTORE ? WORKER_TYPE_RESTORE : WORKER_TYPE_SPILL;
        bool *none = type == WORKER_TYPE_RESTORE ? &no_restorer : &no_spiller;
        if (*none)
            continue;
        c->w = pool_io_take(s->o.pool, type);
        if (!c->w) {
            *none = true;
            continue;
        }
        list_remove(&c->link);
        list_insert_tail(&s->inflight, &c->link);
        if (spill_send(s, c) != 0) {
            /* Fail it as a call would (rolls back, frees). */
            rpc_status_t st = {.code = GRPC_STATUS_INTERNAL, .message = "cannot start the call"};
            spill_on_reply(c, &st, NULL);
            return; /* the lists changed under us: the next event goes on */
        }
    }
}

/* ---- interface --------------------------------------------------------------- */

void spill_track(spill_t *s, const id_object_t *oid, const ray_addr_t *owner)
{
    if (!s || s->stopped || spill_find(s, oid))
        return;
    store_view_t v;
    if (store_read_local(s->o.store, oid, &v) != 0)
        return;
    spill_obj_t *obj = xcalloc(1, sizeof *obj);
    obj->node.id = *oid;
    obj->owner = *owner;
    obj->size = v.data_size + v.metadata_size;
    obj->state = SPILL_OBJ_PINNED;
    idtab_insert(s->objects, &obj->node);
    s->st.pinned_bytes += obj->size;
    spill_on_sealed(s);
}

void spill_release(spill_t *s, const id_object_t *oid)
{
    if (!s)
        return;
    spill_obj_t *obj = spill_find(s, oid);
    if (!obj)
        return;
    switch (obj->state) {
    case SPILL_OBJ_PINNED:
        s->st.pinned_bytes -= obj->size;
        spill_obj_free(s, obj);
        break;
    case SPILL_OBJ_PENDING:
        obj->released = true; /* the spill's end decides */
        break;
    case SPILL_OBJ_SPILLED:
        spill_drop_spilled(s, obj);
        spill_obj_free(s, obj);
        spill_pump(s);
        break;
    }
}

bool spill_on_store_full(spill_t *s, uint64_t bytes_needed)
{
    (void)bytes_needed;
    if (!s || !s->o.enabled || s->stopped)
        return false;
    spill_some(s);
    return s->spills_active > 0;
}

void spill_on_sealed(spill_t *s)
{
    if (!s || !s->o.enabled || s->stopped || s->soon_timer)
        return;
    s->soon_timer = loop_add_timer(s->o.loop, 0, spill_on_soon, s);
}

int spill_restore(spill_t *s, const id_object_t *oid)
{
    if (!s || s->stopped)
        return -ENOENT;
    spill_obj_t *obj = spill_find(s, oid);
    if (!obj || obj->state != SPILL_OBJ_SPILLED || !obj->url)
        return -ENOENT;
    if (obj->restoring || store_contains(s->o.store, oid))
        return 0;
    obj->restoring = true;
    s->st.pending_restore_objects++;
    spill_call_t *c = spill_call_new(s, SPILL_CALL_RESTORE);
    c->ids = xmalloc(sizeof *c->ids);
    c->ids[0] = *oid;
    c->n = 1;
    c->bytes = obj->size;
    s->st.pending_restore_bytes += obj->size;
    spill_pump(s);
    return 0;
}

void spill_io_ready(spill_t *s, worker_type_t type)
{
    (void)type;
    if (s)
        spill_pump(s);
}

void spill_worker_died(spill_t *s, const worker_t *w)
{
    if (!s)
        return;
    /* Its calls fail on their own channels; they must not give it back. */
    LIST_FOREACH_ENTRY(spill_call_t, c, &s->inflight, link)
        if (c->w == w)
            c->w = NULL;
}

void spill_get_stats(const spill_t *s, spill_stats_t *out)
{
    if (!s) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = s->st;
    out->primaries = idtab_count(s->objects);
}

spill_t *spill_create(const spill_options_t *opts, const spill_ops_t *ops, void *ctx)
{
    spill_t *s = xcalloc(1, sizeof *s);
    s->o = *opts;
    s->node_ip = xstrdup(opts->node_ip_address ? opts->node_ip_address : "127.0.0.1");
    s->o.node_ip_address = s->node_ip;
    if (s->o.max_io_workers == 0)
        s->o.max_io_workers = 1;
    if (ops)
        s->ops = *ops;
    s->ctx = ctx;
    s->objects = idtab_xcreate();
    list_init(&s->waiting);
    list_init(&s->inflight);
    if (s->o.enabled && s->o.check_period_ms > 0)
        s->check_timer = loop_add_timer(s->o.loop, s->o.check_period_ms, spill_on_check_timer, s);
    return s;
}

void spill_stop(spill_t *s)
{
    if (!s || s->stopped)
        return;
    s->stopped = true;
    if (s->check_timer)
        loop_cancel_timer(s->o.loop, s->check_timer);
    if (s->soon_timer)
        loop_cancel_timer(s->o.loop, s->soon_timer);
    s->check_timer = s->soon_timer = 0;
    /* Destroying a call's channel silences it. */
    while (!list_empty(&s->inflight))
        spill_call_free(LIST_ENTRY(s->inflight.next, spill_call_t, link));
    while (!list_empty(&s->waiting))
        spill_call_free(LIST_ENTRY(s->waiting.next, spill_call_t, link));
    if (s->delete_batch)
        spill_call_free(s->delete_batch);
    s->delete_batch = NULL;
}

void spill_destroy(spill_t *s)
{
    if (!s)
        return;
    spill_stop(s);
    idtab_node_t *n = idtab_first(s->objects);
    while (n) {
        idtab_node_t *next = idtab_next(s->objects, n);
        spill_obj_t *obj = (spill_obj_t *)((char *)n - offsetof(spill_obj_t, node));
        if (obj->file && --obj->file->refs == 0)
            free(obj->file);
        spill_obj_free(s, obj);
        n = next;
    }
    idtab_destroy(s->objects);
    free(s->node_ip);
    free(s);
}
