/* The store's socket side: accepting clients, reading frames, dispatching
 * requests, writing replies with descriptors interleaved, and the two
 * queues of requests that cannot be answered at once (gets waiting for
 * objects, creates waiting for memory).
 *
 * Ordering.  Ray's client is synchronous: it sends one request and reads
 * its reply (and any descriptors after it) before sending the next.  The
 * store therefore answers strictly in request order: while a client's Get
 * is pending, its later frames stay unread in its decoder (and the socket
 * is not read, so a flood costs no memory), and they are processed once
 * the Get is answered.
 *
 * Descriptors.  A descriptor travels as one byte with an SCM_RIGHTS
 * message right after the reply that announces it.  Replies are appended
 * to an output buffer; a descriptor is recorded as a mark at the stream
 * position where it belongs, holding its own dup() so that freeing the
 * segment meanwhile cannot send the wrong file.  The writer sends bytes up
 * to the next mark, then the mark, and so on, however the socket's buffer
 * space falls.
 *
 * Which descriptors are sent mirrors the client's cache exactly: the client
 * keeps one mapping per (store fd number, unique id) and receives a
 * descriptor only for a key it has not mapped; it drops a fallback mapping
 * when a Release reply says should_unmap.  The store sends a segment's
 * descriptor the first time a reply lists that segment to this client and
 * forgets that it did exactly when it answers should_unmap=true.
 *
 * Lifetime.  A client is closed (its state undone, its descriptor closed)
 * only from its own I/O callback or at store shutdown; problems noticed
 * while serving another client mark it broken and wake its callback, so no
 * caller ever holds a pointer to a freed client. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/frame.h"
#include "common/log.h"
#include "object_store/store_int.h"
#include "common/u64map.h"

/* Stop reading a client whose unread replies pile up beyond this. */
#define OUT_HIGH_WATER ((size_t)4 << 20)
/* Reads per wake-up, so one busy client cannot starve the rest. */
#define READS_PER_WAKE 16
#define READ_CHUNK 65536
/* A synchronous client has at most one create outstanding; far more is
 * abuse (each unanswered request holds memory until retried). */
#define MAX_CREATES_PER_CLIENT 256

typedef struct {
    uint64_t pos; /* stream offset the descriptor goes at */
    int fd;       /* our dup, closed once sent */
} fd_mark_t;

struct store_client {
    store_t *s;
    list_t node; /* s->clients */
    int fd;
    uint64_t cid;
    frame_decoder_t *dec;
    frame_wbuf_t out;
    uint64_t appended; /* stream bytes queued so far */
    uint64_t written;  /* stream bytes sent so far */
    fd_mark_t *marks;
    size_t mark_head, mark_count, mark_cap;
    u64map_t *refs;   /* objects held: key = object address */
    u64map_t *sent;   /* fallback segments whose descriptor it has */
    bool sent_region;
    store_get_req_t *get; /* the pending Get, if any */
    list_t creqs; /* store_create_req_t: queued or answered-later */
    uint32_t ncreqs;
    unsigned interest;
    bool kick;    /* run the I/O callback soon: a reply was queued from elsewhere */
    bool broken;  /* close at the next callback */
    bool closing;
    bool in_cb;
};

struct store_get_req {
    store_client_t *client;
    uint32_t n;
    id_object_t *ids;
    uint32_t missing; /* distinct IDs still awaited */
    uint64_t timer;
};

typedef struct {
    idtab_node_t node;
    store_get_req_t **reqs;
    uint32_t count, cap;
} waiter_t;

struct store_create_req {
    list_t qnode; /* s->cq, while queued */
    list_t cnode; /* client->creqs */
    store_client_t *client;
    uint64_t request_id;
    bool queued;
    plasma_err_t error; /* once answered */
    id_object_t oid;
    uint64_t data_size, metadata_size, size;
    bool is_mutable;
    int32_t source;
    store_owner_t owner;
    char ip[PLASMA_MAX_OWNER_IP_LEN + 1];
};

