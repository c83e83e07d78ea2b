/* Socket framing: the header layout, incremental decoding of an untrusted
 * stream, and the output buffer. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/frame.h"

#define COOKIE FRAME_RAY_COOKIE

static frame_decoder_t *decoder(size_t max)
{
    frame_decoder_t *d = frame_decoder_create(COOKIE, max);
    cr_assert(d);
    return d;
}

/* Appends frames of types 1..n with payloads of i*7 bytes of value i. */
static void encode_many(frame_wbuf_t *w, int n)
{
    for (int i = 1; i <= n; i++) {
        uint8_t payload[256];
        memset(payload, i, sizeof payload);
        cr_assert_eq(frame_encode(w, COOKIE, i, payload, (size_t)i * 7), 0);
    }
}

static void expect_frame(const frame_t *f, int i)
{
    cr_assert_eq(f->type, i);
    cr_assert_eq(f->len, (size_t)i * 7);
    for (size_t k = 0; k < f->len; k++)
        cr_assert_eq(f->payload[k], i);
}

Test(frame, header_layout_is_three_little_endian_int64)
{
    uint8_t h[FRAME_HEADER_SIZE];
    frame_header_write(h, COOKIE, 7, 0x0102);
    static const uint8_t want[FRAME_HEADER_SIZE] = {
        0, 0, 0, 0, 0, 0x59, 0x41, 0x52, /* "RAY" in the top bytes */
        7, 0, 0, 0, 0, 0, 0, 0,
        0x02, 0x01, 0, 0, 0, 0, 0, 0,
    };
    cr_assert_eq(memcmp(h, want, sizeof want), 0);
    int64_t type;
    size_t len;
    cr_assert_eq(frame_header_parse(h, COOKIE, 1 << 20, &type, &len), 0);
    cr_assert_eq(type, 7);
    cr_assert_eq(len, 0x0102);
    cr_assert_eq(frame_header_parse(h, COOKIE, 0x0101, &type, &len), CR_ETOOBIG);
    cr_assert_eq(frame_header_parse(h, COOKIE + 1, 1 << 20, &type, &len), CR_EBADMSG);
}

Test(frame, byte_by_byte)
{
    frame_wbuf_t w;
    frame_wbuf_init(&w);
    encode_many(&w, 5);
    size_t n;
    const uint8_t *bytes = frame_wbuf_pending(&w, &n);
    frame_decoder_t *d = decoder(FRAME_DEFAULT_MAX_PAYLOAD);
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(frame_decoder_feed(d, bytes + i, 1), 0);
        frame_t f;
        int rc;
        while ((rc = frame_decoder_next(d, &f)) == 1)
            expect_frame(&f, ++seen);
        cr_assert_eq(rc, 0);
    }
    cr_assert_eq(seen, 5);
    cr_assert_eq(frame_decoder_pending(d), 0);
    frame_decoder_destroy(d);
    frame_wbuf_free(&w);
}

Test(frame, many_frames_in_one_feed_stay_valid_together)
{
    frame_wbuf_t w;
    frame_wbuf_init(&w);
    encode_many(&w, 20);
    size_t n;
    const uint8_t *bytes = frame_wbuf_pending(&w, &n);
    frame_decoder_t *d = decoder(FRAME_DEFAULT_MAX_PAYLOAD);
    cr_assert_eq(frame_decoder_feed(d, bytes, n), 0);
    /* Take them all first, check afterwards: payloads must survive later
     * next() calls. */
    frame_t f[20];
    for (int i = 0; i < 20; i++)
        cr_assert_eq(frame_decoder_next(d, &f[i]), 1);
    frame_t extra;
    cr_assert_eq(frame_decoder_next(d, &extra), 0);
    for (int i = 0; i < 20; i++)
        expect_frame(&f[i], i + 1);
    frame_decoder_destroy(d);
    frame_wbuf_free(&w);
}

