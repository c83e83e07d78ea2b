/* A Push read in place from gRPC's slices (raylet/service/push_wire.c over
 * common/pbwire.c): whatever the slicing, the fields decode as protobuf-c
 * would and the data segments add up to the sent bytes; broken messages
 * are refused, never read past their end. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/pbwire.h"
#include "proto/ray_proto.h"
#include "raylet/service/push_wire.h"

static uint8_t *pack_push(const uint8_t *data, size_t len, size_t *out_len)
{
    static uint8_t oid[28], node[28], owner_node[28], owner_worker[28], push_id[28];
    for (int i = 0; i < 28; i++) {
        oid[i] = (uint8_t)(i + 1);
        node[i] = (uint8_t)(i + 50);
        owner_node[i] = (uint8_t)(i + 100);
        owner_worker[i] = (uint8_t)(i + 150);
        push_id[i] = 7;
    }
    Ray__Rpc__Address owner = RAY__RPC__ADDRESS__INIT;
    owner.node_id = (ProtobufCBinaryData){.data = owner_node, .len = 28};
    owner.worker_id = (ProtobufCBinaryData){.data = owner_worker, .len = 28};
    owner.ip_address = "10.200.0.7";
    owner.port = 4321;
    Ray__Rpc__PushRequest req = RAY__RPC__PUSH_REQUEST__INIT;
    req.push_id = (ProtobufCBinaryData){.data = push_id, .len = 28};
    req.object_id = (ProtobufCBinaryData){.data = oid, .len = 28};
    req.node_id = (ProtobufCBinaryData){.data = node, .len = 28};
    req.owner_address = &owner;
    req.chunk_index = 3;
    req.data_size = 1u << 30;
    req.metadata_size = 5;
    req.data = (ProtobufCBinaryData){.data = (uint8_t *)data, .len = len};
    *out_len = ray__rpc__push_request__get_packed_size(&req);
    uint8_t *buf = malloc(*out_len);
    ray__rpc__push_request__pack(&req, buf);
    return buf;
}

static void gather(const transfer_chunk_t *c, uint8_t *out)
{
    for (size_t i = 0; i < c->iovcnt; i++) {
        memcpy(out, c->iov[i].iov_base, c->iov[i].iov_len);
        out += c->iov[i].iov_len;
    }
}

Test(push_wire, any_slicing_decodes_the_same)
{
    uint8_t data[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 13);
    size_t n;
    uint8_t *msg = pack_push(data, sizeof data, &n);
    /* Every pair of cut points, including empty segments. */
    for (size_t a = 0; a <= n; a += 7) {
        for (size_t b = a; b <= n; b += 11) {
            struct iovec iov[3] = {{msg, a}, {msg + a, b - a}, {msg + b, n - b}};
            transfer_chunk_t c;
            struct iovec *segs;
            const char *why;
            cr_assert_eq(push_wire_decode(iov, 3, n, &c, &segs, &why), 0, "cut at %zu, %zu: %s", a, b, why);
            cr_assert_eq(c.id.b[0], 1);
            cr_assert_eq(c.id.b[27], 28);
            cr_assert_eq(c.from.b[0], 50);
            cr_assert_eq(c.owner.node_id.b[0], 100);
            cr_assert_eq(c.owner.worker_id.b[27], 177);
            cr_assert_str_eq(c.owner.ip, "10.200.0.7");
            cr_assert_eq(c.owner.port, 4321);
            cr_assert_eq(c.index, 3);
            cr_assert_eq(c.total_size, 1u << 30);
            cr_assert_eq(c.metadata_size, 5);
            cr_assert_eq(c.len, sizeof data);
            cr_assert_leq(c.iovcnt, 3);
            uint8_t got[sizeof data];
            gather(&c, got);
            cr_assert(memcmp(got, data, sizeof data) == 0);
            free(segs);
        }
    }
    free(msg);
}

Test(push_wire, every_truncation_is_refused)
{
    uint8_t data[40] = {1, 2, 3};
    size_t n;
    uint8_t *msg = pack_push(data, sizeof data, &n);
    for (size_t cut = 1; cut < n; cut++) {
        /* A cut right after a whole field leaves a shorter valid message
         * only if the fields after it are optional; data is last and was
         * sent, so only the full length decodes to these bytes. */
        struct iovec iov[1] = {{msg, cut}};
        transfer_chunk_t c;
        struct iovec *segs;
        const char *why;
        int rc = push_wire_decode(iov, 1, cut, &c, &segs, &why);
        if (rc == 0) {
            cr_assert_neq(c.len, sizeof data, "cut at %zu still has all the data", cut);
            free(segs);
        } else {
            cr_assert_eq(rc, CR_EBADMSG);
            cr_assert_null(segs);
            cr_assert_not_null(why);
        }
    }
    free(msg);
}

