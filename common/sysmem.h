/* How much memory the node has and uses, read as the stock raylet's memory
 * monitor reads it, so both kill at the same point:
 *   - /proc/meminfo: used = MemTotal - MemAvailable (or MemFree + Cached +
 *     Buffers on kernels without MemAvailable);
 *   - the root memory cgroup (v2 memory.max/current/stat, else v1
 *     memory/memory.limit_in_bytes/usage_in_bytes/stat): its limit is the
 *     total when below MemTotal, and then its usage less the page cache
 *     (active and inactive file pages, which the kernel reclaims) is the
 *     used figure.
 * Paths are parameters so that tests can point them at fixture trees. */
#ifndef CRAYLET_COMMON_SYSMEM_H
#define CRAYLET_COMMON_SYSMEM_H

#include <stdint.h>
#include <sys/types.h>

#define SYSMEM_CGROUP_ROOT "/sys/fs/cgroup"
#define SYSMEM_PROC_DIR "/proc"

typedef struct sysmem {
    int64_t used_bytes, total_bytes; /* -1: could not be read */
} sysmem_t;

/* Never fails: unknown figures are -1. */
void sysmem_read(const char *cgroup_root, const char *proc_dir, sysmem_t *out);
/* A process's unique set size (its Private_* pages, from smaps_rollup);
 * -1 when it cannot be read (gone, not ours to read). */
int64_t sysmem_process_uss(const char *proc_dir, pid_t pid);
/* The usage above which workers are killed: the larger of
 * total * fraction and total - min_free (min_free < 0: unused). */
int64_t sysmem_threshold(int64_t total_bytes, double fraction, int64_t min_free_bytes);

#endif
