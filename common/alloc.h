/* The daemon's one out-of-memory policy for its own small allocations.
 *
 * Bookkeeping (records, queues, strings, decoded messages) cannot be
 * degraded gracefully: a raylet that silently drops a lease or a worker
 * record is worse than one that stops.  These wrappers log the size that
 * could not be had and abort, so callers never test for NULL.
 *
 * Object-store memory is different: it is large, bounded by a quota and
 * expected to run out; the store allocates it from its own arena and fails
 * softly (queue, evict, fall back to disk).  Never use these for it. */
#ifndef CRAYLET_COMMON_ALLOC_H
#define CRAYLET_COMMON_ALLOC_H

#include <stddef.h>

/* Zero-size requests return a unique, freeable pointer.  Never NULL. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* A copy of n bytes (n may be 0: returns a freeable 1-byte block). */
void *xmemdup(const void *p, size_t n);

#endif
