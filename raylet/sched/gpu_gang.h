/* GPU gang placement on this node: the component that owns the GPU graph,
 * asks the packer (gpu_pack.h) which GPUs a placement group's bundles or a
 * plain GPU lease get, and keeps the record of live choices that the logs,
 * debug_state.txt and `craylet topo --session` show.
 *
 * GPU instance i of the resource model is GPU i of the graph (the index
 * CUDA_VISIBLE_DEVICES carries).  All calls are on the loop thread. */
#ifndef CRAYLET_RAYLET_SCHED_GPU_GANG_H
#define CRAYLET_RAYLET_SCHED_GPU_GANG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/id.h"
#include "raylet/sched/gpu_pack.h"
#include "raylet/sched/gpu_topo.h"
#include "raylet/sched/resources.h"

/* The file, under the session's log directory, holding the live gangs. */
#define GPU_GANG_RECORD_FILE "craylet_gpu_gangs.txt"

typedef struct gpu_gang gpu_gang_t;

typedef struct gpu_gang_options {
    gpu_pack_mode_t mode;
    const char *record_path; /* rewritten on every change; NULL for none (copied) */
} gpu_gang_options_t;

/* `topo` is copied.  The packer is used for the resource "GPU" of `res`
 * (installed as its picker for plain leases); `res` must outlive the gang. */
gpu_gang_t *gpu_gang_create(const gpu_topo_t *topo, res_node_t *res, const gpu_gang_options_t *opts);
/* Removes the picker and the record file. */
void gpu_gang_destroy(gpu_gang_t *g);

const gpu_topo_t *gpu_gang_topo(const gpu_gang_t *g);
gpu_pack_mode_t gpu_gang_mode(const gpu_gang_t *g);

/* Choose the GPUs of a gang of bundles needing counts[i] whole GPUs each:
 * ids receives them bundle after bundle (sum of counts entries).  0,
 * -EAGAIN (not enough free now), or -ENOSPC (strict mode: no all-NVLink
 * set here); *result, if given, has the gang's score. */
int gpu_gang_plan(gpu_gang_t *g, const uint32_t *counts, size_t n, uint32_t *ids, gpu_pack_result_t *result);

/* A gang was reserved: bundle indexes[i] of placement group `pg` holds
 * ids[off_i .. off_i+counts[i]).  Logged once and recorded. */
void gpu_gang_note(gpu_gang_t *g, const uint8_t pg[ID_PG_SIZE], const int32_t *indexes, const uint32_t *counts,
                   size_t n, const uint32_t *ids, const gpu_pack_result_t *result);
/* A bundle's reservation was given back. */
void gpu_gang_forget(gpu_gang_t *g, const uint8_t pg[ID_PG_SIZE], int32_t index);

/* The cores nearest the given GPUs (their union), intersected with
 * `allowed`; false when none are known or none are allowed. */
bool gpu_gang_cpus(const gpu_gang_t *g, const uint32_t *ids, size_t n, const gpu_cpuset_t *allowed,
                   gpu_cpuset_t *out);

/* The NUMA node all the given GPUs sit on, or -1 (unknown for one of
 * them, or spread over several nodes: no single node is nearer). */
int gpu_gang_numa_node(const gpu_gang_t *g, const uint32_t *ids, size_t n);

/* One live bundle reservation, for metrics: its gang's NVLinks and the
 * most any choice of as many free GPUs could have had. */
typedef struct gpu_gang_info {
    uint8_t pg[ID_PG_SIZE];
    int32_t index;
    uint32_t links, best_links;
    bool all_nvlink;
} gpu_gang_info_t;
size_t gpu_gang_count(const gpu_gang_t *g);
void gpu_gang_at(const gpu_gang_t *g, size_t i, gpu_gang_info_t *out);

/* The live gangs as text (for debug_state.txt and the record file);
 * returns the length it needed, as snprintf does. */
size_t gpu_gang_format(const gpu_gang_t *g, char *buf, size_t len);

#endif
