/* The object store over its real wire protocol: a test client speaking
 * plasma frames and receiving descriptors with recvmsg, against a store on
 * a loop in the same thread.  Zero-copy is checked through the clients' own
 * mappings of the descriptors they were sent. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/loop.h"
#include "object_store/plasma_proto.h"
#include "object_store/store.h"
#include "tests/tools/plasma_test_client.h"

#define KB 1024ull
#define MB (1024ull * 1024ull)

static loop_t *loop;
static store_t *store;
static char fallback_dir[64];
static char sock_path[128];

static void start_store(uint64_t capacity, uint64_t grace_ms, bool with_socket)
{
    loop = loop_create();
    cr_assert(loop);
    strcpy(fallback_dir, "/tmp/craylet-store-test-XXXXXX");
    cr_assert(mkdtemp(fallback_dir));
    snprintf(sock_path, sizeof sock_path, "%s/plasma.sock", fallback_dir);
    store_options_t o;
    store_options_init(&o);
    o.capacity = capacity;
    o.fallback_directory = fallback_dir;
    o.oom_grace_period_ms = grace_ms;
    o.socket_path = with_socket ? sock_path : NULL;
    store = store_create(loop, &o);
    cr_assert(store);
}

static void stop_store(void)
{
    if (store) {
        cr_expect_eq(store_check(store), 0);
        store_destroy(store);
    }
    store = NULL;
    rmdir(fallback_dir);
    loop_destroy(loop);
}

static void setup(void) { start_store(4 * MB, 0, false); }

/* For tests that need other settings than the suite's. */
static void restart_store(uint64_t capacity, uint64_t grace_ms)
{
    stop_store();
    start_store(capacity, grace_ms, false);
}

TestSuite(store, .init = setup, .fini = stop_store);

static store_stats_t stats(void)
{
    store_stats_t st;
    store_get_stats(store, &st);
    return st;
}

static void fill(uint8_t *p, uint64_t n, uint32_t seed)
{
    for (uint64_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 31 + i * 7);
}

static bool check_fill(const uint8_t *p, uint64_t n, uint32_t seed)
{
    for (uint64_t i = 0; i < n; i++)
        if (p[i] != (uint8_t)(seed * 31 + i * 7))
            return false;
    return true;
}

/* ---- basics ---- */

Test(store_socket, connect_over_the_real_socket)
{
    start_store(4 * MB, 0, true);
    struct stat st;
    cr_assert_eq(stat(sock_path, &st), 0);
    cr_assert(S_ISSOCK(st.st_mode));
    ptc_t *c = ptc_open_path(loop, sock_path);
    cr_assert(c);
    int64_t cap = 0;
    cr_assert_eq(ptc_connect(c, &cap), 0);
    cr_assert_eq(cap, 4 * MB);
    id_object_t id;
    ptc_make_id(&id, 1);
    uint8_t data[1000];
    fill(data, sizeof data, 1);
    cr_assert_eq(ptc_put(c, &id, data, sizeof data, "m", 1), 0);
    bool has;
    cr_assert_eq(ptc_contains(c, &id, &has), 0);
    cr_assert(has);
    ptc_close(c);
    cr_assert_eq(store_check(store), 0);
    store_destroy(store);
    store = NULL;
    cr_assert_neq(stat(sock_path, &st), 0, "the socket file is removed at shutdown");
    stop_store();
}

Test(store_socket, stale_socket_file_is_replaced)
{
    char dir[] = "/tmp/craylet-stale-XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/s", dir);
    FILE *f = fopen(path, "w");
    fclose(f);
    loop = loop_create();
    store_options_t o;
    store_options_init(&o);
    o.capacity = 1 * MB;
    o.socket_path = path;
    o.fallback_directory = dir;
    store = store_create(loop, &o);
    cr_assert(store);
    ptc_t *c = ptc_open_path(loop, path);
    cr_assert(c);
    int64_t cap;
    cr_assert_eq(ptc_connect(c, &cap), 0);
    ptc_close(c);
    store_destroy(store);
    store = NULL;
    rmdir(dir);
    loop_destroy(loop);
}

Test(store_socket, bad_options_fail_cleanly)
{
    loop = loop_create();
    store_options_t o;
    store_options_init(&o);
    cr_assert_null(store_create(loop, &o), "capacity 0");
    o.capacity = 1 * MB;
    o.plasma_directory = "/nonexistent/dir";
    cr_assert_null(store_create(loop, &o));
    o.plasma_directory = NULL;
    o.socket_path = "/nonexistent/dir/sock";
    cr_assert_null(store_create(loop, &o));
    loop_destroy(loop);
}

