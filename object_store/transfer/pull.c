#include "object_store/transfer/pull.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/list.h"
#include "common/log.h"
#include "common/u64map.h"
#include "object_store/idtab.h"
#include "object_store/plasma_proto.h"

/* Locate again this often while the owner knows no copy (doubling). */
#define PULL_LOCATE_MIN_MS 100
#define PULL_LOCATE_MAX_MS 1000
/* Owner calls that fail in a row before the object is given up. */
#define PULL_LOCATE_ATTEMPTS 5
#define PULL_MAX_RETRY_SHIFT 10

typedef struct pull_obj {
    idtab_node_t node; /* keyed by the object id */
    ray_addr_t owner;
    uint32_t bundles; /* bundles that need it */
    uint32_t wanted_by[PULL_PRIORITIES]; /* ... of each priority */
    bool local;       /* sealed here: nothing left to do */
    /* what the owner said */
    id_node_t *locs;
    size_t nlocs;
    uint64_t size; /* 0: not known */
    bool located;
    bool pending_creation;
    bool locate_inflight;
    bool following;   /* ops.locate accepted: ops.forget when done */
    uint32_t locate_failures;
    uint64_t next_locate_ms;
    uint64_t locate_delay_ms;
    uint64_t no_copy_since_ms; /* 0: a copy was known at the last look */
    /* asking holders */
    bool admitted;
    uint32_t retries;
    uint64_t next_request_ms;
    /* receiving: an unsealed object in the store */
    bool receiving;
    uint8_t *buf;
    uint64_t total, meta;
    uint32_t nchunks, got;
    uint8_t *seen; /* bitmap of chunks in */
    uint64_t last_chunk_ms;
    uint64_t no_room_since_ms; /* 0: not refused room */
} pull_obj_t;

typedef struct pull_bundle_rec {
    list_t link; /* in p->queues[prio], oldest first */
    uint64_t handle;
    pull_priority_t prio;
    size_t n;
    pull_obj_t **objs;
} pull_bundle_rec_t;

struct pull {
    loop_t *loop;
    store_t *store;
    pull_options_t opts;
    pull_ops_t ops;
    void *ctx;
    idtab_t *objects;
    u64map_t *bundles; /* handle -> pull_bundle_rec_t */
    list_t queues[PULL_PRIORITIES];
    uint64_t next_handle;
    uint64_t timer;
    size_t receiving;
    uint64_t receiving_bytes; /* sum of their sizes: they keep their place */
    bool stopped;
};

static pull_obj_t *obj_of(idtab_node_t *n) { return (pull_obj_t *)n; }

static pull_obj_t *pull_find(const pull_t *p, const id_object_t *id)
{
    idtab_node_t *n = idtab_find(p->objects, id);
    return n ? obj_of(n) : NULL;
}

static void pull_tick(loop_t *loop, uint64_t id, void *data);

static void pull_arm(pull_t *p)
{
    if (!p->timer && !p->stopped && idtab_count(p->objects) > 0)
        p->timer = loop_add_timer(p->loop, p->opts.tick_ms, pull_tick, p);
}

/* Run the next tick at once (still from the loop, never inside a call
 * that delivered news): a get waits on it. */
static void pull_soon(pull_t *p)
{
    if (p->stopped)
        return;
    if (p->timer)
        loop_cancel_timer(p->loop, p->timer);
    p->timer = loop_add_timer(p->loop, 0, pull_tick, p);
}

/* ---- the receive buffer ------------------------------------------------- */

static void recv_drop(pull_t *p, pull_obj_t *o)
{
    if (!o->receiving)
        return;
    store_abort_local(p->store, &o->node.id);
    free(o->seen);
    o->seen = NULL;
    o->buf = NULL;
    o->receiving = false;
    o->got = o->nchunks = 0;
    p->receiving--;
    p->receiving_bytes -= o->total;
}

/* Locations of this object are of no more use here. */
static void obj_unfollow(pull_t *p, pull_obj_t *o)
{
    if (!o->following)
        return;
    o->following = false;
    if (p->ops.forget)
        p->ops.forget(p->ctx, &o->owner, &o->node.id);
}

