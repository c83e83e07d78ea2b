/* Unit tests for the command line (raylet/flags.c). */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "raylet/flags.h"

#define NODE_ID "0123456789abcdef0123456789abcdef0123456789abcdef01234567"
#define CLUSTER_ID "fedcba9876543210fedcba9876543210fedcba9876543210fedcba98"

/* The flags the daemon cannot start without, spelled as services.py does. */
static const char *const required_args[] = {
    "--raylet_socket_name=/tmp/session/sockets/raylet",
    "--store_socket_name=/tmp/session/sockets/plasma_store",
    "--node_id=" NODE_ID,
    "--node_ip_address=127.0.0.1",
    "--gcs-address=127.0.0.1:6379",
    "--session_dir=/tmp/session",
    "--cluster-id=" CLUSTER_ID,
    "--object_store_memory=78643200",
};
#define N_REQUIRED (sizeof required_args / sizeof *required_args)

typedef struct run {
    flags_t flags;
    int rc;
    char err[512];
} run_t;

/* argv = "raylet" + required flags (except the one at index `skip`, or none
 * when skip < 0) + the extra arguments (NULL-terminated). */
static void parse_with(run_t *r, int skip, const char *first, ...)
{
    const char *argv[128];
    int argc = 0;
    argv[argc++] = "raylet";
    for (size_t i = 0; i < N_REQUIRED; i++)
        if ((int)i != skip)
            argv[argc++] = required_args[i];
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a; a = va_arg(ap, const char *))
        argv[argc++] = a;
    va_end(ap);
    memset(r->err, 'Z', sizeof r->err);
    r->rc = flags_parse(argc, (char **)argv, &r->flags, r->err, sizeof r->err);
    cr_assert(memchr(r->err, '\0', sizeof r->err) != NULL, "err not NUL-terminated");
}

#define PARSE(r, ...) parse_with((r), -1, __VA_ARGS__, NULL)

static void expect_ok(run_t *r)
{
    cr_assert_eq(r->rc, 0, "unexpected error: %s", r->err);
}

static void expect_error(run_t *r, const char *message)
{
    cr_assert_eq(r->rc, CR_EBADFLAG, "expected an error, got rc %d", r->rc);
    cr_assert_str_eq(r->err, message);
    /* On error the struct holds nothing to free. */
    cr_assert_null(r->flags.node_id);
    cr_assert_null(r->flags.resources);
    cr_assert_null(r->flags.labels);
    cr_assert_null(r->flags.worker_port_list);
}

static void expect_error_containing(run_t *r, const char *part)
{
    cr_assert_eq(r->rc, CR_EBADFLAG, "expected an error, got rc %d", r->rc);
    cr_assert(strstr(r->err, part) != NULL, "message \"%s\" lacks \"%s\"", r->err, part);
    cr_assert_null(strchr(r->err, '\n'), "message spans lines: %s", r->err);
}

/* ---- the real command line ----------------------------------------------------- */

