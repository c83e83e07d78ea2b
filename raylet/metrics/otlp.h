/* OpenTelemetry's OTLP metrics export (ExportMetricsServiceRequest), built
 * by hand over common/pbwrite.h: the shape Ray's dashboard agent ingests
 * and turns into its Prometheus endpoint.
 *
 * One request holds one ResourceMetrics with one ScopeMetrics ("ray").
 * Metric names carry no "ray_" prefix (the agent adds it); values are
 * doubles; every label is a string, and the request's global labels are
 * added to every point (Component, NodeAddress, SessionName, Version,
 * WorkerId, as the stock raylet sends them).  Consecutive points with the
 * same name and kind form one metric: callers group them. */
#ifndef CRAYLET_RAYLET_METRICS_OTLP_H
#define CRAYLET_RAYLET_METRICS_OTLP_H

#include <stddef.h>
#include <stdint.h>

#include "common/pbwrite.h"

typedef struct otlp_label {
    const char *key, *value;
} otlp_label_t;

typedef enum { OTLP_NONE, OTLP_GAUGE, OTLP_COUNTER, OTLP_HISTOGRAM } otlp_kind_t;

typedef struct otlp_export {
    pbwr_t w;
    const otlp_label_t *global; /* borrowed until otlp_finish */
    size_t nglobal;
    uint64_t start_ns, now_ns;
    otlp_kind_t open_kind;      /* the metric being filled */
    char open_name[128];
} otlp_export_t;

/* Start a request; `global` labels go on every point. */
void otlp_begin(otlp_export_t *e, const otlp_label_t *global, size_t nglobal, uint64_t start_ns, uint64_t now_ns);
/* A gauge's value for one label set. */
void otlp_gauge(otlp_export_t *e, const char *name, const char *description, const otlp_label_t *labels,
                size_t nlabels, double value);
/* A counter's increase since the last export (monotonic, DELTA: the agent
 * adds it to its total). */
void otlp_counter(otlp_export_t *e, const char *name, const char *description, const otlp_label_t *labels,
                  size_t nlabels, double delta);
/* A histogram's observations since the last export: counts[nbounds + 1],
 * bucket i holding values <= bounds[i] (the last: the rest). */
void otlp_histogram(otlp_export_t *e, const char *name, const char *description, const otlp_label_t *labels,
                    size_t nlabels, const double *bounds, size_t nbounds, const uint64_t *counts, uint64_t count,
                    double sum);
/* The encoded request, valid until otlp_free. */
const uint8_t *otlp_finish(otlp_export_t *e, size_t *len);
void otlp_free(otlp_export_t *e);

#endif
