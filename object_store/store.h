/* The plasma-compatible object store, served from the raylet's main loop.
 *
 * Workers and drivers (CoreWorker's plasma client) connect to the store's
 * Unix socket and speak Ray 2.54's plasma protocol (object_store/
 * plasma_proto.h).  Objects live in one shared-memory region whose
 * descriptor each client receives once over SCM_RIGHTS and maps, so puts
 * and gets are zero-copy; an object that cannot be placed there even after
 * evicting and waiting goes to a file of its own in the fallback directory.
 *
 * Object life: Create (unsealed; the creating client holds a reference) ->
 * Seal (immutable, visible to Get, the sealed callback runs) -> references
 * come and go with Get/Release -> an object that no client references and
 * that is not pinned is evictable (least recently released first) -> Delete
 * or eviction frees it (the deleted callback runs for sealed objects).
 * Primary copies are pinned by the raylet (store_pin) and are never
 * evicted.
 *
 * Threading: everything runs on the loop thread that store_create() was
 * called on; no function here may be called from another thread.
 *
 * Peers are untrusted: a client that sends a malformed frame, an unknown
 * message type or an impossible request is logged and disconnected, its
 * references dropped and its unsealed objects freed; every other client is
 * unaffected. */
#ifndef CRAYLET_OBJECT_STORE_STORE_H
#define CRAYLET_OBJECT_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/id.h"
#include "common/loop.h"
#include "object_store/mutable.h"

typedef struct store store_t;

typedef struct {
    /* --store_socket_name.  Bound and listened on (a stale socket file is
     * replaced) and unlinked by store_destroy().  NULL: no listening socket;
     * clients come only through store_accept_fd() (tests). */
    const char *socket_path;
    /* --object_store_memory: bytes of shared memory for objects; > 0. */
    uint64_t capacity;
    /* --plasma_directory (default /dev/shm) and --fallback_directory
     * (default /tmp); NULL or "" picks the default. */
    const char *plasma_directory;
    const char *fallback_directory;
    /* --huge_pages: plasma_directory is a hugetlbfs mount. */
    bool huge_pages;
    /* RAY_preallocate_plasma_memory: prefault the whole region at start. */
    bool preallocate;
    /* The frame cookie (RayConfig ray_cookie). */
    int64_t cookie;
    /* How long a create that does not fit waits before it is retried
     * (RayConfig object_store_full_delay_ms). */
    uint32_t full_delay_ms;
    /* How long the store keeps a full queue waiting for space (spilling,
     * releases) before it allocates from the fallback directory
     * (RayConfig oom_grace_period_s, in ms).  0 falls back at once. */
    uint64_t oom_grace_period_ms;
    /* Fallback allocation is refused (OutOfDisk) when it would leave the
     * fallback file system fuller than this fraction
     * (RayConfig local_fs_capacity_threshold).  >= 1 disables the check. */
    double fs_capacity_threshold;
    /* CRAYLET_RECORD_FRAMES: keep the first frame of each type clients
     * send here (common/frame_record.h); NULL for none. */
    const char *record_frames_dir;
} store_options_t;

/* Ray's defaults: cookie 0x5241590000000000, 10 ms retry delay, 2 s grace,
 * 0.95 disk threshold, default directories, no socket, capacity 0 (must be
 * set). */
void store_options_init(store_options_t *o);

/* Creates the shared region and starts listening.  The region is capped to
 * 90% of the free space in plasma_directory (with a warning), as Ray does,
 * so a small /dev/shm does not turn into SIGBUS later.  Returns NULL after
 * logging why.  Strings in opts are copied. */
store_t *store_create(loop_t *loop, const store_options_t *opts);
/* Disconnects every client, unlinks the socket path, frees every object and
 * segment.  Callbacks are not invoked. */
void store_destroy(store_t *s);

/* Adopts a connected stream socket as a plasma client (ownership of fd
 * passes to the store, also on failure).  Returns 0 or -errno. */
