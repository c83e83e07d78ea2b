/* fb_tool: drives common/fb from the command line so the integration tests
 * can exchange buffers with the official Python flatbuffers package.
 *
 *   fb_tool build-register OUT worker_type worker_id_hex pid job_id_hex
 *                          env_hash language ip port job_config_hex
 *   fb_tool build-wait OUT num_required timeout [oid_hex node_hex ip port worker_hex]...
 *   fb_tool build-kitchen OUT
 *   fb_tool read-register|read-wait|read-kitchen FILE
 *   fb_tool probe FILE...
 *
 * read-* print one `key=value` line per field (strings as hex, since Ray's
 * IDs are binary), or `error=...` and exit 2 on the first failed access.
 * probe walks every field of every shape over each file and reports how
 * many walks failed; it exists to run mutated buffers through the reader
 * (under ASan in sanitizer builds) and must exit 0.
 *
 * Schemas, by slot:
 *   RegisterClientRequest (node_manager.fbs): 0 worker_type:int
 *     1 worker_id:string 2 worker_pid:long 3 job_id:string
 *     4 runtime_env_hash:int 5 language:int 6 ip_address:string 7 port:int
 *     8 serialized_job_config:string
 *   Address: 0 node_id:string 1 ip_address:string 2 port:int 3 worker_id:string
 *   WaitRequest: 0 object_ids:[string] 1 owner_addresses:[Address]
 *     2 num_required_objects:int 3 timeout:long
 *   Kitchen (tests only): 0 b:bool 1 i8:byte 2 u8:ubyte 3 i16:short
 *     4 u16:ushort 5 i32:int 6 u32:uint 7 i64:long 8 u64:ulong 9 f32:float
 *     10 f64:double 11 name:string 12 tags:[string] 13 nums:[long]
 *     14 addrs:[Address] 15 child:Address 16 spec:Spec 17 specs:[Spec]
 *     18 nested:[ubyte] (an Address buffer) 19 bytes:[ubyte] 20 doubles:[double]
 *   struct Spec { a:int; b:ulong; c:bool; }  24 bytes, align 8 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/fb.h"

#define SPEC_SIZE 24

static int fail_rc;

/* ---- helpers ---- */

static uint8_t *hex_decode(const char *hex, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2)
        return NULL;
    uint8_t *out = malloc(n / 2 + 1);
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            free(out);
            return NULL;
        }
        out[i] = (uint8_t)v;
    }
    *len = n / 2;
    return out;
}

static fb_ref_t hex_string(fb_builder_t *b, const char *hex)
{
    size_t n;
    uint8_t *raw = hex_decode(hex, &n);
    if (!raw) {
        fprintf(stderr, "bad hex: %s\n", hex);
        exit(1);
    }
    fb_ref_t r = fb_create_string(b, raw, n);
    free(raw);
    return r;
}

static int write_finished(fb_builder_t *b, fb_ref_t root, const char *path)
{
    const uint8_t *buf;
    size_t len;
    int rc = fb_builder_finish(b, root, &buf, &len);
    if (rc) {
        fprintf(stderr, "finish: %s\n", cr_strerror(rc));
        return 1;
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f)) {
        perror(path);
        return 1;
    }
    return 0;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    /* An exact-size copy, so ASan sees any read past the end. */
    uint8_t *exact = malloc(n ? n : 1);
    memcpy(exact, buf, n);
    free(buf);
    *len = n;
    return exact;
}

/* When quiet (probe), results are not printed, only errors counted. */
static bool quiet;

