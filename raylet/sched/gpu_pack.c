/* Gang packing (see gpu_pack.h).
 *
 * Sets of GPUs are 64-bit masks.  For the bounded search each free GPU g
 * carries inL[g] and inP[g], its NVLinks and PCIe closeness to the current
 * set S, and degF[g], its NVLinks to every free GPU; then
 *   links(S) = 1/2 sum inL,  pcie(S) = 1/2 sum inP,
 *   cut(S)   = sum_{g in S} degF[g] - 2 links(S),
 * so adding, removing or swapping one GPU is scored in O(1). */
#include "raylet/sched/gpu_pack.h"

#include <errno.h>
#include <string.h>

int gpu_pack_mode_parse(const char *text, gpu_pack_mode_t *out)
{
    if (!text || strcmp(text, "prefer") == 0 || strcmp(text, "") == 0)
        *out = GPU_PACK_PREFER;
    else if (strcmp(text, "strict") == 0)
        *out = GPU_PACK_STRICT;
    else if (strcmp(text, "off") == 0)
        *out = GPU_PACK_OFF;
    else
        return -1;
    return 0;
}

const char *gpu_pack_mode_name(gpu_pack_mode_t mode)
{
    switch (mode) {
    case GPU_PACK_OFF: return "off";
    case GPU_PACK_STRICT: return "strict";
    default: return "prefer";
    }
}

bool gpu_pack_better(const gpu_pack_score_t *a, const gpu_pack_score_t *b)
{
    if (a->links != b->links)
        return a->links > b->links;
    if (a->pcie != b->pcie)
        return a->pcie > b->pcie;
    return a->cut < b->cut;
}

/* PCIe closeness of a pair without NVLink; pairs with NVLink count 0 here
 * (their worth is in links). */
static inline uint32_t pack_pcie(const gpu_topo_t *t, unsigned a, unsigned b)
{
    return t->nvlinks[a][b] ? 0 : t->path[a][b];
}

gpu_pack_score_t gpu_pack_score(const gpu_topo_t *t, uint64_t set, uint64_t free_mask)
{
    gpu_pack_score_t s = {0, 0, 0};
    for (unsigned a = 0; a < t->n; a++) {
        if (!(set >> a & 1))
            continue;
        for (unsigned b = 0; b < t->n; b++) {
            if (b == a)
                continue;
            if (set >> b & 1) {
                if (b > a) {
                    s.links += t->nvlinks[a][b];
                    s.pcie += pack_pcie(t, a, b);
                }
            } else if (free_mask >> b & 1) {
                s.cut += t->nvlinks[a][b];
            }
        }
    }
    return s;
}

static uint64_t pack_choose_count(size_t n, size_t k)
{
    if (k > n)
        return 0;
    if (k > n - k)
        k = n - k;
    uint64_t c = 1;
    for (size_t i = 1; i <= k; i++) {
        c = c * (n - k + i) / i;
        if (c > ((uint64_t)1 << 40))
            return c; /* large enough to mean "too many" */
    }
    return c;
}

/* The score of `set` from the pairs inside it only: O(k^2) with each free
 * GPU's NVLinks to all free GPUs (degF) precomputed. */
static gpu_pack_score_t pack_score_fast(const gpu_topo_t *t, uint64_t set, const uint32_t *degF)
{
    gpu_pack_score_t s = {0, 0, 0};
    uint32_t deg = 0;
    for (uint64_t m = set; m; m &= m - 1) {
        unsigned a = (unsigned)__builtin_ctzll(m);
        deg += degF[a];
        for (uint64_t r = m & (m - 1); r; r &= r - 1) {
            unsigned b = (unsigned)__builtin_ctzll(r);
            s.links += t->nvlinks[a][b];
            s.pcie += pack_pcie(t, a, b);
        }
    }
    s.cut = deg - 2 * s.links;
    return s;
}

/* Every k-subset of the free GPUs (listed in pos[0..f)), in increasing
 * order of their position bitmask, keeping the first best. */
