#include "raylet/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "proto/gen/ray_version.h"

/* CONFIG_STRLIST: a JSON array of strings (or the env var's comma-separated
 * form), kept comma-joined in an owned char *.  CONFIG_STRING: a JSON
 * string, kept as an owned char *. */
typedef enum { CONFIG_INT, CONFIG_BOOL, CONFIG_DOUBLE, CONFIG_STRLIST, CONFIG_STRING } config_kind_t;

typedef struct config_key {
    const char *name;
    config_kind_t kind;
    size_t offset;
} config_key_t;

static const config_key_t config_keys[] = {
    {"raylet_report_resources_period_milliseconds", CONFIG_INT,
     offsetof(config_t, raylet_report_resources_period_milliseconds)},
    {"raylet_liveness_self_check_interval_ms", CONFIG_INT,
     offsetof(config_t, raylet_liveness_self_check_interval_ms)},
    {"gcs_rpc_server_reconnect_timeout_s", CONFIG_INT,
     offsetof(config_t, gcs_rpc_server_reconnect_timeout_s)},
    {"enable_pipe_based_agent_to_parent_health_check", CONFIG_BOOL,
     offsetof(config_t, enable_pipe_based_agent_to_parent_health_check)},
    {"agent_port_file_timeout_ms", CONFIG_INT, offsetof(config_t, agent_port_file_timeout_ms)},
    {"worker_register_timeout_seconds", CONFIG_INT, offsetof(config_t, worker_register_timeout_seconds)},
    {"idle_worker_killing_time_threshold_ms", CONFIG_INT,
     offsetof(config_t, idle_worker_killing_time_threshold_ms)},
    {"num_workers_soft_limit", CONFIG_INT, offsetof(config_t, num_workers_soft_limit)},
    {"object_store_full_delay_ms", CONFIG_INT, offsetof(config_t, object_store_full_delay_ms)},
    {"oom_grace_period_s", CONFIG_INT, offsetof(config_t, oom_grace_period_s)},
    {"local_fs_capacity_threshold", CONFIG_DOUBLE, offsetof(config_t, local_fs_capacity_threshold)},
    {"preallocate_plasma_memory", CONFIG_BOOL, offsetof(config_t, preallocate_plasma_memory)},
    {"kill_worker_timeout_milliseconds", CONFIG_INT, offsetof(config_t, kill_worker_timeout_milliseconds)},
    {"support_fork", CONFIG_BOOL, offsetof(config_t, support_fork)},
    {"worker_num_grpc_internal_threads", CONFIG_INT, offsetof(config_t, worker_num_grpc_internal_threads)},
    {"preload_python_modules", CONFIG_STRLIST, offsetof(config_t, preload_python_modules)},
    {"debug_dump_period_milliseconds", CONFIG_INT, offsetof(config_t, debug_dump_period_milliseconds)},
    {"prestart_worker_first_driver", CONFIG_BOOL, offsetof(config_t, prestart_worker_first_driver)},
    {"enable_worker_prestart", CONFIG_BOOL, offsetof(config_t, enable_worker_prestart)},
    {"worker_cap_enabled", CONFIG_BOOL, offsetof(config_t, worker_cap_enabled)},
    {"worker_cap_initial_backoff_delay_ms", CONFIG_INT, offsetof(config_t, worker_cap_initial_backoff_delay_ms)},
    {"worker_cap_max_backoff_delay_ms", CONFIG_INT, offsetof(config_t, worker_cap_max_backoff_delay_ms)},
    {"object_manager_default_chunk_size", CONFIG_INT, offsetof(config_t, object_manager_default_chunk_size)},
    {"object_manager_max_bytes_in_flight", CONFIG_INT, offsetof(config_t, object_manager_max_bytes_in_flight)},
    {"object_manager_pull_timeout_ms", CONFIG_INT, offsetof(config_t, object_manager_pull_timeout_ms)},
    {"object_manager_push_timeout_ms", CONFIG_INT, offsetof(config_t, object_manager_push_timeout_ms)},
    {"object_manager_timer_freq_ms", CONFIG_INT, offsetof(config_t, object_manager_timer_freq_ms)},
    {"fetch_fail_timeout_milliseconds", CONFIG_INT, offsetof(config_t, fetch_fail_timeout_milliseconds)},
    {"scheduler_report_pinned_bytes_only", CONFIG_BOOL, offsetof(config_t, scheduler_report_pinned_bytes_only)},
    {"object_spilling_config", CONFIG_STRING, offsetof(config_t, object_spilling_config)},
    {"object_spilling_threshold", CONFIG_DOUBLE, offsetof(config_t, object_spilling_threshold)},
    {"min_spilling_size", CONFIG_INT, offsetof(config_t, min_spilling_size)},
    {"max_fused_object_count", CONFIG_INT, offsetof(config_t, max_fused_object_count)},
    {"max_spilling_file_size_bytes", CONFIG_INT, offsetof(config_t, max_spilling_file_size_bytes)},
    {"max_io_workers", CONFIG_INT, offsetof(config_t, max_io_workers)},
    {"free_objects_period_milliseconds", CONFIG_INT, offsetof(config_t, free_objects_period_milliseconds)},
    {"is_external_storage_type_fs", CONFIG_BOOL, offsetof(config_t, is_external_storage_type_fs)},
    {"metrics_report_interval_ms", CONFIG_INT, offsetof(config_t, metrics_report_interval_ms)},
    {"enable_open_telemetry", CONFIG_BOOL, offsetof(config_t, enable_open_telemetry)},
    {"memory_usage_threshold", CONFIG_DOUBLE, offsetof(config_t, memory_usage_threshold)},
    {"memory_monitor_refresh_ms", CONFIG_INT, offsetof(config_t, memory_monitor_refresh_ms)},
    {"min_memory_free_bytes", CONFIG_INT, offsetof(config_t, min_memory_free_bytes)},
    {"task_failure_entry_ttl_ms", CONFIG_INT, offsetof(config_t, task_failure_entry_ttl_ms)},
    {"worker_killing_policy_by_group", CONFIG_BOOL, offsetof(config_t, worker_killing_policy_by_group)},
    {"max_kill_memory_buffer_bytes", CONFIG_INT, offsetof(config_t, max_kill_memory_buffer_bytes)},
};

