/* craylet's command line: every flag ray/_private/services.py (Ray 2.54.0)
 * passes to the raylet.
 *
 * gflags treats '-' and '_' in a flag name alike, so both spellings are
 * accepted; values come as --name=value or --name value; booleans may be bare
 * (--head), or take =true/false/1/0.  Unknown flags are logged and ignored so
 * a newer Ray does not stop the daemon; since a bare "--unknown" may be a
 * flag that takes a value, a following token that does not itself look like
 * a flag is skipped with it (it would otherwise be ignored as a positional
 * argument anyway).  Values are validated here, once: a malformed value is
 * an error that names the flag.  Required: the socket names, node_id,
 * node_ip_address, gcs-address, session_dir, cluster-id and a positive
 * object_store_memory; the agent commands are left to main to insist on. */
#ifndef CRAYLET_RAYLET_FLAGS_H
#define CRAYLET_RAYLET_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct flags_resource {
    char *name;   /* owned */
    double value; /* > 0; zero-valued entries are dropped while parsing */
} flags_resource_t;

typedef struct flags_label {
    char *key;   /* owned */
    char *value; /* owned */
} flags_label_t;

/* All strings are owned by the struct (NULL when the flag was absent, except
 * where a default is noted); release with flags_free(). */
typedef struct flags {
    char *raylet_socket_name;
    char *store_socket_name;
    int object_manager_port; /* 0 = pick */
    int node_manager_port;   /* 0 = pick */
    int min_worker_port;
    int max_worker_port;
    int *worker_port_list; /* --worker_port_list=p1,p2 ; owned, may be NULL */
    size_t worker_port_count;
    char *node_id;          /* 56 lowercase hex chars, required */
    char *node_ip_address;  /* required */
    char *node_name;        /* defaults to node_ip_address */
    int maximum_startup_concurrency; /* default 1 */
    flags_resource_t *resources;     /* --static_resource_list; owned */
    size_t resource_count;
    char *python_worker_command;
    char *java_worker_command;
    char *cpp_worker_command;
    char *native_library_path;
    char *temp_dir;
    char *session_dir;
    char *log_dir;
    char *resource_dir;
    int metrics_agent_port;          /* 0 = read the port file */
    int metrics_export_port;         /* 0 = read the port file */
    int runtime_env_agent_port;      /* 0 = read the port file */
    int dashboard_agent_listen_port; /* 0 = read the port file */
    int64_t object_store_memory;     /* bytes, > 0 required */
    char *plasma_directory;
    char *fallback_directory;
    bool ray_debugger_external;
    char *gcs_address; /* host:port, required */
    char *session_name;
    flags_label_t *labels; /* --labels JSON object of string->string; owned */
    size_t label_count;
    char *cluster_id; /* hex, required */
    bool enable_resource_isolation;
    char *cgroup_path;
    int64_t system_reserved_cpu_weight;
    int64_t system_reserved_memory_bytes;
    char *system_pids;
    char *stdout_filepath;
    char *stderr_filepath;
    bool head;
    int num_prestart_python_workers;
    char *dashboard_agent_command;
    char *runtime_env_agent_command;
    bool huge_pages;
} flags_t;

/* Parse argv[1..argc-1] into *out (zeroed first).  Returns 0, or CR_EBADFLAG
 * with a one-line message naming the flag written to err (always
 * NUL-terminated).  Unknown flags are reported through log_warn() and
 * skipped.  On error *out holds nothing that needs freeing. */
int flags_parse(int argc, char **argv, flags_t *out, char *err, size_t err_len);
void flags_free(flags_t *flags);

#endif
