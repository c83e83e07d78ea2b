#include "raylet/objects/obj_wait.h"

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/list.h"
#include "common/log.h"
#include "object_store/idtab.h"

/* The waiters of one object id: an entry per (request, position) still
 * waiting for it.  A seal looks its id up here, so its cost is the number
 * of waiters for that object, not of all waits. */
typedef struct owait_key {
    idtab_node_t node; /* ow->keys */
    list_t entries;    /* owait_entry_t */
} owait_key_t;

typedef struct owait_entry {
    list_t link;       /* key->entries; unlinked once found */
    owait_key_t *key;  /* NULL once found */
    owait_req_t *req;
} owait_entry_t;

struct owait_req {
    list_t node; /* ow->reqs, or ow->done while its callback is due */
    owait_t *ow;
    uint8_t (*ids)[ID_OBJECT_SIZE];
    bool *ready;
    owait_entry_t *entries; /* one per id; NULL until the request waits */
    size_t count;
    size_t required;
    size_t found;
    uint64_t timer;
    owait_done_fn done;
    void *ctx;
};

struct owait {
    loop_t *loop;
    owait_contains_fn contains;
    void *contains_ctx;
    list_t reqs; /* owait_req_t waiting, newest first */
    list_t done; /* owait_req_t with enough found, to be called back */
    idtab_t *keys;
    size_t count;
};

static owait_req_t *owait_of(list_t *n) { return LIST_ENTRY(n, owait_req_t, node); }

static void owait_entry_detach(owait_t *ow, owait_entry_t *e)
{
    owait_key_t *k = e->key;
    if (!k)
        return;
    list_remove(&e->link);
    e->key = NULL;
    if (list_empty(&k->entries)) {
        idtab_remove(ow->keys, &k->node);
        free(k);
    }
}

/* Index the ids not yet found. */
static void owait_index(owait_t *ow, owait_req_t *r)
{
    r->entries = xcalloc(r->count ? r->count : 1, sizeof *r->entries);
    for (size_t i = 0; i < r->count; i++) {
        owait_entry_t *e = &r->entries[i];
        e->req = r;
        list_init(&e->link);
        if (r->ready[i])
            continue;
        owait_key_t *k;
        idtab_node_t *n = idtab_find(ow->keys, (const id_object_t *)r->ids[i]);
        if (n) {
            k = LIST_ENTRY(n, owait_key_t, node);
        } else {
            k = xcalloc(1, sizeof *k);
            memcpy(k->node.id.b, r->ids[i], ID_OBJECT_SIZE);
            list_init(&k->entries);
            idtab_insert(ow->keys, &k->node);
        }
        e->key = k;
        list_insert_tail(&k->entries, &e->link);
    }
}

/* Unlink from whichever list holds it and from the index; the caller
 * frees or calls back. */
static void owait_unlink(owait_t *ow, owait_req_t *r)
{
    list_remove(&r->node);
    ow->count--;
    if (r->entries)
        for (size_t i = 0; i < r->count; i++)
            owait_entry_detach(ow, &r->entries[i]);
    if (r->timer)
        loop_cancel_timer(ow->loop, r->timer);
    r->timer = 0;
}

static void owait_free(owait_req_t *r)
{
    free(r->entries);
    free(r->ids);
    free(r->ready);
    free(r);
}

static void owait_unlink_free(owait_t *ow, owait_req_t *r)
{
    owait_unlink(ow, r);
    owait_free(r);
}

static void owait_finish(owait_t *ow, owait_req_t *r, bool timed_out)
{
    /* Unlink before calling out: the callback may start new waits. */
    owait_unlink(ow, r);
    /* Never report more than was asked for, counted in request order:
     * the core worker checks that ray.wait got at most num_returns. */
    for (size_t i = 0, kept = 0; i < r->count; i++)
        if (r->ready[i] && ++kept > r->required)
            r->ready[i] = false;
    r->done(r->ctx, (const uint8_t(*)[ID_OBJECT_SIZE])r->ids, r->ready, r->count, timed_out);
    owait_free(r);
}

