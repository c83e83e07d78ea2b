#include "common/sysmem.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first integer in a file, or -1. */
static int64_t read_int_file(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char buf[64];
    int64_t v = -1;
    if (fgets(buf, sizeof buf, f)) {
        char *end;
        errno = 0;
        long long x = strtoll(buf, &end, 10);
        if (errno == 0 && end != buf && x >= 0)
            v = x;
    }
    fclose(f);
    return v;
}

/* "key value" lines: sums the values of the keys asked for, each found
 * at most once; -1 unless every key was found. */
static int64_t stat_sum(const char *path, const char *const *keys, size_t nkeys)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char line[256];
    int64_t sum = 0;
    size_t found = 0;
    while (fgets(line, sizeof line, f)) {
        char key[64];
        long long v;
        if (sscanf(line, "%63s %lld", key, &v) != 2 || v < 0)
            continue;
        for (size_t i = 0; i < nkeys; i++)
            if (strcmp(key, keys[i]) == 0) {
                sum += v;
                found++;
            }
    }
    fclose(f);
    return found == nkeys ? sum : -1;
}

static void cgroup_read(const char *root, int64_t *used, int64_t *total)
{
    static const char *const v2_keys[] = {"inactive_file", "active_file"};
    static const char *const v1_keys[] = {"total_inactive_file", "total_active_file"};
    char max[512], cur[512], stat[512];
    *used = *total = -1;
    snprintf(max, sizeof max, "%s/memory.max", root);
    snprintf(cur, sizeof cur, "%s/memory.current", root);
    snprintf(stat, sizeof stat, "%s/memory.stat", root);
    const char *const *keys = v2_keys;
    int64_t limit = read_int_file(max); /* "max" (no limit) reads as -1 */
    int64_t usage = read_int_file(cur);
    if (usage < 0) {
        snprintf(max, sizeof max, "%s/memory/memory.limit_in_bytes", root);
        snprintf(cur, sizeof cur, "%s/memory/memory.usage_in_bytes", root);
        snprintf(stat, sizeof stat, "%s/memory/memory.stat", root);
        keys = v1_keys;
        limit = read_int_file(max);
        usage = read_int_file(cur);
    }
    int64_t cache = stat_sum(stat, keys, 2);
    if (usage >= 0 && cache >= 0)
        *used = usage > cache ? usage - cache : 0;
    *total = limit > 0 ? limit : -1;
    if (*total > 0 && *used > *total)
        *used = *total;
}

static void meminfo_read(const char *proc_dir, int64_t *used, int64_t *total)
{
    char path[512];
    snprintf(path, sizeof path, "%s/meminfo", proc_dir);
    *used = *total = -1;
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    int64_t mem_total = -1, available = -1, free_ = -1, cached = -1, buffers = -1;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        char key[64];
        long long kb;
        if (sscanf(line, "%63s %lld", key, &kb) != 2 || kb < 0 || kb > INT64_MAX / 1024)
            continue;
        int64_t v = (int64_t)kb * 1024;
        if (strcmp(key, "MemTotal:") == 0)
            mem_total = v;
        else if (strcmp(key, "MemAvailable:") == 0)
            available = v;
        else if (strcmp(key, "MemFree:") == 0)
            free_ = v;
        else if (strcmp(key, "Cached:") == 0)
            cached = v;
        else if (strcmp(key, "Buffers:") == 0)
            buffers = v;
    }
    fclose(f);
    if (available <= 0 && free_ >= 0 && cached >= 0 && buffers >= 0)
        available = free_ + cached + buffers;
    if (mem_total < 0 || available < 0 || available > mem_total)
        return;
    *total = mem_total;
    *used = mem_total - available;
}

void sysmem_read(const char *cgroup_root, const char *proc_dir, sysmem_t *out)
{
    int64_t cg_used, cg_total, sys_used, sys_total;
    cgroup_read(cgroup_root, &cg_used, &cg_total);
    meminfo_read(proc_dir, &sys_used, &sys_total);
    /* A cgroup limit counts only when it is below the machine's memory
     * (an unlimited v1 cgroup reports a huge number). */
    if (cg_total > 0 && (sys_total < 0 || cg_total < sys_total)) {
        out->total_bytes = cg_total;
        out->used_bytes = cg_used;
    } else {
        out->total_bytes = sys_total;
        out->used_bytes = sys_used;
    }
}

int64_t sysmem_process_uss(const char *proc_dir, pid_t pid)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%d/smaps_rollup", proc_dir, (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char line[256];
    int64_t uss = 0;
    while (fgets(line, sizeof line, f)) {
        char key[64];
        long long kb;
        if (strncmp(line, "Private_", 8) == 0 && sscanf(line, "%63s %lld", key, &kb) == 2 && kb >= 0 &&
            kb < INT64_MAX / 1024 / 8)
            uss += (int64_t)kb * 1024;
    }
    fclose(f);
    return uss > 0 ? uss : -1;
}

int64_t sysmem_threshold(int64_t total_bytes, double fraction, int64_t min_free_bytes)
{
    if (total_bytes < 0)
        return -1;
    if (fraction < 0)
        fraction = 0;
    if (fraction > 1)
        fraction = 1;
    int64_t by_fraction = (int64_t)((double)total_bytes * fraction);
    if (min_free_bytes < 0)
        return by_fraction;
    int64_t absolute = total_bytes > min_free_bytes ? total_bytes - min_free_bytes : 0;
    return by_fraction > absolute ? by_fraction : absolute;
}
