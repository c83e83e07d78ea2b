/* FlatBuffers reader/builder: round trips, builder rules, and hostile input.
 *
 * Malformed buffers are always copied into an allocation of exactly their
 * length, so under ASan any read past the end is caught rather than landing
 * in slack. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fb.h"

/* ---- a test schema covering every kind of field ----
 *
 * table Address { node_id:string; ip_address:string; port:int; worker_id:string; }
 * struct Spec { a:int; b:ulong; c:bool; }      // 24 bytes, align 8
 * table Kitchen {
 *   0 b:bool  1 i8:byte  2 u8:ubyte  3 i16:short  4 u16:ushort  5 i32:int
 *   6 u32:uint  7 i64:long  8 u64:ulong  9 f32:float  10 f64:double
 *   11 name:string  12 tags:[string]  13 nums:[long]  14 addrs:[Address]
 *   15 child:Address  16 spec:Spec  17 specs:[Spec]
 *   18 nested:[ubyte] (nested_flatbuffer: Address)  19 bytes:[ubyte]
 *   20 doubles:[double]
 * } */
enum { K_B, K_I8, K_U8, K_I16, K_U16, K_I32, K_U32, K_I64, K_U64, K_F32, K_F64, K_NAME, K_TAGS,
       K_NUMS, K_ADDRS, K_CHILD, K_SPEC, K_SPECS, K_NESTED, K_BYTES, K_DOUBLES };
enum { A_NODE, A_IP, A_PORT, A_WORKER };
#define SPEC_SIZE 24
#define SPEC_ALIGN 8

static void spec_pack(uint8_t out[SPEC_SIZE], int32_t a, uint64_t b, bool c)
{
    memset(out, 0, SPEC_SIZE);
    fb_store_u32(out, (uint32_t)a);
    fb_store_u64(out + 8, b);
    out[16] = c;
}

static fb_ref_t build_address(fb_builder_t *b, const char *node, const char *ip, int port)
{
    fb_ref_t n = fb_create_string_cstr(b, node);
    fb_ref_t i = fb_create_string_cstr(b, ip);
    fb_start_table(b);
    fb_add_ref(b, A_NODE, n);
    fb_add_ref(b, A_IP, i);
    fb_add_i32(b, A_PORT, port, 0);
    return fb_end_table(b);
}

static const char *const tags[] = {"alpha", "", "gamma with a longer string"};
static const int64_t nums[] = {1, -2, INT64_MAX, INT64_MIN};
static const double doubles[] = {0.5, -1e300, 3.25};

/* Builds a Kitchen with every field set to a non-default value. */
static void build_kitchen(fb_builder_t *b, const uint8_t **buf, size_t *len)
{
    /* The nested Address is a complete buffer of its own. */
    fb_builder_t *nb = fb_builder_create(0);
    cr_assert(nb);
    fb_ref_t nested_root = build_address(nb, "nested-node", "10.0.0.9", 7);
    const uint8_t *nbuf;
    size_t nlen;
    cr_assert_eq(fb_builder_finish(nb, nested_root, &nbuf, &nlen), 0);

    fb_ref_t name = fb_create_string_cstr(b, "kitchen");
    fb_ref_t t[3];
    for (int i = 0; i < 3; i++)
        t[i] = fb_create_string_cstr(b, tags[i]);
    fb_ref_t tagv = fb_create_vec_ref(b, t, 3);
    fb_ref_t numv = fb_create_vec_scalar(b, nums, 4, 8);
    fb_ref_t a[2] = {build_address(b, "n0", "1.1.1.1", 1), build_address(b, "n1", "2.2.2.2", 2)};
    fb_ref_t addrv = fb_create_vec_ref(b, a, 2);
    fb_ref_t child = build_address(b, "child", "3.3.3.3", 3);
    uint8_t specs[2 * SPEC_SIZE];
    spec_pack(specs, 10, 20, true);
    spec_pack(specs + SPEC_SIZE, -10, UINT64_MAX, false);
    fb_ref_t specv = fb_create_vec_struct(b, specs, 2, SPEC_SIZE, SPEC_ALIGN);
    fb_ref_t nestv = fb_create_vec_nested(b, nbuf, nlen);
    static const uint8_t raw[] = {0, 1, 2, 0xff};
    fb_ref_t bytev = fb_create_vec_scalar(b, raw, sizeof raw, 1);
    fb_ref_t dblv = fb_create_vec_scalar(b, doubles, 3, 8);
    fb_builder_destroy(nb);

    uint8_t spec[SPEC_SIZE];
    spec_pack(spec, 7, 0x0102030405060708ULL, true);
    fb_start_table(b);
    fb_add_bool(b, K_B, true, false);
    fb_add_i8(b, K_I8, -5, 0);
    fb_add_u8(b, K_U8, 250, 0);
    fb_add_i16(b, K_I16, -30000, 0);
    fb_add_u16(b, K_U16, 60000, 0);
    fb_add_i32(b, K_I32, -2000000000, 0);
    fb_add_u32(b, K_U32, 4000000000u, 0);
    fb_add_i64(b, K_I64, -9000000000000000000LL, 0);
    fb_add_u64(b, K_U64, 18000000000000000000ULL, 0);
    fb_add_f32(b, K_F32, 1.5f, 0);
    fb_add_f64(b, K_F64, -2.25, 0);
    fb_add_ref(b, K_NAME, name);
    fb_add_ref(b, K_TAGS, tagv);
    fb_add_ref(b, K_NUMS, numv);
    fb_add_ref(b, K_ADDRS, addrv);
    fb_add_ref(b, K_CHILD, child);
    fb_add_struct(b, K_SPEC, spec, SPEC_SIZE, SPEC_ALIGN);
    fb_add_ref(b, K_SPECS, specv);
    fb_add_ref(b, K_NESTED, nestv);
    fb_add_ref(b, K_BYTES, bytev);
    fb_add_ref(b, K_DOUBLES, dblv);
    fb_ref_t root = fb_end_table(b);
    cr_assert_eq(fb_builder_finish(b, root, buf, len), 0);
}

