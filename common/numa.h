/* Where another process's memory lives, on machines with several NUMA nodes.
 *
 * A worker bound to the cores of one NUMA node allocates its new memory
 * there: the kernel's default policy places a page on the node of the CPU
 * that first touches it.  What the worker touched before it was bound (the
 * interpreter, imported modules, its heap) stays where it was; moving it is
 * the one memory-policy step a raylet can take for a process it did not
 * start bound, since set_mempolicy(2) reaches only the calling thread.
 *
 * Only pages the target alone maps are moved: shared mappings such as the
 * object store's region need CAP_SYS_NICE to move and are left in place. */
#ifndef CRAYLET_COMMON_NUMA_H
#define CRAYLET_COMMON_NUMA_H

#include <stdint.h>
#include <sys/types.h>

/* Nodes are numbered below 64; a mask has bit i for node i. */
#define NUMA_MAX_NODES 64

/* Parse a kernel node list ("0", "0-1,3", with an optional newline) into
 * a mask.  0 or -EINVAL (bad syntax, a node >= NUMA_MAX_NODES). */
int numa_parse_nodelist(const char *text, uint64_t *mask);

/* The nodes that have memory on this machine
 * (/sys/devices/system/node/has_memory); 0 when that cannot be read. */
uint64_t numa_memory_nodes(void);

/* Move pid's private pages that lie on the nodes of `from` to node `to`,
 * with migrate_pages(2).  Returns the number of pages that could not be
 * moved (>= 0) or -errno.  Walks the whole address space: tens of
 * milliseconds for a few hundred MB. */
int numa_move_pages(pid_t pid, uint64_t from, unsigned to);

/* numa_move_pages() on a detached thread, so the event loop never waits
 * for it; the thread owns only copies of its arguments and logs a failure
 * itself.  0, or -errno when the thread cannot be started. */
int numa_move_pages_async(pid_t pid, uint64_t from, unsigned to);

#endif
