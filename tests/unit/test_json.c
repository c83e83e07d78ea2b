/* Unit tests for the JSON reader and quoting (common/json.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/json.h"

static json_t *parse_ok(const char *text)
{
    json_t *v = NULL;
    char err[200];
    int rc = json_parse(text, strlen(text), &v, err, sizeof err);
    cr_assert_eq(rc, 0, "parse of %s failed: %s", text, err);
    cr_assert_not_null(v);
    return v;
}

static int parse_err(const char *text, size_t len, char *err, size_t err_len)
{
    json_t *v = (json_t *)1;
    int rc = json_parse(text, len, &v, err, err_len);
    cr_assert_lt(rc, 0, "parse of \"%.*s\" unexpectedly succeeded", (int)len, text);
    cr_assert_null(v);
    return rc;
}

static void expect_bad(const char *text)
{
    char err[200] = "";
    int rc = parse_err(text, strlen(text), err, sizeof err);
    cr_assert_eq(rc, CR_EBADMSG, "\"%s\": rc %d", text, rc);
    cr_assert(strstr(err, "offset") != NULL, "message lacks an offset: %s", err);
}

/* ---- scalars ---------------------------------------------------------------- */

Test(json, literals)
{
    json_t *v = parse_ok("true");
    bool b = false;
    cr_assert(json_bool(v, &b));
    cr_assert(b);
    json_free(v);

    v = parse_ok(" \t\r\nfalse \n");
    cr_assert(json_bool(v, &b));
    cr_assert_not(b);
    json_free(v);

    v = parse_ok("null");
    cr_assert_eq(v->type, JSON_NULL);
    cr_assert_not(json_bool(v, &b));
    json_free(v);
}

Test(json, numbers)
{
    struct {
        const char *text;
        double value;
    } cases[] = {
        {"0", 0},       {"-0", 0},         {"42", 42},          {"-17", -17},   {"3.25", 3.25},
        {"1e3", 1000},  {"1E+2", 100},     {"2.5e-1", 0.25},    {"-0.5", -0.5}, {"123456789012", 123456789012.0},
        {"1e-400", 0},  /* underflows quietly to zero */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *v = parse_ok(cases[i].text);
        double d;
        cr_assert(json_number(v, &d));
        cr_assert_float_eq(d, cases[i].value, 1e-12, "%s", cases[i].text);
        cr_assert_str_eq(v->u.number.raw, cases[i].text);
        json_free(v);
    }
}

Test(json, int64_helper)
{
    json_t *v = parse_ok("9007199254740993");
    int64_t x;
    cr_assert(json_int64(v, &x));
    cr_assert_eq(x, 9007199254740993LL); /* exact, beyond double precision */
    json_free(v);

    v = parse_ok("-9223372036854775808");
    cr_assert(json_int64(v, &x));
    cr_assert_eq(x, INT64_MIN);
    json_free(v);

    v = parse_ok("9223372036854775808");
    cr_assert_not(json_int64(v, &x));
    json_free(v);

    v = parse_ok("1.0");
    cr_assert_not(json_int64(v, &x));
    json_free(v);

    v = parse_ok("1e2");
    cr_assert_not(json_int64(v, &x));
    json_free(v);

    v = parse_ok("\"5\"");
    cr_assert_not(json_int64(v, &x));
    json_free(v);
}

