/* The event loop (see loop.h).
 *
 * Layout: an epoll set for fd events; timers in a binary min-heap ordered by
 * (deadline, id) with each timer remembering its heap slot, plus an
 * open-addressing table from id to timer so cancel is a lookup and a sift
 * instead of a scan; async handles and the signalfd are ordinary fd
 * registrations with an internal callback. */
#include "common/loop.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"

/* Small allocations abort on failure (house rule): a daemon that cannot get
 * a few bytes for a timer cannot do anything useful afterwards either. */
typedef struct loop_fd_entry {
    loop_fd_cb cb;
    void *data;
    unsigned events;
    /* Tag stored in the epoll event alongside the fd.  A registration made
     * after a removal gets a new tag, so an event that was already fetched
     * for the old registration in this iteration is recognised as stale. */
    uint32_t tag;
    bool active;
} loop_fd_entry_t;

typedef struct loop_timer {
    uint64_t id;
    uint64_t deadline_ms;
    loop_timer_cb cb;
    void *data;
    size_t heap_index;
} loop_timer_t;

struct loop_async {
    loop_t *loop;
    int fd;
    loop_hook_cb cb;
    void *data;
    loop_async_t *prev, *next;
};

struct loop {
    int epfd;
    bool stop;
    uint64_t now_ms;
    struct timespec woke; /* when epoll_wait last returned */

    loop_fd_entry_t *fds; /* indexed by fd */
    size_t fd_cap;
    uint32_t next_tag;

    struct epoll_event *events; /* epoll_wait output buffer */
    int events_cap;

    loop_timer_t **heap;
    size_t heap_len, heap_cap;
    uint64_t next_timer_id;

    /* id -> timer, linear probing; slot key 0 means empty (ids start at 1). */
    loop_timer_t **tmap;
    size_t tmap_cap; /* power of two */
    size_t tmap_len;

    loop_hook_cb before_sleep;
    void *before_sleep_data;

    loop_async_t *asyncs;

    int sigfd;
    loop_signal_cb sig_cb;
    void *sig_data;
};

/* ---- clock ---------------------------------------------------------------- */

static uint64_t loop_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t loop_now_ms(loop_t *loop) { return loop->now_ms; }

uint64_t loop_update_time(loop_t *loop)
{
    loop->now_ms = loop_clock_ns() / 1000000u;
    return loop->now_ms;
}

/* ---- timer id table ------------------------------------------------------- */

static size_t loop_tmap_hash(uint64_t id)
{
    /* A 64-bit finaliser: ids are sequential, and linear probing wants them
     * spread over the table rather than clustered. */
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    id *= 0xc4ceb9fe1a85ec53ULL;
    id ^= id >> 33;
    return (size_t)id;
}

static void loop_tmap_insert_raw(loop_timer_t **slots, size_t cap, loop_timer_t *t)
{
    size_t i = loop_tmap_hash(t->id) & (cap - 1);
    while (slots[i])
        i = (i + 1) & (cap - 1);
    slots[i] = t;
}

static void loop_tmap_put(loop_t *loop, loop_timer_t *t)
{
    /* Keep the load at or below one half so probes stay short. */
    if ((loop->tmap_len + 1) * 2 > loop->tmap_cap) {
        size_t cap = loop->tmap_cap ? loop->tmap_cap * 2 : 64;
        loop_timer_t **slots = xcalloc(cap, sizeof *slots);
        for (size_t i = 0; i < loop->tmap_cap; i++)
            if (loop->tmap[i])
                loop_tmap_insert_raw(slots, cap, loop->tmap[i]);
        free(loop->tmap);
        loop->tmap = slots;
        loop->tmap_cap = cap;
    }
    loop_tmap_insert_raw(loop->tmap, loop->tmap_cap, t);
    loop->tmap_len++;
}

static size_t loop_tmap_find(const loop_t *loop, uint64_t id)
{
    if (!loop->tmap_cap)
        return SIZE_MAX;
    size_t mask = loop->tmap_cap - 1;
    for (size_t i = loop_tmap_hash(id) & mask;; i = (i + 1) & mask) {
        if (!loop->tmap[i])
            return SIZE_MAX;
        if (loop->tmap[i]->id == id)
            return i;
    }
}

