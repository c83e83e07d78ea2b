/* `craylet topo` (see topo_cli.h). */
#include "raylet/topo_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "raylet/sched/gpu_discover.h"
#include "raylet/sched/gpu_gang.h"

static int topo_usage(void)
{
    fprintf(stderr, "usage: craylet topo [--topology FILE]\n"
                    "       craylet topo --session SESSION_DIR\n");
    return 2;
}

static int topo_show_graph(const char *file)
{
    gpu_topo_t *t = xcalloc(1, sizeof *t);
    char err[512] = "";
    int rc = file ? gpu_topo_load_file(file, t, err, sizeof err)
                  : gpu_discover_nvml.discover(gpu_discover_nvml.ctx, t, err, sizeof err);
    if (rc != 0) {
        if (file)
            fprintf(stderr, "craylet topo: %s\n", err);
        else
            fprintf(stderr, "craylet topo: no GPUs found through NVML%s%s (set CRAYLET_GPU_TOPOLOGY or pass "
                            "--topology FILE)\n",
                    err[0] ? ": " : "", err);
        free(t);
        return file ? 2 : 1;
    }
    size_t want = gpu_topo_format(t, NULL, 0) + 1;
    char *text = xmalloc(want);
    gpu_topo_format(t, text, want);
    printf("GPU graph from %s%s%s\n%s", t->source, file ? ": " : "", file ? file : "", text);
    free(text);
    free(t);
    return 0;
}

/* One "key=value ..." record line: the value of `key`, copied. */
static void topo_field(const char *line, const char *key, char *out, size_t len)
{
    out[0] = '\0';
    size_t klen = strlen(key);
    for (const char *p = line; (p = strstr(p, key)) != NULL; p += klen) {
        if ((p == line || p[-1] == ' ') && p[klen] == '=') {
            const char *v = p + klen + 1;
            size_t n = strcspn(v, " \n");
            snprintf(out, len, "%.*s", (int)n, v);
            return;
        }
    }
}

static int topo_show_session(const char *dir)
{
    size_t plen = strlen(dir) + sizeof "/logs/" + sizeof GPU_GANG_RECORD_FILE;
    char *path = xmalloc(plen);
    snprintf(path, plen, "%s/logs/%s", dir, GPU_GANG_RECORD_FILE);
    FILE *f = fopen(path, "re");
    if (!f) {
        fprintf(stderr, "craylet topo: %s: %s (is a craylet node with a GPU graph running in this session?)\n",
                path, strerror(errno));
        free(path);
        return 1;
    }
    printf("%-34s %-6s %-10s %-8s %-8s %s\n", "placement group", "bundle", "GPUs", "score", "all-NV", "NVLink pairs");
    char line[4096];
    size_t rows = 0;
    while (fgets(line, sizeof line, f)) {
        char pg[80], bundle[16], gpus[256], pairs[2048], score[16], best[16], all[8];
        topo_field(line, "placement_group", pg, sizeof pg);
        topo_field(line, "bundle", bundle, sizeof bundle);
        topo_field(line, "gpus", gpus, sizeof gpus);
        topo_field(line, "nvlink_pairs", pairs, sizeof pairs);
        topo_field(line, "gang_nvlinks", score, sizeof score);
        topo_field(line, "best_nvlinks", best, sizeof best);
        topo_field(line, "all_nvlink", all, sizeof all);
        if (!pg[0])
            continue;
        char ratio[40];
        snprintf(ratio, sizeof ratio, "%s/%s", score, best);
        printf("%-34s %-6s %-10s %-8s %-8s %s\n", pg, bundle, gpus, ratio, all, pairs);
        rows++;
    }
    fclose(f);
    if (rows == 0)
        printf("(no live gangs with GPUs)\n");
    free(path);
    return 0;
}

int topo_cli_main(int argc, char **argv)
{
    const char *file = getenv("CRAYLET_GPU_TOPOLOGY");
    if (file && !*file)
        file = NULL;
    const char *session = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--topology") == 0 && i + 1 < argc)
            file = argv[++i];
        else if (strcmp(argv[i], "--session") == 0 && i + 1 < argc)
            session = argv[++i];
        else
            return topo_usage();
    }
    return session ? topo_show_session(session) : topo_show_graph(file);
}
