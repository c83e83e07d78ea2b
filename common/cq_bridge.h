/* Bridge from a gRPC completion queue to the event loop.
 *
 * gRPC's C core reports completions on a completion queue that must be
 * drained by a thread blocking in grpc_completion_queue_next().  Following
 * the gRPC maintainers' advice for external loops, one poller thread does only
 * that: it queues each (tag, ok) pair and wakes the loop through an eventfd.
 * Every tag's callback then runs on the loop thread, so no daemon state is
 * ever touched off the loop.
 *
 * A tag is any struct that embeds cq_tag_t; pass &x->tag to gRPC and recover x
 * in the callback with container_of-style arithmetic (see CQ_TAG_OWNER). */
#ifndef CRAYLET_COMMON_CQ_BRIDGE_H
#define CRAYLET_COMMON_CQ_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>

#include <grpc/grpc.h>

#include "common/loop.h"

typedef struct cq_tag cq_tag_t;
typedef void (*cq_tag_cb)(cq_tag_t *tag, bool ok);
struct cq_tag {
    cq_tag_cb done;
};

#define CQ_TAG_OWNER(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

typedef struct cq_bridge cq_bridge_t;

/* Creates the completion queue and starts the poller thread.  grpc_init()
 * must have been called.  Returns NULL on failure (logged). */
cq_bridge_t *cq_bridge_create(loop_t *loop);

/* The queue to pass to gRPC calls and servers; owned by the bridge. */
grpc_completion_queue *cq_bridge_cq(cq_bridge_t *bridge);

/* Shuts the queue down, joins the poller and delivers every completion still
 * pending (gRPC reports cancelled work with ok=false), so tag owners can free
 * themselves.  Servers and calls using the queue must have been shut down or
 * cancelled first, or this waits for them. */
void cq_bridge_destroy(cq_bridge_t *bridge);

/* The quiet queue: for completions whose only work is freeing what the
 * operation held (a server's reply sent, say).  Nobody blocks on it, so gRPC
 * wakes no thread when such an operation finishes; the loop thread collects
 * its completions after each batch of the main queue, and at the latest
 * CQ_BRIDGE_QUIET_FLUSH_MS after an operation was announced.  Owned by the
 * bridge.  Each operation started on it must be announced with
 * cq_bridge_quiet_started() once gRPC accepted it. */
#define CQ_BRIDGE_QUIET_FLUSH_MS 50
grpc_completion_queue *cq_bridge_quiet_cq(cq_bridge_t *bridge);
void cq_bridge_quiet_started(cq_bridge_t *bridge);
/* Announced quiet operations whose completion was not delivered yet. */
size_t cq_bridge_quiet_outstanding(const cq_bridge_t *bridge);

/* Ray's token authentication (common/auth_token.h), for every channel and
 * server made on this bridge after the call: channels send it as their
 * `authorization` metadata, servers refuse calls that lack it.  NULL (the
 * default) turns it off.  The string is copied. */
void cq_bridge_set_authorization(cq_bridge_t *bridge, const char *authorization);
const char *cq_bridge_authorization(const cq_bridge_t *bridge);

/* Deliver all completions queued so far on the calling (loop) thread.  The
 * async wake-up does this by itself; exposed for shutdown paths that drain
 * without running the loop. */
void cq_bridge_dispatch(cq_bridge_t *bridge);

#endif
