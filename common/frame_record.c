#include "common/frame_record.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/frame.h"
#include "common/log.h"

struct frame_recorder {
    char *dir;
    char *prefix;
    int64_t cookie;
    uint64_t seen; /* bit t: type t handled */
    bool failed;
};

frame_recorder_t *frame_recorder_create(const char *dir, const char *prefix, int64_t cookie)
{
    if (!dir || !dir[0])
        return NULL;
    frame_recorder_t *r = xcalloc(1, sizeof *r);
    r->dir = xstrdup(dir);
    r->prefix = xstrdup(prefix);
    r->cookie = cookie;
    log_info("recording the first %s frame of each type under %s", prefix, dir);
    return r;
}

void frame_recorder_destroy(frame_recorder_t *r)
{
    if (!r)
        return;
    free(r->dir);
    free(r->prefix);
    free(r);
}

static int frame_recorder_write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void frame_recorder_add(frame_recorder_t *r, int64_t type, const uint8_t *payload, size_t len)
{
    if (!r || r->failed || type < 0 || type >= 64 || (r->seen & (1ull << type)))
        return;
    r->seen |= 1ull << type;
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s-%02d.frame", r->dir, r->prefix, (int)type) >= sizeof path) {
        r->failed = true;
        log_warn("frame recording off: directory name too long");
        return;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (errno != EEXIST) {
            r->failed = true;
            log_warn("frame recording off: cannot create %s: %s", path, strerror(errno));
        }
        return;
    }
    uint8_t header[FRAME_HEADER_SIZE];
    frame_header_write(header, r->cookie, type, len);
    if (frame_recorder_write_all(fd, header, sizeof header) != 0 || frame_recorder_write_all(fd, payload, len) != 0) {
        r->failed = true;
        log_warn("frame recording off: cannot write %s: %s", path, strerror(errno));
        unlink(path);
    }
    close(fd);
}