Test(store, create_seal_get_is_zero_copy)
{
    ptc_t *a = ptc_open(loop, store), *b = ptc_open(loop, store);
    int64_t cap;
    cr_assert_eq(ptc_connect(a, &cap), 0);
    cr_assert_eq(ptc_connect(b, &cap), 0);
    id_object_t id;
    ptc_make_id(&id, 7);
    ptc_create_t cr;
    cr_assert_eq(ptc_create(a, &id, 100000, 16, &cr), 0);
    cr_assert_eq(cr.error, PLASMA_OK);
    cr_assert_eq(cr.spec.data_size, 100000);
    cr_assert_eq(cr.spec.metadata_size, 16);
    cr_assert_eq(cr.spec.metadata_offset, cr.spec.data_offset + 100000);
    cr_assert_eq(cr.spec.data_offset % 64, 0, "64-byte aligned");
    cr_assert_not(cr.spec.fallback_allocated);
    cr_assert_eq(a->fds_received, 1);
    /* Written through the creator's own mapping of the region. */
    fill(cr.data, 100000, 7);
    memcpy(cr.data + 100000, "metadata-bytes!!", 16);
    int32_t err;
    cr_assert_eq(ptc_seal(a, &id, &err), 0);
    cr_assert_eq(err, PLASMA_OK);

    ptc_obj_t o;
    cr_assert_eq(ptc_get(b, &id, 1, 0, &o), 0);
    cr_assert(o.found);
    cr_assert_eq(o.data_size, 100000);
    cr_assert_eq(o.metadata_size, 16);
    cr_assert_eq(b->fds_received, 1);
    cr_assert_neq(o.data, cr.data, "a different mapping in the reader");
    cr_assert(check_fill(o.data, 100000, 7), "the reader sees the writer's bytes");
    cr_assert_eq(memcmp(o.metadata, "metadata-bytes!!", 16), 0);
    /* Same pages: a write through one mapping shows through the other. */
    cr.data[5] ^= 0xff;
    cr_assert_eq(o.data[5], cr.data[5]);
    cr.data[5] ^= 0xff;
    /* And the store's own view is the same memory. */
    store_view_t v;
    cr_assert_eq(store_read_local(store, &id, &v), 0);
    cr_assert_eq(v.data_size, 100000);
    cr_assert(check_fill(v.data, 100000, 7));
    cr_assert_eq(memcmp(v.metadata, "metadata-bytes!!", 16), 0);

    cr_assert_eq(ptc_release(a, &id, false, NULL), 0);
    cr_assert_eq(ptc_release(b, &id, false, NULL), 0);
    store_stats_t st = stats();
    cr_assert_eq(st.num_objects, 1);
    cr_assert_eq(st.bytes_evictable, 100016);
    cr_assert_eq(st.num_created, 1);
    cr_assert_eq(store_check(store), 0);
    ptc_close(a);
    ptc_close(b);
}

Test(store, descriptor_sent_once_per_client)
{
    ptc_t *a = ptc_open(loop, store);
    id_object_t ids[5];
    for (uint32_t i = 0; i < 5; i++) {
        ptc_make_id(&ids[i], 100 + i);
        uint8_t d[64] = {(uint8_t)i};
        cr_assert_eq(ptc_put(a, &ids[i], d, sizeof d, NULL, 0), 0);
    }
    cr_assert_eq(a->fds_received, 1, "five creates, one descriptor");
    ptc_obj_t out[5];
    cr_assert_eq(ptc_get(a, ids, 5, 0, out), 0);
    cr_assert_eq(ptc_get(a, ids, 5, 0, out), 0);
    cr_assert_eq(a->fds_received, 1, "gets reuse the mapping");
    for (int i = 0; i < 5; i++) {
        cr_assert(out[i].found);
        cr_assert_eq(out[i].data[0], i);
    }
    ptc_t *b = ptc_open(loop, store);
    cr_assert_eq(ptc_get(b, ids, 5, 0, out), 0);
    cr_assert_eq(b->fds_received, 1, "a new client gets it once too");
    ptc_close(a);
    ptc_close(b);
}

Test(store, get_lists_every_id_in_order)
{
    ptc_t *c = ptc_open(loop, store);
    id_object_t x, missing;
    ptc_make_id(&x, 1);
    ptc_make_id(&missing, 2);
    cr_assert_eq(ptc_put(c, &x, "abc", 3, "M", 1), 0);
    id_object_t req[4] = {x, missing, x, missing};
    ptc_obj_t out[4];
    cr_assert_eq(ptc_get(c, req, 4, 0, out), 0);
    cr_assert(out[0].found && out[2].found);
    cr_assert(!out[1].found && !out[3].found);
    cr_assert_eq(out[1].spec.data_size, UINT64_MAX, "missing is all ones");
    cr_assert_eq(memcmp(out[0].data, "abc", 3), 0);
    cr_assert_eq(out[0].metadata[0], 'M');
    /* One reference per client however often it is listed. */
    cr_assert_eq(store_free(store, &x), -EBUSY);
    cr_assert_eq(ptc_release(c, &x, false, NULL), 0);
    cr_assert_not(store_contains(store, &x), "the pending delete ran at the only release");
    ptc_close(c);
}

Test(store, empty_and_large_gets)
{
    ptc_t *c = ptc_open(loop, store);
    ptc_obj_t dummy;
    cr_assert_eq(ptc_get(c, NULL, 0, -1, &dummy), 0, "an empty get returns at once");
    enum { N = 10000 };
    id_object_t *ids = calloc(N, sizeof *ids);
    ptc_obj_t *out = calloc(N, sizeof *out);
    for (uint32_t i = 0; i < N; i++)
        ptc_make_id(&ids[i], 5000 + i);
    cr_assert_eq(ptc_put(c, &ids[1234], "z", 1, NULL, 0), 0);
    cr_assert_eq(ptc_get(c, ids, N, 0, out), 0);
    for (uint32_t i = 0; i < N; i++)
        cr_assert_eq(out[i].found, i == 1234);
    free(ids);
    free(out);
    ptc_close(c);
}

/* ---- waiting ---- */

Test(store, get_times_out)
{
    ptc_t *c = ptc_open(loop, store);
    id_object_t id;
    ptc_make_id(&id, 9);
    ptc_obj_t o;
    uint64_t t0 = ptc__now_ms();
    cr_assert_eq(ptc_get(c, &id, 1, 150, &o), 0);
    uint64_t dt = ptc__now_ms() - t0;
    cr_assert_not(o.found);
    cr_assert_geq(dt, 140, "waited %llu ms", (unsigned long long)dt);
    cr_assert_lt(dt, 2000);
    cr_assert_eq(stats().num_pending_gets, 0);
    t0 = ptc__now_ms();
    cr_assert_eq(ptc_get(c, &id, 1, 0, &o), 0);
    cr_assert_lt(ptc__now_ms() - t0, 100, "timeout 0 polls");
    ptc_close(c);
}

