#include "common/frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Buffers grown past this by one large frame are released once drained, so
 * a single big message does not pin memory for the connection's life. */
#define FRAME_KEEP_CAP ((size_t)256 << 10)
#define FRAME_MIN_CAP ((size_t)4096)

/* Explicit little-endian so the wire format does not depend on the host;
 * Ray writes host order, which is little-endian everywhere it runs. */
static void store64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t load64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

void frame_header_write(uint8_t out[FRAME_HEADER_SIZE], int64_t cookie, int64_t type, size_t len)
{
    store64(out, (uint64_t)cookie);
    store64(out + 8, (uint64_t)type);
    store64(out + 16, (uint64_t)len);
}

int frame_header_parse(const uint8_t in[FRAME_HEADER_SIZE], int64_t cookie, size_t max_payload,
                       int64_t *type, size_t *len)
{
    *type = 0;
    *len = 0;
    if ((int64_t)load64(in) != cookie)
        return CR_EBADMSG;
    int64_t n = (int64_t)load64(in + 16);
    if (n < 0)
        return CR_EBADMSG;
    if ((uint64_t)n > max_payload)
        return CR_ETOOBIG;
    *type = (int64_t)load64(in + 8);
    *len = (size_t)n;
    return 0;
}

/* ---- decoder ---- */

struct frame_decoder {
    int64_t cookie;
    size_t max_payload;
    uint8_t *buf;
    size_t cap;
    size_t rpos; /* first byte not yet handed out */
    size_t wpos; /* end of received bytes */
    int err;
};

frame_decoder_t *frame_decoder_create(int64_t cookie, size_t max_payload)
{
    frame_decoder_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->cookie = cookie;
    /* Keeps header + payload representable in size_t arithmetic below. */
    d->max_payload = max_payload > SIZE_MAX / 2 ? SIZE_MAX / 2 : max_payload;
    return d;
}

void frame_decoder_destroy(frame_decoder_t *d)
{
    if (!d)
        return;
    free(d->buf);
    free(d);
}

size_t frame_decoder_pending(const frame_decoder_t *d) { return d->wpos - d->rpos; }

int frame_decoder_error(const frame_decoder_t *d) { return d->err; }

/* Bytes still missing for the frame at rpos, as far as is known: the rest
 * of the header, or of header + payload once the header is in and valid. */
static size_t frame_missing(const frame_decoder_t *d)
{
    size_t have = d->wpos - d->rpos;
    if (have < FRAME_HEADER_SIZE)
        return FRAME_HEADER_SIZE - have;
    int64_t type;
    size_t len;
    if (frame_header_parse(d->buf + d->rpos, d->cookie, d->max_payload, &type, &len))
        return 0; /* next() reports it */
    size_t total = FRAME_HEADER_SIZE + len;
    return total > have ? total - have : 0;
}

/* Moves unread bytes to the front (or frees an oversized empty buffer) and
 * makes room for `want` more. */
static int make_room(frame_decoder_t *d, size_t want)
{
    size_t have = d->wpos - d->rpos;
    if (have == 0 && d->cap > FRAME_KEEP_CAP) {
        free(d->buf);
        d->buf = NULL;
        d->cap = 0;
    }
    if (d->rpos) {
        if (have)
            memmove(d->buf, d->buf + d->rpos, have);
        d->rpos = 0;
        d->wpos = have;
    }
    if (d->cap - d->wpos >= want)
        return 0;
    if (want > SIZE_MAX - have)
        return -ENOMEM;
    size_t need = have + want;
    size_t cap = d->cap ? d->cap : FRAME_MIN_CAP;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *nb = realloc(d->buf, cap);
    if (!nb)
        return -ENOMEM;
    d->buf = nb;
    d->cap = cap;
    return 0;
}

int frame_decoder_feed(frame_decoder_t *d, const void *data, size_t n)
{
    if (d->err)
        return d->err;
    if (!n)
        return 0;
    int rc = make_room(d, n);
    if (rc)
        return rc;
    memcpy(d->buf + d->wpos, data, n);
    d->wpos += n;
    return 0;
}

int frame_decoder_reserve(frame_decoder_t *d, size_t min, uint8_t **space, size_t *avail)
{
    *space = NULL;
    *avail = 0;
    if (d->err)
        return d->err;
    size_t want = frame_missing(d);
    if (want < min)
        want = min;
    if (want == 0)
        want = FRAME_MIN_CAP;
    int rc = make_room(d, want);
    if (rc)
        return rc;
    *space = d->buf + d->wpos;
    *avail = d->cap - d->wpos;
    return 0;
}

void frame_decoder_commit(frame_decoder_t *d, size_t n)
{
    /* A caller cannot commit more than it was given room for. */
    if (n > d->cap - d->wpos)
        n = d->cap - d->wpos;
    d->wpos += n;
}

int frame_decoder_next(frame_decoder_t *d, frame_t *out)
{
    out->type = 0;
    out->payload = NULL;
    out->len = 0;
    if (d->err)
        return d->err;
    size_t have = d->wpos - d->rpos;
    if (have < FRAME_HEADER_SIZE)
        return 0;
    int64_t type;
    size_t len;
    int rc = frame_header_parse(d->buf + d->rpos, d->cookie, d->max_payload, &type, &len);
    if (rc) {
        d->err = rc;
        return rc;
    }
    if (have - FRAME_HEADER_SIZE < len)
        return 0;
    out->type = type;
    out->payload = d->buf + d->rpos + FRAME_HEADER_SIZE;
    out->len = len;
    d->rpos += FRAME_HEADER_SIZE + len;
    return 1;
}

/* ---- encoder ---- */

void frame_wbuf_init(frame_wbuf_t *w) { memset(w, 0, sizeof *w); }

void frame_wbuf_free(frame_wbuf_t *w)
{
    free(w->data);
    memset(w, 0, sizeof *w);
}

int frame_encode(frame_wbuf_t *w, int64_t cookie, int64_t type, const void *payload, size_t len)
{
    if (len > (size_t)INT64_MAX || len > SIZE_MAX - FRAME_HEADER_SIZE)
        return -ENOMEM;
    size_t total = FRAME_HEADER_SIZE + len;
    if (w->cap - w->len < total && w->off) {
        size_t pending = w->len - w->off;
        memmove(w->data, w->data + w->off, pending);
        w->off = 0;
        w->len = pending;
    }
    if (w->cap - w->len < total) {
        if (total > SIZE_MAX - w->len)
            return -ENOMEM;
        size_t need = w->len + total;
        size_t cap = w->cap ? w->cap : FRAME_MIN_CAP;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        uint8_t *nb = realloc(w->data, cap);
        if (!nb)
            return -ENOMEM;
        w->data = nb;
        w->cap = cap;
    }
    frame_header_write(w->data + w->len, cookie, type, len);
    if (len)
        memcpy(w->data + w->len + FRAME_HEADER_SIZE, payload, len);
    w->len += total;
    return 0;
}

void frame_wbuf_consume(frame_wbuf_t *w, size_t n)
{
    size_t pending = w->len - w->off;
    if (n > pending)
        n = pending;
    w->off += n;
    if (w->off == w->len) {
        w->off = w->len = 0;
        if (w->cap > FRAME_KEEP_CAP) {
            free(w->data);
            w->data = NULL;
            w->cap = 0;
        }
    }
}
