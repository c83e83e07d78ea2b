/* Hostile and broken clients.  Every case follows one script: a well-behaved
 * client holds an object; a bad client creates an unsealed object of its
 * own and takes a reference on the good one; then it sends something
 * broken.  The store must close only the bad client, give back everything
 * it held, keep its invariants, and go on serving the good client. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fb.h"
#include "common/loop.h"
#include "object_store/plasma_proto.h"
#include "object_store/store.h"
#include "tests/tools/plasma_test_client.h"

#define MB (1024ull * 1024ull)

static loop_t *loop;
static store_t *store;
static char dir[64];
static ptc_t *good;
static id_object_t good_id;
static store_stats_t before;

static void setup(void)
{
    loop = loop_create();
    strcpy(dir, "/tmp/craylet-malformed-XXXXXX");
    cr_assert(mkdtemp(dir));
    store_options_t o;
    store_options_init(&o);
    o.capacity = 8 * MB;
    o.fallback_directory = dir;
    o.oom_grace_period_ms = 0;
    store = store_create(loop, &o);
    cr_assert(store);
    good = ptc_open(loop, store);
    ptc_make_id(&good_id, 1);
    cr_assert_eq(ptc_put(good, &good_id, "good", 4, NULL, 0), 0);
    ptc_obj_t obj;
    cr_assert_eq(ptc_get(good, &good_id, 1, 0, &obj), 0);
    store_get_stats(store, &before);
}

static void teardown(void)
{
    ptc_close(good);
    cr_expect_eq(store_check(store), 0);
    store_destroy(store);
    rmdir(dir);
    loop_destroy(loop);
}

TestSuite(malformed, .init = setup, .fini = teardown);

/* A bad client that holds memory and a reference before misbehaving. */
static ptc_t *bad_client(void)
{
    ptc_t *b = ptc_open(loop, store);
    cr_assert(b);
    id_object_t mine;
    ptc_make_id(&mine, 2);
    ptc_create_t cr;
    cr_assert_eq(ptc_create(b, &mine, 2 * MB, 0, &cr), 0);
    cr_assert_eq(cr.error, 0);
    ptc_obj_t o;
    cr_assert_eq(ptc_get(b, &good_id, 1, 0, &o), 0);
    cr_assert(o.found);
    store_stats_t st;
    store_get_stats(store, &st);
    cr_assert_geq(st.bytes_used, before.bytes_used + 2 * MB);
    return b;
}

/* After the bad client is gone: all of it given back, the rest working. */
static void assert_recovered(ptc_t *b)
{
    cr_assert(ptc_closed_by_store(b), "the bad client is disconnected");
    ptc_close(b);
    store_stats_t st;
    store_get_stats(store, &st);
    cr_assert_eq(st.num_clients, 1);
    cr_assert_eq(st.num_objects, before.num_objects);
    cr_assert_eq(st.bytes_used, before.bytes_used, "its memory is accounted back");
    cr_assert_eq(st.num_unsealed, 0);
    cr_assert_eq(st.largest_free, before.largest_free);
    cr_assert_eq(store_check(store), 0, "reference counts agree with holders");
    /* The good client is unaffected. */
    bool has;
    cr_assert_eq(ptc_contains(good, &good_id, &has), 0);
    cr_assert(has);
    id_object_t fresh;
    ptc_make_id(&fresh, 3);
    cr_assert_eq(ptc_put(good, &fresh, "fresh", 5, NULL, 0), 0);
    ptc_obj_t o;
    cr_assert_eq(ptc_get(good, &fresh, 1, 0, &o), 0);
    cr_assert(o.found);
    cr_assert_eq(memcmp(o.data, "fresh", 5), 0);
}

static void send_bad_frame(int64_t cookie, int64_t type, const void *p, size_t n)
{
    ptc_t *b = bad_client();
    cr_assert_eq(ptc_send_frame(b, cookie, type, p, n), 0);
    assert_recovered(b);
}

static void send_bad(int64_t type, const void *p, size_t n)
{
    send_bad_frame(FRAME_RAY_COOKIE, type, p, n);
}

static const uint8_t *empty_table(size_t *len)
{
    static fb_builder_t *b;
    if (!b)
        b = fb_builder_create(0);
    const uint8_t *buf;
    cr_assert_eq(plasma_encode_empty_req(b, &buf, len), 0);
    return buf;
}

