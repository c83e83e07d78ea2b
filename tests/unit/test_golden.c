/* Golden frames: what stock Ray clients of the release this build is for
 * really send on the raylet and plasma sockets (recorded by
 * tests/golden/record.py into tests/golden/<version>/).  Every recorded
 * frame must pass the frame header check and its decoder, with the fields
 * a real client always fills looking sane.  A new Ray release that changes
 * a message fails here, not as a hang in a cluster. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/frame.h"
#include "common/id.h"
#include "object_store/plasma_proto.h"
#include "proto/gen/ray_version.h"
#include "raylet/worker/wmsg.h"

#define GOLDEN_DIR CRAYLET_SOURCE_DIR "/tests/golden/" CRAYLET_RAY_VERSION

typedef struct golden {
    int64_t type;
    uint8_t *data; /* the whole frame */
    size_t len;
    const uint8_t *payload;
    size_t payload_len;
} golden_t;

/* Load <GOLDEN_DIR>/<prefix>-NN.frame; false when it was not recorded. */
static bool golden_load(const char *prefix, int type, golden_t *g)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s-%02d.frame", GOLDEN_DIR, prefix, type);
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    cr_assert(n >= FRAME_HEADER_SIZE, "%s: shorter than a frame header", path);
    g->data = malloc((size_t)n);
    cr_assert_eq(fread(g->data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    g->len = (size_t)n;
    cr_assert_eq(frame_header_parse(g->data, FRAME_RAY_COOKIE, 1 << 26, &g->type, &g->payload_len), 0,
                 "%s: bad frame header", path);
    cr_assert_eq(g->type, type, "%s: type %lld in the header", path, (long long)g->type);
    cr_assert_eq(FRAME_HEADER_SIZE + g->payload_len, g->len, "%s: length field disagrees with the file", path);
    g->payload = g->data + FRAME_HEADER_SIZE;
    return true;
}

/* How many frames the recording holds (at least the ones every driver
 * sends must be there: a recording that lost them is no recording). */
static int golden_count(const char *prefix)
{
    DIR *d = opendir(GOLDEN_DIR);
    cr_assert_not_null(d, "no golden frames for Ray %s at %s (run tests/golden/record.py)", CRAYLET_RAY_VERSION,
                       GOLDEN_DIR);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0 && strstr(e->d_name, ".frame") != NULL;
    closedir(d);
    return n;
}

Test(golden, raylet_socket_frames_decode)
{
    cr_assert_geq(golden_count("raylet-"), 6);
    int decoded = 0;
    for (int type = 0; type < 32; type++) {
        golden_t g;
        if (!golden_load("raylet", type, &g))
            continue;
        wmsg_t m;
        int rc = wmsg_decode(type, g.payload, g.payload_len, &m);
        cr_assert_eq(rc, 0, "raylet frame type %d (Ray %s) does not decode: %d", type, CRAYLET_RAY_VERSION, rc);
        switch (type) {
        case WMSG_REGISTER_CLIENT_REQUEST:
            cr_assert(m.worker_pid > 0, "a real client names its pid");
            cr_assert_not(id_is_nil(m.worker_id, ID_UNIQUE_SIZE), "and its worker id");
            break;
        case WMSG_ANNOUNCE_WORKER_PORT:
            cr_assert(m.port > 0 && m.port < 65536);
            break;
        case WMSG_WAIT_REQUEST:
            cr_assert(m.id_count > 0 && m.num_required > 0);
            break;
        case WMSG_WAIT_FOR_ACTOR_CALL_ARGS_REQUEST:
            cr_assert(m.id_count > 0);
#if CRAYLET_RAY_ACTOR_ARG_WAIT_BY_TASK
            /* The answer names the wait by task: a real one is never nil. */
            cr_assert_not(id_is_nil(m.task_id, ID_TASK_SIZE), "WaitForActorCallArgs carries no task id");
            cr_assert_geq(m.attempt_number, 0);
#endif
            break;
        case WMSG_FREE_OBJECTS_REQUEST:
            cr_assert(m.id_count > 0);
            break;
        case WMSG_PUSH_ERROR_REQUEST:
            cr_assert(m.error_type.len > 0 && m.error_message.len > 0);
            break;
        default:
            break;
        }
        wmsg_clear(&m);
        free(g.data);
        decoded++;
    }
    cr_assert_geq(decoded, 6);
}

Test(golden, plasma_socket_frames_decode)
{
    cr_assert_geq(golden_count("plasma-"), 4);
    int decoded = 0;
    for (int type = 0; type < PLASMA_MSG_COUNT; type++) {
        golden_t g;
        if (!golden_load("plasma", type, &g))
            continue;
        int rc = 0;
        id_object_t id;
        plasma_ids_t ids;
        int64_t timeout;
        switch (type) {
        case PLASMA_MSG_CREATE_REQUEST: {
            plasma_create_req_t req;
            rc = plasma_decode_create_req(g.payload, g.payload_len, &req);
            cr_assert(rc != 0 || req.data_size > 0, "a create of nothing");
            cr_assert(rc != 0 || !ID_IS_NIL(&req.object_id), "a create names its object");
            break;
        }
        case PLASMA_MSG_SEAL_REQUEST:
        case PLASMA_MSG_ABORT_REQUEST:
        case PLASMA_MSG_CONTAINS_REQUEST:
            rc = plasma_decode_id_req(g.payload, g.payload_len, &id);
            break;
        case PLASMA_MSG_RELEASE_REQUEST: {
            bool may_unmap;
            rc = plasma_decode_release_req(g.payload, g.payload_len, &id, &may_unmap);
            break;
        }
        case PLASMA_MSG_GET_REQUEST:
            rc = plasma_decode_get_req(g.payload, g.payload_len, &ids, &timeout);
            cr_assert(rc != 0 || ids.count > 0);
            for (uint32_t i = 0; rc == 0 && i < ids.count; i++)
                rc = plasma_ids_get(&ids, i, &id);
            break;
        case PLASMA_MSG_DELETE_REQUEST:
            rc = plasma_decode_delete_req(g.payload, g.payload_len, &ids);
            for (uint32_t i = 0; rc == 0 && i < ids.count; i++)
                rc = plasma_ids_get(&ids, i, &id);
            break;
        default:
            break; /* Connect, Disconnect: no fields the store reads */
        }
        cr_assert_eq(rc, 0, "plasma frame type %d (%s, Ray %s) does not decode: %d", type, plasma_msg_name(type),
                     CRAYLET_RAY_VERSION, rc);
        free(g.data);
        decoded++;
    }
    cr_assert_geq(decoded, 4);
}
