#include "raylet/objects/obj_wait.h"

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/list.h"

struct owait_req {
    list_t node; /* ow->reqs */
    owait_t *ow;
    uint8_t (*ids)[ID_OBJECT_SIZE];
    bool *ready;
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
    list_t reqs; /* owait_req_t, newest first */
    size_t count;
};

static owait_req_t *owait_of(list_t *n) { return LIST_ENTRY(n, owait_req_t, node); }

static void owait_unlink_free(owait_t *ow, owait_req_t *r)
{
    list_remove(&r->node);
    ow->count--;
    if (r->timer)
        loop_cancel_timer(ow->loop, r->timer);
    free(r->ids);
    free(r->ready);
    free(r);
}

static void owait_finish(owait_t *ow, owait_req_t *r, bool timed_out)
{
    /* Unlink before calling out: the callback may start new waits. */
    list_remove(&r->node);
    ow->count--;
    if (r->timer && !timed_out)
        loop_cancel_timer(ow->loop, r->timer);
    r->timer = 0;
    /* Never report more than was asked for, counted in request order:
     * the core worker checks that ray.wait got at most num_returns. */
    for (size_t i = 0, kept = 0; i < r->count; i++)
        if (r->ready[i] && ++kept > r->required)
            r->ready[i] = false;
    r->done(r->ctx, (const uint8_t(*)[ID_OBJECT_SIZE])r->ids, r->ready, r->count, timed_out);
    free(r->ids);
    free(r->ready);
    free(r);
}

static void owait_on_timeout(loop_t *loop, uint64_t id, void *data)
{
    owait_req_t *r = data;
    r->timer = 0;
    owait_finish(r->ow, r, true);
}

owait_t *owait_create(loop_t *loop, owait_contains_fn contains, void *contains_ctx)
{
    owait_t *ow = xcalloc(1, sizeof *ow);
    ow->loop = loop;
    ow->contains = contains;
    ow->contains_ctx = contains_ctx;
    list_init(&ow->reqs);
    return ow;
}

void owait_destroy(owait_t *ow)
{
    if (!ow)
        return;
    while (!list_empty(&ow->reqs))
        owait_unlink_free(ow, owait_of(ow->reqs.next));
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
    list_t *n, *next;
    LIST_FOREACH_SAFE(n, next, &ow->reqs) {
        owait_req_t *r = owait_of(n);
        if (r->ctx == ctx)
            owait_unlink_free(ow, r);
    }
}

void owait_on_sealed(owait_t *ow, const uint8_t oid[ID_OBJECT_SIZE])
{
    for (list_t *n = ow->reqs.next, *next; n != &ow->reqs; n = next) {
        owait_req_t *r = owait_of(n);
        next = n->next;
        for (size_t i = 0; i < r->count; i++) {
            if (r->ready[i] || memcmp(r->ids[i], oid, ID_OBJECT_SIZE) != 0)
                continue;
            r->ready[i] = true;
            r->found++;
        }
        if (r->found >= r->required) {
            /* Finishing may free requests after this one (a callback that
             * cancels its client's other waits): restart from the head. */
            owait_finish(ow, r, false);
            next = ow->reqs.next;
        }
    }
}

size_t owait_count(const owait_t *ow) { return ow->count; }