Test(store, get_wakes_when_sealed_and_later_requests_wait_their_turn)
{
    ptc_t *reader = ptc_open(loop, store), *writer = ptc_open(loop, store);
    id_object_t x, y;
    ptc_make_id(&x, 1);
    ptc_make_id(&y, 2);
    cr_assert_eq(ptc_put(writer, &y, "yy", 2, NULL, 0), 0);
    /* A blocking get, then a Contains pipelined behind it. */
    cr_assert_eq(ptc_get_send(reader, &x, 1, -1), 0);
    const uint8_t *buf;
    size_t len;
    cr_assert_eq(plasma_encode_id_req(reader->b, &y, &buf, &len), 0);
    cr_assert_eq(ptc_send(reader, PLASMA_MSG_CONTAINS_REQUEST, buf, len), 0);
    for (int i = 0; i < 5; i++)
        ptc_pump(loop, 2);
    int64_t type;
    cr_assert_eq(ptc_recv_wait(reader, &type, &buf, &len, 50), -ETIMEDOUT, "nothing answered yet");
    cr_assert_eq(stats().num_pending_gets, 1);

    ptc_create_t cr;
    cr_assert_eq(ptc_create(writer, &x, 4096, 0, &cr), 0);
    fill(cr.data, 4096, 3);
    int32_t err;
    cr_assert_eq(ptc_seal(writer, &x, &err), 0);

    ptc_obj_t o;
    cr_assert_eq(ptc_get_recv(reader, &x, 1, &o, PTC_WAIT_MS), 0, "the get reply comes first");
    cr_assert(o.found);
    cr_assert(check_fill(o.data, 4096, 3));
    cr_assert_eq(ptc_expect(reader, PLASMA_MSG_CONTAINS_REPLY, &buf, &len), 0, "then the contains");
    bool has;
    id_object_t got;
    cr_assert_eq(plasma_decode_contains_reply(buf, len, &got, &has), 0);
    cr_assert(has);
    cr_assert(ID_EQUAL(&got, &y));
    ptc_close(reader);
    ptc_close(writer);
}

Test(store, partial_get_times_out_with_what_arrived)
{
    ptc_t *reader = ptc_open(loop, store), *writer = ptc_open(loop, store);
    id_object_t ids[2];
    ptc_make_id(&ids[0], 1);
    ptc_make_id(&ids[1], 2);
    cr_assert_eq(ptc_get_send(reader, ids, 2, 200), 0);
    ptc_pump(loop, 1);
    cr_assert_eq(ptc_put(writer, &ids[1], "b", 1, NULL, 0), 0);
    ptc_obj_t out[2];
    cr_assert_eq(ptc_get_recv(reader, ids, 2, out, PTC_WAIT_MS), 0);
    cr_assert_not(out[0].found);
    cr_assert(out[1].found);
    cr_assert_eq(out[1].data[0], 'b');
    ptc_close(reader);
    ptc_close(writer);
}

/* ---- lifecycle requests ---- */

Test(store, create_twice_is_object_exists_without_a_descriptor)
{
    ptc_t *c = ptc_open(loop, store);
    id_object_t id;
    ptc_make_id(&id, 1);
    ptc_create_t cr;
    cr_assert_eq(ptc_create(c, &id, 10, 0, &cr), 0);
    cr_assert_eq(cr.error, 0);
    ptc_create_t again;
    cr_assert_eq(ptc_create(c, &id, 10, 0, &again), 0);
    cr_assert_eq(again.error, PLASMA_OBJECT_EXISTS);
    cr_assert_eq(c->fds_received, 1);
    ptc_close(c);
}

Test(store, seal_errors)
{
    ptc_t *a = ptc_open(loop, store), *b = ptc_open(loop, store);
    id_object_t id, none;
    ptc_make_id(&id, 1);
    ptc_make_id(&none, 2);
    int32_t err;
    cr_assert_eq(ptc_seal(a, &none, &err), 0);
    cr_assert_eq(err, PLASMA_OBJECT_NONEXISTENT);
    ptc_create_t cr;
    cr_assert_eq(ptc_create(a, &id, 10, 0, &cr), 0);
    cr_assert_eq(ptc_seal(b, &id, &err), 0);
    cr_assert_eq(err, PLASMA_OBJECT_NONEXISTENT, "only the creator seals");
    cr_assert_not(store_contains(store, &id));
    cr_assert_eq(ptc_seal(a, &id, &err), 0);
    cr_assert_eq(err, PLASMA_OK);
    cr_assert_eq(ptc_seal(a, &id, &err), 0);
    cr_assert_eq(err, PLASMA_UNEXPECTED_ERROR, "sealed twice");
    ptc_close(a);
    ptc_close(b);
}

Test(store, contains_only_sealed)
{
    ptc_t *c = ptc_open(loop, store);
    id_object_t id;
    ptc_make_id(&id, 1);
    bool has = true;
    cr_assert_eq(ptc_contains(c, &id, &has), 0);
    cr_assert_not(has);
    ptc_create_t cr;
    cr_assert_eq(ptc_create(c, &id, 10, 0, &cr), 0);
    cr_assert_eq(ptc_contains(c, &id, &has), 0);
    cr_assert_not(has, "unsealed objects are not contained");
    int32_t err;
    cr_assert_eq(ptc_seal(c, &id, &err), 0);
    cr_assert_eq(ptc_contains(c, &id, &has), 0);
    cr_assert(has);
    ptc_close(c);
}

Test(store, abort_by_creator_frees_memory)
{
    ptc_t *a = ptc_open(loop, store), *b = ptc_open(loop, store);
    id_object_t id;
    ptc_make_id(&id, 1);
    ptc_create_t cr;
    cr_assert_eq(ptc_create(a, &id, 1 * MB, 0, &cr), 0);
    cr_assert_geq(stats().bytes_used, 1 * MB);
    cr_assert_eq(ptc_abort(b, &id), 0, "a non-creator is answered...");
    cr_assert_eq(stats().num_objects, 1, "...but nothing happens");
    cr_assert_eq(ptc_abort(a, &id), 0);
    cr_assert_eq(stats().num_objects, 0);
    cr_assert_eq(stats().bytes_used, 0);
    cr_assert_eq(ptc_create(a, &id, 10, 0, &cr), 0, "the id is free again");
    cr_assert_eq(cr.error, 0);
    int32_t err;
    cr_assert_eq(ptc_seal(a, &id, &err), 0);
    cr_assert_eq(ptc_abort(a, &id), 0, "aborting a sealed object is refused, still answered");
    cr_assert(store_contains(store, &id));
    cr_assert_eq(store_check(store), 0);
    ptc_close(a);
    ptc_close(b);
}

