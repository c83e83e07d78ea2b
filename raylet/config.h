/* The subset of Ray's system config (RayConfig) the daemon reads.
 *
 * Same precedence as the stock raylet: built-in default, then the
 * RAY_<name> environment variable, then the JSON system config that GCS
 * hands out (ray.init(_system_config=...) / ray start --system-config).
 * The JSON text itself is kept verbatim: workers fetch it back through
 * NodeManagerService.GetSystemConfig. */
#ifndef CRAYLET_RAYLET_CONFIG_H
#define CRAYLET_RAYLET_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

typedef struct config {
    int64_t raylet_report_resources_period_milliseconds;
    int64_t raylet_liveness_self_check_interval_ms;
    int64_t gcs_rpc_server_reconnect_timeout_s;
    bool enable_pipe_based_agent_to_parent_health_check;
    int64_t agent_port_file_timeout_ms; /* craylet's own: how long agents may take to bind */
    int64_t worker_register_timeout_seconds;
    int64_t idle_worker_killing_time_threshold_ms;
    int64_t num_workers_soft_limit; /* -1: the node's CPU count */
    int64_t object_store_full_delay_ms;
    int64_t oom_grace_period_s;
    double local_fs_capacity_threshold;
    bool preallocate_plasma_memory;
    int64_t kill_worker_timeout_milliseconds;
    bool support_fork;                        /* workers get gRPC's fork support */
    int64_t worker_num_grpc_internal_threads; /* 0: the worker's default */
    char *preload_python_modules;             /* owned; comma-joined, "" for none */
    int64_t debug_dump_period_milliseconds;   /* debug_state.txt; 0 or less: never */
    bool prestart_worker_first_driver; /* warm workers when the first driver connects */
    bool enable_worker_prestart;       /* ... or already at start-up */
    bool worker_cap_enabled;
    int64_t worker_cap_initial_backoff_delay_ms;
    int64_t worker_cap_max_backoff_delay_ms;
    /* objects between nodes (raylet/objects/transfer.h) */
    int64_t object_manager_default_chunk_size;
    int64_t object_manager_max_bytes_in_flight;
    int64_t object_manager_pull_timeout_ms;
    int64_t object_manager_push_timeout_ms; /* <0: park forever, 0: never */
    int64_t object_manager_timer_freq_ms;
    int64_t fetch_fail_timeout_milliseconds;
    /* object_store_memory in the resource view: primary copies only (so a
     * node holding only evictable secondary copies may scale down), or all */
    bool scheduler_report_pinned_bytes_only;
    /* spilling (raylet/objects/spill.h) */
    char *object_spilling_config;       /* owned; JSON text, "" = spilling off */
    double object_spilling_threshold;   /* spill when primaries fill this share */
    int64_t min_spilling_size;          /* bytes worth a file of their own */
    int64_t max_fused_object_count;     /* objects per spill file at most */
    int64_t max_spilling_file_size_bytes; /* <= 0: no cap */
    int64_t max_io_workers;             /* per kind (spill, restore) */
    int64_t free_objects_period_milliseconds; /* the periodic spill check */
    bool is_external_storage_type_fs;   /* spilled files are this node's */
    /* metrics (raylet/metrics/metrics.h) */
    int64_t metrics_report_interval_ms;
    bool enable_open_telemetry; /* off: no export (stock falls back to OpenCensus) */
    /* out-of-memory prevention (raylet/sched/mem_monitor.h) */
    double memory_usage_threshold;     /* kill above this share of memory */
    int64_t memory_monitor_refresh_ms; /* <= 0: never kill */
    int64_t min_memory_free_bytes;     /* < 0: unused */
    int64_t task_failure_entry_ttl_ms; /* how long a kill's cause is kept */
    bool worker_killing_policy_by_group; /* default: true before Ray 2.56 */
    int64_t max_kill_memory_buffer_bytes;
    char *system_config_json;           /* owned; "{}" until GCS answers */
} config_t;

/* Defaults overridden by RAY_<name> variables.  Malformed values are logged
 * and ignored. */
void config_init(config_t *cfg);
/* Apply the JSON from GetInternalConfig (copied).  Returns 0, or CR_EBADMSG
 * if it is not a JSON object (the text is still kept for GetSystemConfig). */
int config_apply_json(config_t *cfg, const char *json);
/* A filesystem object_spilling_config spills into `dir` (this node's
 * --fallback_directory) instead of the directory_path the head chose:
 * from Ray 2.60 each node resolves its own spill directory and hands it
 * to its raylet that way.  Other storage types are left alone.  0, or
 * CR_EBADMSG (logged) when the config is not JSON; it is then unchanged. */
int config_localize_spilling(config_t *cfg, const char *dir);
void config_free(config_t *cfg);

#endif