static void obj_free(pull_t *p, pull_obj_t *o)
{
    obj_unfollow(p, o);
    recv_drop(p, o);
    idtab_remove(p->objects, &o->node);
    free(o->locs);
    free(o);
}

static void obj_unref(pull_t *p, pull_obj_t *o)
{
    if (--o->bundles == 0)
        obj_free(p, o);
}

/* The object is here (sealed by us or by anyone else). */
static void obj_now_local(pull_t *p, pull_obj_t *o)
{
    if (o->receiving) {
        free(o->seen);
        o->seen = NULL;
        o->buf = NULL;
        o->receiving = false;
        p->receiving--;
        p->receiving_bytes -= o->total;
    }
    o->local = true;
    obj_unfollow(p, o);
}

/* Give up on an object: store an error object in its place, which wakes
 * every getter with the error.  An object that turned up meanwhile stays. */
static void obj_fail(pull_t *p, pull_obj_t *o, int error_type)
{
    if (o->local)
        return;
    recv_drop(p, o);
    obj_unfollow(p, o);
    char meta[16];
    int len = snprintf(meta, sizeof meta, "%d", error_type);
    char hex[ID_HEX_BUF];
    /* An owner that let the object go (the program dropped it while we
     * fetched) or died is routine, as stock logs it; a timeout is not. */
    if (error_type == PULL_ERROR_FETCH_TIMED_OUT)
        log_warn("cannot fetch object %s: no node could give it in time", ID_TO_HEX(&o->node.id, hex));
    else
        log_info("cannot fetch object %s: %s", ID_TO_HEX(&o->node.id, hex),
                 error_type == PULL_ERROR_OWNER_DIED    ? "its owner died"
                 : error_type == PULL_ERROR_OUT_OF_DISK ? "the local disk is full"
                                                        : "its owner no longer has it");
    ray_addr_t addr = o->owner;
    id_object_t id = o->node.id;
    o->local = true;
    /* The seal wakes waiters whose callbacks may cancel bundles and free o. */
    store_owner_t owner = {.node_id = addr.node_id, .ip = addr.ip, .port = addr.port, .worker_id = addr.worker_id};
    int rc = store_put_local(p->store, &id, NULL, 0, meta, (uint64_t)len, &owner, PLASMA_SOURCE_ERROR_STORED_BY_RAYLET);
    if (rc != 0 && rc != -EEXIST)
        log_warn("cannot store the error for object %s: %d", hex, rc);
}

/* ---- bundles ----------------------------------------------------------- */

uint64_t pull_bundle(pull_t *p, pull_priority_t prio, const id_object_t *ids, const ray_addr_t *owners, size_t n)
{
    if (p->stopped || prio >= PULL_PRIORITIES)
        return 0;
    pull_bundle_rec_t *b = xcalloc(1, sizeof *b);
    b->objs = xcalloc(n ? n : 1, sizeof *b->objs);
    b->prio = prio;
    for (size_t i = 0; i < n; i++) {
        if (store_contains(p->store, &ids[i]))
            continue;
        pull_obj_t *o = pull_find(p, &ids[i]);
        if (!o) {
            o = xcalloc(1, sizeof *o);
            o->node.id = ids[i];
            o->owner = owners[i];
            o->locate_delay_ms = PULL_LOCATE_MIN_MS;
            idtab_insert(p->objects, &o->node);
        } else if (!ray_addr_reachable(&o->owner) && ray_addr_reachable(&owners[i])) {
            o->owner = owners[i];
        }
        bool dup = false;
        for (size_t k = 0; k < b->n && !dup; k++)
            dup = b->objs[k] == o;
        if (dup)
            continue;
        o->bundles++;
        o->wanted_by[prio]++;
        b->objs[b->n++] = o;
    }
    if (b->n == 0) {
        free(b->objs);
        free(b);
        return 0;
    }
    b->handle = ++p->next_handle;
    u64map_put(p->bundles, b->handle, b);
    list_insert_tail(&p->queues[prio], &b->link);
    /* Start now rather than at the next tick: a get is latency-bound. */
    if (p->timer) {
        loop_cancel_timer(p->loop, p->timer);
        p->timer = 0;
    }
    pull_tick(p->loop, 0, p);
    return b->handle;
}

