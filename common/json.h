/* A small strict JSON (RFC 8259) reader, and string quoting for writers.
 *
 * Used for the --labels flag (an object of string -> string) and for the
 * system-config JSON GCS hands out (an object of arbitrary values).  Both
 * are untrusted text, so the parser is strict and bounded: UTF-8 is
 * validated, lone surrogates, raw control characters, duplicate object keys,
 * trailing commas and trailing garbage are rejected, nesting is limited to
 * JSON_MAX_DEPTH and input to JSON_MAX_LEN bytes.
 *
 * The tree is plain data: fields may be read directly, and the helpers
 * below are conveniences that tolerate NULL and mismatched types.  Every
 * node, key and string belongs to the tree and is released by json_free()
 * on the root. */
#ifndef CRAYLET_COMMON_JSON_H
#define CRAYLET_COMMON_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    JSON_MAX_DEPTH = 64,             /* arrays/objects nested deeper: CR_ETOOBIG */
    JSON_MAX_LEN = 16 * 1024 * 1024, /* longer input: CR_ETOOBIG */
};

typedef enum {
    JSON_NULL,
    JSON_BOOL,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT,
} json_type_t;

typedef struct json json_t;

typedef struct json_member {
    char *key; /* UTF-8, NUL-terminated; may hold an embedded NUL (\u0000) */
    size_t key_len;
    json_t *value;
} json_member_t;

struct json {
    json_type_t type;
    union {
        bool boolean;
        struct {
            double value; /* always finite */
            char *raw;    /* the literal as written, e.g. "1e3", NUL-terminated */
        } number;
        struct {
            char *ptr; /* decoded UTF-8, NUL-terminated; may embed NUL */
            size_t len;
        } string;
        struct {
            json_t **items;
            size_t count;
        } array;
        struct {
            json_member_t *members; /* in document order; keys are unique */
            size_t count;
        } object;
    } u;
};

/* Parse exactly one JSON value from text[0..len) (surrounding whitespace
 * allowed; no NUL terminator needed).  On success *out is the root, owned by
 * the caller.  On failure returns CR_EBADMSG (malformed) or CR_ETOOBIG (a
 * limit), sets *out to NULL and writes a one-line message with the byte
 * offset to err (always NUL-terminated when err_len > 0; err may be NULL). */
int json_parse(const char *text, size_t len, json_t **out, char *err, size_t err_len);
/* Frees a root returned by json_parse (NULL is fine).  Do not pass inner
 * nodes. */
void json_free(json_t *root);

/* The member's value for `key` in an object, or NULL if absent or `obj` is
 * not an object.  Compares whole keys (a key with an embedded NUL never
 * matches a C string). */
const json_t *json_object_get(const json_t *obj, const char *key);
/* The string's bytes (and length through len if non-NULL), or NULL if `v`
 * is not a string. */
const char *json_string(const json_t *v, size_t *len);
/* True and *out set if `v` is a number. */
bool json_number(const json_t *v, double *out);
/* True and *out set if `v` is a number written as a plain integer (no
 * fraction or exponent) that fits in int64_t. */
bool json_int64(const json_t *v, int64_t *out);
/* True and *out set if `v` is true or false. */
bool json_bool(const json_t *v, bool *out);
const char *json_type_name(json_type_t type);

/* Write s[0..len) as a quoted JSON string literal into dst, snprintf-style:
 * returns the length the full literal needs (quotes included, NUL not), writes
 * at most dst_len - 1 bytes plus a NUL when dst_len > 0 (dst may be NULL
 * when dst_len is 0).  Quotes, backslashes and control characters are
 * escaped; valid UTF-8 passes through; each byte that is not valid UTF-8 is
 * written as \ufffd, so the output is always valid JSON. */
size_t json_quote(char *dst, size_t dst_len, const char *s, size_t len);
/* The same into a fresh malloc'd NUL-terminated buffer owned by the caller. */
char *json_quote_dup(const char *s, size_t len);

/* The tree as compact JSON text (numbers as they were written, members in
 * document order), in a fresh malloc'd string owned by the caller. */
char *json_dump(const json_t *v);
/* Gives member `key` of object `obj` the string `value` (copied) in place
 * of its old value, which is freed.  0, or -ENOENT when obj is not an
 * object or has no such member. */
int json_object_set_string(json_t *obj, const char *key, const char *value);

#endif
