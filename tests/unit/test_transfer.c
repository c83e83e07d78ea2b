/* Pulls and pushes (object_store/transfer/) against real stores, with the
 * network replaced by the test: what the puller asks of owners and
 * holders is recorded, chunks are handed over by hand or straight from a
 * pusher on another store. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/loop.h"
#include "object_store/transfer/pull.h"
#include "object_store/transfer/push.h"

#define KB 1024ull
#define MB (1024ull * 1024ull)
#define CHUNK (4 * KB)

static loop_t *loop;
static store_t *here, *there;
static char dir_here[64], dir_there[64];

static store_t *make_store(char *dir, uint64_t capacity)
{
    strcpy(dir, "/tmp/craylet-xfer-test-XXXXXX");
    cr_assert(mkdtemp(dir));
    store_options_t o;
    store_options_init(&o);
    o.capacity = capacity;
    o.fallback_directory = dir;
    o.socket_path = NULL;
    store_t *s = store_create(loop, &o);
    cr_assert(s);
    return s;
}

static void setup(void)
{
    loop = loop_create();
    here = make_store(dir_here, 4 * MB);
    there = make_store(dir_there, 4 * MB);
}

static void teardown(void)
{
    cr_expect_eq(store_check(here), 0);
    cr_expect_eq(store_check(there), 0);
    store_destroy(here);
    store_destroy(there);
    rmdir(dir_here);
    rmdir(dir_there);
    loop_destroy(loop);
}

/* ---- the fake network ----------------------------------------------------- */

typedef struct net {
    int locates, requests;
    id_object_t last_locate, last_request;
    id_node_t last_holder;
    int fail_requests;
    int forgets;
    id_object_t last_forget;
    /* chunks the pusher sent: copies */
    transfer_chunk_t sent[64];
    uint8_t *sent_data[64];
    struct iovec sent_iov[64];
    bool lend;              /* hold each chunk's bytes past its reply */
    void *pins[64];
    uint64_t tokens[64];
    int nsent;
} net_t;

static net_t net;

static int fake_locate(void *ctx, const ray_addr_t *owner, const id_object_t *oid)
{
    (void)ctx;
    (void)owner;
    net.locates++;
    net.last_locate = *oid;
    return 0;
}

static int fake_request(void *ctx, const id_node_t *holder, const id_object_t *oid)
{
    (void)ctx;
    net.requests++;
    net.last_request = *oid;
    net.last_holder = *holder;
    return net.fail_requests ? -ENOENT : 0;
}

static int fake_send(void *ctx, const id_node_t *to, const transfer_chunk_t *c, uint64_t token)
{
    (void)ctx;
    (void)to;
    cr_assert_lt(net.nsent, 64);
    net.sent[net.nsent] = *c;
    uint8_t *copy = malloc(c->len ? c->len : 1);
    size_t at = 0;
    for (size_t i = 0; i < c->iovcnt; i++) {
        memcpy(copy + at, c->iov[i].iov_base, c->iov[i].iov_len);
        at += c->iov[i].iov_len;
    }
    cr_assert_eq(at, c->len, "the segments add up to the chunk");
    net.sent_data[net.nsent] = copy;
    net.sent_iov[net.nsent] = (struct iovec){.iov_base = copy, .iov_len = c->len};
    net.sent[net.nsent].iov = &net.sent_iov[net.nsent];
    net.sent[net.nsent].iovcnt = 1;
    if (net.lend) {
        push_pin_retain(c->pin);
        net.pins[net.nsent] = c->pin;
    }
    net.tokens[net.nsent] = token;
    net.nsent++;
    return 0;
}

static void net_reset(void)
{
    for (int i = 0; i < net.nsent; i++)
        free(net.sent_data[i]);
    memset(&net, 0, sizeof net);
}

static void fake_forget(void *ctx, const ray_addr_t *owner, const id_object_t *oid)
{
    (void)ctx;
    (void)owner;
    net.forgets++;
    net.last_forget = *oid;
}

