/* Out-of-memory prevention's pure parts: the group-by-owner choice of a
 * worker to kill, and reading the node's memory (meminfo, cgroup v1/v2,
 * a process's unique set) from fixture trees. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/id.h"
#include "common/sysmem.h"
#include "common/utf8.h"
#include "raylet/sched/oom_policy.h"

static uint8_t owners[4][ID_TASK_SIZE];

static void init_owners(void)
{
    for (int i = 0; i < 4; i++)
        memset(owners[i], i + 1, ID_TASK_SIZE);
}

Test(oom_policy, nothing_to_kill)
{
    bool retry = true;
    cr_assert_eq(oom_pick(NULL, 0, &retry), -1);
    cr_assert_not(retry);
}

Test(oom_policy, retriable_groups_before_larger_non_retriable_ones)
{
    init_owners();
    oom_candidate_t c[] = {
        {false, owners[0], 1, -1}, {false, owners[1], 2, -1}, {false, owners[2], 3, -1}, /* one group of three */
        {true, owners[3], 4, -1},
    };
    bool retry;
    cr_assert_eq(oom_pick(c, 4, &retry), 3);
    cr_assert_not(retry, "alone in its group: its owner would make no progress");
}

Test(oom_policy, larger_group_then_the_later_group_then_the_newest_member)
{
    init_owners();
    oom_candidate_t c[] = {
        {true, owners[0], 10, -1}, {true, owners[1], 1, -1}, {true, owners[1], 30, -1}, {true, owners[1], 20, -1},
    };
    bool retry;
    cr_assert_eq(oom_pick(c, 4, &retry), 2, "owner 1 has three leases; its newest dies");
    cr_assert(retry);
    /* Two groups of two: the one whose first lease came later goes. */
    oom_candidate_t d[] = {
        {true, owners[0], 5, -1}, {true, owners[0], 6, -1}, {true, owners[1], 7, -1}, {true, owners[1], 8, -1},
    };
    cr_assert_eq(oom_pick(d, 4, &retry), 3);
    /* Non-retriable leases form one group whatever their owners. */
    oom_candidate_t e[] = {{false, owners[0], 1, -1}, {false, owners[1], 9, -1}};
    cr_assert_eq(oom_pick(e, 2, &retry), 1);
    cr_assert_not(retry, "not retriable");
}

Test(oom_policy, by_time_retriable_newest_first_until_enough_is_freed)
{
    init_owners();
    oom_candidate_t c[] = {
        {true, owners[0], 10, 100}, {false, owners[0], 40, 100}, {true, owners[1], 30, 100}, {true, owners[2], 30, 50},
    };
    size_t out[4];
    /* Retriable, newest first (ties: the later listed), then the rest. */
    cr_assert_eq(oom_pick_by_time(c, 4, 1000, out), 4);
    cr_assert_eq(out[0], 3);
    cr_assert_eq(out[1], 2);
    cr_assert_eq(out[2], 0);
    cr_assert_eq(out[3], 1);
    cr_assert_eq(oom_pick_by_time(c, 4, 120, out), 2, "50 + 100 bytes cover 120");
    cr_assert_eq(oom_pick_by_time(c, 4, 0, out), 1, "at least one dies");
    c[3].uss = -1; /* unknown memory counts for nothing */
    cr_assert_eq(oom_pick_by_time(c, 4, 150, out), 3);
    cr_assert_eq(oom_pick_by_time(c, 0, 150, out), 0);
}

static char root[64];

