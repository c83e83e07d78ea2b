/* A protobuf wire writer for messages the daemon builds field by field
 * where no generated binding exists (OTLP metric exports: Debian ships no
 * C bindings for OpenTelemetry's protos, and Ray's wheel only Python ones).
 *
 * Appends to one growable buffer.  A nested message is opened with
 * pbwr_begin and closed with pbwr_end, which writes its length in front of
 * it; packed repeated scalars are written the same way (pbwr_begin, raw
 * values, pbwr_end).  Out of memory aborts (common/alloc.h). */
#ifndef CRAYLET_COMMON_PBWRITE_H
#define CRAYLET_COMMON_PBWRITE_H

#include <stddef.h>
#include <stdint.h>

#define PBWR_MAX_DEPTH 16

typedef struct pbwr {
    uint8_t *buf; /* owned; the encoded bytes so far */
    size_t len, cap;
    size_t open[PBWR_MAX_DEPTH]; /* where each open message's body starts */
    int depth;
} pbwr_t;

void pbwr_init(pbwr_t *w);
void pbwr_free(pbwr_t *w);

void pbwr_varint(pbwr_t *w, uint32_t field, uint64_t v);
void pbwr_bytes(pbwr_t *w, uint32_t field, const void *data, size_t len);
void pbwr_string(pbwr_t *w, uint32_t field, const char *s); /* NULL writes "" */
void pbwr_fixed64(pbwr_t *w, uint32_t field, uint64_t v);
void pbwr_double(pbwr_t *w, uint32_t field, double v);

/* A length-delimited field whose body follows; nests PBWR_MAX_DEPTH deep
 * (deeper is a programming error and aborts). */
void pbwr_begin(pbwr_t *w, uint32_t field);
void pbwr_end(pbwr_t *w);
/* Raw little-endian values, for packed repeated fields between begin/end. */
void pbwr_raw_fixed64(pbwr_t *w, uint64_t v);
void pbwr_raw_double(pbwr_t *w, double v);

#endif
