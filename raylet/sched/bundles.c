#include "raylet/sched/bundles.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/id.h"
#include "common/log.h"

#define BUNDLE_LABEL "bundle"
#define BUNDLE_LABEL_AMOUNT (1000 * RES_UNIT)

typedef struct bundle {
    uint8_t pg[ID_PG_SIZE];
    int32_t index;
    bool committed;
    res_alloc_t *alloc; /* the physical reservation */
} bundle_t;

struct bundles {
    res_node_t *res;
    gpu_gang_t *gang;
    bundle_t *items;
    size_t count, cap;
};

static bundle_t *bundles_find(bundles_t *b, const bundle_spec_t *spec)
{
    for (size_t i = 0; i < b->count; i++)
        if (b->items[i].index == spec->index && memcmp(b->items[i].pg, spec->pg_id, ID_PG_SIZE) == 0)
            return &b->items[i];
    return NULL;
}

static void bundles_forget(bundles_t *b, bundle_t *x)
{
    *x = b->items[--b->count];
}

/* The names one original resource takes in a committed bundle. */
static void bundles_names(const char *orig, const char *pg_hex, int32_t index, char *indexed, char *wildcard,
                          size_t len)
{
    snprintf(indexed, len, "%s_group_%d_%s", orig, (int)index, pg_hex);
    snprintf(wildcard, len, "%s_group_%s", orig, pg_hex);
}

/* Whole GPUs a bundle asks for (fractions are left to the resource model,
 * which packs them onto partly used devices). */
static uint32_t bundles_whole_gpus(const bundle_spec_t *spec)
{
    res_amount_t a = res_set_get(spec->resources, "GPU");
    return a >= RES_UNIT && a % RES_UNIT == 0 && a / RES_UNIT <= GPU_TOPO_MAX_GPUS ? (uint32_t)(a / RES_UNIT) : 0;
}

/* The gang plan for the bundles of one request not prepared before:
 * counts[i] GPUs for specs[i] (0 for those skipped), ids bundle after
 * bundle.  Returns 0 (*planned false when there is nothing to plan) or the
 * packer's refusal. */
typedef struct bundles_plan {
    bool planned;
    uint32_t counts[GPU_PACK_MAX_BUNDLES];
    int32_t indexes[GPU_PACK_MAX_BUNDLES];
    uint32_t ids[GPU_TOPO_MAX_GPUS];
    size_t n;
    gpu_pack_result_t result;
} bundles_plan_t;

static int bundles_plan(bundles_t *b, const bundle_spec_t *specs, size_t n, bundles_plan_t *plan)
{
    plan->planned = false;
    plan->n = 0;
    if (!b->gang || n > GPU_PACK_MAX_BUNDLES)
        return 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        bool fresh = specs[i].index >= 0 && specs[i].resources && !bundles_find(b, &specs[i]);
        /* A bundle listed twice in one request is reserved once. */
        for (size_t j = 0; j < i && fresh; j++)
            fresh = !(specs[j].index == specs[i].index && memcmp(specs[j].pg_id, specs[i].pg_id, ID_PG_SIZE) == 0);
        plan->counts[i] = fresh ? bundles_whole_gpus(&specs[i]) : 0;
        plan->indexes[i] = specs[i].index;
        total += plan->counts[i];
    }
    plan->n = n;
    if (total == 0)
        return 0;
    int rc = gpu_gang_plan(b->gang, plan->counts, n, plan->ids, &plan->result);
    if (rc == 0)
        plan->planned = true;
    return rc;
}

