/* Placement-group bundles against the resource model: prepare is all or
 * nothing, commit names resources as Ray does with the reserved GPU
 * instances, return refuses while leased and restores everything. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "raylet/sched/bundles.h"

typedef struct spec {
    bundle_spec_t b;
    res_set_t *set; /* owned: what b.resources points at */
} spec_t;

static void make_spec(spec_t *s, uint8_t pg_byte, int index, double cpu, double gpu)
{
    memset(s, 0, sizeof *s);
    memset(s->b.pg_id, pg_byte, sizeof s->b.pg_id);
    s->b.index = index;
    s->set = res_set_create();
    if (cpu > 0)
        res_set_put(s->set, "CPU", (res_amount_t)(cpu * RES_UNIT));
    if (gpu > 0)
        res_set_put(s->set, "GPU", (res_amount_t)(gpu * RES_UNIT));
    s->b.resources = s->set;
}

static void free_spec(spec_t *s) { res_set_destroy(s->set); }

static void pg_hex(const spec_t *s, char hex[ID_HEX_BUF]) { id_to_hex(s->b.pg_id, ID_PG_SIZE, hex); }

static res_node_t *node_with(double cpus, int gpus)
{
    res_node_t *n = res_node_create(NULL);
    res_node_add_total(n, "CPU", (res_amount_t)(cpus * RES_UNIT));
    res_node_add_total(n, "GPU", (res_amount_t)gpus * RES_UNIT);
    return n;
}

Test(bundles, prepare_commit_names_and_gpu_layout)
{
    res_node_t *n = node_with(4, 2);
    bundles_t *b = bundles_create(n, NULL);
    spec_t s0, s1;
    make_spec(&s0, 0xab, 0, 1, 1);
    make_spec(&s1, 0xab, 1, 1, 1);
    bundle_spec_t specs[2] = {s0.b, s1.b};
    cr_assert_eq(bundles_prepare(b, specs, 2), 0);
    cr_assert_eq(res_node_available(n, "GPU"), 0);
    cr_assert_eq(res_node_available(n, "CPU"), 2 * RES_UNIT);
    bundles_commit(b, specs, 2);
    char hex[ID_HEX_BUF];
    pg_hex(&s0, hex);
    char name[128];
    snprintf(name, sizeof name, "GPU_group_1_%s", hex);
    res_entry_t e;
    bool found = false;
    for (size_t i = 0; i < res_node_count(n); i++) {
        res_node_entry_at(n, i, &e);
        if (strcmp(e.name, name) == 0) {
            found = true;
            /* Bundle 1 got physical GPU 1: the indexed resource mirrors it. */
            cr_assert_eq(e.instance_count, 2);
            cr_assert_eq(e.instance_total[0], 0);
            cr_assert_eq(e.instance_total[1], RES_UNIT);
        }
    }
    cr_assert(found, "missing %s", name);
    snprintf(name, sizeof name, "GPU_group_%s", hex);
    cr_assert_eq(res_node_total(n, name), 2 * RES_UNIT, "the wildcard sums both bundles");
    snprintf(name, sizeof name, "bundle_group_0_%s", hex);
    cr_assert_eq(res_node_total(n, name), 1000 * RES_UNIT);
    snprintf(name, sizeof name, "CPU_group_%s", hex);
    cr_assert_eq(res_node_total(n, name), 2 * RES_UNIT);

    /* Idempotent: preparing and committing again changes nothing. */
    cr_assert_eq(bundles_prepare(b, specs, 2), 0);
    bundles_commit(b, specs, 2);
    cr_assert_eq(res_node_total(n, name), 2 * RES_UNIT);
    cr_assert_eq(bundles_count(b), 2);

    cr_assert_eq(bundles_return(b, &s0.b), 0);
    cr_assert_eq(bundles_return(b, &s1.b), 0);
    cr_assert_eq(res_node_total(n, name), 0, "group resources are gone");
    cr_assert_eq(res_node_available(n, "GPU"), 2 * RES_UNIT);
    cr_assert_eq(res_node_available(n, "CPU"), 4 * RES_UNIT);
    cr_assert_eq(bundles_count(b), 0);
    free_spec(&s0);
    free_spec(&s1);
    bundles_destroy(b);
    res_node_destroy(n);
}

