/* raylet/objects/fs_monitor: which paths are watched, the threshold's
 * edges, and the "Out of Disk" event the dashboard reads. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/ray_event.h"
#include "raylet/objects/fs_monitor.h"

static char dir[] = "/tmp/craylet-fsmon-XXXXXX";

static void setup(void) { cr_assert_not_null(mkdtemp(dir)); }
static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(fs_monitor, .init = setup, .fini = teardown);

/* The event file a writer created under `dir`, open for reading. */
static FILE *open_events(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/events/event_RAYLET.log", dir);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    return f;
}

static bool over(double threshold, const char *spill, bool is_fs, const char *fallback)
{
    fs_monitor_options_t o = {.threshold = threshold, .spilling_config = spill, .spilling_is_fs = is_fs,
                              .fallback_directory = fallback};
    fs_monitor_t *m = fs_monitor_create(&o);
    bool r = fs_monitor_over_capacity(m, 0);
    fs_monitor_destroy(m);
    return r;
}

Test(fs_monitor, threshold_edges_as_ray)
{
    cr_assert(over(0, NULL, false, dir), "0 means always over capacity");
    cr_assert_not(over(1, NULL, false, dir), "1 turns the check off");
    cr_assert_not(over(0, NULL, false, NULL), "no path, nothing to be full");
    /* Any real file system holding this directory is over a threshold of
     * one millionth (something is used) and under one just below 1 only
     * if it is not quite full: test the first, which cannot be false. */
    cr_assert(over(1e-6, NULL, false, dir));
}

Test(fs_monitor, spill_directories_count_only_for_filesystem_storage)
{
    char cfg[512];
    snprintf(cfg, sizeof cfg, "{\"type\":\"filesystem\",\"params\":{\"directory_path\":[\"%s\"]}}", dir);
    cr_assert(over(1e-6, cfg, true, NULL));
    cr_assert_not(over(1e-6, cfg, false, NULL), "cloud storage: not this disk");
    snprintf(cfg, sizeof cfg, "{\"type\":\"filesystem\",\"params\":{\"directory_path\":\"%s\"}}", dir);
    cr_assert(over(1e-6, cfg, true, NULL));
    cr_assert_not(over(1e-6, "{not json", true, NULL), "a bad config adds no path");
    cr_assert_not(over(1e-6, "{\"params\":{\"directory_path\":[\"/nonexistent/x\"]}}", true, NULL),
                  "a directory not made yet is not full");
}

Test(fs_monitor, over_capacity_writes_one_out_of_disk_event_per_ten_seconds)
{
    ray_event_log_t *ev = ray_event_log_create(dir, "RAYLET", "ab12");
    cr_assert_not_null(ev);
    fs_monitor_options_t o = {.threshold = 1e-6, .fallback_directory = dir, .events = ev};
    fs_monitor_t *m = fs_monitor_create(&o);
    cr_assert(fs_monitor_over_capacity(m, 1000));
    cr_assert(fs_monitor_over_capacity(m, 2000));
    cr_assert(fs_monitor_over_capacity(m, 12000));
    fs_monitor_destroy(m);
    ray_event_log_destroy(ev);

    FILE *f = open_events();
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        n++;
        cr_assert(strstr(line, "\"severity\":\"ERROR\""));
        cr_assert(strstr(line, "\"label\":\"Out of Disk\""));
        cr_assert(strstr(line, "\"source_type\":\"RAYLET\""));
        cr_assert(strstr(line, "Object creation will fail if spilling is required"));
        cr_assert(strstr(line, "\"custom_fields\":{\"node_id\":\"ab12\"}"));
        cr_assert_eq(line[strlen(line) - 1], '\n');
    }
    fclose(f);
    cr_assert_eq(n, 2, "the second check inside 10 s is not reported again");
}

Test(fs_monitor, event_text_is_escaped_to_one_line)
{
    ray_event_log_t *ev = ray_event_log_create(dir, "RAYLET", "n");
    cr_assert_eq(ray_event_log_write(ev, RAY_EVENT_WARNING, "a \"label\"", "two\nlines\\"), 0);
    ray_event_log_destroy(ev);
    FILE *f = open_events();
    char line[4096];
    cr_assert_not_null(fgets(line, sizeof line, f));
    cr_assert_null(fgets(line + 2048, 2048, f), "exactly one line");
    fclose(f);
    cr_assert(strstr(line, "\"label\":\"a \\\"label\\\"\""));
    cr_assert(strstr(line, "\"message\":\"two\\nlines\\\\\""));
    cr_assert(strstr(line, "\"severity\":\"WARNING\""));
    cr_assert_null(ray_event_log_create(NULL, "RAYLET", "n"));
    cr_assert_null(ray_event_log_create("", "RAYLET", "n"));
}