static const pull_ops_t pull_ops = {.locate = fake_locate, .request = fake_request, .forget = fake_forget};
static const push_ops_t push_ops = {.send = fake_send};

static void stop_loop(loop_t *l, uint64_t id, void *data)
{
    (void)id;
    (void)data;
    loop_stop(l);
}

static void run_for(uint64_t ms)
{
    loop_add_timer(loop, ms, stop_loop, NULL);
    loop_run(loop);
}

static id_object_t oid_n(uint8_t n)
{
    id_object_t id;
    memset(id.b, n, sizeof id.b);
    return id;
}

static id_node_t node_n(uint8_t n)
{
    id_node_t id;
    memset(id.b, n, sizeof id.b);
    return id;
}

static ray_addr_t owner_addr(void)
{
    ray_addr_t a;
    memset(&a, 0, sizeof a);
    memset(a.worker_id.b, 0x77, sizeof a.worker_id.b);
    memset(a.node_id.b, 0x66, sizeof a.node_id.b);
    strcpy(a.ip, "10.0.0.2");
    a.port = 1234;
    return a;
}

static pull_t *make_puller(uint64_t fetch_fail_ms)
{
    pull_options_t o = {.self = node_n(1), .chunk_size = CHUNK, .retry_ms = 10000, .fetch_fail_ms = fetch_fail_ms,
                        .tick_ms = 5};
    return pull_create(loop, here, &o, &pull_ops, NULL);
}

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 31 + seed);
}

static transfer_chunk_t chunk_of(const id_object_t *id, const uint8_t *whole, uint64_t total, uint64_t meta,
                             uint32_t index)
{
    /* The bytes as the network hands them: in two uneven segments. */
    static struct iovec segs[16][2];
    static unsigned next;
    struct iovec *seg = segs[next++ % 16];
    uint64_t off = (uint64_t)index * CHUNK;
    uint64_t len = total - off < CHUNK ? total - off : CHUNK;
    seg[0] = (struct iovec){.iov_base = (void *)(whole + off), .iov_len = (size_t)(len / 3)};
    seg[1] = (struct iovec){.iov_base = (void *)(whole + off + len / 3), .iov_len = (size_t)(len - len / 3)};
    transfer_chunk_t c = {.id = *id, .from = node_n(2), .owner = owner_addr(), .index = index, .total_size = total,
                          .metadata_size = meta, .iov = seg, .iovcnt = 2, .len = (size_t)len};
    return c;
}

/* The owner names a holder: the puller asks it, once, promptly. */
static void locate_then_request(pull_t *p, const id_object_t *id)
{
    cr_assert_eq(net.locates, 1, "the owner is asked where the object is");
    cr_assert(memcmp(&net.last_locate, id, sizeof *id) == 0);
    id_node_t holders[2] = {node_n(1) /* ourselves: ignored */, node_n(2)};
    pull_locations_t loc = {.nodes = holders, .count = 2, .object_size = 10 * KB};
    pull_on_locations(p, id, &loc);
    run_for(20);
    cr_assert_eq(net.requests, 1, "one holder is asked");
    cr_assert(memcmp(&net.last_holder, &holders[1], sizeof holders[1]) == 0, "never this node itself");
}

TestSuite(transfer, .init = setup, .fini = teardown);

