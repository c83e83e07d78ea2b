#include "raylet/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"

typedef enum { CONFIG_INT, CONFIG_BOOL, CONFIG_DOUBLE } config_kind_t;

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
};

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
    cfg->system_config_json = strdup("{}");
    if (!cfg->system_config_json)
        abort();
    for (size_t i = 0; i < sizeof config_keys / sizeof config_keys[0]; i++) {
        const config_key_t *k = &config_keys[i];
        char var[128];
        snprintf(var, sizeof var, "RAY_%s", k->name);
        const char *v = getenv(var);
        if (!v)
            continue;
        void *field = (char *)cfg + k->offset;
        bool ok = k->kind == CONFIG_INT    ? config_parse_int(v, field)
                  : k->kind == CONFIG_BOOL ? config_parse_bool(v, field)
                                           : config_parse_double(v, field);
        if (!ok)
            log_warn("ignoring %s=%s: not a valid %s", var, v,
                     k->kind == CONFIG_INT ? "integer" : k->kind == CONFIG_BOOL ? "boolean" : "number");
    }
}

int config_apply_json(config_t *cfg, const char *json)
{
    char *copy = strdup(json ? json : "");
    if (!copy)
        abort();
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
        bool ok = k->kind == CONFIG_INT    ? json_int64(v, field)
                  : k->kind == CONFIG_BOOL ? json_bool(v, field)
                                           : json_number(v, field);
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
}
