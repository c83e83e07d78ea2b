/* GPU gang placement (see gpu_gang.h). */
#include "raylet/sched/gpu_gang.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"

#define GANG_GPU_RESOURCE "GPU"

/* One bundle's GPUs, with the score of the gang it was chosen in. */
typedef struct gang_entry {
    uint8_t pg[ID_PG_SIZE];
    int32_t index;
    uint8_t ids[GPU_TOPO_MAX_GPUS];
    size_t n;
    uint64_t gang_mask; /* every GPU of its gang */
    uint32_t links, best_links;
    bool all_nvlink;
} gang_entry_t;

struct gpu_gang {
    gpu_topo_t topo;
    res_node_t *res;
    gpu_pack_mode_t mode;
    char *record_path;
    gang_entry_t *items;
    size_t count, cap;
};

const gpu_topo_t *gpu_gang_topo(const gpu_gang_t *g) { return &g->topo; }
gpu_pack_mode_t gpu_gang_mode(const gpu_gang_t *g) { return g->mode; }

/* Fully free GPUs (as a mask over the graph's GPUs) in a resource view. */
static uint64_t gang_free_mask(const gpu_gang_t *g, const res_entry_t *e)
{
    uint64_t mask = 0;
    for (size_t i = 0; e && i < e->instance_count && i < g->topo.n; i++)
        if (e->instance_available[i] == RES_UNIT && e->instance_total[i] == RES_UNIT)
            mask |= (uint64_t)1 << i;
    return mask;
}

static bool gang_find_gpu_entry(const gpu_gang_t *g, res_entry_t *out)
{
    size_t n = res_node_count(g->res);
    for (size_t i = 0; i < n; i++) {
        res_node_entry_at(g->res, i, out);
        if (strcmp(out->name, GANG_GPU_RESOURCE) == 0)
            return true;
    }
    return false;
}

static void gang_order_result(const gpu_pack_result_t *r, uint32_t *ids)
{
    for (size_t i = 0; i < r->count; i++)
        ids[i] = r->ids[i];
}

int gpu_gang_plan(gpu_gang_t *g, const uint32_t *counts, size_t n, uint32_t *ids, gpu_pack_result_t *result)
{
    res_entry_t e;
    uint64_t free_mask = gang_find_gpu_entry(g, &e) ? gang_free_mask(g, &e) : 0;
    gpu_pack_result_t local;
    gpu_pack_result_t *r = result ? result : &local;
    int rc = gpu_pack_choose(&g->topo, free_mask, counts, n, g->mode, r);
    if (rc == 0)
        gang_order_result(r, ids);
    return rc;
}

/* The picker for plain GPU leases: a gang of one bundle.  In strict mode a
 * lease outside a placement group is never refused here: strictness is a
 * promise about gangs, and a lone task may still run. */
static size_t gang_pick(void *ctx, const res_entry_t *resource, size_t want, uint32_t *ids)
{
    gpu_gang_t *g = ctx;
    uint32_t count = (uint32_t)want;
    gpu_pack_result_t r;
    gpu_pack_mode_t mode = g->mode == GPU_PACK_STRICT ? GPU_PACK_PREFER : g->mode;
    if (gpu_pack_choose(&g->topo, gang_free_mask(g, resource), &count, 1, mode, &r) != 0)
        return 0;
    gang_order_result(&r, ids);
    return r.count;
}

static void gang_mask_text(const gpu_gang_t *g, const uint8_t *ids, size_t n, char *gpus, size_t glen, char *pairs,
                           size_t plen)
{
    size_t gu = 0, pu = 0;
    gpus[0] = pairs[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(gpus + gu, glen > gu ? glen - gu : 0, "%s%u", i ? "," : "", ids[i]);
        gu += w > 0 ? (size_t)w : 0;
        if (gu >= glen)
            gu = glen - 1;
        for (size_t j = i + 1; j < n; j++) {
            unsigned links = g->topo.nvlinks[ids[i]][ids[j]];
            if (!links)
                continue;
            w = snprintf(pairs + pu, plen > pu ? plen - pu : 0, "%s%u-%u:NV%u", pu ? "," : "", ids[i], ids[j],
                         links);
            pu += w > 0 ? (size_t)w : 0;
            if (pu >= plen)
                pu = plen - 1;
        }
    }
    if (!pairs[0])
        snprintf(pairs, plen, "none");
}

