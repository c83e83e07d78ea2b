/* The GPU graph and the `nvidia-smi topo -m` text parser (see gpu_topo.h).
 *
 * The parser works line by line on the bytes it is given (they need not be
 * NUL-terminated), splitting each line into tokens at tabs, spaces and
 * terminal escape sequences, and remembers every token's column so that an
 * error can point at it. */
#include "raylet/sched/gpu_topo.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/strbuf.h"

/* ---- CPU sets -------------------------------------------------------------- */

size_t gpu_cpuset_count(const gpu_cpuset_t *s)
{
    size_t n = 0;
    for (size_t i = 0; i < GPU_TOPO_MAX_CPUS / 64; i++)
        n += (size_t)__builtin_popcountll(s->bits[i]);
    return n;
}

size_t gpu_cpuset_format(const gpu_cpuset_t *s, char *buf, size_t len)
{
    size_t used = 0;
    if (len)
        buf[0] = '\0';
    for (unsigned cpu = 0; cpu < GPU_TOPO_MAX_CPUS;) {
        if (!gpu_cpuset_has(s, cpu)) {
            cpu++;
            continue;
        }
        unsigned end = cpu;
        while (end + 1 < GPU_TOPO_MAX_CPUS && gpu_cpuset_has(s, end + 1))
            end++;
        int w = end == cpu ? snprintf(buf + (used < len ? used : len), used < len ? len - used : 0, "%s%u",
                                      used ? "," : "", cpu)
                           : snprintf(buf + (used < len ? used : len), used < len ? len - used : 0, "%s%u-%u",
                                      used ? "," : "", cpu, end);
        used += (size_t)w;
        cpu = end + 1;
    }
    return used;
}

static bool topo_read_uint(const char *s, size_t len, size_t *pos, unsigned limit, unsigned *out)
{
    size_t p = *pos;
    unsigned v = 0;
    if (p >= len || !isdigit((unsigned char)s[p]))
        return false;
    while (p < len && isdigit((unsigned char)s[p])) {
        v = v * 10 + (unsigned)(s[p] - '0');
        if (v >= limit)
            return false;
        p++;
    }
    *pos = p;
    *out = v;
    return true;
}

int gpu_cpuset_parse(const char *text, size_t len, gpu_cpuset_t *out, size_t *bad_at)
{
    memset(out, 0, sizeof *out);
    size_t p = 0;
    while (p < len) {
        unsigned lo, hi;
        if (!topo_read_uint(text, len, &p, GPU_TOPO_MAX_CPUS, &lo))
            goto bad;
        hi = lo;
        if (p < len && text[p] == '-') {
            p++;
            if (!topo_read_uint(text, len, &p, GPU_TOPO_MAX_CPUS, &hi) || hi < lo)
                goto bad;
        }
        for (unsigned c = lo; c <= hi; c++)
            gpu_cpuset_add(out, c);
        if (p == len)
            return 0;
        if (text[p] != ',')
            goto bad;
        p++;
        if (p == len)
            goto bad; /* a trailing comma */
    }
bad:
    if (bad_at)
        *bad_at = p;
    return -1;
}

/* ---- graph queries --------------------------------------------------------- */

bool gpu_topo_all_nvlink(const gpu_topo_t *t, uint64_t mask)
{
    for (unsigned a = 0; a < t->n; a++) {
        if (!(mask >> a & 1))
            continue;
        for (unsigned b = a + 1; b < t->n; b++)
            if ((mask >> b & 1) && !t->nvlinks[a][b])
                return false;
    }
    return true;
}

size_t gpu_topo_islands(const gpu_topo_t *t, unsigned island[GPU_TOPO_MAX_GPUS])
{
    size_t count = 0;
    for (unsigned i = 0; i < t->n; i++)
        island[i] = UINT32_MAX;
    for (unsigned s = 0; s < t->n; s++) {
        if (island[s] != UINT32_MAX)
            continue;
        /* Depth-first over NVLink edges from the lowest unnumbered GPU. */
        unsigned stack[GPU_TOPO_MAX_GPUS], top = 0;
        island[s] = (unsigned)count;
        stack[top++] = s;
        while (top) {
            unsigned a = stack[--top];
            for (unsigned b = 0; b < t->n; b++) {
                if (t->nvlinks[a][b] && island[b] == UINT32_MAX) {
                    island[b] = (unsigned)count;
                    stack[top++] = b;
                }
            }
        }
        count++;
    }
    return count;
}

