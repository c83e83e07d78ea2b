#include "raylet/cluster/drain.h"

#include <stdio.h>

drain_verdict_t drain_request(drain_t *d, int reason, const char *message, int64_t deadline_ms, bool node_idle,
                              const char **why)
{
    *why = NULL;
    if (reason != DRAIN_REASON_IDLE_TERMINATION && reason != DRAIN_REASON_PREEMPTION) {
        /* The stock raylet aborts on these; refusing keeps the node. */
        *why = "drain reason must be IDLE_TERMINATION or PREEMPTION";
        return DRAIN_INVALID;
    }
    if (deadline_ms < 0) {
        *why = "draining deadline must be non-negative";
        return DRAIN_INVALID;
    }
    if (d->active)
        return DRAIN_ACCEPTED; /* the first request stands */
    if (reason == DRAIN_REASON_IDLE_TERMINATION && !node_idle) {
        *why = "The node to be idle terminated is no longer idle.";
        return DRAIN_REJECTED;
    }
    d->active = true;
    d->reason = reason;
    d->deadline_ms = deadline_ms;
    snprintf(d->message, sizeof d->message, "%s", message ? message : "");
    return DRAIN_ACCEPTED;
}

int drain_death_reason(const drain_t *d)
{
    return d->reason == DRAIN_REASON_IDLE_TERMINATION ? DRAIN_DEATH_IDLE : DRAIN_DEATH_PREEMPTED;
}

bool drain_preempted_by(const drain_t *d, int64_t now_ms)
{
    return d->active && d->reason == DRAIN_REASON_PREEMPTION && d->deadline_ms != 0 && d->deadline_ms < now_ms;
}