static uint8_t *dup_exact(const uint8_t *src, size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    cr_assert(p);
    if (n)
        memcpy(p, src, n);
    return p;
}

static bool str_is(fb_str_t s, const char *want)
{
    return s.len == strlen(want) && !memcmp(s.data, want, s.len) && s.data[s.len] == 0;
}

static void check_address(const fb_table_t *t, const char *node, const char *ip, int port)
{
    fb_str_t s;
    int32_t p;
    cr_assert(fb_table_present(t));
    cr_assert_eq(fb_read_str(t, A_NODE, &s), 0);
    cr_assert(str_is(s, node));
    cr_assert_eq(fb_read_str(t, A_IP, &s), 0);
    cr_assert(str_is(s, ip));
    cr_assert_eq(fb_read_i32(t, A_PORT, -1, &p), 0);
    cr_assert_eq(p, port);
    cr_assert_eq(fb_read_str(t, A_WORKER, &s), 0);
    cr_assert(str_is(s, ""));
    cr_assert_not(fb_has(t, A_WORKER));
}

Test(fb, kitchen_round_trip)
{
    fb_builder_t *b = fb_builder_create(0);
    const uint8_t *buf;
    size_t len;
    build_kitchen(b, &buf, &len);
    cr_assert_eq(len % 8, 0, "size %zu not a multiple of the largest alignment", len);

    fb_table_t t;
    cr_assert_eq(fb_root(buf, len, &t), 0);
    bool bo;
    int8_t i8;
    uint8_t u8;
    int16_t i16;
    uint16_t u16;
    int32_t i32;
    uint32_t u32;
    int64_t i64;
    uint64_t u64;
    float f32;
    double f64;
    cr_assert_eq(fb_read_bool(&t, K_B, false, &bo), 0);
    cr_assert(bo);
    cr_assert_eq(fb_read_i8(&t, K_I8, 0, &i8), 0);
    cr_assert_eq(i8, -5);
    cr_assert_eq(fb_read_u8(&t, K_U8, 0, &u8), 0);
    cr_assert_eq(u8, 250);
    cr_assert_eq(fb_read_i16(&t, K_I16, 0, &i16), 0);
    cr_assert_eq(i16, -30000);
    cr_assert_eq(fb_read_u16(&t, K_U16, 0, &u16), 0);
    cr_assert_eq(u16, 60000);
    cr_assert_eq(fb_read_i32(&t, K_I32, 0, &i32), 0);
    cr_assert_eq(i32, -2000000000);
    cr_assert_eq(fb_read_u32(&t, K_U32, 0, &u32), 0);
    cr_assert_eq(u32, 4000000000u);
    cr_assert_eq(fb_read_i64(&t, K_I64, 0, &i64), 0);
    cr_assert_eq(i64, -9000000000000000000LL);
    cr_assert_eq(fb_read_u64(&t, K_U64, 0, &u64), 0);
    cr_assert_eq(u64, 18000000000000000000ULL);
    cr_assert_eq(fb_read_f32(&t, K_F32, 0, &f32), 0);
    cr_assert_eq(f32, 1.5f);
    cr_assert_eq(fb_read_f64(&t, K_F64, 0, &f64), 0);
    cr_assert_eq(f64, -2.25);

    fb_str_t s;
    cr_assert_eq(fb_read_str(&t, K_NAME, &s), 0);
    cr_assert(str_is(s, "kitchen"));

    fb_vec_t v;
    cr_assert_eq(fb_read_vec_ref(&t, K_TAGS, &v), 0);
    cr_assert_eq(fb_vec_len(&v), 3);
    for (uint32_t i = 0; i < 3; i++) {
        cr_assert_eq(fb_vec_str(&v, i, &s), 0);
        cr_assert(str_is(s, tags[i]));
    }
    cr_assert_eq(fb_vec_str(&v, 3, &s), -EINVAL);

    cr_assert_eq(fb_read_vec_scalar(&t, K_NUMS, 8, &v), 0);
    cr_assert_eq(fb_vec_len(&v), 4);
    for (uint32_t i = 0; i < 4; i++) {
        cr_assert_eq(fb_vec_i64(&v, i, &i64), 0);
        cr_assert_eq(i64, nums[i]);
    }
    cr_assert_eq(fb_vec_i32(&v, 0, &i32), -EINVAL, "wrong width must be refused");

    cr_assert_eq(fb_read_vec_ref(&t, K_ADDRS, &v), 0);
    cr_assert_eq(fb_vec_len(&v), 2);
    fb_table_t a;
    cr_assert_eq(fb_vec_table(&v, 0, &a), 0);
    check_address(&a, "n0", "1.1.1.1", 1);
    cr_assert_eq(fb_vec_table(&v, 1, &a), 0);
    check_address(&a, "n1", "2.2.2.2", 2);

    cr_assert_eq(fb_read_table(&t, K_CHILD, &a), 0);
    check_address(&a, "child", "3.3.3.3", 3);

    fb_struct_t st;
    cr_assert_eq(fb_read_struct(&t, K_SPEC, SPEC_SIZE, SPEC_ALIGN, &st), 0);
    cr_assert(fb_struct_present(&st));
    cr_assert_eq(fb_struct_i32(&st, 0, &i32), 0);
    cr_assert_eq(i32, 7);
    cr_assert_eq(fb_struct_u64(&st, 8, &u64), 0);
    cr_assert_eq(u64, 0x0102030405060708ULL);
    cr_assert_eq(fb_struct_bool(&st, 16, &bo), 0);
    cr_assert(bo);
    cr_assert_eq(fb_struct_u64(&st, 20, &u64), -EINVAL);

    cr_assert_eq(fb_read_vec_struct(&t, K_SPECS, SPEC_SIZE, SPEC_ALIGN, &v), 0);
    cr_assert_eq(fb_vec_len(&v), 2);
    cr_assert_eq(fb_vec_struct(&v, 1, &st), 0);
    cr_assert_eq(fb_struct_i32(&st, 0, &i32), 0);
    cr_assert_eq(i32, -10);
    cr_assert_eq(fb_struct_u64(&st, 8, &u64), 0);
    cr_assert_eq(u64, UINT64_MAX);
    cr_assert_eq(fb_struct_bool(&st, 16, &bo), 0);
    cr_assert_not(bo);

    cr_assert_eq(fb_read_nested(&t, K_NESTED, &a), 0);
    check_address(&a, "nested-node", "10.0.0.9", 7);

    cr_assert_eq(fb_read_vec_scalar(&t, K_BYTES, 1, &v), 0);
    cr_assert_eq(fb_vec_len(&v), 4);
    cr_assert_eq(memcmp(fb_vec_data(&v), "\x00\x01\x02\xff", 4), 0);
    cr_assert_eq(fb_vec_u8(&v, 3, &u8), 0);
    cr_assert_eq(u8, 0xff);

    cr_assert_eq(fb_read_vec_scalar(&t, K_DOUBLES, 8, &v), 0);
    for (uint32_t i = 0; i < 3; i++) {
        cr_assert_eq(fb_vec_f64(&v, i, &f64), 0);
        cr_assert_eq(f64, doubles[i]);
    }
    fb_builder_destroy(b);
}

