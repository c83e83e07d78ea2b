/* Compiled graphs' channels whose writer is on another node: the raylet
 * writes each version pushed to it (PushMutableObject) into the local
 * reader object registered for that writer (RegisterMutableObject), for
 * the readers on this node.
 *
 * A version can be written only once every local reader has released the
 * last one.  Where the stock raylet blocks its thread on that, chunks wait
 * here (their calls unanswered, so the writer waits as it would) and a
 * 1 ms poll retries while any channel waits.  Loop thread only. */
#ifndef CRAYLET_RAYLET_OBJECTS_CHANNELS_H
#define CRAYLET_RAYLET_OBJECTS_CHANNELS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/id.h"
#include "common/loop.h"
#include "object_store/store.h"

typedef struct chan_set chan_set_t;

/* One chunk of a version, as PushMutableObject carries it.  The bytes are
 * borrowed until the chunk's callback runs. */
typedef struct chan_chunk {
    uint64_t total_data_size;
    uint64_t total_metadata_size;
    uint64_t offset;
    const uint8_t *data;
    uint64_t size;
    const uint8_t *metadata; /* total_metadata_size bytes */
} chan_chunk_t;

/* err 0: the chunk is written; `done` when it completed the version (the
 * readers have it).  Else a negative errno: -EPIPE (the channel was
 * closed), -ECANCELED (the set stopped). */
typedef void (*chan_chunk_cb)(void *ctx, int err, bool done);

/* `store` is borrowed and must outlive the set. */
chan_set_t *chan_set_create(loop_t *loop, store_t *store);
/* Closes every channel (readers see an error, as when a stock raylet
 * exits) and answers every waiting chunk -ECANCELED.  Idempotent. */
void chan_set_stop(chan_set_t *cs);
void chan_set_destroy(chan_set_t *cs);

/* RegisterMutableObject: versions of `writer` go into the local mutable
 * object `reader`, read by `num_readers` readers.  0, or -ENOENT (no such
 * sealed object here), -EINVAL (not mutable, or num_readers < 1),
 * -EEXIST (writer registered with another reader), or a semaphore error.
 * Registering the same pair again is a no-op. */
int chan_register(chan_set_t *cs, const id_object_t *writer, int64_t num_readers, const id_object_t *reader);

/* PushMutableObject: write one chunk.  Returns 0 with `cb` to come (maybe
 * at once), or, without calling it, -ENOENT (writer not registered) or
 * -EINVAL (the chunk does not fit the object or its version). */
int chan_push(chan_set_t *cs, const id_object_t *writer, const chan_chunk_t *chunk, chan_chunk_cb cb, void *ctx);

typedef struct chan_stats {
    size_t channels;           /* registered */
    size_t blocked;            /* waiting for their readers (or a semaphore) */
    uint64_t versions_written; /* since start */
} chan_stats_t;

/* For debug state; zeros for a NULL set. */
void chan_get_stats(const chan_set_t *cs, chan_stats_t *out);

#endif