static int deleted_count;
static id_object_t last_deleted;
static void on_deleted(void *ctx, const id_object_t *id)
{
    deleted_count++;
    last_deleted = *id;
}

Test(store, delete_now_or_when_released)
{
    store_set_deleted_cb(store, on_deleted, NULL);
    ptc_t *c = ptc_open(loop, store);
    id_object_t a, b, u, none;
    ptc_make_id(&a, 1);
    ptc_make_id(&b, 2);
    ptc_make_id(&u, 3);
    ptc_make_id(&none, 4);
    cr_assert_eq(ptc_put(c, &a, "a", 1, NULL, 0), 0);
    cr_assert_eq(ptc_put(c, &b, "b", 1, NULL, 0), 0);
    ptc_obj_t o;
    cr_assert_eq(ptc_get(c, &b, 1, 0, &o), 0); /* hold b */
    ptc_create_t cr;
    cr_assert_eq(ptc_create(c, &u, 5, 0, &cr), 0); /* u unsealed */
    id_object_t ids[4] = {a, b, u, none};
    int32_t errs[4];
    cr_assert_eq(ptc_delete(c, ids, 4, errs), 0);
    cr_assert_eq(errs[0], PLASMA_OK);
    cr_assert_eq(errs[1], PLASMA_OBJECT_IN_USE);
    cr_assert_eq(errs[2], PLASMA_OBJECT_NOT_SEALED);
    cr_assert_eq(errs[3], PLASMA_OBJECT_NONEXISTENT);
    cr_assert_not(store_contains(store, &a));
    cr_assert_eq(deleted_count, 1);
    cr_assert(store_contains(store, &b));
    cr_assert_eq(ptc_release(c, &b, false, NULL), 0);
    cr_assert_not(store_contains(store, &b), "deleted at its last release");
    cr_assert_eq(deleted_count, 2);
    cr_assert(ID_EQUAL(&last_deleted, &b));
    int32_t err;
    cr_assert_eq(ptc_seal(c, &u, &err), 0);
    cr_assert(store_contains(store, &u), "the creator still holds it");
    cr_assert_eq(ptc_release(c, &u, false, NULL), 0);
    cr_assert_not(store_contains(store, &u));
    cr_assert_eq(stats().bytes_used, 0);
    ptc_close(c);
}

Test(store, release_with_may_unmap_is_answered)
{
    ptc_t *c = ptc_open(loop, store);
    id_object_t id, none;
    ptc_make_id(&id, 1);
    ptc_make_id(&none, 2);
    cr_assert_eq(ptc_put(c, &id, "x", 1, NULL, 0), 0);
    ptc_obj_t o;
    cr_assert_eq(ptc_get(c, &id, 1, 0, &o), 0);
    bool unmap = true;
    cr_assert_eq(ptc_release(c, &id, true, &unmap), 0);
    cr_assert_not(unmap, "the region is never unmapped");
    cr_assert_eq(ptc_release(c, &none, true, &unmap), 0, "unknown objects are answered too");
    cr_assert_not(unmap);
    ptc_close(c);
}

Test(store, debug_string)
{
    ptc_t *c = ptc_open(loop, store);
    const uint8_t *buf;
    size_t len;
    cr_assert_eq(plasma_encode_empty_req(c->b, &buf, &len), 0);
    cr_assert_eq(ptc_send(c, PLASMA_MSG_GET_DEBUG_STRING_REQUEST, buf, len), 0);
    cr_assert_eq(ptc_expect(c, PLASMA_MSG_GET_DEBUG_STRING_REPLY, &buf, &len), 0);
    fb_str_t s;
    cr_assert_eq(plasma_decode_debug_string_reply(buf, len, &s), 0);
    cr_assert(strstr(s.data, "Plasma store"));
    ptc_close(c);
}

Test(store, mutable_objects_get_a_header)
{
    ptc_t *c = ptc_open(loop, store);
    id_object_t id;
    ptc_make_id(&id, 1);
    ptc_create_t cr;
    cr_assert_eq(ptc_create_ex(c, &id, 1000, 8, false, true, &cr), 0);
    cr_assert_eq(cr.error, 0);
    cr_assert(cr.spec.is_mutable);
    cr_assert_eq(cr.spec.data_offset, cr.spec.header_offset + 96);
    cr_assert_eq(cr.spec.allocated_size, 1008);
    const uint8_t *hdr = cr.data - 96;
    cr_assert_neq(hdr[4], 0, "the header carries a unique name");
    cr_assert_eq(hdr[48], 0);
    ptc_close(c);
}

/* ---- memory pressure ---- */

Test(store, lru_evicts_least_recently_released)
{
    restart_store(1 * MB, 0);
    ptc_t *c = ptc_open(loop, store);
    id_object_t a, b, cc, d;
    ptc_make_id(&a, 1);
    ptc_make_id(&b, 2);
    ptc_make_id(&cc, 3);
    ptc_make_id(&d, 4);
    static uint8_t big[300 * KB];
    cr_assert_eq(ptc_put(c, &a, big, sizeof big, NULL, 0), 0);
    cr_assert_eq(ptc_put(c, &b, big, sizeof big, NULL, 0), 0);
    cr_assert_eq(ptc_put(c, &cc, big, sizeof big, NULL, 0), 0);
    ptc_obj_t o; /* touch a: now b is the oldest release */
    cr_assert_eq(ptc_get(c, &a, 1, 0, &o), 0);
    cr_assert_eq(ptc_release(c, &a, false, NULL), 0);
    cr_assert_eq(ptc_put(c, &d, big, sizeof big, NULL, 0), 0);
    cr_assert_not(store_contains(store, &b));
    cr_assert(store_contains(store, &a));
    cr_assert(store_contains(store, &cc));
    cr_assert(store_contains(store, &d));
    cr_assert_eq(stats().num_evicted, 1);
    cr_assert_eq(stats().num_fallback, 0);
    ptc_close(c);
}

