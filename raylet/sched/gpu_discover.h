/* Where the GPU graph comes from: one small table of sources.
 *
 *   file  `CRAYLET_GPU_TOPOLOGY=<file>` in `nvidia-smi topo -m` text; when
 *         set it replaces NVML, so any machine can simulate a GPU server;
 *   nvml  libnvidia-ml.so.1 loaded with dlopen (its few prototypes are
 *         declared in gpu_discover.c; no NVML header is needed to build);
 *   fake  tests hand in their own table.
 * hwloc then fills in the cores nearest each GPU where the source gave
 * none: from the GPU's PCI bus id (NVML), or from its NUMA node (a file
 * with a NUMA Affinity column but no CPU Affinity).
 *
 * Discovery runs once, in main() before the event loop exists, so the
 * seconds NVML can take to initialise never stall a served request. */
#ifndef CRAYLET_RAYLET_SCHED_GPU_DISCOVER_H
#define CRAYLET_RAYLET_SCHED_GPU_DISCOVER_H

#include <stddef.h>

#include "raylet/sched/gpu_topo.h"

typedef struct gpu_discover_ops {
    const char *name;
    /* Fill *out.  0; -ENOENT when the source has nothing to say (no NVML
     * library, no GPUs); another negative code with a one-line reason in
     * err for a source that is there but wrong. */
    int (*discover)(void *ctx, gpu_topo_t *out, char *err, size_t err_len);
    void *ctx;
} gpu_discover_ops_t;

/* The NVML source (ctx unused). */
extern const gpu_discover_ops_t gpu_discover_nvml;

/* Read and parse a topology file (at most 1 MiB).  On failure err reads
 * "<path>:<line>:<column>: <why>" and the result is CR_EBADMSG (or a
 * negative errno when the file cannot be read). */
int gpu_topo_load_file(const char *path, gpu_topo_t *out, char *err, size_t err_len);

/* The GPU graph for a node with `num_gpus` GPUs:
 *   - `file` set: that file, which must describe exactly num_gpus GPUs;
 *     any problem is returned (CR_EBADFLAG or the parse error) with err
 *     set, and the caller stops with exit code 2;
 *   - otherwise `ops` (NVML by default), restricted to the devices named by
 *     `visible` (CUDA_VISIBLE_DEVICES; NULL for all) and to num_gpus of
 *     them; a source with nothing, or fewer GPUs than num_gpus, returns
 *     -ENOENT (no graph: GPUs are handed out as stock Ray does).
 * CPU locality is completed with hwloc.  num_gpus == 0 returns -ENOENT
 * without looking (a file then is an error: it describes GPUs the node
 * was not given). */
int gpu_discover_node(const char *file, const gpu_discover_ops_t *ops, const char *visible, size_t num_gpus,
                      gpu_topo_t *out, char *err, size_t err_len);

/* Keep only GPUs phys[0..n) of t, renumbered 0..n-1 in that order. */
void gpu_topo_select(gpu_topo_t *t, const unsigned *phys, size_t n);

#endif
