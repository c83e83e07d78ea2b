#include "common/fb.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ======================================================================
 * Reader
 *
 * Positions are size_t indexes into the buffer.  fb_root() refuses buffers
 * over FB_MAX_BUFFER, so every sum below of a position (< 2^31) and a 32-bit
 * wire value fits in 64 bits without wrapping; the checks can then be plain
 * comparisons against len.
 * ====================================================================== */

static const fb_table_t absent_table;

/* Validates the table whose soffset sits at pos and fills *out. */
static int table_at(const uint8_t *buf, size_t len, uint64_t pos, fb_table_t *out)
{
    *out = absent_table;
    if (pos % 4 || pos + 4 > len)
        return CR_EBADMSG;
    int64_t vt = (int64_t)pos - (int32_t)fb_load_u32(buf + pos);
    if (vt < 0 || vt % 2 || (uint64_t)vt + 4 > len)
        return CR_EBADMSG;
    uint16_t vt_len = fb_load_u16(buf + vt);
    uint16_t size = fb_load_u16(buf + vt + 2);
    /* The vtable must cover its own header; the table its own soffset. */
    if (vt_len < 4 || vt_len % 2 || (uint64_t)vt + vt_len > len)
        return CR_EBADMSG;
    if (size < 4 || pos + size > len)
        return CR_EBADMSG;
    out->buf = buf;
    out->len = len;
    out->pos = (size_t)pos;
    out->vt = (size_t)vt;
    out->vt_len = vt_len;
    out->size = size;
    return 0;
}

int fb_root(const uint8_t *buf, size_t len, fb_table_t *out)
{
    *out = absent_table;
    if (!buf || len < 8 || len > FB_MAX_BUFFER)
        return CR_EBADMSG;
    return table_at(buf, len, fb_load_u32(buf), out);
}

/* Field offset of slot inside the table, 0 when absent. */
static uint16_t slot_offset(const fb_table_t *t, unsigned slot)
{
    if (!t->buf || slot >= (t->vt_len - 4u) / 2)
        return 0;
    return fb_load_u16(t->buf + t->vt + 4 + 2 * (size_t)slot);
}

bool fb_has(const fb_table_t *t, unsigned slot) { return slot_offset(t, slot) != 0; }

/* Locates a field of the given inline size.  *pos = 0 means absent.  The
 * field must lie inside the table's inline bytes, past its soffset, and be
 * aligned (relative to the buffer start) as the format lays it out. */
static int field_at(const fb_table_t *t, unsigned slot, size_t size, size_t align, size_t *pos)
{
    *pos = 0;
    uint16_t off = slot_offset(t, slot);
    if (!off)
        return 0;
    if (off < 4 || off + size > t->size)
        return CR_EBADMSG;
    size_t p = t->pos + off;
    if (p % align)
        return CR_EBADMSG;
    *pos = p;
    return 0;
}

/* Follows the uoffset stored at pos. */
static int deref(const uint8_t *buf, size_t len, size_t pos, uint64_t *target)
{
    uint64_t tgt = (uint64_t)pos + fb_load_u32(buf + pos);
    if (tgt >= len)
        return CR_EBADMSG;
    *target = tgt;
    return 0;
}

static int str_at(const uint8_t *buf, size_t len, uint64_t pos, fb_str_t *out)
{
    if (pos % 4 || pos + 4 > len)
        return CR_EBADMSG;
    uint32_t n = fb_load_u32(buf + pos);
    /* The terminating NUL must be inside the buffer too. */
    if (pos + 4 + (uint64_t)n + 1 > len || buf[pos + 4 + n] != 0)
        return CR_EBADMSG;
    out->data = (const char *)buf + pos + 4;
    out->len = n;
    return 0;
}