Test(malformed, wrong_cookie)
{
    size_t n;
    const uint8_t *p = empty_table(&n);
    send_bad_frame(0x1234567812345678LL, PLASMA_MSG_CONNECT_REQUEST, p, n);
}

Test(malformed, unknown_message_type)
{
    size_t n;
    const uint8_t *p = empty_table(&n);
    send_bad(99, p, n);
}

Test(malformed, negative_message_type)
{
    size_t n;
    const uint8_t *p = empty_table(&n);
    send_bad(-1, p, n);
}

Test(malformed, a_reply_type_sent_as_a_request)
{
    size_t n;
    const uint8_t *p = empty_table(&n);
    send_bad(PLASMA_MSG_CREATE_REPLY, p, n);
}

Test(malformed, negative_length)
{
    ptc_t *b = bad_client();
    uint8_t h[FRAME_HEADER_SIZE];
    frame_header_write(h, FRAME_RAY_COOKIE, PLASMA_MSG_CONNECT_REQUEST, 0);
    int64_t neg = -5;
    memcpy(h + 16, &neg, 8);
    cr_assert_eq(ptc_send_raw(b, h, sizeof h), 0);
    assert_recovered(b);
}

Test(malformed, length_over_the_limit)
{
    ptc_t *b = bad_client();
    uint8_t h[FRAME_HEADER_SIZE];
    frame_header_write(h, FRAME_RAY_COOKIE, PLASMA_MSG_GET_REQUEST, (size_t)65 << 20);
    cr_assert_eq(ptc_send_raw(b, h, sizeof h), 0);
    assert_recovered(b);
}

Test(malformed, length_lies_and_the_peer_hangs_up)
{
    ptc_t *b = bad_client();
    uint8_t h[FRAME_HEADER_SIZE + 10] = {0};
    frame_header_write(h, FRAME_RAY_COOKIE, PLASMA_MSG_CONTAINS_REQUEST, 100);
    cr_assert_eq(ptc_send_raw(b, h, sizeof h), 0);
    ptc_pump(loop, 1);
    store_stats_t st;
    store_get_stats(store, &st);
    cr_assert_eq(st.num_clients, 2, "a partial frame alone is no offence");
    shutdown(b->fd, SHUT_RDWR);
    ptc_pump(loop, 1);
    ptc_pump(loop, 1);
    store_get_stats(store, &st);
    cr_assert_eq(st.num_clients, 1);
    cr_assert_eq(st.bytes_used, before.bytes_used);
    cr_assert_eq(store_check(store), 0);
    ptc_close(b);
}

Test(malformed, empty_payload)
{
    send_bad(PLASMA_MSG_CONNECT_REQUEST, "", 0);
}

Test(malformed, tiny_payload)
{
    send_bad(PLASMA_MSG_CONTAINS_REQUEST, "\x01\x02\x03", 3);
}

Test(malformed, root_offset_outside_the_message)
{
    uint8_t p[12] = {0x00, 0x10, 0x00, 0x00};
    send_bad(PLASMA_MSG_SEAL_REQUEST, p, sizeof p);
}

/* A hand-laid Seal request: root -> table at 12, vtable at 4 with one
 * field at +4, the field pointing at a string at 20. */
static size_t seal_request(uint8_t *p, uint32_t strlen_field, int32_t soffset)
{
    memset(p, 0, 56);
    fb_store_u32(p, 12);
    fb_store_u16(p + 4, 8);  /* vtable bytes */
    fb_store_u16(p + 6, 8);  /* table bytes */
    fb_store_u16(p + 8, 4);  /* slot 0 at +4 */
    fb_store_u32(p + 12, (uint32_t)soffset);
    fb_store_u32(p + 16, 4); /* string at 16 + 4 */
    fb_store_u32(p + 20, strlen_field);
    memset(p + 24, 0x33, 28);
    p[52] = 0;
    return 56;
}

Test(malformed, handmade_seal_request_is_understood)
{
    /* The same bytes with honest fields are a valid request: this proves
     * the following cases fail for the reason they claim. */
    uint8_t p[56];
    size_t n = seal_request(p, 28, 8);
    id_object_t id;
    cr_assert_eq(plasma_decode_id_req(p, n, &id), 0);
    cr_assert_eq(id.b[0], 0x33);
}

Test(malformed, string_length_lies)
{
    uint8_t p[56];
    size_t n = seal_request(p, 1000, 8);
    send_bad(PLASMA_MSG_SEAL_REQUEST, p, n);
}

