/* Draining: the node asked to leave the cluster (DrainRaylet, sent by GCS
 * for `ray drain-node` and the autoscaler), as the stock raylet decides it.
 *
 *   idle termination  accepted only while the node is idle (else refused:
 *                     the autoscaler saw a stale idle state);
 *   preemption        always accepted, busy or not; the deadline is the
 *                     time the node will be taken away, reported, never
 *                     acted on here.
 * Once accepted the node stays draining (a later request is accepted and
 * changes nothing): no new leases or bundles run here, and the node exits
 * the moment it is idle, telling GCS why (AUTOSCALER_DRAIN_IDLE or
 * AUTOSCALER_DRAIN_PREEMPTED, with the request's message).
 *
 * Plain data and pure functions: the node owns a drain_t and applies what
 * these decide. */
#ifndef CRAYLET_RAYLET_CLUSTER_DRAIN_H
#define CRAYLET_RAYLET_CLUSTER_DRAIN_H

#include <stdbool.h>
#include <stdint.h>

/* autoscaler.proto DrainNodeReason */
enum {
    DRAIN_REASON_UNSPECIFIED = 0,
    DRAIN_REASON_IDLE_TERMINATION = 1,
    DRAIN_REASON_PREEMPTION = 2,
};

/* common.proto NodeDeathInfo.Reason values a drained node reports. */
enum {
    DRAIN_DEATH_PREEMPTED = 3, /* AUTOSCALER_DRAIN_PREEMPTED */
    DRAIN_DEATH_IDLE = 4,      /* AUTOSCALER_DRAIN_IDLE */
};

#define DRAIN_MESSAGE_MAX 512

typedef struct drain {
    bool active;
    int reason;
    int64_t deadline_ms; /* ms since the epoch; 0: none */
    char message[DRAIN_MESSAGE_MAX];
} drain_t;

typedef enum drain_verdict {
    DRAIN_ACCEPTED,      /* the node drains now (or already did) */
    DRAIN_REJECTED,      /* *why says why, for the reply */
    DRAIN_INVALID,       /* a reason the stock raylet cannot take: *why */
} drain_verdict_t;

/* Decide a request and, if accepted for the first time, record it in `d`.
 * `message` may be NULL; it is cut to DRAIN_MESSAGE_MAX - 1 bytes. */
drain_verdict_t drain_request(drain_t *d, int reason, const char *message, int64_t deadline_ms, bool node_idle,
                              const char **why);

/* The NodeDeathInfo reason for a node that drained (`d->active`). */
int drain_death_reason(const drain_t *d);

/* On SIGTERM: was the node preempted, its deadline passed?  Then it dies
 * AUTOSCALER_DRAIN_PREEMPTED rather than EXPECTED_TERMINATION. */
bool drain_preempted_by(const drain_t *d, int64_t now_ms);

#endif
