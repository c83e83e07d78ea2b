#include "common/conn.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/frame.h"
#include "common/log.h"

/* The largest frame a worker sends is a wait or get over many object ids;
 * 64 MiB holds over a million of them. */
#define CONN_MAX_PAYLOAD ((size_t)64 << 20)
#define CONN_READ_CHUNK 65536

struct conn {
    loop_t *loop;
    int fd;
    const char *what;
    conn_callbacks_t cbs;
    void *ctx;
    frame_decoder_t *decoder;
    frame_wbuf_t out;
    bool want_write;
    bool closing;
    bool dispatching; /* inside on_message: close is deferred */
    uint64_t close_timer;
    char *close_reason;
    int peer_pid;
};

static void conn_finish(conn_t *c)
{
    loop_del_fd(c->loop, c->fd);
    close(c->fd);
    const char *reason = c->close_reason ? c->close_reason : "closed";
    if (c->cbs.on_close)
        c->cbs.on_close(c->ctx, c, reason);
    frame_decoder_destroy(c->decoder);
    frame_wbuf_free(&c->out);
    free(c->close_reason);
    free(c);
}

static void conn_on_close_timer(loop_t *loop, uint64_t id, void *data)
{
    conn_t *c = data;
    c->close_timer = 0;
    conn_finish(c);
}

void conn_close(conn_t *c, const char *reason)
{
    if (c->closing)
        return;
    c->closing = true;
    if (reason) {
        log_warn("closing %s connection (pid %d): %s", c->what, c->peer_pid, reason);
        c->close_reason = strdup(reason);
    }
    /* Best effort: flush what is queued (e.g. a DisconnectClientReply)
     * before the socket goes; never block for it. */
    size_t n;
    const uint8_t *p = frame_wbuf_pending(&c->out, &n);
    if (n > 0 && p)
        (void)!send(c->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    loop_mod_fd(c->loop, c->fd, 0);
    c->close_timer = loop_add_timer(c->loop, 0, conn_on_close_timer, c);
}

static int conn_flush(conn_t *c)
{
    for (;;) {
        size_t n;
        const uint8_t *p = frame_wbuf_pending(&c->out, &n);
        if (n == 0)
            break;
        ssize_t w = send(c->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -errno;
        }
        frame_wbuf_consume(&c->out, (size_t)w);
    }
    size_t left;
    frame_wbuf_pending(&c->out, &left);
    bool want = left > 0;
    if (want != c->want_write) {
        c->want_write = want;
        loop_mod_fd(c->loop, c->fd, LOOP_READABLE | (want ? LOOP_WRITABLE : 0));
    }
    return 0;
}

static void conn_on_readable(conn_t *c)
{
    for (;;) {
        uint8_t *space;
        size_t avail;
        int rc = frame_decoder_reserve(c->decoder, CONN_READ_CHUNK, &space, &avail);
        if (rc != 0) {
            conn_close(c, cr_strerror(rc));
            return;
        }
        ssize_t r = recv(c->fd, space, avail, MSG_DONTWAIT);
        if (r == 0) {
            conn_close(c, NULL); /* peer hung up */
            return;
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            char msg[128];
            snprintf(msg, sizeof msg, "read failed: %s", strerror(errno));
            conn_close(c, msg);
            return;
        }
        frame_decoder_commit(c->decoder, (size_t)r);
        for (;;) {
            frame_t f;
            int got = frame_decoder_next(c->decoder, &f);
            if (got < 0) {
                char msg[160];
                snprintf(msg, sizeof msg, "bad frame: %s", cr_strerror(got));
                conn_close(c, msg);
                return;
            }
            if (got == 0)
                break;
            c->dispatching = true;
            int hr = c->cbs.on_message(c->ctx, c, f.type, f.payload, f.len);
            c->dispatching = false;
            if (c->closing)
                return;
            if (hr != 0) {
                char msg[160];
                snprintf(msg, sizeof msg, "message type %lld rejected: %s", (long long)f.type,
                         cr_strerror(hr));
                conn_close(c, msg);
                return;
            }
        }
        if ((size_t)r < avail)
            return; /* drained the socket for now */
    }
}

static void conn_on_event(loop_t *loop, int fd, unsigned events, void *data)
{
    conn_t *c = data;
    if (c->closing)
        return;
    if (events & LOOP_WRITABLE) {
        int rc = conn_flush(c);
        if (rc != 0) {
            conn_close(c, cr_strerror(rc));
            return;
        }
    }
    if (events & (LOOP_READABLE | LOOP_HANGUP | LOOP_ERROR))
        conn_on_readable(c);
}

conn_t *conn_create(loop_t *loop, int fd, const char *what, const conn_callbacks_t *cbs, void *ctx)
{
    conn_t *c = xcalloc(1, sizeof *c);
    c->loop = loop;
    c->fd = fd;
    c->what = what;
    c->cbs = *cbs;
    c->ctx = ctx;
    c->peer_pid = -1;
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
        c->peer_pid = cred.pid;
    c->decoder = frame_decoder_create(FRAME_RAY_COOKIE, CONN_MAX_PAYLOAD);
    frame_wbuf_init(&c->out);
    if (!c->decoder)
        abort();
    if (loop_add_fd(loop, fd, LOOP_READABLE, conn_on_event, c) != 0) {
        frame_decoder_destroy(c->decoder);
        free(c);
        close(fd);
        return NULL;
    }
    return c;
}

int conn_send(conn_t *c, int64_t type, const void *payload, size_t len)
{
    if (c->closing)
        return CR_ECLOSED;
    if (frame_encode(&c->out, FRAME_RAY_COOKIE, type, payload, len) != 0)
        abort(); /* small allocation */
    /* Write at once: most replies fit the socket buffer, saving a loop trip. */
    int rc = conn_flush(c);
    if (rc != 0) {
        conn_close(c, cr_strerror(rc));
        return rc;
    }
    return 0;
}

void conn_destroy(conn_t *c)
{
    if (!c)
        return;
    if (c->close_timer)
        loop_cancel_timer(c->loop, c->close_timer);
    c->cbs.on_close = NULL;
    conn_finish(c);
}

int conn_peer_pid(const conn_t *c) { return c->peer_pid; }
int conn_fd(const conn_t *c) { return c->fd; }
