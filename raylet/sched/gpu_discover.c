/* GPU graph sources (see gpu_discover.h). */
#include "raylet/sched/gpu_discover.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <hwloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/log.h"

#define TOPO_FILE_MAX (1u << 20)

int gpu_topo_load_file(const char *path, gpu_topo_t *out, char *err, size_t err_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, err_len, "%s: cannot open: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > TOPO_FILE_MAX) {
        snprintf(err, err_len, "%s: not a regular file of at most %u bytes", path, TOPO_FILE_MAX);
        close(fd);
        return CR_EBADMSG;
    }
    char *text = xmalloc((size_t)st.st_size + 1);
    size_t len = 0;
    while (len < (size_t)st.st_size) {
        ssize_t got = read(fd, text + len, (size_t)st.st_size - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    gpu_topo_error_t perr;
    int rc = gpu_topo_parse(text, len, out, &perr);
    free(text);
    if (rc != 0)
        snprintf(err, err_len, "%s:%u:%u: %s", path, perr.line, perr.column, perr.message);
    else
        snprintf(out->source, sizeof out->source, "file");
    return rc;
}

void gpu_topo_select(gpu_topo_t *t, const unsigned *phys, size_t n)
{
    gpu_topo_t *old = xmemdup(t, sizeof *t);
    memset(t->gpu, 0, sizeof t->gpu);
    memset(t->nvlinks, 0, sizeof t->nvlinks);
    memset(t->path, 0, sizeof t->path);
    for (size_t a = 0; a < n; a++) {
        t->gpu[a] = old->gpu[phys[a]];
        for (size_t b = 0; b < n; b++) {
            t->nvlinks[a][b] = old->nvlinks[phys[a]][phys[b]];
            t->path[a][b] = old->path[phys[a]][phys[b]];
        }
    }
    t->n = n;
    free(old);
}

/* ---- NVML through dlopen ------------------------------------------------------ */

/* The few NVML declarations used, as the NVML API documents them. */
typedef void *nvml_device_t;
typedef struct nvml_pci_info {
    char bus_id_legacy[16];
    unsigned domain, bus, device, pci_device_id, pci_subsystem_id;
    char bus_id[32];
} nvml_pci_info_t;
enum {
    NVML_OK = 0,
    NVML_NVLINK_LINKS = 18,
    NVML_FEATURE_ENABLED = 1,
    NVML_NVLINK_DEVICE_SWITCH = 2,
    NVML_P2P_CAPS_NVLINK = 2,
    NVML_P2P_STATUS_OK = 0,
};

typedef struct nvml_api {
    void *lib;
    int (*init)(void);
    int (*shutdown)(void);
    const char *(*error_string)(int);
    int (*count)(unsigned *);
    int (*handle)(unsigned, nvml_device_t *);
    int (*uuid)(nvml_device_t, char *, unsigned);
    int (*pci)(nvml_device_t, nvml_pci_info_t *);
    int (*cpu_affinity)(nvml_device_t, unsigned, unsigned long *);
    int (*link_state)(nvml_device_t, unsigned, int *);
    int (*link_remote_pci)(nvml_device_t, unsigned, nvml_pci_info_t *);
    int (*link_remote_type)(nvml_device_t, unsigned, int *); /* optional (R450+) */
    int (*common_ancestor)(nvml_device_t, nvml_device_t, int *);
    int (*p2p_status)(nvml_device_t, nvml_device_t, int, int *);
} nvml_api_t;

static bool nvml_bind(nvml_api_t *api, char *err, size_t err_len)
{
    api->lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!api->lib)
        return false;
#define NVML_SYM(field, name, required)                                                                      \
    do {                                                                                                       \
        *(void **)&api->field = dlsym(api->lib, name);                                                         \
        if (!api->field && (required)) {                                                                       \
            snprintf(err, err_len, "libnvidia-ml.so.1 lacks %s", name);                                      \
            return false;                                                                                      \
        }                                                                                                      \
    } while (0)
    NVML_SYM(init, "nvmlInit_v2", true);
    NVML_SYM(shutdown, "nvmlShutdown", true);
    NVML_SYM(error_string, "nvmlErrorString", true);
    NVML_SYM(count, "nvmlDeviceGetCount_v2", true);
    NVML_SYM(handle, "nvmlDeviceGetHandleByIndex_v2", true);
    NVML_SYM(uuid, "nvmlDeviceGetUUID", true);
    NVML_SYM(pci, "nvmlDeviceGetPciInfo_v3", true);
    NVML_SYM(cpu_affinity, "nvmlDeviceGetCpuAffinity", false);
    NVML_SYM(link_state, "nvmlDeviceGetNvLinkState", false);
    NVML_SYM(link_remote_pci, "nvmlDeviceGetNvLinkRemotePciInfo_v2", false);
    NVML_SYM(link_remote_type, "nvmlDeviceGetNvLinkRemoteDeviceType", false);
    NVML_SYM(common_ancestor, "nvmlDeviceGetTopologyCommonAncestor", false);
    NVML_SYM(p2p_status, "nvmlDeviceGetP2PStatus", false);
#undef NVML_SYM
    return true;
}