static int vec_at(const uint8_t *buf, size_t len, uint64_t pos, size_t elem_size,
                  size_t align, fb_vec_t *out)
{
    if (pos % 4 || pos + 4 > len)
        return CR_EBADMSG;
    uint32_t n = fb_load_u32(buf + pos);
    uint64_t data = pos + 4;
    /* n < 2^32 and elem_size <= 2^16 (checked by callers): no wrap. */
    if (data % align || data + (uint64_t)n * elem_size > len)
        return CR_EBADMSG;
    out->buf = buf;
    out->len = len;
    out->data = (size_t)data;
    out->count = n;
    out->elem_size = (uint32_t)elem_size;
    return 0;
}

static bool valid_align(size_t align) { return align && align <= 16 && !(align & (align - 1)); }

/* Generic scalar field read: copies size bytes (little-endian) into a u64. */
static int read_scalar(const fb_table_t *t, unsigned slot, size_t size, uint64_t *raw, bool *found)
{
    size_t p;
    *found = false;
    int rc = field_at(t, slot, size, size, &p);
    if (rc || !p)
        return rc;
    switch (size) {
    case 1: *raw = t->buf[p]; break;
    case 2: *raw = fb_load_u16(t->buf + p); break;
    case 4: *raw = fb_load_u32(t->buf + p); break;
    default: *raw = fb_load_u64(t->buf + p); break;
    }
    *found = true;
    return 0;
}

/* Integer getters share one shape; the cast back from the raw bits is a
 * plain conversion for the unsigned types and an implementation-defined
 * (two's complement on every target we build for) one for the signed. */
#define FB_READ_INT(name, type, utype)                                                   \
    int fb_read_##name(const fb_table_t *t, unsigned slot, type dflt, type *out)         \
    {                                                                                    \
        uint64_t raw = 0;                                                                \
        bool found;                                                                      \
        *out = dflt;                                                                     \
        int rc = read_scalar(t, slot, sizeof(type), &raw, &found);                       \
        if (!rc && found)                                                                \
            *out = (type)(utype)raw;                                                     \
        return rc;                                                                       \
    }

FB_READ_INT(i8, int8_t, uint8_t)
FB_READ_INT(u8, uint8_t, uint8_t)
FB_READ_INT(i16, int16_t, uint16_t)
FB_READ_INT(u16, uint16_t, uint16_t)
FB_READ_INT(i32, int32_t, uint32_t)
FB_READ_INT(u32, uint32_t, uint32_t)
FB_READ_INT(i64, int64_t, uint64_t)
FB_READ_INT(u64, uint64_t, uint64_t)

int fb_read_bool(const fb_table_t *t, unsigned slot, bool dflt, bool *out)
{
    uint64_t raw = 0;
    bool found;
    *out = dflt;
    int rc = read_scalar(t, slot, 1, &raw, &found);
    if (!rc && found)
        *out = raw != 0;
    return rc;
}

int fb_read_f32(const fb_table_t *t, unsigned slot, float dflt, float *out)
{
    uint64_t raw = 0;
    bool found;
    *out = dflt;
    int rc = read_scalar(t, slot, 4, &raw, &found);
    if (!rc && found) {
        uint32_t bits = (uint32_t)raw;
        memcpy(out, &bits, sizeof *out);
    }
    return rc;
}

int fb_read_f64(const fb_table_t *t, unsigned slot, double dflt, double *out)
{
    uint64_t raw = 0;
    bool found;
    *out = dflt;
    int rc = read_scalar(t, slot, 8, &raw, &found);
    if (!rc && found)
        memcpy(out, &raw, sizeof *out);
    return rc;
}

/* Locates an offset field and follows it; *target = 0 when absent (a valid
 * target is never 0: the root offset lives there). */
static int ref_field(const fb_table_t *t, unsigned slot, uint64_t *target)
{
    size_t p;
    *target = 0;
    int rc = field_at(t, slot, 4, 4, &p);
    if (rc || !p)
        return rc;
    return deref(t->buf, t->len, p, target);
}

