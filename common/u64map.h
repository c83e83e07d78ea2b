/* A small open-addressing map from nonzero 64-bit keys to pointers.
 *
 * Used where the daemon keys records by something it chose itself: the
 * object store's per-client references (by object address) and fallback
 * segments (by segment id), the lease manager's worker -> lease index (by
 * the worker record's address).  Keys are never chosen by peers, so a
 * multiplicative hash is enough.  An empty map holds no memory.
 * Not thread-safe. */
#ifndef CRAYLET_COMMON_U64MAP_H
#define CRAYLET_COMMON_U64MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct u64map u64map_t;

/* Returns NULL only if the allocator does. */
u64map_t *u64map_create(void);
void u64map_destroy(u64map_t *m);

/* key must be nonzero.  Returns 1 if inserted, 0 if the key was present
 * (its value is replaced), -ENOMEM if the map could not grow (nothing
 * changed), -EINVAL for key 0. */
int u64map_put(u64map_t *m, uint64_t key, void *val);
/* Returns whether the key is present; *val (if val) gets its value. */
bool u64map_get(const u64map_t *m, uint64_t key, void **val);
/* Returns whether the key was present. */
bool u64map_del(u64map_t *m, uint64_t key);
size_t u64map_count(const u64map_t *m);

/* Iteration: start with *pos = 0; returns false at the end.  The map must
 * not change during an iteration. */
bool u64map_next(const u64map_t *m, size_t *pos, uint64_t *key, void **val);

#endif