/* NVML's nvmlGpuTopologyLevel_t to our PCIe path. */
static gpu_path_t nvml_path(int level)
{
    switch (level) {
    case 0:  /* internal: two GPUs on one board */
    case 10: return GPU_PATH_PIX;
    case 20: return GPU_PATH_PXB;
    case 30: return GPU_PATH_PHB;
    case 40: return GPU_PATH_NODE;
    case 50: return GPU_PATH_SYS;
    default: return GPU_PATH_UNKNOWN;
    }
}

static bool nvml_same_bus(const char *a, const char *b) { return strcasecmp(a, b) == 0; }

static int nvml_discover(void *ctx, gpu_topo_t *out, char *err, size_t err_len)
{
    nvml_api_t api;
    memset(&api, 0, sizeof api);
    memset(out, 0, sizeof *out);
    err[0] = '\0';
    if (!nvml_bind(&api, err, err_len)) {
        if (api.lib)
            dlclose(api.lib);
        return err[0] ? CR_EBADMSG : -ENOENT;
    }
    int rc = 0;
    int nr = api.init();
    if (nr != NVML_OK) {
        snprintf(err, err_len, "nvmlInit failed: %s", api.error_string(nr));
        dlclose(api.lib);
        return -ENOENT;
    }
    unsigned count = 0;
    if (api.count(&count) != NVML_OK || count == 0) {
        rc = -ENOENT;
        goto out;
    }
    if (count > GPU_TOPO_MAX_GPUS)
        count = GPU_TOPO_MAX_GPUS;
    nvml_device_t dev[GPU_TOPO_MAX_GPUS];
    out->n = count;
    for (unsigned i = 0; i < count; i++) {
        if ((nr = api.handle(i, &dev[i])) != NVML_OK) {
            snprintf(err, err_len, "nvmlDeviceGetHandleByIndex(%u): %s", i, api.error_string(nr));
            rc = CR_EBADMSG;
            goto out;
        }
        gpu_info_t *g = &out->gpu[i];
        g->numa_node = -1;
        api.uuid(dev[i], g->uuid, sizeof g->uuid);
        g->uuid[sizeof g->uuid - 1] = '\0';
        nvml_pci_info_t pci;
        if (api.pci(dev[i], &pci) == NVML_OK) {
            memcpy(g->pci_bus_id, pci.bus_id, sizeof g->pci_bus_id);
            g->pci_bus_id[sizeof g->pci_bus_id - 1] = '\0';
        }
        if (api.cpu_affinity) {
            unsigned long words[GPU_TOPO_MAX_CPUS / (8 * sizeof(unsigned long))] = {0};
            if (api.cpu_affinity(dev[i], sizeof words / sizeof *words, words) == NVML_OK)
                for (unsigned c = 0; c < GPU_TOPO_MAX_CPUS; c++)
                    if (words[c / (8 * sizeof(unsigned long))] >> (c % (8 * sizeof(unsigned long))) & 1)
                        gpu_cpuset_add(&g->cpus, c);
        }
    }
    /* PCIe paths, then NVLinks counted link by link from each end. */
    unsigned switch_links[GPU_TOPO_MAX_GPUS] = {0};
    for (unsigned a = 0; a < count; a++) {
        out->path[a][a] = GPU_PATH_SELF;
        for (unsigned b = a + 1; b < count; b++) {
            int level = -1;
            gpu_path_t p = GPU_PATH_UNKNOWN;
            if (api.common_ancestor && api.common_ancestor(dev[a], dev[b], &level) == NVML_OK)
                p = nvml_path(level);
            out->path[a][b] = out->path[b][a] = (uint8_t)p;
        }
        if (!api.link_state)
            continue;
        for (unsigned link = 0; link < NVML_NVLINK_LINKS; link++) {
            int state = 0;
            if (api.link_state(dev[a], link, &state) != NVML_OK || state != NVML_FEATURE_ENABLED)
                continue;
            int type = -1;
            if (api.link_remote_type && api.link_remote_type(dev[a], link, &type) == NVML_OK &&
                type == NVML_NVLINK_DEVICE_SWITCH) {
                switch_links[a]++;
                continue;
            }
            nvml_pci_info_t remote;
            if (!api.link_remote_pci || api.link_remote_pci(dev[a], link, &remote) != NVML_OK)
                continue;
            for (unsigned b = 0; b < count; b++) {
                if (b != a && nvml_same_bus(remote.bus_id, out->gpu[b].pci_bus_id) && out->nvlinks[a][b] < 255) {
                    out->nvlinks[a][b]++;
                    break;
                }
            }
        }
    }
    /* Each link was seen from both ends; keep the matrix symmetric. */
    for (unsigned a = 0; a < count; a++)
        for (unsigned b = a + 1; b < count; b++) {
            uint8_t v = out->nvlinks[a][b] < out->nvlinks[b][a] ? out->nvlinks[a][b] : out->nvlinks[b][a];
            out->nvlinks[a][b] = out->nvlinks[b][a] = v;
        }
    /* NVSwitch: GPUs whose links end at a switch reach each other all to
     * all, at the bandwidth of the fewer links. */
    unsigned on_switch = 0;
    for (unsigned a = 0; a < count; a++) {
        on_switch += switch_links[a] > 0;
        for (unsigned b = a + 1; b < count; b++) {
            if (switch_links[a] && switch_links[b]) {
                unsigned v = switch_links[a] < switch_links[b] ? switch_links[a] : switch_links[b];
                out->nvlinks[a][b] = out->nvlinks[b][a] = (uint8_t)(v > 255 ? 255 : v);
            }
        }
    }
    out->nvswitch = count > 1 && on_switch == count;
    /* Fallback where link queries say nothing: NVLink P2P capability. */
    if (api.p2p_status) {
        for (unsigned a = 0; a < count; a++)
            for (unsigned b = a + 1; b < count; b++) {
                int st = -1;
                if (!out->nvlinks[a][b] && !api.link_state &&
                    api.p2p_status(dev[a], dev[b], NVML_P2P_CAPS_NVLINK, &st) == NVML_OK &&
                    st == NVML_P2P_STATUS_OK)
                    out->nvlinks[a][b] = out->nvlinks[b][a] = 1;
            }
    }
    for (unsigned a = 0; a < count; a++)
        for (unsigned b = 0; b < count; b++)
            if (a != b && out->nvlinks[a][b])
                out->path[a][b] = GPU_PATH_NVLINK;
    snprintf(out->source, sizeof out->source, "nvml");
out:
    api.shutdown();
    dlclose(api.lib);
    return rc;
}

