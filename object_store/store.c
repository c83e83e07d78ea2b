/* Objects, their memory and their life cycle; the in-process API.  The
 * socket side is in store_client.c. */
#include "object_store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/frame.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "object_store/store_int.h"

#define DEFAULT_PLASMA_DIR "/dev/shm"
#define DEFAULT_FALLBACK_DIR "/tmp"
/* Ray leaves 10% of the shared-memory file system free for fragmentation
 * and other users; a region sized to the last byte would SIGBUS instead of
 * failing cleanly when tmpfs fills. */
#define SHM_USABLE_FRACTION 0.9

void store_options_init(store_options_t *o)
{
    *o = (store_options_t){
        .cookie = FRAME_RAY_COOKIE,
        .full_delay_ms = 10,
        .oom_grace_period_ms = 2000,
        .fs_capacity_threshold = 0.95,
    };
}

static char *dup_or(const char *s, const char *dflt)
{
    const char *v = s && *s ? s : dflt;
    if (!v)
        return NULL;
    char *d = xstrdup(v); /* a few bytes at start-up: out of memory here is fatal anyway */
    return d;
}

store_obj_t *store_obj_find(const store_t *s, const id_object_t *id)
{
    idtab_node_t *n = idtab_find(s->objects, id);
    return n ? (store_obj_t *)n : NULL;
}

/* ---- the eviction list ---- */

static void lru_remove(store_t *s, store_obj_t *o)
{
    if (!o->in_lru)
        return;
    if (o->lru_prev)
        o->lru_prev->lru_next = o->lru_next;
    else
        s->lru_head = o->lru_next;
    if (o->lru_next)
        o->lru_next->lru_prev = o->lru_prev;
    else
        s->lru_tail = o->lru_prev;
    o->lru_prev = o->lru_next = NULL;
    o->in_lru = false;
    s->lru_obj_bytes -= store_obj_size(o);
    if (o->block)
        s->lru_bytes -= o->alloc_bytes;
}

static void lru_append(store_t *s, store_obj_t *o)
{
    if (o->in_lru)
        return;
    o->lru_next = NULL;
    o->lru_prev = s->lru_tail;
    if (s->lru_tail)
        s->lru_tail->lru_next = o;
    else
        s->lru_head = o;
    s->lru_tail = o;
    o->in_lru = true;
    s->lru_obj_bytes += store_obj_size(o);
    if (o->block)
        s->lru_bytes += o->alloc_bytes;
}

/* ---- freeing ---- */

static void delete_now(store_t *s, store_obj_t *o, bool notify)
{
    bool sealed = o->state == STORE_OBJ_SEALED;
    uint64_t size = store_obj_size(o);
    id_object_t id = o->node.id;
    idtab_remove(s->objects, &o->node);
    lru_remove(s, o);
    if (!sealed) {
        s->num_unsealed--;
        s->bytes_unsealed -= size;
    }
    if (o->pins) {
        s->num_pinned--;
        s->bytes_pinned -= size;
    }
    if (o->block) {
        alloc_free(s->alloc, o->block);
    } else if (o->fallback) {
        s->num_fallback--;
        s->bytes_fallback -= o->alloc_bytes;
        seg_destroy(o->fallback);
    }
    free(o->owner_ip);
    free(o);
    /* After the object is gone, so the callback sees a consistent store. */
    if (sealed && notify && s->deleted_cb)
        s->deleted_cb(s->deleted_ctx, &id);
}

static void evict(store_t *s, store_obj_t *o)
{
    s->num_evicted++;
    s->bytes_evicted += store_obj_size(o);
    delete_now(s, o, true);
}

/* Where an object that nobody uses any more goes: away if a delete was
 * asked for, else onto the eviction list. */
static void settle(store_t *s, store_obj_t *o)
{
    if (o->state != STORE_OBJ_SEALED || o->refs || o->pins)
        return;
    if (o->delete_pending)
        delete_now(s, o, true);
    else
        lru_append(s, o);
}

/* ---- allocation ---- */

static uint64_t region_free(const store_t *s)
{
    alloc_stats_t st;
    alloc_get_stats(s->alloc, &st);
    return st.capacity - st.used;
}

/* Takes `size` bytes from the region, evicting released objects (least
 * recently released first) until it fits.  Evicts nothing when even
 * evicting everything evictable could not make room. */