Test(store, held_and_pinned_objects_are_not_evicted_and_fallback_takes_the_rest)
{
    restart_store(1 * MB, 0);
    ptc_t *w = ptc_open(loop, store), *r = ptc_open(loop, store);
    id_object_t ids[3], extra;
    static uint8_t big[300 * KB];
    for (uint32_t i = 0; i < 3; i++) {
        ptc_make_id(&ids[i], 10 + i);
        cr_assert_eq(ptc_put(w, &ids[i], big, sizeof big, NULL, 0), 0);
    }
    cr_assert_eq(store_pin(store, &ids[0]), 0);
    cr_assert_eq(store_pin(store, &ids[1]), 0);
    ptc_obj_t held;
    cr_assert_eq(ptc_get(r, &ids[2], 1, 0, &held), 0); /* held by a client */
    store_stats_t st = stats();
    cr_assert_eq(st.num_pinned, 2);
    cr_assert_eq(st.bytes_evictable, 0);

    ptc_make_id(&extra, 99);
    ptc_create_t cr;
    cr_assert_eq(ptc_create(w, &extra, 400 * KB, 0, &cr), 0);
    cr_assert_eq(cr.error, PLASMA_OK, "nothing is lost: the object goes to a file");
    cr_assert(cr.spec.fallback_allocated);
    cr_assert_eq(cr.spec.data_offset, 0);
    cr_assert_eq(w->fds_received, 2, "the fallback file is a second descriptor");
    for (int i = 0; i < 3; i++)
        cr_assert(store_contains(store, &ids[i]));
    fill(cr.data, 400 * KB, 5);
    int32_t err;
    cr_assert_eq(ptc_seal(w, &extra, &err), 0);
    cr_assert_eq(ptc_release_obj(w, &extra, &cr.spec), 0);
    cr_assert_null(ptc_find_map(w, cr.spec.segment_index, cr.spec.unique_fd_id),
                   "the creator was told to unmap the file");
    st = stats();
    cr_assert_eq(st.num_fallback, 1);
    cr_assert_geq(st.bytes_fallback, 400 * KB);

    /* A reader maps the file through its own descriptor. */
    ptc_obj_t o;
    int before = r->fds_received;
    cr_assert_eq(ptc_get(r, &extra, 1, 0, &o), 0);
    cr_assert(o.found && o.fallback);
    cr_assert_eq(r->fds_received, before + 1);
    cr_assert(check_fill(o.data, 400 * KB, 5));
    bool unmap;
    cr_assert_eq(ptc_release(r, &extra, true, &unmap), 0);
    cr_assert(unmap);
    ptc_map_t *m = ptc_find_map(r, o.spec.segment_index, o.spec.unique_fd_id);
    cr_assert(m);
    ptc_drop_map(r, m);
    /* Getting it again sends the descriptor again. */
    cr_assert_eq(ptc_get(r, &extra, 1, 0, &o), 0);
    cr_assert_eq(r->fds_received, before + 2);
    cr_assert(check_fill(o.data, 400 * KB, 5));
    cr_assert_eq(ptc_release_obj(r, &extra, &o.spec), 0);

    /* Deleting the fallback object removes its file's memory. */
    int32_t errs[1];
    cr_assert_eq(ptc_delete(w, &extra, 1, errs), 0);
    cr_assert_eq(errs[0], PLASMA_OK);
    cr_assert_eq(stats().bytes_fallback, 0);
    cr_assert_eq(store_unpin(store, &ids[0]), 0);
    cr_assert_eq(store_unpin(store, &ids[0]), -ENOENT, "not pinned any more");
    ptc_close(w);
    ptc_close(r);
}

Test(store, full_store_queues_creates_until_space_appears)
{
    restart_store(1 * MB, 60000); /* a long grace: only freed space can help */
    ptc_t *w = ptc_open(loop, store);
    id_object_t ids[3], extra;
    static uint8_t big[300 * KB];
    for (uint32_t i = 0; i < 3; i++) {
        ptc_make_id(&ids[i], 10 + i);
        cr_assert_eq(ptc_put(w, &ids[i], big, sizeof big, NULL, 0), 0);
        cr_assert_eq(store_pin(store, &ids[i]), 0);
    }
    ptc_make_id(&extra, 99);
    ptc_create_t cr;
    cr_assert_eq(ptc_create_ex(w, &extra, 400 * KB, 0, false, false, &cr), 0);
    cr_assert_gt(cr.retry_id, 0, "told to retry");
    cr_assert_eq(stats().num_pending_creates, 1);
    ptc_pump(loop, 20);
    uint64_t rid = cr.retry_id;
    cr_assert_eq(ptc_create_retry(w, &extra, rid, &cr), 0);
    cr_assert_eq(cr.retry_id, rid, "still waiting");
    /* The raylet frees a primary copy: it becomes evictable. */
    cr_assert_eq(store_unpin(store, &ids[0]), 0);
    cr_assert_eq(store_unpin(store, &ids[1]), 0);
    ptc_pump(loop, 20);
    cr_assert_eq(ptc_create_retry(w, &extra, rid, &cr), 0);
    cr_assert_eq(cr.retry_id, 0);
    cr_assert_eq(cr.error, PLASMA_OK);
    cr_assert_not(cr.spec.fallback_allocated, "made room in the region");
    cr_assert_eq(stats().num_pending_creates, 0);
    cr_assert_eq(ptc_create_retry(w, &extra, rid, &cr), 0);
    cr_assert_eq(cr.error, PLASMA_UNEXPECTED_ERROR, "an answered request cannot be fetched twice");
    ptc_close(w);
}