Test(flags, full_services_py_command_line)
{
    run_t r;
    PARSE(&r, "--object_manager_port=0", "--min_worker_port=10002", "--max_worker_port=19999",
          "--node_manager_port=0", "--maximum_startup_concurrency=8",
          "--static_resource_list=CPU,8,GPU,2,memory,1073741824,object_store_memory,78643200,"
          "node:127.0.0.1,1.0,node:__internal_head__,1.0,accelerator_type:A100,0",
          "--python_worker_command=/usr/bin/python3 /ray/default_worker.py --node-ip-address=127.0.0.1 "
          "--node-manager-port=RAY_NODE_MANAGER_PORT_PLACEHOLDER RAY_WORKER_DYNAMIC_OPTION_PLACEHOLDER",
          "--java_worker_command=", "--cpp_worker_command=", "--native_library_path=/ray/cpp/lib",
          "--temp_dir=/tmp/ray", "--log_dir=/tmp/session/logs", "--resource_dir=/tmp/session/runtime_resources",
          "--metrics-agent-port=61000", "--metrics_export_port=61001", "--runtime_env_agent_port=61002",
          "--plasma_directory=/dev/shm", "--fallback_directory=/tmp/ray", "--ray-debugger-external=0",
          "--session-name=session_2026", "--labels={\"ray.io/market-type\": \"spot\", \"zone\": \"a\"}",
          "--enable-resource-isolation", "--cgroup-path=/sys/fs/cgroup", "--system-reserved-cpu-weight=100",
          "--system-reserved-memory-bytes=1048576", "--system-pids=12,34",
          "--stdout_filepath=/tmp/session/logs/raylet.out", "--stderr_filepath=/tmp/session/logs/raylet.err",
          "--head", "--worker_port_list=10002,10003", "--num_prestart_python_workers=8",
          "--dashboard_agent_command=/usr/bin/python3 agent.py", "--runtime_env_agent_command=/usr/bin/python3 rea.py",
          "--huge_pages", "--node-name=my-node", "--dashboard_agent_listen_port=52365");
    expect_ok(&r);
    flags_t *f = &r.flags;
    cr_assert_str_eq(f->raylet_socket_name, "/tmp/session/sockets/raylet");
    cr_assert_str_eq(f->store_socket_name, "/tmp/session/sockets/plasma_store");
    cr_assert_eq(f->object_manager_port, 0);
    cr_assert_eq(f->node_manager_port, 0);
    cr_assert_eq(f->min_worker_port, 10002);
    cr_assert_eq(f->max_worker_port, 19999);
    cr_assert_str_eq(f->node_id, NODE_ID);
    cr_assert_str_eq(f->node_ip_address, "127.0.0.1");
    cr_assert_str_eq(f->node_name, "my-node");
    cr_assert_eq(f->maximum_startup_concurrency, 8);
    cr_assert_eq(f->resource_count, 6); /* the zero one dropped */
    cr_assert_str_eq(f->resources[0].name, "CPU");
    cr_assert_float_eq(f->resources[0].value, 8.0, 0);
    cr_assert_str_eq(f->resources[1].name, "GPU");
    cr_assert_str_eq(f->resources[2].name, "memory");
    cr_assert_float_eq(f->resources[2].value, 1073741824.0, 0);
    cr_assert_str_eq(f->resources[4].name, "node:127.0.0.1");
    cr_assert_str_eq(f->resources[5].name, "node:__internal_head__");
    cr_assert(strstr(f->python_worker_command, "RAY_WORKER_DYNAMIC_OPTION_PLACEHOLDER") != NULL);
    cr_assert_str_eq(f->java_worker_command, "");
    cr_assert_str_eq(f->cpp_worker_command, "");
    cr_assert_str_eq(f->native_library_path, "/ray/cpp/lib");
    cr_assert_str_eq(f->temp_dir, "/tmp/ray");
    cr_assert_str_eq(f->session_dir, "/tmp/session");
    cr_assert_str_eq(f->log_dir, "/tmp/session/logs");
    cr_assert_str_eq(f->resource_dir, "/tmp/session/runtime_resources");
    cr_assert_eq(f->metrics_agent_port, 61000);
    cr_assert_eq(f->metrics_export_port, 61001);
    cr_assert_eq(f->runtime_env_agent_port, 61002);
    cr_assert_eq(f->dashboard_agent_listen_port, 52365);
    cr_assert_eq(f->object_store_memory, 78643200);
    cr_assert_str_eq(f->plasma_directory, "/dev/shm");
    cr_assert_str_eq(f->fallback_directory, "/tmp/ray");
    cr_assert_not(f->ray_debugger_external);
    cr_assert_str_eq(f->gcs_address, "127.0.0.1:6379");
    cr_assert_str_eq(f->session_name, "session_2026");
    cr_assert_eq(f->label_count, 2);
    cr_assert_str_eq(f->labels[0].key, "ray.io/market-type");
    cr_assert_str_eq(f->labels[0].value, "spot");
    cr_assert_str_eq(f->labels[1].key, "zone");
    cr_assert_str_eq(f->cluster_id, CLUSTER_ID);
    cr_assert(f->enable_resource_isolation);
    cr_assert_str_eq(f->cgroup_path, "/sys/fs/cgroup");
    cr_assert_eq(f->system_reserved_cpu_weight, 100);
    cr_assert_eq(f->system_reserved_memory_bytes, 1048576);
    cr_assert_str_eq(f->system_pids, "12,34");
    cr_assert_str_eq(f->stdout_filepath, "/tmp/session/logs/raylet.out");
    cr_assert_str_eq(f->stderr_filepath, "/tmp/session/logs/raylet.err");
    cr_assert(f->head);
    cr_assert_eq(f->worker_port_count, 2);
    cr_assert_eq(f->worker_port_list[0], 10002);
    cr_assert_eq(f->worker_port_list[1], 10003);
    cr_assert_eq(f->num_prestart_python_workers, 8);
    cr_assert_str_eq(f->dashboard_agent_command, "/usr/bin/python3 agent.py");
    cr_assert_str_eq(f->runtime_env_agent_command, "/usr/bin/python3 rea.py");
    cr_assert(f->huge_pages);
    flags_free(f);
    flags_free(f); /* idempotent */
}

