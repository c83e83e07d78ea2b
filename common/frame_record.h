/* Keeping the frames clients send, as golden test inputs.
 *
 * With CRAYLET_RECORD_FRAMES=<dir> in craylet's environment, the raylet
 * socket and the plasma socket each keep the first frame of every message
 * type they receive as <dir>/<prefix>-<type>.frame: the whole frame as it
 * came off the wire (header and payload).  tests/golden/ holds such files
 * recorded from stock Ray clients of each supported release; the decoders'
 * unit tests and the fuzzers' seeds read them, so a protocol change in a
 * new release shows up as a failing test instead of a hang.
 *
 * Off (NULL recorder, nothing done) unless asked for.  Writing is
 * synchronous and happens at most once per type, so it costs nothing
 * after the first few frames. */
#ifndef CRAYLET_COMMON_FRAME_RECORD_H
#define CRAYLET_COMMON_FRAME_RECORD_H

#include <stddef.h>
#include <stdint.h>

typedef struct frame_recorder frame_recorder_t;

/* NULL when `dir` is NULL or empty.  `prefix` names the socket
 * ("raylet", "plasma"); both strings are copied. */
frame_recorder_t *frame_recorder_create(const char *dir, const char *prefix, int64_t cookie);
void frame_recorder_destroy(frame_recorder_t *r);

/* Keep this frame if it is the first of its type (types 0..63); an existing
 * file is left alone, so the first recording wins.  A NULL recorder is a
 * no-op.  Failures are logged once and end the recording. */
void frame_recorder_add(frame_recorder_t *r, int64_t type, const uint8_t *payload, size_t len);

#endif
