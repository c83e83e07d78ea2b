#include "object_store/segment.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/log.h"

struct seg {
    int fd;
    uint8_t *base;
    uint64_t size;
    uint64_t uid;
};

uint64_t seg_page_size(const char *directory, bool huge_pages)
{
    long ps = sysconf(_SC_PAGESIZE);
    uint64_t page = ps > 0 ? (uint64_t)ps : 4096;
    if (!huge_pages)
        return page;
    /* hugetlbfs reports its page size as the block size. */
    struct statvfs st;
    if (statvfs(directory, &st) != 0)
        return 0;
    return st.f_bsize > page ? (uint64_t)st.f_bsize : page;
}

int seg_fs_space(const char *directory, uint64_t *avail, uint64_t *total)
{
    struct statvfs st;
    if (statvfs(directory, &st) != 0)
        return -errno;
    *avail = (uint64_t)st.f_bavail * st.f_frsize;
    *total = (uint64_t)st.f_blocks * st.f_frsize;
    return 0;
}

int seg_create(const seg_options_t *o, seg_t **out)
{
    *out = NULL;
    uint64_t page = seg_page_size(o->directory, o->huge_pages);
    if (page == 0) {
        int err = -errno;
        log_error("object store: cannot examine %s: %s", o->directory, strerror(errno));
        return err;
    }
    if (o->size == 0 || o->size > (uint64_t)INT64_MAX - page)
        return -EINVAL;
    uint64_t size = (o->size + page - 1) / page * page;

    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/plasmaXXXXXX", o->directory);
    if (n < 0 || (size_t)n >= sizeof path) {
        log_error("object store: directory path too long: %s", o->directory);
        return -ENAMETOOLONG;
    }
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) {
        int err = -errno;
        log_error("object store: cannot create a file in %s: %s", o->directory, strerror(errno));
        return err;
    }
    /* Nothing must outlive us on disk, whatever happens next. */
    unlink(path);

    int err = 0;
    if (o->reserve) {
        int r = fallocate(fd, 0, 0, (off_t)size) == 0 ? 0 : errno;
        if (r == ENOSPC || r == EFBIG) {
            err = -ENOSPC;
            goto fail;
        }
        /* Some file systems cannot reserve (EOPNOTSUPP); size the file and
         * accept that a full disk would then surface later. */
        if (r != 0 && ftruncate(fd, (off_t)size) != 0) {
            err = -errno;
            log_error("object store: cannot size a %llu-byte file in %s: %s",
                      (unsigned long long)size, o->directory, strerror(errno));
            goto fail;
        }
    } else if (ftruncate(fd, (off_t)size) != 0 && !o->huge_pages) {
        /* hugetlbfs may refuse ftruncate; the mapping sizes it instead. */
        err = -errno;
        log_error("object store: cannot size a %llu-byte file in %s: %s",
                  (unsigned long long)size, o->directory, strerror(errno));
        goto fail;
    }

    int flags = MAP_SHARED | (o->populate ? MAP_POPULATE : 0);
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (base == MAP_FAILED) {
        err = -errno;
        log_error("object store: cannot map %llu bytes from %s: %s%s", (unsigned long long)size,
                  o->directory, strerror(errno),
                  o->huge_pages && errno == ENOMEM ? " (is /proc/sys/vm/nr_hugepages large enough?)"
                                                   : "");
        goto fail;
    }
    if (o->exclude_from_core)
        (void)madvise(base, size, MADV_DONTDUMP);

    seg_t *s = malloc(sizeof *s);
    if (!s) {
        munmap(base, size);
        err = -ENOMEM;
        goto fail;
    }
    *s = (seg_t){.fd = fd, .base = base, .size = size, .uid = o->unique_id};
    *out = s;
    return 0;
fail:
    close(fd);
    return err;
}

void seg_destroy(seg_t *s)
{
    if (!s)
        return;
    munmap(s->base, s->size);
    close(s->fd);
    free(s);
}

int seg_fd(const seg_t *s) { return s->fd; }
uint8_t *seg_base(const seg_t *s) { return s->base; }
uint64_t seg_size(const seg_t *s) { return s->size; }
uint64_t seg_unique_id(const seg_t *s) { return s->uid; }
