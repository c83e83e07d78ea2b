#include "raylet/metrics/otlp.h"

#include <stdio.h>
#include <string.h>

/* Field numbers of opentelemetry/proto/{collector/metrics/v1,metrics/v1,
 * common/v1}. */
enum {
    REQ_RESOURCE_METRICS = 1,
    RM_RESOURCE = 1,
    RM_SCOPE_METRICS = 2,
    SM_SCOPE = 1,
    SM_METRICS = 2,
    SCOPE_NAME = 1,
    METRIC_NAME = 1,
    METRIC_DESCRIPTION = 2,
    METRIC_GAUGE = 5,
    METRIC_SUM = 7,
    METRIC_HISTOGRAM = 9,
    DATA_POINTS = 1,
    AGGREGATION_TEMPORALITY = 2,
    SUM_IS_MONOTONIC = 3,
    NDP_START = 2,
    NDP_TIME = 3,
    NDP_AS_DOUBLE = 4,
    NDP_ATTRIBUTES = 7,
    HDP_START = 2,
    HDP_TIME = 3,
    HDP_COUNT = 4,
    HDP_SUM = 5,
    HDP_BUCKET_COUNTS = 6,
    HDP_EXPLICIT_BOUNDS = 7,
    HDP_ATTRIBUTES = 9,
    KV_KEY = 1,
    KV_VALUE = 2,
    ANY_STRING = 1,
};

enum { TEMPORALITY_DELTA = 1 };

void otlp_begin(otlp_export_t *e, const otlp_label_t *global, size_t nglobal, uint64_t start_ns, uint64_t now_ns)
{
    memset(e, 0, sizeof *e);
    pbwr_init(&e->w);
    e->global = global;
    e->nglobal = nglobal;
    e->start_ns = start_ns;
    e->now_ns = now_ns;
    pbwr_begin(&e->w, REQ_RESOURCE_METRICS);
    pbwr_begin(&e->w, RM_RESOURCE);
    pbwr_end(&e->w);
    pbwr_begin(&e->w, RM_SCOPE_METRICS);
    pbwr_begin(&e->w, SM_SCOPE);
    pbwr_string(&e->w, SCOPE_NAME, "ray");
    pbwr_end(&e->w);
}

static void otlp_close_metric(otlp_export_t *e)
{
    switch (e->open_kind) {
    case OTLP_NONE:
        return;
    case OTLP_GAUGE:
        break;
    case OTLP_COUNTER:
        pbwr_varint(&e->w, AGGREGATION_TEMPORALITY, TEMPORALITY_DELTA);
        pbwr_varint(&e->w, SUM_IS_MONOTONIC, 1);
        break;
    case OTLP_HISTOGRAM:
        pbwr_varint(&e->w, AGGREGATION_TEMPORALITY, TEMPORALITY_DELTA);
        break;
    }
    pbwr_end(&e->w); /* the gauge, sum or histogram */
    pbwr_end(&e->w); /* the metric */
    e->open_kind = OTLP_NONE;
    e->open_name[0] = '\0';
}

static void otlp_open_metric(otlp_export_t *e, otlp_kind_t kind, const char *name, const char *description)
{
    if (e->open_kind == kind && strcmp(e->open_name, name) == 0)
        return;
    otlp_close_metric(e);
    pbwr_begin(&e->w, SM_METRICS);
    pbwr_string(&e->w, METRIC_NAME, name);
    pbwr_string(&e->w, METRIC_DESCRIPTION, description);
    pbwr_begin(&e->w, kind == OTLP_GAUGE ? METRIC_GAUGE : kind == OTLP_COUNTER ? METRIC_SUM : METRIC_HISTOGRAM);
    e->open_kind = kind;
    snprintf(e->open_name, sizeof e->open_name, "%s", name);
}

static void otlp_attributes(otlp_export_t *e, uint32_t field, const otlp_label_t *labels, size_t n)
{
    for (int pass = 0; pass < 2; pass++) {
        const otlp_label_t *set = pass ? labels : e->global;
        size_t count = pass ? n : e->nglobal;
        for (size_t i = 0; i < count; i++) {
            pbwr_begin(&e->w, field);
            pbwr_string(&e->w, KV_KEY, set[i].key);
            pbwr_begin(&e->w, KV_VALUE);
            pbwr_string(&e->w, ANY_STRING, set[i].value);
            pbwr_end(&e->w);
            pbwr_end(&e->w);
        }
    }
}

static void otlp_number_point(otlp_export_t *e, const otlp_label_t *labels, size_t n, double value)
{
    pbwr_begin(&e->w, DATA_POINTS);
    pbwr_fixed64(&e->w, NDP_START, e->start_ns);
    pbwr_fixed64(&e->w, NDP_TIME, e->now_ns);
    pbwr_double(&e->w, NDP_AS_DOUBLE, value);
    otlp_attributes(e, NDP_ATTRIBUTES, labels, n);
    pbwr_end(&e->w);
}

void otlp_gauge(otlp_export_t *e, const char *name, const char *description, const otlp_label_t *labels,
                size_t nlabels, double value)
{
    otlp_open_metric(e, OTLP_GAUGE, name, description);
    otlp_number_point(e, labels, nlabels, value);
}

void otlp_counter(otlp_export_t *e, const char *name, const char *description, const otlp_label_t *labels,
                  size_t nlabels, double delta)
{
    otlp_open_metric(e, OTLP_COUNTER, name, description);
    otlp_number_point(e, labels, nlabels, delta);
}

void otlp_histogram(otlp_export_t *e, const char *name, const char *description, const otlp_label_t *labels,
                    size_t nlabels, const double *bounds, size_t nbounds, const uint64_t *counts, uint64_t count,
                    double sum)
{
    otlp_open_metric(e, OTLP_HISTOGRAM, name, description);
    pbwr_begin(&e->w, DATA_POINTS);
    pbwr_fixed64(&e->w, HDP_START, e->start_ns);
    pbwr_fixed64(&e->w, HDP_TIME, e->now_ns);
    pbwr_fixed64(&e->w, HDP_COUNT, count);
    pbwr_double(&e->w, HDP_SUM, sum);
    pbwr_begin(&e->w, HDP_BUCKET_COUNTS);
    for (size_t i = 0; i <= nbounds; i++)
        pbwr_raw_fixed64(&e->w, counts[i]);
    pbwr_end(&e->w);
    pbwr_begin(&e->w, HDP_EXPLICIT_BOUNDS);
    for (size_t i = 0; i < nbounds; i++)
        pbwr_raw_double(&e->w, bounds[i]);
    pbwr_end(&e->w);
    otlp_attributes(e, HDP_ATTRIBUTES, labels, nlabels);
    pbwr_end(&e->w);
}

const uint8_t *otlp_finish(otlp_export_t *e, size_t *len)
{
    otlp_close_metric(e);
    pbwr_end(&e->w); /* scope metrics */
    pbwr_end(&e->w); /* resource metrics */
    *len = e->w.len;
    return e->w.buf;
}

void otlp_free(otlp_export_t *e) { pbwr_free(&e->w); }