int fb_read_str(const fb_table_t *t, unsigned slot, fb_str_t *out)
{
    uint64_t tgt;
    out->data = "";
    out->len = 0;
    int rc = ref_field(t, slot, &tgt);
    if (rc || !tgt)
        return rc;
    rc = str_at(t->buf, t->len, tgt, out);
    if (rc) {
        out->data = "";
        out->len = 0;
    }
    return rc;
}

int fb_read_table(const fb_table_t *t, unsigned slot, fb_table_t *out)
{
    uint64_t tgt;
    *out = absent_table;
    int rc = ref_field(t, slot, &tgt);
    if (rc || !tgt)
        return rc;
    return table_at(t->buf, t->len, tgt, out);
}

int fb_read_struct(const fb_table_t *t, unsigned slot, size_t size, size_t align,
                   fb_struct_t *out)
{
    size_t p;
    out->p = NULL;
    out->size = 0;
    if (!size || size > 0xffff || !valid_align(align))
        return -EINVAL;
    int rc = field_at(t, slot, size, align, &p);
    if (rc || !p)
        return rc;
    out->p = t->buf + p;
    out->size = size;
    return 0;
}

static const fb_vec_t empty_vec;

static int read_vec(const fb_table_t *t, unsigned slot, size_t elem_size, size_t align,
                    fb_vec_t *out)
{
    uint64_t tgt;
    *out = empty_vec;
    int rc = ref_field(t, slot, &tgt);
    if (rc || !tgt)
        return rc;
    rc = vec_at(t->buf, t->len, tgt, elem_size, align, out);
    if (rc)
        *out = empty_vec;
    return rc;
}

int fb_read_vec_scalar(const fb_table_t *t, unsigned slot, size_t elem_size, fb_vec_t *out)
{
    *out = empty_vec;
    if (elem_size != 1 && elem_size != 2 && elem_size != 4 && elem_size != 8)
        return -EINVAL;
    return read_vec(t, slot, elem_size, elem_size, out);
}

int fb_read_vec_ref(const fb_table_t *t, unsigned slot, fb_vec_t *out)
{
    return read_vec(t, slot, 4, 4, out);
}

int fb_read_vec_struct(const fb_table_t *t, unsigned slot, size_t size, size_t align,
                       fb_vec_t *out)
{
    *out = empty_vec;
    if (!size || size > 0xffff || !valid_align(align))
        return -EINVAL;
    return read_vec(t, slot, size, align, out);
}

int fb_read_nested(const fb_table_t *t, unsigned slot, fb_table_t *out)
{
    fb_vec_t v;
    *out = absent_table;
    int rc = read_vec(t, slot, 1, 1, &v);
    if (rc || !v.buf)
        return rc;
    return fb_root(v.buf + v.data, v.count, out);
}

/* Bounds and width check shared by the element getters; *pos is the
 * element's position in the buffer. */
static int vec_elem(const fb_vec_t *v, uint32_t i, size_t elem_size, size_t *pos)
{
    if (!v->buf || i >= v->count || v->elem_size != elem_size)
        return -EINVAL;
    *pos = v->data + (size_t)i * elem_size;
    return 0;
}

#define FB_VEC_INT(name, type, utype, load)                                              \
    int fb_vec_##name(const fb_vec_t *v, uint32_t i, type *out)                          \
    {                                                                                    \
        size_t p;                                                                        \
        *out = 0;                                                                        \
        int rc = vec_elem(v, i, sizeof(type), &p);                                       \
        if (!rc)                                                                         \
            *out = (type)(utype)load(v->buf + p);                                        \
        return rc;                                                                       \
    }

static inline uint8_t load_u8(const uint8_t *p) { return *p; }