Test(transfer, chunks_in_any_order_make_a_sealed_object)
{
    net_reset();
    pull_t *p = make_puller(600000);
    id_object_t id = oid_n(0x11);
    ray_addr_t owner = owner_addr();
    uint64_t h = pull_bundle(p, PULL_GET, &id, &owner, 1);
    cr_assert_neq(h, 0);
    locate_then_request(p, &id);

    uint64_t total = 10 * KB + 5, meta = 5;
    uint8_t *whole = malloc(total);
    fill(whole, total, 3);
    transfer_chunk_t c2 = chunk_of(&id, whole, total, meta, 2);
    transfer_chunk_t c0 = chunk_of(&id, whole, total, meta, 0);
    transfer_chunk_t c1 = chunk_of(&id, whole, total, meta, 1);
    cr_assert_eq(pull_on_chunk(p, &c2), 0);
    cr_assert_eq(pull_receiving_count(p), 1);
    cr_assert_eq(pull_on_chunk(p, &c2), -EALREADY, "a duplicate is refused");
    cr_assert_eq(pull_on_chunk(p, &c0), 0);
    cr_assert_not(store_contains(here, &id), "not sealed before the last chunk");
    cr_assert_eq(pull_on_chunk(p, &c1), 0);
    cr_assert(store_contains(here, &id));
    cr_assert_eq(pull_receiving_count(p), 0);
    store_view_t v;
    cr_assert_eq(store_read_local(here, &id, &v), 0);
    cr_assert_eq(v.data_size, total - meta);
    cr_assert_eq(v.metadata_size, meta);
    cr_assert(memcmp(v.data, whole, total - meta) == 0);
    cr_assert(memcmp(v.metadata, whole + total - meta, meta) == 0);
    cr_assert_eq(pull_on_chunk(p, &c1), -ENOENT, "late chunks of a finished pull are dropped");
    pull_cancel(p, h);
    cr_assert_eq(pull_object_count(p), 0);
    free(whole);
    pull_destroy(p);
    net_reset();
}

Test(transfer, bad_chunks_are_refused_and_reserve_nothing)
{
    net_reset();
    pull_t *p = make_puller(600000);
    id_object_t id = oid_n(0x22), other = oid_n(0x23);
    ray_addr_t owner = owner_addr();
    uint64_t h = pull_bundle(p, PULL_GET, &id, &owner, 1);
    uint64_t total = 9 * KB;
    uint8_t *whole = calloc(1, total + CHUNK);
    transfer_chunk_t c = chunk_of(&other, whole, total, 0, 0);
    cr_assert_eq(pull_on_chunk(p, &c), -ENOENT, "nobody pulls it");
    c = chunk_of(&id, whole, total, 0, 3);
    c.len = 0;
    cr_assert_eq(pull_on_chunk(p, &c), -ERANGE, "past the last chunk");
    c = chunk_of(&id, whole, total, 0, 0);
    c.len = CHUNK - 1;
    cr_assert_eq(pull_on_chunk(p, &c), -EMSGSIZE, "a short chunk");
    c = chunk_of(&id, whole, total, 0, 2);
    c.len = CHUNK;
    cr_assert_eq(pull_on_chunk(p, &c), -EMSGSIZE, "a last chunk longer than the object");
    c = chunk_of(&id, whole, total, total + 1, 0);
    cr_assert_eq(pull_on_chunk(p, &c), -EINVAL, "metadata larger than the object");
    c = chunk_of(&id, whole, 0, 0, 0);
    cr_assert_eq(pull_on_chunk(p, &c), -EINVAL, "an empty object");
    c = chunk_of(&id, whole, UINT64_MAX, 0, 0);
    cr_assert_eq(pull_on_chunk(p, &c), -EINVAL, "an absurd size");
    store_stats_t st;
    store_get_stats(here, &st);
    cr_assert_eq(st.num_unsealed, 0, "refused chunks reserve nothing");
    /* A sender that changes its story: the partial object is replaced. */
    c = chunk_of(&id, whole, total, 0, 0);
    cr_assert_eq(pull_on_chunk(p, &c), 0);
    c = chunk_of(&id, whole, total + CHUNK, 0, 1);
    cr_assert_eq(pull_on_chunk(p, &c), 0);
    store_get_stats(here, &st);
    cr_assert_eq(st.num_unsealed, 1);
    cr_assert_eq(st.bytes_unsealed, total + CHUNK, "only the newest size is held");
    /* Cancelling frees the partial object. */
    pull_cancel(p, h);
    store_get_stats(here, &st);
    cr_assert_eq(st.num_unsealed, 0);
    cr_assert_eq(st.bytes_used, 0, "nothing leaked");
    free(whole);
    pull_destroy(p);
    net_reset();
}