int bundles_prepare(bundles_t *b, const bundle_spec_t *specs, size_t n)
{
    size_t first_new = b->count;
    bundles_plan_t plan;
    int rc = bundles_plan(b, specs, n, &plan);
    if (rc == -ENOSPC) {
        char hex[ID_HEX_BUF];
        id_to_hex(specs[0].pg_id, ID_PG_SIZE, hex);
        log_info("cannot prepare placement group %s: strict GPU packing finds no set of GPUs all joined by NVLink "
                 "on this node",
                 hex);
        return rc;
    }
    if (rc != 0)
        return -EAGAIN;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const bundle_spec_t *spec = &specs[i];
        char hex[ID_HEX_BUF];
        id_to_hex(spec->pg_id, ID_PG_SIZE, hex);
        if (spec->index < 0 || !spec->resources) {
            rc = -EINVAL;
            goto rollback;
        }
        if (bundles_find(b, spec))
            continue; /* prepared or committed before: idempotent */
        res_alloc_t *alloc = NULL;
        if (plan.planned && plan.counts[i] > 0) {
            rc = res_allocate_pinned(b->res, spec->resources, "GPU", &plan.ids[off], plan.counts[i], &alloc);
            off += plan.counts[i];
        } else {
            rc = res_allocate(b->res, spec->resources, &alloc);
        }
        if (rc != 0) {
            log_info("cannot prepare bundle %d of placement group %s: %s", (int)spec->index, hex,
                     rc == -EAGAIN   ? "resources busy"
                     : rc == -EINVAL ? "malformed request (a fraction of a device above 1)"
                                     : "resources missing on this node");
            rc = rc == -EINVAL ? -EINVAL : -EAGAIN;
            goto rollback;
        }
        if (b->count == b->cap) {
            b->cap = b->cap ? b->cap * 2 : 16;
            b->items = xrealloc(b->items, b->cap * sizeof *b->items);
        }
        bundle_t *x = &b->items[b->count++];
        memset(x, 0, sizeof *x);
        memcpy(x->pg, spec->pg_id, ID_PG_SIZE);
        x->index = spec->index;
        x->alloc = alloc;
    }
    if (plan.planned)
        gpu_gang_note(b->gang, specs[0].pg_id, plan.indexes, plan.counts, plan.n, plan.ids, &plan.result);
    return 0;
rollback:
    /* All or nothing: undo what this request reserved. */
    while (b->count > first_new) {
        bundle_t *x = &b->items[b->count - 1];
        res_free(b->res, x->alloc);
        b->count--;
    }
    return rc;
}

/* Per-instance amounts of one grant, indexed by physical instance. */
static size_t bundles_layout(const res_grant_t *g, res_amount_t **out)
{
    size_t n = 0;
    for (size_t j = 0; j < g->instance_count; j++)
        if ((size_t)g->instance_ids[j] + 1 > n)
            n = (size_t)g->instance_ids[j] + 1;
    *out = xcalloc(n, sizeof **out);
    for (size_t j = 0; j < g->instance_count; j++)
        (*out)[g->instance_ids[j]] += g->instance_amounts[j];
    return n;
}

static void bundles_commit_one(bundles_t *b, bundle_t *x)
{
    char hex[ID_HEX_BUF], indexed[512], wildcard[512];
    id_to_hex(x->pg, ID_PG_SIZE, hex);
    for (size_t i = 0; i < res_alloc_count(x->alloc); i++) {
        res_grant_t g;
        res_alloc_at(x->alloc, i, &g);
        bundles_names(g.name, hex, x->index, indexed, wildcard, sizeof indexed);
        if (g.instance_count > 0) {
            res_amount_t *layout;
            size_t n = bundles_layout(&g, &layout);
            res_node_merge_instances(b->res, indexed, layout, n);
            res_node_merge_instances(b->res, wildcard, layout, n);
            free(layout);
        } else {
            res_node_add_total(b->res, indexed, g.amount);
            res_node_add_total(b->res, wildcard, g.amount);
        }
    }
    bundles_names(BUNDLE_LABEL, hex, x->index, indexed, wildcard, sizeof indexed);
    res_node_add_total(b->res, indexed, BUNDLE_LABEL_AMOUNT);
    res_node_add_total(b->res, wildcard, BUNDLE_LABEL_AMOUNT);
    x->committed = true;
}

void bundles_commit(bundles_t *b, const bundle_spec_t *specs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bundle_t *x = bundles_find(b, &specs[i]);
        if (x && !x->committed)
            bundles_commit_one(b, x);
    }
}

