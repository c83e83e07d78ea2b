/* Decoding the raylet socket's messages (node_manager.fbs) into
 * plain C structs, with every offset and length checked.
 *
 * Kept apart from the handlers so that the one place untrusted bytes are
 * interpreted can be fuzzed on its own.  Strings point into the payload
 * (valid while it is); id arrays are allocated and freed by wmsg_clear(). */
#ifndef CRAYLET_RAYLET_WMSG_H
#define CRAYLET_RAYLET_WMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/id.h"
#include "common/ray_addr.h"

enum {
    WMSG_ACTOR_CREATION_TASK_DONE = 0,
    WMSG_REGISTER_CLIENT_REQUEST = 1,
    WMSG_REGISTER_CLIENT_REPLY = 2,
    WMSG_ANNOUNCE_WORKER_PORT = 3,
    WMSG_ANNOUNCE_WORKER_PORT_REPLY = 4,
    WMSG_DISCONNECT_CLIENT_REQUEST = 5,
    WMSG_DISCONNECT_CLIENT_REPLY = 6,
    WMSG_ASYNC_GET_OBJECTS_REQUEST = 7,
    WMSG_CANCEL_GET_REQUEST = 8,
    WMSG_NOTIFY_WORKER_BLOCKED = 9,
    WMSG_NOTIFY_WORKER_UNBLOCKED = 10,
    WMSG_WAIT_REQUEST = 11,
    WMSG_WAIT_REPLY = 12,
    WMSG_WAIT_FOR_ACTOR_CALL_ARGS_REQUEST = 13,
    WMSG_PUSH_ERROR_REQUEST = 14,
    WMSG_FREE_OBJECTS_REQUEST = 15,
    WMSG_SUBSCRIBE_PLASMA_READY = 16,
};

/* More ids than any real program sends in one message, few enough to bound
 * what a hostile client can make us allocate. */
#define WMSG_MAX_IDS (1u << 20)

typedef struct wmsg_str {
    const char *data; /* not NUL-terminated; points into the payload */
    size_t len;
} wmsg_str_t;

typedef struct wmsg {
    int64_t type;
    /* RegisterClientRequest */
    int32_t worker_type;
    uint8_t worker_id[ID_UNIQUE_SIZE];
    int64_t worker_pid;
    uint8_t job_id[ID_JOB_SIZE]; /* nil when absent */
    int32_t runtime_env_hash;
    int32_t language;
    wmsg_str_t job_config;
    /* AnnounceWorkerPort */
    int32_t port;
    wmsg_str_t entrypoint;
    /* DisconnectClientRequest */
    int32_t disconnect_type;
    wmsg_str_t disconnect_detail;
    wmsg_str_t creation_task_exception; /* serialized rpc::RayException, or empty */
    /* Waits, gets, frees, plasma subscriptions: the ids (owned) */
    uint8_t (*ids)[ID_OBJECT_SIZE];
    size_t id_count;
    /* ...and their owners (owned; id_count entries, zero where the message
     * names none): gets, waits, actor-argument waits, plasma subscriptions */
    ray_addr_t *owners;
    int32_t num_required;
    int64_t timeout_ms;
    /* WaitForActorCallArgsRequest: what the answer names the wait by; an
     * integer tag up to Ray 2.5x, the task's id and attempt since 2.60 */
    int32_t tag;
    uint8_t task_id[ID_TASK_SIZE];
    int32_t attempt_number;
    int64_t request_id;
    bool local_only;
    /* PushErrorRequest */
    wmsg_str_t error_job_id;
    wmsg_str_t error_type;
    wmsg_str_t error_message;
    double error_timestamp;
} wmsg_t;

/* Decode one frame.  Returns 0, CR_EBADMSG (malformed, or an unknown or
 * reply-only type), or CR_ETOOBIG.  On error nothing needs clearing. */
int wmsg_decode(int64_t type, const uint8_t *payload, size_t len, wmsg_t *out);
void wmsg_clear(wmsg_t *m);

#endif
