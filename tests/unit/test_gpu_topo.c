/* The `nvidia-smi topo -m` parser: every sample topology gives the graph it
 * shows (tabs or spaces, colour escapes), and broken files are refused with
 * the line and column of the problem. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "raylet/sched/gpu_discover.h"
#include "raylet/sched/gpu_topo.h"

#define TOPO_DIR CRAYLET_SOURCE_DIR "/python_shim/craylet/topologies"
#define SHARED_TOPO_DIR CRAYLET_SOURCE_DIR "/../shared/topologies"

static gpu_topo_t topo;

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    static char buf[1 << 16];
    *len = fread(buf, 1, sizeof buf - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static void load(const char *name)
{
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/%s", TOPO_DIR, name);
    int rc = gpu_topo_load_file(path, &topo, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
}

static int parse_text(const char *text, gpu_topo_error_t *err)
{
    return gpu_topo_parse(text, strlen(text), &topo, err);
}

Test(gpu_topo, nvlink_pairs_8)
{
    load("pcie-nvlink-pairs-8.txt");
    cr_assert_eq(topo.n, 8);
    cr_assert_eq(topo.nvlinks[0][1], 4);
    cr_assert_eq(topo.nvlinks[6][7], 4);
    cr_assert_eq(topo.nvlinks[1][2], 0);
    cr_assert_eq(topo.path[1][2], GPU_PATH_NODE);
    cr_assert_eq(topo.path[0][4], GPU_PATH_SYS);
    cr_assert_eq(topo.path[3][3], GPU_PATH_SELF);
    cr_assert_not(topo.nvswitch);
    unsigned island[GPU_TOPO_MAX_GPUS];
    cr_assert_eq(gpu_topo_islands(&topo, island), 4);
    cr_assert_eq(island[2], island[3]);
    cr_assert_neq(island[1], island[2]);
    cr_assert_eq(topo.gpu[0].numa_node, 0);
    cr_assert_eq(topo.gpu[5].numa_node, 1);
    cr_assert_eq(gpu_cpuset_count(&topo.gpu[0].cpus), 64);
    cr_assert(gpu_cpuset_has(&topo.gpu[7].cpus, 127));
    cr_assert_not(gpu_cpuset_has(&topo.gpu[7].cpus, 0));
}

Test(gpu_topo, two_islands_with_nics)
{
    load("two-islands-8.txt");
    cr_assert_eq(topo.n, 8, "NIC rows and columns are not GPUs");
    unsigned island[GPU_TOPO_MAX_GPUS];
    cr_assert_eq(gpu_topo_islands(&topo, island), 2);
    cr_assert(gpu_topo_all_nvlink(&topo, 0x0f));
    cr_assert(gpu_topo_all_nvlink(&topo, 0xf0));
    cr_assert_not(gpu_topo_all_nvlink(&topo, 0x18));
    cr_assert_eq(topo.nvlinks[4][7], 12);
}

Test(gpu_topo, nvswitch_and_small)
{
    load("nvswitch-8.txt");
    cr_assert_eq(topo.n, 8);
    cr_assert(topo.nvswitch);
    cr_assert_eq(topo.nvlinks[0][7], 18);
    load("pcie-nvlink-pairs-4.txt");
    cr_assert_eq(topo.n, 4);
    cr_assert_eq(topo.nvlinks[2][3], 12);
    cr_assert_eq(topo.path[0][2], GPU_PATH_PHB);
    cr_assert_not(topo.nvswitch);
}

/* Every sample shipped here and in ../shared parses into a symmetric graph
 * with X only on the diagonal. */
static void check_dir(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strstr(e->d_name, ".txt"))
            continue;
        char path[1024], err[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        cr_assert_eq(gpu_topo_load_file(path, &topo, err, sizeof err), 0, "%s", err);
        cr_assert_geq(topo.n, 1);
        for (unsigned a = 0; a < topo.n; a++)
            for (unsigned b = 0; b < topo.n; b++) {
                cr_assert_eq(topo.nvlinks[a][b], topo.nvlinks[b][a]);
                cr_assert_eq(topo.path[a][b] == GPU_PATH_SELF, a == b);
            }
        (*count)++;
    }
    closedir(d);
}