static void client_update_interest(store_client_t *c);
static void client_close(store_client_t *c, bool quiet, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- small helpers ---- */

static bool client_blocked(const store_client_t *c)
{
    return c->get != NULL || c->out.len - c->out.off > OUT_HIGH_WATER;
}

static bool client_holds(const store_client_t *c, const store_obj_t *o)
{
    return c->refs && u64map_get(c->refs, (uint64_t)(uintptr_t)o, NULL);
}

/* Adds the client's hold on o (idempotent, as in Ray: one reference per
 * client per object however often it asks).  -ENOMEM if it cannot be
 * tracked, in which case nothing changed. */
static int client_hold(store_client_t *c, store_obj_t *o)
{
    int r = u64map_put(c->refs, (uint64_t)(uintptr_t)o, NULL);
    if (r < 0)
        return r;
    if (r == 1)
        store_obj_ref(c->s, o);
    return 0;
}

/* Forgets the hold without touching o's count; the caller settles it. */
static bool client_forget(store_client_t *c, store_obj_t *o)
{
    return u64map_del(c->refs, (uint64_t)(uintptr_t)o);
}

/* Wakes the client's callback from outside it (a reply was queued). */
static void client_kick(store_client_t *c)
{
    c->kick = true;
    client_update_interest(c);
}

static void client_break(store_client_t *c, const char *why)
{
    if (!c->broken)
        log_warn("object store: client %" PRIu64 " must be dropped: %s", c->cid, why);
    c->broken = true;
    client_kick(c);
}

/* ---- output ---- */

static int client_send(store_client_t *c, int64_t type, const uint8_t *buf, size_t len)
{
    int r = frame_encode(&c->out, c->s->opts.cookie, type, buf, len);
    if (r == 0)
        c->appended += FRAME_HEADER_SIZE + len;
    return r;
}

static int client_queue_fd(store_client_t *c, int fd)
{
    if (c->mark_count == c->mark_cap) {
        size_t cap = c->mark_cap ? c->mark_cap * 2 : 4;
        fd_mark_t *m = malloc(cap * sizeof *m);
        if (!m)
            return -ENOMEM;
        for (size_t i = 0; i < c->mark_count; i++)
            m[i] = c->marks[(c->mark_head + i) % c->mark_cap];
        free(c->marks);
        c->marks = m;
        c->mark_cap = cap;
        c->mark_head = 0;
    }
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (d < 0)
        return -errno;
    c->marks[(c->mark_head + c->mark_count) % c->mark_cap] = (fd_mark_t){c->appended, d};
    c->mark_count++;
    return 0;
}

/* Queues the segment's descriptor unless this client already has it. */
static int client_give_segment(store_client_t *c, const seg_t *seg)
{
    bool region = seg == c->s->region;
    if (region ? c->sent_region : u64map_get(c->sent, seg_unique_id(seg), NULL))
        return 0;
    if (!region) {
        int r = u64map_put(c->sent, seg_unique_id(seg), NULL);
        if (r < 0)
            return r;
    }
    int r = client_queue_fd(c, seg_fd(seg));
    if (r < 0) {
        if (!region)
            u64map_del(c->sent, seg_unique_id(seg));
        return r;
    }
    if (region)
        c->sent_region = true;
    return 0;
}

/* One byte carrying one descriptor, as Ray's recv_fd expects. */
static int send_fd(int sock, int fd)
{
    char byte = 0;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = ctl.buf,
                         .msg_controllen = sizeof ctl.buf};
    struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(h), &fd, sizeof fd);
    for (;;) {
        ssize_t r = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r == 1)
            return 0;
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 ? -errno : -EIO;
    }
}

/* Writes what the socket takes.  Returns 0 (done or would block) or -errno. */
static int client_flush(store_client_t *c)
{
    for (;;) {
        size_t n;
        const uint8_t *p = frame_wbuf_pending(&c->out, &n);
        if (c->mark_count) {
            fd_mark_t *m = &c->marks[c->mark_head];
            if (m->pos == c->written) {
                int r = send_fd(c->fd, m->fd);
                if (r == -EAGAIN || r == -EWOULDBLOCK)
                    return 0;
                if (r < 0)
                    return r;
                close(m->fd);
                c->mark_head = (c->mark_head + 1) % c->mark_cap;
                c->mark_count--;
                continue;
            }
            if (m->pos - c->written < n)
                n = (size_t)(m->pos - c->written);
        }
        if (n == 0)
            return 0;
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -errno;
        }
        frame_wbuf_consume(&c->out, (size_t)w);
        c->written += (uint64_t)w;
    }
}

static void client_update_interest(store_client_t *c)
{
    if (c->closing)
        return;
    unsigned want = 0;
    if (!client_blocked(c) && !c->broken)
        want |= LOOP_READABLE;
    if (c->out.len > c->out.off || c->mark_count || c->kick)
        want |= LOOP_WRITABLE;
    if (want != c->interest && loop_mod_fd(c->s->loop, c->fd, want) == 0)
        c->interest = want;
}

/* ---- gets ---- */

static void waiter_remove_req(store_t *s, const id_object_t *id, store_get_req_t *req)
{
    waiter_t *w = (waiter_t *)idtab_find(s->waiters, id);
    if (!w)
        return;
    uint32_t j = 0;
    for (uint32_t i = 0; i < w->count; i++)
        if (w->reqs[i] != req)
            w->reqs[j++] = w->reqs[i];
    w->count = j;
    if (w->count == 0) {
        idtab_remove(s->waiters, &w->node);
        free(w->reqs);
        free(w);
    }
}

/* Registers req as waiting for id.  Returns 1 if newly registered, 0 if req
 * already waits for it (a repeated ID), -ENOMEM. */
static int waiter_add(store_t *s, const id_object_t *id, store_get_req_t *req)
{
    waiter_t *w = (waiter_t *)idtab_find(s->waiters, id);
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w)
            return -ENOMEM;
        w->node.id = *id;
        (void)idtab_insert(s->waiters, &w->node);
    }
    /* A request registers its IDs in one go, so a repeat is the last entry. */
    if (w->count && w->reqs[w->count - 1] == req)
        return 0;
    if (w->count == w->cap) {
        uint32_t cap = w->cap ? w->cap * 2 : 2;
        store_get_req_t **r = realloc(w->reqs, cap * sizeof *r);
        if (!r) {
            if (!w->count) {
                idtab_remove(s->waiters, &w->node);
                free(w);
            }
            return -ENOMEM;
        }
        w->reqs = r;
        w->cap = cap;
    }
    w->reqs[w->count++] = req;
    return 1;
}

/* Unhooks req from every index and frees it; the client is not told. */
static void get_discard(store_t *s, store_get_req_t *req)
{
    for (uint32_t i = 0; i < req->n; i++)
        waiter_remove_req(s, &req->ids[i], req);
    if (req->timer)
        loop_cancel_timer(s->loop, req->timer);
    if (req->client->get == req) {
        req->client->get = NULL;
        s->num_pending_gets--;
    }
    free(req->ids);
    free(req);
}

