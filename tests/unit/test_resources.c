/* Unit tests for the node resource model (raylet/resources.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "raylet/sched/resources.h"

#define U(x) ((res_amount_t)((x) * RES_UNIT)) /* whole or simple fractional amounts */

static res_amount_t amt(double d)
{
    res_amount_t a = -1;
    cr_assert_eq(res_amount_from_double(d, &a), 0);
    return a;
}

static res_node_t *node_with(double cpu, double gpu)
{
    res_node_t *n = res_node_create(NULL);
    cr_assert_not_null(n);
    if (cpu > 0)
        cr_assert_eq(res_node_add_total(n, "CPU", amt(cpu)), 0);
    if (gpu > 0)
        cr_assert_eq(res_node_add_total(n, "GPU", amt(gpu)), 0);
    return n;
}

static res_set_t *request(const char *name, double v, const char *name2, double v2)
{
    res_set_t *s = res_set_create();
    if (name)
        cr_assert_eq(res_set_put(s, name, amt(v)), 0);
    if (name2)
        cr_assert_eq(res_set_put(s, name2, amt(v2)), 0);
    return s;
}

/* ---- fixed point ---------------------------------------------------------------- */

Test(resources, fixed_point_conversion)
{
    res_amount_t a;
    cr_assert_eq(res_amount_from_double(0.1, &a), 0);
    cr_assert_eq(a, 1000);
    cr_assert_eq(res_amount_from_double(0.00005, &a), 0);
    cr_assert_eq(a, 1); /* rounds to nearest */
    cr_assert_eq(res_amount_from_double(0.00004, &a), 0);
    cr_assert_eq(a, 0);
    cr_assert_eq(res_amount_from_double(1e12, &a), 0);
    cr_assert_eq(a, (res_amount_t)1e16);
    cr_assert_eq(res_amount_from_double(-1, &a), -EINVAL);
    cr_assert_eq(res_amount_from_double(NAN, &a), -EINVAL);
    cr_assert_eq(res_amount_from_double(INFINITY, &a), -EINVAL);
    cr_assert_eq(res_amount_from_double(4e14, &a), 0); /* 400 TB of memory, in bytes */
    cr_assert_eq(res_amount_from_double(5e14, &a), -ERANGE);
    cr_assert_float_eq(res_amount_to_double(2500), 0.25, 0);
}

/* ---- sets --------------------------------------------------------------------------- */

Test(resources, set_basics)
{
    res_set_t *s = res_set_create();
    cr_assert_eq(res_set_put(s, "b", 5), 0);
    cr_assert_eq(res_set_put(s, "a", 7), 0);
    cr_assert_eq(res_set_put(s, "c", 9), 0);
    cr_assert_eq(res_set_count(s), 3);
    cr_assert_str_eq(res_set_name_at(s, 0), "a"); /* sorted */
    cr_assert_str_eq(res_set_name_at(s, 2), "c");
    cr_assert_eq(res_set_get(s, "b"), 5);
    cr_assert_eq(res_set_put(s, "b", 6), 0);
    cr_assert_eq(res_set_get(s, "b"), 6);
    cr_assert_eq(res_set_put(s, "b", 0), 0); /* removes */
    cr_assert_eq(res_set_count(s), 2);
    cr_assert_eq(res_set_get(s, "b"), 0);
    cr_assert_eq(res_set_put(s, "zero", 0), 0);
    cr_assert_eq(res_set_count(s), 2);
    cr_assert_eq(res_set_put(s, "", 1), -EINVAL);
    cr_assert_eq(res_set_put(s, NULL, 1), -EINVAL);
    cr_assert_eq(res_set_put(s, "neg", -1), -EINVAL);
    cr_assert_eq(res_set_amount_at(s, 1), 9);
    res_set_destroy(s);
    res_set_destroy(NULL);
}

/* ---- node totals ---------------------------------------------------------------------- */

