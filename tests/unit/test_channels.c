/* Compiled graphs' channels written from another node: a real store, a
 * reader object created and sealed through the plasma socket as a worker
 * does, and a reader played here with Ray's protocol on the shared header
 * and its named semaphores. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "object_store/mutable.h"
#include "object_store/store.h"
#include "raylet/objects/channels.h"
#include "tests/tools/plasma_test_client.h"

static loop_t *loop;
static store_t *store;
static chan_set_t *chans;
static ptc_t *worker;
static char dir[64];

static void setup(void)
{
    loop = loop_create();
    strcpy(dir, "/tmp/craylet-chan-test-XXXXXX");
    cr_assert(mkdtemp(dir));
    store_options_t o;
    store_options_init(&o);
    o.capacity = 4 << 20;
    o.fallback_directory = dir;
    store = store_create(loop, &o);
    cr_assert(store);
    chans = chan_set_create(loop, store);
    worker = ptc_open(loop, store);
}

static void teardown(void)
{
    chan_set_destroy(chans);
    ptc_close(worker);
    store_destroy(store);
    rmdir(dir);
    loop_destroy(loop);
}

TestSuite(channels, .init = setup, .fini = teardown);

/* A sealed mutable object of `capacity` bytes, as a reader's worker makes
 * it; returns its header (the worker's mapping of the shared memory). */
static mut_header_t *make_reader_object(const id_object_t *id, uint64_t capacity)
{
    ptc_create_t cr;
    cr_assert_eq(ptc_create_ex(worker, id, capacity, 0, false, true, &cr), 0);
    cr_assert_eq(cr.error, 0);
    int32_t err;
    cr_assert_eq(ptc_seal(worker, id, &err), 0);
    cr_assert_eq(err, 0);
    return (mut_header_t *)(cr.data - sizeof(mut_header_t));
}

/* A reader object (id n + 1) registered for writer id n. */
static mut_header_t *open_channel(id_object_t *writer, uint32_t n, uint64_t capacity, int64_t readers)
{
    id_object_t reader_id;
    ptc_make_id(writer, n);
    ptc_make_id(&reader_id, n + 1);
    mut_header_t *h = make_reader_object(&reader_id, capacity);
    cr_assert_eq(chan_register(chans, writer, readers, &reader_id), 0);
    return h;
}

/* The reader's half of Ray's protocol. */
typedef struct reader {
    mut_header_t *h;
    sem_t *obj, *hdr;
} reader_t;

static void reader_open(reader_t *r, mut_header_t *h)
{
    r->h = h;
    char name[48];
    cr_assert_eq(atomic_load(&h->semaphores_created), MUT_SEMS_DONE, "the raylet created the semaphores");
    snprintf(name, sizeof name, "obj%s", h->unique_name);
    r->obj = sem_open(name, 0);
    snprintf(name, sizeof name, "hdr%s", h->unique_name);
    r->hdr = sem_open(name, 0);
    cr_assert(r->obj != SEM_FAILED && r->hdr != SEM_FAILED);
}

/* ReadAcquire of `version`: true when it is sealed and may be read. */
static bool reader_acquire(reader_t *r, int64_t version)
{
    sem_wait(r->hdr);
    bool ok = r->h->version == version && r->h->is_sealed && r->h->num_read_acquires_remaining > 0;
    if (ok)
        r->h->num_read_acquires_remaining--;
    sem_post(r->hdr);
    return ok;
}

static void reader_release(reader_t *r)
{
    sem_wait(r->hdr);
    bool last = --r->h->num_read_releases_remaining == 0;
    sem_post(r->hdr);
    if (last)
        sem_post(r->obj);
}

static void reader_close(reader_t *r)
{
    sem_close(r->obj);
    sem_close(r->hdr);
}

typedef struct answer {
    int calls, err;
    bool done;
} answer_t;

static void on_written(void *ctx, int err, bool done)
{
    answer_t *a = ctx;
    a->calls++;
    a->err = err;
    a->done = done;
}

static const uint8_t *payload(const mut_header_t *h) { return (const uint8_t *)(h + 1); }

