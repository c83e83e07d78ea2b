/* Out-of-memory prevention, as the stock raylet's memory monitor: every
 * memory_monitor_refresh_ms the node's memory use (common/sysmem.h) is
 * compared with memory_usage_threshold (and min_memory_free_bytes); above
 * it, leased workers chosen by sched/oom_policy.h are killed (one, by
 * group; as many as free enough memory, by time), with exit
 * type NODE_OUT_OF_MEMORY, and its lease's failure cause (OUT_OF_MEMORY,
 * with what was using the memory and how to avoid it) is kept for
 * GetWorkerFailureCause, so that its owner raises OutOfMemoryError or
 * retries.  Kills wait until the last ones' processes are gone and their
 * memory with them.  Each kill is logged, counted
 * (memory_manager_worker_eviction_total, by Type and task Name) and
 * written as an "Out of Memory" ERROR event at most every 10 s.
 * Drivers are the user's processes and are never killed here.
 *
 * Loop thread only. */
#ifndef CRAYLET_RAYLET_SCHED_MEM_MONITOR_H
#define CRAYLET_RAYLET_SCHED_MEM_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/loop.h"
#include "common/ray_event.h"
#include "raylet/sched/lease_mgr.h"

typedef struct mem_monitor mem_monitor_t;

typedef struct mem_monitor_options {
    loop_t *loop;
    lease_mgr_t *leases;      /* borrowed; must outlive the monitor */
    uint64_t interval_ms;     /* memory_monitor_refresh_ms; 0: never checks */
    double usage_threshold;   /* memory_usage_threshold, [0, 1] */
    int64_t min_memory_free_bytes; /* < 0: unused */
    uint64_t failure_ttl_ms;  /* task_failure_entry_ttl_ms */
    /* worker_killing_policy_by_group (sched/oom_policy.h); otherwise by
     * time, freeing down to the threshold less a buffer of 5% of memory,
     * at most max_kill_buffer_bytes (max_kill_memory_buffer_bytes). */
    bool by_group;
    int64_t max_kill_buffer_bytes;
    const char *node_ip, *node_id_hex; /* for messages; copied */
    ray_event_log_t *events;  /* borrowed; NULL: none */
    /* Where to read memory figures; NULL: the system's (tests pass
     * fixture trees). */
    const char *cgroup_root, *proc_dir;
} mem_monitor_options_t;

/* Strings are copied.  Never NULL. */
mem_monitor_t *mem_monitor_create(const mem_monitor_options_t *opts);
/* Cancels the timer; nothing runs after.  Idempotent. */
void mem_monitor_stop(mem_monitor_t *m);
void mem_monitor_destroy(mem_monitor_t *m);

/* Run one check now (the timer calls this; tests too). */
void mem_monitor_check(mem_monitor_t *m);

/* Why lease `id`'s worker was killed, if it was killed here within the
 * TTL: the message (borrowed until the next check) and whether the owner
 * should retry the work.  False when nothing is recorded. */
bool mem_monitor_failure_cause(mem_monitor_t *m, const uint8_t *id, size_t id_len, const char **message,
                               bool *should_retry);

/* Kills since the last call, per (type, name): `fn` runs for each, then
 * the counts start again from zero (for a DELTA counter export). */
typedef void (*mem_monitor_eviction_fn)(void *ctx, const char *type, const char *name, uint64_t count);
void mem_monitor_drain_evictions(mem_monitor_t *m, mem_monitor_eviction_fn fn, void *ctx);
/* Kills since creation. */
uint64_t mem_monitor_kills(const mem_monitor_t *m);

#endif