Test(resources, totals_and_iteration)
{
    res_node_t *n = res_node_create(NULL);
    cr_assert_eq(res_node_version(n), 0);
    cr_assert_eq(res_node_add_total(n, "memory", amt(1e9)), 0);
    cr_assert_eq(res_node_add_total(n, "CPU", amt(8)), 0);
    cr_assert_eq(res_node_add_total(n, "GPU", amt(4)), 0);
    cr_assert_eq(res_node_add_total(n, "node:127.0.0.1", amt(1)), 0);
    cr_assert_eq(res_node_add_total(n, "CPU", amt(2)), 0); /* grows */
    cr_assert_eq(res_node_add_total(n, "nothing", 0), 0);  /* no-op */
    cr_assert_eq(res_node_add_total(n, "", amt(1)), -EINVAL);
    cr_assert_eq(res_node_add_total(n, "x", -1), -EINVAL);
    cr_assert_eq(res_node_add_total(n, "memory", RES_AMOUNT_MAX), -ERANGE);
    cr_assert_eq(res_node_count(n), 4);
    cr_assert_eq(res_node_total(n, "CPU"), U(10));
    cr_assert_eq(res_node_available(n, "CPU"), U(10));
    cr_assert_eq(res_node_total(n, "nothing"), 0);
    cr_assert(res_node_is_unit_instance(n, "GPU"));
    cr_assert(res_node_is_unit_instance(n, "TPU")); /* by name, before it exists */
    cr_assert_not(res_node_is_unit_instance(n, "CPU"));

    const char *order[] = {"CPU", "GPU", "memory", "node:127.0.0.1"};
    for (size_t i = 0; i < res_node_count(n); i++) {
        res_entry_t e;
        res_node_entry_at(n, i, &e);
        cr_assert_str_eq(e.name, order[i]);
        cr_assert_eq(e.total, e.available);
        if (strcmp(e.name, "GPU") == 0) {
            cr_assert(e.unit_instance);
            cr_assert_eq(e.instance_count, 4);
            for (size_t k = 0; k < 4; k++) {
                cr_assert_eq(e.instance_total[k], RES_UNIT);
                cr_assert_eq(e.instance_available[k], RES_UNIT);
            }
        } else {
            cr_assert_not(e.unit_instance);
            cr_assert_eq(e.instance_count, 0);
        }
    }
    cr_assert_float_eq(res_amount_to_double(res_node_total(n, "memory")), 1e9, 0);
    cr_assert_eq(res_node_version(n), 5);
    res_node_destroy(n);
}

Test(resources, fractional_gpu_total_keeps_whole_instances)
{
    res_node_t *n = res_node_create(NULL);
    cr_assert_eq(res_node_add_total(n, "GPU", amt(2.5)), 0);
    cr_assert_eq(res_node_total(n, "GPU"), U(2));
    res_entry_t e;
    res_node_entry_at(n, 0, &e);
    cr_assert_eq(e.instance_count, 2);
    cr_assert_eq(res_node_add_total(n, "NPU", amt(0.5)), 0);
    cr_assert_eq(res_node_count(n), 1);
    res_node_destroy(n);
}

Test(resources, custom_unit_instance_list)
{
    res_node_t *n = res_node_create("GPU,FPGA");
    cr_assert(res_node_is_unit_instance(n, "FPGA"));
    cr_assert_not(res_node_is_unit_instance(n, "TPU"));
    res_node_destroy(n);
    n = res_node_create("");
    cr_assert_not(res_node_is_unit_instance(n, "GPU"));
    res_node_destroy(n);
    cr_assert_null(res_node_create("GPU,,TPU"));
    cr_assert_null(res_node_create(","));
}

/* ---- allocation -------------------------------------------------------------------------- */

