/* Gang packing: which GPUs a gang of bundles gets on this node.
 *
 * A pure function of the GPU graph, the free GPUs and the bundles' GPU
 * counts; no state, no I/O, no allocation, so it is unit-tested against an
 * exhaustive search and replayed by benchmarks/packing.
 *
 * A gang's GPUs are chosen together, by this order of preference:
 *   1. the most NVLink bandwidth inside the gang: bonded links summed over
 *      every pair of its GPUs;
 *   2. the shortest PCIe paths between its pairs without NVLink;
 *   3. best fit: the fewest NVLinks from the gang to GPUs left free, so the
 *      free GPUs stay as well connected as they can for the next gang (on
 *      an NVSwitch board every set ties on 1 and 2, and this decides);
 *   4. the lowest GPU ids.
 * Up to GPU_PACK_EXACT_LIMIT candidate sets are searched exhaustively (every
 * gang on an 8-GPU node); beyond that a greedy growth from every free GPU
 * followed by pairwise-swap improvement bounds the work (64 GPUs well under
 * a millisecond).  The chosen GPUs are then ordered along the gang's best
 * NVLink path and cut into bundles, so a multi-GPU bundle's GPUs are NVLink
 * neighbours and consecutive bundles (ranks) sit next to each other. */
#ifndef CRAYLET_RAYLET_SCHED_GPU_PACK_H
#define CRAYLET_RAYLET_SCHED_GPU_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raylet/sched/gpu_topo.h"

#define GPU_PACK_EXACT_LIMIT 2000
#define GPU_PACK_MAX_BUNDLES GPU_TOPO_MAX_GPUS

typedef enum gpu_pack_mode {
    GPU_PACK_OFF,    /* stock Ray: the lowest free ids */
    GPU_PACK_PREFER, /* the best set there is */
    GPU_PACK_STRICT, /* the best set, refused unless every pair has NVLink */
} gpu_pack_mode_t;

/* Parse "off" | "prefer" | "strict"; -1 for anything else. */
int gpu_pack_mode_parse(const char *text, gpu_pack_mode_t *out);
const char *gpu_pack_mode_name(gpu_pack_mode_t mode);

typedef struct gpu_pack_score {
    uint32_t links; /* bonded NVLinks summed over the gang's pairs */
    uint32_t pcie;  /* PCIe closeness (gpu_path_t) summed over pairs without NVLink */
    uint32_t cut;   /* NVLinks from the gang to GPUs left free */
} gpu_pack_score_t;

/* true if a is strictly better than b by rules 1-3. */
bool gpu_pack_better(const gpu_pack_score_t *a, const gpu_pack_score_t *b);

/* The score of the GPUs in `set` when `free_mask` (a superset) is free. */
gpu_pack_score_t gpu_pack_score(const gpu_topo_t *t, uint64_t set, uint64_t free_mask);

typedef struct gpu_pack_result {
    uint8_t ids[GPU_TOPO_MAX_GPUS]; /* bundle 0's GPUs, then bundle 1's, ... */
    size_t count;                   /* the sum of the bundles' counts */
    uint64_t mask;                  /* the same GPUs as a set */
    gpu_pack_score_t score;
    bool all_nvlink; /* every pair of the gang has NVLink */
    bool exact;      /* found by exhaustive search */
} gpu_pack_result_t;

/* Choose GPUs for `nbundles` bundles needing bundle_gpus[i] whole GPUs each
 * (0 allowed) from the GPUs in free_mask (bits >= t->n ignored).  Returns
 * 0 with *out filled, -EAGAIN if fewer GPUs are free than asked for,
 * -EINVAL for more than GPU_PACK_MAX_BUNDLES bundles, or, in strict mode,
 * -ENOSPC when the best set is not all-NVLink (nothing is chosen then). */
int gpu_pack_choose(const gpu_topo_t *t, uint64_t free_mask, const uint32_t *bundle_gpus, size_t nbundles,
                    gpu_pack_mode_t mode, gpu_pack_result_t *out);

/* The best score any `k` of the free GPUs can reach, by exhaustive search
 * (exponential: for tests and benchmarks, not the daemon).  Returns false
 * when fewer than k are free. */
bool gpu_pack_optimum(const gpu_topo_t *t, uint64_t free_mask, size_t k, gpu_pack_score_t *best, uint64_t *set);

#endif