/* Backward-shift deletion: no tombstones, so the table never silts up no
 * matter how many timers come and go. */
static void loop_tmap_remove_at(loop_t *loop, size_t i)
{
    size_t mask = loop->tmap_cap - 1;
    size_t hole = i;
    for (size_t j = (i + 1) & mask; loop->tmap[j]; j = (j + 1) & mask) {
        size_t home = loop_tmap_hash(loop->tmap[j]->id) & mask;
        /* Move j into the hole unless its home lies cyclically in (hole, j]. */
        bool stays = (hole <= j) ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            loop->tmap[hole] = loop->tmap[j];
            hole = j;
        }
    }
    loop->tmap[hole] = NULL;
    loop->tmap_len--;
}

/* ---- timer heap ----------------------------------------------------------- */

static bool loop_timer_before(const loop_timer_t *a, const loop_timer_t *b)
{
    if (a->deadline_ms != b->deadline_ms)
        return a->deadline_ms < b->deadline_ms;
    return a->id < b->id;
}

static void loop_heap_set(loop_t *loop, size_t i, loop_timer_t *t)
{
    loop->heap[i] = t;
    t->heap_index = i;
}

static void loop_heap_up(loop_t *loop, size_t i)
{
    loop_timer_t *t = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!loop_timer_before(t, loop->heap[parent]))
            break;
        loop_heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    loop_heap_set(loop, i, t);
}

static void loop_heap_down(loop_t *loop, size_t i)
{
    loop_timer_t *t = loop->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= loop->heap_len)
            break;
        if (child + 1 < loop->heap_len && loop_timer_before(loop->heap[child + 1], loop->heap[child]))
            child++;
        if (!loop_timer_before(loop->heap[child], t))
            break;
        loop_heap_set(loop, i, loop->heap[child]);
        i = child;
    }
    loop_heap_set(loop, i, t);
}

static void loop_heap_remove(loop_t *loop, loop_timer_t *t)
{
    size_t i = t->heap_index;
    loop_timer_t *last = loop->heap[--loop->heap_len];
    if (last == t)
        return;
    loop_heap_set(loop, i, last);
    /* The moved element may belong above or below slot i. */
    if (i > 0 && loop_timer_before(last, loop->heap[(i - 1) / 2]))
        loop_heap_up(loop, i);
    else
        loop_heap_down(loop, i);
}

/* Detach a timer from both structures; the caller frees it. */
static void loop_timer_unlink(loop_t *loop, loop_timer_t *t)
{
    size_t slot = loop_tmap_find(loop, t->id);
    if (slot != SIZE_MAX)
        loop_tmap_remove_at(loop, slot);
    loop_heap_remove(loop, t);
}

uint64_t loop_add_timer(loop_t *loop, uint64_t delay_ms, loop_timer_cb cb, void *data)
{
    /* The deadline counts from the real clock, rounded up to the next whole
     * millisecond, rather than from the cached time: a callback that ran for
     * a while and then arms a timer must not see it fire early, and the
     * firing check compares against whole milliseconds. */
    uint64_t now_ns = loop_clock_ns();
    uint64_t start = (now_ns + 999999u) / 1000000u;
    uint64_t deadline = delay_ms > UINT64_MAX - start ? UINT64_MAX : start + delay_ms;

    loop_timer_t *t = xcalloc(1, sizeof *t);
    t->id = loop->next_timer_id++;
    t->deadline_ms = deadline;
    t->cb = cb;
    t->data = data;

    if (loop->heap_len == loop->heap_cap) {
        loop->heap_cap = loop->heap_cap ? loop->heap_cap * 2 : 16;
        loop->heap = xrealloc(loop->heap, loop->heap_cap * sizeof *loop->heap);
    }
    loop->heap[loop->heap_len] = t;
    t->heap_index = loop->heap_len++;
    loop_heap_up(loop, t->heap_index);
    loop_tmap_put(loop, t);
    return t->id;
}

