/* The OTLP export craylet sends the dashboard agent (raylet/metrics/otlp.c
 * over common/pbwrite.c), read back field by field: the nesting, the
 * field numbers and wire types the agent's protobuf parser expects, the
 * global labels on every point, consecutive points of one name grouped
 * into one metric; and base64 as I/O workers read their config. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/pbwrite.h"
#include "raylet/metrics/otlp.h"

/* ---- a minimal reader for the checks ---- */

typedef struct {
    const uint8_t *p;
    size_t len;
} span_t;

static uint64_t rd_varint(const uint8_t **p, const uint8_t *end)
{
    uint64_t v = 0;
    for (int shift = 0; *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    cr_assert_fail("varint runs past the end");
    return 0;
}

/* The nth (0-based) occurrence of field `want` in `m`, with its wire type;
 * false when there is none. */
static bool field(span_t m, uint32_t want, int nth, int *wire, span_t *out)
{
    const uint8_t *p = m.p, *end = m.p + m.len;
    while (p < end) {
        uint64_t key = rd_varint(&p, end);
        uint32_t f = (uint32_t)(key >> 3);
        int w = (int)(key & 7);
        const uint8_t *v = p;
        size_t n;
        switch (w) {
        case 0:
            rd_varint(&p, end);
            n = (size_t)(p - v);
            break;
        case 1:
            n = 8;
            p += 8;
            break;
        case 2:
            n = (size_t)rd_varint(&p, end);
            v = p;
            p += n;
            break;
        case 5:
            n = 4;
            p += 4;
            break;
        default:
            cr_assert_fail("wire type %d", w);
            return false;
        }
        cr_assert(p <= end, "field %u runs past its message", f);
        if (f == want && nth-- == 0) {
            *wire = w;
            *out = (span_t){v, n};
            return true;
        }
    }
    return false;
}

static span_t sub(span_t m, uint32_t f, int nth)
{
    int wire;
    span_t out;
    cr_assert(field(m, f, nth, &wire, &out), "no field %u #%d", f, nth);
    cr_assert_eq(wire, 2, "field %u is not length-delimited", f);
    return out;
}

static bool has(span_t m, uint32_t f, int nth)
{
    int wire;
    span_t out;
    return field(m, f, nth, &wire, &out);
}

static bool str_is(span_t s, const char *want) { return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0; }

static double as_double(span_t m, uint32_t f)
{
    int wire;
    span_t out;
    cr_assert(field(m, f, 0, &wire, &out));
    cr_assert_eq(wire, 1);
    double d;
    memcpy(&d, out.p, 8);
    return d;
}

static uint64_t as_varint(span_t m, uint32_t f)
{
    int wire;
    span_t out;
    cr_assert(field(m, f, 0, &wire, &out));
    cr_assert_eq(wire, 0);
    const uint8_t *p = out.p;
    return rd_varint(&p, out.p + out.len);
}

/* The value of label `key` among a point's attributes (field `af`). */
static bool label(span_t point, uint32_t af, const char *key, const char *value)
{
    for (int i = 0; has(point, af, i); i++) {
        span_t kv = sub(point, af, i);
        if (str_is(sub(kv, 1, 0), key))
            return str_is(sub(sub(kv, 2, 0), 1, 0), value);
    }
    return false;
}

static const otlp_label_t global[] = {{"Component", "raylet"}, {"NodeAddress", "10.1.2.3"}};

static span_t metrics_of(const uint8_t *buf, size_t len)
{
    span_t req = {buf, len};
    span_t rm = sub(req, 1, 0);
    cr_assert(!has(req, 1, 1), "one ResourceMetrics");
    span_t sm = sub(rm, 2, 0);
    cr_assert(str_is(sub(sub(sm, 1, 0), 1, 0), "ray"), "the scope is named ray");
    return sm;
}

Test(otlp, gauges_of_one_name_are_one_metric_with_every_label)
{
    otlp_export_t e;
    otlp_begin(&e, global, 2, 100, 200);
    otlp_label_t l[2] = {{"Name", "CPU"}, {"State", "AVAILABLE"}};
    otlp_gauge(&e, "resources", "Logical resources", l, 2, 3.0);
    l[1].value = "USED";
    otlp_gauge(&e, "resources", "Logical resources", l, 2, 1.0);
    otlp_gauge(&e, "object_store_used_memory", "used", NULL, 0, 4096);
    size_t len;
    const uint8_t *buf = otlp_finish(&e, &len);
    span_t sm = metrics_of(buf, len);

    span_t m0 = sub(sm, 2, 0), m1 = sub(sm, 2, 1);
    cr_assert(!has(sm, 2, 2), "two metrics");
    cr_assert(str_is(sub(m0, 1, 0), "resources"));
    cr_assert(str_is(sub(m0, 2, 0), "Logical resources"));
    span_t gauge = sub(m0, 5, 0);
    span_t p0 = sub(gauge, 1, 0), p1 = sub(gauge, 1, 1);
    cr_assert(!has(gauge, 1, 2));
    cr_assert_eq(as_double(p0, 4), 3.0);
    cr_assert_eq(as_double(p1, 4), 1.0);
    cr_assert(label(p0, 7, "State", "AVAILABLE") && label(p1, 7, "State", "USED"));
    cr_assert(label(p0, 7, "Name", "CPU") && label(p0, 7, "Component", "raylet") &&
              label(p0, 7, "NodeAddress", "10.1.2.3"));
    cr_assert(str_is(sub(m1, 1, 0), "object_store_used_memory"));
    span_t q = sub(sub(m1, 5, 0), 1, 0);
    cr_assert_eq(as_double(q, 4), 4096.0);
    cr_assert(label(q, 7, "Component", "raylet"), "global labels on unlabelled points too");
    otlp_free(&e);
}

Test(otlp, counters_are_monotonic_delta_sums)
{
    otlp_export_t e;
    otlp_begin(&e, global, 2, 1, 2);
    otlp_counter(&e, "operation_count", "ops", NULL, 0, 5);
    size_t len;
    const uint8_t *buf = otlp_finish(&e, &len);
    span_t sum = sub(sub(metrics_of(buf, len), 2, 0), 7, 0);
    cr_assert_eq(as_varint(sum, 2), 1, "DELTA");
    cr_assert_eq(as_varint(sum, 3), 1, "monotonic");
    cr_assert_eq(as_double(sub(sum, 1, 0), 4), 5.0);
    otlp_free(&e);
}

Test(otlp, histograms_carry_packed_buckets_and_bounds)
{
    static const double bounds[] = {1, 10, 100};
    static const uint64_t counts[] = {2, 0, 1, 4};
    otlp_export_t e;
    otlp_begin(&e, global, 2, 1, 2);
    otlp_histogram(&e, "craylet_lease_latency_ms", "lease latency", NULL, 0, bounds, 3, counts, 7, 1234.5);
    size_t len;
    const uint8_t *buf = otlp_finish(&e, &len);
    span_t h = sub(sub(metrics_of(buf, len), 2, 0), 9, 0);
    cr_assert_eq(as_varint(h, 2), 1, "DELTA");
    span_t dp = sub(h, 1, 0);
    int wire;
    span_t count;
    cr_assert(field(dp, 4, 0, &wire, &count) && wire == 1);
    uint64_t c;
    memcpy(&c, count.p, 8);
    cr_assert_eq(c, 7);
    cr_assert_eq(as_double(dp, 5), 1234.5);
    span_t b = sub(dp, 6, 0), x = sub(dp, 7, 0);
    cr_assert_eq(b.len, 4 * 8, "len(bounds) + 1 buckets");
    cr_assert_eq(x.len, 3 * 8);
    uint64_t last;
    memcpy(&last, b.p + 24, 8);
    cr_assert_eq(last, 4);
    double mid;
    memcpy(&mid, x.p + 8, 8);
    cr_assert_eq(mid, 10.0);
    cr_assert(label(dp, 9, "Component", "raylet"));
    otlp_free(&e);
}

Test(pbwrite, long_nested_bodies_get_multibyte_lengths)
{
    pbwr_t w;
    pbwr_init(&w);
    pbwr_begin(&w, 3);
    pbwr_begin(&w, 4);
    char big[300];
    memset(big, 'x', sizeof big);
    pbwr_bytes(&w, 1, big, sizeof big);
    pbwr_end(&w);
    pbwr_varint(&w, 2, 150);
    pbwr_end(&w);
    span_t outer = sub((span_t){w.buf, w.len}, 3, 0);
    cr_assert_eq((size_t)(outer.p + outer.len - w.buf), w.len, "nothing after the outer message");
    span_t inner = sub(outer, 4, 0);
    span_t bytes = sub(inner, 1, 0);
    cr_assert_eq(bytes.len, 300);
    cr_assert_eq(bytes.p[0], 'x');
    cr_assert_eq(bytes.p[299], 'x');
    cr_assert_eq(as_varint(outer, 2), 150);
    pbwr_free(&w);
}

Test(base64, rfc4648_vectors)
{
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        char *s = base64_encode(in[i], strlen(in[i]));
        cr_assert_str_eq(s, out[i]);
        free(s);
    }
    uint8_t bin[] = {0xff, 0xfe, 0x00};
    char *s = base64_encode(bin, 3);
    cr_assert_str_eq(s, "//4A");
    free(s);
}