/* Queues the reply for req (objects the client now holds are found, the
 * rest are marked absent), then discards req. */
static int get_reply(store_t *s, store_get_req_t *req)
{
    store_client_t *c = req->client;
    uint32_t n = req->n;
    int r = -ENOMEM;
    plasma_spec_t *specs = calloc(n ? n : 1, sizeof *specs);
    const seg_t **segs = calloc((size_t)n + 1, sizeof *segs);
    int32_t *fds = calloc((size_t)n + 1, sizeof *fds);
    int64_t *uids = calloc((size_t)n + 1, sizeof *uids);
    int64_t *mms = calloc((size_t)n + 1, sizeof *mms);
    if (!specs || !segs || !fds || !uids || !mms)
        goto out;
    uint32_t nseg = 0;
    uint64_t epoch = ++s->reply_epoch;
    bool region_listed = false;
    for (uint32_t i = 0; i < n; i++) {
        store_obj_t *o = store_obj_find(s, &req->ids[i]);
        if (!o || o->state != STORE_OBJ_SEALED || !client_holds(c, o)) {
            specs[i].data_size = UINT64_MAX;
            continue;
        }
        store_obj_spec(s, o, &specs[i]);
        const seg_t *seg = store_obj_segment(s, o);
        if (o->fallback) {
            if (o->reply_mark == epoch)
                continue;
            o->reply_mark = epoch;
        } else {
            if (region_listed)
                continue;
            region_listed = true;
        }
        segs[nseg] = seg;
        fds[nseg] = seg_fd(seg);
        uids[nseg] = (int64_t)seg_unique_id(seg);
        mms[nseg] = (int64_t)(seg_size(seg) + STORE_MMAP_GAP);
        nseg++;
    }
    const uint8_t *buf;
    size_t len;
    r = plasma_encode_get_reply(s->fbb, req->ids, specs, n, fds, uids, mms, nseg, &buf, &len);
    if (r == 0)
        r = client_send(c, PLASMA_MSG_GET_REPLY, buf, len);
    for (uint32_t i = 0; r == 0 && i < nseg; i++)
        r = client_give_segment(c, segs[i]);
out:
    free(specs);
    free(segs);
    free(fds);
    free(uids);
    free(mms);
    get_discard(s, req);
    return r;
}

/* Answers a pending Get from outside the client's own callback. */
static void get_finish_async(store_t *s, store_get_req_t *req)
{
    store_client_t *c = req->client;
    if (get_reply(s, req) != 0)
        client_break(c, "cannot queue a get reply");
    else
        client_kick(c);
}

static void get_on_timeout(loop_t *loop, uint64_t id, void *data)
{
    store_get_req_t *req = data;
    req->timer = 0;
    get_finish_async(req->client->s, req);
}

void store_conn_object_sealed(store_t *s, store_obj_t *o)
{
    waiter_t *w = (waiter_t *)idtab_find(s->waiters, &o->node.id);
    if (!w)
        return;
    /* Detached first: finishing a request unhooks it from its other IDs,
     * and this list must not change under us. */
    idtab_remove(s->waiters, &w->node);
    for (uint32_t i = 0; i < w->count; i++) {
        store_get_req_t *req = w->reqs[i];
        if (client_hold(req->client, o) != 0) {
            client_break(req->client, "out of memory tracking references");
            continue;
        }
        if (--req->missing == 0)
            get_finish_async(s, req);
    }
    free(w->reqs);
    free(w);
}

static int handle_get(store_client_t *c, const uint8_t *p, size_t len)
{
    store_t *s = c->s;
    plasma_ids_t ids;
    int64_t timeout;
    if (plasma_decode_get_req(p, len, &ids, &timeout) != 0)
        return CR_EBADMSG;
    store_get_req_t *req = calloc(1, sizeof *req);
    if (!req)
        return -ENOMEM;
    req->client = c;
    req->n = ids.count;
    req->ids = malloc((size_t)(ids.count ? ids.count : 1) * sizeof *req->ids);
    if (!req->ids) {
        free(req);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < ids.count; i++) {
        if (plasma_ids_get(&ids, i, &req->ids[i]) != 0) {
            free(req->ids);
            free(req);
            return CR_EBADMSG;
        }
    }
    int r = 0;
    for (uint32_t i = 0; i < req->n && r == 0; i++) {
        store_obj_t *o = store_obj_find(s, &req->ids[i]);
        if (o && o->state == STORE_OBJ_SEALED) {
            r = client_hold(c, o);
        } else {
            int w = waiter_add(s, &req->ids[i], req);
            if (w < 0)
                r = w;
            else
                req->missing += (uint32_t)w;
        }
    }
    if (r != 0) {
        get_discard(s, req);
        return r;
    }
    /* -1 waits forever; other negative values are already past. */
    if (req->missing == 0 || (timeout < 0 && timeout != -1) || timeout == 0)
        return get_reply(s, req);
    c->get = req;
    s->num_pending_gets++;
    if (timeout > 0)
        req->timer = loop_add_timer(s->loop, (uint64_t)timeout, get_on_timeout, req);
    return 0;
}

/* ---- creates ---- */

