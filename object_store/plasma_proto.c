#include "object_store/plasma_proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Slots, in plasma.fbs declaration order. */
enum { CRQ_OBJECT_ID, CRQ_OWNER_NODE_ID, CRQ_OWNER_IP, CRQ_OWNER_PORT, CRQ_OWNER_WORKER_ID,
       CRQ_IS_MUTABLE, CRQ_DATA_SIZE, CRQ_METADATA_SIZE, CRQ_SOURCE, CRQ_DEVICE_NUM,
       CRQ_TRY_IMMEDIATELY };
enum { RETRY_OBJECT_ID, RETRY_REQUEST_ID };
enum { CRP_OBJECT_ID, CRP_RETRY_ID, CRP_PLASMA_OBJECT, CRP_ERROR, CRP_STORE_FD, CRP_UNIQUE_FD_ID,
       CRP_MMAP_SIZE, CRP_IPC_HANDLE };
enum { ID_SLOT = 0, SEAL_ERROR = 1 };
enum { GRQ_OBJECT_IDS, GRQ_TIMEOUT_MS };
enum { GRP_OBJECT_IDS, GRP_PLASMA_OBJECTS, GRP_STORE_FDS, GRP_UNIQUE_FD_IDS, GRP_MMAP_SIZES,
       GRP_HANDLES };
enum { RLQ_OBJECT_ID, RLQ_MAY_UNMAP };
enum { RLP_OBJECT_ID, RLP_SHOULD_UNMAP, RLP_ERROR };
enum { DLQ_COUNT, DLQ_OBJECT_IDS };
enum { DLP_COUNT, DLP_OBJECT_IDS, DLP_ERRORS };
enum { CTP_OBJECT_ID, CTP_HAS_OBJECT };
enum { CNP_MEMORY_CAPACITY };
enum { DBP_DEBUG_STRING };

/* PlasmaObjectSpec member offsets. */
enum { SP_SEGMENT_INDEX = 0, SP_UNIQUE_FD_ID = 8, SP_HEADER_OFFSET = 16, SP_DATA_OFFSET = 24,
       SP_DATA_SIZE = 32, SP_METADATA_OFFSET = 40, SP_METADATA_SIZE = 48, SP_ALLOCATED_SIZE = 56,
       SP_FALLBACK = 64, SP_DEVICE_NUM = 68, SP_IS_MUTABLE = 72 };

static const char *const msg_names[PLASMA_MSG_COUNT] = {
    "PlasmaDisconnectClient", "PlasmaCreateRequest", "PlasmaCreateRetryRequest",
    "PlasmaCreateReply", "PlasmaAbortRequest", "PlasmaAbortReply", "PlasmaSealRequest",
    "PlasmaSealReply", "PlasmaGetRequest", "PlasmaGetReply", "PlasmaReleaseRequest",
    "PlasmaReleaseReply", "PlasmaDeleteRequest", "PlasmaDeleteReply", "PlasmaContainsRequest",
    "PlasmaContainsReply", "PlasmaConnectRequest", "PlasmaConnectReply",
    "PlasmaGetDebugStringRequest", "PlasmaGetDebugStringReply",
};

const char *plasma_msg_name(int64_t type)
{
    return type >= 0 && type < PLASMA_MSG_COUNT ? msg_names[type] : "unknown";
}

const char *plasma_err_name(int32_t err)
{
    static const char *const names[] = {"OK", "ObjectExists", "ObjectNonexistent", "OutOfMemory",
                                        "ObjectNotSealed", "ObjectInUse", "UnexpectedError",
                                        "ObjectSealed", "OutOfDisk"};
    return err >= 0 && err <= PLASMA_OUT_OF_DISK ? names[err] : "unknown";
}

/* ---- the spec struct ---- */

void plasma_spec_pack(const plasma_spec_t *s, uint8_t out[PLASMA_SPEC_SIZE])
{
    memset(out, 0, PLASMA_SPEC_SIZE);
    fb_store_u32(out + SP_SEGMENT_INDEX, (uint32_t)s->segment_index);
    fb_store_u64(out + SP_UNIQUE_FD_ID, (uint64_t)s->unique_fd_id);
    fb_store_u64(out + SP_HEADER_OFFSET, s->header_offset);
    fb_store_u64(out + SP_DATA_OFFSET, s->data_offset);
    fb_store_u64(out + SP_DATA_SIZE, s->data_size);
    fb_store_u64(out + SP_METADATA_OFFSET, s->metadata_offset);
    fb_store_u64(out + SP_METADATA_SIZE, s->metadata_size);
    fb_store_u64(out + SP_ALLOCATED_SIZE, s->allocated_size);
    out[SP_FALLBACK] = s->fallback_allocated;
    fb_store_u32(out + SP_DEVICE_NUM, (uint32_t)s->device_num);
    out[SP_IS_MUTABLE] = s->is_mutable;
}

