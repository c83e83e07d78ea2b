/* libFuzzer harness for Push requests on the object manager port: arbitrary
 * bytes, cut into gRPC-like slices at points the input chooses, go through
 * the in-place decoder.  Nothing may crash, read past the bytes, or leak;
 * a decoded chunk's segments must add up to its length and lie inside the
 * input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raylet/service/push_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* The first byte picks the slicing: up to 8 segments of varied size. */
    unsigned seed = data[0];
    data++;
    size--;
    struct iovec iov[8];
    size_t n = 0, off = 0;
    while (off < size && n < 7) {
        size_t len = 1 + ((seed * 37u + n * 11u) % 17u);
        if (len > size - off)
            len = size - off;
        iov[n++] = (struct iovec){.iov_base = (void *)(data + off), .iov_len = len};
        off += len;
    }
    iov[n++] = (struct iovec){.iov_base = (void *)(data + off), .iov_len = size - off};
    transfer_chunk_t c;
    struct iovec *segs;
    const char *why;
    if (push_wire_decode(iov, n, size, &c, &segs, &why) != 0) {
        if (segs || !why)
            abort();
        return 0;
    }
    size_t sum = 0;
    for (size_t i = 0; i < c.iovcnt; i++) {
        const uint8_t *p = c.iov[i].iov_base;
        if (p < data || p + c.iov[i].iov_len > data + size)
            abort();
        sum += c.iov[i].iov_len;
    }
    if (sum != c.len)
        abort();
    free(segs);
    return 0;
}
