/* The node's resource model (see resources.h).
 *
 * Resources live in an array sorted by name: a node has a handful of
 * predefined resources plus a few per placement-group bundle, so binary
 * search over a compact array beats a hash table here and keeps iteration
 * in a stable order for the protobuf maps built from it. */
#include "raylet/sched/resources.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/log.h"

int res_amount_from_double(double value, res_amount_t *out)
{
    if (!isfinite(value) || value < 0)
        return -EINVAL;
    if (value > (double)(RES_AMOUNT_MAX / RES_UNIT))
        return -ERANGE;
    *out = (res_amount_t)llround(value * (double)RES_UNIT);
    return 0;
}

double res_amount_to_double(res_amount_t amount) { return (double)amount / (double)RES_UNIT; }

/* ---- sets ------------------------------------------------------------------ */

typedef struct res_set_item {
    char *name;
    res_amount_t amount;
} res_set_item_t;

struct res_set {
    res_set_item_t *items;
    size_t count, cap;
};

/* Index of `name`, or the insertion point with *found false. */
static size_t res_set_search(const res_set_t *set, const char *name, bool *found)
{
    size_t lo = 0, hi = set->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(set->items[mid].name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

res_set_t *res_set_create(void) { return xcalloc(1, sizeof(res_set_t)); }

res_set_t *res_set_copy(const res_set_t *set)
{
    res_set_t *copy = res_set_create();
    for (size_t i = 0; i < res_set_count(set); i++)
        res_set_put(copy, res_set_name_at(set, i), res_set_amount_at(set, i));
    return copy;
}

void res_set_destroy(res_set_t *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->count; i++)
        free(set->items[i].name);
    free(set->items);
    free(set);
}

int res_set_put(res_set_t *set, const char *name, res_amount_t amount)
{
    if (!name || !*name || amount < 0)
        return -EINVAL;
    bool found;
    size_t i = res_set_search(set, name, &found);
    if (found) {
        if (amount > 0) {
            set->items[i].amount = amount;
        } else {
            free(set->items[i].name);
            memmove(&set->items[i], &set->items[i + 1], (set->count - i - 1) * sizeof *set->items);
            set->count--;
        }
        return 0;
    }
    if (amount == 0)
        return 0;
    if (set->count == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 4;
        set->items = xrealloc(set->items, set->cap * sizeof *set->items);
    }
    memmove(&set->items[i + 1], &set->items[i], (set->count - i) * sizeof *set->items);
    set->items[i] = (res_set_item_t){xstrdup(name), amount};
    set->count++;
    return 0;
}

res_amount_t res_set_get(const res_set_t *set, const char *name)
{
    bool found;
    size_t i = res_set_search(set, name, &found);
    return found ? set->items[i].amount : 0;
}

size_t res_set_count(const res_set_t *set) { return set->count; }
const char *res_set_name_at(const res_set_t *set, size_t i) { return set->items[i].name; }
res_amount_t res_set_amount_at(const res_set_t *set, size_t i) { return set->items[i].amount; }

/* ---- node ------------------------------------------------------------------ */

typedef struct res_resource {
    char *name;
    bool unit; /* tracked per instance */
    res_amount_t total;
    res_amount_t available;
    /* Unit-instance resources only; total/available above are their sums,
     * kept in step so lookups need not add up the arrays. */
    size_t n;
    res_amount_t *inst_total;
    res_amount_t *inst_avail;
} res_resource_t;

struct res_node {
    res_resource_t *res; /* sorted by name */
    size_t count, cap;
    char **unit_names;
    size_t unit_name_count;
    uint64_t version;
    /* Who chooses whole instances of one resource (the GPU packer). */
    char *picker_name;
    res_picker_fn picker;
    void *picker_ctx;
    /* Set only inside res_allocate_pinned(): the instances to take. */
    const char *pin_name;
    const uint32_t *pin_ids;
    size_t pin_count;
};

static res_resource_t *res_node_find(const res_node_t *node, const char *name, size_t *pos)
{
    size_t lo = 0, hi = node->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(node->res[mid].name, name);
        if (c == 0) {
            if (pos)
                *pos = mid;
            return &node->res[mid];
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pos)
        *pos = lo;
    return NULL;
}

static res_resource_t *res_node_insert(res_node_t *node, size_t pos, const char *name, bool unit)
{
    if (node->count == node->cap) {
        node->cap = node->cap ? node->cap * 2 : 16;
        node->res = xrealloc(node->res, node->cap * sizeof *node->res);
    }
    memmove(&node->res[pos + 1], &node->res[pos], (node->count - pos) * sizeof *node->res);
    node->count++;
    node->res[pos] = (res_resource_t){.name = xstrdup(name), .unit = unit};
    return &node->res[pos];
}

static void res_resource_clear(res_resource_t *r)
{
    free(r->name);
    free(r->inst_total);
    free(r->inst_avail);
}

res_node_t *res_node_create(const char *unit_instance_names)
{
    const char *list = unit_instance_names ? unit_instance_names : "GPU,neuron_cores,TPU,NPU,HPU,RBLN";
    res_node_t *node = xcalloc(1, sizeof *node);
    const char *p = list;
    while (*list) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0) {
            log_error("empty name in unit-instance resource list \"%s\"", list);
            res_node_destroy(node);
            return NULL;
        }
        node->unit_names = xrealloc(node->unit_names, (node->unit_name_count + 1) * sizeof(char *));
        char *name = xrealloc(NULL, len + 1);
        memcpy(name, p, len);
        name[len] = '\0';
        node->unit_names[node->unit_name_count++] = name;
        if (!comma)
            break;
        p = comma + 1;
    }
    return node;
}