Test(frame, random_split_points)
{
    frame_wbuf_t w;
    frame_wbuf_init(&w);
    encode_many(&w, 30);
    size_t n;
    const uint8_t *bytes = frame_wbuf_pending(&w, &n);
    unsigned seed = 7;
    for (int round = 0; round < 200; round++) {
        frame_decoder_t *d = decoder(FRAME_DEFAULT_MAX_PAYLOAD);
        int seen = 0;
        size_t at = 0;
        while (at < n) {
            size_t step = 1 + (size_t)rand_r(&seed) % 97;
            if (step > n - at)
                step = n - at;
            cr_assert_eq(frame_decoder_feed(d, bytes + at, step), 0);
            at += step;
            frame_t f;
            while (frame_decoder_next(d, &f) == 1)
                expect_frame(&f, ++seen);
        }
        cr_assert_eq(seen, 30);
        frame_decoder_destroy(d);
    }
    frame_wbuf_free(&w);
}

Test(frame, reserve_and_commit)
{
    frame_wbuf_t w;
    frame_wbuf_init(&w);
    uint8_t big[100000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 31);
    cr_assert_eq(frame_encode(&w, COOKIE, 3, big, sizeof big), 0);
    cr_assert_eq(frame_encode(&w, COOKIE, 4, NULL, 0), 0);
    size_t n;
    const uint8_t *bytes = frame_wbuf_pending(&w, &n);

    frame_decoder_t *d = decoder(FRAME_DEFAULT_MAX_PAYLOAD);
    size_t at = 0;
    int seen = 0;
    while (at < n) {
        uint8_t *space;
        size_t avail;
        cr_assert_eq(frame_decoder_reserve(d, 16, &space, &avail), 0);
        cr_assert_geq(avail, 16);
        /* Once the header is in, the whole rest of the frame fits. */
        if (at >= FRAME_HEADER_SIZE && at < FRAME_HEADER_SIZE + sizeof big)
            cr_assert_geq(avail, FRAME_HEADER_SIZE + sizeof big - at);
        size_t take = at == 0 ? 30 : avail; /* first read: header + a little */
        if (take > n - at)
            take = n - at;
        memcpy(space, bytes + at, take);
        frame_decoder_commit(d, take);
        at += take;
        frame_t f;
        while (frame_decoder_next(d, &f) == 1) {
            seen++;
            if (f.type == 3) {
                cr_assert_eq(f.len, sizeof big);
                cr_assert_eq(memcmp(f.payload, big, sizeof big), 0);
            } else {
                cr_assert_eq(f.type, 4);
                cr_assert_eq(f.len, 0);
            }
        }
    }
    cr_assert_eq(seen, 2);
    frame_decoder_destroy(d);
    frame_wbuf_free(&w);
}

Test(frame, wrong_cookie_is_fatal_and_sticky)
{
    uint8_t h[FRAME_HEADER_SIZE];
    frame_header_write(h, 0x1234, 1, 0);
    frame_decoder_t *d = decoder(1024);
    /* Not detectable until the cookie is complete. */
    cr_assert_eq(frame_decoder_feed(d, h, 7), 0);
    frame_t f;
    cr_assert_eq(frame_decoder_next(d, &f), 0);
    cr_assert_eq(frame_decoder_feed(d, h + 7, sizeof h - 7), 0);
    cr_assert_eq(frame_decoder_next(d, &f), CR_EBADMSG);
    cr_assert_null(f.payload);
    cr_assert_eq(frame_decoder_error(d), CR_EBADMSG);
    /* A good frame afterwards does not resynchronise the stream. */
    frame_header_write(h, COOKIE, 1, 0);
    cr_assert_eq(frame_decoder_feed(d, h, sizeof h), CR_EBADMSG);
    cr_assert_eq(frame_decoder_next(d, &f), CR_EBADMSG);
    uint8_t *space;
    size_t avail;
    cr_assert_eq(frame_decoder_reserve(d, 1, &space, &avail), CR_EBADMSG);
    cr_assert_null(space);
    frame_decoder_destroy(d);
}

