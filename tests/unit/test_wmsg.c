/* The raylet socket's message decoder against well-formed and hostile
 * payloads. */
#include <criterion/criterion.h>
#include <string.h>

#include "common/error.h"
#include "common/fb.h"
#include "raylet/worker/wmsg.h"

static size_t build_register(uint8_t *out, size_t cap, size_t id_len)
{
    fb_builder_t *b = fb_builder_create(128);
    uint8_t id[64];
    memset(id, 'w', sizeof id);
    fb_ref_t wid = fb_create_string(b, id, id_len);
    fb_ref_t job = fb_create_string(b, "\x01\x00\x00\x00", 4);
    fb_ref_t cfg = fb_create_string(b, "cfg", 3);
    fb_start_table(b);
    fb_add_i32(b, 0, 1, 0);
    fb_add_ref(b, 1, wid);
    fb_add_i64(b, 2, 4321, 0);
    fb_add_ref(b, 3, job);
    fb_add_i32(b, 4, 7, 0);
    fb_add_ref(b, 8, cfg);
    const uint8_t *buf;
    size_t len;
    cr_assert_eq(fb_builder_finish(b, fb_end_table(b), &buf, &len), 0);
    cr_assert_leq(len, cap);
    memcpy(out, buf, len);
    fb_builder_destroy(b);
    return len;
}

Test(wmsg, register_client_request_fields)
{
    uint8_t buf[512];
    size_t len = build_register(buf, sizeof buf, 28);
    wmsg_t m;
    cr_assert_eq(wmsg_decode(WMSG_REGISTER_CLIENT_REQUEST, buf, len, &m), 0);
    cr_assert_eq(m.worker_type, 1);
    cr_assert_eq(m.worker_pid, 4321);
    cr_assert_eq(m.runtime_env_hash, 7);
    cr_assert_eq(m.job_id[0], 1);
    cr_assert_eq(m.job_config.len, 3);
    cr_assert_eq(memcmp(m.job_config.data, "cfg", 3), 0);
    cr_assert_eq(m.worker_id[27], 'w');
    wmsg_clear(&m);
}

Test(wmsg, wrong_id_length_is_rejected)
{
    uint8_t buf[512];
    size_t len = build_register(buf, sizeof buf, 27);
    wmsg_t m;
    cr_assert_eq(wmsg_decode(WMSG_REGISTER_CLIENT_REQUEST, buf, len, &m), CR_EBADMSG);
}

Test(wmsg, every_truncation_fails_cleanly)
{
    uint8_t buf[512];
    size_t len = build_register(buf, sizeof buf, 28);
    for (size_t cut = 0; cut < len; cut++) {
        wmsg_t m;
        int rc = wmsg_decode(WMSG_REGISTER_CLIENT_REQUEST, buf, cut, &m);
        if (rc == 0)
            wmsg_clear(&m); /* a prefix may still parse if the tail was padding */
    }
}

Test(wmsg, offsets_pointing_outside_are_rejected)
{
    uint8_t buf[512];
    size_t len = build_register(buf, sizeof buf, 28);
    /* The root offset itself, pointed past the end. */
    uint8_t bad[512];
    memcpy(bad, buf, len);
    bad[0] = 0xf0;
    bad[1] = 0xff;
    wmsg_t m;
    cr_assert_neq(wmsg_decode(WMSG_REGISTER_CLIENT_REQUEST, bad, len, &m), 0);
}

Test(wmsg, unknown_and_reply_types_are_rejected)
{
    uint8_t buf[512];
    size_t len = build_register(buf, sizeof buf, 28);
    wmsg_t m;
    cr_assert_eq(wmsg_decode(17, buf, len, &m), CR_EBADMSG);
    cr_assert_eq(wmsg_decode(-1, buf, len, &m), CR_EBADMSG);
    cr_assert_eq(wmsg_decode(WMSG_REGISTER_CLIENT_REPLY, buf, len, &m), CR_EBADMSG);
    cr_assert_eq(wmsg_decode(WMSG_WAIT_REPLY, buf, len, &m), CR_EBADMSG);
}