Test(flags, defaults_with_only_required_flags)
{
    run_t r;
    parse_with(&r, -1, NULL);
    expect_ok(&r);
    cr_assert_eq(r.flags.maximum_startup_concurrency, 1);
    cr_assert_str_eq(r.flags.node_name, "127.0.0.1"); /* defaults to the ip */
    cr_assert_null(r.flags.temp_dir);
    cr_assert_eq(r.flags.resource_count, 0);
    cr_assert_eq(r.flags.label_count, 0);
    cr_assert_eq(r.flags.worker_port_count, 0);
    cr_assert_not(r.flags.head);
    flags_free(&r.flags);
}

/* ---- spellings ---------------------------------------------------------------------- */

Test(flags, dash_and_underscore_spellings)
{
    run_t r;
    PARSE(&r, "--node-manager-port=1001", "--object_manager_port=1002", "--metrics_agent_port=1003",
          "--metrics-export-port=1004", "--ray_debugger_external=1", "--session_name=s",
          "--huge-pages", "--system_pids=1");
    expect_ok(&r);
    cr_assert_eq(r.flags.node_manager_port, 1001);
    cr_assert_eq(r.flags.object_manager_port, 1002);
    cr_assert_eq(r.flags.metrics_agent_port, 1003);
    cr_assert_eq(r.flags.metrics_export_port, 1004);
    cr_assert(r.flags.ray_debugger_external);
    cr_assert_str_eq(r.flags.session_name, "s");
    cr_assert(r.flags.huge_pages);
    flags_free(&r.flags);
}

Test(flags, space_separated_values_and_single_dash)
{
    run_t r;
    PARSE(&r, "--node_manager_port", "4321", "--temp-dir", "/tmp/x", "-log_dir=/tmp/logs", "-min-worker-port", "5",
          "--python_worker_command", "--looks-like-a-flag but is a value");
    expect_ok(&r);
    cr_assert_eq(r.flags.node_manager_port, 4321);
    cr_assert_str_eq(r.flags.temp_dir, "/tmp/x");
    cr_assert_str_eq(r.flags.log_dir, "/tmp/logs");
    cr_assert_eq(r.flags.min_worker_port, 5);
    cr_assert_str_eq(r.flags.python_worker_command, "--looks-like-a-flag but is a value");
    flags_free(&r.flags);
}

Test(flags, value_may_contain_equals)
{
    run_t r;
    PARSE(&r, "--python_worker_command=python w.py --a=b --c=d");
    expect_ok(&r);
    cr_assert_str_eq(r.flags.python_worker_command, "python w.py --a=b --c=d");
    flags_free(&r.flags);
}

Test(flags, missing_value_at_end)
{
    run_t r;
    PARSE(&r, "--node_manager_port");
    expect_error(&r, "missing value for --node_manager_port");
}

