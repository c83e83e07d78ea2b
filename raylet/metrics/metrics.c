#include "raylet/metrics/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/rpc.h"
#include "proto/ray_proto.h"

#define METRICS_HEALTH_ATTEMPTS 30
#define METRICS_HEALTH_PERIOD_MS 1000
#define METRICS_HEALTH_TIMEOUT_MS 1000

#define METRICS_HEALTH_METHOD "/ray.rpc.ReporterService/HealthCheck"
#define METRICS_EXPORT_METHOD "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"

/* Both replies are read for their status only: an empty message type
 * parses them (fields it does not know are skipped). */
#define METRICS_ANY_REPLY (&ray__rpc__notify_gcsrestart_reply__descriptor)

typedef struct metrics_hist {
    const char *name, *description;
    const double *bounds;
    size_t nbounds;
    uint64_t counts[16];
    uint64_t count;
    double sum;
} metrics_hist_t;

/* Milliseconds, from well under one to the seconds a stalled loop or an
 * infeasible-then-feasible lease can take. */
static const double metrics_ms_bounds[] = {0.1, 0.5, 1, 5, 10, 50, 100, 500, 1000, 5000, 10000};
#define METRICS_MS_NBOUNDS (sizeof metrics_ms_bounds / sizeof metrics_ms_bounds[0])

struct metrics {
    metrics_options_t o;
    char *node_address, *session_name, *version;
    metrics_collect_cb collect;
    void *ctx;
    rpc_channel_t *channel;
    uint64_t timer;
    bool in_flight; /* a health check or an export: one at a time */
    bool connected, stopped;
    int health_attempts;
    uint64_t start_ns;
    metrics_hist_t hist[METRICS_NHIST];
    struct {
        uint64_t turns; /* since the last export */
        double busy_ms, max_ms;
    } loop_turns;
    uint64_t failures; /* failed exports, for logging one in 30 */
};

static uint64_t metrics_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void metrics_on_timer(loop_t *loop, uint64_t id, void *data);

static void metrics_arm(metrics_t *m, uint64_t delay_ms)
{
    if (!m->stopped)
        m->timer = loop_add_timer(m->o.loop, delay_ms, metrics_on_timer, m);
}

static void metrics_on_health(void *ctx, const rpc_status_t *st, ProtobufCMessage *reply)
{
    metrics_t *m = ctx;
    (void)reply;
    m->in_flight = false;
    if (st->code == GRPC_STATUS_OK) {
        m->connected = true;
        log_info("metrics agent ready; exporting every %llu ms", (unsigned long long)m->o.interval_ms);
        metrics_arm(m, 0); /* the first export at once, as stock */
        return;
    }
    if (++m->health_attempts >= METRICS_HEALTH_ATTEMPTS) {
        log_warn("the metrics agent did not answer %d health checks (%s); metrics will not be exported",
                 m->health_attempts, st->message);
        return;
    }
    metrics_arm(m, METRICS_HEALTH_PERIOD_MS);
}

static void metrics_on_exported(void *ctx, const rpc_status_t *st, ProtobufCMessage *reply)
{
    metrics_t *m = ctx;
    (void)reply;
    m->in_flight = false;
    /* Failures are logged once in a while: an agent restarting is not news. */
    if (st->code != GRPC_STATUS_OK && m->failures++ % 30 == 0)
        log_warn("exporting metrics failed: %s", st->message);
    metrics_arm(m, m->o.interval_ms);
}

