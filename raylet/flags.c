/* craylet's command line (see flags.h).
 *
 * One table describes every flag: its canonical name (underscores, the
 * spelling gflags registers), the spelling Ray's services.py passes (used
 * when we must name a flag the user did not write, e.g. a missing one), how
 * its value is checked, and where it lands in flags_t.  Parsing walks argv
 * once, looks each name up after folding '-' to '_', and converts the value
 * immediately so every error can quote the exact text that was wrong. */
#include "raylet/flags.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "raylet/sched/resources.h"

typedef enum {
    FLAG_STRING,
    FLAG_INT,   /* int field, range [min, max] */
    FLAG_INT64, /* int64_t field, range [min, max] */
    FLAG_BOOL,
    FLAG_RESOURCES,
    FLAG_LABELS,
    FLAG_PORT_LIST,
    FLAG_ID, /* 56 hex characters, stored lowercase */
} flag_kind_t;

typedef struct flag_spec {
    const char *name;  /* canonical: underscores */
    const char *shown; /* as Ray passes it */
    flag_kind_t kind;
    size_t offset;
    int64_t min, max;
} flag_spec_t;

#define F_OFF(field) offsetof(flags_t, field)
#define F_STR(n, shown) {#n, shown, FLAG_STRING, F_OFF(n), 0, 0}
#define F_PORT(n, shown) {#n, shown, FLAG_INT, F_OFF(n), 0, 65535}
#define F_BOOL(n, shown) {#n, shown, FLAG_BOOL, F_OFF(n), 0, 0}

/* Every flag Ray 2.54.0's services.start_raylet can pass, plus the two the
 * stock raylet defines but Python never sets (dashboard_agent_listen_port,
 * and defaults for the java/cpp commands). */
static const flag_spec_t flag_specs[] = {
    F_STR(raylet_socket_name, "raylet_socket_name"),
    F_STR(store_socket_name, "store_socket_name"),
    F_PORT(object_manager_port, "object_manager_port"),
    F_PORT(node_manager_port, "node_manager_port"),
    F_PORT(min_worker_port, "min_worker_port"),
    F_PORT(max_worker_port, "max_worker_port"),
    {"worker_port_list", "worker_port_list", FLAG_PORT_LIST, 0, 1, 65535},
    {"node_id", "node_id", FLAG_ID, F_OFF(node_id), 0, 0},
    F_STR(node_ip_address, "node_ip_address"),
    F_STR(node_name, "node-name"),
    {"maximum_startup_concurrency", "maximum_startup_concurrency", FLAG_INT, F_OFF(maximum_startup_concurrency), 1,
     INT_MAX},
    {"static_resource_list", "static_resource_list", FLAG_RESOURCES, 0, 0, 0},
    F_STR(python_worker_command, "python_worker_command"),
    F_STR(java_worker_command, "java_worker_command"),
    F_STR(cpp_worker_command, "cpp_worker_command"),
    F_STR(native_library_path, "native_library_path"),
    F_STR(temp_dir, "temp_dir"),
    F_STR(session_dir, "session_dir"),
    F_STR(log_dir, "log_dir"),
    F_STR(resource_dir, "resource_dir"),
    F_PORT(metrics_agent_port, "metrics-agent-port"),
    F_PORT(metrics_export_port, "metrics_export_port"),
    F_PORT(runtime_env_agent_port, "runtime_env_agent_port"),
    F_PORT(dashboard_agent_listen_port, "dashboard_agent_listen_port"),
    {"object_store_memory", "object_store_memory", FLAG_INT64, F_OFF(object_store_memory), 1, INT64_MAX},
    F_STR(plasma_directory, "plasma_directory"),
    F_STR(fallback_directory, "fallback_directory"),
    F_BOOL(ray_debugger_external, "ray-debugger-external"),
    F_STR(gcs_address, "gcs-address"),
    F_STR(session_name, "session-name"),
    {"labels", "labels", FLAG_LABELS, 0, 0, 0},
    {"cluster_id", "cluster-id", FLAG_ID, F_OFF(cluster_id), 0, 0},
    F_BOOL(enable_resource_isolation, "enable-resource-isolation"),
    F_STR(cgroup_path, "cgroup-path"),
    {"system_reserved_cpu_weight", "system-reserved-cpu-weight", FLAG_INT64, F_OFF(system_reserved_cpu_weight), 0,
     INT64_MAX},
    {"system_reserved_memory_bytes", "system-reserved-memory-bytes", FLAG_INT64,
     F_OFF(system_reserved_memory_bytes), 0, INT64_MAX},
    F_STR(system_pids, "system-pids"),
    F_STR(stdout_filepath, "stdout_filepath"),
    F_STR(stderr_filepath, "stderr_filepath"),
    F_BOOL(head, "head"),
    {"num_prestart_python_workers", "num_prestart_python_workers", FLAG_INT, F_OFF(num_prestart_python_workers), 0,
     INT_MAX},
    F_STR(dashboard_agent_command, "dashboard_agent_command"),
    F_STR(runtime_env_agent_command, "runtime_env_agent_command"),
    F_BOOL(huge_pages, "huge_pages"),
};

