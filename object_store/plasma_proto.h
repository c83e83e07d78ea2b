/* The plasma store wire protocol (Ray 2.54): message types and flatbuffer
 * codecs for both directions.
 *
 * Frames are the common cookie/type/length frames (common/frame.h); the
 * payload of each is one flatbuffer table of namespace plasma.flatbuf.
 * Fields are read and written by slot (declaration order in plasma.fbs):
 *
 *   PlasmaCreateRequest       0 object_id 1 owner_node_id 2 owner_ip_address
 *                             3 owner_port:int 4 owner_worker_id 5 is_mutable
 *                             6 data_size:ulong 7 metadata_size:ulong
 *                             8 source:int 9 device_num:int 10 try_immediately
 *   PlasmaCreateRetryRequest  0 object_id 1 request_id:ulong
 *   PlasmaCreateReply         0 object_id 1 retry_with_request_id:ulong
 *                             2 plasma_object:PlasmaObjectSpec 3 error:int
 *                             4 store_fd:int 5 unique_fd_id:long 6 mmap_size:long
 *                             7 ipc_handle (unused)
 *   Abort/Seal/Contains req   0 object_id
 *   PlasmaAbortReply          0 object_id
 *   PlasmaSealReply           0 object_id 1 error
 *   PlasmaGetRequest          0 object_ids:[string] 1 timeout_ms:long
 *   PlasmaGetReply            0 object_ids 1 plasma_objects:[PlasmaObjectSpec]
 *                             2 store_fds:[int] 3 unique_fd_ids:[long]
 *                             4 mmap_sizes:[long] 5 handles (empty)
 *   PlasmaReleaseRequest      0 object_id 1 may_unmap
 *   PlasmaReleaseReply        0 object_id 1 should_unmap 2 error
 *   PlasmaDeleteRequest       0 count:int 1 object_ids
 *   PlasmaDeleteReply         0 count 1 object_ids 2 errors:[int]
 *   PlasmaContainsReply       0 object_id 1 has_object:int
 *   PlasmaConnectReply        0 memory_capacity:long
 *   PlasmaGetDebugStringReply 0 debug_string
 *
 * PlasmaObjectSpec is a fixed 80-byte struct (alignment 8):
 *   0 segment_index:int  8 unique_fd_id:long  16 header_offset  24 data_offset
 *   32 data_size  40 metadata_offset  48 metadata_size  56 allocated_size
 *   64 fallback_allocated:bool  68 device_num:int  72 is_experimental_mutable_object:bool
 *
 * Decoders take untrusted bytes, check everything they read (through
 * common/fb.h) and return 0 or CR_EBADMSG; results borrow the buffer.
 * Encoders reset the given builder, build one message and hand out its
 * bytes (owned by the builder, valid until its next reset); they return 0
 * or the builder's error. */
#ifndef CRAYLET_OBJECT_STORE_PLASMA_PROTO_H
#define CRAYLET_OBJECT_STORE_PLASMA_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/fb.h"
#include "common/id.h"

typedef enum {
    PLASMA_MSG_DISCONNECT_CLIENT = 0,
    PLASMA_MSG_CREATE_REQUEST = 1,
    PLASMA_MSG_CREATE_RETRY_REQUEST = 2,
    PLASMA_MSG_CREATE_REPLY = 3,
    PLASMA_MSG_ABORT_REQUEST = 4,
    PLASMA_MSG_ABORT_REPLY = 5,
    PLASMA_MSG_SEAL_REQUEST = 6,
    PLASMA_MSG_SEAL_REPLY = 7,
    PLASMA_MSG_GET_REQUEST = 8,
    PLASMA_MSG_GET_REPLY = 9,
    PLASMA_MSG_RELEASE_REQUEST = 10,
    PLASMA_MSG_RELEASE_REPLY = 11,
    PLASMA_MSG_DELETE_REQUEST = 12,
    PLASMA_MSG_DELETE_REPLY = 13,
    PLASMA_MSG_CONTAINS_REQUEST = 14,
    PLASMA_MSG_CONTAINS_REPLY = 15,
    PLASMA_MSG_CONNECT_REQUEST = 16,
    PLASMA_MSG_CONNECT_REPLY = 17,
    PLASMA_MSG_GET_DEBUG_STRING_REQUEST = 18,
    PLASMA_MSG_GET_DEBUG_STRING_REPLY = 19,
    PLASMA_MSG_COUNT = 20,
} plasma_msg_t;

/* PlasmaError.  Ray's client turns only OK, ObjectExists,
 * ObjectNonexistent, OutOfMemory, UnexpectedError and OutOfDisk into a
 * status; any other code in a Create, Seal or Release reply makes it abort,
 * so the store never sends the others there. */