void loop_cancel_timer(loop_t *loop, uint64_t timer_id)
{
    size_t slot = loop_tmap_find(loop, timer_id);
    if (slot == SIZE_MAX)
        return;
    loop_timer_t *t = loop->tmap[slot];
    loop_tmap_remove_at(loop, slot);
    loop_heap_remove(loop, t);
    free(t);
}

/* Fire every timer that is due.  Timers armed by these callbacks wait for
 * the next iteration even with a zero delay, so a callback re-arming itself
 * with delay 0 cannot starve fd events. */
static void loop_process_timers(loop_t *loop)
{
    uint64_t now = loop->now_ms;
    uint64_t last_id = loop->next_timer_id - 1;
    while (loop->heap_len > 0) {
        loop_timer_t *t = loop->heap[0];
        /* Heap order is (deadline, id) and a new timer's deadline is never
         * before `now`, so once the top is new or not due, nothing older
         * that is due remains below it. */
        if (t->deadline_ms > now || t->id > last_id)
            break;
        loop_timer_cb cb = t->cb;
        void *data = t->data;
        uint64_t id = t->id;
        /* Unlinked before the call, so cancelling itself from the callback
         * is the documented no-op. */
        loop_timer_unlink(loop, t);
        free(t);
        if (cb)
            cb(loop, id, data);
    }
}

/* Milliseconds epoll_wait may block: until the nearest timer, or forever. */
static int loop_wait_timeout(loop_t *loop)
{
    if (loop->heap_len == 0)
        return -1;
    uint64_t now = loop_update_time(loop);
    uint64_t deadline = loop->heap[0]->deadline_ms;
    if (deadline <= now)
        return 0;
    uint64_t wait = deadline - now;
    return wait > INT_MAX ? INT_MAX : (int)wait;
}

/* ---- fds ------------------------------------------------------------------ */

static uint32_t loop_epoll_mask(unsigned events)
{
    uint32_t m = 0;
    if (events & LOOP_READABLE)
        m |= EPOLLIN;
    if (events & LOOP_WRITABLE)
        m |= EPOLLOUT;
    return m;
}

static uint64_t loop_pack(int fd, uint32_t tag) { return ((uint64_t)tag << 32) | (uint32_t)fd; }

int loop_add_fd(loop_t *loop, int fd, unsigned events, loop_fd_cb cb, void *data)
{
    if (fd < 0)
        return -EBADF;
    if (events & ~(unsigned)(LOOP_READABLE | LOOP_WRITABLE))
        return -EINVAL;
    if ((size_t)fd < loop->fd_cap && loop->fds[fd].active)
        return -EEXIST;
    if ((size_t)fd >= loop->fd_cap) {
        size_t cap = loop->fd_cap ? loop->fd_cap : 64;
        while (cap <= (size_t)fd)
            cap *= 2;
        loop->fds = xrealloc(loop->fds, cap * sizeof *loop->fds);
        memset(loop->fds + loop->fd_cap, 0, (cap - loop->fd_cap) * sizeof *loop->fds);
        loop->fd_cap = cap;
    }
    uint32_t tag = ++loop->next_tag;
    struct epoll_event ev = {.events = loop_epoll_mask(events), .data.u64 = loop_pack(fd, tag)};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -errno;
    loop->fds[fd] = (loop_fd_entry_t){.cb = cb, .data = data, .events = events, .tag = tag, .active = true};
    return 0;
}

int loop_mod_fd(loop_t *loop, int fd, unsigned events)
{
    if (fd < 0 || (size_t)fd >= loop->fd_cap || !loop->fds[fd].active)
        return -ENOENT;
    if (events & ~(unsigned)(LOOP_READABLE | LOOP_WRITABLE))
        return -EINVAL;
    loop_fd_entry_t *e = &loop->fds[fd];
    if (e->events == events)
        return 0;
    struct epoll_event ev = {.events = loop_epoll_mask(events), .data.u64 = loop_pack(fd, e->tag)};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
        return -errno;
    e->events = events;
    return 0;
}