/* What the daemon cannot start without.  The agent commands are not here:
 * the stock raylet insists on them, but craylet can run without agents
 * (unit and integration harnesses do), so main decides what to do when
 * they are empty. */
static const char *const flag_required[] = {
    "raylet_socket_name", "store_socket_name", "node_id",  "node_ip_address",
    "gcs_address",        "session_dir",       "cluster_id", "object_store_memory",
};

#define FLAG_NAME_MAX 128
#define FLAG_SHOW_VALUE_MAX 64

typedef struct flag_ctx {
    flags_t *out;
    char *err;
    size_t err_len;
    const char *spelled; /* the flag as the user wrote it, for messages */
} flag_ctx_t;

static int flag_error(flag_ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int flag_error(flag_ctx_t *c, const char *fmt, ...)
{
    if (c->err && c->err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->err_len, fmt, ap);
        va_end(ap);
    }
    return CR_EBADFLAG;
}

/* "invalid value for --x: "<value>" (<why>)", the value JSON-quoted so
 * control characters and odd bytes stay on one printable line, and cut
 * short so a multi-kilobyte worker command does not swamp the log. */
static int flag_bad_value(flag_ctx_t *c, const char *value, const char *why_fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int flag_bad_value(flag_ctx_t *c, const char *value, const char *why_fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, why_fmt);
    vsnprintf(why, sizeof why, why_fmt, ap);
    va_end(ap);
    size_t len = strlen(value);
    bool cut = len > FLAG_SHOW_VALUE_MAX;
    char *quoted = json_quote_dup(value, cut ? FLAG_SHOW_VALUE_MAX : len);
    int rc = flag_error(c, "invalid value for --%s: %s%s (%s)", c->spelled, quoted, cut ? "..." : "", why);
    free(quoted);
    return rc;
}

static const flag_spec_t *flag_lookup(const char *canonical)
{
    for (size_t i = 0; i < sizeof flag_specs / sizeof *flag_specs; i++)
        if (strcmp(flag_specs[i].name, canonical) == 0)
            return &flag_specs[i];
    return NULL;
}

/* Strict decimal: an optional '-' and digits, nothing else (no blanks, no
 * '+', no hex, no trailing garbage), in range. */
static bool flag_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    const char *p = s;
    if (*p == '-')
        p++;
    if (!*p)
        return false;
    for (; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE || *end != '\0')
        return false;
    if (v < min || v > max)
        return false;
    *out = (int64_t)v;
    return true;
}

