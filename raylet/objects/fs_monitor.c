#include "raylet/objects/fs_monitor.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "common/alloc.h"
#include "common/json.h"
#include "common/log.h"

/* Stock reports an over-capacity path at most this often. */
#define REPORT_EVERY_MS 10000

struct fs_monitor {
    double threshold;
    char **paths;
    size_t npaths;
    ray_event_log_t *events; /* borrowed */
    uint64_t last_report_ms;
    bool reported;
};

static void add_path(fs_monitor_t *m, const char *p, size_t len)
{
    if (!p || len == 0)
        return;
    m->paths = xrealloc(m->paths, (m->npaths + 1) * sizeof *m->paths);
    m->paths[m->npaths++] = xstrndup(p, len);
}

/* params.directory_path of a filesystem spilling config: a string or an
 * array of strings. */
static void add_spilling_paths(fs_monitor_t *m, const char *config)
{
    json_t *root = NULL;
    char err[128];
    if (json_parse(config, strlen(config), &root, err, sizeof err) != 0) {
        log_error("cannot read the spilling directories from object_spilling_config: %s", err);
        return;
    }
    const json_t *dir = json_object_get(json_object_get(root, "params"), "directory_path");
    size_t len;
    const char *s = json_string(dir, &len);
    if (s) {
        add_path(m, s, len);
    } else if (dir && dir->type == JSON_ARRAY) {
        for (size_t i = 0; i < dir->u.array.count; i++) {
            s = json_string(dir->u.array.items[i], &len);
            if (s)
                add_path(m, s, len);
            else
                log_error("object_spilling_config: a directory_path entry is not a string");
        }
    } else if (dir) {
        log_error("object_spilling_config: directory_path is neither a string nor a list");
    }
    json_free(root);
}

fs_monitor_t *fs_monitor_create(const fs_monitor_options_t *opts)
{
    fs_monitor_t *m = xcalloc(1, sizeof *m);
    m->threshold = opts->threshold;
    m->events = opts->events;
    if (opts->spilling_is_fs && opts->spilling_config && opts->spilling_config[0])
        add_spilling_paths(m, opts->spilling_config);
    if (opts->fallback_directory && opts->fallback_directory[0])
        add_path(m, opts->fallback_directory, strlen(opts->fallback_directory));
    return m;
}

static void report(fs_monitor_t *m, uint64_t now_ms, const char *msg)
{
    if (m->reported && now_ms - m->last_report_ms < REPORT_EVERY_MS)
        return;
    m->reported = true;
    m->last_report_ms = now_ms;
    log_error("%s", msg);
    if (m->events)
        ray_event_log_write(m->events, RAY_EVENT_ERROR, "Out of Disk", msg);
}

static bool path_over_capacity(fs_monitor_t *m, const char *path, uint64_t now_ms)
{
    struct statvfs st;
    /* A directory not made yet (spilling creates its own) is not full. */
    if (statvfs(path, &st) != 0)
        return false;
    double capacity = (double)st.f_blocks * (double)st.f_frsize;
    double available = (double)st.f_bavail * (double)st.f_frsize;
    char msg[PATH_MAX + 256];
    if (capacity <= 0) {
        snprintf(msg, sizeof msg, "%s has no capacity, object creation will fail if spilling is required.", path);
        report(m, now_ms, msg);
        return true;
    }
    if (1.0 - available / capacity < m->threshold)
        return false;
    const double gib = 1024.0 * 1024 * 1024;
    snprintf(msg, sizeof msg,
             "%s is over %g%% full, available space: %g GB; capacity: %g GB. Object creation will fail if "
             "spilling is required.",
             path, m->threshold * 100, available / gib, capacity / gib);
    report(m, now_ms, msg);
    return true;
}

bool fs_monitor_over_capacity(fs_monitor_t *m, uint64_t now_ms)
{
    if (!m || m->npaths == 0 || m->threshold >= 1)
        return false;
    if (m->threshold <= 0)
        return true;
    for (size_t i = 0; i < m->npaths; i++)
        if (path_over_capacity(m, m->paths[i], now_ms))
            return true;
    return false;
}

void fs_monitor_destroy(fs_monitor_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->npaths; i++)
        free(m->paths[i]);
    free(m->paths);
    free(m);
}