void res_node_destroy(res_node_t *node)
{
    if (!node)
        return;
    for (size_t i = 0; i < node->count; i++)
        res_resource_clear(&node->res[i]);
    free(node->res);
    for (size_t i = 0; i < node->unit_name_count; i++)
        free(node->unit_names[i]);
    free(node->unit_names);
    free(node->picker_name);
    free(node);
}

static bool res_name_is_unit(const res_node_t *node, const char *name)
{
    for (size_t i = 0; i < node->unit_name_count; i++)
        if (strcmp(node->unit_names[i], name) == 0)
            return true;
    return false;
}

bool res_node_is_unit_instance(const res_node_t *node, const char *name)
{
    const res_resource_t *r = res_node_find(node, name, NULL);
    return r ? r->unit : res_name_is_unit(node, name);
}

static void res_append_instances(res_resource_t *r, const res_amount_t *totals, res_amount_t fill, size_t count)
{
    r->inst_total = xrealloc(r->inst_total, (r->n + count) * sizeof *r->inst_total);
    r->inst_avail = xrealloc(r->inst_avail, (r->n + count) * sizeof *r->inst_avail);
    for (size_t i = 0; i < count; i++) {
        res_amount_t v = totals ? totals[i] : fill;
        r->inst_total[r->n + i] = v;
        r->inst_avail[r->n + i] = v;
        r->total += v;
        r->available += v;
    }
    r->n += count;
}

int res_node_add_total(res_node_t *node, const char *name, res_amount_t amount)
{
    if (!name || !*name || amount < 0)
        return -EINVAL;
    size_t pos;
    res_resource_t *r = res_node_find(node, name, &pos);
    bool unit = r ? r->unit : res_name_is_unit(node, name);
    if (unit && amount % RES_UNIT != 0) {
        log_warn("resource %s: fractional amount %.4f dropped; only whole instances are usable", name,
                 res_amount_to_double(amount % RES_UNIT));
        amount -= amount % RES_UNIT;
    }
    if (amount == 0)
        return 0;
    if ((r ? r->total : 0) > RES_AMOUNT_MAX - amount)
        return -ERANGE;
    if (!r)
        r = res_node_insert(node, pos, name, unit);
    if (unit) {
        res_append_instances(r, NULL, RES_UNIT, (size_t)(amount / RES_UNIT));
    } else {
        r->total += amount;
        r->available += amount;
    }
    node->version++;
    return 0;
}

int res_node_add_instances(res_node_t *node, const char *name, const res_amount_t *totals, size_t count)
{
    if (!name || !*name)
        return -EINVAL;
    for (size_t i = 0; i < count; i++)
        if (totals[i] < 0 || totals[i] > RES_UNIT)
            return -EINVAL;
    size_t pos;
    res_resource_t *r = res_node_find(node, name, &pos);
    if (r && !r->unit)
        return -EINVAL;
    if (count == 0)
        return 0;
    if (!r)
        r = res_node_insert(node, pos, name, true);
    res_append_instances(r, totals, 0, count);
    node->version++;
    return 0;
}