/* gflags' spellings of a boolean. */
static int flag_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "t", "yes", "y", "1"};
    static const char *const no[] = {"false", "f", "no", "n", "0"};
    for (size_t i = 0; i < 5; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static int flag_set_resources(flag_ctx_t *c, const char *value);
static int flag_set_labels(flag_ctx_t *c, const char *value);
static int flag_set_port_list(flag_ctx_t *c, const flag_spec_t *spec, const char *value);

static int flag_set_id(flag_ctx_t *c, const flag_spec_t *spec, const char *value)
{
    size_t len = strlen(value);
    bool ok = len == 56;
    for (size_t i = 0; ok && i < len; i++)
        ok = isxdigit((unsigned char)value[i]) != 0;
    if (!ok)
        return flag_bad_value(c, value, "expected 56 hex characters");
    char *id = xstrdup(value);
    for (size_t i = 0; i < len; i++)
        id[i] = (char)tolower((unsigned char)id[i]);
    char **field = (char **)((char *)c->out + spec->offset);
    free(*field);
    *field = id;
    return 0;
}

static int flag_apply(flag_ctx_t *c, const flag_spec_t *spec, const char *value)
{
    char *base = (char *)c->out;
    switch (spec->kind) {
    case FLAG_STRING: {
        char **field = (char **)(base + spec->offset);
        /* A repeated flag takes its last value, as with gflags. */
        free(*field);
        *field = xstrdup(value);
        return 0;
    }
    case FLAG_INT:
    case FLAG_INT64: {
        int64_t v;
        if (!flag_parse_int64(value, spec->min, spec->max, &v))
            return flag_bad_value(c, value, "expected an integer %lld..%lld", (long long)spec->min,
                                  (long long)spec->max);
        if (spec->kind == FLAG_INT)
            *(int *)(base + spec->offset) = (int)v;
        else
            *(int64_t *)(base + spec->offset) = v;
        return 0;
    }
    case FLAG_BOOL: {
        bool v;
        if (flag_parse_bool(value, &v) < 0)
            return flag_bad_value(c, value, "expected true/false/1/0");
        *(bool *)(base + spec->offset) = v;
        return 0;
    }
    case FLAG_ID: return flag_set_id(c, spec, value);
    case FLAG_RESOURCES: return flag_set_resources(c, value);
    case FLAG_LABELS: return flag_set_labels(c, value);
    case FLAG_PORT_LIST: return flag_set_port_list(c, spec, value);
    }
    return CR_EBADFLAG;
}

/* ---- --static_resource_list --------------------------------------------------- */

typedef struct flag_res_acc {
    flags_resource_t *items;
    size_t count;
} flag_res_acc_t;

static int flag_res_add(void *ctx, const char *name, double value)
{
    flag_res_acc_t *acc = ctx;
    acc->items = xrealloc(acc->items, (acc->count + 1) * sizeof *acc->items);
    acc->items[acc->count++] = (flags_resource_t){xstrdup(name), value};
    return 0;
}

static void flag_free_resources(flags_resource_t *items, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(items[i].name);
    free(items);
}

static int flag_set_resources(flag_ctx_t *c, const char *value)
{
    flag_res_acc_t acc = {0};
    char why[200];
    int rc = res_parse_list(value, flag_res_add, &acc, why, sizeof why);
    if (rc < 0) {
        flag_free_resources(acc.items, acc.count);
        return flag_bad_value(c, value, "%s", why);
    }
    flag_free_resources(c->out->resources, c->out->resource_count);
    c->out->resources = acc.items;
    c->out->resource_count = acc.count;
    return 0;
}

/* ---- --labels ---------------------------------------------------------------- */

static void flag_free_labels(flags_label_t *labels, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(labels[i].key);
        free(labels[i].value);
    }
    free(labels);
}

/* The node id label is the raylet's to set (from --node_id); the stock
 * raylet refuses a user-supplied one, and so do we. */
#define FLAG_NODE_ID_LABEL "ray.io/node-id"