typedef enum {
    PLASMA_OK = 0,
    PLASMA_OBJECT_EXISTS = 1,
    PLASMA_OBJECT_NONEXISTENT = 2,
    PLASMA_OUT_OF_MEMORY = 3,
    PLASMA_OBJECT_NOT_SEALED = 4,
    PLASMA_OBJECT_IN_USE = 5,
    PLASMA_UNEXPECTED_ERROR = 6,
    PLASMA_OBJECT_SEALED = 7,
    PLASMA_OUT_OF_DISK = 8,
} plasma_err_t;

/* ObjectSource. */
typedef enum {
    PLASMA_SOURCE_CREATED_BY_WORKER = 0,
    PLASMA_SOURCE_RESTORED_FROM_STORAGE = 1,
    PLASMA_SOURCE_RECEIVED_FROM_REMOTE_RAYLET = 2,
    PLASMA_SOURCE_ERROR_STORED_BY_RAYLET = 3,
} plasma_source_t;

/* Bounds a single request may not exceed; a legitimate CoreWorker stays
 * far below them (it batches gets by the thousand). */
#define PLASMA_MAX_IDS_PER_REQUEST (1u << 20)
#define PLASMA_MAX_OWNER_IP_LEN 255u

/* "PlasmaCreateRequest", ..., or "unknown". */
const char *plasma_msg_name(int64_t type);
const char *plasma_err_name(int32_t err);

#define PLASMA_SPEC_SIZE 80u
#define PLASMA_SPEC_ALIGN 8u

typedef struct {
    int32_t segment_index; /* the store's fd number for the segment */
    int64_t unique_fd_id;
    uint64_t header_offset;
    uint64_t data_offset;
    uint64_t data_size; /* all ones: not found (Get) */
    uint64_t metadata_offset;
    uint64_t metadata_size;
    uint64_t allocated_size;
    bool fallback_allocated;
    int32_t device_num;
    bool is_mutable;
} plasma_spec_t;

void plasma_spec_pack(const plasma_spec_t *s, uint8_t out[PLASMA_SPEC_SIZE]);
int plasma_spec_unpack(const fb_struct_t *in, plasma_spec_t *s) FB_MUST_CHECK;

/* ---- requests (client -> store) ---- */

typedef struct {
    id_object_t object_id;
    id_node_t owner_node_id;     /* nil when absent or empty */
    const char *owner_ip;        /* borrowed, NUL-terminated, may be "" */
    uint32_t owner_ip_len;
    int32_t owner_port;
    id_worker_t owner_worker_id; /* nil when absent or empty */
    bool is_mutable;
    uint64_t data_size;
    uint64_t metadata_size;
    int32_t source;
    int32_t device_num;
    bool try_immediately;
} plasma_create_req_t;

/* A list of object IDs inside a request; elements are checked when fetched. */
typedef struct {
    fb_vec_t vec;
    uint32_t count;
} plasma_ids_t;

int plasma_decode_create_req(const uint8_t *buf, size_t len, plasma_create_req_t *out) FB_MUST_CHECK;
int plasma_decode_create_retry_req(const uint8_t *buf, size_t len, id_object_t *id,
                                   uint64_t *request_id) FB_MUST_CHECK;
/* Abort, Seal and Contains requests: just the object ID. */
int plasma_decode_id_req(const uint8_t *buf, size_t len, id_object_t *id) FB_MUST_CHECK;
int plasma_decode_release_req(const uint8_t *buf, size_t len, id_object_t *id,
                              bool *may_unmap) FB_MUST_CHECK;
int plasma_decode_get_req(const uint8_t *buf, size_t len, plasma_ids_t *ids,
                          int64_t *timeout_ms) FB_MUST_CHECK;
int plasma_decode_delete_req(const uint8_t *buf, size_t len, plasma_ids_t *ids) FB_MUST_CHECK;
/* Element i: exactly 28 bytes, else CR_EBADMSG. */
int plasma_ids_get(const plasma_ids_t *ids, uint32_t i, id_object_t *out) FB_MUST_CHECK;

int plasma_encode_empty_req(fb_builder_t *b, const uint8_t **out, size_t *len) FB_MUST_CHECK;
int plasma_encode_create_req(fb_builder_t *b, const plasma_create_req_t *r, const uint8_t **out,
                             size_t *len) FB_MUST_CHECK;
int plasma_encode_create_retry_req(fb_builder_t *b, const id_object_t *id, uint64_t request_id,
                                   const uint8_t **out, size_t *len) FB_MUST_CHECK;
int plasma_encode_id_req(fb_builder_t *b, const id_object_t *id, const uint8_t **out,
                         size_t *len) FB_MUST_CHECK;
int plasma_encode_release_req(fb_builder_t *b, const id_object_t *id, bool may_unmap,
                              const uint8_t **out, size_t *len) FB_MUST_CHECK;