static int reply_create(store_client_t *c, const id_object_t *oid, uint64_t retry_id,
                        plasma_err_t err)
{
    store_t *s = c->s;
    plasma_create_reply_t rep = {.object_id = *oid, .retry_with_request_id = retry_id, .error = err};
    const seg_t *seg = NULL;
    if (retry_id == 0 && err == PLASMA_OK) {
        store_obj_t *o = store_obj_find(s, oid);
        if (!o || o->state != STORE_OBJ_CREATED || !client_holds(c, o)) {
            rep.error = PLASMA_UNEXPECTED_ERROR;
        } else {
            store_obj_spec(s, o, &rep.spec);
            seg = store_obj_segment(s, o);
            rep.store_fd = seg_fd(seg);
            rep.unique_fd_id = (int64_t)seg_unique_id(seg);
            rep.mmap_size = (int64_t)(seg_size(seg) + STORE_MMAP_GAP);
        }
    }
    const uint8_t *buf;
    size_t len;
    int r = plasma_encode_create_reply(s->fbb, &rep, &buf, &len);
    if (r == 0)
        r = client_send(c, PLASMA_MSG_CREATE_REPLY, buf, len);
    if (r == 0 && seg)
        r = client_give_segment(c, seg);
    return r;
}

static store_create_info_t creq_info(const store_create_req_t *q)
{
    return (store_create_info_t){.id = q->oid,
                                 .data_size = q->data_size,
                                 .metadata_size = q->metadata_size,
                                 .is_mutable = q->is_mutable,
                                 .source = q->source,
                                 .owner = &q->owner};
}

static void creq_unqueue(store_t *s, store_create_req_t *q)
{
    if (!q->queued)
        return;
    list_remove(&q->qnode);
    q->queued = false;
    s->cq_count--;
    s->cq_bytes -= q->size;
}

static void creq_free(store_t *s, store_create_req_t *q)
{
    creq_unqueue(s, q);
    store_client_t *c = q->client;
    list_remove(&q->cnode);
    c->ncreqs--;
    free(q);
}

/* Records the outcome; the reply goes out when the client asks again. */
static void creq_answer(store_t *s, store_create_req_t *q, plasma_err_t err, store_obj_t *o)
{
    creq_unqueue(s, q);
    if (err == PLASMA_OK && client_hold(q->client, o) != 0) {
        store_obj_abort(s, o);
        err = PLASMA_OUT_OF_MEMORY;
    }
    q->error = err;
}

static void cq_on_timer(loop_t *loop, uint64_t id, void *data);

static void cq_arm(store_t *s)
{
    if (!s->cq_timer)
        s->cq_timer = loop_add_timer(s->loop, s->opts.full_delay_ms, cq_on_timer, s);
}

/* Serves queued creates in arrival order.  One that does not fit blocks
 * those behind it (as in Ray: a large object is not starved by small
 * ones); it waits while the raylet spills, then for the grace period, and
 * then goes to a fallback file, so a create ends in success or OutOfDisk,
 * never in OutOfMemory. */
static void cq_process(store_t *s)
{
    if (s->cq_timer)
        return;
    while (!list_empty(&s->cq)) {
        store_create_req_t *q = LIST_ENTRY(s->cq.next, store_create_req_t, qnode);
        store_create_info_t in = creq_info(q);
        store_obj_t *o = NULL;
        plasma_err_t err = store_obj_create(s, &in, false, &o);
        if (err == PLASMA_OUT_OF_MEMORY && store_disk_full(s)) {
            /* Neither spilling nor a fallback file has room: fail it now
             * (the worker raises OutOfDiskError), as Ray does. */
            log_info("out of disk: cannot create a %" PRIu64 "-byte object", q->size);
            err = PLASMA_OUT_OF_DISK;
        }
        if (err != PLASMA_OUT_OF_MEMORY) {
            creq_answer(s, q, err, o);
            s->oom_since_ms = -1;
            s->logged_full = false;
            continue;
        }
        if (s->spill_cb && s->spill_cb(s->spill_ctx, q->size)) {
            s->oom_since_ms = -1;
            cq_arm(s);
            return;
        }
        int64_t now = (int64_t)loop_now_ms(s->loop);
        if (s->oom_since_ms < 0)
            s->oom_since_ms = now;
        if (!s->logged_full) {
            char dump[1024];
            store_debug_string(s, dump, sizeof dump);
            log_info("object store at capacity (a %" PRIu64 "-byte create is waiting)\n%s",
                     q->size, dump);
            s->logged_full = true;
        }
        if ((uint64_t)(now - s->oom_since_ms) < s->opts.oom_grace_period_ms) {
            cq_arm(s);
            return;
        }
        err = store_obj_create(s, &in, true, &o);
        creq_answer(s, q, err, o);
    }
}

static void cq_on_timer(loop_t *loop, uint64_t id, void *data)
{
    store_t *s = data;
    s->cq_timer = 0;
    cq_process(s);
}

/* Sends the final answer if there is one (and forgets the request), else
 * the retry id. */
static int creq_reply(store_client_t *c, store_create_req_t *q)
{
    if (q->queued)
        return reply_create(c, &q->oid, q->request_id, PLASMA_OK);
    id_object_t oid = q->oid;
    plasma_err_t err = q->error;
    creq_free(c->s, q);
    return reply_create(c, &oid, 0, err);
}