Test(malformed, vtable_outside_the_message)
{
    uint8_t p[56];
    size_t n = seal_request(p, 28, -1000);
    send_bad(PLASMA_MSG_SEAL_REQUEST, p, n);
}

Test(malformed, object_id_of_the_wrong_size)
{
    uint8_t p[56];
    size_t n = seal_request(p, 27, 8);
    send_bad(PLASMA_MSG_SEAL_REQUEST, p, n);
}

Test(malformed, missing_object_id)
{
    size_t n;
    const uint8_t *p = empty_table(&n);
    send_bad(PLASMA_MSG_RELEASE_REQUEST, p, n);
}

Test(malformed, vector_count_lies)
{
    /* Get request: table at 12 whose slot 0 points at a vector at 20
     * claiming a billion elements in a 24-byte message. */
    uint8_t p[24] = {0};
    fb_store_u32(p, 12);
    fb_store_u16(p + 4, 8);
    fb_store_u16(p + 6, 8);
    fb_store_u16(p + 8, 4);
    fb_store_u32(p + 12, 8);
    fb_store_u32(p + 16, 4);
    fb_store_u32(p + 20, 0x40000000);
    send_bad(PLASMA_MSG_GET_REQUEST, p, sizeof p);
}

Test(malformed, too_many_ids_in_one_get)
{
    /* Legal flatbuffer, absurd request: 2M entries sharing one string. */
    uint32_t count = 2u << 20;
    size_t n = 24 + (size_t)count * 4 + 36;
    uint8_t *p = calloc(1, n);
    fb_store_u32(p, 12);
    fb_store_u16(p + 4, 8);
    fb_store_u16(p + 6, 8);
    fb_store_u16(p + 8, 4);
    fb_store_u32(p + 12, 8);
    fb_store_u32(p + 16, 4);
    fb_store_u32(p + 20, count);
    size_t str = 24 + (size_t)count * 4;
    for (uint32_t i = 0; i < count; i++)
        fb_store_u32(p + 24 + (size_t)i * 4, (uint32_t)(str - (24 + (size_t)i * 4)));
    fb_store_u32(p + str, 28);
    send_bad(PLASMA_MSG_GET_REQUEST, p, n);
    free(p);
}

Test(malformed, garbage_after_a_good_request_in_the_same_write)
{
    ptc_t *b = bad_client();
    const uint8_t *buf;
    size_t len;
    cr_assert_eq(plasma_encode_id_req(b->b, &good_id, &buf, &len), 0);
    uint8_t out[512];
    frame_header_write(out, FRAME_RAY_COOKIE, PLASMA_MSG_CONTAINS_REQUEST, len);
    memcpy(out + FRAME_HEADER_SIZE, buf, len);
    memset(out + FRAME_HEADER_SIZE + len, 0xee, 40);
    cr_assert_eq(ptc_send_raw(b, out, FRAME_HEADER_SIZE + len + 40), 0);
    /* The good request is answered before the garbage ends it. */
    cr_assert_eq(ptc_expect(b, PLASMA_MSG_CONTAINS_REPLY, &buf, &len), 0);
    assert_recovered(b);
}

Test(malformed, hangup_while_blocked_in_a_get)
{
    ptc_t *b = bad_client();
    id_object_t missing;
    ptc_make_id(&missing, 77);
    cr_assert_eq(ptc_get_send(b, &missing, 1, -1), 0);
    ptc_pump(loop, 1);
    store_stats_t st;
    store_get_stats(store, &st);
    cr_assert_eq(st.num_pending_gets, 1);
    close(b->fd);
    b->fd = -1;
    ptc_pump(loop, 1);
    ptc_pump(loop, 1);
    store_get_stats(store, &st);
    cr_assert_eq(st.num_pending_gets, 0);
    cr_assert_eq(st.num_clients, 1);
    cr_assert_eq(st.bytes_used, before.bytes_used);
    cr_assert_eq(store_check(store), 0);
    ptc_close(b);
}