Test(fb, defaults_and_absent_fields)
{
    fb_builder_t *b = fb_builder_create(0);
    fb_start_table(b);
    fb_add_i32(b, 0, 5, 5);      /* equal to default: omitted */
    fb_add_bool(b, 1, false, false);
    fb_add_i64(b, 2, 9, 0);
    fb_ref_t root = fb_end_table(b);
    const uint8_t *buf;
    size_t len;
    cr_assert_eq(fb_builder_finish(b, root, &buf, &len), 0);

    fb_table_t t, c;
    cr_assert_eq(fb_root(buf, len, &t), 0);
    cr_assert_not(fb_has(&t, 0));
    cr_assert_not(fb_has(&t, 1));
    cr_assert(fb_has(&t, 2));
    cr_assert_not(fb_has(&t, 500));
    int32_t i32;
    cr_assert_eq(fb_read_i32(&t, 0, 5, &i32), 0);
    cr_assert_eq(i32, 5);
    cr_assert_eq(fb_read_i32(&t, 77, -3, &i32), 0);
    cr_assert_eq(i32, -3);
    fb_str_t s;
    cr_assert_eq(fb_read_str(&t, 9, &s), 0);
    cr_assert(s.data && s.len == 0);
    fb_vec_t v;
    cr_assert_eq(fb_read_vec_ref(&t, 9, &v), 0);
    cr_assert_eq(fb_vec_len(&v), 0);
    cr_assert(fb_vec_data(&v));
    cr_assert_eq(fb_read_table(&t, 9, &c), 0);
    cr_assert_not(fb_table_present(&c));
    /* Reads through an absent table give defaults, not errors. */
    cr_assert_eq(fb_read_i32(&c, 0, 11, &i32), 0);
    cr_assert_eq(i32, 11);
    cr_assert_eq(fb_read_nested(&t, 9, &c), 0);
    cr_assert_not(fb_table_present(&c));
    fb_struct_t st;
    cr_assert_eq(fb_read_struct(&t, 9, 8, 8, &st), 0);
    cr_assert_not(fb_struct_present(&st));
    uint64_t u64 = 1;
    cr_assert_eq(fb_struct_u64(&st, 0, &u64), 0);
    cr_assert_eq(u64, 0);
    fb_builder_destroy(b);
}

Test(fb, empty_table_and_empty_vectors)
{
    fb_builder_t *b = fb_builder_create(0);
    fb_ref_t ev = fb_create_vec_ref(b, NULL, 0);
    fb_ref_t es = fb_create_string(b, NULL, 0);
    fb_start_table(b);
    fb_ref_t empty = fb_end_table(b);
    fb_start_table(b);
    fb_add_ref(b, 0, ev);
    fb_add_ref(b, 1, es);
    fb_add_ref(b, 2, empty);
    fb_ref_t root = fb_end_table(b);
    const uint8_t *buf;
    size_t len;
    cr_assert_eq(fb_builder_finish(b, root, &buf, &len), 0);
    fb_table_t t, c;
    fb_vec_t v;
    fb_str_t s;
    cr_assert_eq(fb_root(buf, len, &t), 0);
    cr_assert_eq(fb_read_vec_ref(&t, 0, &v), 0);
    cr_assert_eq(fb_vec_len(&v), 0);
    cr_assert(fb_has(&t, 0));
    cr_assert_eq(fb_read_str(&t, 1, &s), 0);
    cr_assert(str_is(s, ""));
    cr_assert_eq(fb_read_table(&t, 2, &c), 0);
    cr_assert(fb_table_present(&c));
    cr_assert_not(fb_has(&c, 0));
    fb_builder_destroy(b);
}