static int handle_create(store_client_t *c, const uint8_t *p, size_t len)
{
    store_t *s = c->s;
    plasma_create_req_t req;
    if (plasma_decode_create_req(p, len, &req) != 0)
        return CR_EBADMSG;
    if (req.device_num != 0) {
        /* No GPU objects here; Ray answers the same way. */
        return reply_create(c, &req.object_id, 0, PLASMA_OUT_OF_MEMORY);
    }
    store_owner_t owner = {.node_id = req.owner_node_id,
                           .ip = req.owner_ip,
                           .port = req.owner_port,
                           .worker_id = req.owner_worker_id};
    if (req.try_immediately) {
        store_create_info_t in = {.id = req.object_id,
                                  .data_size = req.data_size,
                                  .metadata_size = req.metadata_size,
                                  .is_mutable = req.is_mutable,
                                  .source = req.source,
                                  .owner = &owner};
        store_obj_t *o = NULL;
        plasma_err_t err = store_obj_create(s, &in, true, &o);
        if (err == PLASMA_OK && client_hold(c, o) != 0) {
            store_obj_abort(s, o);
            return -ENOMEM;
        }
        return reply_create(c, &req.object_id, 0, err);
    }
    if (c->ncreqs >= MAX_CREATES_PER_CLIENT)
        return CR_ETOOBIG;
    store_create_req_t *q = calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    list_init(&q->qnode);
    list_init(&q->cnode);
    q->client = c;
    q->request_id = s->next_request_id++;
    q->oid = req.object_id;
    q->data_size = req.data_size;
    q->metadata_size = req.metadata_size;
    q->is_mutable = req.is_mutable;
    q->source = req.source;
    /* Saturating: the size only orders and reports; creation re-checks. */
    uint64_t hdr = req.is_mutable ? STORE_MUTABLE_HEADER : 0;
    uint64_t size;
    if (__builtin_add_overflow(req.data_size, req.metadata_size, &size) ||
        __builtin_add_overflow(size, hdr, &size))
        size = UINT64_MAX;
    q->size = size;
    memcpy(q->ip, req.owner_ip, req.owner_ip_len);
    q->ip[req.owner_ip_len] = '\0';
    q->owner = owner;
    q->owner.ip = q->ip;
    list_insert_head(&c->creqs, &q->cnode);
    c->ncreqs++;
    q->queued = true;
    list_insert_tail(&s->cq, &q->qnode);
    s->cq_count++;
    s->cq_bytes += q->size; /* unsigned: the later subtraction undoes it exactly */
    cq_process(s);
    return creq_reply(c, q);
}

static int handle_create_retry(store_client_t *c, const uint8_t *p, size_t len)
{
    id_object_t oid;
    uint64_t rid;
    if (plasma_decode_create_retry_req(p, len, &oid, &rid) != 0)
        return CR_EBADMSG;
    LIST_FOREACH_ENTRY(store_create_req_t, q, &c->creqs, cnode)
        if (q->request_id == rid)
            return creq_reply(c, q);
    /* Unknown or already answered: Ray answers UnexpectedError too. */
    log_warn("object store: client %" PRIu64 " retried unknown create request %" PRIu64, c->cid,
             rid);
    return reply_create(c, &oid, 0, PLASMA_UNEXPECTED_ERROR);
}

/* ---- the other requests ---- */

static int handle_seal(store_client_t *c, const uint8_t *p, size_t len)
{
    store_t *s = c->s;
    id_object_t id;
    if (plasma_decode_id_req(p, len, &id) != 0)
        return CR_EBADMSG;
    store_obj_t *o = store_obj_find(s, &id);
    plasma_err_t err = PLASMA_OK;
    if (!o || !client_holds(c, o))
        err = PLASMA_OBJECT_NONEXISTENT;
    else if (o->state != STORE_OBJ_CREATED)
        err = PLASMA_UNEXPECTED_ERROR; /* sealed twice */
    if (err == PLASMA_OK)
        store_obj_seal(s, o);
    const uint8_t *buf;
    size_t blen;
    int r = plasma_encode_seal_reply(s->fbb, &id, err, &buf, &blen);
    return r ? r : client_send(c, PLASMA_MSG_SEAL_REPLY, buf, blen);
}

static int handle_abort(store_client_t *c, const uint8_t *p, size_t len)
{
    store_t *s = c->s;
    id_object_t id;
    if (plasma_decode_id_req(p, len, &id) != 0)
        return CR_EBADMSG;
    store_obj_t *o = store_obj_find(s, &id);
    if (o && o->state == STORE_OBJ_CREATED && client_holds(c, o)) {
        client_forget(c, o);
        o->refs--;
        store_obj_abort(s, o);
    } else {
        char hex[ID_HEX_BUF];
        log_warn("object store: client %" PRIu64 " may not abort %s (absent, sealed or not its "
                 "creator)",
                 c->cid, ID_TO_HEX(&id, hex));
    }
    /* Answered either way: the client blocks on the reply. */
    const uint8_t *buf;
    size_t blen;
    int r = plasma_encode_abort_reply(s->fbb, &id, &buf, &blen);
    return r ? r : client_send(c, PLASMA_MSG_ABORT_REPLY, buf, blen);
}

