#include "common/cq_bridge.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"

typedef struct cq_event {
    cq_tag_t *tag;
    bool ok;
} cq_event_t;

struct cq_bridge {
    loop_t *loop;
    char *authorization; /* "Bearer <token>", or NULL */
    loop_async_t *wake;
    grpc_completion_queue *cq;
    pthread_t poller;
    bool poller_started;

    /* Filled by the poller, swapped out by the loop thread under the lock. */
    pthread_mutex_t lock;
    cq_event_t *pending;
    size_t pending_len, pending_cap;

    /* Owned by the loop thread: the batch being dispatched. */
    cq_event_t *batch;
    size_t batch_cap;

    /* The quiet queue and what the loop thread knows of it. */
    grpc_completion_queue *quiet;
    size_t quiet_outstanding; /* announced, not yet delivered */
    uint64_t quiet_timer;     /* 0: none armed */
};

static void cq_bridge_quiet_drain(cq_bridge_t *b);

static void *cq_bridge_poll_main(void *arg)
{
    cq_bridge_t *b = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(b->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        pthread_mutex_lock(&b->lock);
        if (b->pending_len == b->pending_cap) {
            size_t cap = b->pending_cap ? b->pending_cap * 2 : 64;
            cq_event_t *grown = xrealloc(b->pending, cap * sizeof *grown); /* small allocation: out of memory is fatal by house rule */
            b->pending = grown;
            b->pending_cap = cap;
        }
        b->pending[b->pending_len++] = (cq_event_t){ev.tag, ev.success != 0};
        bool first = b->pending_len == 1;
        pthread_mutex_unlock(&b->lock);
        /* One wake-up per batch: the loop takes everything queued at once. */
        if (first)
            loop_async_send(b->wake);
    }
    return NULL;
}

void cq_bridge_dispatch(cq_bridge_t *b)
{
    pthread_mutex_lock(&b->lock);
    cq_event_t *events = b->pending;
    size_t n = b->pending_len;
    size_t cap = b->pending_cap;
    /* Swap buffers so the poller keeps queueing while callbacks run. */
    b->pending = b->batch;
    b->pending_cap = b->batch_cap;
    b->pending_len = 0;
    pthread_mutex_unlock(&b->lock);

    for (size_t i = 0; i < n; i++)
        events[i].tag->done(events[i].tag, events[i].ok);

    b->batch = events;
    b->batch_cap = cap;
    /* Replies sent by these callbacks have usually been written by now. */
    cq_bridge_quiet_drain(b);
}

/* Deliver what the quiet queue holds, without blocking. */
static void cq_bridge_quiet_drain(cq_bridge_t *b)
{
    while (b->quiet_outstanding > 0) {
        grpc_event ev = grpc_completion_queue_next(b->quiet, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            break;
        b->quiet_outstanding--;
        cq_tag_t *tag = ev.tag;
        tag->done(tag, ev.success != 0);
    }
}

static void cq_bridge_quiet_on_timer(loop_t *loop, uint64_t id, void *data)
{
    cq_bridge_t *b = data;
    b->quiet_timer = 0;
    cq_bridge_quiet_drain(b);
    if (b->quiet_outstanding > 0)
        b->quiet_timer = loop_add_timer(loop, CQ_BRIDGE_QUIET_FLUSH_MS, cq_bridge_quiet_on_timer, b);
}

grpc_completion_queue *cq_bridge_quiet_cq(cq_bridge_t *b) { return b->quiet; }

size_t cq_bridge_quiet_outstanding(const cq_bridge_t *b) { return b->quiet_outstanding; }

void cq_bridge_quiet_started(cq_bridge_t *b)
{
    b->quiet_outstanding++;
    if (!b->quiet_timer)
        b->quiet_timer = loop_add_timer(b->loop, CQ_BRIDGE_QUIET_FLUSH_MS, cq_bridge_quiet_on_timer, b);
}

static void cq_bridge_on_wake(loop_t *loop, void *data)
{
    cq_bridge_dispatch(data);
}

cq_bridge_t *cq_bridge_create(loop_t *loop)
{
    cq_bridge_t *b = xcalloc(1, sizeof *b);
    b->loop = loop;
    pthread_mutex_init(&b->lock, NULL);
    b->cq = grpc_completion_queue_create_for_next(NULL);
    b->quiet = grpc_completion_queue_create_for_next(NULL);
    b->wake = loop_async_create(loop, cq_bridge_on_wake, b);
    if (!b->cq || !b->quiet || !b->wake) {
        log_error("cannot create the gRPC completion-queue bridge");
        cq_bridge_destroy(b);
        return NULL;
    }
    if (pthread_create(&b->poller, NULL, cq_bridge_poll_main, b) != 0) {
        log_error("cannot start the gRPC poller thread");
        cq_bridge_destroy(b);
        return NULL;
    }
    b->poller_started = true;
    return b;
}

grpc_completion_queue *cq_bridge_cq(cq_bridge_t *b) { return b->cq; }

void cq_bridge_destroy(cq_bridge_t *b)
{
    if (!b)
        return;
    if (b->cq)
        grpc_completion_queue_shutdown(b->cq);
    if (b->poller_started)
        pthread_join(b->poller, NULL);
    /* The poller has exited: whatever it queued is delivered here. */
    cq_bridge_dispatch(b);
    if (b->quiet_timer)
        loop_cancel_timer(b->loop, b->quiet_timer);
    if (b->quiet) {
        /* Calls were cancelled before this; their last completions come now. */
        grpc_completion_queue_shutdown(b->quiet);
        for (;;) {
            grpc_event ev = grpc_completion_queue_next(b->quiet, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
            if (ev.type == GRPC_QUEUE_SHUTDOWN)
                break;
            if (ev.type == GRPC_OP_COMPLETE)
                ((cq_tag_t *)ev.tag)->done(ev.tag, ev.success != 0);
        }
        grpc_completion_queue_destroy(b->quiet);
    }
    if (b->cq)
        grpc_completion_queue_destroy(b->cq);
    if (b->wake)
        loop_async_destroy(b->wake);
    pthread_mutex_destroy(&b->lock);
    free(b->pending);
    free(b->batch);
    free(b->authorization);
    free(b);
}

void cq_bridge_set_authorization(cq_bridge_t *bridge, const char *authorization)
{
    free(bridge->authorization);
    bridge->authorization = authorization ? xstrdup(authorization) : NULL;
}

const char *cq_bridge_authorization(const cq_bridge_t *bridge) { return bridge->authorization; }
