/* Strict JSON reader and string quoting (see json.h).
 *
 * A recursive-descent parser over a length-delimited buffer.  Recursion
 * depth is the document's nesting depth, which is capped, so the C stack is
 * bounded whatever the input.  Each string is scanned once to find its end
 * and then decoded into a buffer of exactly that size: decoding never
 * lengthens text (an escape is at least as long as the bytes it yields). */
#include "common/json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/log.h"

/* Length of the well-formed UTF-8 sequence at s (1..4), or 0 if the bytes
 * there are not one: overlong forms, encoded surrogates and code points
 * above U+10FFFF are all refused, per RFC 3629. */
static size_t json_utf8_len(const unsigned char *s, size_t avail)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlong 3-byte forms */
        else if (c == 0xED)
            hi = 0x9F; /* no UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* no overlong 4-byte forms */
        else if (c == 0xF4)
            hi = 0x8F; /* nothing past U+10FFFF */
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

static size_t json_utf8_put(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- parser ------------------------------------------------------------------ */

typedef struct json_parser {
    const char *start;
    const char *p;
    const char *end;
    char *err;
    size_t err_len;
} json_parser_t;

static int json_fail(json_parser_t *ps, const char *at, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int json_fail(json_parser_t *ps, const char *at, int rc, const char *fmt, ...)
{
    if (ps->err && ps->err_len > 0) {
        char what[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        snprintf(ps->err, ps->err_len, "%s at offset %zu", what, (size_t)(at - ps->start));
    }
    return rc;
}

static void json_skip_ws(json_parser_t *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static void json_free_node(json_t *v);

static int json_parse_value(json_parser_t *ps, int depth, json_t **out);

static int json_hex4(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* ps->p is at the opening quote.  On success the decoded bytes are in a
 * fresh NUL-terminated buffer and ps->p is past the closing quote. */
static int json_parse_string(json_parser_t *ps, char **out, size_t *out_len)
{
    const char *open = ps->p;
    const char *q = open + 1;
    /* Find the closing quote first so the buffer can be sized once. */
    while (q < ps->end && *q != '"') {
        if (*q == '\\')
            q++;
        q++;
    }
    if (q >= ps->end)
        return json_fail(ps, open, CR_EBADMSG, "unterminated string");
    const char *close = q;

    char *buf = xcalloc(1, (size_t)(close - open));
    size_t n = 0;
    const char *s = open + 1;
    while (s < close) {
        unsigned char c = (unsigned char)*s;
        if (c == '\\') {
            char e = s[1];
            const char *esc = s;
            s += 2;
            switch (e) {
            case '"': buf[n++] = '"'; break;
            case '\\': buf[n++] = '\\'; break;
            case '/': buf[n++] = '/'; break;
            case 'b': buf[n++] = '\b'; break;
            case 'f': buf[n++] = '\f'; break;
            case 'n': buf[n++] = '\n'; break;
            case 'r': buf[n++] = '\r'; break;
            case 't': buf[n++] = '\t'; break;
            case 'u': {
                uint32_t cp;
                if (close - s < 4 || json_hex4(s, &cp) < 0) {
                    free(buf);
                    return json_fail(ps, esc, CR_EBADMSG, "bad \\u escape");
                }
                s += 4;
                if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    free(buf);
                    return json_fail(ps, esc, CR_EBADMSG, "unpaired low surrogate");
                }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    uint32_t lo;
                    if (close - s < 6 || s[0] != '\\' || s[1] != 'u' || json_hex4(s + 2, &lo) < 0 ||
                        lo < 0xDC00 || lo > 0xDFFF) {
                        free(buf);
                        return json_fail(ps, esc, CR_EBADMSG, "unpaired high surrogate");
                    }
                    s += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                n += json_utf8_put(buf + n, cp);
                break;
            }
            default:
                free(buf);
                return json_fail(ps, esc, CR_EBADMSG, "bad escape");
            }
        } else if (c < 0x20) {
            free(buf);
            return json_fail(ps, s, CR_EBADMSG, "control character in string");
        } else {
            size_t k = json_utf8_len((const unsigned char *)s, (size_t)(close - s));
            if (k == 0) {
                free(buf);
                return json_fail(ps, s, CR_EBADMSG, "invalid UTF-8");
            }
            memcpy(buf + n, s, k);
            n += k;
            s += k;
        }
    }
    buf[n] = '\0';
    ps->p = close + 1;
    *out = buf;
    *out_len = n;
    return 0;
}

static int json_parse_number(json_parser_t *ps, json_t **out)
{
    const char *s = ps->p, *q = s;
    /* Check the RFC grammar by hand: strtod alone would also take hex,
     * "inf", leading '+', ".5" and other forms JSON does not allow. */
    if (q < ps->end && *q == '-')
        q++;
    if (q >= ps->end || *q < '0' || *q > '9')
        return json_fail(ps, s, CR_EBADMSG, "bad number");
    if (*q == '0') {
        q++;
    } else {
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < ps->end && *q == '.') {
        q++;
        if (q >= ps->end || *q < '0' || *q > '9')
            return json_fail(ps, s, CR_EBADMSG, "bad number");
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < ps->end && (*q == '+' || *q == '-'))
            q++;
        if (q >= ps->end || *q < '0' || *q > '9')
            return json_fail(ps, s, CR_EBADMSG, "bad number");
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    }
    size_t len = (size_t)(q - s);
    char *raw = xcalloc(1, len + 1);
    memcpy(raw, s, len);
    raw[len] = '\0';
    /* The daemon never calls setlocale, so strtod's decimal point is '.'. */
    errno = 0;
    double d = strtod(raw, NULL);
    if (!isfinite(d)) {
        free(raw);
        return json_fail(ps, s, CR_EBADMSG, "number out of range");
    }
    json_t *v = xcalloc(1, sizeof *v);
    v->type = JSON_NUMBER;
    v->u.number.value = d;
    v->u.number.raw = raw;
    ps->p = q;
    *out = v;
    return 0;
}

static int json_parse_literal(json_parser_t *ps, const char *word, json_t **out)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return json_fail(ps, ps->p, CR_EBADMSG, "unexpected character");
    json_t *v = xcalloc(1, sizeof *v);
    if (word[0] == 'n') {
        v->type = JSON_NULL;
    } else {
        v->type = JSON_BOOL;
        v->u.boolean = word[0] == 't';
    }
    ps->p += n;
    *out = v;
    return 0;
}

static int json_parse_array(json_parser_t *ps, int depth, json_t **out)
{
    json_t *arr = xcalloc(1, sizeof *arr);
    arr->type = JSON_ARRAY;
    size_t cap = 0;
    ps->p++; /* '[' */
    json_skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        *out = arr;
        return 0;
    }
    for (;;) {
        json_t *item;
        int rc = json_parse_value(ps, depth, &item);
        if (rc < 0) {
            json_free_node(arr);
            return rc;
        }
        if (arr->u.array.count == cap) {
            cap = cap ? cap * 2 : 4;
            arr->u.array.items = xrealloc(arr->u.array.items, cap * sizeof *arr->u.array.items);
        }
        arr->u.array.items[arr->u.array.count++] = item;
        json_skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            *out = arr;
            return 0;
        }
        json_free_node(arr);
        return json_fail(ps, ps->p, CR_EBADMSG, "expected ',' or ']'");
    }
}

