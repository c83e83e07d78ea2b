#include "object_store/alloc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/log.h"

/* 32 linear classes per power of two: a request is placed at most 1/32
 * (about 3%) below the class it searches from, which keeps the good-fit
 * search close to best fit. */
#define SL_BITS 5
#define SL_COUNT (1u << SL_BITS)
/* Enough first-level classes for any 64-bit unit count. */
#define FL_COUNT 60
#define DESC_CHUNK 256

struct alloc_block {
    uint64_t off;  /* units */
    uint64_t size; /* units */
    alloc_block_t *phys_prev, *phys_next;
    alloc_block_t *free_prev, *free_next; /* also links spare descriptors */
    bool is_free;
};

typedef struct desc_chunk {
    struct desc_chunk *next;
    alloc_block_t d[DESC_CHUNK];
} desc_chunk_t;

struct alloc {
    uint64_t unit;  /* bytes per unit (the alignment) */
    unsigned shift; /* log2(unit) */
    uint64_t units; /* capacity in units */
    uint64_t used;  /* units in allocated blocks */
    uint64_t used_blocks, free_blocks;
    uint64_t total_allocs, total_failures;
    alloc_block_t *first; /* offset 0; never released (merges go leftwards) */
    uint64_t fl_bitmap;
    uint32_t sl_bitmap[FL_COUNT];
    alloc_block_t *heads[FL_COUNT][SL_COUNT];
    alloc_block_t *spare; /* unused descriptors */
    desc_chunk_t *chunks;
};

static unsigned msb64(uint64_t v) { return 63u - (unsigned)__builtin_clzll(v); }

static void mapping(uint64_t u, unsigned *fl, unsigned *sl)
{
    if (u < SL_COUNT) {
        *fl = 0;
        *sl = (unsigned)u;
        return;
    }
    unsigned m = msb64(u);
    *fl = m - SL_BITS + 1;
    *sl = (unsigned)(u >> (m - SL_BITS)) - SL_COUNT;
}

static void free_insert(alloc_t *a, alloc_block_t *b)
{
    unsigned fl, sl;
    mapping(b->size, &fl, &sl);
    b->free_prev = NULL;
    b->free_next = a->heads[fl][sl];
    if (b->free_next)
        b->free_next->free_prev = b;
    a->heads[fl][sl] = b;
    a->sl_bitmap[fl] |= 1u << sl;
    a->fl_bitmap |= 1ull << fl;
    a->free_blocks++;
}

static void free_remove(alloc_t *a, alloc_block_t *b)
{
    unsigned fl, sl;
    mapping(b->size, &fl, &sl);
    if (b->free_prev)
        b->free_prev->free_next = b->free_next;
    else
        a->heads[fl][sl] = b->free_next;
    if (b->free_next)
        b->free_next->free_prev = b->free_prev;
    b->free_prev = b->free_next = NULL;
    if (!a->heads[fl][sl]) {
        a->sl_bitmap[fl] &= ~(1u << sl);
        if (!a->sl_bitmap[fl])
            a->fl_bitmap &= ~(1ull << fl);
    }
    a->free_blocks--;
}

static bool spare_refill(alloc_t *a)
{
    if (a->spare)
        return true;
    desc_chunk_t *c = malloc(sizeof *c);
    if (!c)
        return false;
    c->next = a->chunks;
    a->chunks = c;
    for (int i = 0; i < DESC_CHUNK; i++) {
        c->d[i].free_next = a->spare;
        a->spare = &c->d[i];
    }
    return true;
}

static alloc_block_t *spare_take(alloc_t *a)
{
    alloc_block_t *b = a->spare;
    a->spare = b->free_next;
    *b = (alloc_block_t){0};
    return b;
}

static void spare_put(alloc_t *a, alloc_block_t *b)
{
    b->free_next = a->spare;
    a->spare = b;
}

alloc_t *alloc_create(uint64_t size, uint64_t align)
{
    if (align < 8 || (align & (align - 1)))
        return NULL;
    uint64_t units = size / align;
    if (units == 0)
        return NULL;
    alloc_t *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->unit = align;
    a->shift = msb64(align);
    a->units = units;
    if (!spare_refill(a)) {
        free(a);
        return NULL;
    }
    alloc_block_t *b = spare_take(a);
    b->off = 0;
    b->size = units;
    b->is_free = true;
    a->first = b;
    free_insert(a, b);
    return a;
}

void alloc_destroy(alloc_t *a)
{
    if (!a)
        return;
    desc_chunk_t *c = a->chunks;
    while (c) {
        desc_chunk_t *n = c->next;
        free(c);
        c = n;
    }
    free(a);
}

/* The first block of a non-empty class at or above the one for u whose
 * every member is >= u, or failing that any block of u's own class that
 * fits. */
static alloc_block_t *find_fit(alloc_t *a, uint64_t u)
{
    uint64_t t = u;
    if (u >= SL_COUNT)
        t = u + ((1ull << (msb64(u) - SL_BITS)) - 1);
    unsigned fl, sl;
    mapping(t, &fl, &sl);
    if (fl < FL_COUNT) {
        uint32_t slmap = a->sl_bitmap[fl] & (~0u << sl);
        if (!slmap) {
            uint64_t flmap = fl + 1 < 64 ? a->fl_bitmap & (~0ull << (fl + 1)) : 0;
            if (flmap) {
                fl = (unsigned)__builtin_ctzll(flmap);
                slmap = a->sl_bitmap[fl];
            }
        }
        if (slmap)
            return a->heads[fl][__builtin_ctz(slmap)];
    }
    /* Near exhaustion: the class u itself belongs to may hold a block that
     * fits even though its class minimum does not. */
    mapping(u, &fl, &sl);
    for (alloc_block_t *b = a->heads[fl][sl]; b; b = b->free_next)
        if (b->size >= u)
            return b;
    return NULL;
}