int plasma_spec_unpack(const fb_struct_t *in, plasma_spec_t *s)
{
    *s = (plasma_spec_t){0};
    if (in->p && in->size != PLASMA_SPEC_SIZE)
        return CR_EBADMSG;
    int r = 0;
    r |= fb_struct_i32(in, SP_SEGMENT_INDEX, &s->segment_index);
    r |= fb_struct_i64(in, SP_UNIQUE_FD_ID, &s->unique_fd_id);
    r |= fb_struct_u64(in, SP_HEADER_OFFSET, &s->header_offset);
    r |= fb_struct_u64(in, SP_DATA_OFFSET, &s->data_offset);
    r |= fb_struct_u64(in, SP_DATA_SIZE, &s->data_size);
    r |= fb_struct_u64(in, SP_METADATA_OFFSET, &s->metadata_offset);
    r |= fb_struct_u64(in, SP_METADATA_SIZE, &s->metadata_size);
    r |= fb_struct_u64(in, SP_ALLOCATED_SIZE, &s->allocated_size);
    r |= fb_struct_bool(in, SP_FALLBACK, &s->fallback_allocated);
    r |= fb_struct_i32(in, SP_DEVICE_NUM, &s->device_num);
    r |= fb_struct_bool(in, SP_IS_MUTABLE, &s->is_mutable);
    return r ? CR_EBADMSG : 0;
}

/* ---- reading helpers ---- */

static int read_object_id(const fb_table_t *t, unsigned slot, id_object_t *id)
{
    fb_str_t s;
    if (fb_read_str(t, slot, &s) != 0)
        return CR_EBADMSG;
    return id_from_binary(s.data, s.len, id->b, sizeof id->b) ? CR_EBADMSG : 0;
}

/* Owner IDs are optional: Ray accepts an empty string as the nil ID. */
static int read_opt_id(const fb_table_t *t, unsigned slot, uint8_t *out, size_t size)
{
    fb_str_t s;
    if (fb_read_str(t, slot, &s) != 0)
        return CR_EBADMSG;
    if (s.len == 0) {
        id_set_nil(out, size);
        return 0;
    }
    return id_from_binary(s.data, s.len, out, size) ? CR_EBADMSG : 0;
}

static int read_ids(const fb_table_t *t, unsigned slot, plasma_ids_t *ids)
{
    if (fb_read_vec_ref(t, slot, &ids->vec) != 0)
        return CR_EBADMSG;
    ids->count = fb_vec_len(&ids->vec);
    return ids->count > PLASMA_MAX_IDS_PER_REQUEST ? CR_EBADMSG : 0;
}

int plasma_ids_get(const plasma_ids_t *ids, uint32_t i, id_object_t *out)
{
    fb_str_t s;
    if (i >= ids->count || fb_vec_str(&ids->vec, i, &s) != 0)
        return CR_EBADMSG;
    return id_from_binary(s.data, s.len, out->b, sizeof out->b) ? CR_EBADMSG : 0;
}

/* ---- requests: decode ---- */

