/* Replays gang traces against the GPU packer: arrivals and departures of
 * 1-8 GPU gangs on one node, decided by stock Ray's rule (lowest free ids),
 * by craylet's packer, and by exhaustive search; prints one line per
 * policy for benchmarks/packing.py to tabulate.
 *
 *   pack_replay FILE|random:N:SEED [gangs] [seed]
 *
 * Per decision it records the chosen set's NVLink bandwidth (bonded links
 * summed over pairs) as a share of the best set free at that moment, whether
 * every pair has NVLink, the modelled ring all-reduce time of a 1 GB
 * gradient, and the decision time.
 *
 * The all-reduce model: a ring over the gang's GPUs moves 2(k-1)/k of the
 * buffer through its slowest link; the ring is the best over the gang (all
 * orders up to 8 GPUs, greedy beyond).  Link bandwidth per direction:
 * NVLink 25 GB/s per bonded link (NVLink 3/4: 600/900 GB/s bidirectional
 * over 12/18 links, NVIDIA A100/H100 datasheets); PCIe paths, modelled on
 * PCIe 4.0 x16 peer-to-peer: PIX 22, PXB 20, PHB 16, NODE 12, SYS 8 GB/s
 * (across the SMP interconnect the transfer is staged through host memory);
 * unknown 8 GB/s. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raylet/sched/gpu_discover.h"
#include "raylet/sched/gpu_pack.h"

static gpu_topo_t topo;

static double link_gbps(unsigned a, unsigned b)
{
    if (topo.nvlinks[a][b])
        return 25.0 * topo.nvlinks[a][b];
    switch (topo.path[a][b]) {
    case GPU_PATH_PIX: return 22;
    case GPU_PATH_PXB: return 20;
    case GPU_PATH_PHB: return 16;
    case GPU_PATH_NODE: return 12;
    default: return 8;
    }
}

/* Best ring bottleneck over the GPUs g[0..k): exhaustive for k <= 8. */
static double ring_bottleneck(unsigned *g, size_t k, size_t depth, double so_far, double best)
{
    if (depth == k) {
        double close = link_gbps(g[k - 1], g[0]);
        double v = so_far < close ? so_far : close;
        return v > best ? v : best;
    }
    for (size_t i = depth; i < k; i++) {
        unsigned t = g[depth];
        g[depth] = g[i];
        g[i] = t;
        double edge = link_gbps(g[depth - 1], g[depth]);
        double v = so_far < edge ? so_far : edge;
        if (v > best)
            best = ring_bottleneck(g, k, depth + 1, v, best);
        t = g[depth];
        g[depth] = g[i];
        g[i] = t;
    }
    return best;
}

static double allreduce_ms(uint64_t mask)
{
    unsigned g[GPU_TOPO_MAX_GPUS];
    size_t k = 0;
    for (unsigned i = 0; i < topo.n; i++)
        if (mask >> i & 1)
            g[k++] = i;
    if (k < 2)
        return 0;
    double bw;
    if (k <= 8) {
        bw = ring_bottleneck(g, k, 1, 1e18, 0);
    } else {
        /* Greedy: always the fastest next hop. */
        bool used[GPU_TOPO_MAX_GPUS] = {false};
        unsigned cur = g[0];
        used[0] = true;
        bw = 1e18;
        for (size_t s = 1; s < k; s++) {
            size_t pick = 0;
            double pbw = -1;
            for (size_t i = 0; i < k; i++)
                if (!used[i] && link_gbps(cur, g[i]) > pbw) {
                    pbw = link_gbps(cur, g[i]);
                    pick = i;
                }
            used[pick] = true;
            bw = pbw < bw ? pbw : bw;
            cur = g[pick];
        }
        double close = link_gbps(cur, g[0]);
        bw = close < bw ? close : bw;
    }
    double gb = 1.0;
    return 2.0 * (double)(k - 1) / (double)k * gb / bw * 1000.0;
}

static void random_graph(size_t n, unsigned seed)
{
    memset(&topo, 0, sizeof topo);
    topo.n = n;
    srand(seed);
    /* NVLink islands of 4 or 8 with some cross links, PCIe by distance. */
    size_t island = n >= 32 ? 8 : 4;
    for (unsigned a = 0; a < n; a++) {
        topo.path[a][a] = GPU_PATH_SELF;
        for (unsigned b = a + 1; b < n; b++) {
            bool same = a / island == b / island;
            bool cross = !same && rand() % 16 == 0;
            if (same || cross) {
                topo.nvlinks[a][b] = topo.nvlinks[b][a] = (uint8_t)(same ? 2 + rand() % 3 : 1);
                topo.path[a][b] = topo.path[b][a] = GPU_PATH_NVLINK;
            } else {
                gpu_path_t p = a / (n / 2) == b / (n / 2) ? GPU_PATH_NODE : GPU_PATH_SYS;
                topo.path[a][b] = topo.path[b][a] = (uint8_t)p;
            }
        }
    }
}

