/* What one export says about this node: the stock raylet's series that
 * Ray's dashboards and operators read (ray_resources, ray_object_store_*,
 * ray_spill_manager_*, ray_scheduler_tasks, ray_internal_num_processes_
 * started), with the same names, label keys and label values, plus
 * craylet's own (ray_craylet_*).  Every value is read from the components
 * at the moment of the export. */
#ifndef CRAYLET_RAYLET_METRICS_NODE_METRICS_H
#define CRAYLET_RAYLET_METRICS_NODE_METRICS_H

#include "object_store/store.h"
#include "raylet/metrics/otlp.h"
#include "raylet/objects/spill.h"
#include "raylet/sched/gpu_gang.h"
#include "raylet/sched/lease_mgr.h"
#include "raylet/sched/mem_monitor.h"
#include "raylet/sched/resources.h"
#include "raylet/worker/pool.h"

/* Borrowed; any may be NULL (not made yet, or none on this node). */
typedef struct node_metrics_sources {
    const res_node_t *resources;
    const store_t *store;
    const spill_t *spill;
    const pool_t *pool;
    const lease_mgr_t *leases;
    const gpu_gang_t *gang;
    mem_monitor_t *mem; /* its kill counts are taken (a DELTA counter) */
} node_metrics_sources_t;

void node_metrics_collect(const node_metrics_sources_t *src, otlp_export_t *e);

#endif