static int handle_release(store_client_t *c, const uint8_t *p, size_t len)
{
    store_t *s = c->s;
    id_object_t id;
    bool may_unmap;
    if (plasma_decode_release_req(p, len, &id, &may_unmap) != 0)
        return CR_EBADMSG;
    bool should_unmap = false;
    store_obj_t *o = store_obj_find(s, &id);
    if (o && client_forget(c, o)) {
        /* A fallback file holds exactly one object, so dropping the object
         * is dropping the file: the client may unmap it, and must be sent
         * the descriptor again if it asks later.  A client that did not
         * offer to unmap keeps its mapping, so it keeps counting as sent. */
        if (o->fallback && may_unmap) {
            should_unmap = true;
            u64map_del(c->sent, seg_unique_id(o->fallback));
        }
        store_obj_unref(s, o);
    }
    if (!may_unmap)
        return 0;
    const uint8_t *buf;
    size_t blen;
    int r = plasma_encode_release_reply(s->fbb, &id, should_unmap, PLASMA_OK, &buf, &blen);
    return r ? r : client_send(c, PLASMA_MSG_RELEASE_REPLY, buf, blen);
}

static int handle_delete(store_client_t *c, const uint8_t *p, size_t len)
{
    store_t *s = c->s;
    plasma_ids_t ids;
    if (plasma_decode_delete_req(p, len, &ids) != 0)
        return CR_EBADMSG;
    uint32_t n = ids.count;
    id_object_t *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    int32_t *errs = malloc((size_t)(n ? n : 1) * sizeof *errs);
    int r = (!v || !errs) ? -ENOMEM : 0;
    for (uint32_t i = 0; r == 0 && i < n; i++)
        if (plasma_ids_get(&ids, i, &v[i]) != 0)
            r = CR_EBADMSG;
    for (uint32_t i = 0; r == 0 && i < n; i++) {
        store_obj_t *o = store_obj_find(s, &v[i]);
        errs[i] = o ? store_obj_delete(s, o) : PLASMA_OBJECT_NONEXISTENT;
    }
    if (r == 0) {
        const uint8_t *buf;
        size_t blen;
        r = plasma_encode_delete_reply(s->fbb, v, errs, n, &buf, &blen);
        if (r == 0)
            r = client_send(c, PLASMA_MSG_DELETE_REPLY, buf, blen);
    }
    free(v);
    free(errs);
    return r;
}

static int handle_contains(store_client_t *c, const uint8_t *p, size_t len)
{
    id_object_t id;
    if (plasma_decode_id_req(p, len, &id) != 0)
        return CR_EBADMSG;
    const uint8_t *buf;
    size_t blen;
    int r = plasma_encode_contains_reply(c->s->fbb, &id, store_contains(c->s, &id), &buf, &blen);
    return r ? r : client_send(c, PLASMA_MSG_CONTAINS_REPLY, buf, blen);
}

static int handle_connect(store_client_t *c, const uint8_t *p, size_t len)
{
    /* The request is an empty table; check it is a table all the same. */
    fb_table_t t;
    if (fb_root(p, len, &t) != 0)
        return CR_EBADMSG;
    const uint8_t *buf;
    size_t blen;
    int r = plasma_encode_connect_reply(c->s->fbb, (int64_t)c->s->capacity, &buf, &blen);
    return r ? r : client_send(c, PLASMA_MSG_CONNECT_REPLY, buf, blen);
}

static int handle_debug_string(store_client_t *c, const uint8_t *p, size_t len)
{
    fb_table_t t;
    if (fb_root(p, len, &t) != 0)
        return CR_EBADMSG;
    char text[2048];
    size_t n = store_debug_string(c->s, text, sizeof text);
    if (n >= sizeof text)
        n = sizeof text - 1;
    const uint8_t *buf;
    size_t blen;
    int r = plasma_encode_debug_string_reply(c->s->fbb, text, n, &buf, &blen);
    return r ? r : client_send(c, PLASMA_MSG_GET_DEBUG_STRING_REPLY, buf, blen);
}

/* ---- dispatch ---- */

/* 1 when the client asked to disconnect, 0 when handled, else an error. */
static int handle_frame(store_client_t *c, const frame_t *f)
{
    frame_recorder_add(c->s->recorder, f->type, f->payload, f->len);
    switch (f->type) {
    case PLASMA_MSG_DISCONNECT_CLIENT:
        return 1;
    case PLASMA_MSG_CREATE_REQUEST:
        return handle_create(c, f->payload, f->len);
    case PLASMA_MSG_CREATE_RETRY_REQUEST:
        return handle_create_retry(c, f->payload, f->len);
    case PLASMA_MSG_ABORT_REQUEST:
        return handle_abort(c, f->payload, f->len);
    case PLASMA_MSG_SEAL_REQUEST:
        return handle_seal(c, f->payload, f->len);
    case PLASMA_MSG_GET_REQUEST:
        return handle_get(c, f->payload, f->len);
    case PLASMA_MSG_RELEASE_REQUEST:
        return handle_release(c, f->payload, f->len);
    case PLASMA_MSG_DELETE_REQUEST:
        return handle_delete(c, f->payload, f->len);
    case PLASMA_MSG_CONTAINS_REQUEST:
        return handle_contains(c, f->payload, f->len);
    case PLASMA_MSG_CONNECT_REQUEST:
        return handle_connect(c, f->payload, f->len);
    case PLASMA_MSG_GET_DEBUG_STRING_REQUEST:
        return handle_debug_string(c, f->payload, f->len);
    default:
        return -ENOTSUP;
    }
}

