#include "object_store/transfer/push.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/list.h"
#include "common/log.h"
#include "common/u64map.h"

/* How often parked requests are checked for their deadline. */
#define PUSH_PARK_CHECK_MS 500
/* How often finished pushes whose bytes a transport still holds look again
 * (rare: gRPC normally lets go before the reply is delivered). */
#define PUSH_DRAIN_CHECK_MS 10

struct push_pin {
    atomic_uint refs; /* the job's own, plus one per lent segment */
};

void push_pin_retain(void *pin) { atomic_fetch_add_explicit(&((push_pin_t *)pin)->refs, 1, memory_order_relaxed); }

void push_pin_release(void *pin)
{
    push_pin_t *p = pin;
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
        free(p);
}

typedef struct push_job {
    list_t link; /* in pm->active */
    id_node_t to;
    id_object_t id;
    uint32_t next;     /* next chunk to send */
    uint32_t nchunks;
    uint32_t inflight; /* chunks sent, reply pending */
    bool finished;     /* every chunk handed out (or the push dropped) */
    push_pin_t *pin;   /* shared with the transport; ours is one reference */
} push_job_t;

typedef struct push_parked {
    list_t link;
    id_node_t to;
    id_object_t id;
    uint64_t deadline_ms; /* UINT64_MAX: forever */
} push_parked_t;

struct push {
    loop_t *loop;
    store_t *store;
    push_options_t opts;
    push_ops_t ops;
    void *ctx;
    list_t active;     /* push_job_t, round-robin order */
    list_t parked;     /* push_parked_t */
    u64map_t *tokens;  /* chunk token -> push_job_t */
    uint64_t next_token;
    size_t njobs, nparked, inflight, max_inflight;
    uint64_t park_timer;
    uint64_t drain_timer;
    bool stopped;
    bool pumping;
};

static bool same_node(const id_node_t *a, const id_node_t *b) { return memcmp(a, b, sizeof *a) == 0; }
static bool same_obj(const id_object_t *a, const id_object_t *b) { return memcmp(a, b, sizeof *a) == 0; }

static void job_free(push_t *pm, push_job_t *j)
{
    list_remove(&j->link);
    store_unhold(pm->store, &j->id);
    push_pin_release(j->pin);
    pm->njobs--;
    free(j);
}

static void push_drain_check(loop_t *loop, uint64_t id, void *data);

/* Free a job once nothing refers to it: all handed out and answered, and
 * no transport still holding its bytes (else look again shortly). */
static void job_maybe_free(push_t *pm, push_job_t *j)
{
    if (!j->finished || j->inflight > 0)
        return;
    if (atomic_load_explicit(&j->pin->refs, memory_order_acquire) > 1) {
        if (!pm->drain_timer && !pm->stopped)
            pm->drain_timer = loop_add_timer(pm->loop, PUSH_DRAIN_CHECK_MS, push_drain_check, pm);
        return;
    }
    job_free(pm, j);
}

static void push_drain_check(loop_t *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    push_t *pm = data;
    pm->drain_timer = 0;
    list_t *e = pm->active.next;
    while (e != &pm->active) {
        push_job_t *j = LIST_ENTRY(e, push_job_t, link);
        e = e->next;
        job_maybe_free(pm, j); /* re-arms while any still drains */
    }
}

static void push_pump(push_t *pm);

static void job_start(push_t *pm, const id_node_t *to, const id_object_t *oid)
{
    LIST_FOREACH_ENTRY(push_job_t, j, &pm->active, link) {
        if (same_node(&j->to, to) && same_obj(&j->id, oid) && !j->finished) {
            j->next = 0; /* the puller asked again: chunks went missing */
            return;
        }
    }
    store_view_t v;
    if (store_read_local(pm->store, oid, &v) != 0 || store_hold(pm->store, oid) != 0)
        return;
    uint64_t total = v.data_size + v.metadata_size;
    push_job_t *j = xcalloc(1, sizeof *j);
    j->to = *to;
    j->id = *oid;
    j->pin = xmalloc(sizeof *j->pin);
    atomic_init(&j->pin->refs, 1);
    /* An empty object still travels as one empty chunk. */
    j->nchunks = total ? (uint32_t)((total + pm->opts.chunk_size - 1) / pm->opts.chunk_size) : 1;
    list_insert_tail(&pm->active, &j->link);
    pm->njobs++;
}