Test(fb, vtables_are_shared)
{
    /* Same fields, same widths, no padding differences between them: one
     * vtable serves all ten tables. */
    fb_builder_t *b = fb_builder_create(0);
    fb_ref_t refs[10];
    for (int i = 0; i < 10; i++) {
        fb_start_table(b);
        fb_add_i32(b, 0, i + 1, 0);
        fb_add_i32(b, 1, -(i + 1), 0);
        refs[i] = fb_end_table(b);
    }
    fb_ref_t vec = fb_create_vec_ref(b, refs, 10);
    fb_start_table(b);
    fb_add_ref(b, 0, vec);
    fb_ref_t root = fb_end_table(b);
    const uint8_t *buf;
    size_t len;
    cr_assert_eq(fb_builder_finish(b, root, &buf, &len), 0);
    fb_table_t t, e;
    fb_vec_t v;
    cr_assert_eq(fb_root(buf, len, &t), 0);
    cr_assert_eq(fb_read_vec_ref(&t, 0, &v), 0);
    cr_assert_eq(fb_vec_len(&v), 10);
    size_t first_vt = 0;
    for (uint32_t i = 0; i < 10; i++) {
        int32_t a, c;
        cr_assert_eq(fb_vec_table(&v, i, &e), 0);
        if (i == 0)
            first_vt = e.vt;
        cr_assert_eq(e.vt, first_vt, "table %u has its own vtable", i);
        cr_assert_eq(fb_read_i32(&e, 0, 0, &a), 0);
        cr_assert_eq(fb_read_i32(&e, 1, 0, &c), 0);
        cr_assert_eq(a, (int32_t)i + 1);
        cr_assert_eq(c, -(int32_t)i - 1);
    }
    fb_builder_destroy(b);
}

Test(fb, builder_grows_and_resets)
{
    fb_builder_t *b = fb_builder_create(16);
    char *big = malloc(200000);
    memset(big, 'x', 200000);
    for (int round = 0; round < 2; round++) {
        fb_ref_t s[300];
        for (int i = 0; i < 300; i++) {
            char tmp[32];
            snprintf(tmp, sizeof tmp, "string-%d", i);
            s[i] = fb_create_string_cstr(b, tmp);
        }
        fb_ref_t v = fb_create_vec_ref(b, s, 300);
        fb_ref_t bs = fb_create_string(b, big, 200000);
        fb_start_table(b);
        fb_add_ref(b, 0, v);
        fb_add_ref(b, 1, bs);
        fb_ref_t root = fb_end_table(b);
        const uint8_t *buf;
        size_t len;
        cr_assert_eq(fb_builder_finish(b, root, &buf, &len), 0);
        fb_table_t t;
        fb_vec_t vec;
        fb_str_t str;
        cr_assert_eq(fb_root(buf, len, &t), 0);
        cr_assert_eq(fb_read_vec_ref(&t, 0, &vec), 0);
        cr_assert_eq(fb_vec_len(&vec), 300);
        cr_assert_eq(fb_vec_str(&vec, 299, &str), 0);
        cr_assert(str_is(str, "string-299"));
        cr_assert_eq(fb_read_str(&t, 1, &str), 0);
        cr_assert_eq(str.len, 200000);
        fb_builder_reset(b);
    }
    free(big);
    fb_builder_destroy(b);
}

Test(fb, builder_misuse_is_sticky)
{
    const uint8_t *buf;
    size_t len;
    fb_builder_t *b = fb_builder_create(0);

    /* A string while a table is open. */
    fb_start_table(b);
    cr_assert_eq(fb_create_string_cstr(b, "x"), 0);
    cr_assert_eq(fb_builder_error(b), -EINVAL);
    fb_add_i32(b, 0, 1, 0);
    cr_assert_eq(fb_end_table(b), 0);
    cr_assert_eq(fb_builder_finish(b, 4, &buf, &len), -EINVAL);
    cr_assert_null(buf);

    /* Reset clears it; then fields outside a table. */
    fb_builder_reset(b);
    cr_assert_eq(fb_builder_error(b), 0);
    fb_add_i32(b, 0, 1, 0);
    cr_assert_eq(fb_builder_error(b), -EINVAL);

    /* A null reference, a reference from the future, a slot too high. */
    fb_builder_reset(b);
    fb_start_table(b);
    fb_add_ref(b, 0, 0);
    cr_assert_eq(fb_builder_error(b), -EINVAL);
    fb_builder_reset(b);
    fb_start_table(b);
    fb_add_ref(b, 0, 4096);
    cr_assert_eq(fb_builder_error(b), -EINVAL);
    fb_builder_reset(b);
    fb_start_table(b);
    fb_add_i32(b, FB_MAX_SLOT + 1, 1, 0);
    cr_assert_eq(fb_builder_error(b), -EINVAL);

    /* Nested tables are not allowed; finishing twice is not either. */
    fb_builder_reset(b);
    fb_start_table(b);
    fb_start_table(b);
    cr_assert_eq(fb_builder_error(b), -EINVAL);
    fb_builder_reset(b);
    fb_start_table(b);
    fb_ref_t r = fb_end_table(b);
    cr_assert_eq(fb_builder_finish(b, r, &buf, &len), 0);
    cr_assert_eq(fb_builder_finish(b, r, &buf, &len), -EINVAL);

    /* Bad widths and alignments. */
    fb_builder_reset(b);
    cr_assert_eq(fb_create_vec_scalar(b, "abc", 1, 3), 0);
    cr_assert_eq(fb_builder_error(b), -EINVAL);
    fb_builder_reset(b);
    cr_assert_eq(fb_create_vec_struct(b, "abcdef", 1, 6, 4), 0);
    cr_assert_eq(fb_builder_error(b), -EINVAL);
    fb_builder_destroy(b);
}

Test(fb, builder_alignment_matches_the_format)
{
    /* A 1-byte field before an 8-byte one forces padding; the 8-byte field
     * must end up 8-aligned from the buffer start. */
    fb_builder_t *b = fb_builder_create(0);
    fb_ref_t s = fb_create_string_cstr(b, "abc");
    fb_start_table(b);
    fb_add_u8(b, 0, 1, 0);
    fb_add_i64(b, 1, 2, 0);
    fb_add_i16(b, 2, 3, 0);
    fb_add_ref(b, 3, s);
    fb_add_f64(b, 4, 4.0, 0);
    fb_ref_t root = fb_end_table(b);
    const uint8_t *buf;
    size_t len;
    cr_assert_eq(fb_builder_finish(b, root, &buf, &len), 0);
    cr_assert_eq(len % 8, 0);
    fb_table_t t;
    cr_assert_eq(fb_root(buf, len, &t), 0);
    cr_assert_eq(t.pos % 4, 0);
    size_t off1 = fb_load_u16(buf + t.vt + 4 + 2 * 1);
    size_t off4 = fb_load_u16(buf + t.vt + 4 + 2 * 4);
    cr_assert_eq((t.pos + off1) % 8, 0);
    cr_assert_eq((t.pos + off4) % 8, 0);
    fb_builder_destroy(b);
}

