/* UTF-8 validity, for strings a peer sends that craylet later puts into a
 * protobuf string field (which Python and C++ parsers reject, whole
 * message and all, when it is not valid UTF-8). */
#ifndef CRAYLET_COMMON_UTF8_H
#define CRAYLET_COMMON_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Well-formed UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF) and no NUL within `len` bytes. */
bool utf8_valid(const char *s, size_t len);

#endif
