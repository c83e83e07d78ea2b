#include "raylet/metrics/node_metrics.h"

#include <stdio.h>
#include <string.h>

#include "common/id.h"

/* The stock raylet's descriptions (the Prometheus HELP text), so a scrape
 * reads the same on either. */
#define DESC_RESOURCES "Logical Ray resources broken per state {AVAILABLE, USED}"
#define DESC_OBJECT_STORE_MEMORY "Object store memory by various sub-kinds on this node"
#define DESC_SPILL_OBJECTS "Number of local objects broken per state {Pinned, PendingRestore, PendingSpill}."
#define DESC_SPILL_BYTES "Byte size of local objects broken per state {Pinned, PendingSpill}."
#define DESC_SPILL_REQUESTS "Number of {spill, restore} requests."
#define DESC_AVAILABLE "Amount of memory currently available in the object store."
#define DESC_USED "Amount of memory currently occupied in the object store."
#define DESC_FALLBACK "Amount of memory in fallback allocations in the filesystem."
#define DESC_NUM_LOCAL "Number of objects currently in the object store."
#define DESC_SCHEDULER_TASKS                                                                                          \
    "Number of tasks waiting for scheduling broken per state {Cancelled, Executing, Waiting, Dispatched, Received}."
#define DESC_PROCESSES_STARTED "The total number of worker processes the worker pool has created."

static void gauge1(otlp_export_t *e, const char *name, const char *desc, const char *key, const char *value, double v)
{
    otlp_label_t l = {key, value};
    otlp_gauge(e, name, desc, &l, 1, v);
}

/* Resources the stock raylet leaves out: the per-node marker and the
 * placement-group-formatted names (CPU_group_<pg>, bundle_group_...). */
static bool resource_reported(const char *name)
{
    return strncmp(name, "node:", 5) != 0 && strstr(name, "_group_") == NULL;
}

static void collect_resources(const res_node_t *res, otlp_export_t *e)
{
    size_t n = res_node_count(res);
    for (size_t i = 0; i < n; i++) {
        res_entry_t r;
        res_node_entry_at(res, i, &r);
        if (!resource_reported(r.name))
            continue;
        double total = (double)r.total / (double)RES_UNIT, avail = (double)r.available / (double)RES_UNIT;
        otlp_label_t l[2] = {{"Name", r.name}, {"State", "AVAILABLE"}};
        otlp_gauge(e, "resources", DESC_RESOURCES, l, 2, avail);
        l[1].value = "USED";
        otlp_gauge(e, "resources", DESC_RESOURCES, l, 2, total - avail);
    }
}

static void collect_store(const store_t *store, const spill_stats_t *sp, otlp_export_t *e)
{
    store_stats_t st;
    store_get_stats(store, &st);
    uint64_t shm_used = st.bytes_used - st.bytes_fallback;
    uint64_t unsealed = st.bytes_unsealed < shm_used ? st.bytes_unsealed : shm_used;
    struct {
        const char *location, *state;
        double v;
    } mem[] = {
        {"MMAP_SHM", "SEALED", (double)(shm_used - unsealed)},
        {"MMAP_SHM", "UNSEALED", (double)unsealed},
        {"MMAP_DISK", "SEALED", (double)st.bytes_fallback},
        {"MMAP_DISK", "UNSEALED", 0},
        {"SPILLED", "", (double)sp->spilled_bytes_current},
    };
    for (size_t i = 0; i < sizeof mem / sizeof mem[0]; i++) {
        otlp_label_t l[2] = {{"Location", mem[i].location}, {"ObjectState", mem[i].state}};
        otlp_gauge(e, "object_store_memory", DESC_OBJECT_STORE_MEMORY, l, 2, mem[i].v);
    }
    otlp_gauge(e, "object_store_available_memory", DESC_AVAILABLE, NULL, 0,
               (double)(st.capacity > shm_used ? st.capacity - shm_used : 0));
    otlp_gauge(e, "object_store_used_memory", DESC_USED, NULL, 0, (double)shm_used);
    otlp_gauge(e, "object_store_fallback_memory", DESC_FALLBACK, NULL, 0, (double)st.bytes_fallback);
    otlp_gauge(e, "object_store_num_local_objects", DESC_NUM_LOCAL, NULL, 0, (double)st.num_objects);
}

