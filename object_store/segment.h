/* Shared-memory segments: the files whose descriptors travel to clients.
 *
 * A segment is an unlinked file, mapped MAP_SHARED, whose descriptor the
 * store passes to each client once (SCM_RIGHTS) so the client can map the
 * same pages.  Two kinds:
 *   - the region: one per store, created at start-up in --plasma_directory
 *     (tmpfs, or hugetlbfs with --huge_pages), holding every normal object;
 *   - fallback files: one per object that did not fit in the region, created
 *     in --fallback_directory with its blocks reserved up front (fallocate),
 *     so a full disk is reported at creation rather than as SIGBUS later.
 * Files are unlinked right after creation: nothing is left behind if the
 * daemon dies, and the storage is released when the last mapping and
 * descriptor (in any process) go away.
 *
 * Each segment carries a unique id that is never reused for the life of the
 * process.  Clients key their mappings by (store's fd number, unique id), so
 * a recycled fd number with a fresh id is a different segment to them.
 *
 * Descriptors are close-on-exec: workers are spawned by this process and
 * must not inherit them. */
#ifndef CRAYLET_OBJECT_STORE_SEGMENT_H
#define CRAYLET_OBJECT_STORE_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct seg seg_t;

typedef struct {
    const char *directory; /* where the file is created; required */
    uint64_t size;         /* bytes wanted; rounded up to the page (or huge page) size */
    uint64_t unique_id;    /* > 0, chosen by the caller, never reused */
    bool huge_pages;       /* the directory is a hugetlbfs mount */
    bool populate;         /* prefault all pages now (MAP_POPULATE) */
    bool reserve;          /* fallocate the blocks (fallback files) */
    bool exclude_from_core;/* madvise(MADV_DONTDUMP) */
} seg_options_t;

/* Creates, unlinks, sizes and maps the file.  Returns 0 and *out, or a
 * negative errno: -ENOSPC when the blocks cannot be reserved, others from
 * the failing call.  Logs the reason except for -ENOSPC, which the caller
 * reports in its own terms. */
int seg_create(const seg_options_t *opts, seg_t **out) __attribute__((warn_unused_result));
/* Unmaps and closes.  Clients that mapped the file keep their pages. */
void seg_destroy(seg_t *s);

int seg_fd(const seg_t *s);
uint8_t *seg_base(const seg_t *s);
/* The file's (and mapping's) length in bytes, after rounding. */
uint64_t seg_size(const seg_t *s);
uint64_t seg_unique_id(const seg_t *s);

/* The page size that sizes in `directory` are rounded to (the huge page
 * size on hugetlbfs).  Returns 0 if the directory cannot be examined. */
uint64_t seg_page_size(const char *directory, bool huge_pages);
/* Free bytes and total bytes of the file system holding `directory`.
 * Returns 0 or -errno. */
int seg_fs_space(const char *directory, uint64_t *avail, uint64_t *total);

#endif