Test(malformed, flood_while_blocked_is_not_read)
{
    ptc_t *b = bad_client();
    id_object_t missing;
    ptc_make_id(&missing, 77);
    cr_assert_eq(ptc_get_send(b, &missing, 1, -1), 0);
    ptc_pump(loop, 1);
    /* Keep writing until the socket refuses: the store must not buffer it. */
    static uint8_t junk[65536];
    size_t sent = 0;
    for (int i = 0; i < 4096; i++) {
        ssize_t w = send(b->fd, junk, sizeof junk, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w <= 0)
            break;
        sent += (size_t)w;
        ptc_pump(loop, 0);
    }
    cr_assert_lt(sent, (size_t)64 << 20, "the kernel's buffer filled; the store stopped reading");
    store_stats_t st;
    store_get_stats(store, &st);
    cr_assert_eq(st.num_clients, 2, "a blocked client is left alone");
    /* Sealing what it waits for answers it; then the junk is read and it
     * is dropped.  The object goes with it (deleted once unreferenced), so
     * the totals return to where they were. */
    cr_assert_eq(ptc_put(good, &missing, "m", 1, NULL, 0), 0);
    int fr = store_free(store, &missing); /* now, or once b lets go */
    cr_assert(fr == 0 || fr == -EBUSY);
    assert_recovered(b);
    cr_assert_not(store_contains(store, &missing));
}

Test(malformed, retry_of_another_clients_request_is_refused)
{
    /* Fill the store with pinned data so a create must queue. */
    id_object_t big;
    ptc_make_id(&big, 50);
    static uint8_t data[7 * MB];
    cr_assert_eq(ptc_put(good, &big, data, sizeof data, NULL, 0), 0);
    cr_assert_eq(store_pin(store, &big), 0);
    store_destroy(store); /* restart with a long grace so the request stays queued */
    ptc_close(good);
    store_options_t o;
    store_options_init(&o);
    o.capacity = 8 * MB;
    o.fallback_directory = dir;
    o.oom_grace_period_ms = 60000;
    store = store_create(loop, &o);
    good = ptc_open(loop, store);
    cr_assert_eq(ptc_put(good, &big, data, sizeof data, NULL, 0), 0);
    cr_assert_eq(store_pin(store, &big), 0);
    cr_assert_eq(ptc_put(good, &good_id, "good", 4, NULL, 0), 0);
    store_get_stats(store, &before);

    ptc_t *a = ptc_open(loop, store), *b = ptc_open(loop, store);
    id_object_t x;
    ptc_make_id(&x, 60);
    ptc_create_t cr;
    cr_assert_eq(ptc_create_ex(a, &x, 2 * MB, 0, false, false, &cr), 0);
    uint64_t rid = cr.retry_id;
    cr_assert_gt(rid, 0);
    cr_assert_eq(ptc_create_retry(b, &x, rid, &cr), 0);
    cr_assert_eq(cr.error, PLASMA_UNEXPECTED_ERROR, "b cannot collect a's request");
    cr_assert_eq(ptc_create_retry(a, &x, rid, &cr), 0);
    cr_assert_eq(cr.retry_id, rid, "a's request is untouched");
    /* Releasing what one does not hold changes nothing. */
    cr_assert_eq(ptc_release(b, &good_id, false, NULL), 0);
    cr_assert_eq(store_check(store), 0);
    ptc_close(a);
    ptc_close(b);
    ptc_pump(loop, 1);
    store_stats_t st;
    store_get_stats(store, &st);
    cr_assert_eq(st.num_pending_creates, 0);
}

Test(malformed, too_many_queued_creates)
{
    id_object_t big;
    ptc_make_id(&big, 50);
    static uint8_t data[7 * MB];
    store_destroy(store);
    ptc_close(good);
    store_options_t o;
    store_options_init(&o);
    o.capacity = 8 * MB;
    o.fallback_directory = dir;
    o.oom_grace_period_ms = 60000;
    store = store_create(loop, &o);
    good = ptc_open(loop, store);
    cr_assert_eq(ptc_put(good, &big, data, sizeof data, NULL, 0), 0);
    cr_assert_eq(store_pin(store, &big), 0);
    store_get_stats(store, &before);

    ptc_t *b = ptc_open(loop, store);
    bool closed = false;
    for (uint32_t i = 0; i < 400 && !closed; i++) {
        id_object_t x;
        ptc_make_id(&x, 1000 + i);
        ptc_create_t cr;
        int r = ptc_create_ex(b, &x, 2 * MB, 0, false, false, &cr);
        if (r != 0)
            closed = true;
        else
            cr_assert_gt(cr.retry_id, 0);
    }
    cr_assert(closed, "an abusive client is cut off");
    cr_assert(ptc_closed_by_store(b));
    ptc_close(b);
    store_stats_t st;
    store_get_stats(store, &st);
    cr_assert_eq(st.num_pending_creates, 0);
    cr_assert_eq(st.num_clients, 1);
}