int plasma_decode_create_req(const uint8_t *buf, size_t len, plasma_create_req_t *o)
{
    *o = (plasma_create_req_t){.owner_ip = ""};
    fb_table_t t;
    fb_str_t ip;
    if (fb_root(buf, len, &t) || read_object_id(&t, CRQ_OBJECT_ID, &o->object_id) ||
        read_opt_id(&t, CRQ_OWNER_NODE_ID, o->owner_node_id.b, sizeof o->owner_node_id.b) ||
        fb_read_str(&t, CRQ_OWNER_IP, &ip) || ip.len > PLASMA_MAX_OWNER_IP_LEN ||
        fb_read_i32(&t, CRQ_OWNER_PORT, 0, &o->owner_port) ||
        read_opt_id(&t, CRQ_OWNER_WORKER_ID, o->owner_worker_id.b, sizeof o->owner_worker_id.b) ||
        fb_read_bool(&t, CRQ_IS_MUTABLE, false, &o->is_mutable) ||
        fb_read_u64(&t, CRQ_DATA_SIZE, 0, &o->data_size) ||
        fb_read_u64(&t, CRQ_METADATA_SIZE, 0, &o->metadata_size) ||
        fb_read_i32(&t, CRQ_SOURCE, 0, &o->source) ||
        fb_read_i32(&t, CRQ_DEVICE_NUM, 0, &o->device_num) ||
        fb_read_bool(&t, CRQ_TRY_IMMEDIATELY, false, &o->try_immediately))
        return CR_EBADMSG;
    o->owner_ip = ip.data;
    o->owner_ip_len = ip.len;
    return 0;
}

int plasma_decode_create_retry_req(const uint8_t *buf, size_t len, id_object_t *id,
                                   uint64_t *request_id)
{
    fb_table_t t;
    *request_id = 0;
    if (fb_root(buf, len, &t) || read_object_id(&t, RETRY_OBJECT_ID, id) ||
        fb_read_u64(&t, RETRY_REQUEST_ID, 0, request_id))
        return CR_EBADMSG;
    return 0;
}

int plasma_decode_id_req(const uint8_t *buf, size_t len, id_object_t *id)
{
    fb_table_t t;
    if (fb_root(buf, len, &t) || read_object_id(&t, ID_SLOT, id))
        return CR_EBADMSG;
    return 0;
}

int plasma_decode_release_req(const uint8_t *buf, size_t len, id_object_t *id, bool *may_unmap)
{
    fb_table_t t;
    *may_unmap = false;
    if (fb_root(buf, len, &t) || read_object_id(&t, RLQ_OBJECT_ID, id) ||
        fb_read_bool(&t, RLQ_MAY_UNMAP, false, may_unmap))
        return CR_EBADMSG;
    return 0;
}

int plasma_decode_get_req(const uint8_t *buf, size_t len, plasma_ids_t *ids, int64_t *timeout_ms)
{
    fb_table_t t;
    *ids = (plasma_ids_t){0};
    *timeout_ms = 0;
    if (fb_root(buf, len, &t) || read_ids(&t, GRQ_OBJECT_IDS, ids) ||
        fb_read_i64(&t, GRQ_TIMEOUT_MS, 0, timeout_ms))
        return CR_EBADMSG;
    return 0;
}

int plasma_decode_delete_req(const uint8_t *buf, size_t len, plasma_ids_t *ids)
{
    fb_table_t t;
    *ids = (plasma_ids_t){0};
    /* The count field is redundant with the vector; the vector is what is
     * bounds-checked, so it alone decides. */
    if (fb_root(buf, len, &t) || read_ids(&t, DLQ_OBJECT_IDS, ids))
        return CR_EBADMSG;
    return 0;
}

/* ---- requests: encode ---- */

static int finish(fb_builder_t *b, fb_ref_t root, const uint8_t **out, size_t *len)
{
    return fb_builder_finish(b, root, out, len);
}

static fb_ref_t id_string(fb_builder_t *b, const uint8_t *id, size_t size)
{
    return fb_create_string(b, id, size);
}

/* A nil owner ID goes out as the empty string, as Ray sends it. */
static fb_ref_t opt_id_string(fb_builder_t *b, const uint8_t *id, size_t size)
{
    return id_is_nil(id, size) ? fb_create_string(b, "", 0) : fb_create_string(b, id, size);
}

static fb_ref_t id_vector(fb_builder_t *b, const id_object_t *ids, uint32_t n)
{
    fb_ref_t one = 0, *refs = n > 1 ? malloc((size_t)n * sizeof *refs) : &one;
    if (!refs)
        return 0;
    for (uint32_t i = 0; i < n; i++)
        refs[i] = id_string(b, ids[i].b, sizeof ids[i].b);
    fb_ref_t v = fb_create_vec_ref(b, refs, n);
    if (refs != &one)
        free(refs);
    return v;
}

int plasma_encode_empty_req(fb_builder_t *b, const uint8_t **out, size_t *len)
{
    fb_builder_reset(b);
    fb_start_table(b);
    return finish(b, fb_end_table(b), out, len);
}

