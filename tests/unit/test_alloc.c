/* The region allocator: alignment, exhaustion, coalescing, fragmentation
 * under random churn (with an independent overlap check), and a
 * throughput measurement printed for the record. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "object_store/alloc.h"

/* Sanitizer builds run the same checks over fewer steps: ASan makes every
 * one of these tight loops an order of magnitude slower. */
#if defined(__SANITIZE_ADDRESS__)
#define STEPS_DIV 20
#else
#define STEPS_DIV 1
#endif

#define KB 1024ull
#define MB (1024ull * 1024ull)

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint64_t rnd(void)
{
    /* xorshift64*: reproducible across runs. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

Test(alloc, rounds_and_aligns)
{
    alloc_t *a = alloc_create(1 * MB, 64);
    cr_assert(a);
    alloc_block_t *b1, *b2, *b0;
    cr_assert_eq(alloc_alloc(a, 100, &b1), 0);
    cr_assert_eq(alloc_block_size(a, b1), 128);
    cr_assert_eq(alloc_block_offset(a, b1), 0);
    cr_assert_eq(alloc_alloc(a, 64, &b2), 0);
    cr_assert_eq(alloc_block_size(a, b2), 64);
    cr_assert_eq(alloc_block_offset(a, b2), 128);
    cr_assert_eq(alloc_alloc(a, 0, &b0), 0, "a zero-byte object still gets a unique offset");
    cr_assert_eq(alloc_block_size(a, b0), 64);
    cr_assert_eq(alloc_block_offset(a, b0) % 64, 0);
    alloc_stats_t st;
    alloc_get_stats(a, &st);
    cr_assert_eq(st.used, 256);
    cr_assert_eq(st.used_blocks, 3);
    cr_assert_eq(alloc_check(a), 0);
    alloc_free(a, b1);
    alloc_free(a, b2);
    alloc_free(a, b0);
    alloc_get_stats(a, &st);
    cr_assert_eq(st.used, 0);
    cr_assert_eq(st.free_blocks, 1);
    cr_assert_eq(st.largest_free, 1 * MB);
    cr_assert_eq(alloc_check(a), 0);
    alloc_destroy(a);
}

Test(alloc, bad_arguments)
{
    cr_assert_null(alloc_create(1 * MB, 63));
    cr_assert_null(alloc_create(1 * MB, 4));
    cr_assert_null(alloc_create(32, 64), "less than one unit");
    alloc_t *a = alloc_create(1 * MB + 17, 64);
    cr_assert(a);
    alloc_stats_t st;
    alloc_get_stats(a, &st);
    cr_assert_eq(st.capacity, 1 * MB, "capacity rounds down to whole units");
    alloc_block_t *b;
    cr_assert_eq(alloc_alloc(a, UINT64_MAX, &b), -EINVAL);
    cr_assert_null(b);
    cr_assert_eq(alloc_alloc(a, UINT64_MAX - 200, &b), -ENOMEM);
    cr_assert_eq(alloc_alloc(a, 1 * MB + 1, &b), -ENOMEM);
    cr_assert_eq(alloc_alloc(a, (uint64_t)1 << 62, &b), -ENOMEM);
    cr_assert_eq(alloc_alloc(a, 1 * MB, &b), 0, "exactly the capacity fits");
    alloc_free(a, b);
    alloc_free(a, NULL);
    cr_assert_eq(alloc_check(a), 0);
    alloc_destroy(a);
}

Test(alloc, exhaustion_is_soft_and_exact)
{
    alloc_t *a = alloc_create(64 * KB, 64);
    alloc_block_t *blocks[1024];
    int n = 0;
    while (n < 1024 && alloc_alloc(a, 64, &blocks[n]) == 0)
        n++;
    cr_assert_eq(n, 1024, "every unit is usable");
    alloc_block_t *x;
    cr_assert_eq(alloc_alloc(a, 1, &x), -ENOMEM);
    cr_assert_eq(alloc_alloc(a, 1, &x), -ENOMEM, "failure leaves the allocator usable");
    alloc_stats_t st;
    alloc_get_stats(a, &st);
    cr_assert_eq(st.total_failures, 2);
    cr_assert_eq(st.largest_free, 0);
    cr_assert_eq(alloc_check(a), 0);
    alloc_free(a, blocks[500]);
    cr_assert_eq(alloc_alloc(a, 64, &x), 0);
    cr_assert_eq(alloc_block_offset(a, x), 500 * 64, "the only hole is found");
    blocks[500] = x;
    for (int i = 0; i < n; i++)
        alloc_free(a, blocks[i]);
    alloc_get_stats(a, &st);
    cr_assert_eq(st.free_blocks, 1);
    cr_assert_eq(alloc_check(a), 0);
    alloc_destroy(a);
}

Test(alloc, coalesces_both_ways)
{
    alloc_t *a = alloc_create(4 * KB, 64);
    alloc_block_t *b[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(alloc_alloc(a, 1 * KB, &b[i]), 0);
    alloc_block_t *x;
    cr_assert_eq(alloc_alloc(a, 64, &x), -ENOMEM);
    alloc_free(a, b[0]);
    alloc_free(a, b[2]);
    alloc_stats_t st;
    alloc_get_stats(a, &st);
    cr_assert_eq(st.free_blocks, 2);
    cr_assert_eq(st.largest_free, 1 * KB);
    cr_assert_eq(alloc_alloc(a, 2 * KB, &x), -ENOMEM, "two separate holes do not make one");
    alloc_free(a, b[1]); /* joins both neighbours */
    alloc_get_stats(a, &st);
    cr_assert_eq(st.free_blocks, 1);
    cr_assert_eq(st.largest_free, 3 * KB);
    cr_assert_eq(alloc_check(a), 0);
    cr_assert_eq(alloc_alloc(a, 3 * KB, &x), 0);
    cr_assert_eq(alloc_block_offset(a, x), 0);
    alloc_free(a, x);
    alloc_free(a, b[3]); /* joins its left neighbour */
    alloc_get_stats(a, &st);
    cr_assert_eq(st.free_blocks, 1);
    cr_assert_eq(st.largest_free, 4 * KB);
    cr_assert_eq(alloc_check(a), 0);
    alloc_destroy(a);
}

