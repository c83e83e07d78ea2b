#include "common/u64map.h"

#include <errno.h>
#include <stdlib.h>

typedef struct {
    uint64_t key; /* 0: empty */
    void *val;
} slot_t;

struct u64map {
    slot_t *slots;
    size_t cap; /* 0 or a power of two */
    size_t count;
};

static size_t slot_of(uint64_t key, size_t cap)
{
    return (size_t)((key * 0x9e3779b97f4a7c15ULL) >> 32) & (cap - 1);
}

u64map_t *u64map_create(void) { return calloc(1, sizeof(u64map_t)); }

void u64map_destroy(u64map_t *m)
{
    if (!m)
        return;
    free(m->slots);
    free(m);
}

static void place(slot_t *slots, size_t cap, uint64_t key, void *val)
{
    size_t i = slot_of(key, cap);
    while (slots[i].key)
        i = (i + 1) & (cap - 1);
    slots[i].key = key;
    slots[i].val = val;
}

static int resize(u64map_t *m, size_t cap)
{
    slot_t *s = calloc(cap, sizeof *s);
    if (!s)
        return -ENOMEM;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key)
            place(s, cap, m->slots[i].key, m->slots[i].val);
    free(m->slots);
    m->slots = s;
    m->cap = cap;
    return 0;
}

static slot_t *find(const u64map_t *m, uint64_t key)
{
    if (!m->cap)
        return NULL;
    size_t i = slot_of(key, m->cap);
    while (m->slots[i].key) {
        if (m->slots[i].key == key)
            return &m->slots[i];
        i = (i + 1) & (m->cap - 1);
    }
    return NULL;
}

int u64map_put(u64map_t *m, uint64_t key, void *val)
{
    if (!key)
        return -EINVAL;
    slot_t *s = find(m, key);
    if (s) {
        s->val = val;
        return 0;
    }
    /* Keep the load at or below 1/2 so probe runs stay short. */
    if ((m->count + 1) * 2 > m->cap) {
        int r = resize(m, m->cap ? m->cap * 2 : 8);
        if (r)
            return r;
    }
    place(m->slots, m->cap, key, val);
    m->count++;
    return 1;
}

bool u64map_get(const u64map_t *m, uint64_t key, void **val)
{
    slot_t *s = key ? find(m, key) : NULL;
    if (s && val)
        *val = s->val;
    return s != NULL;
}

bool u64map_del(u64map_t *m, uint64_t key)
{
    slot_t *s = key ? find(m, key) : NULL;
    if (!s)
        return false;
    /* Backward-shift deletion: move later members of the probe run into
     * the hole so lookups never need tombstones. */
    size_t cap = m->cap, i = (size_t)(s - m->slots), j = i;
    for (;;) {
        j = (j + 1) & (cap - 1);
        if (!m->slots[j].key)
            break;
        size_t home = slot_of(m->slots[j].key, cap);
        /* Can the entry at j live at i?  Only if its home is not in (i, j]. */
        bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].key = 0;
    m->slots[i].val = NULL;
    m->count--;
    if (m->count == 0) {
        free(m->slots);
        m->slots = NULL;
        m->cap = 0;
    }
    return true;
}

size_t u64map_count(const u64map_t *m) { return m->count; }

bool u64map_next(const u64map_t *m, size_t *pos, uint64_t *key, void **val)
{
    for (size_t i = *pos; i < m->cap; i++) {
        if (m->slots[i].key) {
            *key = m->slots[i].key;
            if (val)
                *val = m->slots[i].val;
            *pos = i + 1;
            return true;
        }
    }
    *pos = m->cap;
    return false;
}