static int region_alloc(store_t *s, uint64_t size, alloc_block_t **out)
{
    uint64_t need = size ? (size + STORE_ALIGN - 1) / STORE_ALIGN * STORE_ALIGN : STORE_ALIGN;
    if (size > s->capacity || need > s->capacity)
        return -ENOMEM;
    for (;;) {
        if (alloc_alloc(s->alloc, need, out) == 0)
            return 0;
        if (region_free(s) + s->lru_bytes < need)
            return -ENOMEM;
        /* Objects in fallback files hold no region memory: skip them. */
        store_obj_t *v = s->lru_head;
        while (v && !v->block)
            v = v->lru_next;
        if (!v)
            return -ENOMEM;
        evict(s, v);
    }
}

static plasma_err_t fallback_alloc(store_t *s, uint64_t size, seg_t **out)
{
    *out = NULL;
    const char *dir = s->fallback_directory;
    uint64_t avail, total;
    if (s->opts.fs_capacity_threshold < 1.0 && seg_fs_space(dir, &avail, &total) == 0 &&
        total > 0) {
        double after = (double)(total - avail) + (double)size;
        if (size > avail || after / (double)total > s->opts.fs_capacity_threshold) {
            log_warn("object store: fallback allocation of %" PRIu64 " bytes refused: %s would be "
                     "over %.0f%% full",
                     size, dir, s->opts.fs_capacity_threshold * 100);
            return PLASMA_OUT_OF_DISK;
        }
    }
    seg_options_t so = {
        .directory = dir,
        .size = size ? size : 1,
        .unique_id = s->next_uid++,
        .reserve = true,
        .exclude_from_core = true,
    };
    int r = seg_create(&so, out);
    if (r != 0) {
        if (r == -ENOSPC)
            log_warn("object store: no disk space in %s for a %" PRIu64 "-byte fallback object",
                     dir, size);
        return PLASMA_OUT_OF_DISK;
    }
    return PLASMA_OK;
}

