#include <criterion/criterion.h>
#include <string.h>

#include "common/loop.h"
#include "raylet/objects/obj_wait.h"

typedef struct fake {
    uint8_t present[8][ID_OBJECT_SIZE];
    size_t n;
    int calls;
    size_t last_found;
    bool last_timed_out;
} fake_t;

static bool fake_contains(void *ctx, const uint8_t oid[ID_OBJECT_SIZE])
{
    fake_t *f = ctx;
    for (size_t i = 0; i < f->n; i++)
        if (memcmp(f->present[i], oid, ID_OBJECT_SIZE) == 0)
            return true;
    return false;
}

static void on_done(void *ctx, const uint8_t (*ids)[ID_OBJECT_SIZE], const bool *ready, size_t count, bool timed_out)
{
    fake_t *f = ctx;
    f->calls++;
    f->last_found = 0;
    for (size_t i = 0; i < count; i++)
        f->last_found += ready[i];
    f->last_timed_out = timed_out;
}

static void oid(uint8_t out[ID_OBJECT_SIZE], char c) { memset(out, c, ID_OBJECT_SIZE); }

Test(obj_wait, already_present_answers_at_once)
{
    loop_t *loop = loop_create();
    fake_t f = {0};
    oid(f.present[f.n++], 'a');
    owait_t *ow = owait_create(loop, fake_contains, &f);
    uint8_t ids[2][ID_OBJECT_SIZE];
    oid(ids[0], 'a');
    oid(ids[1], 'b');
    cr_assert_null(owait_start(ow, (const uint8_t(*)[ID_OBJECT_SIZE])ids, 2, 1, -1, on_done, &f));
    cr_assert_eq(f.calls, 1);
    cr_assert_eq(f.last_found, 1);
    cr_assert_not(f.last_timed_out);
    owait_destroy(ow);
    loop_destroy(loop);
}

Test(obj_wait, seal_completes_the_wait)
{
    loop_t *loop = loop_create();
    fake_t f = {0};
    owait_t *ow = owait_create(loop, fake_contains, &f);
    uint8_t ids[2][ID_OBJECT_SIZE];
    oid(ids[0], 'a');
    oid(ids[1], 'b');
    cr_assert_not_null(owait_start(ow, (const uint8_t(*)[ID_OBJECT_SIZE])ids, 2, 2, -1, on_done, &f));
    owait_on_sealed(ow, ids[0]);
    cr_assert_eq(f.calls, 0, "one of two is not enough");
    uint8_t other[ID_OBJECT_SIZE];
    oid(other, 'z');
    owait_on_sealed(ow, other);
    cr_assert_eq(f.calls, 0);
    owait_on_sealed(ow, ids[1]);
    cr_assert_eq(f.calls, 1);
    cr_assert_eq(f.last_found, 2);
    cr_assert_eq(owait_count(ow), 0);
    owait_destroy(ow);
    loop_destroy(loop);
}

static void stop_loop(loop_t *loop, uint64_t id, void *data) { loop_stop(loop); }

Test(obj_wait, timeout_reports_partial_results)
{
    loop_t *loop = loop_create();
    fake_t f = {0};
    owait_t *ow = owait_create(loop, fake_contains, &f);
    uint8_t ids[1][ID_OBJECT_SIZE];
    oid(ids[0], 'q');
    owait_start(ow, (const uint8_t(*)[ID_OBJECT_SIZE])ids, 1, 1, 20, on_done, &f);
    loop_add_timer(loop, 200, stop_loop, NULL);
    loop_run(loop);
    cr_assert_eq(f.calls, 1);
    cr_assert(f.last_timed_out);
    cr_assert_eq(f.last_found, 0);
    owait_destroy(ow);
    loop_destroy(loop);
}

Test(obj_wait, zero_timeout_polls_and_cancel_is_silent)
{
    loop_t *loop = loop_create();
    fake_t f = {0};
    owait_t *ow = owait_create(loop, fake_contains, &f);
    uint8_t ids[1][ID_OBJECT_SIZE];
    oid(ids[0], 'q');
    cr_assert_null(owait_start(ow, (const uint8_t(*)[ID_OBJECT_SIZE])ids, 1, 1, 0, on_done, &f));
    cr_assert_eq(f.calls, 1);
    owait_req_t *r = owait_start(ow, (const uint8_t(*)[ID_OBJECT_SIZE])ids, 1, 1, -1, on_done, &f);
    owait_cancel(ow, r);
    owait_on_sealed(ow, ids[0]);
    cr_assert_eq(f.calls, 1);
    owait_start(ow, (const uint8_t(*)[ID_OBJECT_SIZE])ids, 1, 1, -1, on_done, &f);
    owait_cancel_ctx(ow, &f);
    cr_assert_eq(owait_count(ow), 0);
    owait_destroy(ow);
    loop_destroy(loop);
}

/* ray.wait(num_returns=k) must never see more than k ready: the core worker
 * aborts if the raylet reports more.  The first k in request order win. */
static bool first_ready[3];
static void on_done_record(void *ctx, const uint8_t (*ids)[ID_OBJECT_SIZE], const bool *ready, size_t count,
                           bool timed_out)
{
    on_done(ctx, ids, ready, count, timed_out);
    for (size_t i = 0; i < count && i < 3; i++)
        first_ready[i] = ready[i];
}

Test(obj_wait, never_reports_more_than_required)
{
    loop_t *loop = loop_create();
    fake_t f = {0};
    oid(f.present[f.n++], 'a');
    oid(f.present[f.n++], 'b');
    oid(f.present[f.n++], 'c');
    owait_t *ow = owait_create(loop, fake_contains, &f);
    uint8_t ids[3][ID_OBJECT_SIZE];
    oid(ids[0], 'c');
    oid(ids[1], 'x');
    oid(ids[2], 'a');
    cr_assert_null(owait_start(ow, (const uint8_t(*)[ID_OBJECT_SIZE])ids, 3, 1, 1000, on_done_record, &f));
    cr_assert_eq(f.calls, 1);
    cr_assert_eq(f.last_found, 1);
    cr_assert(first_ready[0] && !first_ready[1] && !first_ready[2]);
    owait_destroy(ow);
    loop_destroy(loop);
}