Test(frame, negative_and_oversized_lengths)
{
    uint8_t h[FRAME_HEADER_SIZE];
    frame_t f;
    frame_decoder_t *d = decoder(1000);
    frame_header_write(h, COOKIE, 1, 0);
    for (int i = 0; i < 8; i++)
        h[16 + i] = 0xff; /* -1 */
    cr_assert_eq(frame_decoder_feed(d, h, sizeof h), 0);
    cr_assert_eq(frame_decoder_next(d, &f), CR_EBADMSG);
    frame_decoder_destroy(d);

    d = decoder(1000);
    frame_header_write(h, COOKIE, 1, 1001);
    cr_assert_eq(frame_decoder_feed(d, h, sizeof h), 0);
    cr_assert_eq(frame_decoder_next(d, &f), CR_ETOOBIG);
    frame_decoder_destroy(d);

    /* INT64_MIN and the largest positive value. */
    d = decoder(1000);
    frame_header_write(h, COOKIE, 1, 0);
    h[23] = 0x80;
    cr_assert_eq(frame_decoder_feed(d, h, sizeof h), 0);
    cr_assert_eq(frame_decoder_next(d, &f), CR_EBADMSG);
    frame_decoder_destroy(d);
    d = decoder((size_t)1 << 30);
    frame_header_write(h, COOKIE, 1, 0);
    for (int i = 0; i < 8; i++)
        h[16 + i] = 0xff;
    h[23] = 0x7f;
    cr_assert_eq(frame_decoder_feed(d, h, sizeof h), 0);
    cr_assert_eq(frame_decoder_next(d, &f), CR_ETOOBIG);
    frame_decoder_destroy(d);

    /* Exactly the limit is fine. */
    d = decoder(1000);
    uint8_t *payload = calloc(1, 1000);
    frame_wbuf_t w;
    frame_wbuf_init(&w);
    cr_assert_eq(frame_encode(&w, COOKIE, 9, payload, 1000), 0);
    size_t n;
    const uint8_t *bytes = frame_wbuf_pending(&w, &n);
    cr_assert_eq(frame_decoder_feed(d, bytes, n), 0);
    cr_assert_eq(frame_decoder_next(d, &f), 1);
    cr_assert_eq(f.len, 1000);
    free(payload);
    frame_wbuf_free(&w);
    frame_decoder_destroy(d);
}

Test(frame, lying_length_waits_and_reserve_does_not_overallocate)
{
    /* A header that promises 100 bytes and delivers 50: no frame yet, and
     * the next bytes are taken as the rest of the payload. */
    uint8_t h[FRAME_HEADER_SIZE];
    frame_header_write(h, COOKIE, 2, 100);
    frame_decoder_t *d = decoder(1000);
    cr_assert_eq(frame_decoder_feed(d, h, sizeof h), 0);
    uint8_t junk[50] = {0};
    cr_assert_eq(frame_decoder_feed(d, junk, sizeof junk), 0);
    frame_t f;
    cr_assert_eq(frame_decoder_next(d, &f), 0);
    cr_assert_eq(frame_decoder_pending(d), sizeof h + 50);
    uint8_t *space;
    size_t avail;
    cr_assert_eq(frame_decoder_reserve(d, 1, &space, &avail), 0);
    cr_assert_geq(avail, 50);
    frame_decoder_commit(d, 50);
    cr_assert_eq(frame_decoder_next(d, &f), 1);
    cr_assert_eq(f.len, 100);
    cr_assert_eq(frame_decoder_next(d, &f), 0);
    frame_decoder_destroy(d);

    /* A header claiming more than the limit is refused before any payload
     * is buffered for it. */
    d = decoder(1000);
    frame_header_write(h, COOKIE, 2, (size_t)1 << 40);
    cr_assert_eq(frame_decoder_feed(d, h, sizeof h), 0);
    cr_assert_eq(frame_decoder_reserve(d, 1, &space, &avail), 0);
    cr_assert_lt(avail, (size_t)1 << 20);
    cr_assert_eq(frame_decoder_next(d, &f), CR_ETOOBIG);
    frame_decoder_destroy(d);
}