int store_accept_fd(store_t *s, int fd);

/* ---- notifications to the raylet ---- */

typedef struct {
    id_node_t node_id;     /* nil when unknown */
    const char *ip;        /* "" when unknown */
    int32_t port;
    id_worker_t worker_id; /* nil when unknown */
} store_owner_t;

typedef struct {
    id_object_t id;
    uint64_t data_size;
    uint64_t metadata_size;
    store_owner_t owner;   /* borrowed: valid during the callback only */
    int32_t source;        /* plasma_source_t */
    bool is_mutable;
    bool fallback;         /* lives in a fallback file */
} store_object_info_t;

/* After an object is sealed (every waiting Get has been served first).  The
 * raylet uses it for ray.wait, SubscribePlasmaReady, lease dependencies and
 * location updates. */
typedef void (*store_sealed_cb)(void *ctx, const store_object_info_t *info);
/* After a sealed object was deleted or evicted (aborted ones are silent). */
typedef void (*store_deleted_cb)(void *ctx, const id_object_t *id);
/* A create cannot fit even after evicting; bytes_needed is its size.
 * Return true if spilling is under way (the store then waits without
 * starting the grace period that ends in fallback allocation). */
typedef bool (*store_spill_cb)(void *ctx, uint64_t bytes_needed);
/* A create cannot fit in memory: is the disk too full to spill or fall
 * back to a file?  True fails the create with OutOfDisk at once, as Ray
 * does when its file-system monitor reports a spill or fallback directory
 * over local_fs_capacity_threshold. */
typedef bool (*store_disk_full_cb)(void *ctx);

/* One callback of each kind; NULL clears.  Callbacks may call any store_
 * function except store_destroy. */
void store_set_sealed_cb(store_t *s, store_sealed_cb cb, void *ctx);
void store_set_deleted_cb(store_t *s, store_deleted_cb cb, void *ctx);
void store_set_spill_cb(store_t *s, store_spill_cb cb, void *ctx);
void store_set_disk_full_cb(store_t *s, store_disk_full_cb cb, void *ctx);
/* The system config's local_fs_capacity_threshold, once GCS has sent it
 * (replaces store_options_t.fs_capacity_threshold). */
void store_set_fs_capacity_threshold(store_t *s, double threshold);

/* ---- in-process API for the raylet ---- */

/* Hold a sealed object as a client would (a push reading it): it is neither
 * evicted nor deleted while held, and store_read_local's view stays valid.
 * Holds nest.  0, -ENOENT (absent) or -EAGAIN (not sealed). */
int store_hold(store_t *s, const id_object_t *id);
typedef struct {
    mut_header_t *header; /* shared with the object's readers and writers */
    uint8_t *buffer;      /* data, then metadata */
    uint64_t capacity;    /* bytes the buffer has for both */
} store_mutable_t;

/* store_hold() for a mutable object (a channel), giving its shared header
 * and buffer, valid until store_unhold().  -EINVAL: not mutable. */
int store_hold_mutable(store_t *s, const id_object_t *id, store_mutable_t *out);
/* Drop a hold; a delete asked for meanwhile happens now.  0 or -ENOENT. */
int store_unhold(store_t *s, const id_object_t *id);

/* Sealed and present. */
bool store_contains(const store_t *s, const id_object_t *id);
/* Pins a sealed object (PinObjectIDs): pinned objects are never evicted and
 * a Delete from a worker is deferred until unpinned.  Pins nest.  Returns 0,
 * -ENOENT (absent) or -EAGAIN (not sealed yet). */
int store_pin(store_t *s, const id_object_t *id);
/* Returns 0 or -ENOENT (absent or not pinned). */
int store_unpin(store_t *s, const id_object_t *id);
/* FreeObjects: deletes the object now if nothing uses it (returns 0), else
 * marks it to be deleted when the last reference or pin goes (-EBUSY), or
 * -ENOENT. */