static const char *topo_path_name(gpu_path_t p)
{
    switch (p) {
    case GPU_PATH_SYS: return "SYS";
    case GPU_PATH_NODE: return "NODE";
    case GPU_PATH_PHB: return "PHB";
    case GPU_PATH_PXB: return "PXB";
    case GPU_PATH_PIX: return "PIX";
    case GPU_PATH_SELF: return "X";
    case GPU_PATH_NVLINK: return "NV";
    default: return "N/A";
    }
}

size_t gpu_topo_format(const gpu_topo_t *t, char *buf, size_t len)
{
    strbuf_t o = {.buf = buf, .cap = len};
    if (len)
        buf[0] = '\0';
    strbuf_printf(&o, "%-6s", "");
    for (unsigned b = 0; b < t->n; b++) {
        char name[16];
        snprintf(name, sizeof name, "GPU%u", b);
        strbuf_printf(&o, " %-5s", name);
    }
    strbuf_printf(&o, "  %-8s %s\n", "NUMA", "CPU Affinity");
    for (unsigned a = 0; a < t->n; a++) {
        char name[16];
        snprintf(name, sizeof name, "GPU%u", a);
        strbuf_printf(&o, "%-6s", name);
        for (unsigned b = 0; b < t->n; b++) {
            char cell[16];
            if (a == b)
                snprintf(cell, sizeof cell, "X");
            else if (t->nvlinks[a][b])
                snprintf(cell, sizeof cell, "NV%u", t->nvlinks[a][b]);
            else
                snprintf(cell, sizeof cell, "%s", topo_path_name((gpu_path_t)t->path[a][b]));
            strbuf_printf(&o, " %-5s", cell);
        }
        char cpus[256];
        gpu_cpuset_format(&t->gpu[a].cpus, cpus, sizeof cpus);
        if (t->gpu[a].numa_node >= 0)
            strbuf_printf(&o, "  %-8d %s\n", t->gpu[a].numa_node, cpus[0] ? cpus : "N/A");
        else
            strbuf_printf(&o, "  %-8s %s\n", "N/A", cpus[0] ? cpus : "N/A");
    }
    unsigned island[GPU_TOPO_MAX_GPUS];
    size_t islands = gpu_topo_islands(t, island);
    strbuf_printf(&o, "\nNVLink islands (%zu)%s:\n", islands, t->nvswitch ? ", through NVSwitch" : "");
    for (unsigned k = 0; k < islands; k++) {
        strbuf_printf(&o, "  island %u: GPU", k);
        bool first = true;
        for (unsigned g = 0; g < t->n; g++) {
            if (island[g] == k) {
                strbuf_printf(&o, "%s%u", first ? " " : ",", g);
                first = false;
            }
        }
        strbuf_printf(&o, "\n");
    }
    return o.len;
}

/* ---- the text parser --------------------------------------------------------- */

#define TOPO_MAX_TOKENS 200
#define TOPO_MAX_COLUMNS 160

typedef struct topo_token {
    const char *s;
    size_t len;
    unsigned column; /* 1-based byte column in its line */
} topo_token_t;

typedef struct topo_line {
    const char *s;
    size_t len;
    unsigned number;
    topo_token_t tok[TOPO_MAX_TOKENS];
    size_t ntok;
    bool too_many;
} topo_line_t;