int res_node_merge_instances(res_node_t *node, const char *name, const res_amount_t *amounts, size_t count)
{
    if (!name || !*name)
        return -EINVAL;
    for (size_t i = 0; i < count; i++)
        if (amounts[i] < 0 || amounts[i] > RES_UNIT)
            return -EINVAL;
    size_t pos;
    res_resource_t *r = res_node_find(node, name, &pos);
    if (r && !r->unit)
        return -EINVAL;
    if (count == 0)
        return 0;
    if (!r)
        r = res_node_insert(node, pos, name, true);
    if (r->n < count)
        res_append_instances(r, NULL, 0, count - r->n);
    for (size_t i = 0; i < count; i++) {
        r->inst_total[i] += amounts[i];
        r->inst_avail[i] += amounts[i];
        r->total += amounts[i];
        r->available += amounts[i];
    }
    node->version++;
    return 0;
}

int res_node_shrink(res_node_t *node, const char *name, res_amount_t amount, const res_amount_t *amounts,
                    size_t count)
{
    res_resource_t *r = res_node_find(node, name, NULL);
    if (!r)
        return -ENOENT;
    if (amounts) {
        if (!r->unit || count > r->n)
            return -EINVAL;
        for (size_t i = 0; i < count; i++)
            if (amounts[i] < 0 || r->inst_avail[i] < amounts[i])
                return -EBUSY;
        for (size_t i = 0; i < count; i++) {
            r->inst_total[i] -= amounts[i];
            r->inst_avail[i] -= amounts[i];
            r->total -= amounts[i];
            r->available -= amounts[i];
        }
    } else {
        if (r->unit || amount < 0)
            return -EINVAL;
        if (r->available < amount)
            return -EBUSY;
        r->total -= amount;
        r->available -= amount;
    }
    node->version++;
    if (r->total <= 0)
        return res_node_remove(node, name);
    return 0;
}

int res_node_resize(res_node_t *node, const char *name, res_amount_t total, bool *changed)
{
    if (changed)
        *changed = false;
    if (!name || !*name || total < 0 || res_node_is_unit_instance(node, name))
        return -EINVAL;
    res_amount_t delta = total - res_node_total(node, name);
    res_amount_t available = res_node_available(node, name);
    if (delta < -available)
        delta = -available;
    if (delta == 0)
        return 0;
    int rc = delta > 0 ? res_node_add_total(node, name, delta) : res_node_shrink(node, name, -delta, NULL, 0);
    if (rc == 0 && changed)
        *changed = true;
    return rc;
}

int res_node_set_available(res_node_t *node, const char *name, res_amount_t amount)
{
    res_resource_t *r = res_node_find(node, name, NULL);
    if (!r)
        return -ENOENT;
    if (r->unit)
        return -EINVAL;
    if (amount < 0)
        amount = 0;
    if (amount > r->total)
        amount = r->total;
    if (amount != r->available) {
        r->available = amount;
        node->version++;
    }
    return 0;
}

int res_node_remove(res_node_t *node, const char *name)
{
    size_t pos;
    res_resource_t *r = res_node_find(node, name, &pos);
    if (!r)
        return -ENOENT;
    res_resource_clear(r);
    memmove(&node->res[pos], &node->res[pos + 1], (node->count - pos - 1) * sizeof *node->res);
    node->count--;
    node->version++;
    return 0;
}

res_amount_t res_node_total(const res_node_t *node, const char *name)
{
    const res_resource_t *r = res_node_find(node, name, NULL);
    return r ? r->total : 0;
}

res_amount_t res_node_available(const res_node_t *node, const char *name)
{
    const res_resource_t *r = res_node_find(node, name, NULL);
    return r ? r->available : 0;
}

size_t res_node_count(const res_node_t *node) { return node->count; }

void res_node_entry_at(const res_node_t *node, size_t i, res_entry_t *out)
{
    const res_resource_t *r = &node->res[i];
    *out = (res_entry_t){
        .name = r->name,
        .total = r->total,
        .available = r->available,
        .unit_instance = r->unit,
        .instance_count = r->n,
        .instance_total = r->inst_total,
        .instance_available = r->inst_avail,
    };
}

uint64_t res_node_version(const res_node_t *node) { return node->version; }

/* ---- allocation ------------------------------------------------------------- */

typedef struct res_grant_rec {
    char *name;
    res_amount_t amount;
    size_t n;
    uint32_t *ids;
    res_amount_t *amounts;
} res_grant_rec_t;

struct res_alloc {
    res_grant_rec_t *grants; /* sorted by name, as the request was */
    size_t count;
};