Test(fb, reads_from_unaligned_memory)
{
    fb_builder_t *b = fb_builder_create(0);
    const uint8_t *buf;
    size_t len;
    build_kitchen(b, &buf, &len);
    uint8_t *raw = malloc(len + 1);
    memcpy(raw + 1, buf, len); /* odd address: loads must be bytewise */
    fb_table_t t;
    int64_t i64;
    double f64;
    cr_assert_eq(fb_root(raw + 1, len, &t), 0);
    cr_assert_eq(fb_read_i64(&t, K_I64, 0, &i64), 0);
    cr_assert_eq(i64, -9000000000000000000LL);
    cr_assert_eq(fb_read_f64(&t, K_F64, 0, &f64), 0);
    cr_assert_eq(f64, -2.25);
    free(raw);
    fb_builder_destroy(b);
}

/* ---- malformed input ---- */

/* Touches every field of a Kitchen, including every vector element and the
 * nested buffers; returns how many accesses failed.  Must never crash. */
static int walk_address(const fb_table_t *a)
{
    int errs = 0;
    fb_str_t s;
    int32_t p;
    errs += fb_read_str(a, A_NODE, &s) != 0;
    errs += fb_read_str(a, A_IP, &s) != 0;
    errs += fb_read_i32(a, A_PORT, 0, &p) != 0;
    errs += fb_read_str(a, A_WORKER, &s) != 0;
    /* Whatever came back must be readable through its length and NUL. */
    volatile char sink = s.data[s.len];
    (void)sink;
    return errs;
}

static int walk_kitchen(const uint8_t *buf, size_t len)
{
    fb_table_t t, a;
    if (fb_root(buf, len, &t))
        return 1;
    int errs = 0;
    bool bo;
    int8_t i8;
    uint8_t u8;
    int16_t i16;
    uint16_t u16;
    int32_t i32;
    uint32_t u32;
    int64_t i64;
    uint64_t u64;
    float f32;
    double f64;
    fb_str_t s;
    fb_vec_t v;
    fb_struct_t st;
    errs += fb_read_bool(&t, K_B, false, &bo) != 0;
    errs += fb_read_i8(&t, K_I8, 0, &i8) != 0;
    errs += fb_read_u8(&t, K_U8, 0, &u8) != 0;
    errs += fb_read_i16(&t, K_I16, 0, &i16) != 0;
    errs += fb_read_u16(&t, K_U16, 0, &u16) != 0;
    errs += fb_read_i32(&t, K_I32, 0, &i32) != 0;
    errs += fb_read_u32(&t, K_U32, 0, &u32) != 0;
    errs += fb_read_i64(&t, K_I64, 0, &i64) != 0;
    errs += fb_read_u64(&t, K_U64, 0, &u64) != 0;
    errs += fb_read_f32(&t, K_F32, 0, &f32) != 0;
    errs += fb_read_f64(&t, K_F64, 0, &f64) != 0;
    errs += fb_read_str(&t, K_NAME, &s) != 0;
    if (!fb_read_vec_ref(&t, K_TAGS, &v))
        for (uint32_t i = 0; i < fb_vec_len(&v) && i < 64; i++)
            errs += fb_vec_str(&v, i, &s) != 0;
    else
        errs++;
    if (!fb_read_vec_scalar(&t, K_NUMS, 8, &v))
        for (uint32_t i = 0; i < fb_vec_len(&v) && i < 64; i++)
            errs += fb_vec_i64(&v, i, &i64) != 0;
    else
        errs++;
    if (!fb_read_vec_ref(&t, K_ADDRS, &v)) {
        for (uint32_t i = 0; i < fb_vec_len(&v) && i < 64; i++) {
            if (fb_vec_table(&v, i, &a))
                errs++;
            else
                errs += walk_address(&a);
        }
    } else {
        errs++;
    }
    if (fb_read_table(&t, K_CHILD, &a))
        errs++;
    else
        errs += walk_address(&a);
    if (!fb_read_struct(&t, K_SPEC, SPEC_SIZE, SPEC_ALIGN, &st)) {
        errs += fb_struct_i32(&st, 0, &i32) != 0;
        errs += fb_struct_u64(&st, 8, &u64) != 0;
        errs += fb_struct_bool(&st, 16, &bo) != 0;
    } else {
        errs++;
    }
    if (!fb_read_vec_struct(&t, K_SPECS, SPEC_SIZE, SPEC_ALIGN, &v)) {
        for (uint32_t i = 0; i < fb_vec_len(&v) && i < 64; i++) {
            errs += fb_vec_struct(&v, i, &st) != 0;
            errs += fb_struct_u64(&st, 8, &u64) != 0;
        }
    } else {
        errs++;
    }
    if (fb_read_nested(&t, K_NESTED, &a))
        errs++;
    else
        errs += walk_address(&a);
    if (!fb_read_vec_scalar(&t, K_BYTES, 1, &v)) {
        const uint8_t *d = fb_vec_data(&v);
        unsigned sum = 0;
        for (uint32_t i = 0; i < fb_vec_len(&v); i++)
            sum += d[i];
        (void)sum;
    } else {
        errs++;
    }
    if (!fb_read_vec_scalar(&t, K_DOUBLES, 8, &v))
        for (uint32_t i = 0; i < fb_vec_len(&v) && i < 64; i++)
            errs += fb_vec_f64(&v, i, &f64) != 0;
    else
        errs++;
    return errs;
}