static void put(const char *rel, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        mkdir(path, 0700);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

static void make_root(void)
{
    snprintf(root, sizeof root, "/tmp/craylet-sysmem-XXXXXX");
    cr_assert_not_null(mkdtemp(root));
}

static void remove_root(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    cr_assert_eq(system(cmd), 0);
}

static void read_mem(sysmem_t *m)
{
    char cg[128], proc[128];
    snprintf(cg, sizeof cg, "%s/cgroup", root);
    snprintf(proc, sizeof proc, "%s/proc", root);
    sysmem_read(cg, proc, m);
}

TestSuite(sysmem, .init = make_root, .fini = remove_root);

Test(sysmem, meminfo_without_a_cgroup_limit)
{
    put("proc/meminfo", "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 400 kB\nCached: 50 kB\n");
    /* An unlimited v1 cgroup reports a huge limit: meminfo decides. */
    put("cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
    put("cgroup/memory/memory.usage_in_bytes", "999999\n");
    put("cgroup/memory/memory.stat", "total_inactive_file 1\ntotal_active_file 1\n");
    sysmem_t m;
    read_mem(&m);
    cr_assert_eq(m.total_bytes, 1000 * 1024);
    cr_assert_eq(m.used_bytes, 600 * 1024);
}

Test(sysmem, old_kernels_sum_free_cached_and_buffers)
{
    put("proc/meminfo", "MemTotal: 1000 kB\nMemFree: 100 kB\nCached: 200 kB\nBuffers: 100 kB\n");
    sysmem_t m;
    read_mem(&m);
    cr_assert_eq(m.used_bytes, 600 * 1024);
}

Test(sysmem, cgroup_v2_limit_below_the_machine_counts_without_page_cache)
{
    put("proc/meminfo", "MemTotal: 1000 kB\nMemAvailable: 900 kB\n");
    put("cgroup/memory.max", "512000\n");
    put("cgroup/memory.current", "400000\n");
    put("cgroup/memory.stat", "anon 1\ninactive_file 50000\nactive_file 30000\n");
    sysmem_t m;
    read_mem(&m);
    cr_assert_eq(m.total_bytes, 512000);
    cr_assert_eq(m.used_bytes, 320000);
}

Test(sysmem, cgroup_v2_without_limit_and_unreadable_files)
{
    put("proc/meminfo", "MemTotal: 1000 kB\nMemAvailable: 900 kB\n");
    put("cgroup/memory.max", "max\n");
    put("cgroup/memory.current", "400000\n");
    put("cgroup/memory.stat", "garbage\n");
    sysmem_t m;
    read_mem(&m);
    cr_assert_eq(m.total_bytes, 1000 * 1024);
    cr_assert_eq(m.used_bytes, 100 * 1024);
    put("proc/meminfo", "MemTotal: 100 kB\nMemAvailable: 900 kB\n"); /* impossible */
    read_mem(&m);
    cr_assert_eq(m.used_bytes, -1);
    cr_assert_eq(m.total_bytes, -1);
}

Test(sysmem, process_unique_set_and_threshold)
{
    char proc[128];
    snprintf(proc, sizeof proc, "%s/proc", root);
    put("proc/42/smaps_rollup", "5555-6666 ---p [rollup]\nRss: 999 kB\nPrivate_Clean: 1 kB\nPrivate_Dirty: 2 kB\n"
                                "Private_Hugetlb: 3 kB\nShared_Clean: 100 kB\n");
    cr_assert_eq(sysmem_process_uss(proc, 42), 6 * 1024);
    cr_assert_eq(sysmem_process_uss(proc, 43), -1, "a process that is gone");
    cr_assert_eq(sysmem_threshold(1000, 0.95, -1), 950);
    cr_assert_eq(sysmem_threshold(1000, 0.5, 100), 900, "min free raises the threshold");
    cr_assert_eq(sysmem_threshold(1000, 0.99, 100), 990);
    cr_assert_eq(sysmem_threshold(-1, 0.95, -1), -1);
}

Test(utf8, valid_and_invalid)
{
    cr_assert(utf8_valid("plain", 5));
    static const char mixed[] = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80";
    cr_assert(utf8_valid(mixed, sizeof mixed - 1));
    cr_assert_not(utf8_valid("\xc3", 1), "cut short");
    cr_assert_not(utf8_valid("\xc0\xaf", 2), "overlong");
    cr_assert_not(utf8_valid("\xed\xa0\x80", 3), "surrogate");
    cr_assert_not(utf8_valid("\xf4\x90\x80\x80", 4), "past U+10FFFF");
    cr_assert_not(utf8_valid("a\0b", 3), "NUL inside");
    cr_assert_not(utf8_valid("\xff", 1));
}