int store_free(store_t *s, const id_object_t *id);
/* Sealed, pinned and referenced by no client: spilling it frees memory. */
bool store_is_spillable(const store_t *s, const id_object_t *id);

/* Creates an unsealed object owned by the raylet itself (pulled chunks,
 * restored objects, errors), evicting and falling back to a file if needed.
 * *data receives the writable bytes: data_size bytes of data followed by
 * metadata_size bytes of metadata, valid until the object is sealed or
 * aborted.  owner may be NULL.  Returns 0, -EEXIST, -ENOMEM (no room even in
 * the fallback directory), -ENOSPC (fallback refused: disk full). */
int store_create_local(store_t *s, const id_object_t *id, uint64_t data_size,
                       uint64_t metadata_size, const store_owner_t *owner, int32_t source,
                       uint8_t **data);
/* The same for a copy pulled from another node: it takes room in the
 * region (evicting what is evictable) and goes to a fallback file only
 * when it is larger than the whole region, or when `may_fall_back` (the
 * puller has waited long enough for room), so a pull waits for room rather
 * than pushing the store past its size.  -ENOMEM: no room now. */
int store_create_pulled(store_t *s, const id_object_t *id, uint64_t data_size, uint64_t metadata_size,
                        const store_owner_t *owner, bool may_fall_back, uint8_t **data);
/* Seals an object made by store_create_local.  Returns 0 or -ENOENT. */
int store_seal_local(store_t *s, const id_object_t *id);
/* Frees an unsealed object made by store_create_local.  0 or -ENOENT. */
int store_abort_local(store_t *s, const id_object_t *id);
/* Create, copy, seal in one step (errors stored by the raylet). */
int store_put_local(store_t *s, const id_object_t *id, const void *data, uint64_t data_size,
                    const void *metadata, uint64_t metadata_size, const store_owner_t *owner,
                    int32_t source);

typedef struct {
    const uint8_t *data;
    uint64_t data_size;
    const uint8_t *metadata;
    uint64_t metadata_size;
    store_owner_t owner; /* ip borrowed like the bytes */
} store_view_t;

/* The bytes of a sealed object.  Valid while the object stays pinned (or,
 * unpinned, until control returns to the loop).  0 or -ENOENT. */
int store_read_local(const store_t *s, const id_object_t *id, store_view_t *out);

typedef struct {
    uint64_t capacity;           /* bytes of the shared region */
    uint64_t bytes_used;         /* region bytes allocated + fallback bytes */
    uint64_t bytes_fallback;     /* bytes in fallback files */
    uint64_t bytes_pinned;       /* primary copies (pinned objects) */
    uint64_t bytes_evictable;    /* sealed, unreferenced, unpinned */
    uint64_t bytes_unsealed;
    uint64_t num_objects;
    uint64_t num_unsealed;
    uint64_t num_pinned;
    uint64_t num_fallback;
    uint64_t num_evicted;        /* total since start */
    uint64_t bytes_evicted;
    uint64_t num_created;        /* total since start */
    uint64_t bytes_created;
    uint64_t num_clients;
    uint64_t num_pending_creates;
    uint64_t bytes_pending_creates;
    uint64_t num_pending_gets;
    uint64_t largest_free;       /* the largest object the region could take now */
} store_stats_t;

void store_get_stats(const store_t *s, store_stats_t *out);

/* Human-readable summary (PlasmaGetDebugString).  Writes at most cap bytes
 * including the NUL; returns the length it wanted. */
size_t store_debug_string(const store_t *s, char *buf, size_t cap);

/* Checks every internal invariant (allocator, reference counts against
 * client holdings, eviction list, indexes).  O(objects); for tests and the
 * fuzzer.  Returns 0, or -EFAULT after logging the first violation. */
int store_check(const store_t *s);

#endif