Test(fb, every_truncation_is_safe)
{
    fb_builder_t *b = fb_builder_create(0);
    const uint8_t *buf;
    size_t len;
    build_kitchen(b, &buf, &len);
    cr_assert_eq(walk_kitchen(buf, len), 0);
    int failed = 0;
    for (size_t n = 0; n < len; n++) {
        uint8_t *p = dup_exact(buf, n);
        failed += walk_kitchen(p, n) != 0;
        free(p);
    }
    /* Everything lives behind the root offset at the start, so cutting
     * the end off always breaks something. */
    cr_assert_eq(failed, (int)len);
    fb_builder_destroy(b);
}

Test(fb, every_single_byte_corruption_is_safe)
{
    fb_builder_t *b = fb_builder_create(0);
    const uint8_t *buf;
    size_t len;
    build_kitchen(b, &buf, &len);
    static const uint8_t values[] = {0x00, 0x01, 0x03, 0x7f, 0x80, 0xfe, 0xff};
    uint8_t *p = dup_exact(buf, len);
    for (size_t i = 0; i < len; i++) {
        for (size_t k = 0; k < sizeof values; k++) {
            p[i] = values[k];
            (void)walk_kitchen(p, len);
            p[i] = (uint8_t)(buf[i] + 1);
            (void)walk_kitchen(p, len);
            p[i] = buf[i];
        }
    }
    free(p);
    fb_builder_destroy(b);
}

Test(fb, random_corruption_is_safe)
{
    fb_builder_t *b = fb_builder_create(0);
    const uint8_t *buf;
    size_t len;
    build_kitchen(b, &buf, &len);
    uint8_t *p = dup_exact(buf, len);
    unsigned seed = 12345;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(p, buf, len);
        int flips = 1 + (int)(rand_r(&seed) % 8);
        for (int f = 0; f < flips; f++) {
            size_t at = (size_t)rand_r(&seed) % len;
            if (rand_r(&seed) % 2) {
                p[at] = (uint8_t)rand_r(&seed);
            } else {
                /* Plant a plausible-looking 32-bit value: offsets that point
                 * near the end, or huge counts. */
                at &= ~(size_t)3;
                if (at + 4 <= len) {
                    static const uint32_t evil[] = {0xffffffff, 0x80000000, 0x7fffffff,
                                                    0x40000001, 0x20000001, 0xfffffffc};
                    uint32_t v = rand_r(&seed) % 2 ? evil[rand_r(&seed) % 6]
                                                   : (uint32_t)(len - at - rand_r(&seed) % 8);
                    fb_store_u32(p + at, v);
                }
            }
        }
        size_t cut = rand_r(&seed) % 4 ? len : (size_t)rand_r(&seed) % len;
        uint8_t *q = dup_exact(p, cut);
        (void)walk_kitchen(q, cut);
        free(q);
    }
    free(p);
    fb_builder_destroy(b);
}

/* A hand-laid buffer to corrupt with precision:
 *    0  root uoffset = 12
 *    4  vtable: vt_len 8, table size 12, slot0 @4, slot1 @8
 *   12  table: soffset 8 (vtable at 4)
 *   16  slot0 int32 42
 *   20  slot1 uoffset 4 -> string at 24
 *   24  string: len 3, "abc", NUL */
static const uint8_t tiny[32] = {
    12, 0, 0, 0,
    8, 0, 12, 0, 4, 0, 8, 0,
    8, 0, 0, 0,
    42, 0, 0, 0,
    4, 0, 0, 0,
    3, 0, 0, 0, 'a', 'b', 'c', 0,
};

/* Reads the tiny buffer (allocated exactly) and reports each access's
 * result; a slot that reads successfully and is present must hold the
 * original value. */
struct tiny_rc {
    int root, i32, str;
};

static struct tiny_rc read_tiny(const uint8_t *src, size_t len)
{
    struct tiny_rc rc = {0, 0, 0};
    uint8_t *p = dup_exact(src, len);
    fb_table_t t;
    int32_t v;
    fb_str_t s;
    rc.root = fb_root(p, len, &t);
    rc.i32 = fb_read_i32(&t, 0, -1, &v);
    rc.str = fb_read_str(&t, 1, &s);
    if (!rc.root && !rc.i32 && fb_has(&t, 0))
        cr_assert_eq(v, 42);
    if (!rc.root && !rc.str && fb_has(&t, 1))
        cr_assert(str_is(s, "abc"));
    /* On failure the out parameters still hold safe values. */
    if (rc.i32)
        cr_assert_eq(v, -1);
    if (rc.str)
        cr_assert(s.data && s.len == 0);
    free(p);
    return rc;
}

static struct tiny_rc patched(size_t at, const void *bytes, size_t n, size_t len)
{
    uint8_t b[sizeof tiny];
    memcpy(b, tiny, sizeof tiny);
    memcpy(b + at, bytes, n);
    return read_tiny(b, len);
}

static struct tiny_rc patch32(size_t at, uint32_t v)
{
    uint8_t le[4];
    fb_store_u32(le, v);
    return patched(at, le, 4, sizeof tiny);
}

static struct tiny_rc patch16(size_t at, uint16_t v)
{
    uint8_t le[2];
    fb_store_u16(le, v);
    return patched(at, le, 2, sizeof tiny);
}

Test(fb, tiny_is_valid)
{
    struct tiny_rc rc = read_tiny(tiny, sizeof tiny);
    cr_assert_eq(rc.root, 0);
    cr_assert_eq(rc.i32, 0);
    cr_assert_eq(rc.str, 0);
}