static void init_mutable_header(uint8_t *h)
{
    /* The state a fresh PlasmaObjectHeader has: everything zero and a name
     * unique on this host, from which readers and writers derive the names
     * of the object's semaphores. */
    mut_header_t *m = (mut_header_t *)h;
    memset(m, 0, sizeof *m);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(m->unique_name, sizeof m->unique_name, "%ld-%lld", (long)getpid(),
             (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
}

static uint8_t *obj_base(const store_t *s, const store_obj_t *o)
{
    return seg_base(o->fallback ? o->fallback : s->region) + o->offset;
}

plasma_err_t store_obj_create(store_t *s, const store_create_info_t *in, bool allow_fallback,
                              store_obj_t **out)
{
    *out = NULL;
    if (store_obj_find(s, &in->id))
        return PLASMA_OBJECT_EXISTS;
    uint64_t header = in->is_mutable ? STORE_MUTABLE_HEADER : 0;
    /* Sizes come from peers; anything whose sum overflows cannot exist. */
    if (in->data_size > (UINT64_MAX >> 2) || in->metadata_size > (UINT64_MAX >> 2))
        return allow_fallback ? PLASMA_OUT_OF_DISK : PLASMA_OUT_OF_MEMORY;
    uint64_t size = in->data_size + in->metadata_size + header;

    const char *ip = in->owner && in->owner->ip ? in->owner->ip : "";
    store_obj_t *o = calloc(1, sizeof *o);
    char *ipcopy = strndup(ip, PLASMA_MAX_OWNER_IP_LEN);
    if (!o || !ipcopy) {
        free(o);
        free(ipcopy);
        log_error("object store: out of memory creating an object record");
        return allow_fallback ? PLASMA_OUT_OF_DISK : PLASMA_OUT_OF_MEMORY;
    }

    alloc_block_t *block = NULL;
    seg_t *fb = NULL;
    if (region_alloc(s, size, &block) != 0) {
        if (!allow_fallback) {
            free(o);
            free(ipcopy);
            return PLASMA_OUT_OF_MEMORY;
        }
        plasma_err_t e = fallback_alloc(s, size, &fb);
        if (e != PLASMA_OK) {
            free(o);
            free(ipcopy);
            return e;
        }
        log_info("object store: region full, object of %" PRIu64 " bytes placed in a fallback file",
                 size);
    }

    o->node.id = in->id;
    o->state = STORE_OBJ_CREATED;
    o->data_size = in->data_size;
    o->metadata_size = in->metadata_size;
    o->header_size = header;
    o->source = in->source;
    o->owner_ip = ipcopy;
    if (in->owner) {
        o->owner_node_id = in->owner->node_id;
        o->owner_worker_id = in->owner->worker_id;
        o->owner_port = in->owner->port;
    } else {
        ID_SET_NIL(&o->owner_node_id);
        ID_SET_NIL(&o->owner_worker_id);
    }
    if (block) {
        o->block = block;
        o->offset = alloc_block_offset(s->alloc, block);
        o->alloc_bytes = alloc_block_size(s->alloc, block);
    } else {
        o->fallback = fb;
        o->offset = 0;
        o->alloc_bytes = seg_size(fb);
        s->num_fallback++;
        s->bytes_fallback += o->alloc_bytes;
    }
    if (header)
        init_mutable_header(obj_base(s, o));
    /* Cannot fail: the ID was checked absent above. */
    (void)idtab_insert(s->objects, &o->node);
    s->num_unsealed++;
    s->bytes_unsealed += size;
    s->num_created++;
    s->bytes_created += size;
    *out = o;
    return PLASMA_OK;
}

/* ---- life cycle ---- */

void store_obj_seal(store_t *s, store_obj_t *o)
{
    o->state = STORE_OBJ_SEALED;
    o->local_writer = false;
    s->num_unsealed--;
    s->bytes_unsealed -= store_obj_size(o);
    store_conn_object_sealed(s, o);
    id_object_t id = o->node.id;
    if (s->sealed_cb) {
        store_object_info_t info = {
            .id = id,
            .data_size = o->data_size,
            .metadata_size = o->metadata_size,
            .owner = {.node_id = o->owner_node_id,
                      .ip = o->owner_ip,
                      .port = o->owner_port,
                      .worker_id = o->owner_worker_id},
            .source = o->source,
            .is_mutable = o->header_size != 0,
            .fallback = o->fallback != NULL,
        };
        s->sealed_cb(s->sealed_ctx, &info);
        /* The callback may have freed or pinned it. */
        o = store_obj_find(s, &id);
        if (!o)
            return;
    }
    settle(s, o);
}

void store_obj_abort(store_t *s, store_obj_t *o) { delete_now(s, o, false); }

void store_obj_ref(store_t *s, store_obj_t *o)
{
    if (o->refs == 0)
        lru_remove(s, o);
    o->refs++;
}

void store_obj_unref(store_t *s, store_obj_t *o)
{
    if (o->refs == 0)
        return;
    o->refs--;
    if (o->refs || o->pins)
        return;
    if (o->state != STORE_OBJ_SEALED) {
        if (!o->local_writer) {
            /* Its creator let go without sealing or aborting: nobody can
             * finish it any more, so it would leak. */
            char hex[ID_HEX_BUF];
            log_warn("object store: object %s released before it was sealed; freeing it",
                     ID_TO_HEX(&o->node.id, hex));
            delete_now(s, o, false);
        }
        return;
    }
    settle(s, o);
}

plasma_err_t store_obj_delete(store_t *s, store_obj_t *o)
{
    if (o->state != STORE_OBJ_SEALED) {
        o->delete_pending = true;
        return PLASMA_OBJECT_NOT_SEALED;
    }
    if (o->refs || o->pins) {
        o->delete_pending = true;
        return PLASMA_OBJECT_IN_USE;
    }
    delete_now(s, o, true);
    return PLASMA_OK;
}

const seg_t *store_obj_segment(const store_t *s, const store_obj_t *o)
{
    return o->fallback ? o->fallback : s->region;
}

void store_obj_spec(const store_t *s, const store_obj_t *o, plasma_spec_t *sp)
{
    const seg_t *seg = store_obj_segment(s, o);
    *sp = (plasma_spec_t){
        .segment_index = seg_fd(seg),
        .unique_fd_id = (int64_t)seg_unique_id(seg),
        .header_offset = o->offset,
        .data_offset = o->offset + o->header_size,
        .data_size = o->data_size,
        .metadata_offset = o->offset + o->header_size + o->data_size,
        .metadata_size = o->metadata_size,
        .allocated_size = o->data_size + o->metadata_size,
        .fallback_allocated = o->fallback != NULL,
        .device_num = 0,
        .is_mutable = o->header_size != 0,
    };
}

/* ---- construction ---- */

store_t *store_create(loop_t *loop, const store_options_t *opts)
{
    if (opts->capacity == 0) {
        log_error("object store: capacity (--object_store_memory) must be positive");
        return NULL;
    }
    store_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->loop = loop;
    list_init(&s->clients);
    list_init(&s->cq);
    s->opts = *opts;
    s->oom_since_ms = -1;
    s->next_request_id = 1;
    s->next_uid = 1;
    s->socket_path = dup_or(opts->socket_path, NULL);
    s->plasma_directory = dup_or(opts->plasma_directory, DEFAULT_PLASMA_DIR);
    s->fallback_directory = dup_or(opts->fallback_directory, DEFAULT_FALLBACK_DIR);
    s->opts.socket_path = s->socket_path;
    s->opts.plasma_directory = s->plasma_directory;
    s->opts.fallback_directory = s->fallback_directory;
    if (!s->opts.cookie)
        s->opts.cookie = FRAME_RAY_COOKIE;
    if (!s->opts.full_delay_ms)
        s->opts.full_delay_ms = 10;
    s->recorder = frame_recorder_create(opts->record_frames_dir, "plasma", s->opts.cookie);
    s->opts.record_frames_dir = NULL;

    uint64_t capacity = opts->capacity;
    uint64_t avail, total;
    if (!opts->huge_pages && seg_fs_space(s->plasma_directory, &avail, &total) == 0) {
        uint64_t usable = (uint64_t)((double)avail * SHM_USABLE_FRACTION);
        if (capacity > usable) {
            log_warn("object store: %" PRIu64 " bytes requested but %s has %" PRIu64
                     " bytes free; using %" PRIu64 " (a container may need a larger --shm-size)",
                     capacity, s->plasma_directory, avail, usable);
            capacity = usable;
        }
    }
    capacity = capacity / STORE_ALIGN * STORE_ALIGN;
    if (capacity == 0) {
        log_error("object store: no usable memory in %s", s->plasma_directory);
        goto fail;
    }
    seg_options_t so = {
        .directory = s->plasma_directory,
        .size = capacity,
        .unique_id = s->next_uid++,
        .huge_pages = opts->huge_pages,
        .populate = opts->preallocate,
        .exclude_from_core = true,
    };
    if (seg_create(&so, &s->region) != 0) {
        log_error("object store: cannot create the %" PRIu64 "-byte region in %s", capacity,
                  s->plasma_directory);
        goto fail;
    }
    s->capacity = capacity;
    s->alloc = alloc_create(capacity, STORE_ALIGN);
    s->objects = idtab_create();
    s->waiters = idtab_create();
    s->fbb = fb_builder_create(4096);
    if (!s->alloc || !s->objects || !s->waiters || !s->fbb)
        goto fail;
    if (store_conn_start(s) != 0)
        goto fail;
    log_info("object store: %" PRIu64 " bytes in %s%s, fallback directory %s%s%s", capacity,
             s->plasma_directory, opts->huge_pages ? " (huge pages)" : "", s->fallback_directory,
             s->socket_path ? ", socket " : "", s->socket_path ? s->socket_path : "");
    return s;
fail:
    store_destroy(s);
    return NULL;
}

void store_destroy(store_t *s)
{
    if (!s)
        return;
    store_conn_stop(s);
    frame_recorder_destroy(s->recorder);
    if (s->objects) {
        idtab_node_t *n = idtab_first(s->objects);
        while (n) {
            idtab_node_t *next = idtab_next(s->objects, n);
            delete_now(s, (store_obj_t *)n, false);
            n = next;
        }
    }
    idtab_destroy(s->objects);
    idtab_destroy(s->waiters);
    alloc_destroy(s->alloc);
    seg_destroy(s->region);
    fb_builder_destroy(s->fbb);
    free(s->socket_path);
    free(s->plasma_directory);
    free(s->fallback_directory);
    free(s);
}

void store_set_sealed_cb(store_t *s, store_sealed_cb cb, void *ctx)
{
    s->sealed_cb = cb;
    s->sealed_ctx = ctx;
}

void store_set_deleted_cb(store_t *s, store_deleted_cb cb, void *ctx)
{
    s->deleted_cb = cb;
    s->deleted_ctx = ctx;
}

void store_set_spill_cb(store_t *s, store_spill_cb cb, void *ctx)
{
    s->spill_cb = cb;
    s->spill_ctx = ctx;
}

void store_set_disk_full_cb(store_t *s, store_disk_full_cb cb, void *ctx)
{
    s->disk_full_cb = cb;
    s->disk_full_ctx = ctx;
}

void store_set_fs_capacity_threshold(store_t *s, double threshold)
{
    s->opts.fs_capacity_threshold = threshold;
}

bool store_disk_full(store_t *s)
{
    return s->disk_full_cb && s->disk_full_cb(s->disk_full_ctx);
}

/* ---- in-process API ---- */

bool store_contains(const store_t *s, const id_object_t *id)
{
    const store_obj_t *o = store_obj_find(s, id);
    return o && o->state == STORE_OBJ_SEALED;
}

static int store_obj_hold(store_t *s, store_obj_t *o)
{
    if (!o)
        return -ENOENT;
    if (o->state != STORE_OBJ_SEALED)
        return -EAGAIN;
    o->holds++;
    store_obj_ref(s, o);
    return 0;
}

int store_hold(store_t *s, const id_object_t *id)
{
    return store_obj_hold(s, store_obj_find(s, id));
}

int store_hold_mutable(store_t *s, const id_object_t *id, store_mutable_t *out)
{
    *out = (store_mutable_t){0};
    store_obj_t *o = store_obj_find(s, id);
    if (o && o->header_size == 0)
        return -EINVAL;
    int rc = store_obj_hold(s, o);
    if (rc != 0)
        return rc;
    uint8_t *base = obj_base(s, o);
    *out = (store_mutable_t){.header = (mut_header_t *)base,
                             .buffer = base + o->header_size,
                             .capacity = o->data_size + o->metadata_size};
    return 0;
}

int store_unhold(store_t *s, const id_object_t *id)
{
    store_obj_t *o = store_obj_find(s, id);
    if (!o || o->holds == 0)
        return -ENOENT;
    o->holds--;
    store_obj_unref(s, o);
    return 0;
}

int store_pin(store_t *s, const id_object_t *id)
{
    store_obj_t *o = store_obj_find(s, id);
    if (!o)
        return -ENOENT;
    if (o->state != STORE_OBJ_SEALED)
        return -EAGAIN;
    if (o->pins == 0) {
        s->num_pinned++;
        s->bytes_pinned += store_obj_size(o);
        lru_remove(s, o);
    }
    o->pins++;
    return 0;
}

int store_unpin(store_t *s, const id_object_t *id)
{
    store_obj_t *o = store_obj_find(s, id);
    if (!o || o->pins == 0)
        return -ENOENT;
    if (--o->pins == 0) {
        s->num_pinned--;
        s->bytes_pinned -= store_obj_size(o);
        settle(s, o);
    }
    return 0;
}

int store_free(store_t *s, const id_object_t *id)
{
    store_obj_t *o = store_obj_find(s, id);
    if (!o)
        return -ENOENT;
    return store_obj_delete(s, o) == PLASMA_OK ? 0 : -EBUSY;
}

bool store_is_spillable(const store_t *s, const id_object_t *id)
{
    const store_obj_t *o = store_obj_find(s, id);
    return o && o->state == STORE_OBJ_SEALED && o->pins && !o->refs;
}

static int store_create_raylet(store_t *s, const id_object_t *id, uint64_t data_size, uint64_t metadata_size,
                               const store_owner_t *owner, int32_t source, bool allow_fallback, uint8_t **data);

int store_create_local(store_t *s, const id_object_t *id, uint64_t data_size,
                       uint64_t metadata_size, const store_owner_t *owner, int32_t source,
                       uint8_t **data)
{
    return store_create_raylet(s, id, data_size, metadata_size, owner, source, true, data);
}

int store_create_pulled(store_t *s, const id_object_t *id, uint64_t data_size, uint64_t metadata_size,
                        const store_owner_t *owner, bool may_fall_back, uint8_t **data)
{
    bool larger_than_region = data_size > s->capacity || metadata_size > s->capacity - data_size;
    return store_create_raylet(s, id, data_size, metadata_size, owner, PLASMA_SOURCE_RECEIVED_FROM_REMOTE_RAYLET,
                               larger_than_region || may_fall_back, data);
}

static int store_create_raylet(store_t *s, const id_object_t *id, uint64_t data_size, uint64_t metadata_size,
                               const store_owner_t *owner, int32_t source, bool allow_fallback, uint8_t **data)
{
    *data = NULL;
    store_create_info_t in = {.id = *id,
                              .data_size = data_size,
                              .metadata_size = metadata_size,
                              .source = source,
                              .owner = owner};
    store_obj_t *o;
    /* Memory first; a full disk takes neither a fallback file nor (for a
     * pull) a spill to make room: OutOfDisk now, as in Ray. */
    plasma_err_t err = store_obj_create(s, &in, false, &o);
    if (err == PLASMA_OUT_OF_MEMORY)
        err = store_disk_full(s) ? PLASMA_OUT_OF_DISK
                                 : allow_fallback ? store_obj_create(s, &in, true, &o) : err;
    switch (err) {
    case PLASMA_OK:
        break;
    case PLASMA_OBJECT_EXISTS:
        return -EEXIST;
    case PLASMA_OUT_OF_DISK:
        return -ENOSPC;
    default:
        return -ENOMEM;
    }
    o->local_writer = true;
    *data = obj_base(s, o);
    return 0;
}

int store_seal_local(store_t *s, const id_object_t *id)
{
    store_obj_t *o = store_obj_find(s, id);
    if (!o || o->state != STORE_OBJ_CREATED || !o->local_writer)
        return -ENOENT;
    store_obj_seal(s, o);
    return 0;
}

int store_abort_local(store_t *s, const id_object_t *id)
{
    store_obj_t *o = store_obj_find(s, id);
    if (!o || o->state != STORE_OBJ_CREATED || !o->local_writer)
        return -ENOENT;
    /* Holders of an unsealed object can only be its creator, which is us. */
    store_obj_abort(s, o);
    return 0;
}

int store_put_local(store_t *s, const id_object_t *id, const void *data, uint64_t data_size,
                    const void *metadata, uint64_t metadata_size, const store_owner_t *owner,
                    int32_t source)
{
    uint8_t *p;
    int r = store_create_local(s, id, data_size, metadata_size, owner, source, &p);
    if (r)
        return r;
    if (data_size)
        memcpy(p, data, data_size);
    if (metadata_size)
        memcpy(p + data_size, metadata, metadata_size);
    return store_seal_local(s, id);
}

int store_read_local(const store_t *s, const id_object_t *id, store_view_t *out)
{
    *out = (store_view_t){0};
    const store_obj_t *o = store_obj_find(s, id);
    if (!o || o->state != STORE_OBJ_SEALED)
        return -ENOENT;
    const uint8_t *base = obj_base(s, o) + o->header_size;
    *out = (store_view_t){.data = base,
                          .data_size = o->data_size,
                          .metadata = base + o->data_size,
                          .metadata_size = o->metadata_size,
                          .owner = {.node_id = o->owner_node_id,
                                    .ip = o->owner_ip,
                                    .port = o->owner_port,
                                    .worker_id = o->owner_worker_id}};
    return 0;
}

/* ---- statistics and checks ---- */

void store_get_stats(const store_t *s, store_stats_t *out)
{
    alloc_stats_t a;
    alloc_get_stats(s->alloc, &a);
    *out = (store_stats_t){
        .capacity = s->capacity,
        .bytes_used = a.used + s->bytes_fallback,
        .bytes_fallback = s->bytes_fallback,
        .bytes_pinned = s->bytes_pinned,
        .bytes_evictable = s->lru_obj_bytes,
        .bytes_unsealed = s->bytes_unsealed,
        .num_objects = idtab_count(s->objects),
        .num_unsealed = s->num_unsealed,
        .num_pinned = s->num_pinned,
        .num_fallback = s->num_fallback,
        .num_evicted = s->num_evicted,
        .bytes_evicted = s->bytes_evicted,
        .num_created = s->num_created,
        .bytes_created = s->bytes_created,
        .num_clients = s->num_clients,
        .num_pending_creates = s->cq_count,
        .bytes_pending_creates = s->cq_bytes,
        .num_pending_gets = s->num_pending_gets,
        .largest_free = a.largest_free,
    };
}

size_t store_debug_string(const store_t *s, char *buf, size_t cap)
{
    store_stats_t st;
    store_get_stats(s, &st);
    strbuf_t b = {.buf = buf, .cap = cap};
    if (cap)
        buf[0] = '\0';
    strbuf_printf(&b, "Plasma store debug dump:\n");
    strbuf_printf(&b, "Current usage: %.6f / %.6f GB\n", st.bytes_used / 1e9, st.capacity / 1e9);
    strbuf_printf(&b, "- num objects: %" PRIu64 " (%" PRIu64 " unsealed, %" PRIu64 " pinned, %" PRIu64
                  " in fallback files)\n",
              st.num_objects, st.num_unsealed, st.num_pinned, st.num_fallback);
    strbuf_printf(&b, "- bytes pinned: %" PRIu64 ", evictable: %" PRIu64 ", unsealed: %" PRIu64
                  ", fallback: %" PRIu64 "\n",
              st.bytes_pinned, st.bytes_evictable, st.bytes_unsealed, st.bytes_fallback);
    strbuf_printf(&b, "- num bytes created total: %" PRIu64 " (%" PRIu64 " objects)\n",
              st.bytes_created, st.num_created);
    strbuf_printf(&b, "- evicted: %" PRIu64 " objects, %" PRIu64 " bytes\n", st.num_evicted,
              st.bytes_evicted);
    strbuf_printf(&b, "%" PRIu64 " pending objects of total size %" PRIu64 "MB\n",
              st.num_pending_creates, st.bytes_pending_creates / 1024 / 1024);
    strbuf_printf(&b, "- clients: %" PRIu64 ", pending gets: %" PRIu64 ", largest free block: %" PRIu64
                  "\n",
              st.num_clients, st.num_pending_gets, st.largest_free);
    return b.len;
}

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            log_error("store_check: " __VA_ARGS__);                                       \
            return -EFAULT;                                                               \
        }                                                                                 \
    } while (0)