const gpu_discover_ops_t gpu_discover_nvml = {"nvml", nvml_discover, NULL};

/* ---- hwloc: the cores nearest each GPU ----------------------------------------- */

static void hwloc_to_cpuset(hwloc_const_bitmap_t in, gpu_cpuset_t *out)
{
    int i;
    hwloc_bitmap_foreach_begin(i, in)
    {
        if (i >= 0)
            gpu_cpuset_add(out, (unsigned)i);
    }
    hwloc_bitmap_foreach_end();
}

static void gpu_fill_locality(gpu_topo_t *t)
{
    bool missing = false;
    for (size_t i = 0; i < t->n; i++)
        missing |= gpu_cpuset_count(&t->gpu[i].cpus) == 0;
    if (!missing)
        return;
    hwloc_topology_t hw;
    if (hwloc_topology_init(&hw) != 0)
        return;
    hwloc_topology_set_io_types_filter(hw, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
    if (hwloc_topology_load(hw) != 0) {
        hwloc_topology_destroy(hw);
        return;
    }
    for (size_t i = 0; i < t->n; i++) {
        gpu_info_t *g = &t->gpu[i];
        if (gpu_cpuset_count(&g->cpus))
            continue;
        hwloc_obj_t near = NULL;
        unsigned dom, bus, dev, fn;
        if (g->pci_bus_id[0] && sscanf(g->pci_bus_id, "%x:%x:%x.%x", &dom, &bus, &dev, &fn) == 4) {
            hwloc_obj_t pci = hwloc_get_pcidev_by_busid(hw, dom, bus, dev, fn);
            if (pci)
                near = hwloc_get_non_io_ancestor_obj(hw, pci);
        }
        if (!near && g->numa_node >= 0)
            near = hwloc_get_numanode_obj_by_os_index(hw, (unsigned)g->numa_node);
        if (!near || !near->cpuset)
            continue;
        hwloc_to_cpuset(near->cpuset, &g->cpus);
        if (g->numa_node < 0 && near->nodeset && !hwloc_bitmap_iszero(near->nodeset))
            g->numa_node = hwloc_bitmap_first(near->nodeset);
    }
    hwloc_topology_destroy(hw);
}

/* CUDA_VISIBLE_DEVICES as a list of physical indexes; false for anything
 * else (UUIDs, MIG names), which leaves the graph unrestricted. */
static bool gpu_parse_visible(const char *visible, unsigned *phys, size_t *n)
{
    *n = 0;
    const char *p = visible;
    while (*p) {
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p || v >= GPU_TOPO_MAX_GPUS || *n == GPU_TOPO_MAX_GPUS)
            return false;
        phys[(*n)++] = (unsigned)v;
        if (*end == '\0')
            break;
        if (*end != ',')
            return false;
        p = end + 1;
    }
    return *n > 0;
}

