#include "object_store/idtab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define IDTAB_MIN_BUCKETS 64u

struct idtab {
    idtab_node_t **buckets;
    size_t mask; /* buckets - 1 */
    size_t count;
    uint64_t k0, k1;
};

static uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* Every byte counts: IDs of one task's puts differ only in the trailing
 * index, so hashing a prefix would put them all in one bucket. */
static uint64_t idhash(const idtab_t *t, const id_object_t *id)
{
    uint64_t h = t->k0;
    h = mix(h ^ load64(id->b));
    h = mix(h ^ load64(id->b + 8) ^ t->k1);
    h = mix(h ^ load64(id->b + 16));
    uint32_t tail;
    memcpy(&tail, id->b + 24, 4);
    return mix(h ^ tail ^ t->k1);
}

idtab_t *idtab_create(void)
{
    idtab_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->buckets = calloc(IDTAB_MIN_BUCKETS, sizeof *t->buckets);
    if (!t->buckets) {
        free(t);
        return NULL;
    }
    t->mask = IDTAB_MIN_BUCKETS - 1;
    uint64_t seed[2];
    if (id_random((uint8_t *)seed, sizeof seed) != 0) {
        /* Unseeded still works; it only loses collision resistance. */
        seed[0] = (uint64_t)(uintptr_t)t;
        seed[1] = 0x9e3779b97f4a7c15ULL;
    }
    t->k0 = seed[0];
    t->k1 = seed[1];
    return t;
}

idtab_t *idtab_xcreate(void)
{
    idtab_t *t = idtab_create();
    if (!t) {
        log_error("out of memory creating an id table; aborting");
        abort();
    }
    return t;
}

void idtab_destroy(idtab_t *t)
{
    if (!t)
        return;
    free(t->buckets);
    free(t);
}

idtab_node_t *idtab_find(const idtab_t *t, const id_object_t *id)
{
    uint64_t h = idhash(t, id);
    for (idtab_node_t *n = t->buckets[h & t->mask]; n; n = n->next)
        if (n->hash == h && !memcmp(n->id.b, id->b, sizeof id->b))
            return n;
    return NULL;
}

static void grow(idtab_t *t)
{
    size_t nb = (t->mask + 1) * 2;
    idtab_node_t **b = calloc(nb, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i <= t->mask; i++) {
        idtab_node_t *n = t->buckets[i];
        while (n) {
            idtab_node_t *next = n->next;
            n->next = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
            n = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->mask = nb - 1;
}

int idtab_insert(idtab_t *t, idtab_node_t *n)
{
    if (idtab_find(t, &n->id))
        return -EEXIST;
    if (t->count >= t->mask + 1)
        grow(t);
    n->hash = idhash(t, &n->id);
    idtab_node_t **b = &t->buckets[n->hash & t->mask];
    n->next = *b;
    *b = n;
    t->count++;
    return 0;
}

void idtab_remove(idtab_t *t, idtab_node_t *n)
{
    idtab_node_t **p = &t->buckets[n->hash & t->mask];
    while (*p && *p != n)
        p = &(*p)->next;
    if (!*p)
        return;
    *p = n->next;
    n->next = NULL;
    t->count--;
}

size_t idtab_count(const idtab_t *t) { return t->count; }

static idtab_node_t *scan_from(const idtab_t *t, size_t i)
{
    for (; i <= t->mask; i++)
        if (t->buckets[i])
            return t->buckets[i];
    return NULL;
}

idtab_node_t *idtab_first(const idtab_t *t) { return scan_from(t, 0); }

idtab_node_t *idtab_next(const idtab_t *t, const idtab_node_t *n)
{
    if (n->next)
        return n->next;
    return scan_from(t, (size_t)(n->hash & t->mask) + 1);
}
