/* craylet: a native replacement for Ray's raylet.
 *
 * Launched by `ray start` / `ray.init()` with the stock raylet's flags (see
 * raylet/flags.h).  Exit codes: 0 after an orderly stop, 1 for a runtime
 * failure (GCS unreachable, an agent died), 2 for bad flags, a bad GPU
 * setting or topology file, or a Ray release other than the one craylet
 * was built for.
 *
 * `craylet --version` prints the release it was built for, on one line
 * that the Python shim reads to refuse a mismatch before anything starts;
 * `craylet topo` shows the GPU graph and the live gangs (topo_cli.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include "common/error.h"
#include "common/log.h"
#include "raylet/flags.h"
#include "raylet/node.h"
#include "raylet/sched/gpu_discover.h"
#include "raylet/topo_cli.h"
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

/* The node's GPU graph and packing settings, from the environment and
 * discovery.  Returns 0, or 2 with a one-line reason in err for a setting
 * or a topology file that is wrong (the node must not start half-right). */
static int main_gpu_setup(const flags_t *flags, gpu_topo_t *topo, raylet_gpu_t *gpu, char *err, size_t len)
{
    *gpu = (raylet_gpu_t){.topo = NULL, .packing = GPU_PACK_PREFER, .cpu_affinity = true};
    const char *packing = getenv("CRAYLET_GPU_PACKING");
    if (gpu_pack_mode_parse(packing, &gpu->packing) != 0) {
        snprintf(err, len, "CRAYLET_GPU_PACKING=\"%.40s\" is not one of prefer, strict, off", packing);
        return 2;
    }
    const char *affinity = getenv("CRAYLET_CPU_AFFINITY");
    if (affinity && *affinity && strcmp(affinity, "on") != 0 && strcmp(affinity, "off") != 0) {
        snprintf(err, len, "CRAYLET_CPU_AFFINITY=\"%.40s\" is not one of on, off", affinity);
        return 2;
    }
    gpu->cpu_affinity = !(affinity && strcmp(affinity, "off") == 0);
    double gpus = 0;
    for (size_t i = 0; i < flags->resource_count; i++)
        if (strcmp(flags->resources[i].name, "GPU") == 0)
            gpus = flags->resources[i].value;
    size_t num_gpus = gpus >= 1 ? (size_t)gpus : 0;
    const char *file = getenv("CRAYLET_GPU_TOPOLOGY");
    char why[400];
    int rc = gpu_discover_node(file, NULL, getenv("CUDA_VISIBLE_DEVICES"), num_gpus, topo, why, sizeof why);
    if (rc == 0) {
        gpu->topo = topo;
        return 0;
    }
    if (file && *file) {
        snprintf(err, len, "CRAYLET_GPU_TOPOLOGY: %s", why);
        return 2;
    }
    if (num_gpus > 0)
        fprintf(stderr, "craylet: no GPU graph (%s); GPUs are handed out by lowest free index\n",
                why[0] ? why : "NVML not available");
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
    if (argc >= 2 && strcmp(argv[1], "topo") == 0)
        return topo_cli_main(argc - 1, argv + 1);

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
    static gpu_topo_t topo;
    raylet_gpu_t gpu;
    int gpu_bad = mismatch ? 0 : main_gpu_setup(&flags, &topo, &gpu, err, sizeof err);
    if (gpu_bad)
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
    if (gpu_bad) {
        log_error("%s", err);
        log_close();
        flags_free(&flags);
        return gpu_bad;
    }
    raylet_t *r = raylet_create(&flags, &gpu);
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
