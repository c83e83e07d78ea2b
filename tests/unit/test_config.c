/* Ray's system config as the daemon reads it: defaults, RAY_<name>
 * variables, then GCS's JSON, which wins. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "proto/gen/ray_version.h"
#include "raylet/config.h"

Test(config, defaults_match_ray)
{
    unsetenv("RAY_raylet_report_resources_period_milliseconds");
    config_t c;
    config_init(&c);
    cr_assert_eq(c.raylet_report_resources_period_milliseconds, 100);
    cr_assert_eq(c.gcs_rpc_server_reconnect_timeout_s, 60);
    cr_assert_eq(c.num_workers_soft_limit, -1);
    cr_assert(c.enable_pipe_based_agent_to_parent_health_check);
    cr_assert_str_eq(c.system_config_json, "{}");
    cr_assert_float_eq(c.memory_usage_threshold, 0.95, 1e-9);
    cr_assert_eq(c.memory_monitor_refresh_ms, 250);
    cr_assert_eq(c.min_memory_free_bytes, -1);
    /* Ray 2.56 changed the default kill policy: the release decides. */
    cr_assert_eq(c.worker_killing_policy_by_group, strncmp(CRAYLET_RAY_VERSION, "2.54.", 5) == 0,
                 "release %s", CRAYLET_RAY_VERSION);
    config_free(&c);
}

Test(config, environment_overrides_and_bad_values_are_ignored)
{
    setenv("RAY_gcs_rpc_server_reconnect_timeout_s", "7", 1);
    setenv("RAY_enable_pipe_based_agent_to_parent_health_check", "false", 1);
    setenv("RAY_object_store_full_delay_ms", "12x", 1);
    setenv("RAY_local_fs_capacity_threshold", "0.5", 1);
    config_t c;
    config_init(&c);
    cr_assert_eq(c.gcs_rpc_server_reconnect_timeout_s, 7);
    cr_assert_not(c.enable_pipe_based_agent_to_parent_health_check);
    cr_assert_eq(c.object_store_full_delay_ms, 10, "a malformed value keeps the default");
    cr_assert_float_eq(c.local_fs_capacity_threshold, 0.5, 1e-9);
    config_free(&c);
    unsetenv("RAY_gcs_rpc_server_reconnect_timeout_s");
    unsetenv("RAY_enable_pipe_based_agent_to_parent_health_check");
    unsetenv("RAY_object_store_full_delay_ms");
    unsetenv("RAY_local_fs_capacity_threshold");
}

Test(config, json_from_gcs_wins_and_is_kept_verbatim)
{
    setenv("RAY_num_workers_soft_limit", "3", 1);
    config_t c;
    config_init(&c);
    const char *json = "{\"num_workers_soft_limit\": 9, \"oom_grace_period_s\": 4, \"unrelated\": [1, 2]}";
    cr_assert_eq(config_apply_json(&c, json), 0);
    cr_assert_eq(c.num_workers_soft_limit, 9);
    cr_assert_eq(c.oom_grace_period_s, 4);
    cr_assert_str_eq(c.system_config_json, json);
    config_free(&c);
    unsetenv("RAY_num_workers_soft_limit");
}

Test(config, malformed_json_keeps_defaults_but_the_text)
{
    config_t c;
    config_init(&c);
    cr_assert_eq(config_apply_json(&c, "{\"oom_grace_period_s\": "), CR_EBADMSG);
    cr_assert_eq(c.oom_grace_period_s, 2);
    cr_assert_eq(config_apply_json(&c, "[1]"), CR_EBADMSG);
    cr_assert_eq(config_apply_json(&c, "{\"oom_grace_period_s\": \"four\"}"), 0);
    cr_assert_eq(c.oom_grace_period_s, 2, "a wrongly typed value is ignored");
    config_free(&c);
}

/* preload_python_modules goes onto every worker's command line: a JSON array
 * of dotted names, or the env var's comma-separated form; anything else
 * (wrong type, a name with a space or a comma inside) keeps what was there. */
Test(config, module_lists_from_json_and_environment)
{
    setenv("RAY_preload_python_modules", "json,os.path", 1);
    config_t c;
    config_init(&c);
    cr_assert_str_eq(c.preload_python_modules, "json,os.path");
    cr_assert_eq(config_apply_json(&c, "{\"preload_python_modules\": [\"numpy\", \"a.b_c\"],"
                                       " \"support_fork\": true}"),
                 0);
    cr_assert_str_eq(c.preload_python_modules, "numpy,a.b_c");
    cr_assert(c.support_fork);
    config_apply_json(&c, "{\"preload_python_modules\": [\"x --evil\"]}");
    cr_assert_str_eq(c.preload_python_modules, "numpy,a.b_c");
    config_apply_json(&c, "{\"preload_python_modules\": [\"a,b\"]}");
    cr_assert_str_eq(c.preload_python_modules, "numpy,a.b_c");
    config_apply_json(&c, "{\"preload_python_modules\": \"numpy\"}");
    cr_assert_str_eq(c.preload_python_modules, "numpy,a.b_c");
    config_apply_json(&c, "{\"preload_python_modules\": []}");
    cr_assert_str_eq(c.preload_python_modules, "");
    config_free(&c);

    setenv("RAY_preload_python_modules", "json; rm -rf /", 1);
    config_init(&c);
    cr_assert_str_eq(c.preload_python_modules, "", "a malformed value keeps the default");
    config_free(&c);
    unsetenv("RAY_preload_python_modules");
}

Test(config, a_filesystem_spilling_config_is_localized_to_this_node)
{
    config_t c;
    config_init(&c);
    cr_assert_eq(config_apply_json(&c, "{\"object_spilling_config\": \"{\\\"type\\\": \\\"filesystem\\\", "
                                       "\\\"params\\\": {\\\"directory_path\\\": [\\\"/head/a\\\", \\\"/head/b\\\"]}}\"}"),
                 0);
    cr_assert_eq(config_localize_spilling(&c, "/mine"), 0);
    cr_assert_str_eq(c.object_spilling_config, "{\"type\":\"filesystem\",\"params\":{\"directory_path\":\"/mine\"}}");
    config_free(&c);

    config_init(&c);
    const char *s3 = "{\"type\": \"smart_open\", \"params\": {\"uri\": \"s3://b/p\"}}";
    free(c.object_spilling_config);
    c.object_spilling_config = strdup(s3);
    cr_assert_eq(config_localize_spilling(&c, "/mine"), 0);
    cr_assert_str_eq(c.object_spilling_config, s3, "cloud storage is the cluster's");
    free(c.object_spilling_config);
    c.object_spilling_config = strdup("{oops");
    cr_assert_eq(config_localize_spilling(&c, "/mine"), CR_EBADMSG);
    cr_assert_str_eq(c.object_spilling_config, "{oops");
    config_free(&c);
}