static int json_member_cmp(const void *a, const void *b)
{
    const json_member_t *x = *(const json_member_t *const *)a;
    const json_member_t *y = *(const json_member_t *const *)b;
    if (x->key_len != y->key_len)
        return x->key_len < y->key_len ? -1 : 1;
    return memcmp(x->key, y->key, x->key_len);
}

/* Duplicate keys make json_object_get ambiguous, so they are refused.
 * Sorting a scratch index keeps this O(n log n) for large objects. */
static const json_member_t *json_find_duplicate(const json_t *obj)
{
    size_t n = obj->u.object.count;
    if (n < 2)
        return NULL;
    const json_member_t **idx = xcalloc(1, n * sizeof *idx);
    for (size_t i = 0; i < n; i++)
        idx[i] = &obj->u.object.members[i];
    qsort(idx, n, sizeof *idx, json_member_cmp);
    const json_member_t *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (json_member_cmp(&idx[i - 1], &idx[i]) == 0)
            dup = idx[i];
    free(idx);
    return dup;
}

static int json_parse_object(json_parser_t *ps, int depth, json_t **out)
{
    const char *open = ps->p;
    json_t *obj = xcalloc(1, sizeof *obj);
    obj->type = JSON_OBJECT;
    size_t cap = 0;
    ps->p++; /* '{' */
    json_skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        *out = obj;
        return 0;
    }
    for (;;) {
        json_skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != '"') {
            json_free_node(obj);
            return json_fail(ps, ps->p, CR_EBADMSG, "expected a string key");
        }
        char *key;
        size_t key_len;
        int rc = json_parse_string(ps, &key, &key_len);
        if (rc < 0) {
            json_free_node(obj);
            return rc;
        }
        json_skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') {
            free(key);
            json_free_node(obj);
            return json_fail(ps, ps->p, CR_EBADMSG, "expected ':'");
        }
        ps->p++;
        json_t *value;
        rc = json_parse_value(ps, depth, &value);
        if (rc < 0) {
            free(key);
            json_free_node(obj);
            return rc;
        }
        if (obj->u.object.count == cap) {
            cap = cap ? cap * 2 : 4;
            obj->u.object.members = xrealloc(obj->u.object.members, cap * sizeof *obj->u.object.members);
        }
        obj->u.object.members[obj->u.object.count++] = (json_member_t){key, key_len, value};
        json_skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            break;
        }
        json_free_node(obj);
        return json_fail(ps, ps->p, CR_EBADMSG, "expected ',' or '}'");
    }
    const json_member_t *dup = json_find_duplicate(obj);
    if (dup) {
        /* Copy the key out for the message before the tree goes away. */
        char *qkey = json_quote_dup(dup->key, dup->key_len > 64 ? 64 : dup->key_len);
        json_free_node(obj);
        int rc = json_fail(ps, open, CR_EBADMSG, "duplicate key %s in object", qkey);
        free(qkey);
        return rc;
    }
    *out = obj;
    return 0;
}

