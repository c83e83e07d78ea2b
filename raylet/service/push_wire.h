/* A Push request (ObjectManagerService) read straight from the bytes gRPC
 * received: the ids, sizes and owner decoded into a transfer_chunk_t, and
 * the chunk's data left where it arrived, as segments, so the puller copies
 * it once, into the store.  Field numbers are those of the wheel's
 * PushRequest (1 push_id, 2 object_id, 3 node_id, 4 owner_address,
 * 5 chunk_index, 6 data_size, 7 metadata_size, 8 data).
 *
 * Untrusted input: a malformed message, a field of the wrong wire type, an
 * id that is not 28 bytes, a chunk index past 32 bits or an owner address
 * over PUSH_WIRE_MAX_ADDRESS bytes is CR_EBADMSG with a reason.  Unknown
 * fields are skipped; a repeated field's last value wins, as in protobuf. */
#ifndef CRAYLET_RAYLET_SERVICE_PUSH_WIRE_H
#define CRAYLET_RAYLET_SERVICE_PUSH_WIRE_H

#include <stddef.h>
#include <sys/uio.h>

#include "object_store/transfer/chunk.h"

#define PUSH_WIRE_MAX_ADDRESS 4096

/* On success (0) `out->iov` points into `*segs`, an array allocated here
 * that the caller frees; the segments borrow from `iov`.  On failure
 * *segs is NULL and *why says what was wrong (a static string). */
int push_wire_decode(const struct iovec *iov, size_t iovcnt, size_t total, transfer_chunk_t *out,
                     struct iovec **segs, const char **why);

#endif