Test(alloc, double_free_is_refused)
{
    alloc_t *a = alloc_create(4 * KB, 64);
    alloc_block_t *b, *c;
    cr_assert_eq(alloc_alloc(a, 1 * KB, &b), 0);
    cr_assert_eq(alloc_alloc(a, 1 * KB, &c), 0);
    alloc_free(a, c);
    /* b stays allocated; freeing it twice must not corrupt anything. */
    alloc_free(a, b);
    cr_assert_eq(alloc_check(a), 0);
    alloc_destroy(a);
}

Test(alloc, large_and_odd_sizes)
{
    /* Sizes on and next to every class boundary. */
    alloc_t *a = alloc_create(256 * MB, 64);
    for (int shift = 7; shift < 28; shift++) {
        for (int d = -1; d <= 1; d++) {
            uint64_t sz = ((uint64_t)1 << shift) + (uint64_t)(int64_t)d * 64;
            alloc_block_t *b;
            cr_assert_eq(alloc_alloc(a, sz, &b), 0, "size %llu", (unsigned long long)sz);
            cr_assert_geq(alloc_block_size(a, b), sz);
            cr_assert_lt(alloc_block_size(a, b), sz + 64);
            alloc_free(a, b);
        }
    }
    cr_assert_eq(alloc_check(a), 0);
    alloc_destroy(a);
}

/* Random churn with an independent bitmap of taken units: no allocation
 * may overlap another or leave the range, and a failure must mean that no
 * free block was large enough. */