static int json_parse_value(json_parser_t *ps, int depth, json_t **out)
{
    json_skip_ws(ps);
    if (ps->p >= ps->end)
        return json_fail(ps, ps->p, CR_EBADMSG, "unexpected end of input");
    char c = *ps->p;
    switch (c) {
    case '{':
    case '[':
        if (depth >= JSON_MAX_DEPTH)
            return json_fail(ps, ps->p, CR_ETOOBIG, "nesting deeper than %d", JSON_MAX_DEPTH);
        return c == '{' ? json_parse_object(ps, depth + 1, out) : json_parse_array(ps, depth + 1, out);
    case '"': {
        char *s;
        size_t n;
        int rc = json_parse_string(ps, &s, &n);
        if (rc < 0)
            return rc;
        json_t *v = xcalloc(1, sizeof *v);
        v->type = JSON_STRING;
        v->u.string.ptr = s;
        v->u.string.len = n;
        *out = v;
        return 0;
    }
    case 't': return json_parse_literal(ps, "true", out);
    case 'f': return json_parse_literal(ps, "false", out);
    case 'n': return json_parse_literal(ps, "null", out);
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return json_parse_number(ps, out);
        return json_fail(ps, ps->p, CR_EBADMSG, "unexpected character");
    }
}

int json_parse(const char *text, size_t len, json_t **out, char *err, size_t err_len)
{
    *out = NULL;
    if (err && err_len > 0)
        err[0] = '\0';
    json_parser_t ps = {.start = text, .p = text, .end = text + len, .err = err, .err_len = err_len};
    if (len > JSON_MAX_LEN)
        return json_fail(&ps, text, CR_ETOOBIG, "input longer than %d bytes", JSON_MAX_LEN);
    json_t *root;
    int rc = json_parse_value(&ps, 0, &root);
    if (rc < 0)
        return rc;
    json_skip_ws(&ps);
    if (ps.p != ps.end) {
        json_free_node(root);
        return json_fail(&ps, ps.p, CR_EBADMSG, "trailing characters after the value");
    }
    *out = root;
    return 0;
}