FB_VEC_INT(i8, int8_t, uint8_t, load_u8)
FB_VEC_INT(u8, uint8_t, uint8_t, load_u8)
FB_VEC_INT(i16, int16_t, uint16_t, fb_load_u16)
FB_VEC_INT(u16, uint16_t, uint16_t, fb_load_u16)
FB_VEC_INT(i32, int32_t, uint32_t, fb_load_u32)
FB_VEC_INT(u32, uint32_t, uint32_t, fb_load_u32)
FB_VEC_INT(i64, int64_t, uint64_t, fb_load_u64)
FB_VEC_INT(u64, uint64_t, uint64_t, fb_load_u64)

int fb_vec_bool(const fb_vec_t *v, uint32_t i, bool *out)
{
    size_t p;
    *out = false;
    int rc = vec_elem(v, i, 1, &p);
    if (!rc)
        *out = v->buf[p] != 0;
    return rc;
}

int fb_vec_f32(const fb_vec_t *v, uint32_t i, float *out)
{
    size_t p;
    *out = 0;
    int rc = vec_elem(v, i, 4, &p);
    if (!rc) {
        uint32_t bits = fb_load_u32(v->buf + p);
        memcpy(out, &bits, sizeof *out);
    }
    return rc;
}

int fb_vec_f64(const fb_vec_t *v, uint32_t i, double *out)
{
    size_t p;
    *out = 0;
    int rc = vec_elem(v, i, 8, &p);
    if (!rc) {
        uint64_t bits = fb_load_u64(v->buf + p);
        memcpy(out, &bits, sizeof *out);
    }
    return rc;
}

int fb_vec_str(const fb_vec_t *v, uint32_t i, fb_str_t *out)
{
    size_t p;
    uint64_t tgt;
    out->data = "";
    out->len = 0;
    int rc = vec_elem(v, i, 4, &p);
    if (!rc)
        rc = deref(v->buf, v->len, p, &tgt);
    if (!rc)
        rc = str_at(v->buf, v->len, tgt, out);
    if (rc) {
        out->data = "";
        out->len = 0;
    }
    return rc;
}

int fb_vec_table(const fb_vec_t *v, uint32_t i, fb_table_t *out)
{
    size_t p;
    uint64_t tgt;
    *out = absent_table;
    int rc = vec_elem(v, i, 4, &p);
    if (!rc)
        rc = deref(v->buf, v->len, p, &tgt);
    if (!rc)
        rc = table_at(v->buf, v->len, tgt, out);
    return rc;
}

int fb_vec_struct(const fb_vec_t *v, uint32_t i, fb_struct_t *out)
{
    size_t p;
    out->p = NULL;
    out->size = 0;
    int rc = vec_elem(v, i, v->elem_size, &p);
    if (!rc) {
        out->p = v->buf + p;
        out->size = v->elem_size;
    }
    return rc;
}

/* Struct members: the struct's extent was validated when it was located, so
 * only the caller's offset needs checking. */
static int struct_member(const fb_struct_t *s, size_t off, size_t size, const uint8_t **p)
{
    static const uint8_t zeros[8];
    *p = zeros;
    if (!s->p)
        return 0;
    if (off > s->size || s->size - off < size)
        return -EINVAL;
    *p = s->p + off;
    return 0;
}

int fb_struct_bool(const fb_struct_t *s, size_t off, bool *out)
{
    const uint8_t *p;
    int rc = struct_member(s, off, 1, &p);
    *out = !rc && *p != 0;
    return rc;
}

int fb_struct_i32(const fb_struct_t *s, size_t off, int32_t *out)
{
    const uint8_t *p;
    int rc = struct_member(s, off, 4, &p);
    *out = rc ? 0 : (int32_t)fb_load_u32(p);
    return rc;
}

int fb_struct_u32(const fb_struct_t *s, size_t off, uint32_t *out)
{
    const uint8_t *p;
    int rc = struct_member(s, off, 4, &p);
    *out = rc ? 0 : fb_load_u32(p);
    return rc;
}

