#include "object_store/mutable.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

/* Ray's names for the two semaphores of a mutable object. */
static int mut_sem_names(const mut_header_t *h, char *obj, char *hdr, size_t cap)
{
    size_t len = strnlen(h->unique_name, sizeof h->unique_name);
    if (len == 0 || len == sizeof h->unique_name || memchr(h->unique_name, '/', len))
        return -EINVAL;
    snprintf(obj, cap, "obj%.*s", (int)len, h->unique_name);
    snprintf(hdr, cap, "hdr%.*s", (int)len, h->unique_name);
    return 0;
}

int mut_writer_open(mut_writer_t *w, mut_header_t *header)
{
    memset(w, 0, sizeof *w);
    w->header = header;
    char obj[48], hdr[48];
    if (mut_sem_names(header, obj, hdr, sizeof obj) != 0)
        return -EINVAL;
    /* Whoever moves the level from UNINITIALIZED creates them (Ray's
     * processes follow the same rule); the others wait until DONE. */
    int32_t level = atomic_load_explicit(&header->semaphores_created, memory_order_relaxed);
    bool create = level == MUT_SEMS_UNINITIALIZED &&
                  atomic_compare_exchange_strong_explicit(&header->semaphores_created, &level, MUT_SEMS_INITIALIZING,
                                                          memory_order_relaxed, memory_order_relaxed);
    if (create) {
        sem_unlink(obj);
        sem_unlink(hdr);
        w->object_sem = sem_open(obj, O_CREAT | O_EXCL, 0644, 1);
        w->header_sem = sem_open(hdr, O_CREAT | O_EXCL, 0644, 1);
    } else {
        if (atomic_load_explicit(&header->semaphores_created, memory_order_acquire) != MUT_SEMS_DONE)
            return -EAGAIN;
        w->object_sem = sem_open(obj, 0);
        w->header_sem = sem_open(hdr, 0);
    }
    bool ok = w->object_sem != SEM_FAILED && w->header_sem != SEM_FAILED;
    int err = ok ? 0 : errno ? errno : EINVAL;
    if (create) {
        /* On failure neither name is left behind and the level goes back,
         * so the next open (ours or a reader's) creates both afresh instead
         * of every process failing on a half-made pair for ever. */
        if (!ok) {
            sem_unlink(obj);
            sem_unlink(hdr);
        }
        atomic_store_explicit(&header->semaphores_created, ok ? MUT_SEMS_DONE : MUT_SEMS_UNINITIALIZED,
                              memory_order_release);
    }
    if (!ok) {
        if (w->object_sem != SEM_FAILED)
            sem_close(w->object_sem);
        if (w->header_sem != SEM_FAILED)
            sem_close(w->header_sem);
        w->object_sem = w->header_sem = NULL;
        return -err;
    }
    return 0;
}

void mut_writer_close(mut_writer_t *w, bool unlink_names)
{
    if (!w->object_sem)
        return;
    sem_close(w->object_sem);
    sem_close(w->header_sem);
    w->object_sem = w->header_sem = NULL;
    char obj[48], hdr[48];
    if (unlink_names && mut_sem_names(w->header, obj, hdr, sizeof obj) == 0) {
        sem_unlink(obj);
        sem_unlink(hdr);
    }
}

static bool mut_closed(const mut_writer_t *w)
{
    return atomic_load_explicit(&w->header->has_error, memory_order_acquire);
}

/* sem_trywait that also gives up on a closed channel, as Ray's waits do
 * (a semaphore taken after the close is handed straight back). */
static int mut_try(mut_writer_t *w, sem_t *sem)
{
    if (mut_closed(w))
        return -EPIPE;
    while (sem_trywait(sem) != 0) {
        if (errno == EAGAIN)
            return -EAGAIN;
        if (errno != EINTR)
            return -errno; /* a broken semaphore fails the channel, not polled for ever */
    }
    if (mut_closed(w)) {
        sem_post(sem);
        return -EPIPE;
    }
    return 0;
}

int mut_write_acquire(mut_writer_t *w, uint64_t data_size, uint64_t metadata_size, int64_t num_readers)
{
    if (!w->holds_object) {
        int rc = mut_try(w, w->object_sem);
        if (rc != 0)
            return rc;
        w->holds_object = true;
    }
    int rc = mut_try(w, w->header_sem);
    if (rc == -EPIPE) {
        sem_post(w->object_sem);
        w->holds_object = false;
    }
    if (rc != 0)
        return rc;
    mut_header_t *h = w->header;
    h->version++;
    h->is_sealed = false;
    h->data_size = data_size;
    h->metadata_size = metadata_size;
    h->num_readers = num_readers;
    sem_post(w->header_sem);
    /* object_sem stays taken: the readers of this version post it back. */
    w->holds_object = false;
    return 0;
}

int mut_write_release(mut_writer_t *w)
{
    int rc = mut_try(w, w->header_sem);
    if (rc != 0)
        return rc;
    mut_header_t *h = w->header;
    h->is_sealed = true;
    h->num_read_acquires_remaining = (uint64_t)h->num_readers;
    h->num_read_releases_remaining = (uint64_t)h->num_readers;
    sem_post(w->header_sem);
    return 0;
}

void mut_set_error(mut_writer_t *w)
{
    if (!w->object_sem)
        return;
    atomic_store_explicit(&w->header->has_error, true, memory_order_release);
    w->holds_object = false; /* the post below hands it back */
    sem_post(w->object_sem);
    sem_post(w->header_sem);
}