Test(flags, repeated_flag_last_wins)
{
    run_t r;
    PARSE(&r, "--temp_dir=/a", "--temp-dir=/b", "--static_resource_list=CPU,1", "--static_resource_list=CPU,2",
          "--labels={\"a\":\"1\"}", "--labels={\"b\":\"2\"}", "--worker_port_list=1", "--worker_port_list=2,3",
          "--node_id=" CLUSTER_ID);
    expect_ok(&r);
    cr_assert_str_eq(r.flags.temp_dir, "/b");
    cr_assert_eq(r.flags.resource_count, 1);
    cr_assert_float_eq(r.flags.resources[0].value, 2.0, 0);
    cr_assert_eq(r.flags.label_count, 1);
    cr_assert_str_eq(r.flags.labels[0].key, "b");
    cr_assert_eq(r.flags.worker_port_count, 2);
    cr_assert_str_eq(r.flags.node_id, CLUSTER_ID);
    flags_free(&r.flags);
}

/* ---- booleans ------------------------------------------------------------------------- */

Test(flags, booleans)
{
    run_t r;
    PARSE(&r, "--head=false", "--huge_pages=TRUE", "--ray-debugger-external=yes", "--enable-resource-isolation=0");
    expect_ok(&r);
    cr_assert_not(r.flags.head);
    cr_assert(r.flags.huge_pages);
    cr_assert(r.flags.ray_debugger_external);
    cr_assert_not(r.flags.enable_resource_isolation);
    flags_free(&r.flags);

    PARSE(&r, "--head", "--nohead");
    expect_ok(&r);
    cr_assert_not(r.flags.head);
    flags_free(&r.flags);

    /* A bare boolean does not swallow the next token. */
    PARSE(&r, "--head", "--temp_dir=/t");
    expect_ok(&r);
    cr_assert(r.flags.head);
    cr_assert_str_eq(r.flags.temp_dir, "/t");
    flags_free(&r.flags);

    PARSE(&r, "--head", "stray");
    expect_ok(&r);
    cr_assert(r.flags.head);
    flags_free(&r.flags);
}

Test(flags, bad_boolean)
{
    run_t r;
    PARSE(&r, "--head=maybe");
    expect_error(&r, "invalid value for --head: \"maybe\" (expected true/false/1/0)");
    PARSE(&r, "--ray-debugger-external=");
    expect_error(&r, "invalid value for --ray-debugger-external: \"\" (expected true/false/1/0)");
}

/* ---- integers ------------------------------------------------------------------------- */

Test(flags, port_errors)
{
    run_t r;
    PARSE(&r, "--node_manager_port=abc");
    expect_error(&r, "invalid value for --node_manager_port: \"abc\" (expected an integer 0..65535)");
    PARSE(&r, "--node-manager-port=65536");
    expect_error(&r, "invalid value for --node-manager-port: \"65536\" (expected an integer 0..65535)");
    const char *bad[] = {"--object_manager_port=-1", "--object_manager_port=12x", "--object_manager_port= 12",
                         "--object_manager_port=+12", "--object_manager_port=",  "--object_manager_port=0x10",
                         "--object_manager_port=1.0", "--metrics-agent-port=99999999999999999999999",
                         "--min_worker_port=-", "--max_worker_port=12 "};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        PARSE(&r, bad[i]);
        expect_error_containing(&r, "(expected an integer 0..65535)");
        cr_assert(strncmp(r.err, "invalid value for --", 20) == 0, "%s", r.err);
    }
    PARSE(&r, "--runtime_env_agent_port=65535", "--node_manager_port=00080");
    expect_ok(&r);
    cr_assert_eq(r.flags.runtime_env_agent_port, 65535);
    cr_assert_eq(r.flags.node_manager_port, 80);
    flags_free(&r.flags);
}