Test(transfer, local_objects_need_no_pull_and_bundles_share_objects)
{
    net_reset();
    pull_t *p = make_puller(600000);
    id_object_t ids[3] = {oid_n(0x31), oid_n(0x32), oid_n(0x31)};
    ray_addr_t owners[3] = {owner_addr(), owner_addr(), owner_addr()};
    cr_assert_eq(store_put_local(here, &ids[1], "x", 1, NULL, 0, NULL, 0), 0);
    cr_assert_eq(pull_bundle(p, PULL_WAIT, &ids[1], &owners[1], 1), 0, "nothing to pull");
    uint64_t a = pull_bundle(p, PULL_WAIT, ids, owners, 3);
    uint64_t b = pull_bundle(p, PULL_GET, ids, owners, 1);
    cr_assert(a && b && a != b);
    cr_assert_eq(pull_object_count(p), 1, "one object, however many bundles");
    cr_assert_eq(net.locates, 1, "its owner asked once");
    pull_cancel(p, a);
    cr_assert_eq(pull_object_count(p), 1, "still needed by the get");
    pull_cancel(p, b);
    cr_assert_eq(pull_object_count(p), 0);
    pull_cancel(p, b); /* twice: ignored */
    pull_destroy(p);
    net_reset();
}

Test(transfer, nobody_has_it_becomes_an_error_object)
{
    net_reset();
    pull_t *p = make_puller(30);
    id_object_t id = oid_n(0x41), gone = oid_n(0x42), dead = oid_n(0x43);
    ray_addr_t owner = owner_addr();
    uint64_t h = pull_bundle(p, PULL_GET, &id, &owner, 1);
    pull_locations_t none = {.count = 0};
    pull_on_locations(p, &id, &none);
    run_for(100);
    store_view_t v;
    cr_assert_eq(store_read_local(here, &id, &v), 0, "a getter gets an answer, not a hang");
    cr_assert_eq(v.data_size, 0);
    cr_assert_eq(v.metadata_size, 2);
    cr_assert(memcmp(v.metadata, "14", 2) == 0, "OBJECT_FETCH_TIMED_OUT");
    /* The owner forgot it; the owner died. */
    uint64_t h2 = pull_bundle(p, PULL_GET, &gone, &owner, 1);
    pull_locations_t removed = {.ref_removed = true};
    pull_on_locations(p, &gone, &removed);
    cr_assert_eq(store_read_local(here, &gone, &v), 0);
    cr_assert(memcmp(v.metadata, "10", 2) == 0, "OBJECT_DELETED");
    uint64_t h3 = pull_bundle(p, PULL_GET, &dead, &owner, 1);
    pull_on_locate_failed(p, &dead, true);
    cr_assert_eq(store_read_local(here, &dead, &v), 0);
    cr_assert(memcmp(v.metadata, "9", 1) == 0 && v.metadata_size == 1, "OWNER_DIED");
    pull_cancel(p, h);
    pull_cancel(p, h2);
    pull_cancel(p, h3);
    pull_destroy(p);
    net_reset();
}

Test(transfer, pending_creation_never_times_out)
{
    net_reset();
    pull_t *p = make_puller(20);
    id_object_t id = oid_n(0x51);
    ray_addr_t owner = owner_addr();
    uint64_t h = pull_bundle(p, PULL_GET, &id, &owner, 1);
    pull_locations_t pending = {.pending_creation = true};
    pull_on_locations(p, &id, &pending);
    run_for(250);
    cr_assert_not(store_contains(here, &id), "a task still making it is waited for");
    cr_assert_gt(net.locates, 1, "and its owner asked again");
    pull_cancel(p, h);
    pull_destroy(p);
    net_reset();
}

/* Owners that publish their changes are followed, not polled: asked once,
 * forgotten exactly once when the object is done with, whichever way. */