void loop_del_fd(loop_t *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->fd_cap || !loop->fds[fd].active)
        return;
    /* Failure here means the fd was closed before being removed; the kernel
     * dropped it from the set already, so there is nothing left to undo. */
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    loop->fds[fd].active = false;
    loop->fds[fd].cb = NULL;
    loop->fds[fd].data = NULL;
}

static void loop_dispatch_fd(loop_t *loop, const struct epoll_event *ev)
{
    int fd = (int)(uint32_t)(ev->data.u64 & 0xffffffffu);
    uint32_t tag = (uint32_t)(ev->data.u64 >> 32);
    if ((size_t)fd >= loop->fd_cap)
        return;
    loop_fd_entry_t *e = &loop->fds[fd];
    /* Removed, or removed and re-added, by an earlier callback this round. */
    if (!e->active || e->tag != tag)
        return;
    unsigned got = 0;
    if (ev->events & EPOLLIN)
        got |= LOOP_READABLE;
    if (ev->events & EPOLLOUT)
        got |= LOOP_WRITABLE;
    if (ev->events & (EPOLLHUP | EPOLLRDHUP))
        got |= LOOP_HANGUP;
    if (ev->events & EPOLLERR)
        got |= LOOP_ERROR;
    /* A hang-up or error is also reported as the readiness the registration
     * asked for, so a callback that only reads still wakes and sees EOF or
     * the error from read()/write() itself. */
    if (got & (LOOP_HANGUP | LOOP_ERROR))
        got |= e->events;
    /* Readiness the registration no longer wants (a callback earlier this
     * round may have called loop_mod_fd) is not reported. */
    got &= e->events | LOOP_HANGUP | LOOP_ERROR;
    if (got && e->cb)
        e->cb(loop, fd, got, e->data);
}

/* ---- create / run / destroy ------------------------------------------------ */

loop_t *loop_create(void)
{
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        return NULL;
    loop_t *loop = xcalloc(1, sizeof *loop);
    loop->epfd = epfd;
    loop->sigfd = -1;
    loop->next_timer_id = 1;
    loop->events_cap = 64;
    loop->events = xcalloc((size_t)loop->events_cap, sizeof *loop->events);
    loop_update_time(loop);
    return loop;
}

void loop_destroy(loop_t *loop)
{
    if (!loop)
        return;
    while (loop->asyncs)
        loop_async_destroy(loop->asyncs);
    if (loop->sigfd >= 0) {
        loop_del_fd(loop, loop->sigfd);
        close(loop->sigfd);
    }
    for (size_t i = 0; i < loop->heap_len; i++)
        free(loop->heap[i]);
    free(loop->heap);
    free(loop->tmap);
    free(loop->fds);
    free(loop->events);
    close(loop->epfd);
    free(loop);
}

void loop_stop(loop_t *loop) { loop->stop = true; }

void loop_set_before_sleep(loop_t *loop, loop_hook_cb cb, void *data)
{
    loop->before_sleep = cb;
    loop->before_sleep_data = data;
}

uint64_t loop_awake_us(loop_t *loop)
{
    if (loop->woke.tv_sec == 0 && loop->woke.tv_nsec == 0)
        return 0; /* not woken yet */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t us = (int64_t)(now.tv_sec - loop->woke.tv_sec) * 1000000 + (now.tv_nsec - loop->woke.tv_nsec) / 1000;
    return us > 0 ? (uint64_t)us : 0;
}

