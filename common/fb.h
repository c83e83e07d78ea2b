/* A small, bounds-checked FlatBuffers reader and builder.
 *
 * Ray's raylet and plasma sockets carry FlatBuffers payloads.  Debian ships
 * no flatcc, and the schemas involved are few and flat, so craylet reads and
 * writes them by slot: a field's index in its table's declaration order
 * (slot 0 is the first field declared in the .fbs file).
 *
 * Reading.  Every byte handed to the reader is untrusted.  Nothing is
 * validated up front; instead each accessor checks exactly what it touches
 * (the uoffset, the vtable and its size, the field's extent within the table,
 * alignment relative to the buffer start as the format requires, string and
 * vector lengths, the NUL after a string) and returns 0 or CR_EBADMSG.  Values
 * come back through out parameters and every accessor is marked
 * warn_unused_result, so an unchecked read does not compile quietly; on
 * failure the out parameter still holds a safe value (the default, an empty
 * string, an empty vector or an absent table), never garbage.  Reads are lazy
 * and non-recursive, so a hostile buffer costs at most the work the caller
 * asks for.
 *
 * An absent field reads as its default: scalars as the given default, a
 * string as "" (length 0), a vector as empty, a table or struct as absent
 * (fb_table_present()/fb_struct_present() say which; reads from an absent
 * table yield defaults).  fb_has() tells absent from present-but-default.
 *
 * Handles (fb_table_t, fb_vec_t, fb_str_t, fb_struct_t) are small values that
 * borrow the caller's buffer: they stay valid as long as that buffer does and
 * need no freeing.  The buffer need not be aligned in memory; all loads are
 * bytewise little-endian.
 *
 * Building.  fb_builder_t writes bottom-up like the official builders: create
 * strings, vectors and child tables first, then the tables that refer to them,
 * then fb_builder_finish() with the root.  Objects are named by fb_ref_t
 * (their offset from the end of the buffer; 0 is never a valid object).  The
 * builder keeps a sticky error: after any failure (misuse, size limit, out of
 * memory) later calls do nothing and return 0, and fb_builder_finish()
 * reports the first error, so a sequence of calls needs one check at the end.
 * Vtables are deduplicated.  Scalars equal to their default are omitted, as
 * the official builders do without force_defaults.  Output alignment follows
 * the format, and the result is readable by the official libraries. */
#ifndef CRAYLET_COMMON_FB_H
#define CRAYLET_COMMON_FB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define FB_MUST_CHECK __attribute__((warn_unused_result))

/* The format addresses at most 2 GiB (signed 32-bit offsets). */
#define FB_MAX_BUFFER ((size_t)0x7fffffff)
/* Highest slot the builder accepts; real schemas stay far below it. */
#define FB_MAX_SLOT 1023u

/* ---- little-endian helpers (also for laying out structs by hand) ---- */

static inline uint16_t fb_load_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}
static inline uint32_t fb_load_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t fb_load_u64(const uint8_t *p)
{
    return (uint64_t)fb_load_u32(p) | (uint64_t)fb_load_u32(p + 4) << 32;
}
static inline void fb_store_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void fb_store_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void fb_store_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- reader ---- */

typedef struct {
    const uint8_t *buf; /* NULL: absent table */
    size_t len;
    size_t pos;      /* the table's soffset */
    size_t vt;       /* its vtable */
    uint16_t vt_len; /* vtable bytes, header included */
    uint16_t size;   /* inline table bytes, soffset included */
} fb_table_t;

typedef struct {
    const char *data; /* never NULL; NUL-terminated, may hold inner NULs */
    uint32_t len;
} fb_str_t;

typedef struct {
    const uint8_t *buf;
    size_t len;
    size_t data; /* first element */
    uint32_t count;
    uint32_t elem_size;
} fb_vec_t;

typedef struct {
    const uint8_t *p; /* NULL: absent struct */
    size_t size;
} fb_struct_t;

/* The root table of a finished buffer (no size prefix; a file identifier, if
 * any, is simply skipped by the root offset). */
int fb_root(const uint8_t *buf, size_t len, fb_table_t *out) FB_MUST_CHECK;

static inline bool fb_table_present(const fb_table_t *t) { return t->buf != NULL; }
/* Whether the slot is set in the vtable (a default-valued scalar usually is
 * not).  False for absent tables. */
bool fb_has(const fb_table_t *t, unsigned slot);

