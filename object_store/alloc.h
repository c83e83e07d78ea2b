/* An allocator of offsets inside one shared-memory region.
 *
 * The object store hands out pieces of a region that every worker maps
 * read-write.  A worker may scribble anywhere in its mapping, so nothing the
 * allocator depends on lives in the region: all bookkeeping (block
 * descriptors, free lists, bitmaps) is in the daemon's private heap, and the
 * allocator deals only in offsets.  It never touches the region's bytes.
 *
 * Algorithm: two-level segregated fit (TLSF).  Free blocks sit in lists
 * indexed by size class (power of two, then 32 linear steps inside it);
 * bitmaps find a non-empty list that is guaranteed to fit in O(1), and
 * neighbouring free blocks are merged on free, so fragmentation stays low
 * without compaction.  When the O(1) search finds nothing, the one size
 * class that may still hold a big enough block is scanned, so an allocation
 * fails only if no free block is large enough: callers can rely on "fails
 * => evict or fall back", never on a spurious failure.
 *
 * Every size is rounded up to the alignment given at creation (64 bytes in
 * the store), and every offset is a multiple of it.  Failure to allocate is
 * an ordinary result (-ENOMEM), never fatal; descriptor memory is obtained
 * before any list is changed, so a failed call leaves the state untouched.
 *
 * Not thread-safe: the store's loop thread owns it. */
#ifndef CRAYLET_OBJECT_STORE_ALLOC_H
#define CRAYLET_OBJECT_STORE_ALLOC_H

#include <stdint.h>

typedef struct alloc alloc_t;
/* One allocated range.  Owned by the allocator; valid until alloc_free()
 * or alloc_destroy(). */
typedef struct alloc_block alloc_block_t;

typedef struct {
    uint64_t capacity;      /* bytes managed */
    uint64_t used;          /* bytes in allocated blocks (rounded sizes) */
    uint64_t largest_free;  /* the largest single allocation that would succeed now */
    uint64_t used_blocks;
    uint64_t free_blocks;   /* fragments; 1 when nothing is allocated */
    uint64_t total_allocs;  /* successful alloc_alloc calls, ever */
    uint64_t total_failures;
} alloc_stats_t;

/* Manages [0, size) rounded down to a multiple of `align`, which must be a
 * power of two >= 8.  Returns NULL on bad arguments or out of memory. */
alloc_t *alloc_create(uint64_t size, uint64_t align);
/* Frees every descriptor; outstanding blocks become invalid. */
void alloc_destroy(alloc_t *a);

/* Allocates `size` bytes (0 is treated as one alignment unit).  Returns 0
 * and *out, -ENOMEM when no free block is large enough (or descriptor
 * memory ran out), or -EINVAL when size is absurd (beyond the capacity
 * arithmetic). */
int alloc_alloc(alloc_t *a, uint64_t size, alloc_block_t **out)
    __attribute__((warn_unused_result));
/* Returns the block to the free lists, merging with free neighbours. */
void alloc_free(alloc_t *a, alloc_block_t *b);

uint64_t alloc_block_offset(const alloc_t *a, const alloc_block_t *b);
/* The rounded size actually reserved (>= the size asked for). */
uint64_t alloc_block_size(const alloc_t *a, const alloc_block_t *b);

void alloc_get_stats(const alloc_t *a, alloc_stats_t *out);

/* Walks every structure and checks the invariants (blocks tile the range
 * in address order, no two free neighbours, free lists and bitmaps agree,
 * counters add up).  O(blocks); for tests and the fuzzer.  Returns 0 or
 * -EFAULT, logging the first inconsistency found. */
int alloc_check(const alloc_t *a);

#endif
