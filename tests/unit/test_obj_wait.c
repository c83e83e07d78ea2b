#include <criterion/criterion.h>
#include <stdlib.h>
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

/* Two clients wait on overlapping ids; the first one's callback cancels the
 * second client's waits (its connection closed meanwhile), so the second
 * must not be called even though the same seal completed it. */
typedef struct canceller {
    owait_t *ow;
    void *victim_ctx;
    int calls;
} canceller_t;

static void on_done_cancel_other(void *ctx, const uint8_t (*ids)[ID_OBJECT_SIZE], const bool *ready,
                                 size_t count, bool timed_out)
{
    canceller_t *c = ctx;
    c->calls++;
    owait_cancel_ctx(c->ow, c->victim_ctx);
}

Test(obj_wait, a_callback_may_cancel_waiters_the_same_seal_completed)
{
    loop_t *loop = loop_create();
    fake_t f = {0}, victim = {0};
    owait_t *ow = owait_create(loop, fake_contains, &f);
    canceller_t c = {.ow = ow, .victim_ctx = &victim};
    uint8_t ids[3][ID_OBJECT_SIZE];
    oid(ids[0], 'a');
    oid(ids[1], 'b');
    oid(ids[2], 'a'); /* listed twice */
    cr_assert_not_null(owait_start(ow, (const uint8_t(*)[ID_OBJECT_SIZE])ids, 3, 2, -1, on_done_cancel_other, &c));
    cr_assert_not_null(owait_start(ow, (const uint8_t(*)[ID_OBJECT_SIZE])ids, 2, 1, -1, on_done, &victim));
    cr_assert_not_null(owait_start(ow, (const uint8_t(*)[ID_OBJECT_SIZE])ids + 1, 1, 1, -1, on_done, &victim));
    cr_assert_eq(owait_count(ow), 3);
    /* 'a' completes the first (twice listed: two found) and the second. */
    owait_on_sealed(ow, ids[0]);
    cr_assert_eq(c.calls, 1);
    cr_assert_eq(victim.calls, 0, "cancelled by the first callback before its own turn");
    cr_assert_eq(owait_count(ow), 0);
    /* Nothing is left indexed: a later seal calls no one. */
    owait_on_sealed(ow, ids[1]);
    owait_on_sealed(ow, ids[0]);
    cr_assert_eq(c.calls, 1);
    cr_assert_eq(victim.calls, 0);
    owait_destroy(ow);
    loop_destroy(loop);
}

/* A wait on tens of thousands of ids, sealed one by one among unrelated
 * seals, ends exactly when the last one arrives. */
Test(obj_wait, a_wide_wait_completes_on_its_last_id)
{
    enum { N = 20000 };
    loop_t *loop = loop_create();
    fake_t f = {0};
    owait_t *ow = owait_create(loop, fake_contains, &f);
    uint8_t(*ids)[ID_OBJECT_SIZE] = calloc(N, ID_OBJECT_SIZE);
    for (uint32_t i = 0; i < N; i++)
        memcpy(ids[i], &i, sizeof i);
    cr_assert_not_null(owait_start(ow, (const uint8_t(*)[ID_OBJECT_SIZE])ids, N, N, -1, on_done, &f));
    uint8_t other[ID_OBJECT_SIZE];
    oid(other, 'z');
    for (uint32_t i = N; i-- > 0;) {
        owait_on_sealed(ow, other);
        owait_on_sealed(ow, ids[i]);
        cr_assert_eq(f.calls, i == 0 ? 1 : 0, "after %u seals", N - i);
    }
    cr_assert_eq(f.last_found, N);
    cr_assert_not(f.last_timed_out);
    cr_assert_eq(owait_count(ow), 0);
    free(ids);
    owait_destroy(ow);
    loop_destroy(loop);
}
