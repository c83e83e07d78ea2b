/* The owners of pinned primary copies, as Ray 2.60 releases them: by
 * FreeLocalObjects (osub_free), and all at once when the owning worker or
 * its node dies (published by GCS).  Up to 2.5x the owner's eviction
 * channel is used instead; that needs live owners and is covered by the
 * integration tests. */
#include <criterion/criterion.h>
#include <string.h>

#include "proto/gen/ray_version.h"
#include "raylet/objects/owner_sub.h"

#if !CRAYLET_RAY_OBJECT_EVICTION_CHANNEL
typedef struct released {
    uint8_t ids[16][ID_OBJECT_SIZE];
    size_t n;
} released_t;

static void on_released(void *ctx, const uint8_t oid[ID_OBJECT_SIZE])
{
    released_t *r = ctx;
    cr_assert_lt(r->n, 16);
    memcpy(r->ids[r->n++], oid, ID_OBJECT_SIZE);
}

static void fill(uint8_t *id, size_t len, uint8_t v)
{
    memset(id, v, len);
}

static bool was_released(const released_t *r, uint8_t v)
{
    uint8_t id[ID_OBJECT_SIZE];
    fill(id, sizeof id, v);
    for (size_t i = 0; i < r->n; i++)
        if (memcmp(r->ids[i], id, ID_OBJECT_SIZE) == 0)
            return true;
    return false;
}

static void watch(osub_t *s, uint8_t worker, uint8_t node, uint8_t object)
{
    uint8_t wid[ID_UNIQUE_SIZE], nid[ID_UNIQUE_SIZE], oid[ID_OBJECT_SIZE];
    fill(wid, sizeof wid, worker);
    fill(nid, sizeof nid, node);
    fill(oid, sizeof oid, object);
    Ray__Rpc__Address owner = RAY__RPC__ADDRESS__INIT;
    owner.worker_id.data = wid;
    owner.worker_id.len = sizeof wid;
    owner.node_id.data = nid;
    owner.node_id.len = sizeof nid;
    owner.ip_address = "10.0.0.2";
    owner.port = 40000;
    cr_assert_eq(osub_watch(s, &owner, oid), 0);
}

#endif

Test(owner_sub, freed_and_dead_owners_release_exactly_their_objects)
{
#if CRAYLET_RAY_OBJECT_EVICTION_CHANNEL
    cr_skip_test("built for a Ray release that releases pins through the owner's eviction channel");
#else
    released_t r = {.n = 0};
    uint8_t me[ID_UNIQUE_SIZE];
    fill(me, sizeof me, 0xee);
    osub_t *s = osub_create(NULL, NULL, me, "10.0.0.1", 1234, on_released, &r);
    watch(s, 0xa1, 0x01, 0x11);
    watch(s, 0xa1, 0x01, 0x12);
    watch(s, 0xa1, 0x01, 0x13);
    watch(s, 0xa1, 0x01, 0x13); /* pinned twice: still one object */
    watch(s, 0xb2, 0x02, 0x21);
    watch(s, 0xb2, 0x02, 0x22);
    watch(s, 0xc3, 0x01, 0x31);
    cr_assert_eq(osub_watched(s), 6);

    uint8_t oid[ID_OBJECT_SIZE];
    fill(oid, sizeof oid, 0x11);
    cr_assert(osub_free(s, oid));
    cr_assert_not(osub_free(s, oid), "freed twice: the second is a no-op");
    fill(oid, sizeof oid, 0x99);
    cr_assert_not(osub_free(s, oid), "never pinned");
    cr_assert_eq(r.n, 1);
    cr_assert(was_released(&r, 0x11));

    uint8_t wid[ID_UNIQUE_SIZE];
    fill(wid, sizeof wid, 0xa1);
    cr_assert_eq(osub_owner_died(s, wid), 2);
    cr_assert(was_released(&r, 0x12) && was_released(&r, 0x13));
    cr_assert_eq(osub_owner_died(s, wid), 0, "already gone");

    uint8_t nid[ID_UNIQUE_SIZE];
    fill(nid, sizeof nid, 0x02);
    cr_assert_eq(osub_node_died(s, nid), 2);
    cr_assert(was_released(&r, 0x21) && was_released(&r, 0x22));
    cr_assert_not(was_released(&r, 0x31), "an owner on another node keeps its pins");
    cr_assert_eq(osub_watched(s), 1);
    osub_destroy(s); /* drops the rest without callbacks */
    cr_assert_eq(r.n, 5);
#endif
}

#if !CRAYLET_RAY_OBJECT_EVICTION_CHANNEL
static void count_released(void *ctx, const uint8_t oid[ID_OBJECT_SIZE])
{
    (void)oid;
    (*(size_t *)ctx)++;
}

static void many_id(uint8_t *oid, uint32_t i)
{
    memset(oid, 0, ID_OBJECT_SIZE);
    memcpy(oid, &i, sizeof i);
}
#endif

/* Tens of thousands of live puts (a list of 10k refs, a burst of puts)
 * are watched and freed one by one, in any order. */
Test(owner_sub, many_objects_are_watched_and_freed_in_any_order)
{
#if CRAYLET_RAY_OBJECT_EVICTION_CHANNEL
    cr_skip_test("built for a Ray release that releases pins through the owner's eviction channel");
#else
    enum { N = 30000 };
    size_t released = 0;
    uint8_t me[ID_UNIQUE_SIZE], a[ID_UNIQUE_SIZE], b[ID_UNIQUE_SIZE], oid[ID_OBJECT_SIZE];
    memset(me, 0xee, sizeof me);
    memset(a, 0xa1, sizeof a);
    memset(b, 0xb2, sizeof b);
    osub_t *s = osub_create(NULL, NULL, me, "10.0.0.1", 1234, count_released, &released);
    for (uint32_t i = 0; i < N; i++) {
        Ray__Rpc__Address owner = RAY__RPC__ADDRESS__INIT;
        owner.worker_id.data = i % 2 ? b : a;
        owner.worker_id.len = ID_UNIQUE_SIZE;
        owner.ip_address = "10.0.0.2";
        owner.port = 40000;
        many_id(oid, i);
        cr_assert_eq(osub_watch(s, &owner, oid), 0);
    }
    cr_assert_eq(osub_watched(s), N);
    /* Every third one freed, last first. */
    size_t freed = 0;
    for (uint32_t i = N; i-- > 0;)
        if (i % 3 == 0) {
            many_id(oid, i);
            cr_assert(osub_free(s, oid));
            freed++;
        }
    cr_assert_eq(released, freed);
    cr_assert_eq(osub_watched(s), N - freed);
    /* Owner a (the even ids) dies: what it still had goes. */
    size_t a_left = 0;
    for (uint32_t i = 0; i < N; i++)
        a_left += i % 2 == 0 && i % 3 != 0;
    cr_assert_eq(osub_owner_died(s, a), a_left);
    cr_assert_eq(released, freed + a_left);
    cr_assert_eq(osub_watched(s), N - freed - a_left);
    many_id(oid, 1);
    cr_assert(osub_free(s, oid), "owner b's objects are still pinned");
    osub_destroy(s);
#endif
}
