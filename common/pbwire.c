#include "common/pbwire.h"

#include <string.h>

#include "common/error.h"

/* Drop exhausted segments so iov[0] always has a byte to give (while any
 * are left). */
static void pbw_settle(pbw_reader_t *r)
{
    while (r->iovcnt > 0 && r->off >= r->iov[0].iov_len) {
        r->iov++;
        r->iovcnt--;
        r->off = 0;
    }
}

void pbw_init(pbw_reader_t *r, const struct iovec *iov, size_t iovcnt, size_t total)
{
    r->iov = iov;
    r->iovcnt = iovcnt;
    r->off = 0;
    r->left = total;
    pbw_settle(r);
}

static int pbw_byte(pbw_reader_t *r, uint8_t *b)
{
    if (r->left == 0)
        return CR_EBADMSG;
    pbw_settle(r);
    if (r->iovcnt == 0)
        return CR_EBADMSG; /* fewer bytes than promised */
    *b = ((const uint8_t *)r->iov[0].iov_base)[r->off++];
    r->left--;
    return 0;
}

int pbw_varint(pbw_reader_t *r, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        uint8_t b;
        if (pbw_byte(r, &b) != 0)
            return CR_EBADMSG;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return CR_EBADMSG; /* more than ten bytes */
}

int pbw_next(pbw_reader_t *r, uint32_t *field, int *wire)
{
    if (r->left == 0)
        return 0;
    uint64_t key;
    if (pbw_varint(r, &key) != 0)
        return CR_EBADMSG;
    uint64_t number = key >> 3;
    if (number == 0 || number > 0x1fffffff)
        return CR_EBADMSG;
    *field = (uint32_t)number;
    *wire = (int)(key & 7);
    return 1;
}

int pbw_length(pbw_reader_t *r, size_t *len)
{
    uint64_t n;
    if (pbw_varint(r, &n) != 0 || n > r->left)
        return CR_EBADMSG;
    *len = (size_t)n;
    return 0;
}

/* Walk `len` bytes, copying them to `dst` unless it is NULL. */
static int pbw_advance(pbw_reader_t *r, uint8_t *dst, size_t len)
{
    if (len > r->left)
        return CR_EBADMSG;
    while (len > 0) {
        pbw_settle(r);
        if (r->iovcnt == 0)
            return CR_EBADMSG;
        size_t have = r->iov[0].iov_len - r->off;
        size_t n = have < len ? have : len;
        if (dst) {
            memcpy(dst, (const uint8_t *)r->iov[0].iov_base + r->off, n);
            dst += n;
        }
        r->off += n;
        r->left -= n;
        len -= n;
    }
    return 0;
}

int pbw_copy(pbw_reader_t *r, void *dst, size_t len) { return pbw_advance(r, dst, len); }

int pbw_skip(pbw_reader_t *r, size_t len) { return pbw_advance(r, NULL, len); }

int pbw_sub(pbw_reader_t *r, size_t len, pbw_reader_t *sub)
{
    if (len > r->left)
        return CR_EBADMSG;
    pbw_settle(r);
    *sub = (pbw_reader_t){.iov = r->iov, .iovcnt = r->iovcnt, .off = r->off, .left = len};
    return pbw_skip(r, len);
}

int pbw_skip_value(pbw_reader_t *r, int wire)
{
    uint64_t v;
    size_t len;
    switch (wire) {
    case PBW_VARINT: return pbw_varint(r, &v);
    case PBW_FIXED64: return pbw_skip(r, 8);
    case PBW_FIXED32: return pbw_skip(r, 4);
    case PBW_LEN: return pbw_length(r, &len) != 0 ? CR_EBADMSG : pbw_skip(r, len);
    default: return CR_EBADMSG; /* groups (3, 4) and the unused 6, 7 */
    }
}

size_t pbw_segments(const pbw_reader_t *r, struct iovec *out, size_t max)
{
    size_t need = 0, left = r->left, off = r->off;
    for (size_t i = 0; i < r->iovcnt && left > 0; i++, off = 0) {
        if (off >= r->iov[i].iov_len)
            continue;
        size_t n = r->iov[i].iov_len - off;
        if (n > left)
            n = left;
        if (need < max)
            out[need] = (struct iovec){.iov_base = (uint8_t *)r->iov[i].iov_base + off, .iov_len = n};
        need++;
        left -= n;
    }
    return need;
}