int gpu_discover_node(const char *file, const gpu_discover_ops_t *ops, const char *visible, size_t num_gpus,
                      gpu_topo_t *out, char *err, size_t err_len)
{
    err[0] = '\0';
    if (file && *file) {
        int rc = gpu_topo_load_file(file, out, err, err_len);
        if (rc != 0)
            return rc;
        if (out->n != num_gpus) {
            snprintf(err, err_len, "%s describes %zu GPUs but this node has %zu (--num-gpus)", file, out->n,
                     num_gpus);
            return CR_EBADFLAG;
        }
        gpu_fill_locality(out);
        return 0;
    }
    if (num_gpus == 0)
        return -ENOENT;
    if (!ops)
        ops = &gpu_discover_nvml;
    int rc = ops->discover(ops->ctx, out, err, err_len);
    if (rc != 0)
        return rc;
    unsigned phys[GPU_TOPO_MAX_GPUS];
    size_t nvis = 0;
    if (visible && gpu_parse_visible(visible, phys, &nvis)) {
        for (size_t i = 0; i < nvis; i++) {
            if (phys[i] >= out->n) {
                snprintf(err, err_len, "CUDA_VISIBLE_DEVICES names GPU %u but %s found %zu", phys[i], ops->name,
                         out->n);
                return -ENOENT;
            }
        }
        gpu_topo_select(out, phys, nvis);
    }
    if (out->n < num_gpus) {
        snprintf(err, err_len, "%s found %zu GPUs but this node has %zu", ops->name, out->n, num_gpus);
        return -ENOENT;
    }
    if (out->n > num_gpus) {
        unsigned first[GPU_TOPO_MAX_GPUS];
        for (size_t i = 0; i < num_gpus; i++)
            first[i] = (unsigned)i;
        gpu_topo_select(out, first, num_gpus);
    }
    gpu_fill_locality(out);
    return 0;
}
