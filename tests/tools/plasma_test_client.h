/* A small synchronous plasma client for tests, speaking the real wire
 * protocol the way Ray's CoreWorker client does: exact-size reads of each
 * frame, then one recvmsg per descriptor it has not mapped yet, mappings
 * keyed by (store fd number, unique id), mmap of (mmap_size - 8) bytes.
 *
 * The store under test runs on a loop in the same thread; whenever the
 * client would wait it turns that loop for a moment, so tests are
 * single-threaded and deterministic.  Header-only (static functions) so a
 * test file needs nothing beyond the core library to use it.
 *
 * Test code, not product code: failures return negative values and the
 * test asserts on them. */
#ifndef CRAYLET_TESTS_TOOLS_PLASMA_TEST_CLIENT_H
#define CRAYLET_TESTS_TOOLS_PLASMA_TEST_CLIENT_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/fb.h"
#include "common/frame.h"
#include "common/loop.h"
#include "object_store/plasma_proto.h"
#include "object_store/store.h"

#define PTC_MAX_MAPS 64
#define PTC_WAIT_MS 5000

typedef struct {
    int32_t store_fd;
    int64_t uid;
    uint8_t *base;
    size_t len;
} ptc_map_t;

typedef struct {
    loop_t *loop;
    int fd;
    fb_builder_t *b;
    uint8_t *payload;
    size_t cap;
    ptc_map_t maps[PTC_MAX_MAPS];
    int nmaps;
    int fds_received;
} ptc_t;

typedef struct {
    bool found;
    uint8_t *data;
    uint64_t data_size;
    uint8_t *metadata;
    uint64_t metadata_size;
    bool fallback;
    plasma_spec_t spec;
} ptc_obj_t;

static void ptc__stop(loop_t *loop, uint64_t id, void *data) { loop_stop(loop); }

/* Stops the loop at its second before-sleep: one full turn has run. */
static void ptc__one_turn(loop_t *loop, void *data)
{
    int *turns = data;
    if ((*turns)++ >= 1)
        loop_stop(loop);
}

/* ms == 0: one turn of the loop, handling whatever is ready (waiting at
 * most a millisecond if nothing is).  ms > 0: run the loop for that long,
 * so timers up to then fire.  (A zero-delay timer would not do for the
 * first: the loop rounds timer deadlines up to the next millisecond.) */
static inline void ptc_pump(loop_t *loop, uint64_t ms)
{
    if (ms == 0) {
        int turns = 0;
        loop_set_before_sleep(loop, ptc__one_turn, &turns);
        uint64_t t = loop_add_timer(loop, 1, ptc__stop, NULL);
        loop_run(loop);
        loop_cancel_timer(loop, t);
        loop_set_before_sleep(loop, NULL, NULL);
        return;
    }
    uint64_t t = loop_add_timer(loop, ms, ptc__stop, NULL);
    loop_run(loop);
    loop_cancel_timer(loop, t);
}

/* Waiting for the store: turn its loop without sleeping first (it answers
 * within one turn), and only after a few empty turns let timers approach. */
static inline void ptc__wait(loop_t *loop, int *spins)
{
    ptc_pump(loop, *spins < 3 ? 0 : 1);
    (*spins)++;
}

static inline uint64_t ptc__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline ptc_t *ptc__new(loop_t *loop, int fd)
{
    ptc_t *c = calloc(1, sizeof *c);
    c->loop = loop;
    c->fd = fd;
    c->b = fb_builder_create(0);
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    return c;
}

/* A client on a socketpair handed straight to the store. */
static inline ptc_t *ptc_open(loop_t *loop, store_t *s)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return NULL;
    if (store_accept_fd(s, sv[0]) != 0) {
        close(sv[1]);
        return NULL;
    }
    return ptc__new(loop, sv[1]);
}

/* A client through the store's listening socket. */
static inline ptc_t *ptc_open_path(loop_t *loop, const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path)
        return NULL;
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    ptc_t *c = ptc__new(loop, fd);
    ptc_pump(loop, 0); /* let the store accept */
    return c;
}

static inline void ptc_unmap_all(ptc_t *c)
{
    for (int i = 0; i < c->nmaps; i++)
        munmap(c->maps[i].base, c->maps[i].len);
    c->nmaps = 0;
}

static inline void ptc_close(ptc_t *c)
{
    if (!c)
        return;
    ptc_unmap_all(c);
    if (c->fd >= 0)
        close(c->fd);
    fb_builder_destroy(c->b);
    free(c->payload);
    free(c);
}