Test(frame, commit_is_clamped)
{
    frame_decoder_t *d = decoder(1000);
    uint8_t *space;
    size_t avail;
    cr_assert_eq(frame_decoder_reserve(d, 8, &space, &avail), 0);
    frame_decoder_commit(d, avail + 1000);
    cr_assert_eq(frame_decoder_pending(d), avail);
    frame_decoder_destroy(d);
}

Test(frame, big_frames_release_memory_afterwards)
{
    size_t big = (size_t)4 << 20;
    uint8_t *payload = malloc(big);
    memset(payload, 0xab, big);
    frame_wbuf_t w;
    frame_wbuf_init(&w);
    cr_assert_eq(frame_encode(&w, COOKIE, 1, payload, big), 0);
    cr_assert_eq(frame_encode(&w, COOKIE, 2, "x", 1), 0);
    size_t n;
    const uint8_t *bytes = frame_wbuf_pending(&w, &n);
    frame_decoder_t *d = decoder(FRAME_DEFAULT_MAX_PAYLOAD);
    cr_assert_eq(frame_decoder_feed(d, bytes, n), 0);
    frame_t f;
    cr_assert_eq(frame_decoder_next(d, &f), 1);
    cr_assert_eq(f.len, big);
    cr_assert_eq(frame_decoder_next(d, &f), 1);
    cr_assert_eq(f.len, 1);
    /* Drained: the next reserve starts small again. */
    uint8_t *space;
    size_t avail;
    cr_assert_eq(frame_decoder_reserve(d, 1, &space, &avail), 0);
    cr_assert_lt(avail, (size_t)1 << 20);
    frame_wbuf_consume(&w, n);
    cr_assert_null(w.data);
    cr_assert_eq(w.cap, 0);
    frame_decoder_destroy(d);
    frame_wbuf_free(&w);
    free(payload);
}

Test(frame, wbuf_partial_writes)
{
    frame_wbuf_t w;
    frame_wbuf_init(&w);
    size_t n;
    cr_assert_null(frame_wbuf_pending(&w, &n));
    cr_assert_eq(n, 0);
    cr_assert_eq(frame_encode(&w, COOKIE, 1, "hello", 5), 0);
    const uint8_t *p = frame_wbuf_pending(&w, &n);
    cr_assert_eq(n, FRAME_HEADER_SIZE + 5);
    uint8_t out[256];
    size_t got = 0;
    memcpy(out, p, 10);
    got += 10;
    frame_wbuf_consume(&w, 10);
    /* Appending after a partial write keeps the unwritten tail first. */
    for (int i = 0; i < 100; i++)
        cr_assert_eq(frame_encode(&w, COOKIE, 2, "abc", 3), 0);
    p = frame_wbuf_pending(&w, &n);
    cr_assert_eq(n, FRAME_HEADER_SIZE + 5 - 10 + 100 * (FRAME_HEADER_SIZE + 3));
    memcpy(out + got, p, FRAME_HEADER_SIZE + 5 - 10);
    got += FRAME_HEADER_SIZE + 5 - 10;
    frame_decoder_t *d = decoder(100);
    cr_assert_eq(frame_decoder_feed(d, out, got), 0);
    frame_t f;
    cr_assert_eq(frame_decoder_next(d, &f), 1);
    cr_assert_eq(f.type, 1);
    cr_assert_eq(f.len, 5);
    cr_assert_eq(memcmp(f.payload, "hello", 5), 0);
    frame_wbuf_consume(&w, SIZE_MAX); /* more than pending: clamps */
    frame_wbuf_pending(&w, &n);
    cr_assert_eq(n, 0);
    frame_decoder_destroy(d);
    frame_wbuf_free(&w);
}