Test(json, bad_numbers)
{
    const char *bad[] = {"01", "-", "+1", ".5", "1.", "1e", "1e+", "0x10", "NaN", "Infinity", "-Infinity",
                         "1.5.2", "--1", "1e999", "-1e999", "- 1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect_bad(bad[i]);
}

/* ---- strings ---------------------------------------------------------------- */

static void expect_string(const char *text, const char *want, size_t want_len)
{
    json_t *v = parse_ok(text);
    size_t len;
    const char *s = json_string(v, &len);
    cr_assert_not_null(s, "%s is not a string", text);
    cr_assert_eq(len, want_len, "%s: length %zu", text, len);
    cr_assert_eq(memcmp(s, want, len), 0, "%s decoded wrong", text);
    cr_assert_eq(s[len], '\0');
    json_free(v);
}

Test(json, simple_escapes)
{
    expect_string("\"\"", "", 0);
    expect_string("\"abc\"", "abc", 3);
    expect_string("\"a\\\"b\"", "a\"b", 3);
    expect_string("\"\\\\\"", "\\", 1);
    expect_string("\"\\/\"", "/", 1);
    expect_string("\"\\b\\f\\n\\r\\t\"", "\b\f\n\r\t", 5);
}

Test(json, unicode_escapes)
{
    expect_string("\"\\u0041\"", "A", 1);
    expect_string("\"\\u00e9\"", "\xc3\xa9", 2);       /* é */
    expect_string("\"\\u20AC\"", "\xe2\x82\xac", 3);   /* € */
    expect_string("\"\\uFFFF\"", "\xef\xbf\xbf", 3);
    expect_string("\"\\u0000x\"", "\0x", 2);            /* embedded NUL */
    /* Surrogate pairs become one 4-byte sequence. */
    expect_string("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4); /* 😀 */
    expect_string("\"\\uD800\\uDC00\"", "\xf0\x90\x80\x80", 4); /* U+10000 */
    expect_string("\"\\uDBFF\\uDFFF\"", "\xf4\x8f\xbf\xbf", 4); /* U+10FFFF */
}

Test(json, raw_utf8_passes_through)
{
    expect_string("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14);
}

Test(json, bad_strings)
{
    const char *bad[] = {
        "\"abc",             /* unterminated */
        "\"abc\\\"",         /* escaped quote leaves it unterminated */
        "\"\\x\"",           /* unknown escape */
        "\"\\u12\"",         /* short \u */
        "\"\\u12G4\"",       /* bad hex */
        "\"\\ud800\"",       /* lone high surrogate */
        "\"\\ud800x\"",      /* high surrogate then text */
        "\"\\ud800\\u0041\"", /* high surrogate then non-surrogate */
        "\"\\udc00\"",       /* lone low surrogate */
        "\"\\udc00\\ud800\"", /* reversed pair */
        "\"a\tb\"",          /* raw control character */
        "\"a\nb\"",
        "\"\xff\"",             /* invalid byte */
        "\"\xc3\"",             /* truncated sequence */
        "\"\xc0\xaf\"",         /* overlong '/' */
        "\"\xe0\x80\xaf\"",     /* overlong 3-byte */
        "\"\xed\xa0\x80\"",     /* encoded surrogate */
        "\"\xf4\x90\x80\x80\"", /* above U+10FFFF */
        "'single'",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect_bad(bad[i]);
}

Test(json, embedded_nul_in_input_is_rejected)
{
    char err[100];
    const char text[] = "\"a\0b\"";
    cr_assert_eq(parse_err(text, sizeof text - 1, err, sizeof err), CR_EBADMSG);
}

/* ---- containers -------------------------------------------------------------- */

Test(json, object_and_array)
{
    json_t *v = parse_ok("{\"a\": 1, \"b\": [true, null, \"x\", {\"c\": -2.5}], \"\": {}, \"e\": []}");
    cr_assert_eq(v->type, JSON_OBJECT);
    cr_assert_eq(v->u.object.count, 4);
    /* Document order is kept. */
    cr_assert_str_eq(v->u.object.members[0].key, "a");
    cr_assert_str_eq(v->u.object.members[1].key, "b");
    cr_assert_str_eq(v->u.object.members[2].key, "");

    double d;
    cr_assert(json_number(json_object_get(v, "a"), &d));
    cr_assert_float_eq(d, 1.0, 0);
    const json_t *b = json_object_get(v, "b");
    cr_assert_eq(b->type, JSON_ARRAY);
    cr_assert_eq(b->u.array.count, 4);
    cr_assert_eq(b->u.array.items[1]->type, JSON_NULL);
    cr_assert_str_eq(json_string(b->u.array.items[2], NULL), "x");
    cr_assert(json_number(json_object_get(b->u.array.items[3], "c"), &d));
    cr_assert_float_eq(d, -2.5, 0);
    cr_assert_eq(json_object_get(v, "")->u.object.count, 0);
    cr_assert_eq(json_object_get(v, "e")->u.array.count, 0);

    cr_assert_null(json_object_get(v, "missing"));
    cr_assert_null(json_object_get(b, "a")); /* not an object */
    cr_assert_null(json_object_get(NULL, "a"));
    cr_assert_null(json_string(b, NULL));
    json_free(v);
}

Test(json, system_config_shape)
{
    /* What GCS hands out: an object of mixed values. */
    json_t *v = parse_ok("{\"object_spilling_threshold\": 0.8, \"num_heartbeats_timeout\": 30, "
                         "\"enable_timeline\": false, \"object_spilling_config\": \"{\\\"type\\\": \\\"fs\\\"}\"}");
    int64_t n;
    cr_assert(json_int64(json_object_get(v, "num_heartbeats_timeout"), &n));
    cr_assert_eq(n, 30);
    bool b = true;
    cr_assert(json_bool(json_object_get(v, "enable_timeline"), &b));
    cr_assert_not(b);
    cr_assert_str_eq(json_string(json_object_get(v, "object_spilling_config"), NULL), "{\"type\": \"fs\"}");
    json_free(v);
}

Test(json, key_with_embedded_nul_never_matches_c_string)
{
    json_t *v = parse_ok("{\"a\\u0000b\": 1}");
    cr_assert_null(json_object_get(v, "a"));
    cr_assert_eq(v->u.object.members[0].key_len, 3);
    json_free(v);
}

Test(json, malformed_containers)
{
    const char *bad[] = {
        "",           "   ",         "[",          "]",           "{",           "}",
        "[1,]",       "[,1]",        "[1 2]",      "{\"a\"}",     "{\"a\":}",    "{\"a\":1,}",
        "{a:1}",      "{1:1}",       "{\"a\" 1}",  "[1]]",        "{}{}",        "[1] x",
        "tru",        "truex",       "nul",        "[true false]", "{\"a\":1 \"b\":2}",
        "{\"a\":1,\"a\":2}",          /* duplicate keys */
        "{\"k\":1,\"x\":2,\"k\":3}",
        "\xef\xbb\xbf{}",             /* byte-order mark */
        "[1,\xc2\xa0" "2]",           /* non-JSON whitespace */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect_bad(bad[i]);
}

Test(json, duplicate_key_message_names_key)
{
    char err[200];
    const char *text = "{\"x\":1,\"dup\":2,\"dup\":3}";
    cr_assert_eq(parse_err(text, strlen(text), err, sizeof err), CR_EBADMSG);
    cr_assert(strstr(err, "duplicate key \"dup\"") != NULL, "%s", err);
}

Test(json, error_reports_offset)
{
    char err[200];
    const char *text = "[1, 2, x]";
    cr_assert_eq(parse_err(text, strlen(text), err, sizeof err), CR_EBADMSG);
    cr_assert(strstr(err, "offset 7") != NULL, "%s", err);
}

Test(json, error_buffer_optional_and_truncated)
{
    json_t *v;
    cr_assert_eq(json_parse("[", 1, &v, NULL, 0), CR_EBADMSG);
    char tiny[4];
    cr_assert_eq(json_parse("[", 1, &v, tiny, sizeof tiny), CR_EBADMSG);
    cr_assert_eq(strlen(tiny), 3);
}

Test(json, length_is_respected)
{
    /* Only the first 4 bytes are the document. */
    json_t *v = NULL;
    cr_assert_eq(json_parse("true garbage", 4, &v, NULL, 0), 0);
    json_free(v);
    cr_assert_eq(json_parse("[1,2]", 3, &v, NULL, 0), CR_EBADMSG);
}

/* ---- limits -------------------------------------------------------------------- */

static char *nested(int depth, char open, char close)
{
    char *s = malloc((size_t)depth * 2 + 1);
    for (int i = 0; i < depth; i++) {
        s[i] = open;
        s[depth * 2 - 1 - i] = close;
    }
    s[depth * 2] = '\0';
    return s;
}

Test(json, depth_limit)
{
    char *ok = nested(JSON_MAX_DEPTH, '[', ']');
    json_t *v = parse_ok(ok);
    json_free(v);
    free(ok);

    char err[200];
    char *deep = nested(JSON_MAX_DEPTH + 1, '[', ']');
    cr_assert_eq(parse_err(deep, strlen(deep), err, sizeof err), CR_ETOOBIG);
    cr_assert(strstr(err, "nesting") != NULL, "%s", err);
    free(deep);

    /* Far deeper than any stack would survive without the limit. */
    char *huge = nested(1000000, '[', ']');
    cr_assert_eq(parse_err(huge, strlen(huge), err, sizeof err), CR_ETOOBIG);
    free(huge);

    /* Objects count too. */
    size_t depth = JSON_MAX_DEPTH + 1;
    char *obj = malloc(depth * 6 + depth + 2);
    char *p = obj;
    for (size_t i = 0; i < depth; i++)
        p += sprintf(p, "{\"a\":");
    p += sprintf(p, "1");
    for (size_t i = 0; i < depth; i++)
        *p++ = '}';
    *p = '\0';
    cr_assert_eq(parse_err(obj, strlen(obj), err, sizeof err), CR_ETOOBIG);
    free(obj);
}

Test(json, size_limit)
{
    char err[200];
    json_t *v;
    /* Refused before looking at the bytes, so a short buffer is fine. */
    cr_assert_eq(json_parse("1", (size_t)JSON_MAX_LEN + 1, &v, err, sizeof err), CR_ETOOBIG);
    cr_assert_null(v);
}

Test(json, big_object_duplicate_check)
{
    enum { N = 20000 };
    char *text = malloc(N * 16 + 16);
    char *p = text;
    *p++ = '{';
    for (int i = 0; i < N; i++)
        p += sprintf(p, "%s\"k%d\":%d", i ? "," : "", i, i);
    *p++ = '}';
    *p = '\0';
    json_t *v = parse_ok(text);
    cr_assert_eq(v->u.object.count, N);
    int64_t x;
    cr_assert(json_int64(json_object_get(v, "k19999"), &x));
    cr_assert_eq(x, 19999);
    json_free(v);
    free(text);
}

/* ---- quoting --------------------------------------------------------------------- */

static void expect_quote(const char *in, size_t in_len, const char *want)
{
    char *q = json_quote_dup(in, in_len);
    cr_assert_str_eq(q, want);
    cr_assert_eq(json_quote(NULL, 0, in, in_len), strlen(want));
    /* And it reads back to the input (when the input was valid UTF-8). */
    json_t *v = NULL;
    cr_assert_eq(json_parse(q, strlen(q), &v, NULL, 0), 0, "quoted output %s does not parse", q);
    free(q);
    json_free(v);
}

Test(json, quote_escapes)
{
    expect_quote("", 0, "\"\"");
    expect_quote("plain", 5, "\"plain\"");
    expect_quote("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
    expect_quote("\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\"");
    expect_quote("\x01\x1f", 2, "\"\\u0001\\u001f\"");
    expect_quote("a\0b", 3, "\"a\\u0000b\"");
    expect_quote("/", 1, "\"/\"");
    expect_quote("caf\xc3\xa9", 5, "\"caf\xc3\xa9\"");
    expect_quote("\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\"");
    /* Invalid bytes become U+FFFD so the output is always valid JSON. */
    expect_quote("a\xff" "b", 3, "\"a\\ufffdb\"");
    expect_quote("\xc3", 1, "\"\\ufffd\"");
    expect_quote("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");
}

Test(json, quote_round_trip)
{
    const char in[] = "line1\nline2\t\"q\" \\ \x7f \xe2\x82\xac";
    char *q = json_quote_dup(in, sizeof in - 1);
    json_t *v = parse_ok(q);
    size_t len;
    const char *s = json_string(v, &len);
    cr_assert_eq(len, sizeof in - 1);
    cr_assert_eq(memcmp(s, in, len), 0);
    json_free(v);
    free(q);
}

Test(json, quote_truncates_like_snprintf)
{
    char buf[6];
    size_t need = json_quote(buf, sizeof buf, "abcdefgh", 8);
    cr_assert_eq(need, 10);
    cr_assert_str_eq(buf, "\"abcd");
    char one[1];
    cr_assert_eq(json_quote(one, 1, "x", 1), 3);
    cr_assert_eq(one[0], '\0');
}

Test(json, type_names)
{
    cr_assert_str_eq(json_type_name(JSON_OBJECT), "object");
    cr_assert_str_eq(json_type_name(JSON_STRING), "string");
    cr_assert_str_eq(json_type_name(JSON_NULL), "null");
}

Test(json, dump_writes_the_tree_back_and_set_string_replaces_a_member)
{
    const char *text = "{\"type\": \"filesystem\", \"params\": {\"directory_path\": [\"/a\", \"/b\"], "
                       "\"buffer_size\": 1e6, \"x\": [true, false, null, \"q\\\"\\n\"]}}";
    json_t *root = NULL;
    cr_assert_eq(json_parse(text, strlen(text), &root, NULL, 0), 0);
    char *out = json_dump(root);
    cr_assert_str_eq(out, "{\"type\":\"filesystem\",\"params\":{\"directory_path\":[\"/a\",\"/b\"],"
                          "\"buffer_size\":1e6,\"x\":[true,false,null,\"q\\\"\\n\"]}}");
    free(out);
    json_t *params = (json_t *)json_object_get(root, "params");
    cr_assert_eq(json_object_set_string(params, "directory_path", "/here"), 0);
    cr_assert_eq(json_object_set_string(params, "missing", "/here"), -ENOENT);
    cr_assert_eq(json_object_set_string((json_t *)json_object_get(root, "type"), "k", "v"), -ENOENT);
    out = json_dump(root);
    cr_assert_str_eq(out, "{\"type\":\"filesystem\",\"params\":{\"directory_path\":\"/here\","
                          "\"buffer_size\":1e6,\"x\":[true,false,null,\"q\\\"\\n\"]}}");
    free(out);
    json_free(root);
}
