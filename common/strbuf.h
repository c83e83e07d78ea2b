/* Text into a caller's bounded buffer, snprintf-style: what does not fit is
 * still counted, so `len` ends as the length the whole text needs (call
 * once with cap 0 to size the buffer).  The buffer is borrowed. */
#ifndef CRAYLET_COMMON_STRBUF_H
#define CRAYLET_COMMON_STRBUF_H

#include <stddef.h>

typedef struct strbuf {
    char *buf; /* may be NULL when cap is 0 */
    size_t cap, len;
} strbuf_t;

void strbuf_printf(strbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