int fb_struct_i64(const fb_struct_t *s, size_t off, int64_t *out)
{
    const uint8_t *p;
    int rc = struct_member(s, off, 8, &p);
    *out = rc ? 0 : (int64_t)fb_load_u64(p);
    return rc;
}

int fb_struct_u64(const fb_struct_t *s, size_t off, uint64_t *out)
{
    const uint8_t *p;
    int rc = struct_member(s, off, 8, &p);
    *out = rc ? 0 : fb_load_u64(p);
    return rc;
}

int fb_struct_f64(const fb_struct_t *s, size_t off, double *out)
{
    const uint8_t *p;
    int rc = struct_member(s, off, 8, &p);
    uint64_t bits = rc ? 0 : fb_load_u64(p);
    memcpy(out, &bits, sizeof *out);
    return rc;
}

/* ======================================================================
 * Builder
 *
 * The buffer fills from its end towards its start, as in the official
 * builders: bytes in use are buf[head, cap), and an object's fb_ref_t is its
 * distance from the end, which stays fixed while the buffer grows and is
 * turned into a forward uoffset when something refers to it.
 * ====================================================================== */

struct fb_builder {
    uint8_t *buf;
    size_t cap;
    size_t head;
    size_t minalign; /* largest alignment used; the finished size honours it */
    int err;
    bool in_table;
    bool finished;
    size_t table_start; /* ref before the table's first field */
    uint32_t *slots;    /* per slot: ref of the field, 0 when unset */
    size_t nslots;      /* highest used slot + 1 */
    size_t slots_cap;
    uint32_t *vtables; /* refs of vtables written so far, for reuse */
    size_t nvtables;
    size_t vtables_cap;
};

static size_t used(const fb_builder_t *b) { return b->cap - b->head; }

static void fail(fb_builder_t *b, int err)
{
    if (!b->err)
        b->err = err;
}

/* Ensures n free bytes before head, moving the used bytes to the end of a
 * larger allocation. */
