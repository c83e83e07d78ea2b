#include "raylet/objects/lease_args.h"

#include <stdlib.h>

#include "common/alloc.h"
#include "common/u64map.h"

typedef struct largs_fetch {
    largs_t *a;
    uint64_t token;
    uint64_t pull; /* xfer handle; 0: none */
    owait_req_t *wait;
} largs_fetch_t;

struct largs {
    store_t *store;
    owait_t *owait;
    xfer_t *xfer;
    largs_ready_fn ready;
    void *ctx;
    u64map_t *fetches; /* token -> largs_fetch_t */
};

/* End a fetch: its wait (unless owait is finishing it) and its pull. */
static void largs_end(largs_t *a, largs_fetch_t *f)
{
    if (f->wait)
        owait_cancel(a->owait, f->wait);
    if (f->pull && a->xfer)
        xfer_cancel(a->xfer, f->pull);
    free(f);
}

static void largs_drop(largs_t *a, largs_fetch_t *f)
{
    u64map_del(a->fetches, f->token);
    largs_end(a, f);
}

static void largs_on_local(void *ctx, const uint8_t (*ids)[ID_OBJECT_SIZE], const bool *ready, size_t count,
                           bool timed_out)
{
    (void)ids;
    (void)ready;
    (void)count;
    (void)timed_out;
    largs_fetch_t *f = ctx;
    largs_t *a = f->a;
    uint64_t token = f->token;
    f->wait = NULL; /* freed by owait after this returns */
    largs_drop(a, f);
    a->ready(a->ctx, token);
}

bool largs_fetch(largs_t *a, uint64_t token, const id_object_t *ids, const ray_addr_t *owners, size_t n)
{
    size_t missing = 0;
    for (size_t i = 0; i < n; i++)
        if (!store_contains(a->store, &ids[i]))
            missing++;
    if (missing == 0)
        return true;
    largs_fetch_t *f = xcalloc(1, sizeof *f);
    f->a = a;
    f->token = token;
    u64map_put(a->fetches, token, f);
    if (a->xfer)
        f->pull = xfer_pull(a->xfer, PULL_TASK_ARGS, ids, owners, n);
    /* Not all local (checked above): the wait cannot end inside this call. */
    f->wait = owait_start(a->owait, (const uint8_t(*)[ID_OBJECT_SIZE])ids, n, n, -1, largs_on_local, f);
    return false;
}

void largs_cancel(largs_t *a, uint64_t token)
{
    void *v;
    if (!a || !u64map_get(a->fetches, token, &v))
        return;
    largs_drop(a, v);
}

size_t largs_count(const largs_t *a) { return a ? u64map_count(a->fetches) : 0; }

largs_t *largs_create(store_t *store, owait_t *owait, xfer_t *xfer, largs_ready_fn ready, void *ctx)
{
    largs_t *a = xcalloc(1, sizeof *a);
    a->store = store;
    a->owait = owait;
    a->xfer = xfer;
    a->ready = ready;
    a->ctx = ctx;
    a->fetches = u64map_create();
    return a;
}

void largs_destroy(largs_t *a)
{
    if (!a)
        return;
    size_t pos = 0;
    uint64_t key;
    void *v;
    while (u64map_next(a->fetches, &pos, &key, &v))
        largs_end(a, v);
    u64map_destroy(a->fetches);
    free(a);
}
