#include "common/pbwrite.h"

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"

/* A nested body's length goes in front of it once known: room for the
 * longest varint is kept, and the body moved back over what is unused. */
#define PBWR_LEN_ROOM 5

void pbwr_init(pbwr_t *w) { memset(w, 0, sizeof *w); }

void pbwr_free(pbwr_t *w)
{
    free(w->buf);
    memset(w, 0, sizeof *w);
}

static void pbwr_reserve(pbwr_t *w, size_t n)
{
    if (w->len + n <= w->cap)
        return;
    size_t cap = w->cap ? w->cap : 256;
    while (cap < w->len + n)
        cap *= 2;
    w->buf = xrealloc(w->buf, cap);
    w->cap = cap;
}

static size_t pbwr_put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static void pbwr_raw_varint(pbwr_t *w, uint64_t v)
{
    pbwr_reserve(w, 10);
    w->len += pbwr_put_varint(w->buf + w->len, v);
}

static void pbwr_key(pbwr_t *w, uint32_t field, int wire) { pbwr_raw_varint(w, (uint64_t)field << 3 | (uint64_t)wire); }

void pbwr_varint(pbwr_t *w, uint32_t field, uint64_t v)
{
    pbwr_key(w, field, 0);
    pbwr_raw_varint(w, v);
}

void pbwr_bytes(pbwr_t *w, uint32_t field, const void *data, size_t len)
{
    pbwr_key(w, field, 2);
    pbwr_raw_varint(w, len);
    pbwr_reserve(w, len);
    if (len)
        memcpy(w->buf + w->len, data, len);
    w->len += len;
}

void pbwr_string(pbwr_t *w, uint32_t field, const char *s) { pbwr_bytes(w, field, s ? s : "", s ? strlen(s) : 0); }

void pbwr_raw_fixed64(pbwr_t *w, uint64_t v)
{
    pbwr_reserve(w, 8);
    for (int i = 0; i < 8; i++)
        w->buf[w->len++] = (uint8_t)(v >> (8 * i));
}

void pbwr_raw_double(pbwr_t *w, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    pbwr_raw_fixed64(w, bits);
}

void pbwr_fixed64(pbwr_t *w, uint32_t field, uint64_t v)
{
    pbwr_key(w, field, 1);
    pbwr_raw_fixed64(w, v);
}

void pbwr_double(pbwr_t *w, uint32_t field, double v)
{
    pbwr_key(w, field, 1);
    pbwr_raw_double(w, v);
}

void pbwr_begin(pbwr_t *w, uint32_t field)
{
    if (w->depth == PBWR_MAX_DEPTH) {
        log_error("protobuf writer: messages nested deeper than %d", PBWR_MAX_DEPTH);
        abort();
    }
    pbwr_key(w, field, 2);
    pbwr_reserve(w, PBWR_LEN_ROOM);
    w->len += PBWR_LEN_ROOM;
    w->open[w->depth++] = w->len;
}

void pbwr_end(pbwr_t *w)
{
    if (w->depth == 0) {
        log_error("protobuf writer: pbwr_end without pbwr_begin");
        abort();
    }
    size_t body = w->open[--w->depth];
    size_t body_len = w->len - body;
    uint8_t len_bytes[10];
    size_t n = pbwr_put_varint(len_bytes, body_len);
    size_t at = body - PBWR_LEN_ROOM;
    memcpy(w->buf + at, len_bytes, n);
    memmove(w->buf + at + n, w->buf + body, body_len);
    w->len = at + n + body_len;
}
