#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/numa.h"

Test(numa, node_lists)
{
    uint64_t m;
    cr_assert_eq(numa_parse_nodelist("0\n", &m), 0);
    cr_assert_eq(m, 1);
    cr_assert_eq(numa_parse_nodelist("0-1,3", &m), 0);
    cr_assert_eq(m, 0xb);
    cr_assert_eq(numa_parse_nodelist("63", &m), 0);
    cr_assert_eq(m, UINT64_C(1) << 63);
    cr_assert_eq(numa_parse_nodelist("", &m), 0);
    cr_assert_eq(m, 0);
    const char *bad[] = {"64", "1-0", "a", "0,,1", "0-", "-1", "0 1", "0\nx", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(numa_parse_nodelist(bad[i], &m), -EINVAL, "%s", bad[i]);
}

Test(numa, this_machine_has_a_memory_node)
{
    if (access("/sys/devices/system/node/has_memory", R_OK) != 0)
        cr_skip_test("no NUMA information in /sys");
    cr_assert_neq(numa_memory_nodes(), 0);
}

/* The syscall's ABI (mask sizes, pid) on a real child: moving pages from
 * every memory node to the first one is legal on any machine, and a no-op
 * where there is only one. */
Test(numa, move_a_childs_pages)
{
    uint64_t nodes = numa_memory_nodes();
    if (nodes == 0)
        cr_skip_test("no NUMA information in /sys");
    unsigned first = (unsigned)__builtin_ctzll(nodes);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        pause();
        _exit(0);
    }
    int rc = numa_move_pages(pid, nodes, first);
    if (rc == -ENOSYS) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        cr_skip_test("kernel without page migration");
    }
    cr_assert_geq(rc, 0, "migrate_pages: %d", rc);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_assert_eq(numa_move_pages(pid, nodes, first), -ESRCH, "a reaped child is gone");
    cr_assert_eq(numa_move_pages(0, nodes, first), -EINVAL, "pid 0 would mean the daemon itself");
    cr_assert_eq(numa_move_pages(pid, nodes, NUMA_MAX_NODES), -EINVAL);
}