int loop_run(loop_t *loop)
{
    int rc = 0;
    while (!loop->stop) {
        if (loop->before_sleep)
            loop->before_sleep(loop, loop->before_sleep_data);
        if (loop->stop)
            break;
        /* Computed after the hook, which may itself arm timers. */
        int timeout = loop_wait_timeout(loop);
        int n = epoll_wait(loop->epfd, loop->events, loop->events_cap, timeout);
        if (n < 0) {
            if (errno != EINTR) {
                rc = -errno;
                log_error("epoll_wait: %s", strerror(errno));
                break;
            }
            n = 0;
        }
        loop_update_time(loop);
        clock_gettime(CLOCK_MONOTONIC, &loop->woke);
        for (int i = 0; i < n; i++)
            loop_dispatch_fd(loop, &loop->events[i]);
        loop_process_timers(loop);
        /* A full buffer suggests more fds are ready than we can take in one
         * call; widen it so busy loops are not starved into extra rounds. */
        if (n == loop->events_cap && loop->events_cap < 4096) {
            loop->events_cap *= 2;
            free(loop->events);
            loop->events = xcalloc((size_t)loop->events_cap, sizeof *loop->events);
        }
    }
    /* Cleared on the way out so the same loop can be run again. */
    loop->stop = false;
    return rc;
}

/* ---- async ------------------------------------------------------------------ */

static void loop_async_on_readable(loop_t *loop, int fd, unsigned events, void *data)
{
    loop_async_t *a = data;
    uint64_t count;
    /* Reading resets the eventfd counter: every send since the last read is
     * folded into this one callback.  EAGAIN means another path drained it. */
    if (read(fd, &count, sizeof count) < 0 && errno != EAGAIN && errno != EINTR)
        log_warn("async eventfd read: %s", strerror(errno));
    /* Last use of `a`: the callback may destroy it. */
    if (a->cb)
        a->cb(loop, a->data);
}

loop_async_t *loop_async_create(loop_t *loop, loop_hook_cb cb, void *data)
{
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) {
        log_error("eventfd: %s", strerror(errno));
        return NULL;
    }
    loop_async_t *a = xcalloc(1, sizeof *a);
    a->loop = loop;
    a->fd = fd;
    a->cb = cb;
    a->data = data;
    int rc = loop_add_fd(loop, fd, LOOP_READABLE, loop_async_on_readable, a);
    if (rc < 0) {
        log_error("async: cannot watch eventfd: %s", strerror(-rc));
        close(fd);
        free(a);
        return NULL;
    }
    a->next = loop->asyncs;
    if (loop->asyncs)
        loop->asyncs->prev = a;
    loop->asyncs = a;
    return a;
}

void loop_async_send(loop_async_t *async)
{
    uint64_t one = 1;
    /* EAGAIN only when the counter is near overflow, i.e. a wake-up is
     * already pending; any other failure leaves nothing better to do. */
    ssize_t n = write(async->fd, &one, sizeof one);
    (void)n;
}

void loop_async_destroy(loop_async_t *async)
{
    if (!async)
        return;
    loop_t *loop = async->loop;
    loop_del_fd(loop, async->fd);
    close(async->fd);
    if (async->prev)
        async->prev->next = async->next;
    else
        loop->asyncs = async->next;
    if (async->next)
        async->next->prev = async->prev;
    free(async);
}

/* ---- signals ---------------------------------------------------------------- */

static void loop_signal_on_readable(loop_t *loop, int fd, unsigned events, void *data)
{
    struct signalfd_siginfo si;
    for (;;) {
        ssize_t n = read(fd, &si, sizeof si);
        if (n != (ssize_t)sizeof si) {
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                log_warn("signalfd read: %s", strerror(errno));
            return;
        }
        if (loop->sig_cb)
            loop->sig_cb(loop, (int)si.ssi_signo, loop->sig_data);
    }
}

int loop_watch_signals(loop_t *loop, const int *signos, int count, loop_signal_cb cb, void *data)
{
    if (loop->sigfd >= 0)
        return -EEXIST;
    if (count <= 0 || !signos)
        return -EINVAL;
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < count; i++)
        if (sigaddset(&set, signos[i]) < 0)
            return -EINVAL;
    /* Blocked first so the signal is never delivered the default way (which
     * for SIGTERM would kill us) between here and the first read.  The mask
     * is left in place by loop_destroy: unblocking with a signal pending
     * would run its default action. */
    int rc = pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (rc != 0)
        return -rc;
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    loop->sig_cb = cb;
    loop->sig_data = data;
    rc = loop_add_fd(loop, fd, LOOP_READABLE, loop_signal_on_readable, NULL);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    loop->sigfd = fd;
    return 0;
}