void pull_cancel(pull_t *p, uint64_t handle)
{
    void *v;
    if (handle == 0 || !u64map_get(p->bundles, handle, &v))
        return;
    pull_bundle_rec_t *b = v;
    u64map_del(p->bundles, handle);
    list_remove(&b->link);
    for (size_t i = 0; i < b->n; i++) {
        b->objs[i]->wanted_by[b->prio]--;
        obj_unref(p, b->objs[i]);
    }
    free(b->objs);
    free(b);
}

/* Ask the owner again after the current delay, and double it (to a cap);
 * an owner that sends its changes is asked again only as a safety net. */
static void locate_later(pull_t *p, pull_obj_t *o, uint64_t now)
{
    if (p->opts.locations_pushed && o->following) {
        o->next_locate_ms = now + p->opts.retry_ms;
        return;
    }
    o->next_locate_ms = now + o->locate_delay_ms;
    o->locate_delay_ms = o->locate_delay_ms * 2 > PULL_LOCATE_MAX_MS ? PULL_LOCATE_MAX_MS : o->locate_delay_ms * 2;
}

/* Send a Pull to a copy at random; the next one waits retry_ms << retries. */
static int ask_a_holder(pull_t *p, pull_obj_t *o, uint64_t now)
{
    uint32_t shift = o->retries < PULL_MAX_RETRY_SHIFT ? o->retries : PULL_MAX_RETRY_SHIFT;
    o->next_request_ms = now + (p->opts.retry_ms << shift);
    o->retries++;
    return p->ops.request(p->ctx, &o->locs[(size_t)rand() % o->nlocs], &o->node.id);
}

/* ---- what owners say ---------------------------------------------------- */

void pull_on_locations(pull_t *p, const id_object_t *oid, const pull_locations_t *loc)
{
    pull_obj_t *o = pull_find(p, oid);
    if (!o)
        return;
    o->locate_inflight = false;
    o->locate_failures = 0;
    if (o->local)
        return;
    if (loc->ref_removed) {
        obj_fail(p, o, PULL_ERROR_OBJECT_DELETED);
        return;
    }
    free(o->locs);
    o->locs = NULL;
    o->nlocs = 0;
    if (loc->count) {
        o->locs = xcalloc(loc->count, sizeof *o->locs);
        for (size_t i = 0; i < loc->count; i++)
            if (memcmp(&loc->nodes[i], &p->opts.self, sizeof p->opts.self) != 0)
                o->locs[o->nlocs++] = loc->nodes[i];
    }
    if (loc->object_size)
        o->size = loc->object_size;
    o->located = true;
    o->pending_creation = loc->pending_creation;
    uint64_t now = loop_now_ms(p->loop);
    /* No copy in memory anywhere but a spilled one: the node that spilled
     * it restores it, here or when asked to push it. */
    if (o->nlocs == 0 && loc->spilled) {
        if (memcmp(&loc->spilled_node, &p->opts.self, sizeof p->opts.self) == 0) {
            if (p->ops.restore && p->ops.restore(p->ctx, oid) == 0) {
                o->no_copy_since_ms = 0;
                locate_later(p, o, now);
                pull_arm(p);
                return;
            }
        } else {
            o->locs = xcalloc(1, sizeof *o->locs);
            o->locs[o->nlocs++] = loc->spilled_node;
        }
    }
    if (o->nlocs > 0) {
        o->no_copy_since_ms = 0;
        o->locate_delay_ms = PULL_LOCATE_MIN_MS;
        /* Ask the owner again only if this copy does not come. */
        o->next_locate_ms = now + p->opts.retry_ms;
        pull_soon(p);
        return;
    } else {
        if (!o->no_copy_since_ms && !o->pending_creation)
            o->no_copy_since_ms = now;
        if (o->pending_creation)
            o->no_copy_since_ms = 0;
        locate_later(p, o, now);
    }
    pull_arm(p);
}