static int spill_calls;
static bool spill_pending;
static bool on_spill(void *ctx, uint64_t bytes)
{
    spill_calls++;
    return spill_pending;
}

Test(store, spilling_defers_fallback_then_grace_period_ends_in_a_file)
{
    restart_store(1 * MB, 100);
    store_set_spill_cb(store, on_spill, NULL);
    spill_pending = true;
    ptc_t *w = ptc_open(loop, store);
    id_object_t ids[3], extra;
    static uint8_t big[300 * KB];
    for (uint32_t i = 0; i < 3; i++) {
        ptc_make_id(&ids[i], 10 + i);
        cr_assert_eq(ptc_put(w, &ids[i], big, sizeof big, NULL, 0), 0);
        cr_assert_eq(store_pin(store, &ids[i]), 0);
    }
    ptc_make_id(&extra, 99);
    ptc_create_t cr;
    cr_assert_eq(ptc_create_ex(w, &extra, 400 * KB, 0, false, false, &cr), 0);
    uint64_t rid = cr.retry_id;
    cr_assert_gt(rid, 0);
    for (int i = 0; i < 20; i++)
        ptc_pump(loop, 10);
    cr_assert_eq(ptc_create_retry(w, &extra, rid, &cr), 0);
    cr_assert_eq(cr.retry_id, rid, "while spilling is under way the store waits past the grace");
    cr_assert_gt(spill_calls, 1);
    spill_pending = false;
    /* Now the grace period runs (100 ms), then the file is made. */
    uint64_t t0 = ptc__now_ms();
    do {
        ptc_pump(loop, 10);
        cr_assert_eq(ptc_create_retry(w, &extra, rid, &cr), 0);
    } while (cr.retry_id && ptc__now_ms() - t0 < 3000);
    cr_assert_geq(ptc__now_ms() - t0, 90, "the grace period was honoured");
    cr_assert_eq(cr.error, PLASMA_OK);
    cr_assert(cr.spec.fallback_allocated);
    ptc_close(w);
}

Test(store, try_immediately_falls_back_at_once)
{
    restart_store(1 * MB, 60000);
    ptc_t *w = ptc_open(loop, store);
    id_object_t big_id, extra;
    ptc_make_id(&big_id, 1);
    ptc_make_id(&extra, 2);
    static uint8_t big[900 * KB];
    cr_assert_eq(ptc_put(w, &big_id, big, sizeof big, NULL, 0), 0);
    cr_assert_eq(store_pin(store, &big_id), 0);
    ptc_create_t cr;
    cr_assert_eq(ptc_create_ex(w, &extra, 300 * KB, 0, true, false, &cr), 0);
    cr_assert_eq(cr.retry_id, 0);
    cr_assert_eq(cr.error, PLASMA_OK);
    cr_assert(cr.spec.fallback_allocated);
    ptc_close(w);
}

Test(store, objects_larger_than_the_store_use_a_file)
{
    restart_store(1 * MB, 0);
    ptc_t *w = ptc_open(loop, store);
    id_object_t id;
    ptc_make_id(&id, 1);
    ptc_create_t cr;
    cr_assert_eq(ptc_create(w, &id, 3 * MB, 0, &cr), 0);
    cr_assert_eq(cr.error, PLASMA_OK);
    cr_assert(cr.spec.fallback_allocated);
    cr.data[3 * MB - 1] = 42;
    ptc_close(w);
    ptc_pump(loop, 1);
    cr_assert_eq(stats().num_objects, 0, "aborted with its creator");
}

static bool disk_full;
static bool on_disk_check(void *ctx)
{
    (void)ctx;
    return disk_full;
}

Test(store, a_full_disk_fails_a_create_that_does_not_fit_at_once)
{
    /* A long grace period: only the disk verdict can end the wait. */
    restart_store(1 * MB, 60000);
    store_set_disk_full_cb(store, on_disk_check, NULL);
    disk_full = true;
    ptc_t *w = ptc_open(loop, store);
    id_object_t big_id, extra, small;
    ptc_make_id(&big_id, 1);
    ptc_make_id(&extra, 2);
    ptc_make_id(&small, 3);
    static uint8_t big[900 * KB];
    cr_assert_eq(ptc_put(w, &big_id, big, sizeof big, NULL, 0), 0);
    cr_assert_eq(store_pin(store, &big_id), 0);
    ptc_create_t cr;
    cr_assert_eq(ptc_create_ex(w, &extra, 300 * KB, 0, false, false, &cr), 0);
    cr_assert_eq(cr.retry_id, 0, "answered at once, not queued");
    cr_assert_eq(cr.error, PLASMA_OUT_OF_DISK);
    /* What fits in memory is never refused for the disk. */
    cr_assert_eq(ptc_create_ex(w, &small, 10 * KB, 0, false, false, &cr), 0);
    cr_assert_eq(cr.error, PLASMA_OK);
    /* A pull into the full store: no fallback file either. */
    uint8_t *data = NULL;
    store_owner_t owner = {0};
    id_object_t pulled;
    ptc_make_id(&pulled, 4);
    cr_assert_eq(store_create_pulled(store, &pulled, 3 * MB, 0, &owner, true, &data), -ENOSPC);
    disk_full = false;
    cr_assert_eq(store_create_pulled(store, &pulled, 3 * MB, 0, &owner, true, &data), 0);
    cr_assert_not_null(data);
    store_set_disk_full_cb(store, NULL, NULL);
    ptc_close(w);
}

Test(store, absurd_sizes_are_out_of_disk)
{
    ptc_t *w = ptc_open(loop, store);
    id_object_t id;
    ptc_make_id(&id, 1);
    ptc_create_t cr;
    cr_assert_eq(ptc_create_ex(w, &id, (uint64_t)1 << 61, 0, true, false, &cr), 0);
    cr_assert_eq(cr.error, PLASMA_OUT_OF_DISK);
    cr_assert_eq(ptc_create_ex(w, &id, UINT64_MAX, UINT64_MAX, true, false, &cr), 0);
    cr_assert_eq(cr.error, PLASMA_OUT_OF_DISK);
    cr_assert_eq(stats().num_objects, 0);
    ptc_close(w);
}