int fb_read_bool(const fb_table_t *t, unsigned slot, bool dflt, bool *out) FB_MUST_CHECK;
int fb_read_i8(const fb_table_t *t, unsigned slot, int8_t dflt, int8_t *out) FB_MUST_CHECK;
int fb_read_u8(const fb_table_t *t, unsigned slot, uint8_t dflt, uint8_t *out) FB_MUST_CHECK;
int fb_read_i16(const fb_table_t *t, unsigned slot, int16_t dflt, int16_t *out) FB_MUST_CHECK;
int fb_read_u16(const fb_table_t *t, unsigned slot, uint16_t dflt, uint16_t *out) FB_MUST_CHECK;
int fb_read_i32(const fb_table_t *t, unsigned slot, int32_t dflt, int32_t *out) FB_MUST_CHECK;
int fb_read_u32(const fb_table_t *t, unsigned slot, uint32_t dflt, uint32_t *out) FB_MUST_CHECK;
int fb_read_i64(const fb_table_t *t, unsigned slot, int64_t dflt, int64_t *out) FB_MUST_CHECK;
int fb_read_u64(const fb_table_t *t, unsigned slot, uint64_t dflt, uint64_t *out) FB_MUST_CHECK;
int fb_read_f32(const fb_table_t *t, unsigned slot, float dflt, float *out) FB_MUST_CHECK;
int fb_read_f64(const fb_table_t *t, unsigned slot, double dflt, double *out) FB_MUST_CHECK;

/* A string (or any bytes stored as a string, such as Ray's binary IDs). */
int fb_read_str(const fb_table_t *t, unsigned slot, fb_str_t *out) FB_MUST_CHECK;
/* A child table; absent reads as an absent table (not an error). */
int fb_read_table(const fb_table_t *t, unsigned slot, fb_table_t *out) FB_MUST_CHECK;
/* An inline struct of the given size and alignment (1, 2, 4, 8 or 16). */
int fb_read_struct(const fb_table_t *t, unsigned slot, size_t size, size_t align,
                   fb_struct_t *out) FB_MUST_CHECK;
/* A vector of scalars; elem_size is 1, 2, 4 or 8 (also the alignment). */
int fb_read_vec_scalar(const fb_table_t *t, unsigned slot, size_t elem_size,
                       fb_vec_t *out) FB_MUST_CHECK;
/* A vector of strings or of tables (4-byte offsets); elements are checked
 * when fetched with fb_vec_str()/fb_vec_table(). */
int fb_read_vec_ref(const fb_table_t *t, unsigned slot, fb_vec_t *out) FB_MUST_CHECK;
/* A vector of inline structs. */
int fb_read_vec_struct(const fb_table_t *t, unsigned slot, size_t size, size_t align,
                       fb_vec_t *out) FB_MUST_CHECK;
/* A [ubyte] field holding a nested flatbuffer: its root table, with offsets
 * checked against the nested bytes alone.  Absent reads as an absent table. */
int fb_read_nested(const fb_table_t *t, unsigned slot, fb_table_t *out) FB_MUST_CHECK;

static inline uint32_t fb_vec_len(const fb_vec_t *v) { return v->count; }
/* The raw element bytes (count * elem_size of them); for [ubyte] payloads. */
static inline const uint8_t *fb_vec_data(const fb_vec_t *v)
{
    return v->buf ? v->buf + v->data : (const uint8_t *)"";
}

/* Element i.  An index past the end or a getter of the wrong width for the
 * vector returns -EINVAL (a caller bug, not bad input) and zero/empty out. */
int fb_vec_bool(const fb_vec_t *v, uint32_t i, bool *out) FB_MUST_CHECK;
int fb_vec_i8(const fb_vec_t *v, uint32_t i, int8_t *out) FB_MUST_CHECK;
int fb_vec_u8(const fb_vec_t *v, uint32_t i, uint8_t *out) FB_MUST_CHECK;
int fb_vec_i16(const fb_vec_t *v, uint32_t i, int16_t *out) FB_MUST_CHECK;
int fb_vec_u16(const fb_vec_t *v, uint32_t i, uint16_t *out) FB_MUST_CHECK;
int fb_vec_i32(const fb_vec_t *v, uint32_t i, int32_t *out) FB_MUST_CHECK;
int fb_vec_u32(const fb_vec_t *v, uint32_t i, uint32_t *out) FB_MUST_CHECK;
int fb_vec_i64(const fb_vec_t *v, uint32_t i, int64_t *out) FB_MUST_CHECK;
int fb_vec_u64(const fb_vec_t *v, uint32_t i, uint64_t *out) FB_MUST_CHECK;
int fb_vec_f32(const fb_vec_t *v, uint32_t i, float *out) FB_MUST_CHECK;
int fb_vec_f64(const fb_vec_t *v, uint32_t i, double *out) FB_MUST_CHECK;
int fb_vec_str(const fb_vec_t *v, uint32_t i, fb_str_t *out) FB_MUST_CHECK;
int fb_vec_table(const fb_vec_t *v, uint32_t i, fb_table_t *out) FB_MUST_CHECK;
int fb_vec_struct(const fb_vec_t *v, uint32_t i, fb_struct_t *out) FB_MUST_CHECK;