static void client_dispatch(store_client_t *c)
{
    while (!c->closing && !c->broken && !client_blocked(c)) {
        frame_t f;
        int r = frame_decoder_next(c->dec, &f);
        if (r == 0)
            return;
        if (r < 0) {
            client_close(c, false, "%s",
                         r == CR_ETOOBIG ? "frame length over the limit"
                                         : "bad frame header (wrong cookie or negative length)");
            return;
        }
        r = handle_frame(c, &f);
        if (r == 1) {
            client_close(c, true, "disconnect requested");
        } else if (r == -ENOTSUP) {
            client_close(c, false, "unexpected message type %" PRId64 " (%s)", f.type,
                         plasma_msg_name(f.type));
        } else if (r == CR_EBADMSG) {
            client_close(c, false, "malformed %s (%zu bytes)", plasma_msg_name(f.type), f.len);
        } else if (r == CR_ETOOBIG) {
            client_close(c, false, "more than %d create requests outstanding",
                         MAX_CREATES_PER_CLIENT);
        } else if (r < 0) {
            client_close(c, false, "cannot handle %s: %s", plasma_msg_name(f.type),
                         cr_strerror(r));
        }
    }
}

static void client_read(store_client_t *c)
{
    for (int i = 0; i < READS_PER_WAKE && !c->closing && !c->broken && !client_blocked(c); i++) {
        uint8_t *space;
        size_t avail;
        int r = frame_decoder_reserve(c->dec, READ_CHUNK, &space, &avail);
        if (r < 0) {
            client_close(c, false, "cannot buffer input: %s", cr_strerror(r));
            return;
        }
        ssize_t n = recv(c->fd, space, avail, MSG_DONTWAIT);
        if (n > 0) {
            frame_decoder_commit(c->dec, (size_t)n);
            client_dispatch(c);
            continue;
        }
        if (n == 0) {
            if (frame_decoder_pending(c->dec))
                client_close(c, false, "connection closed inside a frame (%zu bytes pending)",
                             frame_decoder_pending(c->dec));
            else
                client_close(c, true, "connection closed");
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            client_close(c, false, "read failed: %s", strerror(errno));
        return;
    }
}

static void client_free(store_client_t *c)
{
    frame_decoder_destroy(c->dec);
    frame_wbuf_free(&c->out);
    free(c->marks);
    u64map_destroy(c->refs);
    u64map_destroy(c->sent);
    free(c);
}

static void client_on_io(loop_t *loop, int fd, unsigned events, void *data)
{
    store_client_t *c = data;
    c->in_cb = true;
    if (c->broken)
        client_close(c, false, "dropped after an internal failure");
    else if (events & LOOP_ERROR)
        client_close(c, false, "socket error");
    if (!c->closing) {
        int r = client_flush(c);
        if (r < 0)
            client_close(c, r == -EPIPE || r == -ECONNRESET, "write failed: %s", cr_strerror(r));
    }
    c->kick = false;
    if (!c->closing)
        client_dispatch(c); /* frames held back while a get was pending */
    if (!c->closing && (events & (LOOP_READABLE | LOOP_HANGUP))) {
        if (!client_blocked(c))
            client_read(c);
        else if (events & LOOP_HANGUP)
            client_close(c, true, "hung up with a request pending");
    }
    if (!c->closing) {
        int r = client_flush(c);
        if (r < 0)
            client_close(c, r == -EPIPE || r == -ECONNRESET, "write failed: %s", cr_strerror(r));
    }
    if (!c->closing)
        client_update_interest(c);
    c->in_cb = false;
    if (c->closing)
        client_free(c);
}

/* Undoes everything the client holds: its pending get and creates, its
 * references (unsealed objects it created are freed), its descriptor. */
static void client_close(store_client_t *c, bool quiet, const char *fmt, ...)
{
    if (c->closing)
        return;
    c->closing = true;
    store_t *s = c->s;
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (quiet)
        log_debug("object store: client %" PRIu64 " disconnected: %s", c->cid, why);
    else
        log_warn("object store: closing client %" PRIu64 ": %s", c->cid, why);

    /* Replies to the requests before the offence still go out if the
     * socket takes them now; nothing waits for them. */
    (void)client_flush(c);
    if (c->get)
        get_discard(s, c->get);
    while (!list_empty(&c->creqs))
        creq_free(s, LIST_ENTRY(c->creqs.next, store_create_req_t, cnode));
    size_t n = c->refs ? u64map_count(c->refs) : 0;
    if (n) {
        /* Snapshot first: settling an object may run callbacks. */
        uint64_t *keys = malloc(n * sizeof *keys);
        size_t pos = 0, k = 0;
        uint64_t key;
        if (keys) {
            while (k < n && u64map_next(c->refs, &pos, &key, NULL))
                keys[k++] = key;
            for (size_t i = 0; i < k; i++) {
                store_obj_t *o = (store_obj_t *)(uintptr_t)keys[i];
                client_forget(c, o);
                if (o->state == STORE_OBJ_CREATED) {
                    o->refs--;
                    if (o->refs == 0)
                        store_obj_abort(s, o);
                } else {
                    store_obj_unref(s, o);
                }
            }
            free(keys);
        } else {
            /* No memory for a snapshot: drain one at a time. */
            while (u64map_count(c->refs)) {
                pos = 0;
                if (!u64map_next(c->refs, &pos, &key, NULL))
                    break;
                store_obj_t *o = (store_obj_t *)(uintptr_t)key;
                client_forget(c, o);
                if (o->state == STORE_OBJ_CREATED) {
                    if (--o->refs == 0)
                        store_obj_abort(s, o);
                } else {
                    store_obj_unref(s, o);
                }
            }
        }
    }
    loop_del_fd(s->loop, c->fd);
    close(c->fd);
    c->fd = -1;
    while (c->mark_count) {
        close(c->marks[c->mark_head].fd);
        c->mark_head = (c->mark_head + 1) % c->mark_cap;
        c->mark_count--;
    }
    list_remove(&c->node);
    s->num_clients--;
    if (!c->in_cb)
        client_free(c);
}

/* ---- accepting ---- */

int store_accept_fd(store_t *s, int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    store_client_t *c = calloc(1, sizeof *c);
    if (c) {
        list_init(&c->node);
        list_init(&c->creqs);
        c->dec = frame_decoder_create(s->opts.cookie, FRAME_DEFAULT_MAX_PAYLOAD);
        c->refs = u64map_create();
        c->sent = u64map_create();
    }
    if (!c || !c->dec || !c->refs || !c->sent) {
        if (c)
            client_free(c);
        close(fd);
        return -ENOMEM;
    }
    c->s = s;
    c->fd = fd;
    c->cid = ++s->next_client_id;
    frame_wbuf_init(&c->out);
    int r = loop_add_fd(s->loop, fd, LOOP_READABLE, client_on_io, c);
    if (r != 0) {
        client_free(c);
        close(fd);
        return r;
    }
    c->interest = LOOP_READABLE;
    list_insert_head(&s->clients, &c->node);
    s->num_clients++;
    log_debug("object store: client %" PRIu64 " connected", c->cid);
    return 0;
}

static void on_accept(void *ctx, int fd, uid_t uid, pid_t pid)
{
    store_t *s = ctx;
    int r = store_accept_fd(s, fd);
    if (r != 0)
        log_warn("object store: cannot take a client: %s", cr_strerror(r));
}

int store_conn_start(store_t *s)
{
    if (!s->socket_path)
        return 0;
    listen_options_t lo = {.path = s->socket_path, .what = "object store socket"};
    int err = 0;
    s->listener = listener_create(s->loop, &lo, on_accept, s, &err);
    return s->listener ? 0 : err;
}

void store_conn_stop(store_t *s)
{
    listener_destroy(s->listener);
    s->listener = NULL;
    while (!list_empty(&s->clients))
        client_close(LIST_ENTRY(s->clients.next, store_client_t, node), true, "store shutting down");
    if (s->cq_timer) {
        loop_cancel_timer(s->loop, s->cq_timer);
        s->cq_timer = 0;
    }
}

/* ---- invariants ---- */

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            log_error("store_check: " __VA_ARGS__);                                       \
            r = -EFAULT;                                                                  \
            goto out;                                                                     \
        }                                                                                 \
    } while (0)

