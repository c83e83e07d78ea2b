/* The version guard: which Ray release launched craylet, read from the ray
 * package beside default_worker.py in the worker command, and the one-line
 * refusal when it is not the release craylet was built for. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "proto/gen/ray_version.h"
#include "raylet/version_guard.h"

/* A fake site-packages/ray with the given _version.py text; returns the
 * path of its default_worker.py in `worker`. */
static void remove_fake_ray(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf /tmp/craylet-vg-%d", (int)getpid());
    (void)system(cmd);
}

TestSuite(version_guard, .fini = remove_fake_ray);

static void fake_ray(const char *version_py, char *worker, size_t cap)
{
    char dir[256];
    snprintf(dir, sizeof dir, "/tmp/craylet-vg-%d", (int)getpid());
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p '%s/site packages/ray/_private/workers'", dir, dir);
    cr_assert_eq(system(cmd), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/site packages/ray/_version.py", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(version_py, f);
    fclose(f);
    snprintf(worker, cap, "%s/site packages/ray/_private/workers/default_worker.py", dir);
    f = fopen(worker, "w");
    cr_assert_not_null(f);
    fclose(f);
}

static void command_for(const char *worker, char *out, size_t cap)
{
    /* As Ray quotes it: python, setup_worker.py, default_worker.py, flags. */
    snprintf(out, cap,
             "/usr/bin/python3 /x/ray/_private/workers/setup_worker.py \"%s\" --node-ip-address=10.0.0.1 "
             "RAY_WORKER_DYNAMIC_OPTION_PLACEHOLDER",
             worker);
}

Test(version_guard, reads_the_launchers_version)
{
    char worker[512], command[1024], version[64];
    fake_ray("# comment\ncommit = \"abc\"\nversion = \"9.8.7\"\n", worker, sizeof worker);
    command_for(worker, command, sizeof command);
    cr_assert_eq(version_guard_launcher(command, version, sizeof version), 0);
    cr_assert_str_eq(version, "9.8.7");
}

Test(version_guard, mismatch_is_exit_2_with_both_versions_and_the_fix)
{
    char worker[512], command[1024], why[512] = "";
    fake_ray("version = '0.0.1'\n", worker, sizeof worker);
    command_for(worker, command, sizeof command);
    cr_assert_eq(version_guard_check(command, why, sizeof why), 2);
    cr_assert_not_null(strstr(why, "built for Ray " CRAYLET_RAY_VERSION), "%s", why);
    cr_assert_not_null(strstr(why, "Ray 0.0.1 started it"), "%s", why);
    cr_assert_not_null(strstr(why, "make setup RAY_VERSION=0.0.1"), "%s", why);
    cr_assert_null(strchr(why, '\n'), "one line");
}

Test(version_guard, same_version_passes)
{
    char worker[512], command[1024], why[512] = "";
    fake_ray("version = \"" CRAYLET_RAY_VERSION "\"\n", worker, sizeof worker);
    command_for(worker, command, sizeof command);
    cr_assert_eq(version_guard_check(command, why, sizeof why), 0);
}

Test(version_guard, unreadable_or_hostile_version_files_are_not_a_version)
{
    char worker[512], command[1024], version[64];
    const char *bad[] = {
        "",
        "version = 2.60.0\n",             /* not quoted */
        "version = \"2.60.0\n",           /* unterminated */
        "version = \"2.60;rm -rf /\"\n",  /* characters no version has */
        "myversion = \"1.0\"\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fake_ray(bad[i], worker, sizeof worker);
        command_for(worker, command, sizeof command);
        cr_assert_eq(version_guard_launcher(command, version, sizeof version), CR_EBADMSG, "case %zu", i);
    }
    /* No default_worker.py at all, or no command: unknown, not a mismatch. */
    char why[512];
    cr_assert_eq(version_guard_launcher("/usr/bin/python3 -c pass", version, sizeof version), CR_EBADMSG);
    cr_assert_eq(version_guard_check(NULL, why, sizeof why), 0);
    cr_assert_eq(version_guard_check("\"unterminated", why, sizeof why), 0);
}