int store_check(const store_t *s)
{
    if (alloc_check(s->alloc) != 0)
        return -EFAULT;
    uint64_t unsealed = 0, bunsealed = 0, pinned = 0, bpinned = 0, nfb = 0, bfb = 0;
    uint64_t region = 0, nlru = 0;
    for (idtab_node_t *n = idtab_first(s->objects); n; n = idtab_next(s->objects, n)) {
        const store_obj_t *o = (const store_obj_t *)n;
        bool sealed = o->state == STORE_OBJ_SEALED;
        CHECK(!!o->block != !!o->fallback, "object in neither or both kinds of memory");
        CHECK(o->alloc_bytes >= store_obj_size(o) && (o->alloc_bytes || !store_obj_size(o)),
              "allocation smaller than the object");
        if (!sealed) {
            unsealed++;
            bunsealed += store_obj_size(o);
            CHECK(!o->in_lru && !o->pins, "unsealed object evictable or pinned");
            CHECK(o->refs || o->local_writer, "unsealed object with no creator");
        }
        if (o->pins) {
            pinned++;
            bpinned += store_obj_size(o);
        }
        if (o->fallback) {
            nfb++;
            bfb += o->alloc_bytes;
        } else {
            region += o->alloc_bytes;
            CHECK(o->offset + o->alloc_bytes <= s->capacity, "allocation past the region");
        }
        bool idle = sealed && !o->refs && !o->pins;
        CHECK(o->in_lru == idle, "object %s the eviction list wrongly",
              o->in_lru ? "on" : "off");
        CHECK(!(idle && o->delete_pending), "idle object kept despite a pending delete");
        if (o->in_lru)
            nlru++;
    }
    CHECK(unsealed == s->num_unsealed && bunsealed == s->bytes_unsealed, "unsealed counters off");
    CHECK(pinned == s->num_pinned && bpinned == s->bytes_pinned, "pinned counters off");
    CHECK(nfb == s->num_fallback && bfb == s->bytes_fallback, "fallback counters off");
    alloc_stats_t a;
    alloc_get_stats(s->alloc, &a);
    CHECK(a.used == region, "region bytes %" PRIu64 " held by objects, %" PRIu64 " allocated",
          region, a.used);
    uint64_t walked = 0, lbytes = 0, obytes = 0;
    const store_obj_t *prev = NULL;
    for (const store_obj_t *o = s->lru_head; o; o = o->lru_next) {
        CHECK(o->in_lru && o->lru_prev == prev, "eviction list links broken");
        CHECK(store_obj_find(s, &o->node.id) == o, "evictable object not in the table");
        if (o->block)
            lbytes += o->alloc_bytes;
        obytes += store_obj_size(o);
        walked++;
        prev = o;
    }
    CHECK(prev == s->lru_tail && walked == nlru && lbytes == s->lru_bytes &&
              obytes == s->lru_obj_bytes,
          "eviction list has %" PRIu64 " members, %" PRIu64 " objects marked", walked, nlru);
    return store_conn_check(s);
}
