/* gRPC over the C core, with protobuf-c messages, driven by the event loop.
 *
 * Three pieces, all used only from the loop thread:
 *   rpc_channel_t  a client channel plus the metadata sent on every call
 *                  (Ray's GCS wants `ray_cluster_id` on each one);
 *   rpc_stream_t   a client bidi stream of raw messages (RaySyncer);
 *   rpc_server_t   a server whose registered unary methods are dispatched to
 *                  handlers; any other method is answered UNIMPLEMENTED at
 *                  once, so a peer never hangs on something not built yet.
 * Completions arrive through the cq_bridge, so every callback runs on the
 * loop thread. */
#ifndef CRAYLET_COMMON_RPC_H
#define CRAYLET_COMMON_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#include "common/cq_bridge.h"

typedef struct rpc_status {
    grpc_status_code code; /* GRPC_STATUS_OK on success */
    const char *message;   /* never NULL; valid only during the callback */
} rpc_status_t;

/* ---- client ---------------------------------------------------------- */

typedef struct rpc_channel rpc_channel_t;

/* `target` is "host:port"; copied.  Returns NULL on failure (logged). */
rpc_channel_t *rpc_channel_create(cq_bridge_t *bridge, const char *target);
/* Add a metadata pair sent with every call and stream (key must be lowercase). */
void rpc_channel_add_metadata(rpc_channel_t *ch, const char *key, const char *value);
/* Cancels every call still in flight; their callbacks are NOT run (the
 * owner is going away).  Must be called before cq_bridge_destroy(). */
void rpc_channel_destroy(rpc_channel_t *ch);

/* `reply` is NULL unless status->code is OK; it is owned by the channel and
 * freed when the callback returns. */
typedef void (*rpc_unary_cb)(void *ctx, const rpc_status_t *status, ProtobufCMessage *reply);

/* Start a unary call to `method` ("/pkg.Service/Method").  `request` need
 * only live through this call.  The callback runs exactly once, unless the
 * channel is destroyed first.  `timeout_ms` 0 means no deadline.  Returns 0
 * or a negative code (then the callback never runs). */
int rpc_unary(rpc_channel_t *ch, const char *method, const ProtobufCMessage *request,
              const ProtobufCMessageDescriptor *reply_desc, uint64_t timeout_ms, rpc_unary_cb cb,
              void *ctx);

/* The same with a request already serialised (kept by callers that retry). */
int rpc_unary_bytes(rpc_channel_t *ch, const char *method, const uint8_t *request, size_t len,
                    const ProtobufCMessageDescriptor *reply_desc, uint64_t timeout_ms,
                    rpc_unary_cb cb, void *ctx);

/* Bytes lent to a call instead of copied into it (bulk data already in
 * memory that stays put, such as an object in the store).  gRPC may hold
 * them past the call's end (a transport still flushing a cancelled call),
 * so each non-empty segment takes a reference with `retain(keep)` and drops
 * it with `release(keep)` once gRPC lets go, on whatever thread that
 * happens: `release` must be thread-safe.  The bytes must stay valid and
 * unchanged until the last release. */
typedef struct rpc_lent {
    const struct iovec *iov;
    size_t iovcnt;
    void (*retain)(void *keep);
    void (*release)(void *keep);
    void *keep;
} rpc_lent_t;

/* A unary call whose request is `head` (copied: a serialised message) then
 * the lent bytes as they are: the caller frames them so the two read as one
 * message, e.g. a message without its bulk field, then that field's key and
 * length, then its bytes.  Otherwise as rpc_unary. */
int rpc_unary_lent(rpc_channel_t *ch, const char *method, const uint8_t *head, size_t head_len,
                   const rpc_lent_t *lent, const ProtobufCMessageDescriptor *reply_desc,
                   uint64_t timeout_ms, rpc_unary_cb cb, void *ctx);

typedef struct rpc_stream rpc_stream_t;
typedef struct rpc_stream_callbacks {
    /* Initial metadata from the server arrived (the stream is established). */
    void (*on_ready)(void *ctx, rpc_stream_t *stream);
    /* One message; `data` is valid only during the call. */
    void (*on_message)(void *ctx, rpc_stream_t *stream, const uint8_t *data, size_t len);
    /* The stream ended; it is freed right after this returns. */
    void (*on_closed)(void *ctx, rpc_stream_t *stream, const rpc_status_t *status);
} rpc_stream_callbacks_t;

/* Open a bidi stream with the channel's metadata plus `extra` pairs
 * (key, value, key, value, ...; `extra_count` strings).  Returns NULL on
 * failure (logged). */
rpc_stream_t *rpc_stream_open(rpc_channel_t *ch, const char *method, const char *const *extra,
                              size_t extra_count, const rpc_stream_callbacks_t *cbs, void *ctx);
/* Queue a message; messages are written one at a time, in order. */
int rpc_stream_write(rpc_stream_t *stream, const ProtobufCMessage *msg);
/* Number of messages queued but not yet handed to gRPC. */
size_t rpc_stream_backlog(const rpc_stream_t *stream);
/* Cancel; on_closed still runs (with CANCELLED) unless `silent`. */
void rpc_stream_cancel(rpc_stream_t *stream, bool silent);

/* ---- server ---------------------------------------------------------- */

typedef struct rpc_server rpc_server_t;
typedef struct rpc_call rpc_call_t;

/* `request` is owned by the call and freed when the call is answered.  The
 * handler must answer exactly once, now or later, with rpc_call_reply() or
 * rpc_call_fail(). */
typedef void (*rpc_method_fn)(void *ctx, rpc_call_t *call, ProtobufCMessage *request);

/* A method whose request is not decoded for it: the handler gets the
 * message bytes as gRPC received them, in segments (`total` bytes in all),
 * valid until it answers the call.  For messages with bulk fields, read in
 * place with common/pbwire.h. */
typedef void (*rpc_raw_method_fn)(void *ctx, rpc_call_t *call, const struct iovec *iov, size_t iovcnt,
                                  size_t total);

rpc_server_t *rpc_server_create(cq_bridge_t *bridge);
/* Register before rpc_server_start().  `path` must outlive the server. */
int rpc_server_add_method(rpc_server_t *srv, const char *path,
                          const ProtobufCMessageDescriptor *request_desc, rpc_method_fn fn,
                          void *ctx);
int rpc_server_add_raw_method(rpc_server_t *srv, const char *path, rpc_raw_method_fn fn, void *ctx);
/* Bind "host:port" (port 0 picks one); *bound_port gets the port.  Returns 0
 * or a negative code. */
int rpc_server_listen(rpc_server_t *srv, const char *host, int port, int *bound_port);
int rpc_server_start(rpc_server_t *srv);
/* Stop accepting, cancel calls in flight and wait (on the bridge) until gRPC
 * releases the server; then frees it.  Handlers still holding calls must not
 * answer them afterwards. */
void rpc_server_destroy(rpc_server_t *srv);

void rpc_call_reply(rpc_call_t *call, const ProtobufCMessage *reply);
void rpc_call_fail(rpc_call_t *call, grpc_status_code code, const char *message);
/* The peer's address as gRPC reports it ("ipv4:127.0.0.1:5555"); owned by the call. */
const char *rpc_call_peer(rpc_call_t *call);

#endif