/* Take one committed bundle's named resources away; -EBUSY (and nothing
 * changed) while any is leased. */
static int bundles_uncommit(bundles_t *b, bundle_t *x)
{
    char hex[ID_HEX_BUF], indexed[512], wildcard[512];
    id_to_hex(x->pg, ID_PG_SIZE, hex);
    /* Check everything first so a busy bundle is left whole. */
    res_set_t *need = res_set_create();
    for (size_t i = 0; i < res_alloc_count(x->alloc); i++) {
        res_grant_t g;
        res_alloc_at(x->alloc, i, &g);
        bundles_names(g.name, hex, x->index, indexed, wildcard, sizeof indexed);
        res_set_put(need, indexed, g.amount);
        res_set_put(need, wildcard, res_set_get(need, wildcard) + g.amount);
    }
    bundles_names(BUNDLE_LABEL, hex, x->index, indexed, wildcard, sizeof indexed);
    res_set_put(need, indexed, BUNDLE_LABEL_AMOUNT);
    res_set_put(need, wildcard, BUNDLE_LABEL_AMOUNT);
    bool busy = false;
    for (size_t i = 0; i < res_set_count(need) && !busy; i++)
        busy = res_node_available(b->res, res_set_name_at(need, i)) < res_set_amount_at(need, i);
    res_set_destroy(need);
    if (busy)
        return -EBUSY;
    for (size_t i = 0; i < res_alloc_count(x->alloc); i++) {
        res_grant_t g;
        res_alloc_at(x->alloc, i, &g);
        bundles_names(g.name, hex, x->index, indexed, wildcard, sizeof indexed);
        if (g.instance_count > 0) {
            res_amount_t *layout;
            size_t n = bundles_layout(&g, &layout);
            res_node_shrink(b->res, indexed, 0, layout, n);
            res_node_shrink(b->res, wildcard, 0, layout, n);
            free(layout);
        } else {
            res_node_shrink(b->res, indexed, g.amount, NULL, 0);
            res_node_shrink(b->res, wildcard, g.amount, NULL, 0);
        }
    }
    bundles_names(BUNDLE_LABEL, hex, x->index, indexed, wildcard, sizeof indexed);
    res_node_shrink(b->res, indexed, BUNDLE_LABEL_AMOUNT, NULL, 0);
    res_node_shrink(b->res, wildcard, BUNDLE_LABEL_AMOUNT, NULL, 0);
    x->committed = false;
    return 0;
}

static int bundles_return_one(bundles_t *b, bundle_t *x)
{
    if (x->committed) {
        int rc = bundles_uncommit(b, x);
        if (rc != 0)
            return rc;
    }
    res_free(b->res, x->alloc);
    if (b->gang)
        gpu_gang_forget(b->gang, x->pg, x->index);
    bundles_forget(b, x);
    return 0;
}

int bundles_return(bundles_t *b, const bundle_spec_t *spec)
{
    bundle_t *x = bundles_find(b, spec);
    return x ? bundles_return_one(b, x) : 0;
}

size_t bundles_release_unused(bundles_t *b, const bundle_spec_t *in_use, size_t n)
{
    size_t busy = 0;
    for (size_t i = 0; i < b->count;) {
        bundle_t *x = &b->items[i];
        bool used = false;
        for (size_t k = 0; k < n && !used; k++) {
            used = memcmp(in_use[k].pg_id, x->pg, ID_PG_SIZE) == 0 && in_use[k].index == x->index;
        }
        if (used || bundles_return_one(b, x) != 0) {
            busy += !used;
            i++;
        }
        /* else the slot now holds another bundle: look at it again */
    }
    return busy;
}

size_t bundles_count(const bundles_t *b) { return b->count; }

bundles_t *bundles_create(res_node_t *resources, gpu_gang_t *gang)
{
    bundles_t *b = xcalloc(1, sizeof *b);
    b->res = resources;
    b->gang = gang;
    return b;
}

void bundles_destroy(bundles_t *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->count; i++)
        res_alloc_destroy(b->items[i].alloc);
    free(b->items);
    free(b);
}
