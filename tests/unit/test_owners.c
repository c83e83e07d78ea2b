/* Asking owners where objects are (raylet/objects/owners.c) without a live
 * owner: subscriptions are kept per object, and when the owner cannot be
 * reached (a closed port fails the command batch) every object still
 * subscribed goes back to the puller exactly once, so that it asks again
 * or gives up.  Live owners are covered by the integration tests. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <grpc/grpc.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cq_bridge.h"
#include "common/error.h"
#include "common/loop.h"
#include "raylet/objects/owners.h"

enum { OBJECTS = 5000, FORGOTTEN_EVERY = 5 };

typedef struct fixture {
    loop_t *loop;
    cq_bridge_t *bridge;
    owners_t *owners;
    unsigned char failed[OBJECTS]; /* locate_failed calls per object */
    size_t failures, located, want;
    bool owner_gone_seen;
} fixture_t;

static uint32_t object_index(const id_object_t *oid)
{
    uint32_t i;
    memcpy(&i, oid->b, sizeof i);
    return i;
}

static void object_id(id_object_t *oid, uint32_t i)
{
    memset(oid, 0, sizeof *oid);
    memcpy(oid->b, &i, sizeof i);
    oid->b[ID_OBJECT_SIZE - 1] = 0x5a;
}

static void on_located(void *ctx, const id_object_t *oid, const pull_locations_t *loc)
{
    (void)oid;
    (void)loc;
    ((fixture_t *)ctx)->located++;
}

static void on_locate_failed(void *ctx, const id_object_t *oid, bool owner_gone)
{
    fixture_t *f = ctx;
    uint32_t i = object_index(oid);
    cr_assert_lt(i, OBJECTS);
    f->failed[i]++;
    f->owner_gone_seen |= owner_gone;
    if (++f->failures >= f->want)
        loop_stop(f->loop);
}

static void on_deadline(loop_t *loop, uint64_t id, void *data)
{
    (void)id;
    (void)data;
    loop_stop(loop);
}

static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd); /* nothing listens there now: connections are refused */
    return ntohs(a.sin_port);
}

/* A loop, a bridge and the owners module, and an owner at a closed port. */
static void setup(fixture_t *f, ray_addr_t *owner, uint8_t worker_byte)
{
    memset(f, 0, sizeof *f);
    grpc_init();
    f->loop = loop_create();
    f->bridge = cq_bridge_create(f->loop);
    id_node_t self;
    memset(&self, 0x11, sizeof self);
    owners_callbacks_t cbs = {.located = on_located, .locate_failed = on_locate_failed};
    f->owners = owners_create(f->bridge, &self, &cbs, f);
    *owner = (ray_addr_t){.port = closed_port()};
    memset(&owner->worker_id, worker_byte, sizeof owner->worker_id);
    strcpy(owner->ip, "127.0.0.1");
}

static void teardown(fixture_t *f)
{
    owners_destroy(f->owners);
    cq_bridge_destroy(f->bridge);
    loop_destroy(f->loop);
    grpc_shutdown();
}

Test(owners, an_unreachable_owner_hands_back_each_subscribed_object_once)
{
    static fixture_t f;
    ray_addr_t owner;
    setup(&f, &owner, 0xa1);
    ray_addr_t unreachable = owner;
    unreachable.port = 0;

    id_object_t oid;
    object_id(&oid, 0);
    cr_assert_eq(owners_locate(f.owners, &unreachable, &oid), CR_EBADMSG, "no port: refused before any call");
    for (uint32_t i = 0; i < OBJECTS; i++) {
        object_id(&oid, i);
        cr_assert_eq(owners_locate(f.owners, &owner, &oid), 0);
    }
    /* Subscribing again to the same objects opens nothing new (a second
     * ask would be a direct lookup; not made here). */
    owners_stats_t st;
    owners_get_stats(f.owners, &st);
    cr_assert_eq(st.subscribed, OBJECTS);
    cr_assert_eq(st.subscribes, OBJECTS);
    /* Some are no longer wanted before the owner answers. */
    size_t forgotten = 0;
    for (uint32_t i = 0; i < OBJECTS; i += FORGOTTEN_EVERY) {
        object_id(&oid, i);
        owners_forget(f.owners, &owner, &oid);
        forgotten++;
    }
    owners_get_stats(f.owners, &st);
    cr_assert_eq(st.subscribed, OBJECTS - forgotten);

    f.want = OBJECTS - forgotten;
    uint64_t guard = loop_add_timer(f.loop, 20000, on_deadline, NULL);
    loop_run(f.loop);
    loop_cancel_timer(f.loop, guard);

    cr_assert_eq(f.failures, OBJECTS - forgotten, "%zu of %zu handed back", f.failures, OBJECTS - forgotten);
    cr_assert_eq(f.located, 0);
    cr_assert_not(f.owner_gone_seen, "a refused connection is not proof the owner died");
    for (uint32_t i = 0; i < OBJECTS; i++)
        cr_assert_eq(f.failed[i], i % FORGOTTEN_EVERY == 0 ? 0 : 1, "object %u handed back %d times", i,
                     f.failed[i]);
    owners_get_stats(f.owners, &st);
    cr_assert_eq(st.subscribed, 0);

    /* The owner's worker dies: nothing is left to hand back. */
    owners_worker_died(f.owners, &owner.worker_id);
    cr_assert_eq(f.failures, OBJECTS - forgotten);

    teardown(&f);
}

Test(owners, a_dead_owners_subscriptions_go_back_marked_gone)
{
    static fixture_t f;
    ray_addr_t owner;
    setup(&f, &owner, 0xb2);
    id_object_t oid;
    for (uint32_t i = 0; i < 100; i++) {
        object_id(&oid, i);
        cr_assert_eq(owners_locate(f.owners, &owner, &oid), 0);
    }
    /* Before any answer: GCS says the worker died. */
    owners_worker_died(f.owners, &owner.worker_id);
    cr_assert_eq(f.failures, 100);
    cr_assert(f.owner_gone_seen);
    for (uint32_t i = 0; i < 100; i++)
        cr_assert_eq(f.failed[i], 1);
    owners_stats_t st;
    owners_get_stats(f.owners, &st);
    cr_assert_eq(st.subscribed, 0);
    teardown(&f);
}