typedef struct policy_stats {
    double share_sum;
    size_t decisions, multi, all_nvlink, refused;
    double allreduce_sum;
    double *ns;
    size_t ns_count;
} policy_stats_t;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* mode: 0 stock, 1 craylet, 2 exhaustive */
static void replay(int mode, size_t gangs, unsigned seed, policy_stats_t *st)
{
    uint64_t live[512];
    size_t nlive = 0;
    uint64_t all = topo.n == 64 ? ~0ull : (1ull << topo.n) - 1, free_mask = all;
    memset(st, 0, sizeof *st);
    st->ns = calloc(gangs, sizeof *st->ns);
    srand(seed);
    bool exact_opt = topo.n <= 16;
    for (size_t step = 0; step < gangs; step++) {
        /* Leave with probability 1/3, or when the node is nearly full. */
        while (nlive > 0 && (rand() % 3 == 0 || __builtin_popcountll(free_mask) < 2)) {
            size_t i = (size_t)rand() % nlive;
            free_mask |= live[i];
            live[i] = live[--nlive];
        }
        uint32_t want = 1 + (uint32_t)(rand() % 8);
        if (want > (uint32_t)__builtin_popcountll(free_mask)) {
            st->refused++;
            continue;
        }
        gpu_pack_result_t r;
        uint64_t chosen;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (mode == 2) {
            gpu_pack_score_t s;
            gpu_pack_optimum(&topo, free_mask, want, &s, &chosen);
        } else {
            gpu_pack_choose(&topo, free_mask, &want, 1, mode == 0 ? GPU_PACK_OFF : GPU_PACK_PREFER, &r);
            chosen = r.mask;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        st->ns[st->ns_count++] = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
        gpu_pack_score_t got = gpu_pack_score(&topo, chosen, free_mask), best;
        if (exact_opt) {
            gpu_pack_optimum(&topo, free_mask, want, &best, NULL);
        } else {
            /* At 64 GPUs exhaustive search is out of reach: the packer's
             * own answer is the reference. */
            gpu_pack_result_t ref;
            gpu_pack_choose(&topo, free_mask, &want, 1, GPU_PACK_PREFER, &ref);
            best = ref.score;
        }
        st->share_sum += best.links ? (double)got.links / best.links : 1.0;
        st->decisions++;
        if (want >= 2) {
            st->multi++;
            st->all_nvlink += gpu_topo_all_nvlink(&topo, chosen);
            st->allreduce_sum += allreduce_ms(chosen);
        }
        free_mask &= ~chosen;
        if (nlive < 512)
            live[nlive++] = chosen;
    }
    qsort(st->ns, st->ns_count, sizeof *st->ns, cmp_double);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: pack_replay FILE|random:N:SEED [gangs] [seed]\n");
        return 2;
    }
    size_t gangs = argc > 2 ? (size_t)atol(argv[2]) : 2000;
    unsigned seed = argc > 3 ? (unsigned)atoi(argv[3]) : 1;
    unsigned n, gseed;
    if (sscanf(argv[1], "random:%u:%u", &n, &gseed) == 2) {
        if (n < 2 || n > GPU_TOPO_MAX_GPUS)
            return 2;
        random_graph(n, gseed);
    } else {
        char err[512];
        if (gpu_topo_load_file(argv[1], &topo, err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            return 2;
        }
    }
    static const char *names[] = {"stock", "craylet", "optimum"};
    for (int mode = 0; mode < 3; mode++) {
        if (mode == 2 && topo.n > 16)
            continue;
        policy_stats_t st;
        replay(mode, gangs, seed, &st);
        size_t p50 = st.ns_count / 2, p99 = st.ns_count * 99 / 100;
        printf("policy=%s gpus=%zu decisions=%zu share=%.4f all_nvlink=%.4f allreduce_ms=%.2f "
               "decide_p50_us=%.2f decide_p99_us=%.2f\n",
               names[mode], topo.n, st.decisions, st.decisions ? st.share_sum / st.decisions : 0,
               st.multi ? (double)st.all_nvlink / st.multi : 0, st.multi ? st.allreduce_sum / st.multi : 0,
               st.ns_count ? st.ns[p50] / 1000 : 0, st.ns_count ? st.ns[p99 < st.ns_count ? p99 : st.ns_count - 1] / 1000 : 0);
        free(st.ns);
    }
    return 0;
}