Test(wmsg, table_less_messages_accept_empty_payloads)
{
    wmsg_t m;
    cr_assert_eq(wmsg_decode(WMSG_NOTIFY_WORKER_BLOCKED, NULL, 0, &m), 0);
    cr_assert_eq(wmsg_decode(WMSG_ACTOR_CREATION_TASK_DONE, NULL, 0, &m), 0);
    cr_assert_eq(wmsg_decode(WMSG_CANCEL_GET_REQUEST, NULL, 0, &m), 0);
    cr_assert_neq(wmsg_decode(WMSG_WAIT_REQUEST, NULL, 0, &m), 0);
}

Test(wmsg, wait_request_ids_and_defaults)
{
    fb_builder_t *b = fb_builder_create(256);
    uint8_t a[28], c[28];
    memset(a, 'a', 28);
    memset(c, 'c', 28);
    fb_ref_t refs[2] = {fb_create_string(b, a, 28), fb_create_string(b, c, 28)};
    fb_ref_t vec = fb_create_vec_ref(b, refs, 2);
    fb_start_table(b);
    fb_add_ref(b, 0, vec);
    fb_add_i32(b, 2, 1, 0);
    const uint8_t *buf;
    size_t len;
    cr_assert_eq(fb_builder_finish(b, fb_end_table(b), &buf, &len), 0);
    wmsg_t m;
    cr_assert_eq(wmsg_decode(WMSG_WAIT_REQUEST, buf, len, &m), 0);
    cr_assert_eq(m.id_count, 2);
    cr_assert_eq(m.ids[1][0], 'c');
    cr_assert_eq(m.num_required, 1);
    cr_assert_eq(m.timeout_ms, -1, "an absent timeout means wait forever");
    wmsg_clear(&m);
    fb_builder_destroy(b);
}

Test(wmsg, negative_required_count_is_rejected)
{
    fb_builder_t *b = fb_builder_create(128);
    fb_ref_t vec = fb_create_vec_ref(b, NULL, 0);
    fb_start_table(b);
    fb_add_ref(b, 0, vec);
    fb_add_i32(b, 2, -5, 0);
    const uint8_t *buf;
    size_t len;
    cr_assert_eq(fb_builder_finish(b, fb_end_table(b), &buf, &len), 0);
    wmsg_t m;
    cr_assert_eq(wmsg_decode(WMSG_WAIT_REQUEST, buf, len, &m), CR_EBADMSG);
    fb_builder_destroy(b);
}

Test(wmsg, disconnect_carries_the_creation_task_exception)
{
    fb_builder_t *b = fb_builder_create(128);
    fb_ref_t detail = fb_create_string(b, "ctor", 4);
    fb_ref_t exc = fb_create_vec_scalar(b, "\x0a\x03\x62\x61\x64", 5, 1);
    fb_start_table(b);
    fb_add_i32(b, 0, 3, 0);
    fb_add_ref(b, 1, detail);
    fb_add_ref(b, 2, exc);
    const uint8_t *buf;
    size_t len;
    cr_assert_eq(fb_builder_finish(b, fb_end_table(b), &buf, &len), 0);
    wmsg_t m;
    cr_assert_eq(wmsg_decode(WMSG_DISCONNECT_CLIENT_REQUEST, buf, len, &m), 0);
    cr_assert_eq(m.disconnect_type, 3);
    cr_assert_eq(m.disconnect_detail.len, 4);
    cr_assert_eq(m.creation_task_exception.len, 5);
    cr_assert_eq(memcmp(m.creation_task_exception.data, "\x0a\x03\x62\x61\x64", 5), 0);
    wmsg_clear(&m);
    fb_builder_destroy(b);

    /* Without one (every exit but a failed constructor): empty. */
    b = fb_builder_create(64);
    fb_start_table(b);
    fb_add_i32(b, 0, 1, 0);
    cr_assert_eq(fb_builder_finish(b, fb_end_table(b), &buf, &len), 0);
    cr_assert_eq(wmsg_decode(WMSG_DISCONNECT_CLIENT_REQUEST, buf, len, &m), 0);
    cr_assert_eq(m.creation_task_exception.len, 0);
    cr_assert_null(m.creation_task_exception.data);
    wmsg_clear(&m);
    fb_builder_destroy(b);
}
