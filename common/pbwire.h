/* Protocol Buffers wire format, read in place from scattered bytes.
 *
 * protobuf-c decodes a message only from one contiguous buffer and copies
 * every bytes field out of it.  For the few messages that carry bulk data
 * (an object chunk is megabytes) that costs two copies of the payload on
 * the loop thread: flattening gRPC's received slices, then unpacking.  This
 * reader walks the fields of a message held in gRPC's slices as they
 * arrived, so a bulk field can be copied once, straight to where it goes,
 * and every other field is decoded by hand or handed to protobuf-c.
 *
 * The input is untrusted: every length is checked against the bytes left,
 * varints longer than ten bytes and the deprecated group wire types are
 * refused, and nothing is allocated.  All errors are CR_EBADMSG.
 *
 * A reader borrows the segments it is given; they must outlive it. */
#ifndef CRAYLET_COMMON_PBWIRE_H
#define CRAYLET_COMMON_PBWIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

enum {
    PBW_VARINT = 0,
    PBW_FIXED64 = 1,
    PBW_LEN = 2,
    PBW_FIXED32 = 5,
};

typedef struct pbw_reader {
    const struct iovec *iov; /* the remaining segments; iov[0] starts at `off` */
    size_t iovcnt;
    size_t off;
    size_t left;             /* bytes left in the message (or field) */
} pbw_reader_t;

/* A reader over `total` bytes spread over `iovcnt` segments (empty ones
 * allowed).  `total` must not exceed the segments' sum. */
void pbw_init(pbw_reader_t *r, const struct iovec *iov, size_t iovcnt, size_t total);

/* The next field's number and wire type.  1: got one; 0: the message ended
 * cleanly; CR_EBADMSG: a malformed key. */
int pbw_next(pbw_reader_t *r, uint32_t *field, int *wire);

/* The value of a PBW_VARINT field. */
int pbw_varint(pbw_reader_t *r, uint64_t *v);

/* The length of a PBW_LEN field, checked against the bytes left; the bytes
 * themselves come next, through pbw_copy, pbw_sub or pbw_skip. */
int pbw_length(pbw_reader_t *r, size_t *len);

/* Copy the next `len` bytes to `dst` and move past them. */
int pbw_copy(pbw_reader_t *r, void *dst, size_t len);

/* Move past the next `len` bytes. */
int pbw_skip(pbw_reader_t *r, size_t len);

/* A reader over the next `len` bytes (a field's value, in place), moving
 * this one past them. */
int pbw_sub(pbw_reader_t *r, size_t len, pbw_reader_t *sub);

/* Move past the value of a field of type `wire` (unknown fields). */
int pbw_skip_value(pbw_reader_t *r, int wire);

/* The bytes left in `r` as segments: fills at most `max` of `out` and
 * returns how many it needed (so a return above `max` means `out` was too
 * short).  Copies no bytes. */
size_t pbw_segments(const pbw_reader_t *r, struct iovec *out, size_t max);

#endif