Test(flags, integer_ranges)
{
    run_t r;
    PARSE(&r, "--maximum_startup_concurrency=0");
    expect_error(&r, "invalid value for --maximum_startup_concurrency: \"0\" (expected an integer 1..2147483647)");
    PARSE(&r, "--maximum_startup_concurrency=2147483648");
    expect_error_containing(&r, "--maximum_startup_concurrency");
    PARSE(&r, "--num_prestart_python_workers=2.5");
    expect_error_containing(&r, "--num_prestart_python_workers: \"2.5\"");
    PARSE(&r, "--num_prestart_python_workers=-1");
    expect_error_containing(&r, "--num_prestart_python_workers");
    PARSE(&r, "--system-reserved-memory-bytes=-5");
    expect_error_containing(&r, "--system-reserved-memory-bytes");
    PARSE(&r, "--system-reserved-cpu-weight=x");
    expect_error_containing(&r, "--system-reserved-cpu-weight");
    PARSE(&r, "--object_store_memory=9223372036854775807");
    expect_ok(&r);
    cr_assert_eq(r.flags.object_store_memory, INT64_MAX);
    flags_free(&r.flags);
    PARSE(&r, "--object_store_memory=9223372036854775808");
    expect_error_containing(&r, "--object_store_memory");
}

Test(flags, object_store_memory_must_be_positive)
{
    run_t r;
    PARSE(&r, "--object_store_memory=0");
    expect_error(&r, "invalid value for --object_store_memory: \"0\" (expected an integer 1..9223372036854775807)");
    PARSE(&r, "--object_store_memory=-100");
    expect_error_containing(&r, "--object_store_memory");
}

Test(flags, worker_port_range)
{
    run_t r;
    PARSE(&r, "--min_worker_port=2000", "--max_worker_port=1000");
    expect_error(&r, "invalid value for --max_worker_port: \"1000\" (below --min_worker_port 2000)");
    /* Zero means "any" and is not compared. */
    PARSE(&r, "--min_worker_port=2000", "--max_worker_port=0");
    expect_ok(&r);
    flags_free(&r.flags);
}

/* ---- ids ----------------------------------------------------------------------------- */

Test(flags, node_id_lowercased)
{
    run_t r;
    PARSE(&r, "--node_id=0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF01234567", "--cluster-id=" CLUSTER_ID);
    expect_ok(&r);
    cr_assert_str_eq(r.flags.node_id, NODE_ID);
    flags_free(&r.flags);
}

Test(flags, bad_ids)
{
    run_t r;
    PARSE(&r, "--node_id=abc");
    expect_error(&r, "invalid value for --node_id: \"abc\" (expected 56 hex characters)");
    PARSE(&r, "--node_id=" NODE_ID "0");
    expect_error_containing(&r, "(expected 56 hex characters)");
    PARSE(&r, "--node_id=g123456789abcdef0123456789abcdef0123456789abcdef01234567");
    expect_error_containing(&r, "--node_id");
    PARSE(&r, "--cluster-id=xyz");
    expect_error(&r, "invalid value for --cluster-id: \"xyz\" (expected 56 hex characters)");
    PARSE(&r, "--cluster_id=");
    expect_error_containing(&r, "--cluster_id");
}

/* ---- required flags ------------------------------------------------------------------ */

Test(flags, each_required_flag_missing)
{
    const char *expected[N_REQUIRED] = {
        "missing required flag --raylet_socket_name", "missing required flag --store_socket_name",
        "missing required flag --node_id",            "missing required flag --node_ip_address",
        "missing required flag --gcs-address",        "missing required flag --session_dir",
        "missing required flag --cluster-id",         "missing required flag --object_store_memory",
    };
    for (size_t i = 0; i < N_REQUIRED; i++) {
        run_t r;
        parse_with(&r, (int)i, NULL);
        expect_error(&r, expected[i]);
    }
}

Test(flags, required_flag_empty_counts_as_missing)
{
    run_t r;
    PARSE(&r, "--gcs-address=");
    expect_error(&r, "missing required flag --gcs-address");
    PARSE(&r, "--node_ip_address=");
    expect_error(&r, "missing required flag --node_ip_address");
}

/* ---- --static_resource_list -------------------------------------------------------------- */

Test(flags, resource_list_values)
{
    run_t r;
    PARSE(&r, "--static_resource_list=CPU,0.5,GPU,0,custom,1e-05,tiny,0.0001,mem,1.5e9,z,0.0");
    expect_ok(&r);
    /* Zero, and what rounds to zero at 1/10000, are dropped. */
    cr_assert_eq(r.flags.resource_count, 3);
    cr_assert_str_eq(r.flags.resources[0].name, "CPU");
    cr_assert_float_eq(r.flags.resources[0].value, 0.5, 0);
    cr_assert_str_eq(r.flags.resources[1].name, "tiny");
    cr_assert_str_eq(r.flags.resources[2].name, "mem");
    cr_assert_float_eq(r.flags.resources[2].value, 1.5e9, 0);
    flags_free(&r.flags);

    PARSE(&r, "--static_resource_list=");
    expect_ok(&r);
    cr_assert_eq(r.flags.resource_count, 0);
    flags_free(&r.flags);
}

