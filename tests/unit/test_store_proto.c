/* The plasma wire codec: the exact byte layout of PlasmaObjectSpec, round
 * trips of every message, the fields Ray's client dereferences without
 * checking, and decoders fed truncated and corrupted buffers (each copied
 * into an allocation of exactly its length so ASan sees any overrun). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/fb.h"
#include "object_store/plasma_proto.h"

static fb_builder_t *b;
static void setup(void) { b = fb_builder_create(0); }
static void teardown(void) { fb_builder_destroy(b); }
TestSuite(proto, .init = setup, .fini = teardown);

static void make_id(id_object_t *id, uint8_t v)
{
    for (size_t i = 0; i < sizeof id->b; i++)
        id->b[i] = (uint8_t)(v + i);
}

Test(proto, spec_layout_matches_the_schema)
{
    plasma_spec_t s = {.segment_index = 0x11223344,
                       .unique_fd_id = 0x0102030405060708LL,
                       .header_offset = 16,
                       .data_offset = 24,
                       .data_size = 32,
                       .metadata_offset = 40,
                       .metadata_size = 48,
                       .allocated_size = 56,
                       .fallback_allocated = true,
                       .device_num = 0x55,
                       .is_mutable = true};
    uint8_t p[PLASMA_SPEC_SIZE];
    plasma_spec_pack(&s, p);
    cr_assert_eq(fb_load_u32(p + 0), 0x11223344);
    cr_assert_eq(fb_load_u32(p + 4), 0, "padding is zero");
    cr_assert_eq(fb_load_u64(p + 8), 0x0102030405060708ULL);
    for (int off = 16; off <= 56; off += 8)
        cr_assert_eq(fb_load_u64(p + off), (uint64_t)off);
    cr_assert_eq(p[64], 1);
    cr_assert_eq(p[65] | p[66] | p[67], 0);
    cr_assert_eq(fb_load_u32(p + 68), 0x55);
    cr_assert_eq(p[72], 1);
    for (int i = 73; i < 80; i++)
        cr_assert_eq(p[i], 0);
}

Test(proto, message_names)
{
    cr_assert_str_eq(plasma_msg_name(0), "PlasmaDisconnectClient");
    cr_assert_str_eq(plasma_msg_name(8), "PlasmaGetRequest");
    cr_assert_str_eq(plasma_msg_name(19), "PlasmaGetDebugStringReply");
    cr_assert_str_eq(plasma_msg_name(20), "unknown");
    cr_assert_str_eq(plasma_msg_name(-1), "unknown");
    cr_assert_str_eq(plasma_err_name(8), "OutOfDisk");
    cr_assert_str_eq(plasma_err_name(9), "unknown");
}

Test(proto, create_request_round_trip)
{
    plasma_create_req_t in = {.owner_ip = "192.168.1.20",
                              .owner_ip_len = 12,
                              .owner_port = 40001,
                              .is_mutable = true,
                              .data_size = 1ull << 40,
                              .metadata_size = 9,
                              .source = PLASMA_SOURCE_RECEIVED_FROM_REMOTE_RAYLET,
                              .device_num = 0,
                              .try_immediately = true};
    make_id(&in.object_id, 1);
    memset(in.owner_node_id.b, 0x44, sizeof in.owner_node_id.b);
    ID_SET_NIL(&in.owner_worker_id);
    const uint8_t *buf;
    size_t len;
    cr_assert_eq(plasma_encode_create_req(b, &in, &buf, &len), 0);
    plasma_create_req_t out;
    cr_assert_eq(plasma_decode_create_req(buf, len, &out), 0);
    cr_assert(ID_EQUAL(&out.object_id, &in.object_id));
    cr_assert(ID_EQUAL(&out.owner_node_id, &in.owner_node_id));
    cr_assert(ID_IS_NIL(&out.owner_worker_id), "nil travels as an empty string");
    cr_assert_str_eq(out.owner_ip, "192.168.1.20");
    cr_assert_eq(out.owner_port, 40001);
    cr_assert(out.is_mutable);
    cr_assert_eq(out.data_size, 1ull << 40);
    cr_assert_eq(out.metadata_size, 9);
    cr_assert_eq(out.source, PLASMA_SOURCE_RECEIVED_FROM_REMOTE_RAYLET);
    cr_assert(out.try_immediately);
    /* Slot numbers as in plasma.fbs: data_size is slot 6, try_immediately 10. */
    fb_table_t t;
    cr_assert_eq(fb_root(buf, len, &t), 0);
    uint64_t ds;
    bool ti;
    cr_assert_eq(fb_read_u64(&t, 6, 0, &ds), 0);
    cr_assert_eq(ds, 1ull << 40);
    cr_assert_eq(fb_read_bool(&t, 10, false, &ti), 0);
    cr_assert(ti);
}