Test(resources, fractional_cpu)
{
    res_node_t *n = node_with(1, 0);
    res_set_t *tenth = request("CPU", 0.1, NULL, 0);
    res_alloc_t *held[10];
    for (int i = 0; i < 10; i++)
        cr_assert_eq(res_allocate(n, tenth, &held[i]), 0, "allocation %d", i);
    /* Exactly used up: fixed point has no drift. */
    cr_assert_eq(res_node_available(n, "CPU"), 0);
    res_alloc_t *more;
    cr_assert_eq(res_allocate(n, tenth, &more), -EAGAIN);
    cr_assert_null(more);
    for (int i = 0; i < 10; i++)
        res_free(n, held[i]);
    cr_assert_eq(res_node_available(n, "CPU"), RES_UNIT);

    res_grant_t g;
    res_alloc_t *a;
    res_set_t *big = request("CPU", 0.75, NULL, 0);
    cr_assert_eq(res_allocate(n, big, &a), 0);
    cr_assert(res_alloc_find(a, "CPU", &g));
    cr_assert_eq(g.amount, 7500);
    cr_assert_eq(g.instance_count, 0);
    cr_assert_eq(res_node_available(n, "CPU"), 2500);
    res_free(n, a);
    res_set_destroy(big);
    res_set_destroy(tenth);
    res_node_destroy(n);
}

static void expect_ids(const res_alloc_t *a, const char *name, const uint32_t *ids, size_t n)
{
    res_grant_t g;
    cr_assert(res_alloc_find(a, name, &g), "no grant for %s", name);
    cr_assert_eq(g.instance_count, n, "%s: %zu instances", name, g.instance_count);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(g.instance_ids[i], ids[i], "%s: instance %zu is %u", name, i, g.instance_ids[i]);
}

Test(resources, gpu_instances_distinct_lowest_first)
{
    res_node_t *n = node_with(8, 4);
    res_set_t *two = request("GPU", 2, NULL, 0);
    res_set_t *one = request("GPU", 1, NULL, 0);
    res_alloc_t *a, *b, *c;
    cr_assert_eq(res_allocate(n, two, &a), 0);
    expect_ids(a, "GPU", (uint32_t[]){0, 1}, 2);
    cr_assert_eq(res_allocate(n, one, &b), 0);
    expect_ids(b, "GPU", (uint32_t[]){2}, 1);
    res_grant_t g;
    res_alloc_find(b, "GPU", &g);
    cr_assert_eq(g.instance_amounts[0], RES_UNIT);
    cr_assert_eq(res_allocate(n, two, &c), -EAGAIN); /* only one left */
    cr_assert_eq(res_node_available(n, "GPU"), U(1));

    /* Freeing the first pair makes 0 and 1 the lowest free again. */
    res_free(n, a);
    cr_assert_eq(res_allocate(n, two, &c), 0);
    expect_ids(c, "GPU", (uint32_t[]){0, 1}, 2);
    res_free(n, b);
    res_free(n, c);
    cr_assert_eq(res_node_available(n, "GPU"), U(4));
    res_set_destroy(two);
    res_set_destroy(one);
    res_node_destroy(n);
}

Test(resources, fractional_gpu_shares_one_instance)
{
    res_node_t *n = node_with(0, 2);
    res_set_t *half = request("GPU", 0.5, NULL, 0);
    res_set_t *quarter = request("GPU", 0.25, NULL, 0);
    res_set_t *whole = request("GPU", 1, NULL, 0);
    res_alloc_t *h1, *h2, *q, *w, *fail;
    cr_assert_eq(res_allocate(n, half, &h1), 0);
    expect_ids(h1, "GPU", (uint32_t[]){0}, 1);
    /* Best fit: the half-used instance 0 before breaking into 1. */
    cr_assert_eq(res_allocate(n, quarter, &q), 0);
    expect_ids(q, "GPU", (uint32_t[]){0}, 1);
    res_grant_t g;
    res_alloc_find(q, "GPU", &g);
    cr_assert_eq(g.instance_amounts[0], 2500);
    /* Instance 0 has 0.25 left: the next half goes to instance 1. */
    cr_assert_eq(res_allocate(n, half, &h2), 0);
    expect_ids(h2, "GPU", (uint32_t[]){1}, 1);
    /* No instance is whole now. */
    cr_assert_eq(res_allocate(n, whole, &fail), -EAGAIN);
    cr_assert_eq(res_node_available(n, "GPU"), U(0.75));
    res_entry_t e;
    res_node_entry_at(n, 0, &e);
    cr_assert_eq(e.instance_available[0], 2500);
    cr_assert_eq(e.instance_available[1], 5000);

    res_free(n, h2);
    cr_assert_eq(res_allocate(n, whole, &w), 0);
    expect_ids(w, "GPU", (uint32_t[]){1}, 1);
    res_free(n, w);
    res_free(n, h1);
    res_free(n, q);
    cr_assert_eq(res_node_available(n, "GPU"), U(2));
    res_set_destroy(half);
    res_set_destroy(quarter);
    res_set_destroy(whole);
    res_node_destroy(n);
}