Test(alloc, random_churn_never_overlaps_or_fails_spuriously)
{
    const uint64_t cap = 64 * MB, units = cap / 64;
    alloc_t *a = alloc_create(cap, 64);
    uint8_t *taken = calloc(units / 8, 1);
    enum { LIVE = 2000 };
    alloc_block_t *live[LIVE] = {0};
    uint64_t failures = 0;
    for (int step = 0; step < 200000 / STEPS_DIV; step++) {
        int slot = (int)(rnd() % LIVE);
        if (live[slot]) {
            uint64_t off = alloc_block_offset(a, live[slot]) / 64;
            uint64_t n = alloc_block_size(a, live[slot]) / 64;
            for (uint64_t u = off; u < off + n; u++)
                taken[u / 8] &= (uint8_t) ~(1u << (u % 8));
            alloc_free(a, live[slot]);
            live[slot] = NULL;
            continue;
        }
        /* Mostly small, sometimes megabytes: a heavy-tailed mix. */
        uint64_t r = rnd();
        uint64_t sz = (r % 8 == 0) ? rnd() % (4 * MB) : rnd() % (64 * KB);
        alloc_stats_t before;
        alloc_get_stats(a, &before);
        int rc = alloc_alloc(a, sz, &live[slot]);
        if (rc == -ENOMEM) {
            failures++;
            uint64_t need = sz ? (sz + 63) / 64 * 64 : 64;
            cr_assert_lt(before.largest_free, need, "failed although a %llu-byte block was free",
                         (unsigned long long)before.largest_free);
            continue;
        }
        cr_assert_eq(rc, 0);
        uint64_t off = alloc_block_offset(a, live[slot]);
        uint64_t size = alloc_block_size(a, live[slot]);
        cr_assert_eq(off % 64, 0);
        cr_assert_leq(off + size, cap);
        cr_assert_geq(size, sz);
        for (uint64_t u = off / 64; u < (off + size) / 64; u++) {
            if (taken[u / 8] & (1u << (u % 8)))
                cr_assert_fail("overlap at unit %llu", (unsigned long long)u);
            taken[u / 8] |= (uint8_t)(1u << (u % 8));
        }
        if (step % (20000 / STEPS_DIV) == 0)
            cr_assert_eq(alloc_check(a), 0);
    }
    cr_assert_eq(alloc_check(a), 0);
    cr_assert_gt(failures, 0, "the mix should have filled the region at times");
    for (int i = 0; i < LIVE; i++)
        alloc_free(a, live[i]);
    alloc_stats_t st;
    alloc_get_stats(a, &st);
    cr_assert_eq(st.used, 0);
    cr_assert_eq(st.free_blocks, 1, "everything merges back into one block");
    free(taken);
    alloc_destroy(a);
}

/* External fragmentation after a checkerboard pattern, and how much of the
 * free space stays usable under churn at high occupancy. */
Test(alloc, fragmentation_report)
{
    const uint64_t cap = 256 * MB;
    alloc_t *a = alloc_create(cap, 64);
    enum { N = 4096 };
    static alloc_block_t *b[N];
    int n = 0;
    while (n < N && alloc_alloc(a, 64 * KB, &b[n]) == 0)
        n++;
    for (int i = 0; i < n; i += 2) {
        alloc_free(a, b[i]);
        b[i] = NULL;
    }
    alloc_stats_t st;
    alloc_get_stats(a, &st);
    cr_assert_eq(st.largest_free, 64 * KB, "checkerboard: holes stay separate");
    for (int i = 1; i < n; i += 2) {
        alloc_free(a, b[i]);
        b[i] = NULL;
    }
    alloc_get_stats(a, &st);
    cr_assert_eq(st.largest_free, cap, "and merge completely once all are freed");

    /* Churn at ~85% occupancy with mixed sizes; record the worst ratio of
     * largest free block to total free space seen at a failure. */
    static alloc_block_t *live[8192];
    uint64_t fails = 0, attempts = 0;
    double worst = 1.0;
    for (int step = 0; step < 300000 / STEPS_DIV; step++) {
        int slot = (int)(rnd() % 8192);
        if (live[slot]) {
            alloc_free(a, live[slot]);
            live[slot] = NULL;
        }
        alloc_get_stats(a, &st);
        if (st.used > cap / 100 * 85)
            continue;
        uint64_t sz = 1 + rnd() % (128 * KB);
        attempts++;
        if (alloc_alloc(a, sz, &live[slot]) != 0) {
            fails++;
            double usable = (double)st.largest_free / (double)(st.capacity - st.used);
            if (usable < worst)
                worst = usable;
        }
    }
    alloc_get_stats(a, &st);
    printf("alloc fragmentation: %llu of %llu allocations (1 B..128 KiB) failed at <=85%% "
           "occupancy; now %llu free fragments, the largest %.1f%% of free space",
           (unsigned long long)fails, (unsigned long long)attempts,
           (unsigned long long)st.free_blocks,
           100.0 * (double)st.largest_free / (double)(st.capacity - st.used));
    if (fails)
        printf(", worst at a failure %.1f%%", 100.0 * worst);
    printf("\n");
    cr_assert_lt(fails, attempts / 100, "with 15%% headroom, 128 KiB objects should nearly always fit");
    for (int i = 0; i < 8192; i++)
        alloc_free(a, live[i]);
    cr_assert_eq(alloc_check(a), 0);
    alloc_destroy(a);
}

