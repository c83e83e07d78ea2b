#include "raylet/sched/oom_policy.h"

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/id.h"

typedef struct oom_group {
    size_t first; /* a member: its key */
    size_t size;
    uint64_t earliest_ms;
    size_t newest; /* the member granted last */
} oom_group_t;

static bool same_group(const oom_candidate_t *a, const oom_candidate_t *b)
{
    if (a->retriable != b->retriable)
        return false;
    return !a->retriable || memcmp(a->owner, b->owner, ID_TASK_SIZE) == 0;
}

/* Does group a go before group b? */
static bool group_first(const oom_candidate_t *c, const oom_group_t *a, const oom_group_t *b)
{
    bool ra = c[a->first].retriable, rb = c[b->first].retriable;
    if (ra != rb)
        return ra;
    if (a->size != b->size)
        return a->size > b->size;
    return a->earliest_ms > b->earliest_ms;
}

long oom_pick(const oom_candidate_t *c, size_t n, bool *should_retry)
{
    *should_retry = false;
    if (n == 0)
        return -1;
    oom_group_t *groups = xcalloc(n, sizeof *groups);
    size_t ngroups = 0;
    for (size_t i = 0; i < n; i++) {
        size_t g = 0;
        while (g < ngroups && !same_group(&c[groups[g].first], &c[i]))
            g++;
        if (g == ngroups)
            groups[ngroups++] = (oom_group_t){.first = i, .earliest_ms = c[i].granted_at_ms, .newest = i};
        oom_group_t *gr = &groups[g];
        gr->size++;
        if (c[i].granted_at_ms < gr->earliest_ms)
            gr->earliest_ms = c[i].granted_at_ms;
        /* Ties go to the later entry: leases are listed oldest first. */
        if (c[i].granted_at_ms >= c[gr->newest].granted_at_ms)
            gr->newest = i;
    }
    size_t best = 0;
    for (size_t g = 1; g < ngroups; g++)
        if (group_first(c, &groups[g], &groups[best]))
            best = g;
    *should_retry = groups[best].size > 1 && c[groups[best].first].retriable;
    long pick = (long)groups[best].newest;
    free(groups);
    return pick;
}

/* Does candidate i die before j?  Retriable first, then the newest; of
 * leases granted in the same millisecond, the later listed (granted). */
static bool time_first(const oom_candidate_t *c, size_t i, size_t j)
{
    if (c[i].retriable != c[j].retriable)
        return c[i].retriable;
    if (c[i].granted_at_ms != c[j].granted_at_ms)
        return c[i].granted_at_ms > c[j].granted_at_ms;
    return i > j;
}

size_t oom_pick_by_time(const oom_candidate_t *c, size_t n, int64_t to_free, size_t *out)
{
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        for (; j > 0 && time_first(c, i, out[j - 1]); j--)
            out[j] = out[j - 1];
        out[j] = i;
    }
    size_t count = 0;
    int64_t left = to_free;
    while (count < n && (count == 0 || left > 0)) {
        if (c[out[count]].uss > 0)
            left -= c[out[count]].uss;
        count++;
    }
    return count;
}