static void json_free_node(json_t *v)
{
    if (!v)
        return;
    switch (v->type) {
    case JSON_NUMBER: free(v->u.number.raw); break;
    case JSON_STRING: free(v->u.string.ptr); break;
    case JSON_ARRAY:
        for (size_t i = 0; i < v->u.array.count; i++)
            json_free_node(v->u.array.items[i]);
        free(v->u.array.items);
        break;
    case JSON_OBJECT:
        for (size_t i = 0; i < v->u.object.count; i++) {
            free(v->u.object.members[i].key);
            json_free_node(v->u.object.members[i].value);
        }
        free(v->u.object.members);
        break;
    default: break;
    }
    free(v);
}

void json_free(json_t *root) { json_free_node(root); }

/* ---- accessors ------------------------------------------------------------- */

const json_t *json_object_get(const json_t *obj, const char *key)
{
    if (!obj || obj->type != JSON_OBJECT || !key)
        return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < obj->u.object.count; i++) {
        const json_member_t *m = &obj->u.object.members[i];
        if (m->key_len == n && memcmp(m->key, key, n) == 0)
            return m->value;
    }
    return NULL;
}

const char *json_string(const json_t *v, size_t *len)
{
    if (!v || v->type != JSON_STRING)
        return NULL;
    if (len)
        *len = v->u.string.len;
    return v->u.string.ptr;
}

bool json_number(const json_t *v, double *out)
{
    if (!v || v->type != JSON_NUMBER)
        return false;
    *out = v->u.number.value;
    return true;
}

bool json_int64(const json_t *v, int64_t *out)
{
    if (!v || v->type != JSON_NUMBER)
        return false;
    const char *raw = v->u.number.raw;
    /* The grammar was checked while parsing; a plain integer has no '.',
     * 'e' or 'E', and then strtoll takes all of it or reports overflow. */
    if (strpbrk(raw, ".eE"))
        return false;
    errno = 0;
    char *end;
    long long x = strtoll(raw, &end, 10);
    if (errno == ERANGE || *end != '\0')
        return false;
    *out = (int64_t)x;
    return true;
}

bool json_bool(const json_t *v, bool *out)
{
    if (!v || v->type != JSON_BOOL)
        return false;
    *out = v->u.boolean;
    return true;
}

const char *json_type_name(json_type_t type)
{
    switch (type) {
    case JSON_NULL: return "null";
    case JSON_BOOL: return "boolean";
    case JSON_NUMBER: return "number";
    case JSON_STRING: return "string";
    case JSON_ARRAY: return "array";
    case JSON_OBJECT: return "object";
    }
    return "unknown";
}

/* ---- quoting ---------------------------------------------------------------- */

/* Appends to dst while room remains and counts every byte regardless, so one
 * routine serves both the sizing call and the writing call. */
typedef struct json_out {
    char *dst;
    size_t cap; /* bytes writable before the NUL */
    size_t len; /* bytes the full output needs */
} json_out_t;