int plasma_encode_get_req(fb_builder_t *b, const id_object_t *ids, uint32_t n, int64_t timeout_ms,
                          const uint8_t **out, size_t *len) FB_MUST_CHECK;
int plasma_encode_delete_req(fb_builder_t *b, const id_object_t *ids, uint32_t n,
                             const uint8_t **out, size_t *len) FB_MUST_CHECK;

/* ---- replies (store -> client) ---- */

typedef struct {
    id_object_t object_id;
    uint64_t retry_with_request_id; /* > 0: nothing else is meaningful */
    plasma_spec_t spec;
    int32_t error;
    int32_t store_fd;
    int64_t unique_fd_id;
    int64_t mmap_size;
} plasma_create_reply_t;

typedef struct {
    uint32_t count;   /* objects */
    fb_vec_t ids;     /* [string] */
    fb_vec_t specs;   /* [PlasmaObjectSpec] */
    uint32_t nfds;    /* segments listed */
    fb_vec_t fds;     /* [int] */
    fb_vec_t uids;    /* [long] */
    fb_vec_t mmap_sizes; /* [long] */
} plasma_get_reply_t;

int plasma_encode_connect_reply(fb_builder_t *b, int64_t capacity, const uint8_t **out,
                                size_t *len) FB_MUST_CHECK;
/* A retry reply when retry_id > 0 (spec ignored), else the full reply; the
 * spec struct is always present then, as Ray's client reads it even when
 * error is set. */
int plasma_encode_create_reply(fb_builder_t *b, const plasma_create_reply_t *r,
                               const uint8_t **out, size_t *len) FB_MUST_CHECK;
int plasma_encode_abort_reply(fb_builder_t *b, const id_object_t *id, const uint8_t **out,
                              size_t *len) FB_MUST_CHECK;
int plasma_encode_seal_reply(fb_builder_t *b, const id_object_t *id, int32_t error,
                             const uint8_t **out, size_t *len) FB_MUST_CHECK;
int plasma_encode_get_reply(fb_builder_t *b, const id_object_t *ids, const plasma_spec_t *specs,
                            uint32_t n, const int32_t *fds, const int64_t *uids,
                            const int64_t *mmap_sizes, uint32_t nfds, const uint8_t **out,
                            size_t *len) FB_MUST_CHECK;
int plasma_encode_release_reply(fb_builder_t *b, const id_object_t *id, bool should_unmap,
                                int32_t error, const uint8_t **out, size_t *len) FB_MUST_CHECK;
int plasma_encode_delete_reply(fb_builder_t *b, const id_object_t *ids, const int32_t *errors,
                               uint32_t n, const uint8_t **out, size_t *len) FB_MUST_CHECK;
int plasma_encode_contains_reply(fb_builder_t *b, const id_object_t *id, bool has,
                                 const uint8_t **out, size_t *len) FB_MUST_CHECK;
int plasma_encode_debug_string_reply(fb_builder_t *b, const char *s, size_t slen,
                                     const uint8_t **out, size_t *len) FB_MUST_CHECK;

int plasma_decode_connect_reply(const uint8_t *buf, size_t len, int64_t *capacity) FB_MUST_CHECK;
int plasma_decode_create_reply(const uint8_t *buf, size_t len,
                               plasma_create_reply_t *out) FB_MUST_CHECK;
/* Abort reply and any reply whose slot 0 is the object ID. */
int plasma_decode_id_reply(const uint8_t *buf, size_t len, id_object_t *id) FB_MUST_CHECK;
int plasma_decode_seal_reply(const uint8_t *buf, size_t len, id_object_t *id,
                             int32_t *error) FB_MUST_CHECK;
int plasma_decode_get_reply(const uint8_t *buf, size_t len, plasma_get_reply_t *out) FB_MUST_CHECK;
int plasma_get_reply_object(const plasma_get_reply_t *r, uint32_t i, id_object_t *id,
                            plasma_spec_t *spec) FB_MUST_CHECK;
int plasma_get_reply_segment(const plasma_get_reply_t *r, uint32_t i, int32_t *fd, int64_t *uid,
                             int64_t *mmap_size) FB_MUST_CHECK;
int plasma_decode_release_reply(const uint8_t *buf, size_t len, id_object_t *id,
                                bool *should_unmap, int32_t *error) FB_MUST_CHECK;
/* errors: up to cap codes are copied; *n gets the count in the reply. */
int plasma_decode_delete_reply(const uint8_t *buf, size_t len, uint32_t *n, int32_t *errors,
                               uint32_t cap) FB_MUST_CHECK;
int plasma_decode_contains_reply(const uint8_t *buf, size_t len, id_object_t *id,
                                 bool *has) FB_MUST_CHECK;
int plasma_decode_debug_string_reply(const uint8_t *buf, size_t len, fb_str_t *s) FB_MUST_CHECK;

#endif
