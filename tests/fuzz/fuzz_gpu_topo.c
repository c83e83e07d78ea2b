/* libFuzzer harness for the `nvidia-smi topo -m` parser: arbitrary bytes
 * are parsed; a refusal must name a line and column inside the input and a
 * reason, and an accepted graph must be well formed (symmetric, X exactly on
 * the diagonal, at most GPU_TOPO_MAX_GPUS GPUs) and survive formatting and
 * a packing decision over it.  Seeds: the sample topologies in
 * python_shim/craylet/topologies (copied by `make fuzz-test`). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raylet/sched/gpu_pack.h"
#include "raylet/sched/gpu_topo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gpu_topo_t topo;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gpu_topo_error_t err;
    int rc = gpu_topo_parse((const char *)data, size, &topo, &err);
    if (rc != 0) {
        unsigned lines = 1;
        for (size_t i = 0; i < size; i++)
            lines += data[i] == '\n';
        if (err.line == 0 || err.line > lines || err.column == 0 || !err.message[0])
            abort();
        return 0;
    }
    if (topo.n == 0 || topo.n > GPU_TOPO_MAX_GPUS)
        abort();
    for (unsigned a = 0; a < topo.n; a++)
        for (unsigned b = 0; b < topo.n; b++)
            if (topo.nvlinks[a][b] != topo.nvlinks[b][a] || topo.path[a][b] != topo.path[b][a] ||
                (topo.path[a][b] == GPU_PATH_SELF) != (a == b))
                abort();
    char text[1 << 15];
    size_t need = gpu_topo_format(&topo, NULL, 0);
    if (gpu_topo_format(&topo, text, sizeof text) != need)
        abort();
    uint32_t counts[2] = {1 + (uint32_t)(size % 3), (uint32_t)(size % 2)};
    uint64_t free_mask = size >= 8 ? 0 : ~0ull;
    for (size_t i = 0; i < 8 && i < size; i++)
        free_mask = free_mask << 8 | data[size - 1 - i];
    gpu_pack_result_t r;
    if (gpu_pack_choose(&topo, free_mask | 1, counts, 2, GPU_PACK_PREFER, &r) == 0) {
        uint64_t seen = 0;
        for (size_t i = 0; i < r.count; i++)
            seen |= 1ull << r.ids[i];
        if (seen != r.mask || (size_t)__builtin_popcountll(seen) != r.count)
            abort();
    }
    return 0;
}