/* Errors ranked by permanence: a request that is malformed or can never fit
 * should be reported as such even if another part of it is merely busy. */
static int res_worse(int a, int b)
{
    static const int order[] = {-EINVAL, -ENOSPC, -EAGAIN};
    for (size_t i = 0; i < sizeof order / sizeof *order; i++)
        if (a == order[i] || b == order[i])
            return order[i];
    return 0;
}

static size_t res_count_instances_at_least(const res_amount_t *v, size_t n, res_amount_t amount)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] >= amount)
            k++;
    return k;
}

/* Whether `amount` of r fits: 0, -EAGAIN (not now), -ENOSPC (never) or
 * -EINVAL. */
static int res_check_one(const res_resource_t *r, res_amount_t amount)
{
    if (!r)
        return -ENOSPC;
    if (!r->unit) {
        if (amount > r->total)
            return -ENOSPC;
        return amount > r->available ? -EAGAIN : 0;
    }
    if (amount < RES_UNIT) {
        /* A fraction of one device. */
        if (res_count_instances_at_least(r->inst_total, r->n, amount) == 0)
            return -ENOSPC;
        return res_count_instances_at_least(r->inst_avail, r->n, amount) == 0 ? -EAGAIN : 0;
    }
    /* Ray refuses 1.5 GPUs: above one device, only whole devices. */
    if (amount % RES_UNIT != 0)
        return -EINVAL;
    size_t want = (size_t)(amount / RES_UNIT);
    if (res_count_instances_at_least(r->inst_total, r->n, RES_UNIT) < want)
        return -ENOSPC;
    return res_count_instances_at_least(r->inst_avail, r->n, RES_UNIT) < want ? -EAGAIN : 0;
}

int res_check(const res_node_t *node, const res_set_t *request)
{
    int worst = 0;
    for (size_t i = 0; i < request->count; i++) {
        const res_set_item_t *it = &request->items[i];
        worst = res_worse(worst, res_check_one(res_node_find(node, it->name, NULL), it->amount));
    }
    return worst;
}

void res_node_set_picker(res_node_t *node, const char *name, res_picker_fn fn, void *ctx)
{
    free(node->picker_name);
    node->picker_name = fn && name ? xstrdup(name) : NULL;
    node->picker = node->picker_name ? fn : NULL;
    node->picker_ctx = ctx;
}

/* ids[0..n) are distinct, fully free instances of r. */
static bool res_ids_fully_free(const res_resource_t *r, const uint32_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= r->n || r->inst_avail[ids[i]] != RES_UNIT)
            return false;
        for (size_t j = 0; j < i; j++)
            if (ids[j] == ids[i])
                return false;
    }
    return true;
}

static int res_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* A whole-instance choice made outside this file: a pinned gang plan, or
 * the resource's picker.  Returns how many were taken (0: none applies). */
static size_t res_pick_chosen(const res_node_t *node, const res_resource_t *r, size_t want, uint32_t *ids,
                              res_amount_t *amounts)
{
    size_t got = 0;
    if (node->pin_name && strcmp(node->pin_name, r->name) == 0) {
        if (node->pin_count != want)
            return 0;
        memcpy(ids, node->pin_ids, want * sizeof *ids);
        got = want;
    } else if (node->picker && strcmp(node->picker_name, r->name) == 0) {
        res_entry_t view = {
            .name = r->name,
            .total = r->total,
            .available = r->available,
            .unit_instance = true,
            .instance_count = r->n,
            .instance_total = r->inst_total,
            .instance_available = r->inst_avail,
        };
        got = node->picker(node->picker_ctx, &view, want, ids);
        if (got != want)
            return 0;
    } else {
        return 0;
    }
    if (!res_ids_fully_free(r, ids, got))
        return 0;
    qsort(ids, got, sizeof *ids, res_cmp_u32);
    for (size_t k = 0; k < got; k++)
        amounts[k] = RES_UNIT;
    return got;
}

/* THE instance placement policy: choose the instances of r that serve
 * `amount` (already known to fit) and write their ids, ascending, and the
 * amount taken from each.  Returns how many were chosen.
 *
 * A whole number of devices goes to a pinned plan or the resource's picker
 * (the GPU packer) when there is one; otherwise, as the stock raylet does,
 * to the lowest-indexed fully free ones.  A fraction takes the instance
 * whose free amount fits it most tightly (lowest index on ties), so partly
 * used devices fill up before fresh ones are broken into. */