int plasma_encode_create_req(fb_builder_t *b, const plasma_create_req_t *r, const uint8_t **out,
                             size_t *len)
{
    fb_builder_reset(b);
    fb_ref_t oid = id_string(b, r->object_id.b, sizeof r->object_id.b);
    fb_ref_t node = opt_id_string(b, r->owner_node_id.b, sizeof r->owner_node_id.b);
    fb_ref_t ip = fb_create_string(b, r->owner_ip ? r->owner_ip : "",
                                   r->owner_ip ? r->owner_ip_len : 0);
    fb_ref_t worker = opt_id_string(b, r->owner_worker_id.b, sizeof r->owner_worker_id.b);
    fb_start_table(b);
    fb_add_ref(b, CRQ_OBJECT_ID, oid);
    fb_add_ref(b, CRQ_OWNER_NODE_ID, node);
    fb_add_ref(b, CRQ_OWNER_IP, ip);
    fb_add_i32(b, CRQ_OWNER_PORT, r->owner_port, 0);
    fb_add_ref(b, CRQ_OWNER_WORKER_ID, worker);
    fb_add_bool(b, CRQ_IS_MUTABLE, r->is_mutable, false);
    fb_add_u64(b, CRQ_DATA_SIZE, r->data_size, 0);
    fb_add_u64(b, CRQ_METADATA_SIZE, r->metadata_size, 0);
    fb_add_i32(b, CRQ_SOURCE, r->source, 0);
    fb_add_i32(b, CRQ_DEVICE_NUM, r->device_num, 0);
    fb_add_bool(b, CRQ_TRY_IMMEDIATELY, r->try_immediately, false);
    return finish(b, fb_end_table(b), out, len);
}

int plasma_encode_create_retry_req(fb_builder_t *b, const id_object_t *id, uint64_t request_id,
                                   const uint8_t **out, size_t *len)
{
    fb_builder_reset(b);
    fb_ref_t oid = id_string(b, id->b, sizeof id->b);
    fb_start_table(b);
    fb_add_ref(b, RETRY_OBJECT_ID, oid);
    fb_add_u64(b, RETRY_REQUEST_ID, request_id, 0);
    return finish(b, fb_end_table(b), out, len);
}

int plasma_encode_id_req(fb_builder_t *b, const id_object_t *id, const uint8_t **out, size_t *len)
{
    fb_builder_reset(b);
    fb_ref_t oid = id_string(b, id->b, sizeof id->b);
    fb_start_table(b);
    fb_add_ref(b, ID_SLOT, oid);
    return finish(b, fb_end_table(b), out, len);
}

int plasma_encode_release_req(fb_builder_t *b, const id_object_t *id, bool may_unmap,
                              const uint8_t **out, size_t *len)
{
    fb_builder_reset(b);
    fb_ref_t oid = id_string(b, id->b, sizeof id->b);
    fb_start_table(b);
    fb_add_ref(b, RLQ_OBJECT_ID, oid);
    fb_add_bool(b, RLQ_MAY_UNMAP, may_unmap, false);
    return finish(b, fb_end_table(b), out, len);
}

int plasma_encode_get_req(fb_builder_t *b, const id_object_t *ids, uint32_t n, int64_t timeout_ms,
                          const uint8_t **out, size_t *len)
{
    fb_builder_reset(b);
    fb_ref_t v = id_vector(b, ids, n);
    if (!v && !fb_builder_error(b))
        return -ENOMEM;
    fb_start_table(b);
    fb_add_ref(b, GRQ_OBJECT_IDS, v);
    fb_add_i64(b, GRQ_TIMEOUT_MS, timeout_ms, 0);
    return finish(b, fb_end_table(b), out, len);
}

int plasma_encode_delete_req(fb_builder_t *b, const id_object_t *ids, uint32_t n,
                             const uint8_t **out, size_t *len)
{
    fb_builder_reset(b);
    fb_ref_t v = id_vector(b, ids, n);
    if (!v && !fb_builder_error(b))
        return -ENOMEM;
    fb_start_table(b);
    fb_add_i32(b, DLQ_COUNT, (int32_t)n, 0);
    fb_add_ref(b, DLQ_OBJECT_IDS, v);
    return finish(b, fb_end_table(b), out, len);
}

/* ---- replies: encode ---- */