Test(gpu_topo, every_sample_file)
{
    size_t count = 0;
    check_dir(TOPO_DIR, &count);
    check_dir(SHARED_TOPO_DIR, &count);
    cr_assert_geq(count, 5);
}

Test(gpu_topo, spaces_and_escapes_read_the_same)
{
    size_t len;
    char *text = slurp(TOPO_DIR "/two-islands-8.txt", &len);
    gpu_topo_t tabs;
    cr_assert_eq(gpu_topo_parse(text, len, &tabs, NULL), 0);
    /* Spaces instead of tabs. */
    char *spaced = strdup(text);
    for (char *p = spaced; *p; p++)
        if (*p == '\t')
            *p = ' ';
    cr_assert_eq(gpu_topo_parse(spaced, strlen(spaced), &topo, NULL), 0);
    cr_assert_eq(memcmp(topo.nvlinks, tabs.nvlinks, sizeof topo.nvlinks), 0);
    cr_assert_eq(memcmp(topo.path, tabs.path, sizeof topo.path), 0);
    cr_assert_eq(memcmp(&topo.gpu[5].cpus, &tabs.gpu[5].cpus, sizeof topo.gpu[5].cpus), 0);
    free(spaced);
    /* The underline escapes nvidia-smi prints around the header. */
    const char *esc = "\t\x1b[4mGPU0\tGPU1\tCPU Affinity\tNUMA Affinity\x1b[0m\n"
                      "GPU0\t X \tNV2\t0-3\t0\n"
                      "GPU1\tNV2\t X \t4-7\t1\n";
    cr_assert_eq(parse_text(esc, NULL), 0);
    cr_assert_eq(topo.n, 2);
    cr_assert_eq(topo.nvlinks[0][1], 2);
    cr_assert(gpu_cpuset_has(&topo.gpu[1].cpus, 6));
    cr_assert_eq(topo.gpu[1].numa_node, 1);
    /* CRLF line ends, N/A affinities. */
    const char *crlf = "\tGPU0\tGPU1\tCPU Affinity\tNUMA Affinity\r\n"
                       "GPU0\t X \tSYS\tN/A\tN/A\r\n"
                       "GPU1\tSYS\t X \tN/A\tN/A\r\n";
    cr_assert_eq(parse_text(crlf, NULL), 0);
    cr_assert_eq(topo.path[0][1], GPU_PATH_SYS);
    cr_assert_eq(topo.gpu[0].numa_node, -1);
}

static void refused(const char *text, unsigned line, unsigned column, const char *why)
{
    gpu_topo_error_t err;
    cr_assert_eq(parse_text(text, &err), CR_EBADMSG, "accepted a file with %s", why);
    cr_assert_eq(err.line, line, "%s: line %u (%s), expected %u", why, err.line, err.message, line);
    if (column)
        cr_assert_eq(err.column, column, "%s: column %u (%s), expected %u", why, err.column, err.message, column);
    cr_assert_neq(err.message[0], '\0');
}

Test(gpu_topo, broken_files_name_line_and_column)
{
    refused("\tGPU0\tGPU1\n"
            "GPU0\t X \tNVX\n"
            "GPU1\tNV1\t X \n",
            2, 10, "a bad token");
    refused("\tGPU0\tGPU1\n"
            "GPU0\t X \tNV1\n"
            "GPU1\tNV1\n",
            3, 0, "a ragged row");
    refused("\tGPU0\tGPU1\n"
            "GPU0\t X \tNV1\tPIX\n"
            "GPU1\tNV1\t X \n",
            2, 14, "a row too long");
    refused("\tGPU0\tGPU1\n"
            "GPU0\t X \tNV2\n"
            "GPU1\tNV1\t X \n",
            3, 6, "an asymmetric matrix");
    refused("\tGPU0\tGPU1\n"
            "GPU0\t X \tNV1\n"
            "GPU0\t X \tNV1\n",
            3, 1, "a duplicate GPU row");
    refused("\tGPU0\tGPU0\n", 1, 7, "a duplicate GPU column");
    refused("\tGPU0\tGPU2\n"
            "GPU0\t X \tNV1\n",
            1, 0, "a gap in GPU numbers");
    refused("\tGPU0\tGPU1\n"
            "GPU0\tNV1\tNV1\n"
            "GPU1\tNV1\t X \n",
            2, 6, "no X on the diagonal");
    refused("\tGPU0\tGPU1\tCPU Affinity\n"
            "GPU0\t X \tNV1\t0-3x\n"
            "GPU1\tNV1\t X \t0-3\n",
            2, 17, "a bad CPU list");
    refused("\tGPU0\tGPU1\n"
            "GPU0\t X \tNV1\n",
            2, 0, "a missing GPU row");
    refused("Legend:\n  X = Self\n", 1, 1, "no matrix");
    refused("", 1, 0, "nothing at all");
    refused("\tGPU0\n"
            "GPU0\t X\x01\n",
            2, 8, "a control character");
    refused("\tGPU0\tGPU1\n"
            "GPU7\t X \tNV1\n",
            2, 1, "a row not in the header");
}

