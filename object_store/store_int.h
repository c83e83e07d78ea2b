/* Internal state shared by the store's two halves: store.c (objects, their
 * memory and life cycle, the in-process API) and store_client.c (the socket:
 * connections, framing, descriptor passing, request handling, the get and
 * create queues).  Nothing outside object_store/ includes this. */
#ifndef CRAYLET_OBJECT_STORE_STORE_INT_H
#define CRAYLET_OBJECT_STORE_STORE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/frame_record.h"
#include "common/fb.h"
#include "common/list.h"
#include "common/listen.h"
#include "common/loop.h"
#include "object_store/alloc.h"
#include "object_store/idtab.h"
#include "object_store/plasma_proto.h"
#include "object_store/segment.h"
#include "object_store/store.h"

/* Ray's client maps (mmap_size - 8) bytes: its allocator placed an 8-byte
 * gap in front of each mapping and reports it in the size.  Our segments
 * have no gap, so we add the 8 bytes the client will take off. */
#define STORE_MMAP_GAP 8u
/* Every allocation in the region is aligned (and sized) to this. */
#define STORE_ALIGN 64u
/* Mutable objects (compiled graphs' channels) start with the header Ray's
 * PlasmaObjectHeader occupies on x86-64 and aarch64 Linux (mutable.h). */
#define STORE_MUTABLE_HEADER ((uint64_t)sizeof(mut_header_t))

typedef enum { STORE_OBJ_CREATED, STORE_OBJ_SEALED } store_obj_state_t;

typedef struct store_obj {
    idtab_node_t node; /* id and table link; first member */
    store_obj_state_t state;
    uint64_t data_size;
    uint64_t metadata_size;
    uint64_t header_size; /* STORE_MUTABLE_HEADER for mutable objects, else 0 */
    seg_t *fallback;      /* own file, or NULL: in the region */
    alloc_block_t *block; /* region allocation, or NULL */
    uint64_t offset;      /* of the allocation within its segment */
    uint64_t alloc_bytes; /* bytes taken from the region or the fallback file */
    uint32_t refs;        /* clients holding it, plus the raylet's holds */
    uint32_t holds;       /* store_hold(): the raylet reading it (pushes) */
    uint32_t pins;        /* raylet pins */
    bool delete_pending;  /* delete when refs and pins reach zero */
    bool local_writer;    /* created in-process and not yet sealed */
    bool in_lru;
    struct store_obj *lru_prev, *lru_next;
    uint64_t reply_mark;  /* dedups segments within one Get reply */
    int32_t source;
    id_node_t owner_node_id;
    id_worker_t owner_worker_id;
    int32_t owner_port;
    char *owner_ip;       /* owned; never NULL */
} store_obj_t;

/* What a create needs, from the wire or from the raylet. */
typedef struct {
    id_object_t id;
    uint64_t data_size;
    uint64_t metadata_size;
    bool is_mutable;
    int32_t source;
    const store_owner_t *owner; /* may be NULL */
} store_create_info_t;

typedef struct store_client store_client_t;
typedef struct store_create_req store_create_req_t;
typedef struct store_get_req store_get_req_t;

struct store {
    loop_t *loop;
    store_options_t opts;
    char *socket_path;
    char *plasma_directory;
    char *fallback_directory;
    listener_t *listener; /* the plasma socket, NULL until store_conn_start */

    seg_t *region;
    alloc_t *alloc;
    uint64_t capacity; /* bytes the allocator manages */
    uint64_t next_uid; /* segment unique ids */

    idtab_t *objects;
    idtab_t *waiters; /* object id -> get requests waiting for it */
    store_obj_t *lru_head, *lru_tail; /* head: released longest ago */
    uint64_t lru_bytes;     /* region bytes held by evictable objects */
    uint64_t lru_obj_bytes; /* object bytes (data + metadata) of evictable objects */

    list_t clients;          /* store_client_t */
    uint64_t num_clients;
    uint64_t next_client_id;
    uint64_t num_pending_gets;

    /* The create queue (requests that did not fit when they arrived). */
    list_t cq;               /* store_create_req_t waiting, in arrival order */
    uint64_t cq_count, cq_bytes;
    uint64_t next_request_id;
    uint64_t cq_timer;
    int64_t oom_since_ms; /* -1: not in a full episode */
    bool logged_full;

    fb_builder_t *fbb;
    uint64_t reply_epoch;

    frame_recorder_t *recorder; /* NULL unless recording */

    store_sealed_cb sealed_cb;
    void *sealed_ctx;
    store_deleted_cb deleted_cb;
    void *deleted_ctx;
    store_spill_cb spill_cb;
    void *spill_ctx;
    store_disk_full_cb disk_full_cb;
    void *disk_full_ctx;

    /* Statistics. */
    uint64_t num_unsealed, bytes_unsealed;
    uint64_t num_pinned, bytes_pinned;
    uint64_t num_fallback, bytes_fallback;
    uint64_t num_evicted, bytes_evicted;
    uint64_t num_created, bytes_created;
};

static inline uint64_t store_obj_size(const store_obj_t *o)
{
    return o->data_size + o->metadata_size + o->header_size;
}

/* ---- store.c: objects ---- */

store_obj_t *store_obj_find(const store_t *s, const id_object_t *id);
/* Returns PLASMA_OK with *out, PLASMA_OBJECT_EXISTS, PLASMA_OUT_OF_MEMORY
 * (no room in the region even after evicting; only when !allow_fallback)
 * or PLASMA_OUT_OF_DISK (the fallback file could not be made). */
plasma_err_t store_obj_create(store_t *s, const store_create_info_t *info, bool allow_fallback,
                              store_obj_t **out);
/* The raylet's verdict (store_disk_full_cb): no room on disk for spilling
 * or a fallback file.  False without a callback. */
bool store_disk_full(store_t *s);
/* Marks sealed, serves waiting gets, runs the sealed callback.  The object
 * may be gone when this returns (a callback may free it). */
void store_obj_seal(store_t *s, store_obj_t *o);
/* Frees an unsealed object regardless of references (the caller has
 * dropped the creator's). */
void store_obj_abort(store_t *s, store_obj_t *o);
/* A client starts / stops holding the object. */
void store_obj_ref(store_t *s, store_obj_t *o);
void store_obj_unref(store_t *s, store_obj_t *o);
/* Delete request: PLASMA_OK (freed), PLASMA_OBJECT_NOT_SEALED or
 * PLASMA_OBJECT_IN_USE (deferred). */
plasma_err_t store_obj_delete(store_t *s, store_obj_t *o);
/* The spec a client is sent for the object, and its segment. */
void store_obj_spec(const store_t *s, const store_obj_t *o, plasma_spec_t *spec);
const seg_t *store_obj_segment(const store_t *s, const store_obj_t *o);

/* ---- store_client.c: connections ---- */

int store_conn_start(store_t *s);
/* Closes the listening socket and every client, drops queued requests. */
void store_conn_stop(store_t *s);
/* Serves the gets waiting for a just-sealed object. */
void store_conn_object_sealed(store_t *s, store_obj_t *o);
/* Checks per-client holdings against o->refs; 0 or -EFAULT. */
int store_conn_check(const store_t *s);

#endif
