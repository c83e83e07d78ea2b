/* FNV-1a, 64 bit: small, stable across runs and builds, good enough for
 * keys the daemon derives itself (scheduling classes, runtime-env hashes).
 * Not for tables keyed by peer-chosen bytes. */
#ifndef CRAYLET_COMMON_HASH_H
#define CRAYLET_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV64_INIT 14695981039346656037ull

static inline uint64_t hash_fnv64(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

#endif