#define CHECK(expr)                                                                      \
    do {                                                                                 \
        int rc_ = (expr);                                                                \
        if (rc_) {                                                                       \
            if (!quiet)                                                                  \
                printf("error=%s at %s\n", cr_strerror(rc_), #expr);                     \
            fail_rc = 2;                                                                 \
            return rc_;                                                                  \
        }                                                                                \
    } while (0)

static void out_str(const char *key, fb_str_t s)
{
    if (quiet)
        return;
    printf("%s=", key);
    for (uint32_t i = 0; i < s.len; i++)
        printf("%02x", (uint8_t)s.data[i]);
    printf("\n");
}

static void out_int(const char *key, long long v)
{
    if (!quiet)
        printf("%s=%lld\n", key, v);
}

static void out_uint(const char *key, unsigned long long v)
{
    if (!quiet)
        printf("%s=%llu\n", key, v);
}

static void out_dbl(const char *key, double v)
{
    if (!quiet)
        printf("%s=%.17g\n", key, v);
}

/* ---- RegisterClientRequest ---- */

static int build_register(char **a, int n, const char *out)
{
    if (n != 9)
        return fprintf(stderr, "build-register needs 9 values\n"), 1;
    fb_builder_t *b = fb_builder_create(0);
    fb_ref_t wid = hex_string(b, a[1]);
    fb_ref_t job = hex_string(b, a[3]);
    fb_ref_t ip = fb_create_string_cstr(b, a[6]);
    fb_ref_t cfg = hex_string(b, a[8]);
    fb_start_table(b);
    fb_add_i32(b, 0, (int32_t)strtol(a[0], NULL, 10), 0);
    fb_add_ref(b, 1, wid);
    fb_add_i64(b, 2, strtoll(a[2], NULL, 10), 0);
    fb_add_ref(b, 3, job);
    fb_add_i32(b, 4, (int32_t)strtol(a[4], NULL, 10), 0);
    fb_add_i32(b, 5, (int32_t)strtol(a[5], NULL, 10), 0);
    fb_add_ref(b, 6, ip);
    fb_add_i32(b, 7, (int32_t)strtol(a[7], NULL, 10), 0);
    fb_add_ref(b, 8, cfg);
    int rc = write_finished(b, fb_end_table(b), out);
    fb_builder_destroy(b);
    return rc;
}

static int read_register(const uint8_t *buf, size_t len)
{
    fb_table_t t;
    fb_str_t s;
    int32_t i32;
    int64_t i64;
    CHECK(fb_root(buf, len, &t));
    CHECK(fb_read_i32(&t, 0, 0, &i32));
    out_int("worker_type", i32);
    CHECK(fb_read_str(&t, 1, &s));
    out_str("worker_id", s);
    CHECK(fb_read_i64(&t, 2, 0, &i64));
    out_int("worker_pid", i64);
    CHECK(fb_read_str(&t, 3, &s));
    out_str("job_id", s);
    CHECK(fb_read_i32(&t, 4, 0, &i32));
    out_int("runtime_env_hash", i32);
    CHECK(fb_read_i32(&t, 5, 0, &i32));
    out_int("language", i32);
    CHECK(fb_read_str(&t, 6, &s));
    out_str("ip_address", s);
    CHECK(fb_read_i32(&t, 7, 0, &i32));
    out_int("port", i32);
    CHECK(fb_read_str(&t, 8, &s));
    out_str("serialized_job_config", s);
    return 0;
}

/* ---- Address / WaitRequest ---- */

static fb_ref_t build_address(fb_builder_t *b, const char *node_hex, const char *ip, int port,
                              const char *worker_hex)
{
    fb_ref_t n = hex_string(b, node_hex);
    fb_ref_t i = fb_create_string_cstr(b, ip);
    fb_ref_t w = hex_string(b, worker_hex);
    fb_start_table(b);
    fb_add_ref(b, 0, n);
    fb_add_ref(b, 1, i);
    fb_add_i32(b, 2, port, 0);
    fb_add_ref(b, 3, w);
    return fb_end_table(b);
}

static int read_address(const char *prefix, const fb_table_t *a)
{
    char key[96];
    fb_str_t s;
    int32_t port;
    out_int(strcat(strcpy(key, prefix), ".present"), fb_table_present(a));
    CHECK(fb_read_str(a, 0, &s));
    out_str(strcat(strcpy(key, prefix), ".node_id"), s);
    CHECK(fb_read_str(a, 1, &s));
    out_str(strcat(strcpy(key, prefix), ".ip_address"), s);
    CHECK(fb_read_i32(a, 2, 0, &port));
    out_int(strcat(strcpy(key, prefix), ".port"), port);
    CHECK(fb_read_str(a, 3, &s));
    out_str(strcat(strcpy(key, prefix), ".worker_id"), s);
    return 0;
}

static int build_wait(char **a, int n, const char *out)
{
    if (n < 2 || (n - 2) % 5)
        return fprintf(stderr, "build-wait needs num_required timeout and 5-tuples\n"), 1;
    int k = (n - 2) / 5;
    fb_builder_t *b = fb_builder_create(0);
    fb_ref_t *oids = calloc((size_t)k + 1, sizeof *oids);
    fb_ref_t *addrs = calloc((size_t)k + 1, sizeof *addrs);
    for (int i = 0; i < k; i++) {
        char **e = a + 2 + 5 * i;
        oids[i] = hex_string(b, e[0]);
        addrs[i] = build_address(b, e[1], e[2], atoi(e[3]), e[4]);
    }
    fb_ref_t ov = fb_create_vec_ref(b, oids, (size_t)k);
    fb_ref_t av = fb_create_vec_ref(b, addrs, (size_t)k);
    fb_start_table(b);
    fb_add_ref(b, 0, ov);
    fb_add_ref(b, 1, av);
    fb_add_i32(b, 2, atoi(a[0]), 0);
    fb_add_i64(b, 3, strtoll(a[1], NULL, 10), 0);
    int rc = write_finished(b, fb_end_table(b), out);
    free(oids);
    free(addrs);
    fb_builder_destroy(b);
    return rc;
}

static int read_wait(const uint8_t *buf, size_t len)
{
    fb_table_t t, a;
    fb_vec_t v;
    fb_str_t s;
    int32_t i32;
    int64_t i64;
    char key[64];
    CHECK(fb_root(buf, len, &t));
    CHECK(fb_read_vec_ref(&t, 0, &v));
    out_int("object_ids.len", fb_vec_len(&v));
    for (uint32_t i = 0; i < fb_vec_len(&v); i++) {
        CHECK(fb_vec_str(&v, i, &s));
        snprintf(key, sizeof key, "object_ids[%u]", i);
        out_str(key, s);
    }
    CHECK(fb_read_vec_ref(&t, 1, &v));
    out_int("owner_addresses.len", fb_vec_len(&v));
    for (uint32_t i = 0; i < fb_vec_len(&v); i++) {
        CHECK(fb_vec_table(&v, i, &a));
        snprintf(key, sizeof key, "owner_addresses[%u]", i);
        CHECK(read_address(key, &a));
    }
    CHECK(fb_read_i32(&t, 2, 0, &i32));
    out_int("num_required_objects", i32);
    CHECK(fb_read_i64(&t, 3, 0, &i64));
    out_int("timeout", i64);
    return 0;
}

/* ---- Kitchen ---- */

static void spec_pack(uint8_t out[SPEC_SIZE], int32_t a, uint64_t b, bool c)
{
    memset(out, 0, SPEC_SIZE);
    fb_store_u32(out, (uint32_t)a);
    fb_store_u64(out + 8, b);
    out[16] = c;
}

/* Keep in step with KITCHEN in tests/integration/test_fb_python.py. */
static int build_kitchen(const char *out)
{
    fb_builder_t *nb = fb_builder_create(0);
    const uint8_t *nbuf;
    size_t nlen;
    fb_ref_t nroot = build_address(nb, "6e6e", "10.0.0.9", 7, "");
    if (fb_builder_finish(nb, nroot, &nbuf, &nlen))
        return 1;

    fb_builder_t *b = fb_builder_create(0);
    fb_ref_t name = fb_create_string_cstr(b, "kitchen");
    fb_ref_t tags[3] = {fb_create_string_cstr(b, "alpha"), fb_create_string_cstr(b, ""),
                        fb_create_string_cstr(b, "gamma")};
    fb_ref_t tagv = fb_create_vec_ref(b, tags, 3);
    static const int64_t nums[] = {1, -2, INT64_MAX, INT64_MIN};
    fb_ref_t numv = fb_create_vec_scalar(b, nums, 4, 8);
    fb_ref_t addrs[2] = {build_address(b, "00", "1.1.1.1", 1, "aa"),
                         build_address(b, "01", "2.2.2.2", 2, "bb")};
    fb_ref_t addrv = fb_create_vec_ref(b, addrs, 2);
    fb_ref_t child = build_address(b, "cc", "3.3.3.3", 3, "dd");
    uint8_t specs[2 * SPEC_SIZE];
    spec_pack(specs, 10, 20, true);
    spec_pack(specs + SPEC_SIZE, -10, UINT64_MAX, false);
    fb_ref_t specv = fb_create_vec_struct(b, specs, 2, SPEC_SIZE, 8);
    fb_ref_t nestv = fb_create_vec_nested(b, nbuf, nlen);
    static const uint8_t raw[] = {0, 1, 2, 0xff};
    fb_ref_t bytev = fb_create_vec_scalar(b, raw, sizeof raw, 1);
    static const double dbl[] = {0.5, -1e300, 3.25};
    fb_ref_t dblv = fb_create_vec_scalar(b, dbl, 3, 8);
    uint8_t spec[SPEC_SIZE];
    spec_pack(spec, 7, 0x0102030405060708ULL, true);

    fb_start_table(b);
    fb_add_bool(b, 0, true, false);
    fb_add_i8(b, 1, -5, 0);
    fb_add_u8(b, 2, 250, 0);
    fb_add_i16(b, 3, -30000, 0);
    fb_add_u16(b, 4, 60000, 0);
    fb_add_i32(b, 5, -2000000000, 0);
    fb_add_u32(b, 6, 4000000000u, 0);
    fb_add_i64(b, 7, -9000000000000000000LL, 0);
    fb_add_u64(b, 8, 18000000000000000000ULL, 0);
    fb_add_f32(b, 9, 1.5f, 0);
    fb_add_f64(b, 10, -2.25, 0);
    fb_add_ref(b, 11, name);
    fb_add_ref(b, 12, tagv);
    fb_add_ref(b, 13, numv);
    fb_add_ref(b, 14, addrv);
    fb_add_ref(b, 15, child);
    fb_add_struct(b, 16, spec, SPEC_SIZE, 8);
    fb_add_ref(b, 17, specv);
    fb_add_ref(b, 18, nestv);
    fb_add_ref(b, 19, bytev);
    fb_add_ref(b, 20, dblv);
    int rc = write_finished(b, fb_end_table(b), out);
    fb_builder_destroy(b);
    fb_builder_destroy(nb);
    return rc;
}

static int read_spec(const char *prefix, const fb_struct_t *st)
{
    char key[64];
    int32_t a;
    uint64_t b;
    bool c;
    CHECK(fb_struct_i32(st, 0, &a));
    CHECK(fb_struct_u64(st, 8, &b));
    CHECK(fb_struct_bool(st, 16, &c));
    snprintf(key, sizeof key, "%s.a", prefix);
    out_int(key, a);
    snprintf(key, sizeof key, "%s.b", prefix);
    out_uint(key, b);
    snprintf(key, sizeof key, "%s.c", prefix);
    out_int(key, c);
    return 0;
}

static int read_kitchen(const uint8_t *buf, size_t len)
{
    fb_table_t t, a;
    fb_vec_t v;
    fb_str_t s;
    fb_struct_t st;
    char key[64];
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
    CHECK(fb_root(buf, len, &t));
    CHECK(fb_read_bool(&t, 0, false, &bo));
    out_int("b", bo);
    CHECK(fb_read_i8(&t, 1, 0, &i8));
    out_int("i8", i8);
    CHECK(fb_read_u8(&t, 2, 0, &u8));
    out_int("u8", u8);
    CHECK(fb_read_i16(&t, 3, 0, &i16));
    out_int("i16", i16);
    CHECK(fb_read_u16(&t, 4, 0, &u16));
    out_int("u16", u16);
    CHECK(fb_read_i32(&t, 5, 0, &i32));
    out_int("i32", i32);
    CHECK(fb_read_u32(&t, 6, 0, &u32));
    out_uint("u32", u32);
    CHECK(fb_read_i64(&t, 7, 0, &i64));
    out_int("i64", i64);
    CHECK(fb_read_u64(&t, 8, 0, &u64));
    out_uint("u64", u64);
    CHECK(fb_read_f32(&t, 9, 0, &f32));
    out_dbl("f32", f32);
    CHECK(fb_read_f64(&t, 10, 0, &f64));
    out_dbl("f64", f64);
    CHECK(fb_read_str(&t, 11, &s));
    out_str("name", s);
    CHECK(fb_read_vec_ref(&t, 12, &v));
    out_int("tags.len", fb_vec_len(&v));
    for (uint32_t i = 0; i < fb_vec_len(&v); i++) {
        CHECK(fb_vec_str(&v, i, &s));
        snprintf(key, sizeof key, "tags[%u]", i);
        out_str(key, s);
    }
    CHECK(fb_read_vec_scalar(&t, 13, 8, &v));
    out_int("nums.len", fb_vec_len(&v));
    for (uint32_t i = 0; i < fb_vec_len(&v); i++) {
        CHECK(fb_vec_i64(&v, i, &i64));
        snprintf(key, sizeof key, "nums[%u]", i);
        out_int(key, i64);
    }
    CHECK(fb_read_vec_ref(&t, 14, &v));
    out_int("addrs.len", fb_vec_len(&v));
    for (uint32_t i = 0; i < fb_vec_len(&v); i++) {
        CHECK(fb_vec_table(&v, i, &a));
        snprintf(key, sizeof key, "addrs[%u]", i);
        CHECK(read_address(key, &a));
    }
    CHECK(fb_read_table(&t, 15, &a));
    CHECK(read_address("child", &a));
    CHECK(fb_read_struct(&t, 16, SPEC_SIZE, 8, &st));
    out_int("spec.present", fb_struct_present(&st));
    CHECK(read_spec("spec", &st));
    CHECK(fb_read_vec_struct(&t, 17, SPEC_SIZE, 8, &v));
    out_int("specs.len", fb_vec_len(&v));
    for (uint32_t i = 0; i < fb_vec_len(&v); i++) {
        CHECK(fb_vec_struct(&v, i, &st));
        snprintf(key, sizeof key, "specs[%u]", i);
        CHECK(read_spec(key, &st));
    }
    CHECK(fb_read_nested(&t, 18, &a));
    CHECK(read_address("nested", &a));
    CHECK(fb_read_vec_scalar(&t, 19, 1, &v));
    s.data = (const char *)fb_vec_data(&v);
    s.len = fb_vec_len(&v);
    out_str("bytes", s);
    CHECK(fb_read_vec_scalar(&t, 20, 8, &v));
    out_int("doubles.len", fb_vec_len(&v));
    for (uint32_t i = 0; i < fb_vec_len(&v); i++) {
        CHECK(fb_vec_f64(&v, i, &f64));
        snprintf(key, sizeof key, "doubles[%u]", i);
        out_dbl(key, f64);
    }
    return 0;
}

typedef int (*reader_fn)(const uint8_t *buf, size_t len);

static int run_read(reader_fn fn, const char *path)
{
    size_t len;
    uint8_t *buf = read_file(path, &len);
    if (!buf) {
        perror(path);
        return 1;
    }
    fn(buf, len);
    free(buf);
    return fail_rc;
}

static int probe(char **paths, int n)
{
    static const reader_fn readers[] = {read_register, read_wait, read_kitchen};
    int ok = 0, bad = 0;
    quiet = true;
    for (int i = 0; i < n; i++) {
        size_t len;
        uint8_t *buf = read_file(paths[i], &len);
        if (!buf) {
            perror(paths[i]);
            return 1;
        }
        for (size_t r = 0; r < sizeof readers / sizeof readers[0]; r++) {
            if (readers[r](buf, len))
                bad++;
            else
                ok++;
        }
        free(buf);
    }
    printf("ok=%d bad=%d\n", ok, bad);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: see the comment at the top of fb_tool.c\n");
        return 1;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "build-register"))
        return build_register(argv + 3, argc - 3, argv[2]);
    if (!strcmp(cmd, "build-wait"))
        return build_wait(argv + 3, argc - 3, argv[2]);
    if (!strcmp(cmd, "build-kitchen"))
        return build_kitchen(argv[2]);
    if (!strcmp(cmd, "read-register"))
        return run_read(read_register, argv[2]);
    if (!strcmp(cmd, "read-wait"))
        return run_read(read_wait, argv[2]);
    if (!strcmp(cmd, "read-kitchen"))
        return run_read(read_kitchen, argv[2]);
    if (!strcmp(cmd, "probe"))
        return probe(argv + 2, argc - 2);
    fprintf(stderr, "unknown command %s\n", cmd);
    return 1;
}