Test(transfer, followed_locations_are_not_polled_and_are_forgotten)
{
    net_reset();
    pull_options_t o = {.self = node_n(1), .chunk_size = CHUNK, .retry_ms = 10000, .fetch_fail_ms = 600000,
                        .tick_ms = 5, .locations_pushed = true};
    pull_t *p = pull_create(loop, here, &o, &pull_ops, NULL);
    id_object_t waited = oid_n(0x71), cancelled = oid_n(0x72), removed = oid_n(0x73), failed = oid_n(0x74);
    ray_addr_t owner = owner_addr();
    uint64_t h = pull_bundle(p, PULL_GET, &waited, &owner, 1);
    pull_locations_t none = {.count = 0};
    pull_on_locations(p, &waited, &none);
    run_for(300);
    cr_assert_eq(net.locates, 1, "no copy yet: the owner will say when there is one, no polling");
    cr_assert_eq(net.forgets, 0);
    /* The owner publishes a copy: it is asked for at once. */
    id_node_t holder = node_n(2);
    pull_locations_t one = {.nodes = &holder, .count = 1, .object_size = 10 * KB};
    pull_on_locations(p, &waited, &one);
    run_for(20);
    cr_assert_eq(net.requests, 1);
    /* It arrives (sealed by anyone): followed no more. */
    uint8_t data[10 * KB];
    fill(data, sizeof data, 3);
    for (uint32_t i = 0; i < 3; i++) {
        transfer_chunk_t c = chunk_of(&waited, data, sizeof data, 0, i);
        cr_assert_eq(pull_on_chunk(p, &c), 0);
    }
    cr_assert(store_contains(here, &waited));
    run_for(20);
    cr_assert_eq(net.forgets, 1, "forgotten once it is here");
    cr_assert(memcmp(&net.last_forget, &waited, sizeof waited) == 0);

    uint64_t h2 = pull_bundle(p, PULL_WAIT, &cancelled, &owner, 1);
    run_for(20);
    pull_cancel(p, h2);
    cr_assert_eq(net.forgets, 2, "forgotten when nobody waits any more");
    cr_assert(memcmp(&net.last_forget, &cancelled, sizeof cancelled) == 0);

    uint64_t h3 = pull_bundle(p, PULL_GET, &removed, &owner, 1);
    run_for(20);
    pull_locations_t gone = {.ref_removed = true};
    pull_on_locations(p, &removed, &gone);
    cr_assert_eq(net.forgets, 3, "forgotten when the owner let it go");

    /* A lost subscription: forgotten, and followed afresh soon, not after
     * a full retry. */
    uint64_t h4 = pull_bundle(p, PULL_GET, &failed, &owner, 1);
    run_for(20);
    int before = net.locates;
    pull_on_locate_failed(p, &failed, false);
    cr_assert_eq(net.forgets, 4);
    run_for(300);
    cr_assert_gt(net.locates, before, "asked again within the short backoff");
    pull_cancel(p, h);
    pull_cancel(p, h3);
    pull_cancel(p, h4);
    cr_assert_eq(net.forgets, 5, "each object forgotten exactly once");
    pull_destroy(p);
    net_reset();
}

/* The region full of a primary copy that only spilling could move: a copy
 * a get needs goes to a fallback file once it has waited the grace; one
 * only a ray.wait asks for waits twice as long. */