static inline bool fb_struct_present(const fb_struct_t *s) { return s->p != NULL; }
/* A struct member at byte offset off (the caller knows the layout).  An
 * absent struct reads as zeros; off beyond the struct is -EINVAL. */
int fb_struct_bool(const fb_struct_t *s, size_t off, bool *out) FB_MUST_CHECK;
int fb_struct_i32(const fb_struct_t *s, size_t off, int32_t *out) FB_MUST_CHECK;
int fb_struct_u32(const fb_struct_t *s, size_t off, uint32_t *out) FB_MUST_CHECK;
int fb_struct_i64(const fb_struct_t *s, size_t off, int64_t *out) FB_MUST_CHECK;
int fb_struct_u64(const fb_struct_t *s, size_t off, uint64_t *out) FB_MUST_CHECK;
int fb_struct_f64(const fb_struct_t *s, size_t off, double *out) FB_MUST_CHECK;

/* ---- builder ---- */

typedef uint32_t fb_ref_t;
typedef struct fb_builder fb_builder_t;

/* initial_cap is a hint (0 picks a small default).  Returns NULL only if
 * the allocator does. */
fb_builder_t *fb_builder_create(size_t initial_cap);
void fb_builder_destroy(fb_builder_t *b);
/* Forget everything built (and any error), keeping the memory. */
void fb_builder_reset(fb_builder_t *b);
/* The sticky error: 0, -EINVAL (misuse), -ENOMEM or CR_ETOOBIG (> 2 GiB or a
 * table beyond the 64 KiB inline limit). */
int fb_builder_error(const fb_builder_t *b);

/* Strings, vectors and nested buffers may not be created while a table is
 * open.  Each returns the object's reference, or 0 after an error. */
fb_ref_t fb_create_string(fb_builder_t *b, const void *data, size_t len);
fb_ref_t fb_create_string_cstr(fb_builder_t *b, const char *s);
/* count elements of elem_size (1, 2, 4 or 8) bytes in host order. */
fb_ref_t fb_create_vec_scalar(fb_builder_t *b, const void *elems, size_t count, size_t elem_size);
/* A vector of strings or tables built earlier. */
fb_ref_t fb_create_vec_ref(fb_builder_t *b, const fb_ref_t *refs, size_t count);
/* count structs of size bytes each, already in little-endian wire layout. */
fb_ref_t fb_create_vec_struct(fb_builder_t *b, const void *elems, size_t count, size_t size,
                              size_t align);
/* A [ubyte] vector holding a finished flatbuffer, aligned so the nested
 * buffer's own alignment is preserved in memory too. */
fb_ref_t fb_create_vec_nested(fb_builder_t *b, const uint8_t *buf, size_t len);

void fb_start_table(fb_builder_t *b);
void fb_add_bool(fb_builder_t *b, unsigned slot, bool v, bool dflt);
void fb_add_i8(fb_builder_t *b, unsigned slot, int8_t v, int8_t dflt);
void fb_add_u8(fb_builder_t *b, unsigned slot, uint8_t v, uint8_t dflt);
void fb_add_i16(fb_builder_t *b, unsigned slot, int16_t v, int16_t dflt);
void fb_add_u16(fb_builder_t *b, unsigned slot, uint16_t v, uint16_t dflt);
void fb_add_i32(fb_builder_t *b, unsigned slot, int32_t v, int32_t dflt);
void fb_add_u32(fb_builder_t *b, unsigned slot, uint32_t v, uint32_t dflt);
void fb_add_i64(fb_builder_t *b, unsigned slot, int64_t v, int64_t dflt);
void fb_add_u64(fb_builder_t *b, unsigned slot, uint64_t v, uint64_t dflt);
void fb_add_f32(fb_builder_t *b, unsigned slot, float v, float dflt);
void fb_add_f64(fb_builder_t *b, unsigned slot, double v, double dflt);
/* A string, vector or table field. */
void fb_add_ref(fb_builder_t *b, unsigned slot, fb_ref_t ref);
/* An inline struct field: size bytes in little-endian wire layout. */
void fb_add_struct(fb_builder_t *b, unsigned slot, const void *data, size_t size, size_t align);
fb_ref_t fb_end_table(fb_builder_t *b);

/* Writes the root offset and hands out the finished bytes, owned by the
 * builder and valid until the next reset or destroy.  Returns the sticky
 * error if any; further building needs fb_builder_reset(). */
int fb_builder_finish(fb_builder_t *b, fb_ref_t root, const uint8_t **out, size_t *out_len)
    FB_MUST_CHECK;

#endif