static size_t res_pick_instances(const res_node_t *node, const res_resource_t *r, res_amount_t amount,
                                 uint32_t *ids, res_amount_t *amounts)
{
    if (amount < RES_UNIT) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < r->n; i++)
            if (r->inst_avail[i] >= amount && (best == SIZE_MAX || r->inst_avail[i] < r->inst_avail[best]))
                best = i;
        if (best == SIZE_MAX)
            return 0;
        ids[0] = (uint32_t)best;
        amounts[0] = amount;
        return 1;
    }
    size_t want = (size_t)(amount / RES_UNIT), k = res_pick_chosen(node, r, want, ids, amounts);
    if (k == want)
        return k;
    k = 0;
    for (size_t i = 0; i < r->n && k < want; i++) {
        if (r->inst_avail[i] == RES_UNIT) {
            ids[k] = (uint32_t)i;
            amounts[k] = RES_UNIT;
            k++;
        }
    }
    return k;
}

void res_alloc_destroy(res_alloc_t *alloc)
{
    if (!alloc)
        return;
    for (size_t i = 0; i < alloc->count; i++) {
        free(alloc->grants[i].name);
        free(alloc->grants[i].ids);
        free(alloc->grants[i].amounts);
    }
    free(alloc->grants);
    free(alloc);
}

int res_allocate(res_node_t *node, const res_set_t *request, res_alloc_t **out)
{
    *out = NULL;
    /* Every name in a set is distinct, so the parts of a request never
     * compete with each other: checking each one first and then taking
     * them all is all-or-nothing without any rollback. */
    int rc = res_check(node, request);
    if (rc < 0)
        return rc;
    res_alloc_t *alloc = xcalloc(1, sizeof *alloc);
    alloc->grants = xcalloc(request->count, sizeof *alloc->grants);
    for (size_t i = 0; i < request->count; i++) {
        const res_set_item_t *it = &request->items[i];
        res_resource_t *r = res_node_find(node, it->name, NULL);
        res_grant_rec_t *g = &alloc->grants[alloc->count++];
        g->name = xstrdup(it->name);
        g->amount = it->amount;
        if (!r->unit) {
            r->available -= it->amount;
            continue;
        }
        size_t max = it->amount < RES_UNIT ? 1 : (size_t)(it->amount / RES_UNIT);
        g->ids = xcalloc(max, sizeof *g->ids);
        g->amounts = xcalloc(max, sizeof *g->amounts);
        g->n = res_pick_instances(node, r, it->amount, g->ids, g->amounts);
        for (size_t k = 0; k < g->n; k++) {
            r->inst_avail[g->ids[k]] -= g->amounts[k];
            r->available -= g->amounts[k];
        }
    }
    if (alloc->count > 0)
        node->version++;
    *out = alloc;
    return 0;
}

int res_allocate_pinned(res_node_t *node, const res_set_t *request, const char *name, const uint32_t *ids,
                        size_t n, res_alloc_t **out)
{
    *out = NULL;
    const res_resource_t *r = res_node_find(node, name, NULL);
    if (!r || !r->unit || n == 0 || res_set_get(request, name) != (res_amount_t)n * RES_UNIT)
        return -EINVAL;
    if (!res_ids_fully_free(r, ids, n))
        return -EAGAIN;
    node->pin_name = name;
    node->pin_ids = ids;
    node->pin_count = n;
    int rc = res_allocate(node, request, out);
    node->pin_name = NULL;
    node->pin_ids = NULL;
    node->pin_count = 0;
    return rc;
}

void res_free(res_node_t *node, res_alloc_t *alloc)
{
    if (!alloc)
        return;
    for (size_t i = 0; i < alloc->count; i++) {
        const res_grant_rec_t *g = &alloc->grants[i];
        res_resource_t *r = res_node_find(node, g->name, NULL);
        if (!r)
            continue; /* removed meanwhile (a returned bundle, say) */
        if (!r->unit) {
            r->available += g->amount;
            if (r->available > r->total)
                r->available = r->total;
            continue;
        }
        for (size_t k = 0; k < g->n; k++) {
            uint32_t id = g->ids[k];
            /* The resource may have been removed and re-created with other
             * instances; never hand back more than an instance holds. */
            if (id >= r->n)
                continue;
            res_amount_t back = g->amounts[k];
            if (r->inst_avail[id] + back > r->inst_total[id])
                back = r->inst_total[id] - r->inst_avail[id];
            r->inst_avail[id] += back;
            r->available += back;
        }
    }
    if (alloc->count > 0)
        node->version++;
    res_alloc_destroy(alloc);
}