static bool reserve(fb_builder_t *b, size_t n)
{
    if (b->err)
        return false;
    if (b->head >= n)
        return true;
    size_t need = used(b) + n;
    if (n > FB_MAX_BUFFER || need > FB_MAX_BUFFER) {
        fail(b, CR_ETOOBIG);
        return false;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    uint8_t *nb = malloc(cap);
    if (!nb) {
        fail(b, -ENOMEM);
        return false;
    }
    size_t u = used(b);
    if (u)
        memcpy(nb + cap - u, b->buf + b->head, u);
    free(b->buf);
    b->buf = nb;
    b->head = cap - u;
    b->cap = cap;
    return true;
}

/* Pads so that after `additional` more bytes, a write of `size` bytes lands
 * aligned to size (relative to the end, hence to the finished start once the
 * total is padded to minalign), and reserves room for it all. */
static bool prep(fb_builder_t *b, size_t size, size_t additional)
{
    if (b->err)
        return false;
    if (size > b->minalign)
        b->minalign = size;
    size_t pad = (size - ((used(b) + additional) % size)) % size;
    if (additional > FB_MAX_BUFFER || !reserve(b, pad + size + additional))
        return false;
    b->head -= pad;
    memset(b->buf + b->head, 0, pad);
    return true;
}

/* Callers have reserved the room. */
static void place(fb_builder_t *b, const void *p, size_t n)
{
    b->head -= n;
    if (n)
        memcpy(b->buf + b->head, p, n);
}

static void place_u32(fb_builder_t *b, uint32_t v)
{
    b->head -= 4;
    fb_store_u32(b->buf + b->head, v);
}

static bool usable(fb_builder_t *b, bool want_table)
{
    if (b->err)
        return false;
    if (b->finished || b->in_table != want_table) {
        fail(b, -EINVAL);
        return false;
    }
    return true;
}

/* The uoffset from the slot about to be written (at used + 4 after the
 * write) to ref. */
static bool ref_ok(fb_builder_t *b, fb_ref_t ref)
{
    if (!ref || ref > used(b)) {
        fail(b, -EINVAL);
        return false;
    }
    return true;
}

fb_builder_t *fb_builder_create(size_t initial_cap)
{
    fb_builder_t *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->minalign = 1;
    if (initial_cap && !reserve(b, initial_cap > FB_MAX_BUFFER ? FB_MAX_BUFFER : initial_cap)) {
        free(b);
        return NULL;
    }
    return b;
}

void fb_builder_destroy(fb_builder_t *b)
{
    if (!b)
        return;
    free(b->buf);
    free(b->slots);
    free(b->vtables);
    free(b);
}

void fb_builder_reset(fb_builder_t *b)
{
    b->head = b->cap;
    b->minalign = 1;
    b->err = 0;
    b->in_table = false;
    b->finished = false;
    b->nslots = 0;
    b->nvtables = 0;
}

int fb_builder_error(const fb_builder_t *b) { return b->err; }

fb_ref_t fb_create_string(fb_builder_t *b, const void *data, size_t len)
{
    if (!usable(b, false))
        return 0;
    if (len > FB_MAX_BUFFER) {
        fail(b, CR_ETOOBIG);
        return 0;
    }
    if (!prep(b, 4, len + 1))
        return 0;
    static const uint8_t nul;
    place(b, &nul, 1);
    place(b, data, len);
    place_u32(b, (uint32_t)len);
    return (fb_ref_t)used(b);
}

fb_ref_t fb_create_string_cstr(fb_builder_t *b, const char *s)
{
    return fb_create_string(b, s, strlen(s));
}

/* Opens a vector of count elements: room for the elements and the length,
 * with the length 4-aligned and the elements aligned to align. */
static bool vec_start(fb_builder_t *b, size_t count, size_t elem_size, size_t align,
                      size_t *bytes)
{
    if (!usable(b, false))
        return false;
    if (!elem_size || !valid_align(align) || count > UINT32_MAX) {
        fail(b, -EINVAL);
        return false;
    }
    if (count > FB_MAX_BUFFER / elem_size) {
        fail(b, CR_ETOOBIG);
        return false;
    }
    *bytes = count * elem_size;
    return prep(b, 4, *bytes) && prep(b, align, *bytes);
}

fb_ref_t fb_create_vec_scalar(fb_builder_t *b, const void *elems, size_t count, size_t elem_size)
{
    size_t bytes;
    if (elem_size != 1 && elem_size != 2 && elem_size != 4 && elem_size != 8) {
        fail(b, -EINVAL);
        return 0;
    }
    if (!vec_start(b, count, elem_size, elem_size, &bytes))
        return 0;
    /* Element by element so the wire order is little-endian whatever the
     * host's. */
    const uint8_t *src = elems;
    b->head -= bytes;
    uint8_t *dst = b->buf + b->head;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *s = src + i * elem_size;
        uint8_t *d = dst + i * elem_size;
        switch (elem_size) {
        case 1: *d = *s; break;
        case 2: { uint16_t v; memcpy(&v, s, 2); fb_store_u16(d, v); break; }
        case 4: { uint32_t v; memcpy(&v, s, 4); fb_store_u32(d, v); break; }
        default: { uint64_t v; memcpy(&v, s, 8); fb_store_u64(d, v); break; }
        }
    }
    place_u32(b, (uint32_t)count);
    return (fb_ref_t)used(b);
}

fb_ref_t fb_create_vec_ref(fb_builder_t *b, const fb_ref_t *refs, size_t count)
{
    size_t bytes;
    if (!vec_start(b, count, 4, 4, &bytes))
        return 0;
    for (size_t i = count; i-- > 0;) {
        if (!ref_ok(b, refs[i]))
            return 0;
        place_u32(b, (uint32_t)(used(b) + 4 - refs[i]));
    }
    place_u32(b, (uint32_t)count);
    return (fb_ref_t)used(b);
}