Test(transfer, a_needed_copy_falls_back_to_a_file_after_waiting_for_room)
{
    net_reset();
    pull_options_t o = {.self = node_n(1), .chunk_size = CHUNK, .retry_ms = 10000, .fetch_fail_ms = 600000,
                        .tick_ms = 5, .no_room_grace_ms = 200};
    pull_t *p = pull_create(loop, here, &o, &pull_ops, NULL);
    id_object_t pinned = oid_n(0x81), got = oid_n(0x82), waited = oid_n(0x83);
    uint8_t *big = calloc(3 * MB, 1);
    cr_assert_eq(store_put_local(here, &pinned, big, 3 * MB, NULL, 0, NULL, 0), 0);
    cr_assert_eq(store_pin(here, &pinned), 0);
    ray_addr_t owner = owner_addr();
    uint64_t hg = pull_bundle(p, PULL_GET, &got, &owner, 1);
    uint64_t hw = pull_bundle(p, PULL_WAIT, &waited, &owner, 1);
    uint64_t total = 2 * MB;
    uint8_t *whole = malloc(total);
    fill(whole, total, 5);
    transfer_chunk_t g0 = chunk_of(&got, whole, total, 0, 0);
    transfer_chunk_t w0 = chunk_of(&waited, whole, total, 0, 0);
    cr_assert_eq(pull_on_chunk(p, &g0), -ENOMEM, "no room in the region at first");
    cr_assert_eq(pull_on_chunk(p, &w0), -ENOMEM);
    cr_assert_eq(pull_on_chunk(p, &g0), -ENOMEM, "nor before the grace is over");
    run_for(250);
    cr_assert_eq(pull_on_chunk(p, &g0), 0, "a get falls back to a file after the grace");
    cr_assert_eq(pull_on_chunk(p, &w0), -ENOMEM, "a wait waits longer");
    store_stats_t st;
    store_get_stats(here, &st);
    cr_assert_eq(st.num_fallback, 1);
    run_for(200);
    cr_assert_eq(pull_on_chunk(p, &w0), 0, "then it falls back too");
    store_get_stats(here, &st);
    cr_assert_eq(st.num_fallback, 2);
    cr_assert_leq(st.bytes_used - st.bytes_fallback, st.capacity, "the region never overfills");
    pull_cancel(p, hg);
    pull_cancel(p, hw);
    store_get_stats(here, &st);
    cr_assert_eq(st.num_fallback, 0, "the partial copy and its file are gone with the pull");
    cr_assert_eq(store_unpin(here, &pinned), 0);
    store_free(here, &pinned);
    pull_destroy(p);
    free(whole);
    free(big);
    net_reset();
}

Test(transfer, a_node_that_left_is_not_asked)
{
    net_reset();
    pull_t *p = make_puller(600000);
    id_object_t id = oid_n(0x61);
    ray_addr_t owner = owner_addr();
    uint64_t h = pull_bundle(p, PULL_GET, &id, &owner, 1);
    locate_then_request(p, &id);
    id_node_t holder = node_n(2);
    pull_node_removed(p, &holder);
    run_for(30);
    cr_assert_gt(net.locates, 1, "the owner is asked anew after the holder left");
    cr_assert_eq(net.requests, 1, "the node that left is not asked again");
    pull_cancel(p, h);
    pull_destroy(p);
    net_reset();
}

Test(transfer, push_streams_chunks_within_the_budget)
{
    net_reset();
    push_options_t o = {.chunk_size = CHUNK, .max_bytes_in_flight = 2 * CHUNK, .park_ms = 10000};
    push_t *pm = push_create(loop, there, &o, &push_ops, NULL);
    id_object_t id = oid_n(0x71);
    uint64_t data_len = 9 * KB, meta_len = 3 * KB;
    uint8_t *data = malloc(data_len), *meta = malloc(meta_len);
    fill(data, data_len, 1);
    fill(meta, meta_len, 2);
    cr_assert_eq(store_put_local(there, &id, data, data_len, meta, meta_len, NULL, 0), 0);
    id_node_t to = node_n(1);
    push_request(pm, &to, &id);
    cr_assert_eq(net.nsent, 2, "no more than the bytes in flight allow");
    cr_assert_eq(push_chunks_in_flight(pm), 2);
    cr_assert_neq(store_free(there, &id), 0, "held while pushed: a delete waits");
    push_on_sent(pm, net.tokens[0], true);
    cr_assert_eq(net.nsent, 3, "the next chunk goes when one is answered");
    push_on_sent(pm, net.tokens[1], true);
    push_on_sent(pm, net.tokens[2], true);
    cr_assert_eq(push_active_count(pm), 0);
    cr_assert_not(store_contains(there, &id), "the deferred delete happened when the push let go");
    /* The chunks rebuild the object on the pulling side, byte for byte. */
    pull_t *p = make_puller(600000);
    ray_addr_t owner = owner_addr();
    uint64_t h = pull_bundle(p, PULL_GET, &id, &owner, 1);
    for (int i = 2; i >= 0; i--) {
        transfer_chunk_t c = {.id = id, .index = net.sent[i].index, .total_size = net.sent[i].total_size,
                          .metadata_size = net.sent[i].metadata_size, .iov = net.sent[i].iov,
                          .iovcnt = net.sent[i].iovcnt, .len = net.sent[i].len};
        cr_assert_eq(pull_on_chunk(p, &c), 0);
    }
    store_view_t v;
    cr_assert_eq(store_read_local(here, &id, &v), 0);
    cr_assert(v.data_size == data_len && memcmp(v.data, data, data_len) == 0);
    cr_assert(v.metadata_size == meta_len && memcmp(v.metadata, meta, meta_len) == 0);
    pull_cancel(p, h);
    pull_destroy(p);
    push_destroy(pm);
    free(data);
    free(meta);
    net_reset();
}