Test(fb, root_offset_out_of_range_or_misaligned)
{
    fb_table_t t;
    cr_assert_eq(fb_root(NULL, 0, &t), CR_EBADMSG);
    cr_assert_not(fb_table_present(&t));
    cr_assert_eq(fb_root(tiny, 4, &t), CR_EBADMSG);
    cr_assert_eq(patch32(0, 32).root, CR_EBADMSG);
    cr_assert_eq(patch32(0, 28).root, CR_EBADMSG);      /* "abc\0" as an soffset */
    cr_assert_eq(patch32(0, 0xffffffff).root, CR_EBADMSG);
    cr_assert_eq(patch32(0, 0x80000000).root, CR_EBADMSG);
    cr_assert_eq(patch32(0, 14).root, CR_EBADMSG);      /* misaligned table */
    cr_assert_eq(patch32(0, 13).root, CR_EBADMSG);
}

Test(fb, vtable_out_of_range)
{
    cr_assert_eq(patch32(12, 13).root, CR_EBADMSG);          /* vtable before the start */
    cr_assert_eq(patch32(12, 0x80000000).root, CR_EBADMSG);  /* far before */
    cr_assert_eq(patch32(12, (uint32_t)-20).root, CR_EBADMSG); /* vtable at 32 = end */
    cr_assert_eq(patch32(12, (uint32_t)-18).root, CR_EBADMSG); /* header past the end */
    cr_assert_eq(patch32(12, 7).root, CR_EBADMSG);           /* odd vtable position */
    cr_assert_eq(patch32(12, 0x7fffffff).root, CR_EBADMSG);
}

Test(fb, vtable_and_table_sizes)
{
    cr_assert_eq(patch16(4, 2).root, CR_EBADMSG);   /* vt_len below its header */
    cr_assert_eq(patch16(4, 0).root, CR_EBADMSG);
    cr_assert_eq(patch16(4, 7).root, CR_EBADMSG);   /* odd */
    cr_assert_eq(patch16(4, 30).root, CR_EBADMSG);  /* runs past the end */
    cr_assert_eq(patch16(4, 0xfffe).root, CR_EBADMSG);
    cr_assert_eq(patch16(6, 2).root, CR_EBADMSG);   /* table smaller than its soffset */
    cr_assert_eq(patch16(6, 24).root, CR_EBADMSG);  /* table past the end */
    /* A shorter vtable just hides slot 1. */
    struct tiny_rc rc = patch16(4, 6);
    cr_assert_eq(rc.root, 0);
    cr_assert_eq(rc.i32, 0);
    cr_assert_eq(rc.str, 0);
}

Test(fb, field_offsets_out_of_range)
{
    cr_assert_eq(patch16(8, 12).i32, CR_EBADMSG);  /* field at table end */
    cr_assert_eq(patch16(8, 10).i32, CR_EBADMSG);  /* straddles the end, misaligned */
    cr_assert_eq(patch16(8, 9).i32, CR_EBADMSG);
    cr_assert_eq(patch16(8, 2).i32, CR_EBADMSG);   /* inside the soffset */
    cr_assert_eq(patch16(8, 0xffff).i32, CR_EBADMSG);
    cr_assert_eq(patch16(8, 6).i32, CR_EBADMSG);   /* within bounds but misaligned */
    cr_assert_eq(patch16(10, 12).str, CR_EBADMSG);
    /* A declared table size past the real fields but within the buffer is
     * fine, and a zero offset means absent. */
    cr_assert_eq(patch16(8, 0).i32, 0);
}

Test(fb, string_offsets_and_lengths)
{
    cr_assert_eq(patch32(20, 12).str, CR_EBADMSG);          /* target = end */
    cr_assert_eq(patch32(20, 0xfffffffc).str, CR_EBADMSG);  /* would wrap in 32 bits */
    cr_assert_eq(patch32(20, 0x80000000).str, CR_EBADMSG);
    cr_assert_eq(patch32(20, 6).str, CR_EBADMSG);           /* misaligned */
    cr_assert_eq(patch32(20, 8).str, CR_EBADMSG);           /* "abc\0" as a length */
    cr_assert_eq(patch32(24, 4).str, CR_EBADMSG);           /* no room for the NUL */
    cr_assert_eq(patch32(24, 0xffffffff).str, CR_EBADMSG);  /* length overflow */
    cr_assert_eq(patch32(24, 0xfffffffc).str, CR_EBADMSG);
    cr_assert_eq(patched(31, "d", 1, sizeof tiny).str, CR_EBADMSG); /* NUL replaced */
    cr_assert_eq(read_tiny(tiny, 31).str, CR_EBADMSG);      /* NUL cut off */
    /* A shorter length whose terminator is not NUL is rejected too. */
    cr_assert_eq(patch32(24, 1).str, CR_EBADMSG);
    cr_assert_eq(patch32(24, 0).str, CR_EBADMSG);           /* 'a' where the NUL goes */

    /* An embedded NUL is data, not an error. */
    uint8_t b[sizeof tiny];
    memcpy(b, tiny, sizeof tiny);
    b[29] = 0;
    fb_table_t t;
    fb_str_t s;
    cr_assert_eq(fb_root(b, sizeof b, &t), 0);
    cr_assert_eq(fb_read_str(&t, 1, &s), 0);
    cr_assert_eq(s.len, 3);
    cr_assert_eq(memcmp(s.data, "a\0c", 3), 0);
}

/* A buffer whose slot 0 is a vector with count at offset 24. */
static uint8_t *vec_buffer(uint32_t count, size_t *len)
{
    static const uint8_t base[40] = {
        12, 0, 0, 0,           /* root -> 12 */
        6, 0, 8, 0, 4, 0,      /* vtable at 4: one slot at +4, table size 8 */
        0, 0,
        8, 0, 0, 0,            /* table at 12: vtable 8 back */
        8, 0, 0, 0,            /* slot0 uoffset -> 24 */
        0, 0, 0, 0,
        0, 0, 0, 0,            /* 24: count, patched below */
        1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, /* 28: elements */
    };
    uint8_t *p = dup_exact(base, sizeof base);
    fb_store_u32(p + 24, count);
    *len = sizeof base;
    return p;
}