Test(proto, owner_ids_must_be_empty_or_whole)
{
    /* A 5-byte owner node id is not an id. */
    fb_ref_t oid = fb_create_string(b, "0123456789012345678901234567", 28);
    fb_ref_t node = fb_create_string(b, "short", 5);
    fb_start_table(b);
    fb_add_ref(b, 0, oid);
    fb_add_ref(b, 1, node);
    const uint8_t *buf;
    size_t len;
    cr_assert_eq(fb_builder_finish(b, fb_end_table(b), &buf, &len), 0);
    plasma_create_req_t out;
    cr_assert_eq(plasma_decode_create_req(buf, len, &out), CR_EBADMSG);
}

Test(proto, get_reply_round_trip_and_mandatory_vectors)
{
    id_object_t ids[3];
    plasma_spec_t specs[3] = {0};
    for (int i = 0; i < 3; i++) {
        make_id(&ids[i], (uint8_t)(10 * i));
        specs[i].data_size = (uint64_t)i * 100;
        specs[i].data_offset = (uint64_t)i * 64;
        specs[i].segment_index = 7;
        specs[i].unique_fd_id = 1;
    }
    specs[1].data_size = UINT64_MAX;
    int32_t fds[1] = {7};
    int64_t uids[1] = {1}, mms[1] = {4096 + 8};
    const uint8_t *buf;
    size_t len;
    cr_assert_eq(plasma_encode_get_reply(b, ids, specs, 3, fds, uids, mms, 1, &buf, &len), 0);
    plasma_get_reply_t r;
    cr_assert_eq(plasma_decode_get_reply(buf, len, &r), 0);
    cr_assert_eq(r.count, 3);
    cr_assert_eq(r.nfds, 1);
    for (uint32_t i = 0; i < 3; i++) {
        id_object_t id;
        plasma_spec_t sp;
        cr_assert_eq(plasma_get_reply_object(&r, i, &id, &sp), 0);
        cr_assert(ID_EQUAL(&id, &ids[i]));
        cr_assert_eq(sp.data_size, specs[i].data_size);
        cr_assert_eq(sp.data_offset, specs[i].data_offset);
    }
    int32_t fd;
    int64_t uid, mm;
    cr_assert_eq(plasma_get_reply_segment(&r, 0, &fd, &uid, &mm), 0);
    cr_assert_eq(fd, 7);
    cr_assert_eq(uid, 1);
    cr_assert_eq(mm, 4104);
    cr_assert_neq(plasma_get_reply_segment(&r, 1, &fd, &uid, &mm), 0);

    /* With nothing found, Ray's client still reads store_fds, unique_fd_ids
     * and mmap_sizes: they must be present, just empty. */
    cr_assert_eq(plasma_encode_get_reply(b, ids, specs, 1, NULL, NULL, NULL, 0, &buf, &len), 0);
    fb_table_t t;
    cr_assert_eq(fb_root(buf, len, &t), 0);
    for (unsigned slot = 0; slot <= 5; slot++)
        cr_assert(fb_has(&t, slot), "slot %u present", slot);
}

