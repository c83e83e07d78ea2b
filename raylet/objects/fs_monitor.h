/* Is the local disk too full to take objects?  Ray's file-system monitor:
 * the spill directories (of a filesystem object_spilling_config) and the
 * fallback directory are over capacity once the used fraction of any of
 * their file systems reaches local_fs_capacity_threshold.  The store then
 * fails a create that does not fit in memory with OutOfDisk at once,
 * instead of spilling or falling back to a file (which the full disk
 * could not hold), and a pull of such an object fails the same way.
 *
 * Stock checks on a timer every local_fs_monitor_interval_ms; here the
 * check runs when it matters (a create that does not fit), which answers
 * the same and costs nothing while memory suffices.  Each time a check
 * finds a path over capacity it logs and writes an "Out of Disk" ERROR
 * event, at most once per 10 s, as stock does. */
#ifndef CRAYLET_RAYLET_OBJECTS_FS_MONITOR_H
#define CRAYLET_RAYLET_OBJECTS_FS_MONITOR_H

#include <stdbool.h>
#include <stdint.h>

#include "common/ray_event.h"

typedef struct fs_monitor fs_monitor_t;

typedef struct fs_monitor_options {
    /* RayConfig local_fs_capacity_threshold: 0 = always over capacity,
     * >= 1 = never. */
    double threshold;
    /* RayConfig object_spilling_config (JSON; NULL or "" for none) and
     * whether its storage is a local file system
     * (is_external_storage_type_fs); only then are its directory_path
     * entries watched. */
    const char *spilling_config;
    bool spilling_is_fs;
    /* --fallback_directory; NULL or "" for none. */
    const char *fallback_directory;
    /* Where "Out of Disk" events go (borrowed; NULL for none). */
    ray_event_log_t *events;
} fs_monitor_options_t;

/* Strings are copied; a spilling config that does not parse is logged and
 * contributes no path (as stock).  Never NULL. */
fs_monitor_t *fs_monitor_create(const fs_monitor_options_t *opts);
/* True when any watched path's file system is at or over the threshold.
 * now_ms (any monotonic clock) paces the log and the event. */
bool fs_monitor_over_capacity(fs_monitor_t *m, uint64_t now_ms);
void fs_monitor_destroy(fs_monitor_t *m);

#endif