fb_ref_t fb_create_vec_struct(fb_builder_t *b, const void *elems, size_t count, size_t size,
                              size_t align)
{
    size_t bytes;
    if (size % (align ? align : 1)) {
        fail(b, -EINVAL);
        return 0;
    }
    if (!vec_start(b, count, size, align, &bytes))
        return 0;
    place(b, elems, bytes);
    place_u32(b, (uint32_t)count);
    return (fb_ref_t)used(b);
}

fb_ref_t fb_create_vec_nested(fb_builder_t *b, const uint8_t *buf, size_t len)
{
    size_t bytes;
    /* 8 covers every scalar a nested buffer can hold. */
    if (!vec_start(b, len, 1, 8, &bytes))
        return 0;
    place(b, buf, bytes);
    place_u32(b, (uint32_t)len);
    return (fb_ref_t)used(b);
}

void fb_start_table(fb_builder_t *b)
{
    if (!usable(b, false))
        return;
    b->in_table = true;
    b->nslots = 0;
    b->table_start = used(b);
}

/* Records that slot's field now starts at the current head. */
static void set_slot(fb_builder_t *b, unsigned slot)
{
    if (slot >= b->slots_cap) {
        size_t cap = b->slots_cap ? b->slots_cap : 16;
        while (cap <= slot)
            cap *= 2;
        uint32_t *s = realloc(b->slots, cap * sizeof *s);
        if (!s) {
            fail(b, -ENOMEM);
            return;
        }
        b->slots = s;
        b->slots_cap = cap;
    }
    while (b->nslots <= slot)
        b->slots[b->nslots++] = 0;
    b->slots[slot] = (uint32_t)used(b);
}

/* Validates a field add and aligns for size bytes. */
static bool field_start(fb_builder_t *b, unsigned slot, size_t size, size_t align)
{
    if (!usable(b, true))
        return false;
    if (slot > FB_MAX_SLOT) {
        fail(b, -EINVAL);
        return false;
    }
    return prep(b, align, size);
}

static void add_raw(fb_builder_t *b, unsigned slot, uint64_t raw, size_t size)
{
    if (!field_start(b, slot, size, size))
        return;
    b->head -= size;
    uint8_t *d = b->buf + b->head;
    switch (size) {
    case 1: *d = (uint8_t)raw; break;
    case 2: fb_store_u16(d, (uint16_t)raw); break;
    case 4: fb_store_u32(d, (uint32_t)raw); break;
    default: fb_store_u64(d, raw); break;
    }
    set_slot(b, slot);
}

#define FB_ADD_INT(name, type, utype)                                                    \
    void fb_add_##name(fb_builder_t *b, unsigned slot, type v, type dflt)                \
    {                                                                                    \
        if (v != dflt)                                                                   \
            add_raw(b, slot, (uint64_t)(utype)v, sizeof(type));                          \
        else                                                                             \
            (void)usable(b, true);                                                       \
    }

FB_ADD_INT(i8, int8_t, uint8_t)
FB_ADD_INT(u8, uint8_t, uint8_t)
FB_ADD_INT(i16, int16_t, uint16_t)
FB_ADD_INT(u16, uint16_t, uint16_t)
FB_ADD_INT(i32, int32_t, uint32_t)
FB_ADD_INT(u32, uint32_t, uint32_t)
FB_ADD_INT(i64, int64_t, uint64_t)
FB_ADD_INT(u64, uint64_t, uint64_t)

void fb_add_bool(fb_builder_t *b, unsigned slot, bool v, bool dflt)
{
    if (v != dflt)
        add_raw(b, slot, v ? 1 : 0, 1);
    else
        (void)usable(b, true);
}

void fb_add_f32(fb_builder_t *b, unsigned slot, float v, float dflt)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    if (v != dflt)
        add_raw(b, slot, bits, 4);
    else
        (void)usable(b, true);
}