static int decode_bytes(const uint8_t *b, size_t n, const char **why)
{
    struct iovec iov = {(void *)b, n};
    transfer_chunk_t c;
    struct iovec *segs;
    int rc = push_wire_decode(&iov, 1, n, &c, &segs, why);
    free(segs);
    return rc;
}

Test(push_wire, malformed_fields_are_refused_with_a_reason)
{
    uint8_t ids[2 + 28 + 2 + 28];
    ids[0] = 0x12, ids[1] = 28;             /* object_id */
    memset(ids + 2, 1, 28);
    ids[30] = 0x1a, ids[31] = 28;           /* node_id */
    memset(ids + 32, 2, 28);
    const char *why;
    cr_assert_eq(decode_bytes(ids, sizeof ids, &why), 0, "ids alone are a Push with no data");

    uint8_t short_id[] = {0x12, 3, 1, 2, 3};
    cr_assert_eq(decode_bytes(short_id, sizeof short_id, &why), CR_EBADMSG);
    cr_assert_str_eq(why, "malformed ids");

    cr_assert_eq(decode_bytes(ids, 30, &why), CR_EBADMSG, "no node id");
    cr_assert_str_eq(why, "malformed ids");

    uint8_t buf[sizeof ids + 32];
    memcpy(buf, ids, sizeof ids);
    const uint8_t wrong_wire[] = {0x40, 1};                        /* data as a varint */
    const uint8_t big_index[] = {0x28, 0x80, 0x80, 0x80, 0x80, 0x10}; /* 2^32 */
    const uint8_t long_varint[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    const uint8_t group[] = {0x4b};                                /* field 9, start group */
    const uint8_t field0[] = {0x02, 0};                            /* field number 0 */
    const uint8_t lying_len[] = {0x42, 0x7f, 1, 2};                /* data of 127 bytes, 2 sent */
    struct {
        const uint8_t *b;
        size_t n;
        const char *why;
    } cases[] = {
        {wrong_wire, sizeof wrong_wire, "a field of the wrong wire type"},
        {big_index, sizeof big_index, "chunk index past 32 bits"},
        {long_varint, sizeof long_varint, "truncated or malformed value"},
        {group, sizeof group, "a field of an unknown wire type"},
        {field0, sizeof field0, "malformed field key"},
        {lying_len, sizeof lying_len, "truncated or malformed value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(buf + sizeof ids, cases[i].b, cases[i].n);
        cr_assert_eq(decode_bytes(buf, sizeof ids + cases[i].n, &why), CR_EBADMSG, "case %zu", i);
        cr_assert_str_eq(why, cases[i].why, "case %zu", i);
    }
    /* Unknown fields of every wire type are skipped. */
    const uint8_t unknown[] = {0x48, 5, 0x51, 1, 2, 3, 4, 5, 6, 7, 8, 0x5d, 1, 2, 3, 4, 0x62, 2, 9, 9};
    memcpy(buf + sizeof ids, unknown, sizeof unknown);
    cr_assert_eq(decode_bytes(buf, sizeof ids + sizeof unknown, &why), 0);
}

Test(pbwire, a_reader_never_passes_the_bytes_promised)
{
    uint8_t b[] = {0x0a, 0x05, 'h', 'e', 'l', 'l', 'o'};
    struct iovec iov[2] = {{b, 3}, {b + 3, 4}};
    pbw_reader_t r, sub;
    pbw_init(&r, iov, 2, sizeof b);
    uint32_t f;
    int w;
    size_t len;
    cr_assert_eq(pbw_next(&r, &f, &w), 1);
    cr_assert(f == 1 && w == PBW_LEN);
    cr_assert_eq(pbw_length(&r, &len), 0);
    cr_assert_eq(pbw_sub(&r, len, &sub), 0);
    struct iovec segs[4];
    cr_assert_eq(pbw_segments(&sub, segs, 4), 2, "the value spans both segments");
    cr_assert(segs[0].iov_len == 1 && segs[1].iov_len == 4);
    char word[6] = {0};
    cr_assert_eq(pbw_copy(&sub, word, 5), 0);
    cr_assert_str_eq(word, "hello");
    cr_assert_eq(pbw_copy(&sub, word, 1), CR_EBADMSG, "the sub-reader ends with the field");
    cr_assert_eq(pbw_next(&r, &f, &w), 0, "the message ends cleanly");
    /* Segments shorter than promised: an error, not a read past them. */
    pbw_init(&r, iov, 1, sizeof b);
    cr_assert_eq(pbw_skip(&r, 5), CR_EBADMSG);
}
