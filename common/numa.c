#include "common/numa.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"

int numa_parse_nodelist(const char *text, uint64_t *mask)
{
    uint64_t m = 0;
    const char *p = text;
    while (*p && *p != '\n') {
        char *end;
        errno = 0;
        unsigned long lo = strtoul(p, &end, 10);
        if (end == p || errno || lo >= NUMA_MAX_NODES)
            return -EINVAL;
        unsigned long hi = lo;
        if (*end == '-') {
            p = end + 1;
            hi = strtoul(p, &end, 10);
            if (end == p || errno || hi >= NUMA_MAX_NODES || hi < lo)
                return -EINVAL;
        }
        for (unsigned long n = lo; n <= hi; n++)
            m |= UINT64_C(1) << n;
        p = end;
        if (*p == ',')
            p++;
        else if (*p && *p != '\n')
            return -EINVAL;
    }
    if (*p == '\n' && p[1])
        return -EINVAL;
    *mask = m;
    return 0;
}

uint64_t numa_memory_nodes(void)
{
    FILE *f = fopen("/sys/devices/system/node/has_memory", "re");
    if (!f)
        return 0;
    char line[512];
    uint64_t mask = 0;
    if (!fgets(line, sizeof line, f) || numa_parse_nodelist(line, &mask) != 0)
        mask = 0;
    fclose(f);
    return mask;
}

int numa_move_pages(pid_t pid, uint64_t from, unsigned to)
{
    if (pid <= 0 || to >= NUMA_MAX_NODES)
        return -EINVAL;
    /* The kernel reads maxnode - 1 bits from each mask. */
    unsigned long old_nodes = (unsigned long)from;
    unsigned long new_nodes = 1UL << to;
    long rc = syscall(SYS_migrate_pages, (long)pid, (unsigned long)NUMA_MAX_NODES + 1, &old_nodes, &new_nodes);
    return rc < 0 ? -errno : (int)rc;
}

typedef struct numa_move {
    pid_t pid;
    uint64_t from;
    unsigned to;
} numa_move_t;

static void *numa_move_main(void *arg)
{
    numa_move_t m = *(numa_move_t *)arg;
    free(arg);
    int rc = numa_move_pages(m.pid, m.from, m.to);
    if (rc < 0 && rc != -ESRCH) /* ESRCH: the worker ended meanwhile */
        log_warn("cannot move the memory of pid %d to NUMA node %u: %s", (int)m.pid, m.to, strerror(-rc));
    else if (rc > 0)
        log_debug("pid %d: %d pages stayed off NUMA node %u", (int)m.pid, rc, m.to);
    return NULL;
}

int numa_move_pages_async(pid_t pid, uint64_t from, unsigned to)
{
    numa_move_t *m = xmalloc(sizeof *m);
    *m = (numa_move_t){.pid = pid, .from = from, .to = to};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int rc = pthread_create(&t, &attr, numa_move_main, m);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        free(m);
        return -rc;
    }
    return 0;
}