static void *release_pins(void *arg)
{
    (void)arg;
    for (int i = 0; i < net.nsent; i++)
        push_pin_release(net.pins[i]);
    return NULL;
}

/* A transport may keep lent chunk bytes after the reply (gRPC slices in a
 * write still flushing): the object stays held until it lets go, which
 * may happen on another thread. */
Test(transfer, lent_chunk_bytes_keep_the_object_until_released)
{
    net_reset();
    net.lend = true;
    push_options_t o = {.chunk_size = CHUNK, .max_bytes_in_flight = 8 * CHUNK, .park_ms = 10000};
    push_t *pm = push_create(loop, there, &o, &push_ops, NULL);
    id_object_t id = oid_n(0x72);
    uint64_t len = 2 * CHUNK + 100;
    uint8_t *data = malloc(len);
    fill(data, len, 3);
    cr_assert_eq(store_put_local(there, &id, data, len, NULL, 0, NULL, 0), 0);
    id_node_t to = node_n(1);
    push_request(pm, &to, &id);
    cr_assert_eq(net.nsent, 3);
    cr_assert_neq(store_free(there, &id), 0, "held while pushed: a delete waits");
    for (int i = 0; i < 3; i++)
        push_on_sent(pm, net.tokens[i], true);
    run_for(30);
    cr_assert_eq(push_active_count(pm), 1, "every chunk answered, but its bytes are still lent");
    cr_assert(store_contains(there, &id), "so the object is still held");
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, release_pins, NULL), 0);
    pthread_join(t, NULL);
    run_for(30);
    cr_assert_eq(push_active_count(pm), 0, "released: the push ends");
    cr_assert_not(store_contains(there, &id), "and the deferred delete happens");
    push_destroy(pm);
    free(data);
    net_reset();
}

Test(transfer, a_pull_for_an_object_not_here_waits_for_its_seal)
{
    net_reset();
    push_options_t o = {.chunk_size = CHUNK, .max_bytes_in_flight = 64 * CHUNK, .park_ms = 40};
    push_t *pm = push_create(loop, there, &o, &push_ops, NULL);
    id_object_t id = oid_n(0x81), never = oid_n(0x82);
    id_node_t to = node_n(1);
    push_request(pm, &to, &id);
    push_request(pm, &to, &never);
    cr_assert_eq(push_parked_count(pm), 2);
    cr_assert_eq(net.nsent, 0);
    cr_assert_eq(store_put_local(there, &id, "abc", 3, NULL, 0, NULL, 0), 0);
    push_on_sealed(pm, &id);
    cr_assert_eq(net.nsent, 1);
    cr_assert_eq(net.sent[0].total_size, 3);
    run_for(700);
    cr_assert_eq(push_parked_count(pm), 0, "an unserved Pull is forgotten after the timeout");
    /* A node that leaves takes its pushes with it, replies or not. */
    push_request(pm, &to, &id);
    push_node_removed(pm, &to);
    cr_assert_eq(push_chunks_in_flight(pm), 0);
    push_on_sent(pm, net.tokens[0], true);
    push_destroy(pm);
    net_reset();
}