Test(resources, all_or_nothing_failure_leaves_state_unchanged)
{
    res_node_t *n = node_with(4, 2);
    cr_assert_eq(res_node_add_total(n, "memory", amt(1000)), 0);
    res_set_t *first = request("GPU", 1, "CPU", 1);
    res_alloc_t *a, *b;
    cr_assert_eq(res_allocate(n, first, &a), 0);
    uint64_t v = res_node_version(n);

    /* CPU and memory would fit; GPU (2 whole) would not now. */
    res_set_t *req = request("CPU", 3, "GPU", 2);
    res_set_put(req, "memory", amt(500));
    cr_assert_eq(res_check(n, req), -EAGAIN);
    cr_assert_eq(res_allocate(n, req, &b), -EAGAIN);
    cr_assert_null(b);
    cr_assert_eq(res_node_available(n, "CPU"), U(3));
    cr_assert_eq(res_node_available(n, "GPU"), U(1));
    cr_assert_eq(res_node_available(n, "memory"), U(1000));
    cr_assert_eq(res_node_version(n), v);
    res_entry_t e;
    res_node_entry_at(n, 1, &e);
    cr_assert_str_eq(e.name, "GPU");
    cr_assert_eq(e.instance_available[0], 0);
    cr_assert_eq(e.instance_available[1], RES_UNIT);

    /* Unknown resource: infeasible, and still nothing taken. */
    res_set_t *unknown = request("CPU", 1, "TPU", 1);
    cr_assert_eq(res_allocate(n, unknown, &b), -ENOSPC);
    cr_assert_eq(res_node_available(n, "CPU"), U(3));

    /* More than the total: infeasible rather than busy. */
    res_set_t *huge = request("CPU", 5, NULL, 0);
    cr_assert_eq(res_check(n, huge), -ENOSPC);
    res_set_t *gpus = request("GPU", 3, NULL, 0);
    cr_assert_eq(res_check(n, gpus), -ENOSPC);

    /* 1.5 GPUs is malformed; it outranks a busy part. */
    res_set_t *bad = request("GPU", 1.5, "CPU", 4);
    cr_assert_eq(res_check(n, bad), -EINVAL);
    cr_assert_eq(res_allocate(n, bad, &b), -EINVAL);
    cr_assert_eq(res_node_version(n), v);

    res_free(n, a);
    res_set_destroy(first);
    res_set_destroy(req);
    res_set_destroy(unknown);
    res_set_destroy(huge);
    res_set_destroy(gpus);
    res_set_destroy(bad);
    res_node_destroy(n);
}