static void json_out_put(json_out_t *o, const char *s, size_t n)
{
    if (o->len < o->cap) {
        size_t k = o->cap - o->len < n ? o->cap - o->len : n;
        memcpy(o->dst + o->len, s, k);
    }
    o->len += n;
}

size_t json_quote(char *dst, size_t dst_len, const char *s, size_t len)
{
    json_out_t o = {.dst = dst, .cap = dst_len ? dst_len - 1 : 0, .len = 0};
    static const char hex[] = "0123456789abcdef";
    json_out_put(&o, "\"", 1);
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default: break;
        }
        if (esc) {
            json_out_put(&o, esc, 2);
            i++;
        } else if (c < 0x20) {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
            json_out_put(&o, u, sizeof u);
            i++;
        } else {
            size_t k = json_utf8_len((const unsigned char *)s + i, len - i);
            if (k == 0) {
                json_out_put(&o, "\\ufffd", 6);
                i++;
            } else {
                json_out_put(&o, s + i, k);
                i += k;
            }
        }
    }
    json_out_put(&o, "\"", 1);
    if (dst_len > 0)
        dst[o.len < o.cap ? o.len : o.cap] = '\0';
    return o.len;
}

char *json_quote_dup(const char *s, size_t len)
{
    size_t n = json_quote(NULL, 0, s, len);
    char *buf = xcalloc(1, n + 1);
    json_quote(buf, n + 1, s, len);
    return buf;
}

/* ---- writing a tree --------------------------------------------------------- */

typedef struct json_text {
    char *buf;
    size_t len, cap;
} json_text_t;

static void text_put(json_text_t *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 64;
        while (cap < t->len + n + 1)
            cap *= 2;
        t->buf = xrealloc(t->buf, cap);
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void text_quoted(json_text_t *t, const char *s, size_t len)
{
    char *q = json_quote_dup(s, len);
    text_put(t, q, strlen(q));
    free(q);
}

static void json_dump_node(json_text_t *t, const json_t *v)
{
    switch (v->type) {
    case JSON_NULL: text_put(t, "null", 4); break;
    case JSON_BOOL: v->u.boolean ? text_put(t, "true", 4) : text_put(t, "false", 5); break;
    case JSON_NUMBER: text_put(t, v->u.number.raw, strlen(v->u.number.raw)); break;
    case JSON_STRING: text_quoted(t, v->u.string.ptr, v->u.string.len); break;
    case JSON_ARRAY:
        text_put(t, "[", 1);
        for (size_t i = 0; i < v->u.array.count; i++) {
            if (i)
                text_put(t, ",", 1);
            json_dump_node(t, v->u.array.items[i]);
        }
        text_put(t, "]", 1);
        break;
    case JSON_OBJECT:
        text_put(t, "{", 1);
        for (size_t i = 0; i < v->u.object.count; i++) {
            if (i)
                text_put(t, ",", 1);
            text_quoted(t, v->u.object.members[i].key, v->u.object.members[i].key_len);
            text_put(t, ":", 1);
            json_dump_node(t, v->u.object.members[i].value);
        }
        text_put(t, "}", 1);
        break;
    }
}

char *json_dump(const json_t *v)
{
    json_text_t t = {0};
    if (v)
        json_dump_node(&t, v);
    else
        text_put(&t, "null", 4);
    return t.buf;
}

int json_object_set_string(json_t *obj, const char *key, const char *value)
{
    if (!obj || obj->type != JSON_OBJECT)
        return -ENOENT;
    for (size_t i = 0; i < obj->u.object.count; i++) {
        json_member_t *m = &obj->u.object.members[i];
        if (m->key_len != strlen(key) || memcmp(m->key, key, m->key_len) != 0)
            continue;
        json_t *v = xcalloc(1, sizeof *v);
        v->type = JSON_STRING;
        v->u.string.len = strlen(value);
        v->u.string.ptr = xstrdup(value);
        json_free_node(m->value);
        m->value = v;
        return 0;
    }
    return -ENOENT;
}