/* Closes the socket but keeps the mappings (a process that died leaves
 * nothing; this is for tests that look at memory afterwards). */
static inline void ptc_hangup(ptc_t *c)
{
    close(c->fd);
    c->fd = -1;
}

static inline int ptc_send_raw(ptc_t *c, const void *p, size_t n)
{
    const uint8_t *q = p;
    uint64_t deadline = ptc__now_ms() + PTC_WAIT_MS;
    int spins = 0;
    while (n) {
        ssize_t w = send(c->fd, q, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            q += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (ptc__now_ms() > deadline)
                return -ETIMEDOUT;
            ptc__wait(c->loop, &spins);
        } else if (w < 0 && errno != EINTR) {
            return -errno;
        }
    }
    return 0;
}

static inline int ptc_send_frame(ptc_t *c, int64_t cookie, int64_t type, const void *p, size_t n)
{
    uint8_t h[FRAME_HEADER_SIZE];
    frame_header_write(h, cookie, type, n);
    int r = ptc_send_raw(c, h, sizeof h);
    return r ? r : ptc_send_raw(c, p, n);
}

static inline int ptc_send(ptc_t *c, int64_t type, const uint8_t *p, size_t n)
{
    return ptc_send_frame(c, FRAME_RAY_COOKIE, type, p, n);
}

/* Reads exactly n bytes, turning the loop while nothing is there.
 * -EPIPE on end of stream, -ETIMEDOUT after wait_ms. */
static inline int ptc_read_exact_wait(ptc_t *c, void *dst, size_t n, uint64_t wait_ms)
{
    uint8_t *d = dst;
    uint64_t deadline = ptc__now_ms() + wait_ms;
    size_t got = 0;
    int spins = 0;
    while (got < n) {
        ssize_t r = recv(c->fd, d + got, n - got, MSG_DONTWAIT);
        if (r > 0) {
            got += (size_t)r;
        } else if (r == 0) {
            return -EPIPE;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (ptc__now_ms() > deadline)
                return -ETIMEDOUT;
            ptc__wait(c->loop, &spins);
        } else if (errno != EINTR) {
            return -errno;
        }
    }
    return 0;
}

static inline int ptc_recv_wait(ptc_t *c, int64_t *type, const uint8_t **payload, size_t *len,
                                uint64_t wait_ms)
{
    uint8_t h[FRAME_HEADER_SIZE];
    int r = ptc_read_exact_wait(c, h, sizeof h, wait_ms);
    if (r)
        return r;
    if (frame_header_parse(h, FRAME_RAY_COOKIE, FRAME_DEFAULT_MAX_PAYLOAD, type, len) != 0)
        return CR_EBADMSG;
    if (*len > c->cap) {
        c->payload = realloc(c->payload, *len);
        c->cap = *len;
    }
    r = ptc_read_exact_wait(c, c->payload, *len, wait_ms);
    *payload = c->payload;
    return r;
}

/* The next frame, which must be of the expected type. */
static inline int ptc_expect(ptc_t *c, int64_t want, const uint8_t **payload, size_t *len)
{
    int64_t type;
    int r = ptc_recv_wait(c, &type, payload, len, PTC_WAIT_MS);
    if (r)
        return r;
    return type == want ? 0 : -EPROTO;
}

/* One recvmsg for one descriptor, as Ray's recv_fd does. */
static inline int ptc_recv_fd(ptc_t *c)
{
    uint64_t deadline = ptc__now_ms() + PTC_WAIT_MS;
    int spins = 0;
    for (;;) {
        char byte;
        struct iovec iov = {.iov_base = &byte, .iov_len = 1};
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } ctl;
        struct msghdr msg = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = ctl.buf,
                             .msg_controllen = sizeof ctl.buf};
        ssize_t r = recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (ptc__now_ms() > deadline)
                return -ETIMEDOUT;
            ptc__wait(c->loop, &spins);
            continue;
        }
        if (r <= 0)
            return r == 0 ? -EPIPE : -errno;
        struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
        if (!h || h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS ||
            h->cmsg_len != CMSG_LEN(sizeof(int)))
            return -EBADMSG;
        int fd;
        memcpy(&fd, CMSG_DATA(h), sizeof fd);
        c->fds_received++;
        return fd;
    }
}

static inline ptc_map_t *ptc_find_map(ptc_t *c, int32_t store_fd, int64_t uid)
{
    for (int i = 0; i < c->nmaps; i++)
        if (c->maps[i].store_fd == store_fd && c->maps[i].uid == uid)
            return &c->maps[i];
    return NULL;
}

