/* Pushes: answering another node's Pull by sending an object in chunks.
 *
 * A Pull for an object sealed here starts a push to the asking node: the
 * object is held in the store (never evicted or deleted mid-push), cut into
 * object_manager_default_chunk_size slices of data || metadata, and each
 * slice is handed to ops->send, at most max_bytes_in_flight worth of chunks
 * awaiting their reply over all pushes, served round-robin so one large
 * object does not starve the rest.  A Pull for an object not here (yet) is
 * parked for object_manager_push_timeout_ms and served if it is sealed in
 * that time, else forgotten (the puller asks again elsewhere).  A second
 * Pull for a push under way restarts it from its first chunk: the puller
 * asks again only when chunks went missing.
 *
 * Chunks are never copied here: a chunk's segments point into the held
 * object.  A sender may lend them to a transport that keeps them past the
 * chunk's reply (gRPC slices): it takes a reference on the chunk's pin for
 * each, and the object is released only after the last is dropped.
 *
 * Senders do not resend a failed chunk; the puller's retry covers it.
 * Loop thread only (push_pin_release excepted); the store must outlive the
 * pusher. */
#ifndef CRAYLET_OBJECT_STORE_TRANSFER_PUSH_H
#define CRAYLET_OBJECT_STORE_TRANSFER_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/id.h"
#include "common/loop.h"
#include "common/ray_addr.h"
#include "object_store/store.h"
#include "object_store/transfer/chunk.h"

typedef struct push push_t;

/* Keeps a push's object held while anything still reads its chunks.
 * Retain on the loop thread (while sending); release from any thread.  The
 * void pointers fit rpc_lent_t. */
typedef struct push_pin push_pin_t;
void push_pin_retain(void *pin);
void push_pin_release(void *pin);

typedef struct push_ops {
    /* Send a chunk to node `to`; its outcome comes back through
     * push_on_sent(token, ok), never from inside this call.  0, or a
     * negative code (the node is unknown here: the push is dropped). */
    int (*send)(void *ctx, const id_node_t *to, const transfer_chunk_t *chunk, uint64_t token);
} push_ops_t;

typedef struct push_options {
    uint64_t chunk_size;          /* object_manager_default_chunk_size */
    uint64_t max_bytes_in_flight; /* object_manager_max_bytes_in_flight */
    int64_t park_ms;              /* object_manager_push_timeout_ms; <0 forever, 0 never */
} push_options_t;

/* `ops` is copied. */
push_t *push_create(loop_t *loop, store_t *store, const push_options_t *opts, const push_ops_t *ops, void *ctx);
/* Drop every push and parked request, releasing holds; sends in flight
 * are forgotten (their push_on_sent is ignored), and so are references a
 * transport still has on chunk bytes: stop the transport first.
 * Idempotent. */
void push_stop(push_t *pm);
void push_destroy(push_t *pm);

/* Node `to` asked for `oid` (a Pull). */
void push_request(push_t *pm, const id_node_t *to, const id_object_t *oid);
/* `oid` was sealed here: serve the Pulls parked for it. */
void push_on_sealed(push_t *pm, const id_object_t *oid);
/* The reply to a chunk came (ok) or the call failed. */
void push_on_sent(push_t *pm, uint64_t token, bool ok);
/* A node left: drop what was going to it. */
void push_node_removed(push_t *pm, const id_node_t *node);

size_t push_active_count(const push_t *pm);
size_t push_parked_count(const push_t *pm);
size_t push_chunks_in_flight(const push_t *pm);

#endif