void pull_on_locate_failed(pull_t *p, const id_object_t *oid, bool owner_gone)
{
    pull_obj_t *o = pull_find(p, oid);
    if (!o)
        return;
    o->locate_inflight = false;
    /* The owner's side may be gone with it: follow afresh next time. */
    obj_unfollow(p, o);
    if (owner_gone || ++o->locate_failures >= PULL_LOCATE_ATTEMPTS) {
        obj_fail(p, o, PULL_ERROR_OWNER_DIED);
        return;
    }
    locate_later(p, o, loop_now_ms(p->loop));
    pull_arm(p);
}

void pull_node_removed(pull_t *p, const id_node_t *node)
{
    for (idtab_node_t *n = idtab_first(p->objects); n; n = idtab_next(p->objects, n)) {
        pull_obj_t *o = obj_of(n);
        for (size_t i = 0; i < o->nlocs; i++) {
            if (memcmp(&o->locs[i], node, sizeof *node) == 0) {
                o->locs[i] = o->locs[--o->nlocs];
                /* Ask the owner again at once: it may know a new copy, or
                 * be making one. */
                o->next_locate_ms = 0;
                o->next_request_ms = 0;
                break;
            }
        }
    }
}

/* ---- chunks ------------------------------------------------------------- */

static uint32_t chunk_count(uint64_t total, uint64_t chunk)
{
    return (uint32_t)((total + chunk - 1) / chunk);
}

/* Fresh store pages otherwise fault in one by one as a chunk is copied
 * (in a 1 GB transfer into a new region that is a fifth of the receiver's
 * time); one call asks the kernel for the whole range.  Best effort: a
 * kernel without MADV_POPULATE_WRITE says EINVAL and the copy faults as
 * before.  Neighbouring bytes on the edge pages are untouched. */
static void prefault(uint8_t *dst, size_t len)
{
    static uintptr_t page;
    if (!page) {
        long ps = sysconf(_SC_PAGESIZE);
        page = ps > 0 ? (uintptr_t)ps : 4096;
    }
    uintptr_t start = (uintptr_t)dst & ~(page - 1);
    uintptr_t end = ((uintptr_t)dst + len + page - 1) & ~(page - 1);
    if (len > 0)
        (void)madvise((void *)start, end - start, MADV_POPULATE_WRITE);
}