Test(proto, create_reply_forms)
{
    plasma_create_reply_t in = {.retry_with_request_id = 42};
    make_id(&in.object_id, 3);
    const uint8_t *buf;
    size_t len;
    cr_assert_eq(plasma_encode_create_reply(b, &in, &buf, &len), 0);
    fb_table_t t;
    cr_assert_eq(fb_root(buf, len, &t), 0);
    cr_assert_not(fb_has(&t, 2), "a retry reply carries only the id and the retry id");
    plasma_create_reply_t out;
    cr_assert_eq(plasma_decode_create_reply(buf, len, &out), 0);
    cr_assert_eq(out.retry_with_request_id, 42);

    /* An error reply still carries the spec: the client reads it first. */
    in = (plasma_create_reply_t){.error = PLASMA_OUT_OF_DISK};
    make_id(&in.object_id, 3);
    cr_assert_eq(plasma_encode_create_reply(b, &in, &buf, &len), 0);
    cr_assert_eq(fb_root(buf, len, &t), 0);
    cr_assert(fb_has(&t, 2));
    cr_assert_eq(plasma_decode_create_reply(buf, len, &out), 0);
    cr_assert_eq(out.error, PLASMA_OUT_OF_DISK);

    in = (plasma_create_reply_t){.store_fd = 9, .unique_fd_id = 3, .mmap_size = 1 << 20};
    in.spec.data_offset = 128;
    in.spec.data_size = 1000;
    in.spec.metadata_offset = 1128;
    cr_assert_eq(plasma_encode_create_reply(b, &in, &buf, &len), 0);
    cr_assert_eq(plasma_decode_create_reply(buf, len, &out), 0);
    cr_assert_eq(out.store_fd, 9);
    cr_assert_eq(out.unique_fd_id, 3);
    cr_assert_eq(out.mmap_size, 1 << 20);
    cr_assert_eq(out.spec.metadata_offset, 1128);
}

Test(proto, small_messages_round_trip)
{
    id_object_t id, got;
    make_id(&id, 5);
    const uint8_t *buf;
    size_t len;
    int32_t err;
    bool flag;

    cr_assert_eq(plasma_encode_seal_reply(b, &id, PLASMA_OBJECT_NONEXISTENT, &buf, &len), 0);
    cr_assert_eq(plasma_decode_seal_reply(buf, len, &got, &err), 0);
    cr_assert(ID_EQUAL(&got, &id));
    cr_assert_eq(err, PLASMA_OBJECT_NONEXISTENT);

    cr_assert_eq(plasma_encode_release_req(b, &id, true, &buf, &len), 0);
    cr_assert_eq(plasma_decode_release_req(buf, len, &got, &flag), 0);
    cr_assert(flag);
    cr_assert_eq(plasma_encode_release_reply(b, &id, true, 0, &buf, &len), 0);
    cr_assert_eq(plasma_decode_release_reply(buf, len, &got, &flag, &err), 0);
    cr_assert(flag);

    cr_assert_eq(plasma_encode_contains_reply(b, &id, true, &buf, &len), 0);
    cr_assert_eq(plasma_decode_contains_reply(buf, len, &got, &flag), 0);
    cr_assert(flag);

    uint64_t rid;
    cr_assert_eq(plasma_encode_create_retry_req(b, &id, 77, &buf, &len), 0);
    cr_assert_eq(plasma_decode_create_retry_req(buf, len, &got, &rid), 0);
    cr_assert_eq(rid, 77);

    int64_t cap;
    cr_assert_eq(plasma_encode_connect_reply(b, 1ll << 33, &buf, &len), 0);
    cr_assert_eq(plasma_decode_connect_reply(buf, len, &cap), 0);
    cr_assert_eq(cap, 1ll << 33);

    fb_str_t s;
    cr_assert_eq(plasma_encode_debug_string_reply(b, "hello", 5, &buf, &len), 0);
    cr_assert_eq(plasma_decode_debug_string_reply(buf, len, &s), 0);
    cr_assert_eq(s.len, 5);

    id_object_t ids[2] = {id, id};
    int32_t errs[2] = {PLASMA_OK, PLASMA_OBJECT_IN_USE}, gerrs[2];
    uint32_t n;
    cr_assert_eq(plasma_encode_delete_reply(b, ids, errs, 2, &buf, &len), 0);
    cr_assert_eq(plasma_decode_delete_reply(buf, len, &n, gerrs, 2), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(gerrs[1], PLASMA_OBJECT_IN_USE);

    plasma_ids_t pids;
    cr_assert_eq(plasma_encode_delete_req(b, ids, 2, &buf, &len), 0);
    cr_assert_eq(plasma_decode_delete_req(buf, len, &pids), 0);
    cr_assert_eq(pids.count, 2);
    cr_assert_eq(plasma_ids_get(&pids, 1, &got), 0);
    cr_assert_eq(plasma_ids_get(&pids, 2, &got), CR_EBADMSG, "past the end");

    int64_t timeout;
    cr_assert_eq(plasma_encode_get_req(b, ids, 2, -1, &buf, &len), 0);
    cr_assert_eq(plasma_decode_get_req(buf, len, &pids, &timeout), 0);
    cr_assert_eq(timeout, -1);
    cr_assert_eq(pids.count, 2);
}

/* Every decoder against every truncation and many corruptions of a valid
 * message: it may succeed or fail, but must stay inside the buffer. */
typedef int (*decode_fn)(const uint8_t *, size_t);

static int d_create(const uint8_t *p, size_t n)
{
    plasma_create_req_t o;
    return plasma_decode_create_req(p, n, &o);
}
static int d_get(const uint8_t *p, size_t n)
{
    plasma_ids_t ids;
    int64_t t;
    int r = plasma_decode_get_req(p, n, &ids, &t);
    for (uint32_t i = 0; r == 0 && i < ids.count; i++) {
        id_object_t id;
        if (plasma_ids_get(&ids, i, &id) != 0)
            break;
    }
    return r;
}
static int d_get_reply(const uint8_t *p, size_t n)
{
    plasma_get_reply_t r;
    int rc = plasma_decode_get_reply(p, n, &r);
    for (uint32_t i = 0; rc == 0 && i < r.count; i++) {
        id_object_t id;
        plasma_spec_t sp;
        if (plasma_get_reply_object(&r, i, &id, &sp) != 0)
            break;
    }
    for (uint32_t i = 0; rc == 0 && i < r.nfds; i++) {
        int32_t fd;
        int64_t u, m;
        if (plasma_get_reply_segment(&r, i, &fd, &u, &m) != 0)
            break;
    }
    return rc;
}
static int d_create_reply(const uint8_t *p, size_t n)
{
    plasma_create_reply_t o;
    return plasma_decode_create_reply(p, n, &o);
}

static void torture(decode_fn fn, const uint8_t *msg, size_t len)
{
    cr_assert_eq(fn(msg, len), 0, "the untouched message decodes");
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *p = malloc(cut ? cut : 1);
        memcpy(p, msg, cut);
        (void)fn(p, cut);
        free(p);
    }
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 20000; i++) {
        uint8_t *p = malloc(len);
        memcpy(p, msg, len);
        int flips = 1 + i % 4;
        for (int f = 0; f < flips; f++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            p[x % len] ^= (uint8_t)(1u << ((x >> 32) % 8));
        }
        (void)fn(p, len);
        free(p);
    }
}