Test(resources, free_restores_and_version_bumps)
{
    res_node_t *n = node_with(2, 1);
    uint64_t v0 = res_node_version(n);
    res_set_t *req = request("CPU", 1.5, "GPU", 0.5);
    res_alloc_t *a;
    cr_assert_eq(res_allocate(n, req, &a), 0);
    uint64_t v1 = res_node_version(n);
    cr_assert_gt(v1, v0);
    cr_assert_eq(res_alloc_count(a), 2);
    res_grant_t g;
    res_alloc_at(a, 0, &g);
    cr_assert_str_eq(g.name, "CPU");
    res_alloc_at(a, 1, &g);
    cr_assert_str_eq(g.name, "GPU");
    cr_assert_eq(g.instance_count, 1);
    cr_assert_eq(res_node_available(n, "CPU"), U(0.5));
    cr_assert_eq(res_node_available(n, "GPU"), U(0.5));
    res_free(n, a);
    uint64_t v2 = res_node_version(n);
    cr_assert_gt(v2, v1);
    cr_assert_eq(res_node_available(n, "CPU"), U(2));
    cr_assert_eq(res_node_available(n, "GPU"), U(1));

    /* Empty request: succeeds, takes nothing, changes nothing. */
    res_set_t *empty = res_set_create();
    cr_assert_eq(res_allocate(n, empty, &a), 0);
    cr_assert_eq(res_alloc_count(a), 0);
    cr_assert_eq(res_node_version(n), v2);
    res_free(n, a);
    cr_assert_eq(res_node_version(n), v2);
    res_free(n, NULL);

    cr_assert_eq(res_node_add_total(n, "custom", amt(3)), 0);
    cr_assert_gt(res_node_version(n), v2);
    res_set_destroy(empty);
    res_set_destroy(req);
    res_node_destroy(n);
}

Test(resources, remove_and_free_after_remove)
{
    res_node_t *n = node_with(2, 2);
    res_set_t *req = request("CPU", 1, "GPU", 1);
    res_alloc_t *a;
    cr_assert_eq(res_allocate(n, req, &a), 0);
    uint64_t v = res_node_version(n);
    cr_assert_eq(res_node_remove(n, "GPU"), 0);
    cr_assert_gt(res_node_version(n), v);
    cr_assert_eq(res_node_remove(n, "GPU"), -ENOENT);
    cr_assert_eq(res_node_total(n, "GPU"), 0);
    /* Re-created smaller: a stale free must not push it past its total. */
    cr_assert_eq(res_node_add_total(n, "GPU", amt(1)), 0);
    res_free(n, a);
    cr_assert_eq(res_node_available(n, "CPU"), U(2));
    cr_assert_eq(res_node_available(n, "GPU"), U(1));
    res_entry_t e;
    res_node_entry_at(n, 1, &e);
    cr_assert_eq(e.instance_available[0], RES_UNIT);
    res_set_destroy(req);
    res_node_destroy(n);
}

Test(resources, bundle_style_instances)
{
    /* A placement-group bundle holding physical GPU 2 and half of GPU 3
     * of a 4-GPU node. */
    res_node_t *n = res_node_create(NULL);
    res_amount_t bundle[] = {0, 0, RES_UNIT, RES_UNIT / 2};
    cr_assert_eq(res_node_add_instances(n, "GPU_group_0_abc", bundle, 4), 0);
    cr_assert_eq(res_node_total(n, "GPU_group_0_abc"), U(1.5));
    cr_assert(res_node_is_unit_instance(n, "GPU_group_0_abc"));

    res_set_t *one = request("GPU_group_0_abc", 1, NULL, 0);
    res_set_t *half = request("GPU_group_0_abc", 0.5, NULL, 0);
    res_set_t *two = request("GPU_group_0_abc", 2, NULL, 0);
    res_alloc_t *a, *b, *c;
    cr_assert_eq(res_check(n, two), -ENOSPC); /* only one whole instance */
    cr_assert_eq(res_allocate(n, one, &a), 0);
    expect_ids(a, "GPU_group_0_abc", (uint32_t[]){2}, 1);
    cr_assert_eq(res_allocate(n, half, &b), 0);
    expect_ids(b, "GPU_group_0_abc", (uint32_t[]){3}, 1);
    cr_assert_eq(res_allocate(n, half, &c), -EAGAIN);
    res_free(n, a);
    res_free(n, b);
    cr_assert_eq(res_node_available(n, "GPU_group_0_abc"), U(1.5));

    res_amount_t bad[] = {RES_UNIT + 1};
    cr_assert_eq(res_node_add_instances(n, "X", bad, 1), -EINVAL);
    cr_assert_eq(res_node_add_total(n, "pooled", amt(1)), 0);
    cr_assert_eq(res_node_add_instances(n, "pooled", bundle, 4), -EINVAL);
    res_set_destroy(one);
    res_set_destroy(half);
    res_set_destroy(two);
    res_node_destroy(n);
}