Test(bundles, prepare_is_all_or_nothing)
{
    res_node_t *n = node_with(2, 1);
    bundles_t *b = bundles_create(n, NULL);
    spec_t s0, s1;
    make_spec(&s0, 0x01, 0, 1, 1);
    make_spec(&s1, 0x01, 1, 1, 1); /* a second GPU does not exist */
    bundle_spec_t specs[2] = {s0.b, s1.b};
    cr_assert_neq(bundles_prepare(b, specs, 2), 0);
    cr_assert_eq(bundles_count(b), 0);
    cr_assert_eq(res_node_available(n, "GPU"), RES_UNIT);
    cr_assert_eq(res_node_available(n, "CPU"), 2 * RES_UNIT);
    free_spec(&s0);
    free_spec(&s1);
    bundles_destroy(b);
    res_node_destroy(n);
}

Test(bundles, return_refuses_while_leased)
{
    res_node_t *n = node_with(2, 0);
    bundles_t *b = bundles_create(n, NULL);
    spec_t s0;
    make_spec(&s0, 0x02, 0, 1, 0);
    bundle_spec_t specs[1] = {s0.b};
    cr_assert_eq(bundles_prepare(b, specs, 1), 0);
    bundles_commit(b, specs, 1);
    char hex[ID_HEX_BUF], name[128];
    pg_hex(&s0, hex);
    snprintf(name, sizeof name, "CPU_group_0_%s", hex);
    res_set_t *want = res_set_create();
    res_set_put(want, name, RES_UNIT);
    res_alloc_t *lease = NULL;
    cr_assert_eq(res_allocate(n, want, &lease), 0);
    cr_assert_eq(bundles_return(b, &s0.b), -EBUSY);
    cr_assert_eq(res_node_total(n, name), RES_UNIT, "a busy bundle is left whole");
    res_free(n, lease);
    cr_assert_eq(bundles_return(b, &s0.b), 0);
    cr_assert_eq(res_node_available(n, "CPU"), 2 * RES_UNIT);
    free_spec(&s0);
    res_set_destroy(want);
    bundles_destroy(b);
    res_node_destroy(n);
}

Test(bundles, release_unused_keeps_the_listed_ones)
{
    res_node_t *n = node_with(4, 0);
    bundles_t *b = bundles_create(n, NULL);
    spec_t s0, s1;
    make_spec(&s0, 0x03, 0, 1, 0);
    make_spec(&s1, 0x04, 0, 1, 0);
    bundle_spec_t specs[2] = {s0.b, s1.b};
    cr_assert_eq(bundles_prepare(b, specs, 2), 0);
    bundles_commit(b, specs, 2);
    bundle_spec_t keep[1] = {s1.b};
    cr_assert_eq(bundles_release_unused(b, keep, 1), 0);
    cr_assert_eq(bundles_count(b), 1);
    cr_assert_eq(res_node_available(n, "CPU"), 3 * RES_UNIT);
    free_spec(&s0);
    free_spec(&s1);
    bundles_destroy(b);
    res_node_destroy(n);
}

Test(bundles, negative_index_is_refused_whole)
{
    res_node_t *n = node_with(2, 0);
    bundles_t *b = bundles_create(n, NULL);
    spec_t s0, s1;
    make_spec(&s0, 0x05, 0, 1, 0);
    make_spec(&s1, 0x05, -1, 1, 0);
    bundle_spec_t specs[2] = {s0.b, s1.b};
    cr_assert_eq(bundles_prepare(b, specs, 2), -EINVAL);
    cr_assert_eq(bundles_count(b), 0, "nothing of the request stays reserved");
    cr_assert_eq(res_node_available(n, "CPU"), 2 * RES_UNIT);
    free_spec(&s0);
    free_spec(&s1);
    bundles_destroy(b);
    res_node_destroy(n);
}