static void pack_exact(const gpu_topo_t *t, const unsigned *pos, size_t f, size_t k, uint64_t free_mask,
                       uint64_t *best_set, gpu_pack_score_t *best)
{
    bool have = false;
    uint32_t degF[GPU_TOPO_MAX_GPUS] = {0};
    for (size_t i = 0; i < f; i++)
        for (size_t j = 0; j < f; j++)
            degF[pos[i]] += t->nvlinks[pos[i]][pos[j]];
    if (k == 0) {
        *best_set = 0;
        *best = (gpu_pack_score_t){0, 0, 0};
        return;
    }
    uint64_t comb = ((uint64_t)1 << k) - 1;
    const uint64_t limit = f == 64 ? 0 : (uint64_t)1 << f;
    for (;;) {
        uint64_t set = 0;
        for (uint64_t c = comb; c; c &= c - 1)
            set |= (uint64_t)1 << pos[__builtin_ctzll(c)];
        gpu_pack_score_t s = pack_score_fast(t, set, degF);
        if (!have || gpu_pack_better(&s, best)) {
            *best = s;
            *best_set = set;
            have = true;
        }
        /* Gosper's hack: the next larger mask with k bits set. */
        uint64_t low = comb & -comb;
        uint64_t ripple = comb + low;
        if (ripple == 0)
            break;
        comb = (((ripple ^ comb) >> 2) / low) | ripple;
        if (limit && comb >= limit)
            break;
    }
}

typedef struct pack_state {
    const gpu_topo_t *t;
    uint64_t free_mask, set; /* only free GPUs' inL/inP are kept */
    uint32_t inL[GPU_TOPO_MAX_GPUS], inP[GPU_TOPO_MAX_GPUS], degF[GPU_TOPO_MAX_GPUS];
    gpu_pack_score_t score;
    uint32_t degsum;
} pack_state_t;

static void pack_state_reset(pack_state_t *st)
{
    st->set = 0;
    st->score = (gpu_pack_score_t){0, 0, 0};
    st->degsum = 0;
    memset(st->inL, 0, sizeof st->inL);
    memset(st->inP, 0, sizeof st->inP);
}

static gpu_pack_score_t pack_if_added(const pack_state_t *st, unsigned g)
{
    gpu_pack_score_t s = st->score;
    s.links += st->inL[g];
    s.pcie += st->inP[g];
    s.cut = st->degsum + st->degF[g] - 2 * s.links;
    return s;
}

static void pack_add(pack_state_t *st, unsigned g)
{
    st->score = pack_if_added(st, g);
    st->degsum += st->degF[g];
    st->set |= (uint64_t)1 << g;
    for (uint64_t m = st->free_mask; m; m &= m - 1) {
        unsigned h = (unsigned)__builtin_ctzll(m);
        st->inL[h] += st->t->nvlinks[g][h];
        st->inP[h] += h == g ? 0 : pack_pcie(st->t, g, h);
    }
}

static void pack_remove(pack_state_t *st, unsigned g)
{
    st->set &= ~((uint64_t)1 << g);
    for (uint64_t m = st->free_mask; m; m &= m - 1) {
        unsigned h = (unsigned)__builtin_ctzll(m);
        st->inL[h] -= st->t->nvlinks[g][h];
        st->inP[h] -= h == g ? 0 : pack_pcie(st->t, g, h);
    }
    st->score.links -= st->inL[g];
    st->score.pcie -= st->inP[g];
    st->degsum -= st->degF[g];
    st->score.cut = st->degsum - 2 * st->score.links;
}

/* Score after swapping a (in the set) for b (free, outside it). */
static gpu_pack_score_t pack_if_swapped(const pack_state_t *st, unsigned a, unsigned b)
{
    gpu_pack_score_t s;
    uint32_t lab = st->t->nvlinks[a][b], pab = pack_pcie(st->t, a, b);
    s.links = st->score.links - st->inL[a] + st->inL[b] - lab;
    s.pcie = st->score.pcie - st->inP[a] + st->inP[b] - pab;
    s.cut = st->degsum - st->degF[a] + st->degF[b] - 2 * s.links;
    return s;
}

/* Swap one GPU of the set for a free one while that improves the score
 * (first improvement, bounded rounds). */