/* Ray 2.56 made killing by time the default; before it, by group. */
static bool release_kills_by_group(void)
{
    int major = 0, minor = 0;
    if (sscanf(CRAYLET_RAY_VERSION, "%d.%d", &major, &minor) != 2)
        return false;
    return major < 2 || (major == 2 && minor < 56);
}

static const char *config_kind_name(config_kind_t kind)
{
    switch (kind) {
    case CONFIG_INT: return "integer";
    case CONFIG_BOOL: return "boolean";
    case CONFIG_DOUBLE: return "number";
    case CONFIG_STRING: return "string";
    default: return "list of strings";
    }
}

static bool config_set_string(char **field, const char *s, size_t len)
{
    char *copy = xmalloc(len + 1);
    memcpy(copy, s, len);
    copy[len] = '\0';
    free(*field);
    *field = copy;
    return true;
}

/* A module name list goes onto a worker's command line: only characters a
 * dotted Python name and the comma between names can hold. */
static bool config_names_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(c == '_' || c == '.' || c == ',' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z')))
            return false;
    }
    return true;
}

static bool config_string_json(const json_t *v, char **field)
{
    size_t len;
    const char *str = json_string(v, &len);
    return str && !memchr(str, '\0', len) && config_set_string(field, str, len);
}

static bool config_parse_strlist_env(const char *s, char **field)
{
    return config_names_ok(s, strlen(s)) && config_set_string(field, s, strlen(s));
}

static bool config_strlist_json(const json_t *v, char **field)
{
    if (v->type != JSON_ARRAY)
        return false;
    size_t len = 0;
    for (size_t i = 0; i < v->u.array.count; i++) {
        const json_t *item = v->u.array.items[i];
        if (item->type != JSON_STRING || !config_names_ok(item->u.string.ptr, item->u.string.len) ||
            memchr(item->u.string.ptr, ',', item->u.string.len))
            return false;
        len += item->u.string.len + 1;
    }
    char *joined = xcalloc(1, len + 1);
    for (size_t i = 0; i < v->u.array.count; i++) {
        if (i)
            strcat(joined, ",");
        strncat(joined, v->u.array.items[i]->u.string.ptr, v->u.array.items[i]->u.string.len);
    }
    free(*field);
    *field = joined;
    return true;
}

static bool config_parse_int(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return false;
    *out = v;
    return true;
}

static bool config_parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v != v)
        return false;
    *out = v;
    return true;
}

static bool config_parse_bool(const char *s, bool *out)
{
    if (!strcmp(s, "1") || !strcasecmp(s, "true")) {
        *out = true;
        return true;
    }
    if (!strcmp(s, "0") || !strcasecmp(s, "false")) {
        *out = false;
        return true;
    }
    return false;
}