int plasma_encode_connect_reply(fb_builder_t *b, int64_t capacity, const uint8_t **out, size_t *len)
{
    fb_builder_reset(b);
    fb_start_table(b);
    fb_add_i64(b, CNP_MEMORY_CAPACITY, capacity, 0);
    return finish(b, fb_end_table(b), out, len);
}

int plasma_encode_create_reply(fb_builder_t *b, const plasma_create_reply_t *r, const uint8_t **out,
                               size_t *len)
{
    fb_builder_reset(b);
    fb_ref_t oid = id_string(b, r->object_id.b, sizeof r->object_id.b);
    fb_start_table(b);
    fb_add_ref(b, CRP_OBJECT_ID, oid);
    fb_add_u64(b, CRP_RETRY_ID, r->retry_with_request_id, 0);
    if (r->retry_with_request_id == 0) {
        uint8_t spec[PLASMA_SPEC_SIZE];
        plasma_spec_pack(&r->spec, spec);
        fb_add_struct(b, CRP_PLASMA_OBJECT, spec, sizeof spec, PLASMA_SPEC_ALIGN);
        fb_add_i32(b, CRP_ERROR, r->error, 0);
        fb_add_i32(b, CRP_STORE_FD, r->store_fd, 0);
        fb_add_i64(b, CRP_UNIQUE_FD_ID, r->unique_fd_id, 0);
        fb_add_i64(b, CRP_MMAP_SIZE, r->mmap_size, 0);
    }
    return finish(b, fb_end_table(b), out, len);
}

static int encode_id_only(fb_builder_t *b, const id_object_t *id, const uint8_t **out, size_t *len)
{
    return plasma_encode_id_req(b, id, out, len);
}

int plasma_encode_abort_reply(fb_builder_t *b, const id_object_t *id, const uint8_t **out,
                              size_t *len)
{
    return encode_id_only(b, id, out, len);
}

int plasma_encode_seal_reply(fb_builder_t *b, const id_object_t *id, int32_t error,
                             const uint8_t **out, size_t *len)
{
    fb_builder_reset(b);
    fb_ref_t oid = id_string(b, id->b, sizeof id->b);
    fb_start_table(b);
    fb_add_ref(b, ID_SLOT, oid);
    fb_add_i32(b, SEAL_ERROR, error, 0);
    return finish(b, fb_end_table(b), out, len);
}

int plasma_encode_get_reply(fb_builder_t *b, const id_object_t *ids, const plasma_spec_t *specs,
                            uint32_t n, const int32_t *fds, const int64_t *uids,
                            const int64_t *mmap_sizes, uint32_t nfds, const uint8_t **out,
                            size_t *len)
{
    static const uint8_t none[8];
    fb_builder_reset(b);
    uint8_t *packed = n ? malloc((size_t)n * PLASMA_SPEC_SIZE) : NULL;
    if (n && !packed)
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        plasma_spec_pack(&specs[i], packed + (size_t)i * PLASMA_SPEC_SIZE);
    fb_ref_t idv = id_vector(b, ids, n);
    fb_ref_t specv = fb_create_vec_struct(b, packed ? packed : none, n, PLASMA_SPEC_SIZE,
                                          PLASMA_SPEC_ALIGN);
    free(packed);
    /* Ray's client dereferences these three vectors unconditionally, so
     * they are present even when empty. */
    fb_ref_t fdv = fb_create_vec_scalar(b, nfds ? (const void *)fds : none, nfds, 4);
    fb_ref_t uidv = fb_create_vec_scalar(b, nfds ? (const void *)uids : none, nfds, 8);
    fb_ref_t mmv = fb_create_vec_scalar(b, nfds ? (const void *)mmap_sizes : none, nfds, 8);
    fb_ref_t handles = fb_create_vec_ref(b, (const fb_ref_t *)none, 0);
    if (!idv && !fb_builder_error(b))
        return -ENOMEM;
    fb_start_table(b);
    fb_add_ref(b, GRP_OBJECT_IDS, idv);
    fb_add_ref(b, GRP_PLASMA_OBJECTS, specv);
    fb_add_ref(b, GRP_STORE_FDS, fdv);
    fb_add_ref(b, GRP_UNIQUE_FD_IDS, uidv);
    fb_add_ref(b, GRP_MMAP_SIZES, mmv);
    fb_add_ref(b, GRP_HANDLES, handles);
    return finish(b, fb_end_table(b), out, len);
}