int pull_on_chunk(pull_t *p, const transfer_chunk_t *c)
{
    pull_obj_t *o = pull_find(p, &c->id);
    if (!o || o->local)
        return -ENOENT;
    uint64_t cs = p->opts.chunk_size;
    if (c->total_size == 0 || c->metadata_size > c->total_size || c->total_size / cs >= UINT32_MAX)
        return -EINVAL;
    if (o->receiving && (o->total != c->total_size || o->meta != c->metadata_size)) {
        /* Another copy of a different size (a re-executed task that is not
         * deterministic): start over with the newcomer's. */
        recv_drop(p, o);
    }
    uint32_t n = chunk_count(c->total_size, cs);
    if (c->index >= n)
        return -ERANGE;
    uint64_t off = (uint64_t)c->index * cs;
    uint64_t want = c->total_size - off < cs ? c->total_size - off : cs;
    if (c->len != want)
        return -EMSGSIZE;
    if (!o->receiving) {
        uint8_t *buf;
        store_owner_t owner = {.node_id = c->owner.node_id,
                               .ip = c->owner.ip,
                               .port = c->owner.port,
                               .worker_id = c->owner.worker_id};
        uint64_t now = loop_now_ms(p->loop);
        /* A get or a task needs the object; a ray.wait only asks after it,
         * so it gives the store twice as long to make room on its own. */
        bool needed = o->wanted_by[PULL_GET] > 0 || o->wanted_by[PULL_TASK_ARGS] > 0;
        uint64_t grace = needed ? p->opts.no_room_grace_ms : 2 * p->opts.no_room_grace_ms;
        bool waited = o->no_room_since_ms && now - o->no_room_since_ms >= grace;
        int rc = store_create_pulled(p->store, &c->id, c->total_size - c->metadata_size, c->metadata_size, &owner,
                                     waited, &buf);
        if (rc == -EEXIST)
            return -ENOENT; /* someone else is making it here */
        if (rc == -ENOSPC) {
            /* The disk is too full to make room: the getters get
             * OutOfDiskError rather than a wait that cannot end (Ray). */
            obj_fail(p, o, PULL_ERROR_OUT_OF_DISK);
            return -ENOSPC;
        }
        if (rc != 0) {
            if (!o->no_room_since_ms) {
                o->no_room_since_ms = now ? now : 1;
                /* Ask for it again as soon as it may fall back. */
                if (now + grace < o->next_request_ms)
                    o->next_request_ms = now + grace;
            }
            return -ENOMEM;
        }
        o->no_room_since_ms = 0;
        o->receiving = true;
        o->buf = buf;
        o->total = c->total_size;
        o->meta = c->metadata_size;
        o->nchunks = n;
        o->got = 0;
        o->seen = xcalloc((n + 7) / 8, 1);
        p->receiving++;
        p->receiving_bytes += o->total;
    }
    if (o->seen[c->index / 8] & (1u << (c->index % 8)))
        return -EALREADY;
    o->seen[c->index / 8] |= (uint8_t)(1u << (c->index % 8));
    uint8_t *dst = o->buf + off;
    prefault(dst, c->len);
    for (size_t i = 0; i < c->iovcnt; i++) {
        memcpy(dst, c->iov[i].iov_base, c->iov[i].iov_len);
        dst += c->iov[i].iov_len;
    }
    o->last_chunk_ms = loop_now_ms(p->loop);
    if (++o->got < o->nchunks)
        return 0;
    id_object_t id = o->node.id;
    obj_now_local(p, o);
    int rc = store_seal_local(p->store, &id);
    if (rc != 0) {
        char hex[ID_HEX_BUF];
        log_warn("cannot seal pulled object %s: %d", ID_TO_HEX(&id, hex), rc);
    }
    return 0;
}

/* ---- the tick: locate, admit, ask ------------------------------------- */

static uint64_t pull_quota(const pull_t *p)
{
    store_stats_t st;
    store_get_stats(p->store, &st);
    /* Evictable objects count as free: the store makes room from them. */
    uint64_t busy = st.bytes_used > st.bytes_evictable ? st.bytes_used - st.bytes_evictable : 0;
    return st.capacity > busy ? st.capacity - busy : 0;
}

/* Failures found during a tick are stored after it: storing the error
 * object wakes waiters, whose callbacks may cancel bundles under the walk. */
typedef struct pull_failure {
    id_object_t id;
    int error_type;
} pull_failure_t;

typedef struct pull_walk {
    uint64_t now, quota, admitted;
    pull_failure_t *failed;
    size_t nfailed, cap;
} pull_walk_t;

static void walk_fail(pull_walk_t *w, pull_obj_t *o, int error_type)
{
    if (w->nfailed == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 8;
        w->failed = xrealloc(w->failed, w->cap * sizeof *w->failed);
    }
    w->failed[w->nfailed++] = (pull_failure_t){.id = o->node.id, .error_type = error_type};
    o->next_locate_ms = UINT64_MAX; /* once */
}

