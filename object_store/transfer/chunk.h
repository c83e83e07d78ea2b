/* One chunk of an object on its way between nodes, as plain data: what a
 * pusher hands to the network and what a Push decodes to for the puller.
 *
 * Chunk i of an object covers bytes [i * chunk_size, min((i + 1) *
 * chunk_size, total_size)) of data || metadata; both ends use the same
 * chunk_size (object_manager_default_chunk_size). */
#ifndef CRAYLET_OBJECT_STORE_TRANSFER_CHUNK_H
#define CRAYLET_OBJECT_STORE_TRANSFER_CHUNK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/id.h"
#include "common/ray_addr.h"

typedef struct transfer_chunk {
    id_object_t id;
    id_node_t from;         /* the sending node (received chunks) */
    ray_addr_t owner;
    uint32_t index;
    uint64_t total_size;    /* data + metadata */
    uint64_t metadata_size;
    /* The bytes, in place (store memory on the way out, the network's
     * buffers on the way in): never copied until they reach their
     * destination.  Borrowed for the call that passes the chunk. */
    const struct iovec *iov;
    size_t iovcnt;
    size_t len;             /* the segments' sum */
    /* Pushed chunks: what keeps `iov` valid past the call (push.h). */
    struct push_pin *pin;
} transfer_chunk_t;

#endif