static inline void ptc_drop_map(ptc_t *c, ptc_map_t *m)
{
    munmap(m->base, m->len);
    *m = c->maps[--c->nmaps];
}

/* Mirrors the client's GetStoreFdAndMmap: map once per key; a new id for
 * a known fd number replaces the old mapping. */
static inline uint8_t *ptc_mmap_segment(ptc_t *c, int32_t store_fd, int64_t uid, int64_t mmap_size)
{
    ptc_map_t *m = ptc_find_map(c, store_fd, uid);
    if (m)
        return m->base;
    int fd = ptc_recv_fd(c);
    if (fd < 0)
        return NULL;
    for (int i = 0; i < c->nmaps; i++)
        if (c->maps[i].store_fd == store_fd) {
            ptc_drop_map(c, &c->maps[i]);
            break;
        }
    size_t len = (size_t)mmap_size - 8;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED || c->nmaps == PTC_MAX_MAPS)
        return NULL;
    c->maps[c->nmaps++] = (ptc_map_t){store_fd, uid, p, len};
    return p;
}

/* ---- requests ---- */

static inline int ptc_connect(ptc_t *c, int64_t *capacity)
{
    const uint8_t *buf;
    size_t len;
    int r = plasma_encode_empty_req(c->b, &buf, &len);
    if (!r)
        r = ptc_send(c, PLASMA_MSG_CONNECT_REQUEST, buf, len);
    if (!r)
        r = ptc_expect(c, PLASMA_MSG_CONNECT_REPLY, &buf, &len);
    return r ? r : plasma_decode_connect_reply(buf, len, capacity);
}

static inline void ptc_make_id(id_object_t *id, uint32_t n)
{
    memset(id->b, 0x5a, sizeof id->b);
    memcpy(id->b, &n, sizeof n);
    memcpy(id->b + 24, &n, sizeof n);
}

typedef struct {
    int32_t error;
    uint64_t retry_id;
    uint8_t *data; /* data, then metadata */
    plasma_spec_t spec;
} ptc_create_t;

static inline int ptc__create_reply(ptc_t *c, ptc_create_t *out)
{
    const uint8_t *buf;
    size_t len;
    plasma_create_reply_t rep;
    int r = ptc_expect(c, PLASMA_MSG_CREATE_REPLY, &buf, &len);
    if (!r)
        r = plasma_decode_create_reply(buf, len, &rep);
    if (r)
        return r;
    *out = (ptc_create_t){.error = rep.error, .retry_id = rep.retry_with_request_id, .spec = rep.spec};
    if (rep.retry_with_request_id || rep.error)
        return 0; /* no descriptor follows */
    if (rep.spec.metadata_offset != rep.spec.data_offset + rep.spec.data_size)
        return -EPROTO; /* Ray's client asserts this */
    uint8_t *base = ptc_mmap_segment(c, rep.store_fd, rep.unique_fd_id, rep.mmap_size);
    if (!base)
        return -EIO;
    out->data = base + rep.spec.data_offset;
    return 0;
}

static inline int ptc_create_ex(ptc_t *c, const id_object_t *id, uint64_t data_size,
                                uint64_t metadata_size, bool try_immediately, bool is_mutable,
                                ptc_create_t *out)
{
    *out = (ptc_create_t){0};
    plasma_create_req_t req = {.object_id = *id,
                               .owner_ip = "10.0.0.1",
                               .owner_ip_len = 8,
                               .owner_port = 1234,
                               .is_mutable = is_mutable,
                               .data_size = data_size,
                               .metadata_size = metadata_size,
                               .try_immediately = try_immediately};
    memset(req.owner_node_id.b, 0x11, sizeof req.owner_node_id.b);
    memset(req.owner_worker_id.b, 0x22, sizeof req.owner_worker_id.b);
    const uint8_t *buf;
    size_t len;
    int r = plasma_encode_create_req(c->b, &req, &buf, &len);
    if (!r)
        r = ptc_send(c, PLASMA_MSG_CREATE_REQUEST, buf, len);
    return r ? r : ptc__create_reply(c, out);
}

static inline int ptc_create_retry(ptc_t *c, const id_object_t *id, uint64_t rid,
                                   ptc_create_t *out)
{
    *out = (ptc_create_t){0};
    const uint8_t *buf;
    size_t len;
    int r = plasma_encode_create_retry_req(c->b, id, rid, &buf, &len);
    if (!r)
        r = ptc_send(c, PLASMA_MSG_CREATE_RETRY_REQUEST, buf, len);
    return r ? r : ptc__create_reply(c, out);
}