Test(channels, versions_wait_for_every_reader)
{
    id_object_t writer;
    mut_header_t *h = open_channel(&writer, 1, 1000, 2);
    chan_stats_t st;
    chan_get_stats(chans, &st);
    cr_assert_eq(st.channels, 1);
    reader_t a, b;
    reader_open(&a, h);
    reader_open(&b, h);

    answer_t first = {0};
    chan_chunk_t c1 = {.total_data_size = 5, .total_metadata_size = 2, .data = (const uint8_t *)"hello",
                       .size = 5, .metadata = (const uint8_t *)"m1"};
    cr_assert_eq(chan_push(chans, &writer, &c1, on_written, &first), 0);
    cr_assert_eq(first.calls, 1, "no reader holds a version: written at once");
    cr_assert(first.done);
    cr_assert_eq(h->version, 1);
    cr_assert_eq(h->data_size, 5);
    cr_assert_eq(h->metadata_size, 2);
    cr_assert(reader_acquire(&a, 1));
    cr_assert(reader_acquire(&b, 1));
    cr_assert_eq(memcmp(payload(h), "hellom1", 7), 0);
    cr_assert_not(reader_acquire(&a, 1), "two readers: a third acquire of the version is refused");

    /* Version 2 arrives while both readers still hold version 1. */
    answer_t second = {0};
    chan_chunk_t c2 = {.total_data_size = 3, .total_metadata_size = 2, .data = (const uint8_t *)"bye",
                       .size = 3, .metadata = (const uint8_t *)"m2"};
    cr_assert_eq(chan_push(chans, &writer, &c2, on_written, &second), 0);
    ptc_pump(loop, 20);
    cr_assert_eq(second.calls, 0, "written over a version being read");
    chan_get_stats(chans, &st);
    cr_assert_eq(st.blocked, 1);
    cr_assert_eq(st.versions_written, 1);
    cr_assert_eq(memcmp(payload(h), "hellom1", 7), 0);
    reader_release(&a);
    ptc_pump(loop, 20);
    cr_assert_eq(second.calls, 0, "one reader is still reading");
    reader_release(&b);
    ptc_pump(loop, 20);
    cr_assert_eq(second.calls, 1);
    cr_assert_eq(second.err, 0);
    cr_assert(second.done);
    cr_assert_eq(h->version, 2);
    chan_get_stats(chans, &st);
    cr_assert_eq(st.blocked, 0);
    cr_assert_eq(st.versions_written, 2);
    cr_assert(reader_acquire(&a, 2));
    cr_assert_eq(memcmp(payload(h), "byem2", 5), 0);
    reader_close(&a);
    reader_close(&b);
}

Test(channels, chunks_complete_a_version_together)
{
    id_object_t writer;
    mut_header_t *h = open_channel(&writer, 3, 100, 1);
    answer_t x = {0}, y = {0};
    chan_chunk_t tail = {.total_data_size = 8, .total_metadata_size = 1, .offset = 4,
                         .data = (const uint8_t *)"5678", .size = 4, .metadata = (const uint8_t *)"M"};
    chan_chunk_t head = tail;
    head.offset = 0;
    head.data = (const uint8_t *)"1234";
    cr_assert_eq(chan_push(chans, &writer, &tail, on_written, &x), 0);
    cr_assert_eq(x.calls, 1);
    cr_assert_not(x.done, "half the bytes");
    cr_assert_not(h->is_sealed, "readers do not see a half-written version");
    cr_assert_eq(chan_push(chans, &writer, &head, on_written, &y), 0);
    cr_assert(y.done);
    cr_assert(h->is_sealed);
    cr_assert_eq(memcmp(payload(h), "12345678M", 9), 0);
}

Test(channels, chunk_sent_twice_is_refused)
{
    id_object_t writer;
    mut_header_t *h = open_channel(&writer, 9, 100, 1);
    answer_t x = {0}, dup = {0}, y = {0};
    chan_chunk_t head = {.total_data_size = 8, .offset = 0, .data = (const uint8_t *)"abcd", .size = 4};
    chan_chunk_t tail = head;
    tail.offset = 4;
    tail.data = (const uint8_t *)"efgh";
    cr_assert_eq(chan_push(chans, &writer, &head, on_written, &x), 0);
    cr_assert_eq(chan_push(chans, &writer, &head, on_written, &dup), 0);
    cr_assert_eq(x.calls, 1);
    cr_assert_eq(dup.calls, 1);
    cr_assert_eq(dup.err, -EINVAL, "a second copy would count as the version's last four bytes");
    cr_assert_not(h->is_sealed, "the version is not published with bytes missing");
    cr_assert_eq(chan_push(chans, &writer, &tail, on_written, &y), 0);
    cr_assert(y.done);
    cr_assert(h->is_sealed);
    cr_assert_eq(memcmp(payload(h), "abcdefgh", 8), 0);
}

