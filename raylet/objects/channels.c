#include "raylet/objects/channels.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/list.h"
#include "common/log.h"
#include "object_store/idtab.h"
#include "object_store/mutable.h"

/* Blocked channels are retried this often: readers release a version in
 * another process and cannot wake the loop.  A graph's next version is
 * usually a step away, so the poll starts fast; a reader that holds a
 * version for long (a driver keeping a zero-copy result) gets the slow
 * poll once this many fast ticks went by without a chunk written. */
#define CHAN_POLL_FAST_MS 1
#define CHAN_POLL_SLOW_MS 10
#define CHAN_POLL_FAST_TICKS 100

typedef struct chan_wait {
    list_t node; /* chan_t.waiting */
    chan_chunk_t chunk;
    chan_chunk_cb cb;
    void *ctx;
} chan_wait_t;

/* Chunks of one version may arrive in any order (the writer sends them all
 * at once), and one may arrive twice (a retried call): counting bytes alone
 * would then publish a version with a range never written. */
#define CHAN_MAX_CHUNKS 4096 /* per version */

typedef struct chan_range {
    uint64_t offset, size;
} chan_range_t;

typedef struct chan {
    idtab_node_t node; /* cs->chans, keyed by the writer's object id */
    list_t polled;     /* cs->blocked while it waits for a reader or a creator */
    bool is_polled;
    id_object_t reader;
    int64_t num_readers;
    store_mutable_t obj; /* held in the store while registered */
    mut_writer_t w;
    bool open;           /* w's semaphores opened */
    bool writing;        /* a version acquired, chunks going in */
    chan_wait_t *final;  /* its last chunk, answered once the version is released */
    uint64_t total_data, total_metadata, written;
    chan_range_t *got;   /* byte ranges of this version already written */
    size_t ngot, capgot;
    list_t waiting;      /* chan_wait_t, in arrival order */
} chan_t;

struct chan_set {
    loop_t *loop;
    store_t *store;
    idtab_t *chans;
    list_t blocked; /* chan_t.polled */
    uint64_t poll_timer;
    unsigned idle_ticks; /* polls in a row that wrote nothing */
    uint64_t chunks_written;
    uint64_t versions_written;
    bool stopped;
};

/* Records [offset, offset + size) as written; false when it overlaps a
 * range written before or the version comes in more pieces than any writer
 * sends.  Ray's writers cut a version into chunks of ~98% of the gRPC
 * message limit, so a version has a few and a scan will do. */
static bool chan_take_range(chan_t *c, uint64_t offset, uint64_t size)
{
    if (size == 0)
        return true;
    if (c->ngot == CHAN_MAX_CHUNKS)
        return false;
    for (size_t i = 0; i < c->ngot; i++) {
        const chan_range_t *g = &c->got[i];
        if (offset < g->offset + g->size && g->offset < offset + size)
            return false;
    }
    if (c->ngot == c->capgot) {
        c->capgot = c->capgot ? 2 * c->capgot : 4;
        c->got = xrealloc(c->got, c->capgot * sizeof *c->got);
    }
    c->got[c->ngot++] = (chan_range_t){offset, size};
    return true;
}

static void chan_free(chan_t *c)
{
    free(c->got);
    free(c);
}

static chan_t *chan_of(idtab_node_t *n) { return n ? LIST_ENTRY(n, chan_t, node) : NULL; }

static void chan_answer(chan_wait_t *wt, int err, bool done)
{
    chan_chunk_cb cb = wt->cb;
    void *ctx = wt->ctx;
    free(wt);
    cb(ctx, err, done);
}

/* Every chunk still owed an answer gets `err` (the version in progress is
 * abandoned: a closed channel has no readers left to give it to). */
static void chan_fail_all(chan_t *c, int err)
{
    if (c->final || !list_empty(&c->waiting)) {
        char whex[ID_HEX_BUF];
        ID_TO_HEX(&c->node.id, whex);
        log_warn("channel from writer %s: chunks refused: %s", whex, cr_strerror(err));
    }
    c->writing = false;
    if (c->final) {
        chan_wait_t *f = c->final;
        c->final = NULL;
        chan_answer(f, err, false);
    }
    while (!list_empty(&c->waiting)) {
        chan_wait_t *wt = LIST_ENTRY(c->waiting.next, chan_wait_t, node);
        list_remove(&wt->node);
        chan_answer(wt, err, false);
    }
}