Test(resources, many_allocations_no_drift)
{
    res_node_t *n = node_with(3, 8);
    res_set_t *req = request("CPU", 0.3, "GPU", 0.3);
    res_alloc_t *held[10];
    int got = 0;
    for (int round = 0; round < 100; round++) {
        got = 0;
        while (got < 10 && res_allocate(n, req, &held[got]) == 0)
            got++;
        /* 3 CPUs / 0.3 = 10 exactly; GPUs take 3 per instance (0.9). */
        cr_assert_eq(got, 10);
        for (int i = 0; i < got; i++)
            res_free(n, held[i]);
    }
    cr_assert_eq(res_node_available(n, "CPU"), U(3));
    cr_assert_eq(res_node_available(n, "GPU"), U(8));
    res_set_destroy(req);
    res_node_destroy(n);
}

/* ---- --static_resource_list parsing ----------------------------------------------------- */

typedef struct collected {
    char names[8][32];
    double values[8];
    int n;
} collected_t;

static int collect(void *ctx, const char *name, double value)
{
    collected_t *c = ctx;
    snprintf(c->names[c->n], sizeof c->names[0], "%s", name);
    c->values[c->n++] = value;
    return 0;
}

static int stop_at_second(void *ctx, const char *name, double value)
{
    collected_t *c = ctx;
    return ++c->n == 2 ? -42 : 0;
}

Test(resources, parse_list)
{
    collected_t c = {0};
    char err[200];
    cr_assert_eq(res_parse_list("CPU,8,GPU,0,memory,1.5e9,node:10.0.0.1,1.0", collect, &c, err, sizeof err), 0);
    cr_assert_eq(c.n, 3);
    cr_assert_str_eq(c.names[0], "CPU");
    cr_assert_str_eq(c.names[1], "memory");
    cr_assert_float_eq(c.values[1], 1.5e9, 0);
    cr_assert_str_eq(c.names[2], "node:10.0.0.1");

    c.n = 0;
    cr_assert_eq(res_parse_list("", collect, &c, err, sizeof err), 0);
    cr_assert_eq(res_parse_list(NULL, collect, &c, err, sizeof err), 0);
    cr_assert_eq(c.n, 0);

    cr_assert_eq(res_parse_list("a,1,b", collect, &c, err, sizeof err), CR_EBADFLAG);
    cr_assert(strstr(err, "odd number") != NULL, "%s", err);
    cr_assert_eq(res_parse_list("a,1,a,2", collect, &c, err, sizeof err), CR_EBADFLAG);
    cr_assert(strstr(err, "given twice") != NULL, "%s", err);
    cr_assert_eq(res_parse_list("a,-0.5", collect, &c, err, sizeof err), CR_EBADFLAG);
    cr_assert_eq(res_parse_list("a,1e15", collect, &c, err, sizeof err), CR_EBADFLAG);
    cr_assert_eq(res_parse_list("a,1,b,x", collect, &c, NULL, 0), CR_EBADFLAG);
    /* Nothing is emitted from a list that fails validation. */
    cr_assert_eq(c.n, 0);

    c.n = 0;
    cr_assert_eq(res_parse_list("a,1,b,2,c,3", stop_at_second, &c, err, sizeof err), -42);
}

/* The way main builds the node from the flag. */
static int add_to_node(void *p, const char *name, double value)
{
    res_node_t *node = p;
    res_amount_t a;
    int rc = res_amount_from_double(value, &a);
    return rc < 0 ? rc : res_node_add_total(node, name, a);
}