static void collect_spill(const spill_stats_t *sp, otlp_export_t *e)
{
    gauge1(e, "spill_manager_objects", DESC_SPILL_OBJECTS, "State", "Pinned",
           (double)(sp->primaries - sp->spilled_objects_current - sp->pending_spill_objects));
    gauge1(e, "spill_manager_objects", DESC_SPILL_OBJECTS, "State", "PendingRestore",
           (double)sp->pending_restore_objects);
    gauge1(e, "spill_manager_objects", DESC_SPILL_OBJECTS, "State", "PendingSpill",
           (double)sp->pending_spill_objects);
    gauge1(e, "spill_manager_objects_bytes", DESC_SPILL_BYTES, "State", "Pinned", (double)sp->pinned_bytes);
    gauge1(e, "spill_manager_objects_bytes", DESC_SPILL_BYTES, "State", "PendingSpill",
           (double)sp->pending_spill_bytes);
    gauge1(e, "spill_manager_objects_bytes", DESC_SPILL_BYTES, "State", "PendingRestore",
           (double)sp->pending_restore_bytes);
    gauge1(e, "spill_manager_objects_bytes", DESC_SPILL_BYTES, "State", "Spilled", (double)sp->spilled_bytes_total);
    gauge1(e, "spill_manager_objects_bytes", DESC_SPILL_BYTES, "State", "Restored",
           (double)sp->restored_bytes_total);
    gauge1(e, "spill_manager_request_total", DESC_SPILL_REQUESTS, "Type", "Spilled", (double)sp->spilled_objects_total);
    gauge1(e, "spill_manager_request_total", DESC_SPILL_REQUESTS, "Type", "Restored",
           (double)sp->restored_objects_total);
    gauge1(e, "spill_manager_request_total", DESC_SPILL_REQUESTS, "Type", "FailedDeletion",
           (double)sp->failed_deletions);
}

static void collect_scheduler(const lease_mgr_t *leases, otlp_export_t *e)
{
    /* Executing: leases holding a worker; Waiting: queued here. */
    gauge1(e, "scheduler_tasks", DESC_SCHEDULER_TASKS, "State", "Executing", (double)lease_mgr_granted(leases));
    gauge1(e, "scheduler_tasks", DESC_SCHEDULER_TASKS, "State", "Waiting", (double)lease_mgr_queued(leases));
}

static void collect_workers(const pool_t *pool, otlp_export_t *e)
{
    otlp_gauge(e, "internal_num_processes_started", DESC_PROCESSES_STARTED, NULL, 0,
               (double)pool_started_total(pool));
    static const struct {
        worker_state_t state;
        const char *name;
    } states[] = {{WORKER_STARTING, "Starting"}, {WORKER_REGISTERED, "Registered"}, {WORKER_IDLE, "Idle"},
                  {WORKER_LEASED, "Leased"},     {WORKER_DRIVER, "Driver"},         {WORKER_IO, "IO"}};
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
        gauge1(e, "craylet_workers", "Worker processes and drivers of this node by state.", "State", states[i].name,
               (double)pool_count(pool, states[i].state));
}

/* Per placement group with GPUs here: its gang's NVLinks against the most
 * any choice could have had (1 = the best-connected set free at the time). */
static void collect_gangs(const gpu_gang_t *gang, otlp_export_t *e)
{
    size_t n = gpu_gang_count(gang);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            gpu_gang_info_t g;
            gpu_gang_at(gang, i, &g);
            bool seen = false; /* one point per group: its bundles share the gang */
            for (size_t j = 0; j < i && !seen; j++) {
                gpu_gang_info_t h;
                gpu_gang_at(gang, j, &h);
                seen = memcmp(h.pg, g.pg, ID_PG_SIZE) == 0;
            }
            if (seen)
                continue;
            char hex[ID_HEX_BUF];
            id_to_hex(g.pg, ID_PG_SIZE, hex);
            otlp_label_t l = {"PlacementGroupId", hex};
            if (pass == 0)
                otlp_gauge(e, "craylet_gang_nvlink_score",
                           "NVLinks within a placement group's GPUs on this node, over the most any set of as many "
                           "free GPUs had when it was placed (1 = best possible).",
                           &l, 1, g.best_links ? (double)g.links / (double)g.best_links : 1.0);
            else
                otlp_gauge(e, "craylet_gang_nvlinks", "NVLinks within a placement group's GPUs on this node.", &l, 1,
                           (double)g.links);
        }
    }
}

#define DESC_EVICTIONS "Total worker eviction events broken per work type {Actor, Task, Driver} and name."

static void collect_one_eviction(void *ctx, const char *type, const char *name, uint64_t count)
{
    otlp_label_t l[2] = {{"Type", type}, {"Name", name}};
    otlp_counter(ctx, "memory_manager_worker_eviction", DESC_EVICTIONS, l, 2, (double)count);
}

void node_metrics_collect(const node_metrics_sources_t *src, otlp_export_t *e)
{
    spill_stats_t sp;
    spill_get_stats(src->spill, &sp);
    if (src->resources)
        collect_resources(src->resources, e);
    if (src->store)
        collect_store(src->store, &sp, e);
    collect_spill(&sp, e);
    if (src->leases)
        collect_scheduler(src->leases, e);
    if (src->pool)
        collect_workers(src->pool, e);
    if (src->gang)
        collect_gangs(src->gang, e);
    if (src->mem)
        mem_monitor_drain_evictions(src->mem, collect_one_eviction, e);
}