static void metrics_export(metrics_t *m)
{
    const otlp_label_t global[] = {
        {"Component", "raylet"},
        {"NodeAddress", m->node_address},
        {"SessionName", m->session_name},
        {"Version", m->version},
        {"WorkerId", ""},
    };
    otlp_export_t e;
    otlp_begin(&e, global, sizeof global / sizeof global[0], m->start_ns, metrics_wall_ns());
    if (m->collect)
        m->collect(m->ctx, &e);
    /* Histograms carry what happened since the last export (DELTA), and
     * only when something did. */
    for (int i = 0; i < METRICS_NHIST; i++) {
        metrics_hist_t *h = &m->hist[i];
        if (h->count == 0)
            continue;
        otlp_histogram(&e, h->name, h->description, NULL, 0, h->bounds, h->nbounds, h->counts, h->count, h->sum);
        memset(h->counts, 0, sizeof h->counts);
        h->count = 0;
        h->sum = 0;
    }
    if (m->loop_turns.turns) {
        otlp_counter(&e, "craylet_loop_iterations", "Wake-ups of craylet's event loop.", NULL, 0,
                     (double)m->loop_turns.turns);
        otlp_counter(&e, "craylet_loop_busy_ms",
                     "Time craylet's event loop spent on events (not waiting), in milliseconds.", NULL, 0,
                     m->loop_turns.busy_ms);
        otlp_gauge(&e, "craylet_loop_iteration_max_ms",
                   "The longest event-loop wake-up since the previous export, in milliseconds.", NULL, 0,
                   m->loop_turns.max_ms);
        memset(&m->loop_turns, 0, sizeof m->loop_turns);
    }
    size_t len;
    const uint8_t *bytes = otlp_finish(&e, &len);
    if (rpc_unary_bytes(m->channel, METRICS_EXPORT_METHOD, bytes, len, METRICS_ANY_REPLY, m->o.interval_ms / 2,
                        metrics_on_exported, m) == 0)
        m->in_flight = true;
    else
        metrics_arm(m, m->o.interval_ms);
    otlp_free(&e);
}

static void metrics_on_timer(loop_t *loop, uint64_t id, void *data)
{
    metrics_t *m = data;
    (void)loop;
    (void)id;
    m->timer = 0;
    if (m->in_flight || m->stopped)
        return;
    if (m->connected) {
        metrics_export(m);
        return;
    }
    if (rpc_unary_bytes(m->channel, METRICS_HEALTH_METHOD, (const uint8_t *)"", 0, METRICS_ANY_REPLY,
                        METRICS_HEALTH_TIMEOUT_MS, metrics_on_health, m) == 0)
        m->in_flight = true;
    else
        metrics_arm(m, METRICS_HEALTH_PERIOD_MS);
}

metrics_t *metrics_create(const metrics_options_t *opts, metrics_collect_cb collect, void *ctx)
{
    metrics_t *m = xcalloc(1, sizeof *m);
    m->o = *opts;
    if (m->o.interval_ms < 1000)
        m->o.interval_ms = 1000;
    m->node_address = xstrdup(opts->node_address ? opts->node_address : "");
    m->session_name = xstrdup(opts->session_name ? opts->session_name : "");
    m->version = xstrdup(opts->version ? opts->version : "");
    m->collect = collect;
    m->ctx = ctx;
    m->start_ns = metrics_wall_ns();
    m->hist[METRICS_LEASE_LATENCY_MS] = (metrics_hist_t){
        .name = "craylet_lease_latency_ms",
        .description = "Time from a worker lease request reaching craylet to its answer (granted, spilled back "
                       "or refused), in milliseconds.",
        .bounds = metrics_ms_bounds,
        .nbounds = METRICS_MS_NBOUNDS};
    return m;
}

void metrics_start(metrics_t *m, int agent_port)
{
    if (!m || m->stopped || m->channel || agent_port <= 0 || agent_port > 65535)
        return;
    char target[32];
    snprintf(target, sizeof target, "127.0.0.1:%d", agent_port);
    m->channel = rpc_channel_create(m->o.bridge, target);
    if (!m->channel)
        return;
    metrics_arm(m, 0);
}

void metrics_loop_turn(metrics_t *m, double ms)
{
    if (!m)
        return;
    m->loop_turns.turns++;
    m->loop_turns.busy_ms += ms;
    if (ms > m->loop_turns.max_ms)
        m->loop_turns.max_ms = ms;
}

void metrics_observe(metrics_t *m, metrics_hist_id_t id, double value)
{
    if (!m || id >= METRICS_NHIST)
        return;
    metrics_hist_t *h = &m->hist[id];
    size_t i = 0;
    while (i < h->nbounds && value > h->bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += value;
}

void metrics_stop(metrics_t *m)
{
    if (!m || m->stopped)
        return;
    m->stopped = true;
    if (m->timer)
        loop_cancel_timer(m->o.loop, m->timer);
    m->timer = 0;
    rpc_channel_destroy(m->channel); /* silences the call in flight */
    m->channel = NULL;
}

void metrics_destroy(metrics_t *m)
{
    if (!m)
        return;
    metrics_stop(m);
    free(m->node_address);
    free(m->session_name);
    free(m->version);
    free(m);
}