/* Hand out chunks round-robin while the in-flight budget allows. */
static void push_pump(push_t *pm)
{
    if (pm->pumping || pm->stopped)
        return;
    pm->pumping = true;
    bool progress = true;
    while (progress && pm->inflight < pm->max_inflight) {
        progress = false;
        list_t *e = pm->active.next;
        while (e != &pm->active && pm->inflight < pm->max_inflight) {
            push_job_t *j = LIST_ENTRY(e, push_job_t, link);
            e = e->next;
            if (j->finished)
                continue;
            store_view_t v;
            if (store_read_local(pm->store, &j->id, &v) != 0) {
                j->finished = true;
                job_maybe_free(pm, j);
                continue;
            }
            uint64_t total = v.data_size + v.metadata_size;
            uint64_t off = (uint64_t)j->next * pm->opts.chunk_size;
            uint64_t len = total - off < pm->opts.chunk_size ? total - off : pm->opts.chunk_size;
            /* data || metadata: a chunk may straddle the two, and the
             * metadata need not follow the data in memory (it does in the
             * store today, but nothing promises it). */
            struct iovec iov[2];
            size_t iovcnt = 1;
            if (off + len <= v.data_size) {
                iov[0] = (struct iovec){.iov_base = (void *)(v.data + off), .iov_len = (size_t)len};
            } else if (off >= v.data_size) {
                iov[0] = (struct iovec){.iov_base = (void *)(v.metadata + (off - v.data_size)), .iov_len = (size_t)len};
            } else {
                uint64_t first = v.data_size - off;
                iov[0] = (struct iovec){.iov_base = (void *)(v.data + off), .iov_len = (size_t)first};
                iov[1] = (struct iovec){.iov_base = (void *)v.metadata, .iov_len = (size_t)(len - first)};
                iovcnt = 2;
            }
            transfer_chunk_t c = {.id = j->id,
                                  .index = j->next,
                                  .total_size = total,
                                  .metadata_size = v.metadata_size,
                                  .iov = iov,
                                  .iovcnt = iovcnt,
                                  .len = (size_t)len,
                                  .pin = j->pin};
            c.owner.node_id = v.owner.node_id;
            c.owner.worker_id = v.owner.worker_id;
            c.owner.port = v.owner.port;
            if (v.owner.ip)
                snprintf(c.owner.ip, sizeof c.owner.ip, "%s", v.owner.ip);
            uint64_t token = ++pm->next_token;
            int rc = pm->ops.send(pm->ctx, &j->to, &c, token);
            if (rc != 0) {
                j->finished = true; /* the node is gone: drop the push */
                job_maybe_free(pm, j);
                continue;
            }
            u64map_put(pm->tokens, token, j);
            j->inflight++;
            pm->inflight++;
            progress = true;
            if (++j->next == j->nchunks)
                j->finished = true;
        }
    }
    pm->pumping = false;
}

static void push_park_check(loop_t *loop, uint64_t id, void *data);

static void park_arm(push_t *pm)
{
    if (!pm->park_timer && pm->nparked > 0 && !pm->stopped)
        pm->park_timer = loop_add_timer(pm->loop, PUSH_PARK_CHECK_MS, push_park_check, pm);
}

static void push_park_check(loop_t *loop, uint64_t id, void *data)
{
    (void)id;
    push_t *pm = data;
    pm->park_timer = 0;
    uint64_t now = loop_now_ms(loop);
    list_t *e = pm->parked.next;
    while (e != &pm->parked) {
        push_parked_t *q = LIST_ENTRY(e, push_parked_t, link);
        e = e->next;
        if (now >= q->deadline_ms) {
            list_remove(&q->link);
            pm->nparked--;
            free(q);
        }
    }
    park_arm(pm);
}

void push_request(push_t *pm, const id_node_t *to, const id_object_t *oid)
{
    if (pm->stopped)
        return;
    if (store_contains(pm->store, oid)) {
        job_start(pm, to, oid);
        push_pump(pm);
        return;
    }
    if (pm->opts.park_ms == 0)
        return;
    LIST_FOREACH_ENTRY(push_parked_t, q, &pm->parked, link)
        if (same_node(&q->to, to) && same_obj(&q->id, oid))
            return;
    push_parked_t *q = xcalloc(1, sizeof *q);
    q->to = *to;
    q->id = *oid;
    q->deadline_ms = pm->opts.park_ms < 0 ? UINT64_MAX : loop_now_ms(pm->loop) + (uint64_t)pm->opts.park_ms;
    list_insert_tail(&pm->parked, &q->link);
    pm->nparked++;
    park_arm(pm);
}