static void pack_descend(pack_state_t *st, const unsigned *pos, size_t f)
{
    for (int round = 0; round < 64; round++) {
        bool improved = false;
        for (size_t i = 0; i < f && !improved; i++) {
            unsigned a = pos[i];
            if (!(st->set >> a & 1))
                continue;
            for (size_t j = 0; j < f; j++) {
                unsigned b = pos[j];
                if (st->set >> b & 1)
                    continue;
                gpu_pack_score_t s = pack_if_swapped(st, a, b);
                if (gpu_pack_better(&s, &st->score)) {
                    pack_remove(st, a);
                    pack_add(st, b);
                    improved = true;
                    break;
                }
            }
        }
        if (!improved)
            return;
    }
}

/* From a local optimum, try every single swap, even a worsening one, and
 * descend from there: escapes the optima one swap cannot leave.  Costs
 * O((k(f-k))^2), so only where k(f-k) is small (16-GPU nodes). */
#define PACK_LOOKAHEAD_MAX_SWAPS 64
static void pack_lookahead(pack_state_t *st, const unsigned *pos, size_t f)
{
    bool improved = true;
    for (int round = 0; improved && round < 4; round++) {
        improved = false;
        pack_state_t base = *st;
        for (size_t i = 0; i < f && !improved; i++) {
            unsigned a = pos[i];
            if (!(base.set >> a & 1))
                continue;
            for (size_t j = 0; j < f && !improved; j++) {
                unsigned b = pos[j];
                if (base.set >> b & 1)
                    continue;
                pack_state_t trial = base;
                pack_remove(&trial, a);
                pack_add(&trial, b);
                pack_descend(&trial, pos, f);
                if (gpu_pack_better(&trial.score, &st->score)) {
                    *st = trial;
                    improved = true;
                }
            }
        }
    }
}

/* Greedy growth from every free GPU, then swaps while they improve. */
static void pack_from_set(pack_state_t *st, const unsigned *pos, size_t f, uint64_t set)
{
    pack_state_reset(st);
    for (size_t i = 0; i < f; i++)
        if (set >> pos[i] & 1)
            pack_add(st, pos[i]);
}

/* Keep the PACK_KEEP best distinct sets seen, best first. */
#define PACK_KEEP 3
typedef struct pack_top {
    uint64_t set[PACK_KEEP];
    gpu_pack_score_t score[PACK_KEEP];
    size_t n;
} pack_top_t;

static void pack_top_offer(pack_top_t *top, uint64_t set, const gpu_pack_score_t *score)
{
    for (size_t i = 0; i < top->n; i++)
        if (top->set[i] == set)
            return;
    size_t at = top->n;
    while (at > 0 && gpu_pack_better(score, &top->score[at - 1]))
        at--;
    if (at >= PACK_KEEP)
        return;
    size_t last = top->n < PACK_KEEP ? top->n : PACK_KEEP - 1;
    for (size_t i = last; i > at; i--) {
        top->set[i] = top->set[i - 1];
        top->score[i] = top->score[i - 1];
    }
    top->set[at] = set;
    top->score[at] = *score;
    if (top->n < PACK_KEEP)
        top->n++;
}

/* Greedy growth from every free GPU; the few best results are improved by
 * swaps, and on small nodes the best by one swap of look-ahead. */
static void pack_bounded(const gpu_topo_t *t, const unsigned *pos, size_t f, size_t k, uint64_t free_mask,
                         uint64_t *best_set, gpu_pack_score_t *best)
{
    pack_state_t st;
    st.t = t;
    st.free_mask = free_mask;
    for (size_t i = 0; i < f; i++) {
        unsigned g = pos[i];
        st.degF[g] = 0;
        for (size_t j = 0; j < f; j++)
            st.degF[g] += t->nvlinks[g][pos[j]];
    }
    pack_top_t top = {.n = 0};
    for (size_t seed = 0; seed < f; seed++) {
        pack_state_reset(&st);
        pack_add(&st, pos[seed]);
        while ((size_t)__builtin_popcountll(st.set) < k) {
            int pick = -1;
            gpu_pack_score_t ps = {0, 0, 0};
            for (size_t i = 0; i < f; i++) {
                unsigned g = pos[i];
                if (st.set >> g & 1)
                    continue;
                gpu_pack_score_t s = pack_if_added(&st, g);
                if (pick < 0 || gpu_pack_better(&s, &ps)) {
                    pick = (int)g;
                    ps = s;
                }
            }
            pack_add(&st, (unsigned)pick);
        }
        pack_top_offer(&top, st.set, &st.score);
    }
    bool have = false;
    for (size_t i = 0; i < top.n; i++) {
        pack_from_set(&st, pos, f, top.set[i]);
        pack_descend(&st, pos, f);
        if (!have || gpu_pack_better(&st.score, best) ||
            (!gpu_pack_better(best, &st.score) && st.set < *best_set)) {
            *best = st.score;
            *best_set = st.set;
            have = true;
        }
    }
    if (k * (f - k) <= PACK_LOOKAHEAD_MAX_SWAPS) {
        pack_from_set(&st, pos, f, *best_set);
        pack_lookahead(&st, pos, f);
        *best = st.score;
        *best_set = st.set;
    }
}

