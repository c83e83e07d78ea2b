/* Placement-group bundles against the resource model: prepare is all or
 * nothing, commit names resources as Ray does with the reserved GPU
 * instances, return refuses while leased and restores everything. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "raylet/sched/bundles.h"

typedef struct spec {
    Ray__Rpc__Bundle b;
    Ray__Rpc__Bundle__BundleIdentifier id;
    Ray__Rpc__Bundle__UnitResourcesEntry e[2];
    Ray__Rpc__Bundle__UnitResourcesEntry *ep[2];
    uint8_t pg[18];
} spec_t;

static void make_spec(spec_t *s, uint8_t pg_byte, int index, double cpu, double gpu)
{
    memset(s, 0, sizeof *s);
    ray__rpc__bundle__init(&s->b);
    ray__rpc__bundle__bundle_identifier__init(&s->id);
    memset(s->pg, pg_byte, sizeof s->pg);
    s->id.placement_group_id.data = s->pg;
    s->id.placement_group_id.len = 18;
    s->id.bundle_index = index;
    s->b.bundle_id = &s->id;
    size_t n = 0;
    if (cpu > 0) {
        ray__rpc__bundle__unit_resources_entry__init(&s->e[n]);
        s->e[n].key = "CPU";
        s->e[n].value = cpu;
        s->ep[n] = &s->e[n];
        n++;
    }
    if (gpu > 0) {
        ray__rpc__bundle__unit_resources_entry__init(&s->e[n]);
        s->e[n].key = "GPU";
        s->e[n].value = gpu;
        s->ep[n] = &s->e[n];
        n++;
    }
    s->b.n_unit_resources = n;
    s->b.unit_resources = s->ep;
}

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
    bundles_t *b = bundles_create(n);
    spec_t s0, s1;
    make_spec(&s0, 0xab, 0, 1, 1);
    make_spec(&s1, 0xab, 1, 1, 1);
    Ray__Rpc__Bundle *specs[2] = {&s0.b, &s1.b};
    cr_assert_eq(bundles_prepare(b, specs, 2), 0);
    cr_assert_eq(res_node_available(n, "GPU"), 0);
    cr_assert_eq(res_node_available(n, "CPU"), 2 * RES_UNIT);
    bundles_commit(b, specs, 2);
    char hex[37];
    cr_assert(bundles_pg_hex(&s0.b, hex));
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
    bundles_destroy(b);
    res_node_destroy(n);
}

Test(bundles, prepare_is_all_or_nothing)
{
    res_node_t *n = node_with(2, 1);
    bundles_t *b = bundles_create(n);
    spec_t s0, s1;
    make_spec(&s0, 0x01, 0, 1, 1);
    make_spec(&s1, 0x01, 1, 1, 1); /* a second GPU does not exist */
    Ray__Rpc__Bundle *specs[2] = {&s0.b, &s1.b};
    cr_assert_neq(bundles_prepare(b, specs, 2), 0);
    cr_assert_eq(bundles_count(b), 0);
    cr_assert_eq(res_node_available(n, "GPU"), RES_UNIT);
    cr_assert_eq(res_node_available(n, "CPU"), 2 * RES_UNIT);
    bundles_destroy(b);
    res_node_destroy(n);
}

Test(bundles, return_refuses_while_leased)
{
    res_node_t *n = node_with(2, 0);
    bundles_t *b = bundles_create(n);
    spec_t s0;
    make_spec(&s0, 0x02, 0, 1, 0);
    Ray__Rpc__Bundle *specs[1] = {&s0.b};
    cr_assert_eq(bundles_prepare(b, specs, 1), 0);
    bundles_commit(b, specs, 1);
    char hex[37], name[128];
    bundles_pg_hex(&s0.b, hex);
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
    res_set_destroy(want);
    bundles_destroy(b);
    res_node_destroy(n);
}

Test(bundles, release_unused_keeps_the_listed_ones)
{
    res_node_t *n = node_with(4, 0);
    bundles_t *b = bundles_create(n);
    spec_t s0, s1;
    make_spec(&s0, 0x03, 0, 1, 0);
    make_spec(&s1, 0x04, 0, 1, 0);
    Ray__Rpc__Bundle *specs[2] = {&s0.b, &s1.b};
    cr_assert_eq(bundles_prepare(b, specs, 2), 0);
    bundles_commit(b, specs, 2);
    Ray__Rpc__Bundle *keep[1] = {&s1.b};
    cr_assert_eq(bundles_release_unused(b, keep, 1), 0);
    cr_assert_eq(bundles_count(b), 1);
    cr_assert_eq(res_node_available(n, "CPU"), 3 * RES_UNIT);
    bundles_destroy(b);
    res_node_destroy(n);
}