Test(flags, resource_list_odd_length)
{
    run_t r;
    PARSE(&r, "--static_resource_list=CPU,8,GPU");
    expect_error(&r, "invalid value for --static_resource_list: \"CPU,8,GPU\" (expected name,value pairs but got "
                     "an odd number of items (3))");
    PARSE(&r, "--static_resource_list=CPU");
    expect_error_containing(&r, "odd number");
    PARSE(&r, "--static_resource_list=CPU,1,");
    expect_error_containing(&r, "odd number");
}

Test(flags, resource_list_bad_values)
{
    const char *bad[] = {"CPU,-1", "CPU,abc", "CPU,inf", "CPU,nan", "CPU,", "CPU, 1", "CPU,1x", "CPU,0x10",
                         "CPU,1e400", "CPU,1e300", "CPU,--1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char arg[64];
        snprintf(arg, sizeof arg, "--static_resource_list=%s", bad[i]);
        run_t r;
        PARSE(&r, arg);
        expect_error_containing(&r, "invalid value for --static_resource_list:");
        expect_error_containing(&r, "bad value");
    }
}

Test(flags, resource_list_bad_names)
{
    run_t r;
    PARSE(&r, "--static_resource_list=,1");
    expect_error_containing(&r, "empty resource name");
    PARSE(&r, "--static_resource_list=CPU,1,,2");
    expect_error_containing(&r, "empty resource name in pair 2");
    PARSE(&r, "--static_resource_list=CPU,1,CPU,2");
    expect_error_containing(&r, "resource \"CPU\" given twice");
    PARSE(&r, "--static_resource_list=a\tb,1");
    expect_error_containing(&r, "control character");
}

/* ---- --labels --------------------------------------------------------------------------- */

Test(flags, labels_ok)
{
    run_t r;
    PARSE(&r, "--labels=");
    expect_ok(&r);
    cr_assert_eq(r.flags.label_count, 0);
    cr_assert_null(r.flags.labels);
    flags_free(&r.flags);

    PARSE(&r, "--labels={}");
    expect_ok(&r);
    cr_assert_eq(r.flags.label_count, 0);
    flags_free(&r.flags);

    /* json.dumps escapes non-ASCII; the label holds UTF-8. */
    PARSE(&r, "--labels={\"region\": \"caf\\u00e9\", \"empty\": \"\"}");
    expect_ok(&r);
    cr_assert_eq(r.flags.label_count, 2);
    cr_assert_str_eq(r.flags.labels[0].value, "caf\xc3\xa9");
    cr_assert_str_eq(r.flags.labels[1].key, "empty");
    cr_assert_str_eq(r.flags.labels[1].value, "");
    flags_free(&r.flags);
}

Test(flags, labels_errors)
{
    run_t r;
    PARSE(&r, "--labels={\"a\": 1}");
    expect_error(&r, "invalid value for --labels: \"{\\\"a\\\": 1}\" (label values must be strings)");
    PARSE(&r, "--labels=[\"a\"]");
    expect_error_containing(&r, "expected a JSON object, got array");
    PARSE(&r, "--labels=\"a\"");
    expect_error_containing(&r, "expected a JSON object, got string");
    PARSE(&r, "--labels={\"a\":");
    expect_error_containing(&r, "not valid JSON: unexpected end of input at offset 5");
    PARSE(&r, "--labels=not json");
    expect_error_containing(&r, "not valid JSON");
    PARSE(&r, "--labels={\"a\":\"1\",\"a\":\"2\"}");
    expect_error_containing(&r, "duplicate key");
    PARSE(&r, "--labels={\"a\": null}");
    expect_error_containing(&r, "label values must be strings");
    PARSE(&r, "--labels={\"a\": {\"b\": \"c\"}}");
    expect_error_containing(&r, "label values must be strings");
    PARSE(&r, "--labels={\"a\\u0000b\": \"c\"}");
    expect_error_containing(&r, "NUL");
    PARSE(&r, "--labels={\"ok\": \"1\", \"ray.io/node-id\": \"" NODE_ID "\"}");
    expect_error_containing(&r, "ray.io/node-id is reserved");
}