/* CreateAndSpillIfNeeded: create, then retry every delay_ms until final. */
static inline int ptc_create(ptc_t *c, const id_object_t *id, uint64_t data_size,
                             uint64_t metadata_size, ptc_create_t *out)
{
    int r = ptc_create_ex(c, id, data_size, metadata_size, false, false, out);
    uint64_t deadline = ptc__now_ms() + 4 * PTC_WAIT_MS;
    while (r == 0 && out->retry_id) {
        if (ptc__now_ms() > deadline)
            return -ETIMEDOUT;
        ptc_pump(c->loop, 10);
        r = ptc_create_retry(c, id, out->retry_id, out);
    }
    return r;
}

static inline int ptc_seal(ptc_t *c, const id_object_t *id, int32_t *error)
{
    const uint8_t *buf;
    size_t len;
    id_object_t got;
    int r = plasma_encode_id_req(c->b, id, &buf, &len);
    if (!r)
        r = ptc_send(c, PLASMA_MSG_SEAL_REQUEST, buf, len);
    if (!r)
        r = ptc_expect(c, PLASMA_MSG_SEAL_REPLY, &buf, &len);
    if (!r)
        r = plasma_decode_seal_reply(buf, len, &got, error);
    return r ? r : (ID_EQUAL(&got, id) ? 0 : -EPROTO);
}

static inline int ptc_release(ptc_t *c, const id_object_t *id, bool may_unmap, bool *should_unmap)
{
    const uint8_t *buf;
    size_t len;
    if (should_unmap)
        *should_unmap = false;
    int r = plasma_encode_release_req(c->b, id, may_unmap, &buf, &len);
    if (!r)
        r = ptc_send(c, PLASMA_MSG_RELEASE_REQUEST, buf, len);
    if (r || !may_unmap) {
        if (!r)
            ptc_pump(c->loop, 0); /* no reply: just let the store see it */
        return r;
    }
    id_object_t got;
    bool unmap;
    int32_t err;
    r = ptc_expect(c, PLASMA_MSG_RELEASE_REPLY, &buf, &len);
    if (!r)
        r = plasma_decode_release_reply(buf, len, &got, &unmap, &err);
    if (r)
        return r;
    if (should_unmap)
        *should_unmap = unmap;
    return err ? -EPROTO : 0;
}

/* Release as Ray's client does it: may_unmap for fallback objects, and on
 * should_unmap the mapping goes. */
static inline int ptc_release_obj(ptc_t *c, const id_object_t *id, const plasma_spec_t *sp)
{
    bool unmap = false;
    int r = ptc_release(c, id, sp->fallback_allocated, &unmap);
    if (r == 0 && unmap) {
        ptc_map_t *m = ptc_find_map(c, sp->segment_index, sp->unique_fd_id);
        if (m)
            ptc_drop_map(c, m);
    }
    return r;
}

static inline int ptc_get_send(ptc_t *c, const id_object_t *ids, uint32_t n, int64_t timeout_ms)
{
    const uint8_t *buf;
    size_t len;
    int r = plasma_encode_get_req(c->b, ids, n, timeout_ms, &buf, &len);
    return r ? r : ptc_send(c, PLASMA_MSG_GET_REQUEST, buf, len);
}

/* Reads a Get reply with Ray's client semantics: maps every listed segment
 * it does not have (receiving its descriptor), then resolves each object. */
static inline int ptc_get_recv(ptc_t *c, const id_object_t *ids, uint32_t n, ptc_obj_t *out,
                               uint64_t wait_ms)
{
    const uint8_t *buf;
    size_t len;
    int64_t type;
    int r = ptc_recv_wait(c, &type, &buf, &len, wait_ms);
    if (r)
        return r;
    if (type != PLASMA_MSG_GET_REPLY)
        return -EPROTO;
    /* The payload buffer is reused by later reads; keep a copy. */
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, buf, len);
    plasma_get_reply_t rep;
    r = plasma_decode_get_reply(copy, len, &rep);
    if (!r && rep.count != n)
        r = -EPROTO;
    for (uint32_t i = 0; !r && i < rep.nfds; i++) {
        int32_t fd;
        int64_t uid, mm;
        r = plasma_get_reply_segment(&rep, i, &fd, &uid, &mm);
        if (!r && !ptc_mmap_segment(c, fd, uid, mm))
            r = -EIO;
    }
    for (uint32_t i = 0; !r && i < n; i++) {
        id_object_t id;
        plasma_spec_t sp;
        r = plasma_get_reply_object(&rep, i, &id, &sp);
        if (r)
            break;
        if (!ID_EQUAL(&id, &ids[i])) {
            r = -EPROTO;
            break;
        }
        out[i] = (ptc_obj_t){.spec = sp};
        if (sp.data_size == UINT64_MAX)
            continue;
        ptc_map_t *m = ptc_find_map(c, sp.segment_index, sp.unique_fd_id);
        if (!m || sp.metadata_offset + sp.metadata_size > m->len ||
            sp.metadata_offset != sp.data_offset + sp.data_size) {
            r = -EPROTO;
            break;
        }
        out[i].found = true;
        out[i].data = m->base + sp.data_offset;
        out[i].data_size = sp.data_size;
        out[i].metadata = m->base + sp.metadata_offset;
        out[i].metadata_size = sp.metadata_size;
        out[i].fallback = sp.fallback_allocated;
    }
    free(copy);
    return r;
}