static void chan_on_poll(loop_t *loop, uint64_t id, void *data);

static void chan_block(chan_set_t *cs, chan_t *c)
{
    if (!c->is_polled) {
        list_insert_tail(&cs->blocked, &c->polled);
        c->is_polled = true;
    }
    if (!cs->poll_timer)
        cs->poll_timer = loop_add_timer(cs->loop,
                                        cs->idle_ticks < CHAN_POLL_FAST_TICKS ? CHAN_POLL_FAST_MS : CHAN_POLL_SLOW_MS,
                                        chan_on_poll, cs);
}

static void chan_unblock(chan_t *c)
{
    if (c->is_polled) {
        list_remove(&c->polled);
        c->is_polled = false;
    }
}

/* Moves a channel as far as it can go without waiting: open the
 * semaphores, acquire a version, copy what arrived, release. */
static void chan_advance(chan_set_t *cs, chan_t *c)
{
    for (;;) {
        if (!c->open) {
            int rc = mut_writer_open(&c->w, c->obj.header);
            if (rc == -EAGAIN)
                return chan_block(cs, c);
            if (rc != 0) {
                char hex[ID_HEX_BUF];
                ID_TO_HEX(&c->reader, hex);
                log_warn("channel into object %s: cannot open its semaphores: %s", hex, cr_strerror(rc));
                chan_unblock(c);
                return chan_fail_all(c, rc);
            }
            c->open = true;
        }
        if (c->final) { /* every byte in: publish the version */
            int rc = mut_write_release(&c->w);
            if (rc == -EAGAIN)
                return chan_block(cs, c);
            chan_unblock(c);
            if (rc != 0)
                return chan_fail_all(c, rc);
            chan_wait_t *f = c->final;
            c->final = NULL;
            c->writing = false;
            cs->versions_written++;
            chan_answer(f, 0, true);
            continue;
        }
        if (list_empty(&c->waiting))
            return chan_unblock(c);
        chan_wait_t *wt = LIST_ENTRY(c->waiting.next, chan_wait_t, node);
        if (!c->writing) {
            int rc = mut_write_acquire(&c->w, wt->chunk.total_data_size, wt->chunk.total_metadata_size,
                                       c->num_readers);
            if (rc == -EAGAIN)
                return chan_block(cs, c);
            chan_unblock(c);
            if (rc != 0)
                return chan_fail_all(c, rc);
            c->writing = true;
            c->total_data = wt->chunk.total_data_size;
            c->total_metadata = wt->chunk.total_metadata_size;
            c->written = 0;
            c->ngot = 0;
        }
        list_remove(&wt->node);
        if (wt->chunk.total_data_size != c->total_data || wt->chunk.total_metadata_size != c->total_metadata) {
            chan_answer(wt, -EINVAL, false); /* not of this version: the writer sends one at a time */
            continue;
        }
        if (!chan_take_range(c, wt->chunk.offset, wt->chunk.size)) {
            chan_answer(wt, -EINVAL, false); /* bytes of this version already written: a chunk sent twice */
            continue;
        }
        if (wt->chunk.size)
            memcpy(c->obj.buffer + wt->chunk.offset, wt->chunk.data, wt->chunk.size);
        c->written += wt->chunk.size;
        cs->chunks_written++;
        if (c->written >= c->total_data) {
            if (c->total_metadata)
                memcpy(c->obj.buffer + c->total_data, wt->chunk.metadata, c->total_metadata);
            c->final = wt;
            continue;
        }
        chan_answer(wt, 0, false);
    }
}

static void chan_on_poll(loop_t *loop, uint64_t id, void *data)
{
    chan_set_t *cs = data;
    cs->poll_timer = 0;
    uint64_t written = cs->chunks_written;
    /* Each blocked channel gets one try per tick; one that blocks again
     * goes back on the list for the next. */
    list_t round;
    list_init(&round);
    list_move_all(&round, &cs->blocked);
    while (!list_empty(&round)) {
        chan_t *c = LIST_ENTRY(round.next, chan_t, polled);
        list_remove(&c->polled);
        c->is_polled = false;
        chan_advance(cs, c);
    }
    if (cs->chunks_written != written)
        cs->idle_ticks = 0;
    else if (cs->idle_ticks < CHAN_POLL_FAST_TICKS)
        cs->idle_ticks++;
}