static int topo_fail(gpu_topo_error_t *err, unsigned line, unsigned column, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int topo_fail(gpu_topo_error_t *err, unsigned line, unsigned column, const char *fmt, ...)
{
    if (err) {
        err->line = line;
        err->column = column;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return CR_EBADMSG;
}

/* Split a line at blanks and ESC [ ... <letter> sequences. */
static void topo_tokenize(topo_line_t *l)
{
    l->ntok = 0;
    l->too_many = false;
    size_t p = 0;
    while (p < l->len) {
        unsigned char c = (unsigned char)l->s[p];
        if (c == ' ' || c == '\t' || c == '\r') {
            p++;
            continue;
        }
        if (c == 0x1b) {
            p++;
            if (p < l->len && l->s[p] == '[') {
                p++;
                while (p < l->len && !isalpha((unsigned char)l->s[p]))
                    p++;
                if (p < l->len)
                    p++;
            }
            continue;
        }
        size_t start = p;
        while (p < l->len && l->s[p] != ' ' && l->s[p] != '\t' && l->s[p] != '\r' && l->s[p] != 0x1b)
            p++;
        if (l->ntok == TOPO_MAX_TOKENS) {
            l->too_many = true;
            return;
        }
        l->tok[l->ntok++] = (topo_token_t){l->s + start, p - start, (unsigned)start + 1};
    }
}

static bool tok_is(const topo_token_t *t, const char *word)
{
    size_t n = strlen(word);
    return t->len == n && strncasecmp(t->s, word, n) == 0;
}

/* "GPU12" -> 12; false for anything else (including "GPU"). */
static bool tok_gpu_index(const topo_token_t *t, unsigned *index)
{
    if (t->len < 4 || t->len > 6 || strncmp(t->s, "GPU", 3) != 0)
        return false;
    unsigned v = 0;
    for (size_t i = 3; i < t->len; i++) {
        if (!isdigit((unsigned char)t->s[i]))
            return false;
        v = v * 10 + (unsigned)(t->s[i] - '0');
    }
    if (t->len > 4 && t->s[3] == '0')
        return false; /* "GPU01" is not a name nvidia-smi prints */
    *index = v;
    return true;
}

/* The per-device columns after the matrix. */
typedef enum topo_extra { EXTRA_CPU_AFFINITY, EXTRA_NUMA_AFFINITY, EXTRA_GPU_NUMA_ID } topo_extra_t;

/* Recognise a multi-word column title at tok[i]; returns how many tokens it
 * spans (0 if none). */
static size_t topo_extra_title(const topo_line_t *l, size_t i, topo_extra_t *kind)
{
    if (i + 1 < l->ntok && tok_is(&l->tok[i], "CPU") && tok_is(&l->tok[i + 1], "Affinity")) {
        *kind = EXTRA_CPU_AFFINITY;
        return 2;
    }
    if (i + 1 < l->ntok && tok_is(&l->tok[i], "NUMA") && tok_is(&l->tok[i + 1], "Affinity")) {
        *kind = EXTRA_NUMA_AFFINITY;
        return 2;
    }
    if (i + 2 < l->ntok && tok_is(&l->tok[i], "GPU") && tok_is(&l->tok[i + 1], "NUMA") &&
        tok_is(&l->tok[i + 2], "ID")) {
        *kind = EXTRA_GPU_NUMA_ID;
        return 3;
    }
    return 0;
}

/* A matrix cell: X, NV<n>, a PCIe path, or N/A.  *links is set for NV<n>. */
static bool topo_cell(const topo_token_t *t, gpu_path_t *path, unsigned *links)
{
    *links = 0;
    if (tok_is(t, "X")) {
        *path = GPU_PATH_SELF;
        return true;
    }
    if (t->len >= 3 && t->len <= 5 && strncmp(t->s, "NV", 2) == 0) {
        unsigned v = 0;
        for (size_t i = 2; i < t->len; i++) {
            if (!isdigit((unsigned char)t->s[i]))
                return false;
            v = v * 10 + (unsigned)(t->s[i] - '0');
        }
        if (v == 0 || v > 255)
            return false;
        *path = GPU_PATH_NVLINK;
        *links = v;
        return true;
    }
    static const struct {
        const char *name;
        gpu_path_t path;
    } names[] = {{"SYS", GPU_PATH_SYS}, {"SOC", GPU_PATH_SYS}, {"NODE", GPU_PATH_NODE}, {"PHB", GPU_PATH_PHB},
                 {"PXB", GPU_PATH_PXB}, {"PIX", GPU_PATH_PIX},  {"N/A", GPU_PATH_UNKNOWN}};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        if (t->len == strlen(names[i].name) && strncmp(t->s, names[i].name, t->len) == 0) {
            *path = names[i].path;
            return true;
        }
    }
    return false;
}

static bool tok_na(const topo_token_t *t) { return tok_is(t, "N/A"); }

typedef struct topo_parse {
    gpu_topo_t *out;
    gpu_topo_error_t *err;
    /* From the header. */
    size_t ndev;                      /* device columns */
    int col_gpu[TOPO_MAX_COLUMNS];    /* device column -> GPU index, or -1 */
    char col_name[TOPO_MAX_COLUMNS][24];
    size_t nextra;
    topo_extra_t extra[4];
    /* Per GPU row: where it was and where each cell was, for errors. */
    bool seen_row[GPU_TOPO_MAX_GPUS];
    unsigned row_line[GPU_TOPO_MAX_GPUS];
    unsigned cell_col[GPU_TOPO_MAX_GPUS][GPU_TOPO_MAX_GPUS];
    uint8_t cell_links[GPU_TOPO_MAX_GPUS][GPU_TOPO_MAX_GPUS];
    uint8_t cell_path[GPU_TOPO_MAX_GPUS][GPU_TOPO_MAX_GPUS];
} topo_parse_t;

static int topo_header(topo_parse_t *ps, const topo_line_t *l)
{
    if (l->too_many)
        return topo_fail(ps->err, l->number, 1, "header has more than %d columns", TOPO_MAX_TOKENS);
    bool gpu_seen[GPU_TOPO_MAX_GPUS] = {false};
    size_t i = 0;
    size_t ngpu = 0;
    unsigned max_gpu = 0;
    while (i < l->ntok) {
        topo_extra_t kind;
        size_t span = topo_extra_title(l, i, &kind);
        if (span) {
            if (ps->nextra == 4)
                return topo_fail(ps->err, l->number, l->tok[i].column, "too many affinity columns");
            for (size_t k = 0; k < ps->nextra; k++)
                if (ps->extra[k] == kind)
                    return topo_fail(ps->err, l->number, l->tok[i].column, "column given twice");
            ps->extra[ps->nextra++] = kind;
            i += span;
            continue;
        }
        const topo_token_t *t = &l->tok[i];
        if (ps->nextra > 0)
            return topo_fail(ps->err, l->number, t->column, "unexpected header \"%.*s\" after the affinity columns",
                             (int)(t->len > 40 ? 40 : t->len), t->s);
        if (ps->ndev == TOPO_MAX_COLUMNS)
            return topo_fail(ps->err, l->number, t->column, "more than %d device columns", TOPO_MAX_COLUMNS);
        unsigned g;
        if (tok_gpu_index(t, &g)) {
            if (g >= GPU_TOPO_MAX_GPUS)
                return topo_fail(ps->err, l->number, t->column, "GPU%u: at most %d GPUs are supported", g,
                                 GPU_TOPO_MAX_GPUS);
            if (gpu_seen[g])
                return topo_fail(ps->err, l->number, t->column, "duplicate GPU%u column", g);
            gpu_seen[g] = true;
            ngpu++;
            if (g > max_gpu)
                max_gpu = g;
            ps->col_gpu[ps->ndev] = (int)g;
        } else {
            ps->col_gpu[ps->ndev] = -1;
            if (tok_is(t, "GPU") || t->len >= sizeof ps->col_name[0])
                return topo_fail(ps->err, l->number, t->column, "unexpected header \"%.*s\"",
                                 (int)(t->len > 40 ? 40 : t->len), t->s);
        }
        snprintf(ps->col_name[ps->ndev], sizeof ps->col_name[0], "%.*s", (int)t->len, t->s);
        ps->ndev++;
        i++;
    }
    if (ngpu == 0)
        return topo_fail(ps->err, l->number, 1, "header names no GPU columns (expected GPU0, GPU1, ...)");
    if (max_gpu + 1 != ngpu) {
        for (unsigned g = 0; g < max_gpu; g++)
            if (!gpu_seen[g])
                return topo_fail(ps->err, l->number, 1, "header lacks GPU%u (GPUs must be numbered 0..%u)", g,
                                 max_gpu);
    }
    ps->out->n = ngpu;
    return 0;
}

/* Find the device column called like t; -1 if none. */
static int topo_column_of(const topo_parse_t *ps, const topo_token_t *t)
{
    for (size_t c = 0; c < ps->ndev; c++)
        if (strlen(ps->col_name[c]) == t->len && strncmp(ps->col_name[c], t->s, t->len) == 0)
            return (int)c;
    return -1;
}

static int topo_row(topo_parse_t *ps, const topo_line_t *l)
{
    if (l->too_many)
        return topo_fail(ps->err, l->number, 1, "row has more than %d columns", TOPO_MAX_TOKENS);
    const topo_token_t *label = &l->tok[0];
    int col = topo_column_of(ps, label);
    if (col < 0)
        return topo_fail(ps->err, l->number, label->column, "row \"%.*s\" is not a column of the header",
                         (int)(label->len > 40 ? 40 : label->len), label->s);
    int g = ps->col_gpu[col];
    size_t cells = l->ntok - 1;
    /* A GPU row has every device column and every affinity column; other
     * devices (NICs) may leave the affinity columns out. */
    size_t want = ps->ndev + (g >= 0 ? ps->nextra : 0);
    if (cells < ps->ndev || (g >= 0 && cells < want)) {
        unsigned at = (unsigned)(l->tok[l->ntok - 1].column + l->tok[l->ntok - 1].len);
        return topo_fail(ps->err, l->number, at, "row %s has %zu columns, expected %zu", ps->col_name[col], cells,
                         want);
    }
    if (cells > ps->ndev + ps->nextra)
        return topo_fail(ps->err, l->number, l->tok[1 + ps->ndev + ps->nextra].column,
                         "row %s has %zu columns, expected %zu", ps->col_name[col], cells, want);
    if (g >= 0) {
        if (ps->seen_row[g])
            return topo_fail(ps->err, l->number, label->column, "duplicate row GPU%d", g);
        ps->seen_row[g] = true;
        ps->row_line[g] = l->number;
    }
    for (size_t c = 0; c < ps->ndev; c++) {
        const topo_token_t *t = &l->tok[1 + c];
        gpu_path_t path;
        unsigned links;
        if (!topo_cell(t, &path, &links))
            return topo_fail(ps->err, l->number, t->column,
                             "unknown link \"%.*s\" (expected X, NV<n>, PIX, PXB, PHB, NODE, SYS or N/A)",
                             (int)(t->len > 20 ? 20 : t->len), t->s);
        bool self = (size_t)col == c;
        if (self != (path == GPU_PATH_SELF))
            return topo_fail(ps->err, l->number, t->column,
                             self ? "a device's link to itself must be X" : "X off the diagonal");
        int h = ps->col_gpu[c];
        if (g >= 0 && h >= 0) {
            ps->cell_col[g][h] = t->column;
            ps->cell_links[g][h] = (uint8_t)links;
            ps->cell_path[g][h] = (uint8_t)path;
        }
    }
    if (g < 0)
        return 0;
    gpu_info_t *info = &ps->out->gpu[g];
    info->numa_node = -1;
    for (size_t k = 0; k < ps->nextra && 1 + ps->ndev + k < l->ntok; k++) {
        const topo_token_t *t = &l->tok[1 + ps->ndev + k];
        if (tok_na(t))
            continue;
        size_t bad = 0;
        switch (ps->extra[k]) {
        case EXTRA_CPU_AFFINITY:
            if (gpu_cpuset_parse(t->s, t->len, &info->cpus, &bad) < 0)
                return topo_fail(ps->err, l->number, t->column + (unsigned)bad,
                                 "bad CPU list \"%.*s\" (expected e.g. 0-31,64-95 below %d)",
                                 (int)(t->len > 40 ? 40 : t->len), t->s, GPU_TOPO_MAX_CPUS);
            break;
        case EXTRA_NUMA_AFFINITY: {
            /* "0", or a list like "0-1" when the GPU is equally near several:
             * the first is the node we bind memory to. */
            gpu_cpuset_t nodes;
            if (gpu_cpuset_parse(t->s, t->len, &nodes, &bad) < 0)
                return topo_fail(ps->err, l->number, t->column + (unsigned)bad, "bad NUMA node \"%.*s\"",
                                 (int)(t->len > 40 ? 40 : t->len), t->s);
            for (unsigned nn = 0; nn < GPU_TOPO_MAX_CPUS; nn++) {
                if (gpu_cpuset_has(&nodes, nn)) {
                    info->numa_node = (int)nn;
                    break;
                }
            }
            break;
        }
        case EXTRA_GPU_NUMA_ID: {
            size_t p = 0;
            unsigned v;
            if (!topo_read_uint(t->s, t->len, &p, 1u << 16, &v) || p != t->len)
                return topo_fail(ps->err, l->number, t->column + (unsigned)p, "bad GPU NUMA ID \"%.*s\"",
                                 (int)(t->len > 40 ? 40 : t->len), t->s);
            break;
        }
        }
    }
    return 0;
}

static bool topo_line_starts(const topo_line_t *l, const char *word)
{
    return l->ntok > 0 && l->tok[0].len >= strlen(word) && strncasecmp(l->tok[0].s, word, strlen(word)) == 0;
}

int gpu_topo_parse(const char *text, size_t len, gpu_topo_t *out, gpu_topo_error_t *err)
{
    memset(out, 0, sizeof *out);
    if (err)
        memset(err, 0, sizeof *err);
    snprintf(out->source, sizeof out->source, "file");
    topo_parse_t *ps = xcalloc(1, sizeof *ps);
    topo_line_t *l = xcalloc(1, sizeof *l);
    ps->out = out;
    ps->err = err;
    int rc = 0;
    bool header = false, rows = false;
    unsigned last_line = 0;
    size_t p = 0;
    for (unsigned number = 1; p < len; number++) {
        const char *nl = memchr(text + p, '\n', len - p);
        size_t end = nl ? (size_t)(nl - text) : len;
        l->s = text + p;
        l->len = end - p;
        l->number = number;
        p = nl ? end + 1 : len;
        last_line = number;
        for (size_t i = 0; i < l->len; i++) {
            unsigned char c = (unsigned char)l->s[i];
            if (c == 0 || (c < 0x20 && c != '\t' && c != '\r' && c != 0x1b) || c == 0x7f) {
                rc = topo_fail(err, number, (unsigned)i + 1, "control character 0x%02x", c);
                goto out;
            }
        }
        topo_tokenize(l);
        if (l->ntok == 0) {
            if (rows)
                break; /* the blank line before the legend ends the matrix */
            continue;
        }
        if (topo_line_starts(l, "Legend")) {
            if (!header)
                rc = topo_fail(err, number, l->tok[0].column, "legend before the matrix");
            break;
        }
        if (!header) {
            rc = topo_header(ps, l);
            if (rc < 0)
                goto out;
            header = true;
            continue;
        }
        rc = topo_row(ps, l);
        if (rc < 0)
            goto out;
        rows = true;
    }
    if (!header) {
        rc = topo_fail(err, last_line ? last_line : 1, 1, "no topology matrix found");
        goto out;
    }
    for (unsigned g = 0; g < out->n; g++) {
        if (!ps->seen_row[g]) {
            rc = topo_fail(err, last_line ? last_line : 1, 1, "no row for GPU%u", g);
            goto out;
        }
    }
    /* Symmetry: report the later of two cells that disagree. */
    for (unsigned a = 0; a < out->n; a++) {
        for (unsigned b = 0; b < out->n; b++) {
            if (a == b)
                continue;
            if (ps->cell_links[a][b] != ps->cell_links[b][a] || ps->cell_path[a][b] != ps->cell_path[b][a]) {
                unsigned la = ps->row_line[a], lb = ps->row_line[b];
                bool a_later = la > lb;
                rc = topo_fail(err, a_later ? la : lb, a_later ? ps->cell_col[a][b] : ps->cell_col[b][a],
                               "GPU%u-GPU%u differs from GPU%u-GPU%u (the matrix must be symmetric)",
                               a_later ? a : b, a_later ? b : a, a_later ? b : a, a_later ? a : b);
                goto out;
            }
            out->nvlinks[a][b] = ps->cell_links[a][b];
            out->path[a][b] = ps->cell_path[a][b];
        }
        out->path[a][a] = GPU_PATH_SELF;
    }
    /* All pairs linked with the same bond width is how an NVSwitch system
     * shows in this format (NV18 everywhere on an 8-GPU H100 board). */
    if (out->n > 2) {
        out->nvswitch = true;
        for (unsigned a = 0; a < out->n && out->nvswitch; a++)
            for (unsigned b = a + 1; b < out->n && out->nvswitch; b++)
                out->nvswitch = out->nvlinks[a][b] && out->nvlinks[a][b] == out->nvlinks[0][1];
    }
out:
    free(l);
    free(ps);
    return rc;
}
