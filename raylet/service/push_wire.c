#include "raylet/service/push_wire.h"

#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/pbwire.h"
#include "proto/ray_proto.h"
#include "raylet/service/address.h"

enum {
    PUSH_PUSH_ID = 1,
    PUSH_OBJECT_ID = 2,
    PUSH_NODE_ID = 3,
    PUSH_OWNER_ADDRESS = 4,
    PUSH_CHUNK_INDEX = 5,
    PUSH_DATA_SIZE = 6,
    PUSH_METADATA_SIZE = 7,
    PUSH_DATA = 8,
};

static int expect(int wire, int want, const char **why)
{
    if (wire == want)
        return 0;
    *why = "a field of the wrong wire type";
    return CR_EBADMSG;
}

/* A fixed-size id field: exactly `size` bytes. */
static int read_id(pbw_reader_t *r, uint8_t *dst, size_t size, const char **why)
{
    size_t len;
    if (pbw_length(r, &len) != 0)
        return CR_EBADMSG;
    if (len != size) {
        *why = "malformed ids";
        return CR_EBADMSG;
    }
    return pbw_copy(r, dst, len);
}

static int read_owner(pbw_reader_t *r, ray_addr_t *owner, const char **why)
{
    size_t len = 0;
    if (pbw_length(r, &len) != 0)
        return CR_EBADMSG;
    if (len > PUSH_WIRE_MAX_ADDRESS) {
        *why = "owner address too long";
        return CR_EBADMSG;
    }
    uint8_t buf[PUSH_WIRE_MAX_ADDRESS];
    if (pbw_copy(r, buf, len) != 0)
        return CR_EBADMSG;
    Ray__Rpc__Address *a = ray__rpc__address__unpack(NULL, len, buf);
    if (!a) {
        *why = "undecodable owner address";
        return CR_EBADMSG;
    }
    svc_address_decode(a, owner);
    ray__rpc__address__free_unpacked(a, NULL);
    return 0;
}

int push_wire_decode(const struct iovec *iov, size_t iovcnt, size_t total, transfer_chunk_t *out,
                     struct iovec **segs, const char **why)
{
    *segs = NULL;
    *why = NULL;
    memset(out, 0, sizeof *out);
    pbw_reader_t r, data;
    pbw_init(&r, iov, iovcnt, total);
    pbw_init(&data, NULL, 0, 0);
    bool have_object = false, have_node = false;
    uint32_t field;
    int wire, got;
    while ((got = pbw_next(&r, &field, &wire)) == 1) {
        *why = "truncated or malformed value"; /* unless a step below says otherwise */
        uint64_t v = 0;
        size_t len;
        int rc;
        switch (field) {
        case PUSH_OBJECT_ID:
            rc = expect(wire, PBW_LEN, why);
            if (rc == 0)
                rc = read_id(&r, out->id.b, ID_OBJECT_SIZE, why);
            have_object = rc == 0;
            break;
        case PUSH_NODE_ID:
            rc = expect(wire, PBW_LEN, why);
            if (rc == 0)
                rc = read_id(&r, out->from.b, ID_UNIQUE_SIZE, why);
            have_node = rc == 0;
            break;
        case PUSH_OWNER_ADDRESS:
            rc = expect(wire, PBW_LEN, why);
            if (rc == 0)
                rc = read_owner(&r, &out->owner, why);
            break;
        case PUSH_CHUNK_INDEX:
            rc = expect(wire, PBW_VARINT, why);
            if (rc == 0)
                rc = pbw_varint(&r, &v);
            if (rc == 0 && v > UINT32_MAX) {
                *why = "chunk index past 32 bits";
                rc = CR_EBADMSG;
            }
            out->index = (uint32_t)v;
            break;
        case PUSH_DATA_SIZE:
            rc = expect(wire, PBW_VARINT, why);
            if (rc == 0)
                rc = pbw_varint(&r, &out->total_size);
            break;
        case PUSH_METADATA_SIZE:
            rc = expect(wire, PBW_VARINT, why);
            if (rc == 0)
                rc = pbw_varint(&r, &out->metadata_size);
            break;
        case PUSH_DATA:
            rc = expect(wire, PBW_LEN, why);
            if (rc == 0)
                rc = pbw_length(&r, &len);
            if (rc == 0)
                rc = pbw_sub(&r, len, &data);
            break;
        default: /* push_id and anything newer */
            if (wire != PBW_VARINT && wire != PBW_FIXED64 && wire != PBW_LEN && wire != PBW_FIXED32)
                *why = "a field of an unknown wire type";
            rc = pbw_skip_value(&r, wire);
            break;
        }
        if (rc != 0)
            return CR_EBADMSG;
    }
    if (got != 0) {
        *why = "malformed field key";
        return CR_EBADMSG;
    }
    if (!have_object || !have_node) {
        *why = "malformed ids";
        return CR_EBADMSG;
    }
    size_t n = pbw_segments(&data, NULL, 0);
    *segs = xmalloc((n ? n : 1) * sizeof **segs);
    pbw_segments(&data, *segs, n);
    out->iov = *segs;
    out->iovcnt = n;
    out->len = data.left;
    *why = NULL;
    return 0;
}