Test(proto, decoders_survive_truncation_and_corruption)
{
    const uint8_t *buf;
    size_t len;
    plasma_create_req_t in = {.owner_ip = "10.1.2.3", .owner_ip_len = 8, .data_size = 5};
    make_id(&in.object_id, 1);
    memset(in.owner_node_id.b, 1, 28);
    memset(in.owner_worker_id.b, 2, 28);
    cr_assert_eq(plasma_encode_create_req(b, &in, &buf, &len), 0);
    uint8_t *copy = malloc(len);
    memcpy(copy, buf, len);
    torture(d_create, copy, len);
    free(copy);

    id_object_t ids[4];
    for (int i = 0; i < 4; i++)
        make_id(&ids[i], (uint8_t)i);
    cr_assert_eq(plasma_encode_get_req(b, ids, 4, 100, &buf, &len), 0);
    copy = malloc(len);
    memcpy(copy, buf, len);
    torture(d_get, copy, len);
    free(copy);

    plasma_spec_t specs[4] = {0};
    int32_t fds[2] = {3, 4};
    int64_t uids[2] = {1, 2}, mms[2] = {100, 200};
    cr_assert_eq(plasma_encode_get_reply(b, ids, specs, 4, fds, uids, mms, 2, &buf, &len), 0);
    copy = malloc(len);
    memcpy(copy, buf, len);
    torture(d_get_reply, copy, len);
    free(copy);

    plasma_create_reply_t cr = {.store_fd = 5, .mmap_size = 100};
    make_id(&cr.object_id, 9);
    cr_assert_eq(plasma_encode_create_reply(b, &cr, &buf, &len), 0);
    copy = malloc(len);
    memcpy(copy, buf, len);
    torture(d_create_reply, copy, len);
    free(copy);
}