/* Weight of the edge a-b for ordering: NVLinks first, PCIe closeness next. */
static inline uint32_t pack_edge(const gpu_topo_t *t, unsigned a, unsigned b)
{
    return (uint32_t)t->nvlinks[a][b] * 16 + (t->nvlinks[a][b] ? GPU_PATH_NVLINK : t->path[a][b]);
}

/* Order the k GPUs of g[] along a heaviest path: exactly by dynamic
 * programming over subsets for small gangs, greedily beyond. */
#define PACK_PATH_EXACT 7
static void pack_path(const gpu_topo_t *t, uint8_t *g, size_t k)
{
    if (k < 3)
        return;
    uint8_t out[GPU_TOPO_MAX_GPUS];
    if (k <= PACK_PATH_EXACT) {
        /* best[mask][end]: heaviest path over mask ending at end. */
        static _Thread_local int32_t best[1 << PACK_PATH_EXACT][PACK_PATH_EXACT];
        static _Thread_local int8_t prev[1 << PACK_PATH_EXACT][PACK_PATH_EXACT];
        size_t full = ((size_t)1 << k) - 1;
        for (size_t m = 1; m <= full; m++)
            for (size_t e = 0; e < k; e++)
                best[m][e] = -1;
        for (size_t e = 0; e < k; e++) {
            best[(size_t)1 << e][e] = 0;
            prev[(size_t)1 << e][e] = -1;
        }
        for (size_t m = 1; m <= full; m++) {
            for (size_t e = 0; e < k; e++) {
                if (best[m][e] < 0)
                    continue;
                for (size_t x = 0; x < k; x++) {
                    if (m >> x & 1)
                        continue;
                    size_t nm = m | (size_t)1 << x;
                    int32_t v = best[m][e] + (int32_t)pack_edge(t, g[e], g[x]);
                    if (v > best[nm][x]) {
                        best[nm][x] = v;
                        prev[nm][x] = (int8_t)e;
                    }
                }
            }
        }
        size_t end = 0;
        for (size_t e = 1; e < k; e++)
            if (best[full][e] > best[full][end])
                end = e;
        size_t m = full;
        for (size_t i = k; i-- > 0;) {
            out[i] = g[end];
            int8_t p = prev[m][end];
            m &= ~((size_t)1 << end);
            end = p < 0 ? 0 : (size_t)p;
        }
    } else {
        /* Nearest neighbour from the lowest id. */
        bool used[GPU_TOPO_MAX_GPUS] = {false};
        size_t cur = 0;
        used[0] = true;
        out[0] = g[0];
        for (size_t i = 1; i < k; i++) {
            size_t pick = SIZE_MAX;
            for (size_t x = 0; x < k; x++)
                if (!used[x] && (pick == SIZE_MAX || pack_edge(t, g[cur], g[x]) > pack_edge(t, g[cur], g[pick])))
                    pick = x;
            used[pick] = true;
            out[i] = g[pick];
            cur = pick;
        }
    }
    memcpy(g, out, k);
}

/* Links and PCIe closeness inside each bundle's slice, as one number. */
static uint64_t pack_intra(const gpu_topo_t *t, const uint8_t *g, const uint32_t *counts, size_t nb)
{
    uint64_t links = 0, pcie = 0;
    size_t off = 0;
    for (size_t b = 0; b < nb; b++) {
        for (size_t i = off; i < off + counts[b]; i++)
            for (size_t j = i + 1; j < off + counts[b]; j++) {
                links += t->nvlinks[g[i]][g[j]];
                pcie += pack_pcie(t, g[i], g[j]);
            }
        off += counts[b];
    }
    return links << 32 | pcie;
}

