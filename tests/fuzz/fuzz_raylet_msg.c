/* libFuzzer harness for the raylet socket: arbitrary bytes as a client's
 * stream go through the frame decoder, and every frame through the
 * node_manager.fbs decoder.  Nothing may crash, hang or leak. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/frame.h"
#include "raylet/worker/wmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Half the inputs are a message type and payload directly (deep
     * flatbuffer coverage); the other half a framed stream. */
    if (size >= 1 && (data[0] & 1)) {
        int64_t type = size >= 2 ? (int64_t)(data[1] % 20) : 0;
        wmsg_t m;
        if (wmsg_decode(type, data + 2 > data + size ? data + size : data + 2, size >= 2 ? size - 2 : 0, &m) == 0)
            wmsg_clear(&m);
        return 0;
    }
    frame_decoder_t *d = frame_decoder_create(FRAME_RAY_COOKIE, 1 << 20);
    if (!d)
        return 0;
    /* Feed in uneven chunks, as a socket would. */
    size_t off = size ? 1 : 0;
    while (off < size) {
        size_t n = 1 + (data[off] % 64);
        if (n > size - off)
            n = size - off;
        if (frame_decoder_feed(d, data + off, n) != 0)
            break;
        off += n;
        frame_t f;
        int got;
        while ((got = frame_decoder_next(d, &f)) == 1) {
            wmsg_t m;
            if (wmsg_decode(f.type, f.payload, f.len, &m) == 0)
                wmsg_clear(&m);
        }
        if (got < 0)
            break;
    }
    frame_decoder_destroy(d);
    return 0;
}