int alloc_alloc(alloc_t *a, uint64_t size, alloc_block_t **out)
{
    *out = NULL;
    if (size > UINT64_MAX - a->unit)
        return -EINVAL;
    uint64_t u = (size + a->unit - 1) >> a->shift;
    if (u == 0)
        u = 1;
    alloc_block_t *b = u <= a->units ? find_fit(a, u) : NULL;
    /* The split below needs a descriptor; get it before changing anything. */
    if (!b || (b->size > u && !spare_refill(a))) {
        a->total_failures++;
        return -ENOMEM;
    }
    free_remove(a, b);
    if (b->size > u) {
        alloc_block_t *r = spare_take(a);
        r->off = b->off + u;
        r->size = b->size - u;
        r->is_free = true;
        r->phys_prev = b;
        r->phys_next = b->phys_next;
        if (r->phys_next)
            r->phys_next->phys_prev = r;
        b->phys_next = r;
        b->size = u;
        free_insert(a, r);
    }
    b->is_free = false;
    a->used += u;
    a->used_blocks++;
    a->total_allocs++;
    *out = b;
    return 0;
}

static void phys_unlink(alloc_block_t *b)
{
    if (b->phys_prev)
        b->phys_prev->phys_next = b->phys_next;
    if (b->phys_next)
        b->phys_next->phys_prev = b->phys_prev;
}

void alloc_free(alloc_t *a, alloc_block_t *b)
{
    if (!b)
        return;
    if (b->is_free) {
        /* A caller bug, but the structures are still sound: refuse it. */
        log_error("alloc: double free of block at offset %llu",
                  (unsigned long long)(b->off << a->shift));
        return;
    }
    a->used -= b->size;
    a->used_blocks--;
    b->is_free = true;
    alloc_block_t *p = b->phys_prev;
    if (p && p->is_free) {
        free_remove(a, p);
        p->size += b->size;
        phys_unlink(b);
        spare_put(a, b);
        b = p;
    }
    alloc_block_t *n = b->phys_next;
    if (n && n->is_free) {
        free_remove(a, n);
        b->size += n->size;
        phys_unlink(n);
        spare_put(a, n);
    }
    free_insert(a, b);
}

uint64_t alloc_block_offset(const alloc_t *a, const alloc_block_t *b) { return b->off << a->shift; }

uint64_t alloc_block_size(const alloc_t *a, const alloc_block_t *b) { return b->size << a->shift; }

void alloc_get_stats(const alloc_t *a, alloc_stats_t *out)
{
    *out = (alloc_stats_t){
        .capacity = a->units << a->shift,
        .used = a->used << a->shift,
        .used_blocks = a->used_blocks,
        .free_blocks = a->free_blocks,
        .total_allocs = a->total_allocs,
        .total_failures = a->total_failures,
    };
    if (a->fl_bitmap) {
        unsigned fl = msb64(a->fl_bitmap);
        unsigned sl = 31u - (unsigned)__builtin_clz(a->sl_bitmap[fl]);
        uint64_t best = 0;
        for (alloc_block_t *b = a->heads[fl][sl]; b; b = b->free_next)
            if (b->size > best)
                best = b->size;
        out->largest_free = best << a->shift;
    }
}

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            log_error("alloc_check: " __VA_ARGS__);                                       \
            return -EFAULT;                                                               \
        }                                                                                 \
    } while (0)

int alloc_check(const alloc_t *a)
{
    uint64_t pos = 0, used = 0, nfree = 0, nused = 0;
    const alloc_block_t *prev = NULL;
    for (const alloc_block_t *b = a->first; b; b = b->phys_next) {
        CHECK(b->phys_prev == prev, "broken address-order back link at unit %llu",
              (unsigned long long)b->off);
        CHECK(b->off == pos, "gap or overlap at unit %llu (expected %llu)",
              (unsigned long long)b->off, (unsigned long long)pos);
        CHECK(b->size > 0, "empty block at unit %llu", (unsigned long long)b->off);
        CHECK(!(prev && prev->is_free && b->is_free), "unmerged free neighbours at unit %llu",
              (unsigned long long)b->off);
        if (b->is_free)
            nfree++;
        else {
            nused++;
            used += b->size;
        }
        pos += b->size;
        prev = b;
    }
    CHECK(pos == a->units, "blocks cover %llu units of %llu", (unsigned long long)pos,
          (unsigned long long)a->units);
    CHECK(used == a->used && nused == a->used_blocks && nfree == a->free_blocks,
          "counters disagree with the blocks");
    uint64_t listed = 0;
    for (unsigned fl = 0; fl < FL_COUNT; fl++) {
        CHECK(!!(a->fl_bitmap & (1ull << fl)) == !!a->sl_bitmap[fl], "first-level bit %u wrong", fl);
        for (unsigned sl = 0; sl < SL_COUNT; sl++) {
            CHECK(!!(a->sl_bitmap[fl] & (1u << sl)) == !!a->heads[fl][sl],
                  "second-level bit %u/%u wrong", fl, sl);
            const alloc_block_t *lp = NULL;
            for (const alloc_block_t *b = a->heads[fl][sl]; b; b = b->free_next) {
                unsigned f2, s2;
                mapping(b->size, &f2, &s2);
                CHECK(b->is_free && f2 == fl && s2 == sl && b->free_prev == lp,
                      "block in free list %u/%u is misfiled", fl, sl);
                lp = b;
                listed++;
            }
        }
    }
    CHECK(listed == nfree, "%llu blocks listed free, %llu free in address order",
          (unsigned long long)listed, (unsigned long long)nfree);
    return 0;
}