/* Cut the ordered path into bundles: every rotation and both directions of
 * the path read as a ring, keeping the one whose bundles hold the most
 * links inside them. */
static void pack_split(const gpu_topo_t *t, uint8_t *g, size_t k, const uint32_t *counts, size_t nb)
{
    bool multi = false;
    for (size_t b = 0; b < nb; b++)
        multi |= counts[b] > 1;
    if (!multi || k < 3)
        return;
    uint8_t best[GPU_TOPO_MAX_GPUS], cand[GPU_TOPO_MAX_GPUS];
    memcpy(best, g, k);
    uint64_t best_v = pack_intra(t, g, counts, nb);
    for (int dir = 0; dir < 2; dir++) {
        for (size_t r = 0; r < k; r++) {
            for (size_t i = 0; i < k; i++)
                cand[i] = dir == 0 ? g[(r + i) % k] : g[(r + k - i) % k];
            uint64_t v = pack_intra(t, cand, counts, nb);
            if (v > best_v) {
                best_v = v;
                memcpy(best, cand, k);
            }
        }
    }
    memcpy(g, best, k);
}

/* The free GPUs, in id order: pos[0..return). */
static size_t pack_free_positions(const gpu_topo_t *t, uint64_t free_mask, unsigned *pos)
{
    size_t f = 0;
    for (unsigned g = 0; g < t->n; g++)
        if (free_mask >> g & 1)
            pos[f++] = g;
    return f;
}

/* The GPUs of `set` in id order into ids. */
static void pack_ids_of(const gpu_topo_t *t, uint64_t set, uint8_t *ids)
{
    size_t i = 0;
    for (unsigned g = 0; g < t->n; g++)
        if (set >> g & 1)
            ids[i++] = (uint8_t)g;
}

int gpu_pack_choose(const gpu_topo_t *t, uint64_t free_mask, const uint32_t *bundle_gpus, size_t nbundles,
                    gpu_pack_mode_t mode, gpu_pack_result_t *out)
{
    memset(out, 0, sizeof *out);
    if (nbundles > GPU_PACK_MAX_BUNDLES)
        return -EINVAL;
    if (t->n < 64)
        free_mask &= ((uint64_t)1 << t->n) - 1;
    size_t k = 0;
    for (size_t b = 0; b < nbundles; b++) {
        if (bundle_gpus[b] > GPU_TOPO_MAX_GPUS)
            return -EAGAIN;
        k += bundle_gpus[b];
    }
    unsigned pos[GPU_TOPO_MAX_GPUS];
    size_t f = pack_free_positions(t, free_mask, pos);
    if (k > f)
        return -EAGAIN;
    uint64_t set = 0;
    if (mode == GPU_PACK_OFF) {
        for (size_t i = 0; i < k; i++)
            set |= (uint64_t)1 << pos[i];
        out->score = gpu_pack_score(t, set, free_mask);
        out->exact = false;
        pack_ids_of(t, set, out->ids);
    } else {
        gpu_pack_score_t score;
        if (pack_choose_count(f, k) <= GPU_PACK_EXACT_LIMIT) {
            pack_exact(t, pos, f, k, free_mask, &set, &score);
            out->exact = true;
        } else {
            pack_bounded(t, pos, f, k, free_mask, &set, &score);
        }
        out->score = score;
        pack_ids_of(t, set, out->ids);
        pack_path(t, out->ids, k);
        pack_split(t, out->ids, k, bundle_gpus, nbundles);
    }
    out->count = k;
    out->mask = set;
    out->all_nvlink = gpu_topo_all_nvlink(t, set);
    if (mode == GPU_PACK_STRICT && !out->all_nvlink) {
        memset(out, 0, sizeof *out);
        return -ENOSPC;
    }
    return 0;
}

bool gpu_pack_optimum(const gpu_topo_t *t, uint64_t free_mask, size_t k, gpu_pack_score_t *best, uint64_t *set)
{
    unsigned pos[GPU_TOPO_MAX_GPUS];
    size_t f = pack_free_positions(t, free_mask, pos);
    if (k > f)
        return false;
    uint64_t s = 0;
    pack_exact(t, pos, f, k, free_mask, &s, best);
    if (set)
        *set = s;
    return true;
}