static int flag_set_labels(flag_ctx_t *c, const char *value)
{
    /* Python passes "" when the node has no labels. */
    if (!*value) {
        flag_free_labels(c->out->labels, c->out->label_count);
        c->out->labels = NULL;
        c->out->label_count = 0;
        return 0;
    }
    json_t *root;
    char why[160];
    int rc = json_parse(value, strlen(value), &root, why, sizeof why);
    if (rc < 0)
        return flag_bad_value(c, value, "not valid JSON: %s", why);
    if (root->type != JSON_OBJECT) {
        rc = flag_bad_value(c, value, "expected a JSON object, got %s", json_type_name(root->type));
        json_free(root);
        return rc;
    }
    size_t n = root->u.object.count;
    flags_label_t *labels = n ? xcalloc(1, n * sizeof *labels) : NULL;
    for (size_t i = 0; i < n; i++) {
        const json_member_t *m = &root->u.object.members[i];
        const json_t *v = m->value;
        const char *bad = NULL;
        if (v->type != JSON_STRING)
            bad = "label values must be strings";
        else if (strlen(m->key) != m->key_len || strlen(v->u.string.ptr) != v->u.string.len)
            bad = "labels must not contain NUL characters";
        else if (strcmp(m->key, FLAG_NODE_ID_LABEL) == 0)
            bad = "label " FLAG_NODE_ID_LABEL " is reserved and set by the raylet";
        if (bad) {
            flag_free_labels(labels, i);
            json_free(root);
            return flag_bad_value(c, value, "%s", bad);
        }
        labels[i].key = xstrndup(m->key, m->key_len);
        labels[i].value = xstrndup(v->u.string.ptr, v->u.string.len);
    }
    json_free(root);
    flag_free_labels(c->out->labels, c->out->label_count);
    c->out->labels = labels;
    c->out->label_count = n;
    return 0;
}

/* ---- --worker_port_list --------------------------------------------------------- */

static int flag_set_port_list(flag_ctx_t *c, const flag_spec_t *spec, const char *value)
{
    size_t n = 0;
    int *ports = NULL;
    if (*value) {
        size_t cap = 1;
        for (const char *p = value; *p; p++)
            if (*p == ',')
                cap++;
        ports = xcalloc(1, cap * sizeof *ports);
        const char *p = value;
        for (;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            char item[24];
            int64_t v;
            if (len == 0 || len >= sizeof item) {
                free(ports);
                return flag_bad_value(c, value, "expected comma-separated ports %lld..%lld", (long long)spec->min,
                                      (long long)spec->max);
            }
            memcpy(item, p, len);
            item[len] = '\0';
            if (!flag_parse_int64(item, spec->min, spec->max, &v)) {
                free(ports);
                return flag_bad_value(c, value, "expected comma-separated ports %lld..%lld", (long long)spec->min,
                                      (long long)spec->max);
            }
            ports[n++] = (int)v;
            if (!comma)
                break;
            p = comma + 1;
        }
    }
    free(c->out->worker_port_list);
    c->out->worker_port_list = ports;
    c->out->worker_port_count = n;
    return 0;
}

/* ---- the walk over argv -------------------------------------------------------- */

/* A token that starts a new flag rather than being a value: "-x" or "--x",
 * but not a negative number like "-1" or "-.5". */
static bool flag_looks_like_flag(const char *tok)
{
    return tok[0] == '-' && tok[1] != '\0' && !(tok[1] >= '0' && tok[1] <= '9') && tok[1] != '.';
}

static bool flag_field_empty(const flags_t *f, const flag_spec_t *spec)
{
    switch (spec->kind) {
    case FLAG_STRING:
    case FLAG_ID: {
        const char *s = *(char *const *)((const char *)f + spec->offset);
        return !s || !*s;
    }
    case FLAG_INT64: return *(const int64_t *)((const char *)f + spec->offset) == 0;
    case FLAG_INT: return *(const int *)((const char *)f + spec->offset) == 0;
    default: return false;
    }
}

static int flag_finish(flag_ctx_t *c)
{
    flags_t *f = c->out;
    for (size_t i = 0; i < sizeof flag_required / sizeof *flag_required; i++) {
        const flag_spec_t *spec = flag_lookup(flag_required[i]);
        if (flag_field_empty(f, spec))
            return flag_error(c, "missing required flag --%s", spec->shown);
    }
    if (f->min_worker_port && f->max_worker_port && f->min_worker_port > f->max_worker_port)
        return flag_error(c, "invalid value for --max_worker_port: \"%d\" (below --min_worker_port %d)",
                          f->max_worker_port, f->min_worker_port);
    if (!f->node_name)
        f->node_name = xstrdup(f->node_ip_address);
    return 0;
}

