/* The writer's side of a mutable object (a compiled graph's channel), as
 * the raylet plays it for readers on this node whose writer is elsewhere.
 *
 * A mutable object starts with the header Ray's PlasmaObjectHeader lays
 * out in shared memory on Linux (x86-64, aarch64); readers and writers in
 * other processes synchronise through it and two named POSIX semaphores
 * whose names derive from `unique_name`: "obj<name>" (the object: held by
 * the writer from write-acquire until every reader has released the
 * version) and "hdr<name>" (the header's fields).  The layout and names are
 * Ray's facts, checked below; the protocol is the same one Ray's writers
 * follow, but every step here only tries, so the raylet's loop never
 * blocks on a reader: -EAGAIN means "call again later".
 *
 * Not thread-safe; the semaphores are what make it process-safe. */
#ifndef CRAYLET_OBJECT_STORE_MUTABLE_H
#define CRAYLET_OBJECT_STORE_MUTABLE_H

#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { MUT_SEMS_UNINITIALIZED = 0, MUT_SEMS_INITIALIZING = 1, MUT_SEMS_DONE = 2 };

typedef struct mut_header {
    _Atomic int32_t semaphores_created; /* MUT_SEMS_*: who creates the semaphores */
    char unique_name[32];               /* NUL-terminated; the semaphores' base name */
    int64_t version;                    /* bumped by every write-acquire */
    bool is_sealed;                     /* the current version is complete */
    _Atomic bool has_error;             /* the channel is closed */
    int64_t num_readers;                /* reads allowed per version (-1: immutable) */
    uint64_t num_read_acquires_remaining;
    uint64_t num_read_releases_remaining;
    uint64_t data_size;                 /* of the current version */
    uint64_t metadata_size;
} mut_header_t;

_Static_assert(offsetof(mut_header_t, unique_name) == 4, "PlasmaObjectHeader layout");
_Static_assert(offsetof(mut_header_t, version) == 40, "PlasmaObjectHeader layout");
_Static_assert(offsetof(mut_header_t, is_sealed) == 48, "PlasmaObjectHeader layout");
_Static_assert(offsetof(mut_header_t, has_error) == 49, "PlasmaObjectHeader layout");
_Static_assert(offsetof(mut_header_t, num_readers) == 56, "PlasmaObjectHeader layout");
_Static_assert(offsetof(mut_header_t, data_size) == 80, "PlasmaObjectHeader layout");
_Static_assert(sizeof(mut_header_t) == 96, "PlasmaObjectHeader layout");

typedef struct mut_writer {
    mut_header_t *header; /* borrowed: the object's shared memory */
    sem_t *object_sem;    /* NULL until mut_writer_open succeeds */
    sem_t *header_sem;
    bool holds_object;    /* object_sem taken by a write-acquire still under way */
} mut_writer_t;

/* Opens (creating them when first) the object's semaphores.  0, -EAGAIN
 * (another process is creating them right now), -EINVAL (no valid name) or
 * -errno of sem_open. */
int mut_writer_open(mut_writer_t *w, mut_header_t *header);
/* Closes the semaphores; with `unlink`, removes their names too (Ray does
 * when it drops a channel: whoever is last leaves nothing in /dev/shm). */
void mut_writer_close(mut_writer_t *w, bool unlink_names);

/* Begin a version: waits for every reader of the last one (-EAGAIN until
 * then), then records the new sizes and readers.  -EPIPE: the channel was
 * closed (has_error). */
int mut_write_acquire(mut_writer_t *w, uint64_t data_size, uint64_t metadata_size, int64_t num_readers);
/* Publish the version to its readers.  0, -EAGAIN, -EPIPE. */
int mut_write_release(mut_writer_t *w);
/* Close the channel: readers and writers waiting on it see an error. */
void mut_set_error(mut_writer_t *w);

#endif