static inline int ptc_get_wait(ptc_t *c, const id_object_t *ids, uint32_t n, int64_t timeout_ms,
                               ptc_obj_t *out, uint64_t wait_ms)
{
    int r = ptc_get_send(c, ids, n, timeout_ms);
    return r ? r : ptc_get_recv(c, ids, n, out, wait_ms);
}

static inline int ptc_get(ptc_t *c, const id_object_t *ids, uint32_t n, int64_t timeout_ms,
                          ptc_obj_t *out)
{
    return ptc_get_wait(c, ids, n, timeout_ms, out, PTC_WAIT_MS);
}

static inline int ptc_contains(ptc_t *c, const id_object_t *id, bool *has)
{
    const uint8_t *buf;
    size_t len;
    id_object_t got;
    int r = plasma_encode_id_req(c->b, id, &buf, &len);
    if (!r)
        r = ptc_send(c, PLASMA_MSG_CONTAINS_REQUEST, buf, len);
    if (!r)
        r = ptc_expect(c, PLASMA_MSG_CONTAINS_REPLY, &buf, &len);
    return r ? r : plasma_decode_contains_reply(buf, len, &got, has);
}

static inline int ptc_abort(ptc_t *c, const id_object_t *id)
{
    const uint8_t *buf;
    size_t len;
    id_object_t got;
    int r = plasma_encode_id_req(c->b, id, &buf, &len);
    if (!r)
        r = ptc_send(c, PLASMA_MSG_ABORT_REQUEST, buf, len);
    if (!r)
        r = ptc_expect(c, PLASMA_MSG_ABORT_REPLY, &buf, &len);
    return r ? r : plasma_decode_id_reply(buf, len, &got);
}

static inline int ptc_delete(ptc_t *c, const id_object_t *ids, uint32_t n, int32_t *errors)
{
    const uint8_t *buf;
    size_t len;
    uint32_t got;
    int r = plasma_encode_delete_req(c->b, ids, n, &buf, &len);
    if (!r)
        r = ptc_send(c, PLASMA_MSG_DELETE_REQUEST, buf, len);
    if (!r)
        r = ptc_expect(c, PLASMA_MSG_DELETE_REPLY, &buf, &len);
    if (!r)
        r = plasma_decode_delete_reply(buf, len, &got, errors, n);
    return r ? r : (got == n ? 0 : -EPROTO);
}

/* What a worker's ray.put does: create (retrying while the store is full),
 * copy, seal, release the creator's reference.  Returns the create error
 * (PLASMA_OK, ...) or a negative transport error. */
static inline int ptc_put(ptc_t *c, const id_object_t *id, const void *data, uint64_t n,
                          const void *meta, uint64_t mn)
{
    ptc_create_t cr = {0};
    int r = ptc_create(c, id, n, mn, &cr);
    if (r)
        return r;
    if (cr.error)
        return cr.error;
    if (n)
        memcpy(cr.data, data, n);
    if (mn)
        memcpy(cr.data + n, meta, mn);
    int32_t err;
    r = ptc_seal(c, id, &err);
    if (r)
        return r;
    if (err)
        return err;
    return ptc_release_obj(c, id, &cr.spec);
}

/* Whether the store has closed this connection (turning the loop first).
 * Whatever the store sent before closing is read and dropped. */
static inline bool ptc_closed_by_store(ptc_t *c)
{
    for (int i = 0; i < 200; i++) {
        ptc_pump(c->loop, 1);
        for (;;) {
            char b[4096];
            ssize_t r = recv(c->fd, b, sizeof b, MSG_DONTWAIT);
            if (r == 0)
                return true;
            if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                return true;
            if (r < 0)
                break;
        }
    }
    return false;
}

#endif
