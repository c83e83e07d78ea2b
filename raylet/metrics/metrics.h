/* The node's metrics, exported as the stock raylet does: OTLP
 * MetricsService/Export calls to the dashboard agent on 127.0.0.1:
 * <metrics_agent_port>, which serves them on the node's Prometheus port
 * (metrics_export_port) for Ray's Grafana dashboards.
 *
 * The agent is first asked ReporterService/HealthCheck, once a second, up
 * to 30 times (as the stock raylet; without an answer nothing is
 * exported).  Then every metrics_report_interval_ms (at least 1 s) the
 * node's gauges are collected (the collect callback writes them into the
 * request) together with this module's histograms of craylet's own
 * measurements (observations since the last export), and sent.  With
 * token authentication the calls carry the token, as every channel on the
 * bridge does.  Loop thread only. */
#ifndef CRAYLET_RAYLET_METRICS_METRICS_H
#define CRAYLET_RAYLET_METRICS_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/cq_bridge.h"
#include "common/loop.h"
#include "raylet/metrics/otlp.h"

typedef struct metrics metrics_t;

/* craylet's own distributions (Prometheus ray_craylet_*). */
typedef enum {
    METRICS_LEASE_LATENCY_MS, /* RequestWorkerLease received -> answered */
    METRICS_NHIST,
} metrics_hist_id_t;

typedef struct metrics_options {
    loop_t *loop;
    cq_bridge_t *bridge;
    uint64_t interval_ms;      /* metrics_report_interval_ms */
    /* The global labels of every point; copied. */
    const char *node_address, *session_name, *version;
} metrics_options_t;

/* Write the node's gauges (otlp_gauge/otlp_counter) for one export. */
typedef void (*metrics_collect_cb)(void *ctx, otlp_export_t *e);

metrics_t *metrics_create(const metrics_options_t *opts, metrics_collect_cb collect, void *ctx);
/* The agent listens on `port` (from the flag or its port file): start.
 * <= 0: there is no agent; nothing is ever exported. */
void metrics_start(metrics_t *m, int agent_port);
/* Record one observation. */
void metrics_observe(metrics_t *m, metrics_hist_id_t id, double value);
/* One event-loop wake-up took `ms` of work.  Exported as two counters
 * (craylet_loop_iterations, craylet_loop_busy_ms) and the longest wake-up
 * since the last export (craylet_loop_iteration_max_ms), not as a
 * histogram: Ray's agent replays every histogram observation one by one,
 * and a busy loop wakes tens of thousands of times between exports. */
void metrics_loop_turn(metrics_t *m, double ms);
/* Cancels timers and calls; nothing runs after.  Idempotent. */
void metrics_stop(metrics_t *m);
void metrics_destroy(metrics_t *m);

#endif