void fb_add_f64(fb_builder_t *b, unsigned slot, double v, double dflt)
{
    uint64_t bits;
    memcpy(&bits, &v, 8);
    if (v != dflt)
        add_raw(b, slot, bits, 8);
    else
        (void)usable(b, true);
}

void fb_add_ref(fb_builder_t *b, unsigned slot, fb_ref_t ref)
{
    if (!field_start(b, slot, 4, 4) || !ref_ok(b, ref))
        return;
    place_u32(b, (uint32_t)(used(b) + 4 - ref));
    set_slot(b, slot);
}

void fb_add_struct(fb_builder_t *b, unsigned slot, const void *data, size_t size, size_t align)
{
    if (!usable(b, true))
        return;
    if (!size || size > 0xffff || !valid_align(align) || size % align) {
        fail(b, -EINVAL);
        return;
    }
    if (!field_start(b, slot, size, align))
        return;
    place(b, data, size);
    set_slot(b, slot);
}

fb_ref_t fb_end_table(fb_builder_t *b)
{
    if (!usable(b, true))
        return 0;
    b->in_table = false;
    /* The soffset to the vtable, patched once the vtable's place is known. */
    if (!prep(b, 4, 0))
        return 0;
    place_u32(b, 0);
    size_t obj = used(b);

    size_t n = b->nslots;
    while (n > 0 && !b->slots[n - 1])
        n--;
    size_t vt_len = 4 + 2 * n;
    size_t obj_size = obj - b->table_start;
    if (vt_len > 0xffff || obj_size > 0xffff) {
        fail(b, CR_ETOOBIG);
        return 0;
    }
    /* FB_MAX_SLOT bounds n, so the vtable fits on the stack. */
    uint8_t vt[4 + 2 * (FB_MAX_SLOT + 1)];
    fb_store_u16(vt, (uint16_t)vt_len);
    fb_store_u16(vt + 2, (uint16_t)obj_size);
    for (size_t i = 0; i < n; i++)
        fb_store_u16(vt + 4 + 2 * i, (uint16_t)(b->slots[i] ? obj - b->slots[i] : 0));

    size_t vt_ref = 0;
    for (size_t i = 0; i < b->nvtables && !vt_ref; i++) {
        const uint8_t *old = b->buf + b->cap - b->vtables[i];
        if (fb_load_u16(old) == vt_len && !memcmp(old, vt, vt_len))
            vt_ref = b->vtables[i];
    }
    if (!vt_ref) {
        if (!reserve(b, vt_len))
            return 0;
        if (b->nvtables == b->vtables_cap) {
            size_t cap = b->vtables_cap ? b->vtables_cap * 2 : 16;
            uint32_t *v = realloc(b->vtables, cap * sizeof *v);
            if (!v) {
                fail(b, -ENOMEM);
                return 0;
            }
            b->vtables = v;
            b->vtables_cap = cap;
        }
        place(b, vt, vt_len);
        vt_ref = used(b);
        b->vtables[b->nvtables++] = (uint32_t)vt_ref;
    }
    /* soffset = table position - vtable position, both measured from the
     * start; in refs (measured from the end) the signs swap.  A reused
     * vtable lies after the table, giving a negative soffset. */
    int64_t soff = (int64_t)vt_ref - (int64_t)obj;
    fb_store_u32(b->buf + b->cap - obj, (uint32_t)(int32_t)soff);
    return (fb_ref_t)obj;
}

int fb_builder_finish(fb_builder_t *b, fb_ref_t root, const uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (usable(b, false) && ref_ok(b, root) && prep(b, b->minalign, 4)) {
        place_u32(b, (uint32_t)(used(b) + 4 - root));
        b->finished = true;
        *out = b->buf + b->head;
        *out_len = used(b);
    }
    return b->err;
}