Test(fb, vector_length_overflow)
{
    size_t len;
    fb_table_t t;
    fb_vec_t v;
    uint8_t *p = vec_buffer(2, &len);
    cr_assert_eq(fb_root(p, len, &t), 0);
    cr_assert_eq(fb_read_vec_scalar(&t, 0, 4, &v), 0);
    cr_assert_eq(fb_vec_len(&v), 2);
    int32_t x;
    cr_assert_eq(fb_vec_i32(&v, 1, &x), 0);
    cr_assert_eq(x, 2);
    /* 3 elements of 4 fit (the trailing zero word), 4 do not. */
    free(p);
    p = vec_buffer(3, &len);
    cr_assert_eq(fb_root(p, len, &t), 0);
    cr_assert_eq(fb_read_vec_scalar(&t, 0, 4, &v), 0);
    free(p);
    static const uint32_t lies[] = {4, 0x40000001, 0x40000000, 0x20000001, 0x80000000,
                                    0xffffffff};
    for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
        p = vec_buffer(lies[i], &len);
        cr_assert_eq(fb_root(p, len, &t), 0);
        cr_assert_eq(fb_read_vec_scalar(&t, 0, 4, &v), CR_EBADMSG, "count %#x", lies[i]);
        cr_assert_eq(fb_vec_len(&v), 0);
        cr_assert_eq(fb_read_vec_scalar(&t, 0, 8, &v), CR_EBADMSG, "count %#x", lies[i]);
        cr_assert_eq(fb_read_vec_ref(&t, 0, &v), CR_EBADMSG);
        cr_assert_eq(fb_read_vec_struct(&t, 0, 24, 8, &v), CR_EBADMSG);
        cr_assert_eq(fb_read_vec_scalar(&t, 0, 1, &v), lies[i] <= 12 ? 0 : CR_EBADMSG);
        free(p);
    }
    /* 8-byte elements must be 8-aligned: the data here starts at 28. */
    p = vec_buffer(1, &len);
    cr_assert_eq(fb_root(p, len, &t), 0);
    cr_assert_eq(fb_read_vec_scalar(&t, 0, 8, &v), CR_EBADMSG);
    cr_assert_eq(fb_read_vec_scalar(&t, 0, 3, &v), -EINVAL);
    free(p);
}

Test(fb, vector_elements_are_checked_one_by_one)
{
    /* [string] whose element offsets are garbage: the vector itself reads,
     * each element fails on its own. */
    size_t len;
    fb_table_t t;
    fb_vec_t v;
    fb_str_t s;
    uint8_t *p = vec_buffer(2, &len);
    fb_store_u32(p + 28, 0xfffffff0); /* element 0: far out */
    fb_store_u32(p + 32, 4);          /* element 1: -> 36, a 0-length string */
    cr_assert_eq(fb_root(p, len, &t), 0);
    cr_assert_eq(fb_read_vec_ref(&t, 0, &v), 0);
    cr_assert_eq(fb_vec_str(&v, 0, &s), CR_EBADMSG);
    cr_assert(s.data && s.len == 0);
    cr_assert_eq(fb_vec_str(&v, 1, &s), CR_EBADMSG); /* no NUL after it */
    fb_table_t e;
    cr_assert_eq(fb_vec_table(&v, 0, &e), CR_EBADMSG);
    cr_assert_not(fb_table_present(&e));
    cr_assert_eq(fb_vec_table(&v, 1, &e), CR_EBADMSG);
    free(p);
}

Test(fb, nested_flatbuffer_is_checked_against_its_own_bytes)
{
    size_t len;
    fb_table_t t, n;
    /* The 12 element bytes as a buffer: root offset 1, misaligned. */
    uint8_t *p = vec_buffer(12, &len);
    cr_assert_eq(fb_root(p, len, &t), 0);
    cr_assert_eq(fb_read_nested(&t, 0, &n), CR_EBADMSG);
    free(p);
    p = vec_buffer(3, &len);
    cr_assert_eq(fb_root(p, len, &t), 0);
    cr_assert_eq(fb_read_nested(&t, 0, &n), CR_EBADMSG); /* too short for a root */
    free(p);
}

Test(fb, wrong_type_reads_fail_cleanly)
{
    /* Reading the string slot as a table, the int slot as a string. */
    fb_table_t t, c;
    uint8_t *p = dup_exact(tiny, sizeof tiny);
    cr_assert_eq(fb_root(p, sizeof tiny, &t), 0);
    cr_assert_eq(fb_read_table(&t, 1, &c), CR_EBADMSG);
    fb_str_t s;
    cr_assert_eq(fb_read_str(&t, 0, &s), CR_EBADMSG); /* 16 + 42 is past the end */
    fb_vec_t v;
    cr_assert_eq(fb_read_vec_scalar(&t, 1, 1, &v), 0); /* a string is a valid [ubyte] */
    cr_assert_eq(fb_vec_len(&v), 3);
    free(p);
}

Test(fb, backward_offsets_do_not_wrap)
{
    /* uoffsets are unsigned, so a reference cannot point back at its
     * parent; the 32-bit pattern for "-8" is a huge forward jump that must
     * fail rather than wrap.  (Reads are lazy and never recurse, so even a
     * shared child cannot make a walk loop.) */
    uint8_t b[32];
    memcpy(b, tiny, sizeof tiny);
    fb_store_u32(b + 20, (uint32_t)(12 - 20));
    uint8_t *p = dup_exact(b, sizeof b);
    fb_table_t t, c;
    cr_assert_eq(fb_root(p, sizeof b, &t), 0);
    cr_assert_eq(fb_read_table(&t, 1, &c), CR_EBADMSG);
    free(p);
}