chan_set_t *chan_set_create(loop_t *loop, store_t *store)
{
    chan_set_t *cs = xcalloc(1, sizeof *cs);
    cs->loop = loop;
    cs->store = store;
    cs->chans = idtab_xcreate();
    list_init(&cs->blocked);
    return cs;
}

void chan_set_stop(chan_set_t *cs)
{
    if (!cs || cs->stopped)
        return;
    cs->stopped = true;
    loop_cancel_timer(cs->loop, cs->poll_timer);
    cs->poll_timer = 0;
    for (idtab_node_t *n = idtab_first(cs->chans); n; n = idtab_next(cs->chans, n)) {
        chan_t *c = chan_of(n);
        chan_unblock(c);
        chan_fail_all(c, -ECANCELED);
        if (c->open)
            mut_set_error(&c->w);
    }
}

void chan_set_destroy(chan_set_t *cs)
{
    if (!cs)
        return;
    chan_set_stop(cs);
    idtab_node_t *n = idtab_first(cs->chans);
    while (n) {
        idtab_node_t *next = idtab_next(cs->chans, n);
        chan_t *c = chan_of(n);
        idtab_remove(cs->chans, n);
        mut_writer_close(&c->w, true);
        store_unhold(cs->store, &c->reader);
        chan_free(c);
        n = next;
    }
    idtab_destroy(cs->chans);
    free(cs);
}

int chan_register(chan_set_t *cs, const id_object_t *writer, int64_t num_readers, const id_object_t *reader)
{
    if (cs->stopped)
        return -ECANCELED;
    chan_t *c = chan_of(idtab_find(cs->chans, writer));
    if (c)
        return memcmp(&c->reader, reader, sizeof *reader) == 0 && c->num_readers == num_readers ? 0 : -EEXIST;
    if (num_readers < 1)
        return -EINVAL;
    c = xcalloc(1, sizeof *c);
    int rc = store_hold_mutable(cs->store, reader, &c->obj);
    if (rc != 0) {
        chan_free(c);
        return rc == -EAGAIN ? -ENOENT : rc;
    }
    c->node.id = *writer;
    c->reader = *reader;
    c->num_readers = num_readers;
    list_init(&c->waiting);
    (void)idtab_insert(cs->chans, &c->node); /* absent: looked up above */
    char whex[ID_HEX_BUF], rhex[ID_HEX_BUF];
    ID_TO_HEX(writer, whex);
    ID_TO_HEX(reader, rhex);
    log_info("channel from writer %s into object %s for %lld readers", whex, rhex, (long long)num_readers);
    /* Open now when we can, so the first push finds it ready; a creator
     * still at work is waited for by the first push. */
    if (mut_writer_open(&c->w, c->obj.header) == 0)
        c->open = true;
    return 0;
}

int chan_push(chan_set_t *cs, const id_object_t *writer, const chan_chunk_t *chunk, chan_chunk_cb cb, void *ctx)
{
    chan_t *c = chan_of(idtab_find(cs->chans, writer));
    if (!c || cs->stopped)
        return -ENOENT;
    const chan_chunk_t *k = chunk;
    if (k->total_data_size > c->obj.capacity || k->total_metadata_size > c->obj.capacity - k->total_data_size ||
        k->offset > k->total_data_size || k->size > k->total_data_size - k->offset)
        return -EINVAL;
    chan_wait_t *wt = xcalloc(1, sizeof *wt);
    wt->chunk = *chunk;
    wt->cb = cb;
    wt->ctx = ctx;
    list_insert_tail(&c->waiting, &wt->node);
    cs->idle_ticks = 0; /* the writer is active: wait for its readers closely */
    if (!c->is_polled)
        chan_advance(cs, c);
    return 0;
}

void chan_get_stats(const chan_set_t *cs, chan_stats_t *out)
{
    *out = (chan_stats_t){0};
    if (!cs)
        return;
    out->channels = idtab_count(cs->chans);
    for (const list_t *n = cs->blocked.next; n != &cs->blocked; n = n->next)
        out->blocked++;
    out->versions_written = cs->versions_written;
}