static void obj_step(pull_t *p, pull_obj_t *o, pull_walk_t *w)
{
    uint64_t now = w->now;
    if (o->local)
        return;
    if (store_contains(p->store, &o->node.id)) {
        obj_now_local(p, o);
        return;
    }
    if (!o->locate_inflight && now >= o->next_locate_ms) {
        if (!ray_addr_reachable(&o->owner)) {
            walk_fail(w, o, PULL_ERROR_OWNER_DIED);
            return;
        }
        /* Until the owner answers, look again only after a full retry. */
        o->next_locate_ms = now + p->opts.retry_ms;
        if (p->ops.locate(p->ctx, &o->owner, &o->node.id) == 0)
            o->locate_inflight = o->following = true;
    }
    if (o->located && o->nlocs == 0 && o->no_copy_since_ms && !o->pending_creation &&
        now - o->no_copy_since_ms >= p->opts.fetch_fail_ms) {
        o->no_copy_since_ms = 0;
        walk_fail(w, o, PULL_ERROR_FETCH_TIMED_OUT);
        return;
    }
    if (!o->located || o->nlocs == 0)
        return;
    uint64_t size = o->size ? o->size : 1;
    if (!o->admitted) {
        if (w->admitted > 0 && w->admitted + size > w->quota)
            return; /* waits for room; the first object always goes */
        o->admitted = true;
        o->next_request_ms = now;
        o->retries = 0;
    }
    w->admitted += size;
    if (now < o->next_request_ms)
        return;
    if (ask_a_holder(p, o, now) != 0)
        o->next_request_ms = now; /* that node is unknown here: try another next tick */
}

static void pull_tick(loop_t *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    pull_t *p = data;
    p->timer = 0;
    if (p->stopped)
        return;
    /* Receiving objects keep their place: count them first. */
    pull_walk_t w = {.now = loop_now_ms(p->loop), .quota = pull_quota(p), .admitted = p->receiving_bytes};
    for (int prio = 0; prio < PULL_PRIORITIES; prio++) {
        LIST_FOREACH_ENTRY(pull_bundle_rec_t, b, &p->queues[prio], link) {
            for (size_t i = 0; i < b->n; i++) {
                pull_obj_t *o = b->objs[i];
                if (!o->receiving) {
                    obj_step(p, o, &w);
                } else if (w.now >= o->next_request_ms && w.now - o->last_chunk_ms >= p->opts.retry_ms &&
                           o->nlocs > 0) {
                    /* Chunks stopped coming (a slow but steady stream is
                     * left alone: asking again restarts the sender): ask
                     * again, any copy. */
                    ask_a_holder(p, o, w.now);
                }
            }
        }
    }
    for (size_t i = 0; i < w.nfailed; i++) {
        pull_obj_t *o = pull_find(p, &w.failed[i].id);
        if (o)
            obj_fail(p, o, w.failed[i].error_type);
    }
    free(w.failed);
    pull_arm(p);
}

/* ---- lifecycle ---------------------------------------------------------- */

pull_t *pull_create(loop_t *loop, store_t *store, const pull_options_t *opts, const pull_ops_t *ops, void *ctx)
{
    pull_t *p = xcalloc(1, sizeof *p);
    p->loop = loop;
    p->store = store;
    p->opts = *opts;
    if (p->opts.chunk_size == 0)
        p->opts.chunk_size = 5u << 20;
    if (p->opts.tick_ms == 0)
        p->opts.tick_ms = 100;
    p->ops = *ops;
    p->ctx = ctx;
    p->objects = idtab_xcreate();
    p->bundles = u64map_create();
    for (int i = 0; i < PULL_PRIORITIES; i++)
        list_init(&p->queues[i]);
    return p;
}

void pull_stop(pull_t *p)
{
    if (!p || p->stopped)
        return;
    p->stopped = true;
    if (p->timer)
        loop_cancel_timer(p->loop, p->timer);
    p->timer = 0;
    size_t pos = 0;
    uint64_t key;
    void *v;
    while (u64map_count(p->bundles) > 0) {
        pos = 0;
        if (!u64map_next(p->bundles, &pos, &key, &v))
            break;
        pull_cancel(p, key);
    }
}

void pull_destroy(pull_t *p)
{
    if (!p)
        return;
    pull_stop(p);
    u64map_destroy(p->bundles);
    idtab_destroy(p->objects);
    free(p);
}

size_t pull_bundle_count(const pull_t *p) { return u64map_count(p->bundles); }
size_t pull_object_count(const pull_t *p) { return idtab_count(p->objects); }
size_t pull_receiving_count(const pull_t *p) { return p->receiving; }
