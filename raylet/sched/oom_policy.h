/* Which workers to kill when the node runs out of memory: the stock
 * raylet's two policies, as pure functions.
 *
 * By group (Ray before 2.56, and later ones with
 * RAY_worker_killing_policy_by_group): one worker at a time.  Leases are
 * grouped by the task that submitted them (retriable ones; all
 * non-retriable leases form one group of their own).  Retriable groups go
 * first, then larger groups, then the group whose first lease was granted
 * last; within the chosen group the newest lease dies.  Its work is worth
 * retrying only when its group keeps other members running (the owner
 * makes progress) and it is retriable: otherwise the owner fails it at
 * once rather than loop on kills. */
#ifndef CRAYLET_RAYLET_SCHED_OOM_POLICY_H
#define CRAYLET_RAYLET_SCHED_OOM_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct oom_candidate {
    bool retriable;
    const uint8_t *owner; /* ID_TASK_SIZE bytes: the submitting task */
    uint64_t granted_at_ms;
    int64_t uss;          /* its unique memory in bytes; -1 unknown */
} oom_candidate_t;

/* By group: the index in c[0..n) to kill, or -1 when n == 0;
 * *should_retry as above. */
long oom_pick(const oom_candidate_t *c, size_t n, bool *should_retry);

/* By time (Ray 2.56 on): retriable leases first, the newest first, as many
 * as it takes for their memory to cover `to_free` bytes (at least one
 * when n > 0).  Writes their indices, in kill order, to out[] (room for
 * n); each is worth retrying exactly when it is retriable.  Returns the
 * count. */
size_t oom_pick_by_time(const oom_candidate_t *c, size_t n, int64_t to_free, size_t *out);

#endif
