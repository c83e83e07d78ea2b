/* craylet: a native replacement for Ray's raylet.
 *
 * Launched by `ray start` / `ray.init()` with the stock raylet's flags (see
 * raylet/flags.h).  Exit codes: 0 after an orderly stop, 1 for a runtime
 * failure (GCS unreachable, an agent died), 2 for bad flags or a Ray
 * release other than the one craylet was built for.
 *
 * `craylet --version` prints the release it was built for, on one line
 * that the Python shim reads to refuse a mismatch before anything starts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include "common/error.h"
#include "common/log.h"
#include "raylet/flags.h"
#include "raylet/node.h"
#include "raylet/version_guard.h"
#include "proto/gen/ray_version.h"

/* Route everything, including what gRPC and libc print, to the log files
 * Ray names, as the stock raylet does; Ray itself points our stdout and
 * stderr at /dev/null when it redirects logs. */
static int main_redirect_output(const flags_t *flags)
{
    int rc = log_open(flags->stdout_filepath, flags->stderr_filepath);
    if (rc != 0)
        return rc;
    if (flags->stdout_filepath) {
        int fd = open(flags->stdout_filepath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            close(fd);
        }
    }
    if (flags->stderr_filepath) {
        int fd = open(flags->stderr_filepath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    /* Ray preloads its jemalloc into the raylet but, unless told otherwise,
     * not into workers and agents: drop it from the environment they
     * inherit, as the stock raylet does. */
    const char *preload_on_workers = getenv("RAY_LD_PRELOAD_ON_WORKERS");
    if (preload_on_workers && strcmp(preload_on_workers, "0") == 0)
        unsetenv("LD_PRELOAD");

    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("craylet for Ray %s (%s)\n", CRAYLET_RAY_VERSION, CRAYLET_RAY_COMMIT);
        return 0;
    }

    flags_t flags;
    char err[512];
    if (flags_parse(argc, argv, &flags, err, sizeof err) != 0) {
        fprintf(stderr, "craylet: %s\n", err);
        return 2;
    }
    /* Before anything registers: said on the caller's stderr and again in
     * the log, where `ray start` and operators look. */
    int mismatch = version_guard_check(flags.python_worker_command, err, sizeof err);
    if (mismatch)
        fprintf(stderr, "craylet: %s\n", err);
    int rc = main_redirect_output(&flags);
    if (rc != 0) {
        fprintf(stderr, "craylet: cannot open the log files: %s\n", cr_strerror(rc));
        flags_free(&flags);
        return 1;
    }
    if (mismatch) {
        log_error("%s", err);
        log_close();
        flags_free(&flags);
        return mismatch;
    }
    raylet_t *r = raylet_create(&flags);
    if (!r) {
        flags_free(&flags);
        log_close();
        return 1;
    }
    int code = raylet_run(r);
    raylet_destroy(r);
    log_info("craylet exiting with code %d", code);
    log_close();
    return code;
}