/* ---- disconnects ---- */

Test(store, disconnect_mid_create_frees_memory)
{
    ptc_t *c = ptc_open(loop, store);
    id_object_t id;
    ptc_make_id(&id, 1);
    ptc_create_t cr;
    cr_assert_eq(ptc_create(c, &id, 2 * MB, 0, &cr), 0);
    cr_assert_geq(stats().bytes_used, 2 * MB);
    ptc_close(c);
    ptc_pump(loop, 1);
    store_stats_t st = stats();
    cr_assert_eq(st.num_objects, 0);
    cr_assert_eq(st.bytes_used, 0);
    cr_assert_eq(st.num_clients, 0);
    cr_assert_eq(st.largest_free, st.capacity);
}

Test(store, disconnect_drops_references_and_pending_requests)
{
    restart_store(1 * MB, 60000);
    ptc_t *a = ptc_open(loop, store), *b = ptc_open(loop, store);
    id_object_t x, missing, queued;
    ptc_make_id(&x, 1);
    ptc_make_id(&missing, 2);
    ptc_make_id(&queued, 3);
    static uint8_t big[900 * KB];
    cr_assert_eq(ptc_put(a, &x, big, sizeof big, NULL, 0), 0);
    ptc_obj_t o;
    cr_assert_eq(ptc_get(b, &x, 1, 0, &o), 0);
    cr_assert_eq(store_free(store, &x), -EBUSY);
    ptc_create_t cr; /* b queues a create that cannot fit while it holds x */
    cr_assert_eq(ptc_create_ex(b, &queued, 500 * KB, 0, false, false, &cr), 0);
    cr_assert_gt(cr.retry_id, 0);
    cr_assert_eq(ptc_get_send(b, &missing, 1, -1), 0); /* and blocks on a get */
    ptc_pump(loop, 1);
    store_stats_t st = stats();
    cr_assert_eq(st.num_pending_gets, 1);
    cr_assert_eq(st.num_pending_creates, 1);
    ptc_close(b);
    ptc_pump(loop, 1);
    st = stats();
    cr_assert_eq(st.num_pending_gets, 0);
    cr_assert_eq(st.num_pending_creates, 0);
    cr_assert_not(store_contains(store, &x), "its deferred delete ran when b let go");
    cr_assert_eq(store_check(store), 0);
    ptc_close(a);
}

Test(store, disconnect_message_closes_quietly)
{
    ptc_t *c = ptc_open(loop, store);
    const uint8_t *buf;
    size_t len;
    cr_assert_eq(plasma_encode_empty_req(c->b, &buf, &len), 0);
    cr_assert_eq(ptc_send(c, PLASMA_MSG_DISCONNECT_CLIENT, buf, len), 0);
    cr_assert(ptc_closed_by_store(c));
    cr_assert_eq(stats().num_clients, 0);
    ptc_close(c);
}

Test(store, many_clients)
{
    enum { N = 64 };
    ptc_t *c[N];
    id_object_t ids[N];
    for (int i = 0; i < N; i++) {
        c[i] = ptc_open(loop, store);
        cr_assert(c[i]);
        ptc_make_id(&ids[i], 1000 + (uint32_t)i);
        uint32_t v = (uint32_t)i * 3;
        cr_assert_eq(ptc_put(c[i], &ids[i], &v, sizeof v, NULL, 0), 0);
    }
    cr_assert_eq(stats().num_clients, N);
    for (int i = 0; i < N; i++) {
        ptc_obj_t o;
        cr_assert_eq(ptc_get(c[i], &ids[(i + 1) % N], 1, 0, &o), 0);
        uint32_t v;
        memcpy(&v, o.data, sizeof v);
        cr_assert_eq(v, (uint32_t)((i + 1) % N) * 3);
    }
    cr_assert_eq(store_check(store), 0);
    for (int i = 0; i < N; i++)
        ptc_close(c[i]);
    ptc_pump(loop, 1);
    cr_assert_eq(stats().num_clients, 0);
    cr_assert_eq(stats().bytes_evictable, N * 4, "every reference was dropped");
}

/* ---- the raylet's side ---- */

static int sealed_count;
static store_object_info_t last_sealed;
static char last_ip[64];
static void on_sealed(void *ctx, const store_object_info_t *info)
{
    sealed_count++;
    last_sealed = *info;
    snprintf(last_ip, sizeof last_ip, "%s", info->owner.ip);
    /* Callbacks may use the store: pin what was just sealed. */
    if (ctx)
        cr_assert_eq(store_pin(store, &info->id), 0);
}

Test(store, sealed_callback_gets_owner_and_may_pin)
{
    store_set_sealed_cb(store, on_sealed, (void *)1);
    ptc_t *c = ptc_open(loop, store);
    id_object_t id;
    ptc_make_id(&id, 1);
    cr_assert_eq(ptc_put(c, &id, "hello", 5, "mm", 2), 0);
    cr_assert_eq(sealed_count, 1);
    cr_assert(ID_EQUAL(&last_sealed.id, &id));
    cr_assert_eq(last_sealed.data_size, 5);
    cr_assert_eq(last_sealed.metadata_size, 2);
    cr_assert_str_eq(last_ip, "10.0.0.1");
    cr_assert_eq(last_sealed.owner.port, 1234);
    cr_assert_eq(last_sealed.owner.node_id.b[0], 0x11);
    cr_assert_eq(last_sealed.owner.worker_id.b[27], 0x22);
    cr_assert(store_is_spillable(store, &id), "pinned and released by its creator");
    store_stats_t st = stats();
    cr_assert_eq(st.num_pinned, 1);
    cr_assert_eq(st.bytes_pinned, 7);
    ptc_close(c);
}