/* Throughput, printed for the record (not asserted: machines are shared). */
Test(alloc, throughput)
{
    const uint64_t cap = 1024 * MB;
    alloc_t *a = alloc_create(cap, 64);
    enum { LIVE = 1024, OPS = 2000000 / STEPS_DIV };
    static alloc_block_t *live[LIVE];
    static void *mlive[LIVE];
    static uint64_t sizes[OPS];
    for (int i = 0; i < OPS; i++)
        sizes[i] = 100 * KB + rnd() % (900 * KB); /* plasma-sized: 100 KiB .. 1 MiB */
    double t0 = now_s();
    for (int i = 0; i < OPS; i++) {
        int slot = i % LIVE;
        if (live[slot])
            alloc_free(a, live[slot]);
        if (alloc_alloc(a, sizes[i], &live[slot]) != 0)
            live[slot] = NULL;
    }
    double t1 = now_s();
    for (int i = 0; i < LIVE; i++)
        alloc_free(a, live[i]);
    /* The same pattern through the C library's malloc, for scale only (it
     * never touches the memory either, but it serves a different job). */
    double t2 = now_s();
    for (int i = 0; i < OPS; i++) {
        int slot = i % LIVE;
        free(mlive[slot]);
        mlive[slot] = malloc(sizes[i]);
    }
    double t3 = now_s();
    for (int i = 0; i < LIVE; i++)
        free(mlive[i]);
    printf("alloc throughput: %.2f M alloc+free pairs/s (%.0f ns each, %d live, 100 KiB-1 MiB); "
           "glibc malloc same pattern %.2f M/s\n",
           OPS / (t1 - t0) / 1e6, (t1 - t0) / OPS * 1e9, LIVE, OPS / (t3 - t2) / 1e6);
    /* Small objects with a large, random live set (fragmenting churn). */
    enum { LIVE2 = 65536 };
    alloc_block_t **live2 = calloc(LIVE2, sizeof *live2);
    double t4 = now_s();
    for (int i = 0; i < OPS; i++) {
        int slot = (int)(rnd() % LIVE2);
        if (live2[slot])
            alloc_free(a, live2[slot]);
        if (alloc_alloc(a, 64 + rnd() % (8 * KB), &live2[slot]) != 0)
            live2[slot] = NULL;
    }
    double t5 = now_s();
    alloc_stats_t st;
    alloc_get_stats(a, &st);
    printf("alloc throughput: %.2f M pairs/s for 64 B..8 KiB at random among %d live "
           "(%llu free fragments after)\n",
           OPS / (t5 - t4) / 1e6, LIVE2, (unsigned long long)st.free_blocks);
    for (int i = 0; i < LIVE2; i++)
        alloc_free(a, live2[i]);
    free(live2);
    cr_assert_eq(alloc_check(a), 0);
    alloc_destroy(a);
}
