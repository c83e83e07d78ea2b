/* Pulls: making objects that live on other nodes local.
 *
 * Whoever needs objects here (a worker's ray.get, a ray.wait with
 * fetch_local, an actor call's arguments) opens a bundle of ids with their
 * owners.  For each object not in the local store the puller asks its owner
 * where copies are (ops->locate; answers come back through
 * pull_on_locations), asks one holder to send it (ops->request, a Pull), and
 * writes the chunks that holder Pushes straight into an unsealed object of
 * the store, sealing it when the last one is in.  Waiters see the object
 * through the store as for any local seal.
 *
 * Priorities follow the stock raylet: gets before waits before task
 * arguments.  Admission: objects are requested in that order while the
 * bytes being received fit in the store's free memory, and the first always
 * goes (the store itself evicts, or falls back to a file, to make room; it
 * never overfills the region).  A holder that stays silent is asked again
 * after object_manager_pull_timeout_ms, doubling, each time of a copy chosen
 * at random; an object no one can give for fetch_fail_timeout is stored
 * here as an error object (OBJECT_FETCH_TIMED_OUT), as is one whose owner
 * has died (OWNER_DIED) or forgot it (OBJECT_DELETED), so a blocked get
 * raises instead of hanging.
 *
 * Chunks are untrusted: one for an object nobody here pulls, out of range,
 * of the wrong length, a duplicate, or with sizes that contradict the
 * object's, is refused with a reason code (the caller logs it); nothing is
 * reserved for it.
 *
 * Loop thread only; the store must outlive the puller. */
#ifndef CRAYLET_OBJECT_STORE_TRANSFER_PULL_H
#define CRAYLET_OBJECT_STORE_TRANSFER_PULL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/id.h"
#include "common/loop.h"
#include "common/ray_addr.h"
#include "object_store/store.h"
#include "object_store/transfer/chunk.h"

typedef struct pull pull_t;

typedef enum pull_priority {
    PULL_GET = 0,       /* a blocked ray.get */
    PULL_WAIT = 1,      /* ray.wait(fetch_local=True), actor-call arguments, await */
    PULL_TASK_ARGS = 2, /* arguments of a queued lease */
} pull_priority_t;
#define PULL_PRIORITIES 3

/* Ray's ErrorType values a failed pull stores (the metadata of the error
 * object is the decimal number, as the stock raylet writes it). */
#define PULL_ERROR_OWNER_DIED 9
#define PULL_ERROR_OBJECT_DELETED 10
#define PULL_ERROR_FETCH_TIMED_OUT 14
#define PULL_ERROR_OUT_OF_DISK 20

typedef struct pull_ops {
    /* Ask `owner` where `oid` is; the answer comes through
     * pull_on_locations() or pull_on_locate_failed(), never from inside
     * this call.  0, or a negative code (tried again later). */
    int (*locate)(void *ctx, const ray_addr_t *owner, const id_object_t *oid);
    /* Ask node `holder` to push `oid` here.  0, or a negative code (e.g.
     * the node is unknown: another copy is tried next time). */
    int (*request)(void *ctx, const id_node_t *holder, const id_object_t *oid);
    /* Nothing here needs `oid` from `owner` any more (it came, failed or
     * nobody waits): stop following its locations.  May be NULL. */
    void (*forget)(void *ctx, const ray_addr_t *owner, const id_object_t *oid);
    /* The owner says `oid` was spilled on this node: bring it back into
     * the store (its seal ends the pull).  0 if under way, else a negative
     * code (the file is not ours: wait for another location).  May be
     * NULL. */
    int (*restore)(void *ctx, const id_object_t *oid);
} pull_ops_t;

typedef struct pull_options {
    id_node_t self;
    uint64_t chunk_size;         /* object_manager_default_chunk_size */
    uint64_t retry_ms;           /* object_manager_pull_timeout_ms */
    uint64_t fetch_fail_ms;      /* fetch_fail_timeout_milliseconds */
    uint64_t tick_ms;            /* object_manager_timer_freq_ms */
    /* Owners send every change of locations after the first locate (a
     * subscription): while no copy is known, ask again only every
     * retry_ms, as a safety net, instead of polling from 100 ms up. */
    bool locations_pushed;
    /* A copy a get or a task needs that has found no room in the region
     * for this long goes to a fallback file (oom_grace_period_s, as the
     * store's own creates): the region may be full of primary copies that
     * only spilling could move.  One only a ray.wait asks for waits twice
     * as long (a wait yields to gets, and a short one sees the store as it
     * is, as with stock, whose spilling takes seconds to make room). */
    uint64_t no_room_grace_ms;
} pull_options_t;

/* What the owner said: borrowed during the call. */
typedef struct pull_locations {
    const id_node_t *nodes;
    size_t count;
    uint64_t object_size;  /* 0: not known yet */
    bool pending_creation; /* being (re)made: wait, do not time out */
    bool ref_removed;      /* the owner no longer has it */
    bool spilled;          /* spilled to storage local to spilled_node */
    id_node_t spilled_node;
} pull_locations_t;


/* `ops` is copied; `ctx` is passed to it. */
pull_t *pull_create(loop_t *loop, store_t *store, const pull_options_t *opts, const pull_ops_t *ops,
                    void *ctx);
/* Cancel the timer and every bundle, abort partial objects; no ops call
 * after.  Idempotent. */
void pull_stop(pull_t *p);
void pull_destroy(pull_t *p);

/* Make ids[0..n) local (owners[i] owns ids[i]).  Returns a bundle handle
 * for pull_cancel, or 0 when every id is local already (nothing to
 * cancel).  Ids repeated, or already pulled by another bundle, are
 * shared. */
uint64_t pull_bundle(pull_t *p, pull_priority_t prio, const id_object_t *ids, const ray_addr_t *owners,
                     size_t n);
/* The bundle is no longer needed; an object no other bundle needs is
 * dropped, its partial copy freed.  Unknown handles are ignored. */
void pull_cancel(pull_t *p, uint64_t bundle);

void pull_on_locations(pull_t *p, const id_object_t *oid, const pull_locations_t *loc);
/* The owner could not be asked.  `owner_gone` when it is certainly dead
 * (its worker or node is): the object is failed at once; otherwise it is
 * asked again, and failed after a few attempts. */
void pull_on_locate_failed(pull_t *p, const id_object_t *oid, bool owner_gone);

/* A chunk arrived.  0 (taken; the object is sealed after its last chunk),
 * or why it was refused:
 *   -ENOENT    nobody here pulls this object (or it is local already)
 *   -EINVAL    sizes impossible or contradicting the object's
 *   -ERANGE    index past the object's last chunk
 *   -EMSGSIZE  length other than the chunk's
 *   -EALREADY  that chunk is in already
 *   -ENOMEM    no room in the store now (asked again later)
 *   -ENOSPC    no room, and the disk too full to make any: the object
 *              is failed with OUT_OF_DISK_ERROR */
int pull_on_chunk(pull_t *p, const transfer_chunk_t *c);

/* A node left: it holds no copies any more. */
void pull_node_removed(pull_t *p, const id_node_t *node);

size_t pull_bundle_count(const pull_t *p);
size_t pull_object_count(const pull_t *p);
/* Objects with chunks being received now. */
size_t pull_receiving_count(const pull_t *p);

#endif
