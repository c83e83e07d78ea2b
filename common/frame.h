/* Message framing on the raylet and plasma Unix sockets.
 *
 * Both sockets (the worker/driver <-> raylet socket and the plasma store
 * socket) share one framing, inherited from Ray's ClientConnection: three
 * int64 words in host order (little-endian on every platform Ray ships for)
 * followed by the payload, normally a finished flatbuffer:
 *
 *   int64 cookie   RayConfig ray_cookie, 0x5241590000000000 ("RAY" in the top
 *                  bytes) unless the cluster config overrides it
 *   int64 type     the schema's MessageType value, widened
 *   int64 length   payload bytes, may be 0
 *
 * The decoder takes an untrusted byte stream in pieces of any size and hands
 * out whole frames.  A wrong cookie or a negative length is CR_EBADMSG and a
 * length over the configured limit is CR_ETOOBIG; errors are sticky, since a
 * stream that lost its framing cannot be resynchronised and the connection
 * must be dropped.  The message type is passed through unchecked: which
 * types are acceptable is the dispatcher's business.
 *
 * The encoder appends header and payload to a growable output buffer that
 * the connection drains as the socket accepts bytes. */
#ifndef CRAYLET_COMMON_FRAME_H
#define CRAYLET_COMMON_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define FRAME_RAY_COOKIE ((int64_t)0x5241590000000000LL)
#define FRAME_HEADER_SIZE 24u
/* A sensible per-connection cap: far above any real request (a Wait over
 * 100k object IDs is a few MB) and small enough that a lying peer cannot
 * make the daemon allocate without bound. */
#define FRAME_DEFAULT_MAX_PAYLOAD ((size_t)64 << 20)

typedef struct {
    int64_t type;
    const uint8_t *payload; /* borrowed from the decoder; see frame_decoder_next */
    size_t len;
} frame_t;

/* Header helpers for code that frames by hand (synchronous clients, tests,
 * writev with a separate payload). */
void frame_header_write(uint8_t out[FRAME_HEADER_SIZE], int64_t cookie, int64_t type,
                        size_t len);
/* Checks the cookie and the length (0 <= length <= max_payload). */
int frame_header_parse(const uint8_t in[FRAME_HEADER_SIZE], int64_t cookie, size_t max_payload,
                       int64_t *type, size_t *len) __attribute__((warn_unused_result));

/* ---- decoder ---- */

typedef struct frame_decoder frame_decoder_t;

/* Returns NULL only if the allocator does. */
frame_decoder_t *frame_decoder_create(int64_t cookie, size_t max_payload);
void frame_decoder_destroy(frame_decoder_t *d);

/* Appends bytes read from the stream.  Returns 0, -ENOMEM, or the sticky
 * error.  Invalidates frames handed out earlier. */
int frame_decoder_feed(frame_decoder_t *d, const void *data, size_t n);

/* Zero-copy alternative to feed: room to read() straight into, at least
 * `min` bytes and at least the rest of a frame whose header has arrived.
 * Follow with frame_decoder_commit() of the bytes actually read.  Returns 0,
 * -ENOMEM or the sticky error.  Invalidates frames handed out earlier. */
int frame_decoder_reserve(frame_decoder_t *d, size_t min, uint8_t **space, size_t *avail);
void frame_decoder_commit(frame_decoder_t *d, size_t n);

/* Takes the next complete frame: returns 1 and fills *out, 0 when more bytes
 * are needed, or a negative error (sticky; drop the connection).  The
 * payload stays valid until the next feed, reserve or destroy, so a caller
 * may take several frames before handling them. */
int frame_decoder_next(frame_decoder_t *d, frame_t *out) __attribute__((warn_unused_result));

/* Bytes received but not yet handed out as frames. */
size_t frame_decoder_pending(const frame_decoder_t *d);
/* The sticky error, or 0. */
int frame_decoder_error(const frame_decoder_t *d);

/* ---- encoder ---- */

/* Output bytes not yet written to the socket: data[off, len).  Zero-filled
 * is a valid empty buffer; the buffer owns data. */
typedef struct {
    uint8_t *data;
    size_t off;
    size_t len;
    size_t cap;
} frame_wbuf_t;

void frame_wbuf_init(frame_wbuf_t *w);
void frame_wbuf_free(frame_wbuf_t *w);

/* Appends one frame.  Returns 0 or -ENOMEM (nothing appended then). */
int frame_encode(frame_wbuf_t *w, int64_t cookie, int64_t type, const void *payload, size_t len);

static inline const uint8_t *frame_wbuf_pending(const frame_wbuf_t *w, size_t *n)
{
    *n = w->len - w->off;
    return w->data ? w->data + w->off : NULL;
}
/* Drops n bytes from the front after they were written. */
void frame_wbuf_consume(frame_wbuf_t *w, size_t n);

#endif