static size_t gang_members(uint64_t mask, uint8_t *ids)
{
    size_t n = 0;
    for (unsigned i = 0; i < GPU_TOPO_MAX_GPUS; i++)
        if (mask >> i & 1)
            ids[n++] = (uint8_t)i;
    return n;
}

size_t gpu_gang_count(const gpu_gang_t *g) { return g ? g->count : 0; }

void gpu_gang_at(const gpu_gang_t *g, size_t i, gpu_gang_info_t *out)
{
    const gang_entry_t *x = &g->items[i];
    memcpy(out->pg, x->pg, ID_PG_SIZE);
    out->index = x->index;
    out->links = x->links;
    out->best_links = x->best_links;
    out->all_nvlink = x->all_nvlink;
}

size_t gpu_gang_format(const gpu_gang_t *g, char *buf, size_t len)
{
    size_t used = 0;
    if (len)
        buf[0] = '\0';
    for (size_t i = 0; i < g->count; i++) {
        const gang_entry_t *x = &g->items[i];
        char hex[ID_HEX_BUF], gpus[256], gang[256], pairs[1024], unused[8];
        id_to_hex(x->pg, ID_PG_SIZE, hex);
        gang_mask_text(g, x->ids, x->n, gpus, sizeof gpus, unused, sizeof unused);
        uint8_t members[GPU_TOPO_MAX_GPUS];
        size_t m = gang_members(x->gang_mask, members);
        gang_mask_text(g, members, m, gang, sizeof gang, pairs, sizeof pairs);
        size_t room = used < len ? len - used : 0;
        int w = snprintf(room ? buf + used : NULL, room,
                         "placement_group=%s bundle=%d gpus=%s gang=%s nvlink_pairs=%s gang_nvlinks=%u "
                         "best_nvlinks=%u all_nvlink=%s mode=%s\n",
                         hex, (int)x->index, gpus, gang, pairs, x->links, x->best_links,
                         x->all_nvlink ? "yes" : "no", gpu_pack_mode_name(g->mode));
        if (w > 0)
            used += (size_t)w;
    }
    return used;
}

/* Rewrite the record file whole (write a temporary, rename over), so a
 * reader never sees half of it. */
static void gang_record(gpu_gang_t *g)
{
    if (!g->record_path)
        return;
    size_t want = gpu_gang_format(g, NULL, 0) + 1;
    char *text = xmalloc(want);
    size_t len = gpu_gang_format(g, text, want);
    size_t plen = strlen(g->record_path) + 8;
    char *tmp = xmalloc(plen);
    snprintf(tmp, plen, "%s.tmp", g->record_path);
    FILE *f = fopen(tmp, "we");
    bool ok = f && fwrite(text, 1, len, f) == len;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok || rename(tmp, g->record_path) != 0) {
        log_warn("cannot write the GPU gang record %s", g->record_path);
        unlink(tmp);
    }
    free(tmp);
    free(text);
}