int store_conn_check(const store_t *s)
{
    int r = 0;
    u64map_t *held = u64map_create();
    if (!held)
        return 0; /* cannot check without memory; not a violation */
    uint64_t nclients = 0, ngets = 0, nq = 0;
    LIST_FOREACH_ENTRY(const store_client_t, c, &s->clients, node) {
        nclients++;
        CHECK(!c->closing, "a closed client is still listed");
        if (c->get) {
            ngets++;
            CHECK(c->get->client == c, "get request owned by another client");
        }
        size_t pos = 0;
        uint64_t key;
        while (u64map_next(c->refs, &pos, &key, NULL)) {
            const store_obj_t *o = (const store_obj_t *)(uintptr_t)key;
            CHECK(store_obj_find(s, &o->node.id) == o, "client %" PRIu64 " holds a freed object",
                  c->cid);
            void *cnt = NULL;
            u64map_get(held, key, &cnt);
            if (u64map_put(held, key, (void *)((uintptr_t)cnt + 1)) < 0)
                goto out;
        }
        uint32_t nc = 0;
        LIST_FOREACH_ENTRY(const store_create_req_t, q, &c->creqs, cnode) {
            CHECK(q->client == c, "create request on the wrong client");
            nc++;
        }
        CHECK(nc == c->ncreqs, "create request count off");
    }
    CHECK(nclients == s->num_clients, "client count off");
    CHECK(ngets == s->num_pending_gets, "pending get count off");
    LIST_FOREACH_ENTRY(const store_create_req_t, q, &s->cq, qnode) {
        CHECK(q->queued, "answered request still queued");
        nq++;
    }
    CHECK(nq == s->cq_count, "queue length off");
    for (idtab_node_t *n = idtab_first(s->objects); n; n = idtab_next(s->objects, n)) {
        const store_obj_t *o = (const store_obj_t *)n;
        void *cnt = NULL;
        u64map_get(held, (uint64_t)(uintptr_t)o, &cnt);
        CHECK((uintptr_t)cnt + o->holds == o->refs, "object has %u references, clients hold %zu, the raylet %u",
              o->refs, (size_t)(uintptr_t)cnt, o->holds);
    }
    for (idtab_node_t *n = idtab_first(s->waiters); n; n = idtab_next(s->waiters, n)) {
        const waiter_t *w = (const waiter_t *)n;
        CHECK(w->count > 0, "empty waiter list kept");
        const store_obj_t *o = store_obj_find(s, &w->node.id);
        CHECK(!o || o->state != STORE_OBJ_SEALED, "a get waits for a sealed object");
        for (uint32_t i = 0; i < w->count; i++)
            CHECK(w->reqs[i]->client->get == w->reqs[i], "waiter for a finished get");
    }
out:
    u64map_destroy(held);
    return r;
}