Test(resources, parse_list_feeds_node)
{
    res_node_t *n = res_node_create(NULL);
    char err[200];
    cr_assert_eq(res_parse_list("CPU,4,GPU,2,memory,1e9", add_to_node, n, err, sizeof err), 0);
    cr_assert_eq(res_node_total(n, "CPU"), U(4));
    cr_assert_eq(res_node_total(n, "GPU"), U(2));
    res_entry_t e;
    res_node_entry_at(n, 1, &e);
    cr_assert_eq(e.instance_count, 2);
    res_node_destroy(n);
}

Test(resources, measured_availability_is_clamped_and_versioned)
{
    res_node_t *n = node_with(2, 2);
    cr_assert_eq(res_node_add_total(n, "object_store_memory", amt(300)), 0);
    uint64_t v = res_node_version(n);
    /* The same amount again: nothing to report. */
    cr_assert_eq(res_node_set_available(n, "object_store_memory", amt(300)), 0);
    cr_assert_eq(res_node_version(n), v);
    cr_assert_eq(res_node_set_available(n, "object_store_memory", amt(100)), 0);
    cr_assert_eq(res_node_available(n, "object_store_memory"), amt(100));
    cr_assert_gt(res_node_version(n), v);
    /* Usage past the total (fallback files) reads as none left, never below. */
    cr_assert_eq(res_node_set_available(n, "object_store_memory", -amt(5)), 0);
    cr_assert_eq(res_node_available(n, "object_store_memory"), 0);
    cr_assert_eq(res_node_set_available(n, "object_store_memory", amt(900)), 0);
    cr_assert_eq(res_node_available(n, "object_store_memory"), amt(300));
    cr_assert_eq(res_node_total(n, "object_store_memory"), amt(300));
    cr_assert_eq(res_node_set_available(n, "GPU", amt(1)), -EINVAL);
    cr_assert_eq(res_node_set_available(n, "absent", amt(1)), -ENOENT);
    res_node_destroy(n);
}

Test(resources, resize_grows_creates_and_shrinks_only_what_is_free)
{
    res_node_t *n = node_with(4, 2);
    bool changed = true;
    /* Growing, and a resource that is new. */
    cr_assert_eq(res_node_resize(n, "CPU", U(6), &changed), 0);
    cr_assert(changed);
    cr_assert_eq(res_node_total(n, "CPU"), U(6));
    cr_assert_eq(res_node_available(n, "CPU"), U(6));
    cr_assert_eq(res_node_resize(n, "extra", U(2), &changed), 0);
    cr_assert(changed);
    cr_assert_eq(res_node_total(n, "extra"), U(2));
    /* The same total again moves nothing. */
    cr_assert_eq(res_node_resize(n, "CPU", U(6), &changed), 0);
    cr_assert_not(changed);
    /* Shrinking below what is granted stops at what is free. */
    res_set_t *req = request("CPU", 5, NULL, 0);
    res_alloc_t *a = NULL;
    cr_assert_eq(res_allocate(n, req, &a), 0);
    cr_assert_eq(res_node_resize(n, "CPU", U(1), &changed), 0);
    cr_assert(changed);
    cr_assert_eq(res_node_total(n, "CPU"), U(5));
    cr_assert_eq(res_node_available(n, "CPU"), 0);
    res_free(n, a);
    cr_assert_eq(res_node_available(n, "CPU"), U(5));
    res_set_destroy(req);
    /* Per-instance resources, empty names and negative totals are refused
     * and change nothing. */
    cr_assert_eq(res_node_resize(n, "GPU", U(4), &changed), -EINVAL);
    cr_assert_not(changed);
    cr_assert_eq(res_node_total(n, "GPU"), U(2));
    cr_assert_eq(res_node_resize(n, "", U(1), NULL), -EINVAL);
    cr_assert_eq(res_node_resize(n, "CPU", -U(1), NULL), -EINVAL);
    cr_assert_eq(res_node_total(n, "CPU"), U(5));
    /* Down to zero: the resource goes. */
    cr_assert_eq(res_node_resize(n, "extra", 0, NULL), 0);
    cr_assert_eq(res_node_total(n, "extra"), 0);
    res_node_destroy(n);
}