int plasma_encode_release_reply(fb_builder_t *b, const id_object_t *id, bool should_unmap,
                                int32_t error, const uint8_t **out, size_t *len)
{
    fb_builder_reset(b);
    fb_ref_t oid = id_string(b, id->b, sizeof id->b);
    fb_start_table(b);
    fb_add_ref(b, RLP_OBJECT_ID, oid);
    fb_add_bool(b, RLP_SHOULD_UNMAP, should_unmap, false);
    fb_add_i32(b, RLP_ERROR, error, 0);
    return finish(b, fb_end_table(b), out, len);
}

int plasma_encode_delete_reply(fb_builder_t *b, const id_object_t *ids, const int32_t *errors,
                               uint32_t n, const uint8_t **out, size_t *len)
{
    static const int32_t none[1];
    fb_builder_reset(b);
    fb_ref_t idv = id_vector(b, ids, n);
    fb_ref_t ev = fb_create_vec_scalar(b, n ? errors : none, n, 4);
    if (!idv && !fb_builder_error(b))
        return -ENOMEM;
    fb_start_table(b);
    fb_add_i32(b, DLP_COUNT, (int32_t)n, 0);
    fb_add_ref(b, DLP_OBJECT_IDS, idv);
    fb_add_ref(b, DLP_ERRORS, ev);
    return finish(b, fb_end_table(b), out, len);
}

int plasma_encode_contains_reply(fb_builder_t *b, const id_object_t *id, bool has,
                                 const uint8_t **out, size_t *len)
{
    fb_builder_reset(b);
    fb_ref_t oid = id_string(b, id->b, sizeof id->b);
    fb_start_table(b);
    fb_add_ref(b, CTP_OBJECT_ID, oid);
    fb_add_i32(b, CTP_HAS_OBJECT, has ? 1 : 0, 0);
    return finish(b, fb_end_table(b), out, len);
}

int plasma_encode_debug_string_reply(fb_builder_t *b, const char *s, size_t slen,
                                     const uint8_t **out, size_t *len)
{
    fb_builder_reset(b);
    fb_ref_t str = fb_create_string(b, s, slen);
    fb_start_table(b);
    fb_add_ref(b, DBP_DEBUG_STRING, str);
    return finish(b, fb_end_table(b), out, len);
}

/* ---- replies: decode ---- */

int plasma_decode_connect_reply(const uint8_t *buf, size_t len, int64_t *capacity)
{
    fb_table_t t;
    *capacity = 0;
    if (fb_root(buf, len, &t) || fb_read_i64(&t, CNP_MEMORY_CAPACITY, 0, capacity))
        return CR_EBADMSG;
    return 0;
}

int plasma_decode_create_reply(const uint8_t *buf, size_t len, plasma_create_reply_t *o)
{
    *o = (plasma_create_reply_t){0};
    fb_table_t t;
    fb_struct_t s;
    if (fb_root(buf, len, &t) || read_object_id(&t, CRP_OBJECT_ID, &o->object_id) ||
        fb_read_u64(&t, CRP_RETRY_ID, 0, &o->retry_with_request_id) ||
        fb_read_struct(&t, CRP_PLASMA_OBJECT, PLASMA_SPEC_SIZE, PLASMA_SPEC_ALIGN, &s) ||
        plasma_spec_unpack(&s, &o->spec) || fb_read_i32(&t, CRP_ERROR, 0, &o->error) ||
        fb_read_i32(&t, CRP_STORE_FD, 0, &o->store_fd) ||
        fb_read_i64(&t, CRP_UNIQUE_FD_ID, 0, &o->unique_fd_id) ||
        fb_read_i64(&t, CRP_MMAP_SIZE, 0, &o->mmap_size))
        return CR_EBADMSG;
    /* A final reply without the spec would crash Ray's client; insist. */
    if (o->retry_with_request_id == 0 && !fb_struct_present(&s))
        return CR_EBADMSG;
    return 0;
}

int plasma_decode_id_reply(const uint8_t *buf, size_t len, id_object_t *id)
{
    return plasma_decode_id_req(buf, len, id);
}