static void owait_on_timeout(loop_t *loop, uint64_t id, void *data)
{
    owait_req_t *r = data;
    r->timer = 0; /* fired: nothing to cancel */
    owait_finish(r->ow, r, true);
}

owait_t *owait_create(loop_t *loop, owait_contains_fn contains, void *contains_ctx)
{
    owait_t *ow = xcalloc(1, sizeof *ow);
    ow->loop = loop;
    ow->contains = contains;
    ow->contains_ctx = contains_ctx;
    list_init(&ow->reqs);
    list_init(&ow->done);
    ow->keys = idtab_xcreate();
    return ow;
}

void owait_destroy(owait_t *ow)
{
    if (!ow)
        return;
    while (!list_empty(&ow->reqs))
        owait_unlink_free(ow, owait_of(ow->reqs.next));
    while (!list_empty(&ow->done))
        owait_unlink_free(ow, owait_of(ow->done.next));
    idtab_destroy(ow->keys);
    free(ow);
}

owait_req_t *owait_start(owait_t *ow, const uint8_t (*ids)[ID_OBJECT_SIZE], size_t count,
                         size_t required, int64_t timeout_ms, owait_done_fn done, void *ctx)
{
    owait_req_t *r = xcalloc(1, sizeof *r);
    r->ow = ow;
    r->ids = xmalloc((count ? count : 1) * ID_OBJECT_SIZE);
    r->ready = xcalloc(count, sizeof *r->ready);
    memcpy(r->ids, ids, count * ID_OBJECT_SIZE);
    r->count = count;
    r->required = required > count ? count : required;
    r->done = done;
    r->ctx = ctx;
    for (size_t i = 0; i < count; i++) {
        r->ready[i] = ow->contains(ow->contains_ctx, r->ids[i]);
        if (r->ready[i])
            r->found++;
    }
    list_insert_head(&ow->reqs, &r->node);
    ow->count++;
    if (r->found >= r->required || timeout_ms == 0) {
        owait_finish(ow, r, r->found < r->required);
        return NULL;
    }
    owait_index(ow, r);
    if (timeout_ms > 0)
        r->timer = loop_add_timer(ow->loop, (uint64_t)timeout_ms, owait_on_timeout, r);
    return r;
}

void owait_cancel(owait_t *ow, owait_req_t *r)
{
    if (r)
        owait_unlink_free(ow, r);
}

void owait_cancel_ctx(owait_t *ow, void *ctx)
{
    list_t *heads[] = {&ow->reqs, &ow->done};
    for (size_t h = 0; h < 2; h++) {
        list_t *n, *next;
        LIST_FOREACH_SAFE(n, next, heads[h]) {
            owait_req_t *r = owait_of(n);
            if (r->ctx == ctx)
                owait_unlink_free(ow, r);
        }
    }
}

void owait_on_sealed(owait_t *ow, const uint8_t oid[ID_OBJECT_SIZE])
{
    idtab_node_t *n = idtab_find(ow->keys, (const id_object_t *)oid);
    if (!n)
        return;
    /* Mark every waiter of this id first (the key is done with), moving
     * the requests that now have enough to `done`... */
    owait_key_t *k = LIST_ENTRY(n, owait_key_t, node);
    idtab_remove(ow->keys, &k->node);
    while (!list_empty(&k->entries)) {
        owait_entry_t *e = LIST_ENTRY(k->entries.next, owait_entry_t, link);
        owait_req_t *r = e->req;
        list_remove(&e->link);
        e->key = NULL;
        r->ready[e - r->entries] = true;
        if (++r->found == r->required) {
            list_remove(&r->node);
            list_insert_tail(&ow->done, &r->node);
        }
    }
    free(k);
    /* ...then call them back.  A callback may cancel or start waits, even
     * ones on `done`: each is taken off the list before its call. */
    while (!list_empty(&ow->done))
        owait_finish(ow, owait_of(ow->done.next), false);
}

size_t owait_count(const owait_t *ow) { return ow->count; }