Test(channels, bad_registrations_and_chunks)
{
    id_object_t writer, reader_id, other, plain;
    ptc_make_id(&writer, 5);
    ptc_make_id(&reader_id, 6);
    ptc_make_id(&other, 7);
    ptc_make_id(&plain, 8);
    cr_assert_eq(chan_register(chans, &writer, 1, &reader_id), -ENOENT, "no such object");
    make_reader_object(&reader_id, 16);
    make_reader_object(&other, 16);
    cr_assert_eq(ptc_put(worker, &plain, (const uint8_t *)"x", 1, NULL, 0), 0);
    cr_assert_eq(chan_register(chans, &writer, 1, &plain), -EINVAL, "not a mutable object");
    cr_assert_eq(chan_register(chans, &writer, 0, &reader_id), -EINVAL, "no readers");
    cr_assert_eq(chan_register(chans, &writer, 1, &reader_id), 0);
    cr_assert_eq(chan_register(chans, &writer, 1, &reader_id), 0, "the same registration again");
    cr_assert_eq(chan_register(chans, &writer, 1, &other), -EEXIST);

    answer_t a = {0};
    chan_chunk_t k = {.total_data_size = 16, .total_metadata_size = 1, .size = 16,
                      .data = (const uint8_t *)"0123456789abcdef", .metadata = (const uint8_t *)"m"};
    cr_assert_eq(chan_push(chans, &other, &k, on_written, &a), -ENOENT, "no reader registered for that writer");
    cr_assert_eq(chan_push(chans, &writer, &k, on_written, &a), -EINVAL, "17 bytes into 16");
    k.total_metadata_size = 0;
    k.offset = 8;
    cr_assert_eq(chan_push(chans, &writer, &k, on_written, &a), -EINVAL, "past the version's end");
    k.offset = 0;
    k.total_data_size = UINT64_MAX;
    cr_assert_eq(chan_push(chans, &writer, &k, on_written, &a), -EINVAL);
    cr_assert_eq(a.calls, 0);
}

Test(channels, stop_answers_waiting_chunks_and_closes)
{
    id_object_t writer;
    mut_header_t *h = open_channel(&writer, 9, 64, 1);
    answer_t a = {0}, b = {0};
    chan_chunk_t k = {.total_data_size = 2, .data = (const uint8_t *)"ab", .size = 2};
    cr_assert_eq(chan_push(chans, &writer, &k, on_written, &a), 0);
    cr_assert(a.done);
    cr_assert_eq(chan_push(chans, &writer, &k, on_written, &b), 0);
    cr_assert_eq(b.calls, 0, "the reader has not released version 1");
    chan_set_stop(chans);
    cr_assert_eq(b.calls, 1);
    cr_assert_eq(b.err, -ECANCELED);
    cr_assert(atomic_load(&h->has_error), "readers learn the channel is closed");
    cr_assert_eq(chan_push(chans, &writer, &k, on_written, &b), -ENOENT);
}

/* A channel the reader closed fails its chunks instead of waiting. */
Test(channels, closed_channel_fails_chunks)
{
    id_object_t writer;
    mut_header_t *h = open_channel(&writer, 11, 64, 1);
    atomic_store(&h->has_error, true);
    answer_t a = {0};
    chan_chunk_t k = {.total_data_size = 2, .data = (const uint8_t *)"ab", .size = 2};
    cr_assert_eq(chan_push(chans, &writer, &k, on_written, &a), 0);
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(a.err, -EPIPE);
}

/* A reader that holds a version for long slows the poll down, and the
 * version still goes in soon after it lets go. */
Test(channels, long_held_version_still_written)
{
    id_object_t writer;
    mut_header_t *h = open_channel(&writer, 13, 64, 1);
    reader_t r;
    reader_open(&r, h);
    answer_t a = {0}, b = {0};
    chan_chunk_t k = {.total_data_size = 2, .data = (const uint8_t *)"ab", .size = 2};
    cr_assert_eq(chan_push(chans, &writer, &k, on_written, &a), 0);
    cr_assert(reader_acquire(&r, 1));
    cr_assert_eq(chan_push(chans, &writer, &k, on_written, &b), 0);
    ptc_pump(loop, 400); /* past the fast polls */
    cr_assert_eq(b.calls, 0);
    reader_release(&r);
    ptc_pump(loop, 50);
    cr_assert_eq(b.calls, 1);
    cr_assert(b.done);
    reader_close(&r);
}