/* ---- --worker_port_list ------------------------------------------------------------------ */

Test(flags, worker_port_list)
{
    run_t r;
    PARSE(&r, "--worker_port_list=10002,10003,65535");
    expect_ok(&r);
    cr_assert_eq(r.flags.worker_port_count, 3);
    cr_assert_eq(r.flags.worker_port_list[2], 65535);
    flags_free(&r.flags);

    PARSE(&r, "--worker_port_list=");
    expect_ok(&r);
    cr_assert_eq(r.flags.worker_port_count, 0);
    cr_assert_null(r.flags.worker_port_list);
    flags_free(&r.flags);

    const char *bad[] = {"--worker_port_list=1,,2", "--worker_port_list=1,", "--worker_port_list=0",
                         "--worker_port_list=65536", "--worker_port_list=a", "--worker_port_list=1;2",
                         "--worker_port_list=123456789012345678901234567890"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        PARSE(&r, bad[i]);
        expect_error_containing(&r, "(expected comma-separated ports 1..65535)");
    }
}

/* ---- unknown and positional arguments ---------------------------------------------------- */

Test(flags, unknown_flags_ignored)
{
    run_t r;
    PARSE(&r, "--future_flag=1", "--future-flag-2", "value", "--bare_unknown", "--temp_dir=/kept",
          "--another_unknown", "-5", "--unknown_last");
    expect_ok(&r);
    cr_assert_str_eq(r.flags.temp_dir, "/kept");
    flags_free(&r.flags);
}

Test(flags, unknown_flag_value_is_not_taken_for_known_flag)
{
    run_t r;
    /* "--unknown value" skips "value"; the known flag after it still
     * parses; "--=x" and a very long name are unknown too. */
    char longname[300];
    memset(longname, 'a', sizeof longname);
    memcpy(longname, "--", 2);
    longname[sizeof longname - 1] = '\0';
    PARSE(&r, "--unknown", "value", "--head", "--=x", longname);
    expect_ok(&r);
    cr_assert(r.flags.head);
    flags_free(&r.flags);
}

Test(flags, positional_arguments_ignored)
{
    run_t r;
    PARSE(&r, "positional", "-", "--", "--head", "--temp_dir=/after");
    expect_ok(&r);
    /* After "--" nothing is a flag. */
    cr_assert_not(r.flags.head);
    cr_assert_null(r.flags.temp_dir);
    flags_free(&r.flags);
}

/* ---- messages ---------------------------------------------------------------------------- */

Test(flags, long_and_odd_values_quoted_and_cut)
{
    char arg[400];
    int n = snprintf(arg, sizeof arg, "--node_manager_port=");
    memset(arg + n, '7', 300);
    arg[n + 300] = '\0';
    run_t r;
    PARSE(&r, arg);
    expect_error_containing(&r, "invalid value for --node_manager_port: \"7777");
    cr_assert_lt(strlen(r.err), 200, "%s", r.err);
    cr_assert(strstr(r.err, "\"...") != NULL, "%s", r.err);

    PARSE(&r, "--head=a\nb");
    expect_error(&r, "invalid value for --head: \"a\\nb\" (expected true/false/1/0)");
}

Test(flags, small_error_buffer)
{
    const char *argv[] = {"raylet", "--node_manager_port=abc"};
    flags_t f;
    char err[8];
    cr_assert_eq(flags_parse(2, (char **)argv, &f, err, sizeof err), CR_EBADFLAG);
    cr_assert_eq(strlen(err), 7);
    cr_assert_eq(flags_parse(2, (char **)argv, &f, NULL, 0), CR_EBADFLAG);
}
