/* Base64 (RFC 4648, standard alphabet, padded), for values handed to child
 * processes on their command line (the spilling config an I/O worker gets
 * as --object-spilling-config). */
#ifndef CRAYLET_COMMON_BASE64_H
#define CRAYLET_COMMON_BASE64_H

#include <stddef.h>

/* A new NUL-terminated string (free() it) holding data[0..len) encoded. */
char *base64_encode(const void *data, size_t len);

#endif