size_t res_alloc_count(const res_alloc_t *alloc) { return alloc->count; }

void res_alloc_at(const res_alloc_t *alloc, size_t i, res_grant_t *out)
{
    const res_grant_rec_t *g = &alloc->grants[i];
    *out = (res_grant_t){
        .name = g->name,
        .amount = g->amount,
        .instance_count = g->n,
        .instance_ids = g->ids,
        .instance_amounts = g->amounts,
    };
}

bool res_alloc_find(const res_alloc_t *alloc, const char *name, res_grant_t *out)
{
    for (size_t i = 0; i < alloc->count; i++) {
        if (strcmp(alloc->grants[i].name, name) == 0) {
            res_alloc_at(alloc, i, out);
            return true;
        }
    }
    return false;
}

/* ---- --static_resource_list ------------------------------------------------- */

static int res_cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool res_is_decimal_text(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || *s == '.' || *s == 'e' || *s == 'E' || *s == '+' || *s == '-'))
            return false;
    return true;
}

int res_parse_list(const char *text, res_list_cb cb, void *ctx, char *err, size_t err_len)
{
    char scratch[1];
    if (!err || !err_len) {
        err = scratch;
        err_len = sizeof scratch;
    }
    err[0] = '\0';
    if (!text || !*text)
        return 0;
    /* Split a private copy in place; tokens point into it. */
    char *buf = xstrdup(text);
    size_t ntok = 1;
    for (const char *p = buf; *p; p++)
        if (*p == ',')
            ntok++;
    char **tok = xcalloc(ntok, sizeof *tok);
    size_t k = 0;
    tok[k++] = buf;
    for (char *p = buf; *p; p++) {
        if (*p == ',') {
            *p = '\0';
            tok[k++] = p + 1;
        }
    }
    int rc = 0;
    char **names = NULL;
    double *values = NULL;
    if (ntok % 2 != 0) {
        snprintf(err, err_len, "expected name,value pairs but got an odd number of items (%zu)", ntok);
        rc = CR_EBADFLAG;
        goto out;
    }
    size_t npairs = ntok / 2;
    names = xcalloc(npairs, sizeof *names);
    values = xcalloc(npairs, sizeof *values);
    for (size_t i = 0; i < npairs; i++) {
        const char *name = tok[2 * i], *val = tok[2 * i + 1];
        if (!*name) {
            snprintf(err, err_len, "empty resource name in pair %zu", i + 1);
            rc = CR_EBADFLAG;
            goto out;
        }
        for (const char *c = name; *c; c++) {
            if ((unsigned char)*c < 0x20 || *c == 0x7f) {
                snprintf(err, err_len, "control character in resource name in pair %zu", i + 1);
                rc = CR_EBADFLAG;
                goto out;
            }
        }
        /* strtod alone would also take "inf", "nan", hex floats and
         * leading blanks; only plain decimal notation is a resource amount. */
        char *end = NULL;
        double v = res_is_decimal_text(val) ? strtod(val, &end) : NAN;
        res_amount_t fixed = 0;
        if (!end || *end != '\0' || res_amount_from_double(v, &fixed) < 0) {
            snprintf(err, err_len, "bad value \"%.40s\" for resource \"%.80s\" (expected a number 0..%lld)", val,
                     name, (long long)(RES_AMOUNT_MAX / RES_UNIT));
            rc = CR_EBADFLAG;
            goto out;
        }
        names[i] = tok[2 * i];
        values[i] = v;
    }
    /* Duplicates would silently overwrite each other; refuse them. */
    char **sorted = xcalloc(npairs, sizeof *sorted);
    memcpy(sorted, names, npairs * sizeof *sorted);
    qsort(sorted, npairs, sizeof *sorted, res_cmp_str_ptr);
    for (size_t i = 1; i < npairs; i++) {
        if (strcmp(sorted[i - 1], sorted[i]) == 0) {
            snprintf(err, err_len, "resource \"%.80s\" given twice", sorted[i]);
            rc = CR_EBADFLAG;
            break;
        }
    }
    free(sorted);
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < npairs; i++) {
        res_amount_t fixed = 0;
        res_amount_from_double(values[i], &fixed);
        if (fixed == 0)
            continue;
        rc = cb(ctx, names[i], values[i]);
        if (rc < 0)
            break;
    }
out:
    free(values);
    free(names);
    free(tok);
    free(buf);
    return rc;
}