Test(store, in_process_api)
{
    store_set_sealed_cb(store, on_sealed, NULL);
    store_set_deleted_cb(store, on_deleted, NULL);
    id_object_t id, id2;
    ptc_make_id(&id, 1);
    ptc_make_id(&id2, 2);
    store_owner_t owner = {.ip = "1.2.3.4", .port = 7};
    ID_SET_NIL(&owner.node_id);
    ID_SET_NIL(&owner.worker_id);
    cr_assert_eq(store_put_local(store, &id, "error!", 6, "E", 1, &owner,
                                 PLASMA_SOURCE_ERROR_STORED_BY_RAYLET),
                 0);
    cr_assert_eq(sealed_count, 1);
    cr_assert_eq(last_sealed.source, PLASMA_SOURCE_ERROR_STORED_BY_RAYLET);
    cr_assert(store_contains(store, &id));
    cr_assert_eq(store_put_local(store, &id, "x", 1, NULL, 0, NULL, 0), -EEXIST);
    store_view_t v;
    cr_assert_eq(store_read_local(store, &id, &v), 0);
    cr_assert_eq(memcmp(v.data, "error!", 6), 0);
    cr_assert_eq(v.metadata[0], 'E');
    cr_assert_not(store_is_spillable(store, &id));
    cr_assert_eq(store_pin(store, &id), 0);
    cr_assert_eq(store_pin(store, &id), 0, "pins nest");
    cr_assert(store_is_spillable(store, &id));
    cr_assert_eq(store_free(store, &id), -EBUSY);
    cr_assert_eq(store_unpin(store, &id), 0);
    cr_assert(store_contains(store, &id));
    cr_assert_eq(store_unpin(store, &id), 0);
    cr_assert_not(store_contains(store, &id), "freed when the last pin went");
    cr_assert_eq(deleted_count, 1);

    /* A worker on the socket sees objects the raylet writes. */
    uint8_t *p;
    cr_assert_eq(store_create_local(store, &id2, 100, 0, NULL, PLASMA_SOURCE_RECEIVED_FROM_REMOTE_RAYLET, &p), 0);
    cr_assert_eq(store_pin(store, &id2), -EAGAIN, "not sealed yet");
    ptc_t *c = ptc_open(loop, store);
    cr_assert_eq(ptc_get_send(c, &id2, 1, -1), 0);
    ptc_pump(loop, 1);
    memset(p, 0xab, 100);
    cr_assert_eq(store_seal_local(store, &id2), 0);
    cr_assert_eq(store_seal_local(store, &id2), -ENOENT);
    ptc_obj_t o;
    cr_assert_eq(ptc_get_recv(c, &id2, 1, &o, PTC_WAIT_MS), 0);
    cr_assert(o.found);
    cr_assert_eq(o.data[99], 0xab);
    ptc_close(c);

    id_object_t id3;
    ptc_make_id(&id3, 3);
    cr_assert_eq(store_create_local(store, &id3, 100, 0, NULL, 0, &p), 0);
    cr_assert_eq(store_abort_local(store, &id3), 0);
    cr_assert_eq(store_abort_local(store, &id3), -ENOENT);
    cr_assert_eq(store_free(store, &id3), -ENOENT);
    cr_assert_eq(store_pin(store, &id3), -ENOENT);
}

Test(store, stats_track_usage)
{
    ptc_t *c = ptc_open(loop, store);
    id_object_t id;
    ptc_make_id(&id, 1);
    ptc_create_t cr;
    cr_assert_eq(ptc_create(c, &id, 1000, 24, &cr), 0);
    store_stats_t st = stats();
    cr_assert_eq(st.capacity, 4 * MB);
    cr_assert_eq(st.bytes_used, 1024);
    cr_assert_eq(st.num_unsealed, 1);
    cr_assert_eq(st.bytes_unsealed, 1024);
    cr_assert_eq(st.num_clients, 1);
    int32_t err;
    cr_assert_eq(ptc_seal(c, &id, &err), 0);
    st = stats();
    cr_assert_eq(st.num_unsealed, 0);
    cr_assert_eq(st.num_objects, 1);
    cr_assert_eq(st.bytes_created, 1024);
    char text[512];
    size_t n = store_debug_string(store, text, sizeof text);
    cr_assert_gt(n, 0);
    cr_assert(strstr(text, "num objects: 1"));
    char tiny[8];
    cr_assert_gt(store_debug_string(store, tiny, sizeof tiny), sizeof tiny - 1);
    cr_assert_eq(strlen(tiny), 7, "truncated, terminated");
    ptc_close(c);
}

/* ---- a measurement, printed for the record ---- */

Test(store, wire_throughput)
{
    /* One writer and one reader in this thread, the store on the same loop:
     * each round is a full put (create, seal, release) and a full get
     * (get, release) of a 1 KiB object: five requests, three replies,
     * through real sockets. */
    ptc_t *w = ptc_open(loop, store), *r = ptc_open(loop, store);
    uint8_t data[1024];
    fill(data, sizeof data, 1);
    enum { N = 2000 };
    uint64_t t0 = ptc__now_ms();
    for (uint32_t i = 0; i < N; i++) {
        id_object_t id;
        ptc_make_id(&id, 100000 + i);
        cr_assert_eq(ptc_put(w, &id, data, sizeof data, NULL, 0), 0);
        ptc_obj_t o;
        cr_assert_eq(ptc_get(r, &id, 1, 0, &o), 0);
        cr_assert(o.found);
        cr_assert_eq(ptc_release(r, &id, false, NULL), 0);
    }
    uint64_t dt = ptc__now_ms() - t0;
    printf("store wire throughput: %u put+get rounds in %llu ms (%.0f rounds/s, "
           "client and store sharing one thread)\n",
           N, (unsigned long long)dt, dt ? N * 1000.0 / (double)dt : 0.0);
    cr_assert_eq(stats().num_objects, N);
    ptc_close(w);
    ptc_close(r);
}