Test(gpu_topo, file_must_match_num_gpus)
{
    char err[512];
    cr_assert_eq(gpu_discover_node(TOPO_DIR "/pcie-nvlink-pairs-8.txt", NULL, NULL, 8, &topo, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(gpu_discover_node(TOPO_DIR "/pcie-nvlink-pairs-8.txt", NULL, NULL, 4, &topo, err, sizeof err),
                 CR_EBADFLAG);
    cr_assert(strstr(err, "describes 8 GPUs but this node has 4"), "%s", err);
    cr_assert_eq(gpu_discover_node(TOPO_DIR "/pcie-nvlink-pairs-4.txt", NULL, NULL, 8, &topo, err, sizeof err),
                 CR_EBADFLAG);
    cr_assert_lt(gpu_discover_node(TOPO_DIR "/no-such-file.txt", NULL, NULL, 8, &topo, err, sizeof err), 0);
    cr_assert(strstr(err, "no-such-file.txt"), "%s", err);
}

/* The seam: a fake source stands in for NVML; CUDA_VISIBLE_DEVICES picks
 * and renumbers its GPUs. */
static int fake_discover(void *ctx, gpu_topo_t *out, char *err, size_t err_len)
{
    char e[256];
    return gpu_topo_load_file(ctx, out, e, sizeof e);
}

Test(gpu_topo, fake_source_and_visible_devices)
{
    gpu_discover_ops_t fake = {"fake", fake_discover, (void *)(TOPO_DIR "/pcie-nvlink-pairs-8.txt")};
    char err[512];
    cr_assert_eq(gpu_discover_node(NULL, &fake, "3,2,6", 3, &topo, err, sizeof err), 0, "%s", err);
    cr_assert_eq(topo.n, 3);
    cr_assert_eq(topo.nvlinks[0][1], 4, "physical 3 and 2 are an NVLink pair");
    cr_assert_eq(topo.nvlinks[1][2], 0);
    cr_assert_eq(topo.gpu[2].numa_node, 1);
    cr_assert_eq(gpu_discover_node(NULL, &fake, NULL, 16, &topo, err, sizeof err), -ENOENT);
    cr_assert_eq(gpu_discover_node(NULL, &fake, NULL, 0, &topo, err, sizeof err), -ENOENT);
}

Test(gpu_topo, cpuset_text)
{
    gpu_cpuset_t s;
    size_t bad;
    cr_assert_eq(gpu_cpuset_parse("0-3,8,10-11", 11, &s, &bad), 0);
    cr_assert_eq(gpu_cpuset_count(&s), 7);
    char buf[64];
    gpu_cpuset_format(&s, buf, sizeof buf);
    cr_assert_str_eq(buf, "0-3,8,10-11");
    cr_assert_eq(gpu_cpuset_parse("3-1", 3, &s, &bad), -1);
    cr_assert_eq(gpu_cpuset_parse("1,", 2, &s, &bad), -1);
    cr_assert_eq(gpu_cpuset_parse("99999", 5, &s, &bad), -1);
}

Test(gpu_topo, format_shows_matrix_and_islands)
{
    load("two-islands-8.txt");
    char buf[8192];
    size_t n = gpu_topo_format(&topo, buf, sizeof buf);
    cr_assert_lt(n, sizeof buf);
    cr_assert(strstr(buf, "NV12"));
    cr_assert(strstr(buf, "island 1: GPU 4,5,6,7"), "%s", buf);
    cr_assert_eq(gpu_topo_format(&topo, NULL, 0), n);
}
