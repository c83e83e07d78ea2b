/* The node's GPU graph: which GPUs exist, how each pair is connected
 * (bonded NVLinks, or the PCIe path between them), and which CPUs and
 * NUMA node sit nearest each GPU.
 *
 * It is plain data: discovery (NVML, a `nvidia-smi topo -m` file, a test
 * fake; see gpu_discover.h) fills one in at start, and the packer reads it
 * without ever changing it.  Nothing here touches the loop or the
 * resource model.
 *
 * The text parser accepts what `nvidia-smi topo -m` prints: a header row of
 * device columns (GPU<i>, NIC<i>, mlx5_<i>, ...) followed by the "CPU
 * Affinity", "NUMA Affinity" and "GPU NUMA ID" columns; one row per device;
 * cells X, NV<n>, PIX, PXB, PHB, NODE, SYS (and SOC, its old name), N/A;
 * columns split by tabs or runs of spaces; terminal colour escapes; and a
 * trailing legend, which is ignored.  Every byte of the file is untrusted:
 * a problem is reported with its 1-based line and column. */
#ifndef CRAYLET_RAYLET_SCHED_GPU_TOPO_H
#define CRAYLET_RAYLET_SCHED_GPU_TOPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GPU_TOPO_MAX_GPUS 64
#define GPU_TOPO_MAX_CPUS 1024

/* How two GPUs reach each other without NVLink, nearest last, so a larger
 * value is a shorter PCIe path.  GPU_PATH_NVLINK marks a pair joined by
 * NVLink (its bond width is in nvlinks[][]). */
typedef enum gpu_path {
    GPU_PATH_UNKNOWN = 0,
    GPU_PATH_SYS,  /* across the SMP interconnect between NUMA nodes */
    GPU_PATH_NODE, /* between PCIe host bridges within a NUMA node */
    GPU_PATH_PHB,  /* through a PCIe host bridge */
    GPU_PATH_PXB,  /* through several PCIe bridges */
    GPU_PATH_PIX,  /* through at most one PCIe bridge */
    GPU_PATH_NVLINK,
    GPU_PATH_SELF,
} gpu_path_t;

/* A set of CPU numbers, 0..GPU_TOPO_MAX_CPUS-1. */
typedef struct gpu_cpuset {
    uint64_t bits[GPU_TOPO_MAX_CPUS / 64];
} gpu_cpuset_t;

typedef struct gpu_info {
    char uuid[96];       /* "" when unknown (file topologies) */
    char pci_bus_id[32]; /* "" when unknown */
    int numa_node;       /* -1 when unknown */
    gpu_cpuset_t cpus;   /* the cores nearest the GPU; empty when unknown */
} gpu_info_t;

typedef struct gpu_topo {
    size_t n;                                           /* GPUs 0..n-1 */
    gpu_info_t gpu[GPU_TOPO_MAX_GPUS];
    uint8_t nvlinks[GPU_TOPO_MAX_GPUS][GPU_TOPO_MAX_GPUS]; /* bonded links, symmetric, 0 on the diagonal */
    uint8_t path[GPU_TOPO_MAX_GPUS][GPU_TOPO_MAX_GPUS];    /* gpu_path_t, symmetric */
    bool nvswitch; /* every pair joined through NVSwitch: all-to-all, equal */
    char source[64]; /* where it came from, for logs: "nvml", "file", "fake" */
} gpu_topo_t;

/* Where parsing failed: 1-based line and column, and why. */
typedef struct gpu_topo_error {
    unsigned line, column;
    char message[160];
} gpu_topo_error_t;

/* Parse `len` bytes of `nvidia-smi topo -m` text into *out (overwritten).
 * Returns 0, or CR_EBADMSG with *err filled. */
int gpu_topo_parse(const char *text, size_t len, gpu_topo_t *out, gpu_topo_error_t *err);

/* NVLink bandwidth weight of a pair: its bonded link count. */
static inline unsigned gpu_topo_links(const gpu_topo_t *t, unsigned a, unsigned b)
{
    return t->nvlinks[a][b];
}

/* Every pair of the GPUs in `mask` joined by NVLink (true for 0 or 1 GPU). */
bool gpu_topo_all_nvlink(const gpu_topo_t *t, uint64_t mask);

/* The groups of GPUs connected by NVLink (an "island" is a connected
 * component of the NVLink graph).  island[i] numbers GPU i's island from 0
 * in order of the lowest GPU; returns how many there are. */
size_t gpu_topo_islands(const gpu_topo_t *t, unsigned island[GPU_TOPO_MAX_GPUS]);

/* The matrix as `craylet topo` prints it (a header, one row per GPU, the
 * islands, the CPU affinities), into buf; returns the length it needed,
 * as snprintf does. */
size_t gpu_topo_format(const gpu_topo_t *t, char *buf, size_t len);

/* ---- CPU sets -------------------------------------------------------------- */

static inline void gpu_cpuset_add(gpu_cpuset_t *s, unsigned cpu)
{
    if (cpu < GPU_TOPO_MAX_CPUS)
        s->bits[cpu / 64] |= (uint64_t)1 << (cpu % 64);
}
static inline bool gpu_cpuset_has(const gpu_cpuset_t *s, unsigned cpu)
{
    return cpu < GPU_TOPO_MAX_CPUS && (s->bits[cpu / 64] >> (cpu % 64)) & 1;
}
size_t gpu_cpuset_count(const gpu_cpuset_t *s);
/* "0-31,64-95" style, into buf; "" for the empty set. */
size_t gpu_cpuset_format(const gpu_cpuset_t *s, char *buf, size_t len);
/* Parse "0-31,64-95" (no blanks); -1 with *bad_at set to the offending
 * offset on a malformed list or a CPU number >= GPU_TOPO_MAX_CPUS. */
int gpu_cpuset_parse(const char *text, size_t len, gpu_cpuset_t *out, size_t *bad_at);

#endif