void config_init(config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->raylet_report_resources_period_milliseconds = 100;
    cfg->raylet_liveness_self_check_interval_ms = 60000;
    cfg->gcs_rpc_server_reconnect_timeout_s = 60;
    cfg->enable_pipe_based_agent_to_parent_health_check = true;
    cfg->agent_port_file_timeout_ms = 30000;
    cfg->worker_register_timeout_seconds = 60;
    cfg->idle_worker_killing_time_threshold_ms = 1000;
    cfg->num_workers_soft_limit = -1;
    cfg->object_store_full_delay_ms = 10;
    cfg->oom_grace_period_s = 2;
    cfg->local_fs_capacity_threshold = 0.95;
    cfg->preallocate_plasma_memory = false;
    cfg->kill_worker_timeout_milliseconds = 5000;
    cfg->debug_dump_period_milliseconds = 10000;
    cfg->prestart_worker_first_driver = true;
    cfg->enable_worker_prestart = false;
    cfg->worker_cap_enabled = true;
    cfg->worker_cap_initial_backoff_delay_ms = 1000;
    cfg->worker_cap_max_backoff_delay_ms = 10000;
    cfg->object_manager_default_chunk_size = 5 * 1024 * 1024;
    cfg->object_manager_max_bytes_in_flight = 2LL * 1024 * 1024 * 1024;
    cfg->object_manager_pull_timeout_ms = 10000;
    cfg->object_manager_push_timeout_ms = 10000;
    cfg->object_manager_timer_freq_ms = 100;
    cfg->fetch_fail_timeout_milliseconds = 600000;
    cfg->scheduler_report_pinned_bytes_only = true;
    cfg->object_spilling_config = xstrdup("");
    cfg->object_spilling_threshold = 0.8;
    cfg->min_spilling_size = 100 * 1024 * 1024;
    cfg->max_fused_object_count = 2000;
    cfg->max_spilling_file_size_bytes = -1;
    cfg->max_io_workers = 4;
    cfg->free_objects_period_milliseconds = 1000;
    cfg->is_external_storage_type_fs = true;
    cfg->metrics_report_interval_ms = 10000;
    cfg->enable_open_telemetry = true;
    cfg->memory_usage_threshold = 0.95;
    cfg->memory_monitor_refresh_ms = 250;
    cfg->min_memory_free_bytes = -1;
    cfg->task_failure_entry_ttl_ms = 15 * 60 * 1000;
    cfg->worker_killing_policy_by_group = release_kills_by_group();
    cfg->max_kill_memory_buffer_bytes = 3LL * 1024 * 1024 * 1024;
    cfg->system_config_json = xstrdup("{}");
    cfg->preload_python_modules = xstrdup("");
    for (size_t i = 0; i < sizeof config_keys / sizeof config_keys[0]; i++) {
        const config_key_t *k = &config_keys[i];
        char var[128];
        snprintf(var, sizeof var, "RAY_%s", k->name);
        const char *v = getenv(var);
        if (!v)
            continue;
        void *field = (char *)cfg + k->offset;
        bool ok = k->kind == CONFIG_INT      ? config_parse_int(v, field)
                  : k->kind == CONFIG_BOOL   ? config_parse_bool(v, field)
                  : k->kind == CONFIG_DOUBLE ? config_parse_double(v, field)
                  : k->kind == CONFIG_STRING ? config_set_string(field, v, strlen(v))
                                             : config_parse_strlist_env(v, field);
        if (!ok)
            log_warn("ignoring %s=%s: not a valid %s", var, v, config_kind_name(k->kind));
    }
}

int config_apply_json(config_t *cfg, const char *json)
{
    char *copy = xstrdup(json ? json : "");
    free(cfg->system_config_json);
    cfg->system_config_json = copy;
    if (!json || !*json)
        return 0;

    json_t *root = NULL;
    char err[128];
    if (json_parse(json, strlen(json), &root, err, sizeof err) != 0 || root->type != JSON_OBJECT) {
        log_warn("system config from GCS is not a JSON object (%s); using defaults", err);
        json_free(root);
        return CR_EBADMSG;
    }
    for (size_t i = 0; i < sizeof config_keys / sizeof config_keys[0]; i++) {
        const config_key_t *k = &config_keys[i];
        const json_t *v = json_object_get(root, k->name);
        if (!v)
            continue;
        void *field = (char *)cfg + k->offset;
        bool ok = k->kind == CONFIG_INT      ? json_int64(v, field)
                  : k->kind == CONFIG_BOOL   ? json_bool(v, field)
                  : k->kind == CONFIG_DOUBLE ? json_number(v, field)
                  : k->kind == CONFIG_STRING ? config_string_json(v, field)
                                             : config_strlist_json(v, field);
        if (!ok)
            log_warn("system config key %s has the wrong type; ignored", k->name);
    }
    json_free(root);
    return 0;
}

void config_free(config_t *cfg)
{
    free(cfg->system_config_json);
    cfg->system_config_json = NULL;
    free(cfg->preload_python_modules);
    cfg->preload_python_modules = NULL;
    free(cfg->object_spilling_config);
    cfg->object_spilling_config = NULL;
}

int config_localize_spilling(config_t *cfg, const char *dir)
{
    const char *text = cfg->object_spilling_config;
    if (!text || !*text || !dir || !*dir)
        return 0;
    json_t *root = NULL;
    char err[128];
    if (json_parse(text, strlen(text), &root, err, sizeof err) != 0) {
        log_warn("object_spilling_config is not JSON (%s); spilling where it says", err);
        return CR_EBADMSG;
    }
    const char *type = json_string(json_object_get(root, "type"), NULL);
    json_t *params = (json_t *)json_object_get(root, "params");
    if (type && strcmp(type, "filesystem") == 0 && json_object_get(params, "directory_path") &&
        json_object_set_string(params, "directory_path", dir) == 0) {
        free(cfg->object_spilling_config);
        cfg->object_spilling_config = json_dump(root);
    }
    json_free(root);
    return 0;
}