int plasma_decode_seal_reply(const uint8_t *buf, size_t len, id_object_t *id, int32_t *error)
{
    fb_table_t t;
    *error = 0;
    if (fb_root(buf, len, &t) || read_object_id(&t, ID_SLOT, id) ||
        fb_read_i32(&t, SEAL_ERROR, 0, error))
        return CR_EBADMSG;
    return 0;
}

int plasma_decode_get_reply(const uint8_t *buf, size_t len, plasma_get_reply_t *o)
{
    *o = (plasma_get_reply_t){0};
    fb_table_t t;
    if (fb_root(buf, len, &t) || fb_read_vec_ref(&t, GRP_OBJECT_IDS, &o->ids) ||
        fb_read_vec_struct(&t, GRP_PLASMA_OBJECTS, PLASMA_SPEC_SIZE, PLASMA_SPEC_ALIGN,
                           &o->specs) ||
        fb_read_vec_scalar(&t, GRP_STORE_FDS, 4, &o->fds) ||
        fb_read_vec_scalar(&t, GRP_UNIQUE_FD_IDS, 8, &o->uids) ||
        fb_read_vec_scalar(&t, GRP_MMAP_SIZES, 8, &o->mmap_sizes))
        return CR_EBADMSG;
    o->count = fb_vec_len(&o->ids);
    o->nfds = fb_vec_len(&o->fds);
    if (fb_vec_len(&o->specs) != o->count || fb_vec_len(&o->uids) != o->nfds ||
        fb_vec_len(&o->mmap_sizes) != o->nfds)
        return CR_EBADMSG;
    return 0;
}

int plasma_get_reply_object(const plasma_get_reply_t *r, uint32_t i, id_object_t *id,
                            plasma_spec_t *spec)
{
    fb_str_t s;
    fb_struct_t st;
    if (i >= r->count || fb_vec_str(&r->ids, i, &s) ||
        id_from_binary(s.data, s.len, id->b, sizeof id->b) || fb_vec_struct(&r->specs, i, &st) ||
        plasma_spec_unpack(&st, spec))
        return CR_EBADMSG;
    return 0;
}

int plasma_get_reply_segment(const plasma_get_reply_t *r, uint32_t i, int32_t *fd, int64_t *uid,
                             int64_t *mmap_size)
{
    if (i >= r->nfds || fb_vec_i32(&r->fds, i, fd) || fb_vec_i64(&r->uids, i, uid) ||
        fb_vec_i64(&r->mmap_sizes, i, mmap_size))
        return CR_EBADMSG;
    return 0;
}

int plasma_decode_release_reply(const uint8_t *buf, size_t len, id_object_t *id,
                                bool *should_unmap, int32_t *error)
{
    fb_table_t t;
    *should_unmap = false;
    *error = 0;
    if (fb_root(buf, len, &t) || read_object_id(&t, RLP_OBJECT_ID, id) ||
        fb_read_bool(&t, RLP_SHOULD_UNMAP, false, should_unmap) ||
        fb_read_i32(&t, RLP_ERROR, 0, error))
        return CR_EBADMSG;
    return 0;
}

int plasma_decode_delete_reply(const uint8_t *buf, size_t len, uint32_t *n, int32_t *errors,
                               uint32_t cap)
{
    fb_table_t t;
    fb_vec_t ev;
    *n = 0;
    if (fb_root(buf, len, &t) || fb_read_vec_scalar(&t, DLP_ERRORS, 4, &ev))
        return CR_EBADMSG;
    *n = fb_vec_len(&ev);
    for (uint32_t i = 0; i < *n && i < cap; i++)
        if (fb_vec_i32(&ev, i, &errors[i]))
            return CR_EBADMSG;
    return 0;
}

int plasma_decode_contains_reply(const uint8_t *buf, size_t len, id_object_t *id, bool *has)
{
    fb_table_t t;
    int32_t v = 0;
    *has = false;
    if (fb_root(buf, len, &t) || read_object_id(&t, CTP_OBJECT_ID, id) ||
        fb_read_i32(&t, CTP_HAS_OBJECT, 0, &v))
        return CR_EBADMSG;
    *has = v != 0;
    return 0;
}

int plasma_decode_debug_string_reply(const uint8_t *buf, size_t len, fb_str_t *s)
{
    fb_table_t t;
    if (fb_root(buf, len, &t) || fb_read_str(&t, DBP_DEBUG_STRING, s))
        return CR_EBADMSG;
    return 0;
}
