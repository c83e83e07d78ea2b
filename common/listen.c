#include "common/listen.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"

struct listener {
    loop_t *loop;
    int fd;
    char *path;
    char *what;
    bool any_uid;
    bool starved;  /* out of descriptors since the last accept (warned once) */
    uint64_t resume_timer;
    listen_accept_cb cb;
    void *ctx;
    listen_stats_t stats;
};

/* The socket's directory, 0700, if it does not exist yet (Ray normally
 * made it; then its mode is Ray's). */
static void listen_make_dir(const char *path)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            log_warn("cannot create %s: %s", dir, strerror(errno));
    }
    free(dir);
}

static void listen_on_resume(loop_t *loop, uint64_t id, void *data)
{
    listener_t *l = data;
    l->resume_timer = 0;
    if (l->fd >= 0)
        loop_mod_fd(loop, l->fd, LOOP_READABLE);
}

static void listen_pause(listener_t *l, int err)
{
    l->stats.backoffs++;
    if (!l->starved)
        log_warn("%s: cannot accept a connection: %s; retrying every %d ms", l->what, strerror(err),
                 LISTEN_BACKOFF_MS);
    l->starved = true;
    loop_mod_fd(l->loop, l->fd, 0);
    if (!l->resume_timer)
        l->resume_timer = loop_add_timer(l->loop, LISTEN_BACKOFF_MS, listen_on_resume, l);
}

static void listen_on_readable(loop_t *loop, int fd, unsigned events, void *data)
{
    listener_t *l = data;
    for (;;) {
        int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                listen_pause(l, errno);
            return; /* EAGAIN: drained */
        }
        struct ucred cred = {.pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1};
        socklen_t len = sizeof cred;
        if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
            log_warn("%s: cannot read a peer's credentials: %s; refusing it", l->what, strerror(errno));
            close(c);
            continue;
        }
        if (!l->any_uid && cred.uid != geteuid() && cred.uid != 0) {
            l->stats.refused_uid++;
            log_warn("%s: refusing a connection from pid %d: uid %u is neither this node's (%u) nor root",
                     l->what, (int)cred.pid, (unsigned)cred.uid, (unsigned)geteuid());
            close(c);
            continue;
        }
        l->stats.accepted++;
        l->starved = false;
        l->cb(l->ctx, c, cred.uid, cred.pid);
        if (l->fd < 0)
            return; /* the owner stopped us from its callback */
    }
}

listener_t *listener_create(loop_t *loop, const listen_options_t *opts, listen_accept_cb cb, void *ctx, int *err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    const char *what = opts->what ? opts->what : "socket";
    if (!opts->path || strlen(opts->path) >= sizeof addr.sun_path) {
        log_error("%s: socket path too long (%zu bytes, limit %zu): %s", what,
                  opts->path ? strlen(opts->path) : 0, sizeof addr.sun_path - 1, opts->path ? opts->path : "");
        *err = -ENAMETOOLONG;
        return NULL;
    }
    memcpy(addr.sun_path, opts->path, strlen(opts->path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        *err = -errno;
        log_error("%s: socket: %s", what, strerror(errno));
        return NULL;
    }
    listen_make_dir(opts->path);
    unlink(opts->path); /* a stale socket from a crashed predecessor */
    /* Nobody can connect before listen(), so narrowing the mode between
     * bind and listen leaves no window. */
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || chmod(opts->path, 0600) != 0 ||
        listen(fd, opts->backlog > 0 ? opts->backlog : 1024) != 0) {
        *err = -errno;
        log_error("%s: cannot listen on %s: %s", what, opts->path, strerror(errno));
        close(fd);
        unlink(opts->path);
        return NULL;
    }
    listener_t *l = xcalloc(1, sizeof *l);
    l->loop = loop;
    l->fd = fd;
    l->path = xstrdup(opts->path);
    l->what = xstrdup(what);
    l->any_uid = opts->any_uid;
    l->cb = cb;
    l->ctx = ctx;
    int rc = loop_add_fd(loop, fd, LOOP_READABLE, listen_on_readable, l);
    if (rc != 0) {
        *err = rc;
        listener_destroy(l);
        return NULL;
    }
    *err = 0;
    return l;
}

void listener_stop(listener_t *l)
{
    if (!l || l->fd < 0)
        return;
    loop_del_fd(l->loop, l->fd);
    close(l->fd);
    l->fd = -1;
    unlink(l->path);
    if (l->resume_timer)
        loop_cancel_timer(l->loop, l->resume_timer);
    l->resume_timer = 0;
}

void listener_destroy(listener_t *l)
{
    if (!l)
        return;
    listener_stop(l);
    free(l->path);
    free(l->what);
    free(l);
}

void listener_stats(const listener_t *l, listen_stats_t *out) { *out = l->stats; }