static int flag_parse_args(flag_ctx_t *c, int argc, char **argv)
{
    bool only_positional = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (only_positional || !flag_looks_like_flag(arg)) {
            log_warn("ignoring positional argument \"%.200s\"", arg);
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            /* gflags stops reading flags here; so do we. */
            only_positional = true;
            continue;
        }
        /* gflags takes "-name" as well as "--name". */
        const char *body = arg + (arg[1] == '-' ? 2 : 1);
        const char *eq = strchr(body, '=');
        size_t name_len = eq ? (size_t)(eq - body) : strlen(body);
        char name[FLAG_NAME_MAX];
        char spelled[FLAG_NAME_MAX];
        const flag_spec_t *spec = NULL;
        bool negated = false;
        if (name_len > 0 && name_len < sizeof name) {
            memcpy(spelled, body, name_len);
            spelled[name_len] = '\0';
            for (size_t k = 0; k < name_len; k++)
                name[k] = body[k] == '-' ? '_' : body[k];
            name[name_len] = '\0';
            spec = flag_lookup(name);
            /* gflags' "--noflag" spelling of a false boolean. */
            if (!spec && !eq && strncmp(name, "no", 2) == 0) {
                const flag_spec_t *b = flag_lookup(name + 2);
                if (b && b->kind == FLAG_BOOL) {
                    spec = b;
                    negated = true;
                }
            }
        }
        if (!spec) {
            /* Forward compatibility: a newer Ray may pass flags we do not
             * know.  "--x=v" carries its own value.  For a bare "--x" we
             * cannot know whether it is a boolean or takes the next token,
             * so a following token that is not itself a flag is taken to
             * be its value and skipped too; either way it would only have
             * been ignored as a positional argument. */
            size_t shown = name_len + (size_t)(body - arg);
            int shown_len = shown > FLAG_NAME_MAX ? FLAG_NAME_MAX : (int)shown;
            if (!eq && i + 1 < argc && !flag_looks_like_flag(argv[i + 1])) {
                log_warn("ignoring unknown flag %.*s and its value", shown_len, arg);
                i++;
            } else {
                log_warn("ignoring unknown flag %.*s", shown_len, arg);
            }
            continue;
        }
        c->spelled = spelled;
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (spec->kind == FLAG_BOOL) {
            /* A bare boolean never takes the next token (as in gflags). */
            value = negated ? "false" : "true";
        } else if (i + 1 < argc) {
            /* "--name value": the next token is the value whatever it looks
             * like, since values such as "-1" or a command line may start
             * with a dash. */
            value = argv[++i];
        } else {
            return flag_error(c, "missing value for --%s", spelled);
        }
        int rc = flag_apply(c, spec, value);
        if (rc < 0)
            return rc;
    }
    return flag_finish(c);
}

int flags_parse(int argc, char **argv, flags_t *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    out->maximum_startup_concurrency = 1;
    if (err && err_len > 0)
        err[0] = '\0';
    flag_ctx_t c = {.out = out, .err = err, .err_len = err_len, .spelled = ""};
    int rc = flag_parse_args(&c, argc, argv);
    if (rc < 0) {
        flags_free(out);
        memset(out, 0, sizeof *out);
        return CR_EBADFLAG;
    }
    return 0;
}

void flags_free(flags_t *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < sizeof flag_specs / sizeof *flag_specs; i++) {
        const flag_spec_t *spec = &flag_specs[i];
        if (spec->kind == FLAG_STRING || spec->kind == FLAG_ID) {
            char **field = (char **)((char *)f + spec->offset);
            free(*field);
            *field = NULL;
        }
    }
    flag_free_resources(f->resources, f->resource_count);
    f->resources = NULL;
    f->resource_count = 0;
    flag_free_labels(f->labels, f->label_count);
    f->labels = NULL;
    f->label_count = 0;
    free(f->worker_port_list);
    f->worker_port_list = NULL;
    f->worker_port_count = 0;
}