void push_on_sealed(push_t *pm, const id_object_t *oid)
{
    if (pm->stopped || pm->nparked == 0)
        return;
    list_t *e = pm->parked.next;
    bool started = false;
    while (e != &pm->parked) {
        push_parked_t *q = LIST_ENTRY(e, push_parked_t, link);
        e = e->next;
        if (!same_obj(&q->id, oid))
            continue;
        list_remove(&q->link);
        pm->nparked--;
        job_start(pm, &q->to, &q->id);
        free(q);
        started = true;
    }
    if (started)
        push_pump(pm);
}

void push_on_sent(push_t *pm, uint64_t token, bool ok)
{
    void *v;
    if (!u64map_get(pm->tokens, token, &v))
        return;
    u64map_del(pm->tokens, token);
    push_job_t *j = v;
    j->inflight--;
    pm->inflight--;
    if (!ok && !j->finished) {
        /* The receiver is unreachable or refused: stop; it asks again. */
        j->finished = true;
    }
    job_maybe_free(pm, j);
    push_pump(pm);
}

void push_node_removed(push_t *pm, const id_node_t *node)
{
    list_t *e = pm->parked.next;
    while (e != &pm->parked) {
        push_parked_t *q = LIST_ENTRY(e, push_parked_t, link);
        e = e->next;
        if (same_node(&q->to, node)) {
            list_remove(&q->link);
            pm->nparked--;
            free(q);
        }
    }
    /* Its calls end without replies (the caller drops the channel): forget
     * their tokens so the jobs can go. */
    size_t pos = 0;
    uint64_t key;
    void *v;
    while (u64map_next(pm->tokens, &pos, &key, &v)) {
        push_job_t *j = v;
        if (!same_node(&j->to, node))
            continue;
        u64map_del(pm->tokens, key);
        pos = 0; /* deleting may move entries: walk again */
        j->inflight--;
        pm->inflight--;
    }
    e = pm->active.next;
    while (e != &pm->active) {
        push_job_t *j = LIST_ENTRY(e, push_job_t, link);
        e = e->next;
        if (same_node(&j->to, node)) {
            j->finished = true;
            job_maybe_free(pm, j);
        }
    }
    push_pump(pm);
}

push_t *push_create(loop_t *loop, store_t *store, const push_options_t *opts, const push_ops_t *ops, void *ctx)
{
    push_t *pm = xcalloc(1, sizeof *pm);
    pm->loop = loop;
    pm->store = store;
    pm->opts = *opts;
    if (pm->opts.chunk_size == 0)
        pm->opts.chunk_size = 5u << 20;
    uint64_t m = pm->opts.max_bytes_in_flight / pm->opts.chunk_size;
    pm->max_inflight = m ? (size_t)m : 1;
    pm->ops = *ops;
    pm->ctx = ctx;
    list_init(&pm->active);
    list_init(&pm->parked);
    pm->tokens = u64map_create();
    return pm;
}

void push_stop(push_t *pm)
{
    if (!pm || pm->stopped)
        return;
    pm->stopped = true;
    if (pm->park_timer)
        loop_cancel_timer(pm->loop, pm->park_timer);
    pm->park_timer = 0;
    if (pm->drain_timer)
        loop_cancel_timer(pm->loop, pm->drain_timer);
    pm->drain_timer = 0;
    while (!list_empty(&pm->parked)) {
        push_parked_t *q = LIST_ENTRY(pm->parked.next, push_parked_t, link);
        list_remove(&q->link);
        free(q);
    }
    pm->nparked = 0;
    /* Replies still in flight are forgotten with the token table. */
    u64map_destroy(pm->tokens);
    pm->tokens = u64map_create();
    pm->inflight = 0;
    while (!list_empty(&pm->active))
        job_free(pm, LIST_ENTRY(pm->active.next, push_job_t, link));
}

void push_destroy(push_t *pm)
{
    if (!pm)
        return;
    push_stop(pm);
    u64map_destroy(pm->tokens);
    free(pm);
}

size_t push_active_count(const push_t *pm) { return pm->njobs; }
size_t push_parked_count(const push_t *pm) { return pm->nparked; }
size_t push_chunks_in_flight(const push_t *pm) { return pm->inflight; }