void gpu_gang_note(gpu_gang_t *g, const uint8_t pg[ID_PG_SIZE], const int32_t *indexes, const uint32_t *counts,
                   size_t n, const uint32_t *ids, const gpu_pack_result_t *result)
{
    /* The best any gang of this size could have had at this moment: the
     * chosen set when the search was exhaustive, else an exhaustive answer
     * if it is cheap enough to find. */
    uint32_t best = result->score.links;
    if (!result->exact) {
        res_entry_t e;
        gpu_pack_score_t opt;
        uint64_t free_mask = (gang_find_gpu_entry(g, &e) ? gang_free_mask(g, &e) : 0) | result->mask;
        if (g->topo.n <= 16 && gpu_pack_optimum(&g->topo, free_mask, result->count, &opt, NULL))
            best = opt.links > best ? opt.links : best;
    }
    size_t off = 0;
    char hex[ID_HEX_BUF];
    id_to_hex(pg, ID_PG_SIZE, hex);
    for (size_t b = 0; b < n; b++) {
        if (counts[b] == 0)
            continue;
        if (g->count == g->cap) {
            g->cap = g->cap ? g->cap * 2 : 16;
            g->items = xrealloc(g->items, g->cap * sizeof *g->items);
        }
        gang_entry_t *x = &g->items[g->count++];
        memset(x, 0, sizeof *x);
        memcpy(x->pg, pg, ID_PG_SIZE);
        x->index = indexes[b];
        x->n = counts[b];
        for (size_t i = 0; i < counts[b]; i++)
            x->ids[i] = (uint8_t)ids[off + i];
        off += counts[b];
        x->gang_mask = result->mask;
        x->links = result->score.links;
        x->best_links = best;
        x->all_nvlink = result->all_nvlink;
        char gpus[256], unused[8];
        gang_mask_text(g, x->ids, x->n, gpus, sizeof gpus, unused, sizeof unused);
        log_info("placement group %s bundle %d: GPU %s", hex, (int)x->index, gpus);
    }
    uint8_t members[GPU_TOPO_MAX_GPUS];
    size_t m = gang_members(result->mask, members);
    char gang[256], pairs[1024];
    gang_mask_text(g, members, m, gang, sizeof gang, pairs, sizeof pairs);
    log_info("placement group %s: gang of %zu GPUs %s (NVLink pairs %s) scores %u of a best %u NVLinks%s, "
             "packing %s",
             hex, m, gang, pairs, result->score.links, best, result->all_nvlink ? ", all NVLink" : "",
             gpu_pack_mode_name(g->mode));
    gang_record(g);
}

void gpu_gang_forget(gpu_gang_t *g, const uint8_t pg[ID_PG_SIZE], int32_t index)
{
    for (size_t i = 0; i < g->count; i++) {
        if (g->items[i].index == index && memcmp(g->items[i].pg, pg, ID_PG_SIZE) == 0) {
            g->items[i] = g->items[--g->count];
            gang_record(g);
            return;
        }
    }
}

bool gpu_gang_cpus(const gpu_gang_t *g, const uint32_t *ids, size_t n, const gpu_cpuset_t *allowed,
                   gpu_cpuset_t *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= g->topo.n)
            continue;
        for (size_t w = 0; w < GPU_TOPO_MAX_CPUS / 64; w++)
            out->bits[w] |= g->topo.gpu[ids[i]].cpus.bits[w];
    }
    for (size_t w = 0; w < GPU_TOPO_MAX_CPUS / 64; w++)
        out->bits[w] &= allowed->bits[w];
    return gpu_cpuset_count(out) > 0;
}

int gpu_gang_numa_node(const gpu_gang_t *g, const uint32_t *ids, size_t n)
{
    int node = -1;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= g->topo.n || g->topo.gpu[ids[i]].numa_node < 0)
            return -1;
        int here = g->topo.gpu[ids[i]].numa_node;
        if (node >= 0 && here != node)
            return -1;
        node = here;
    }
    return node;
}

gpu_gang_t *gpu_gang_create(const gpu_topo_t *topo, res_node_t *res, const gpu_gang_options_t *opts)
{
    gpu_gang_t *g = xcalloc(1, sizeof *g);
    g->topo = *topo;
    g->res = res;
    g->mode = opts->mode;
    g->record_path = opts->record_path ? xstrdup(opts->record_path) : NULL;
    res_node_set_picker(res, GANG_GPU_RESOURCE, gang_pick, g);
    gang_record(g);
    return g;
}

void gpu_gang_destroy(gpu_gang_t *g)
{
    if (!g)
        return;
    res_node_set_picker(g->res, NULL, NULL, NULL);
    if (g->record_path)
        unlink(g->record_path);
    free(g->record_path);
    free(g->items);
    free(g);
}
