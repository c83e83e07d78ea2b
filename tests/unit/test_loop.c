/* Unit tests for the event loop (common/loop.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/loop.h"

/* ---- helpers -------------------------------------------------------------- */

static void stop_cb(loop_t *loop, uint64_t id, void *data)
{
    (void)id;
    (void)data;
    loop_stop(loop);
}

static void watchdog_cb(loop_t *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    (void)data;
    cr_assert_fail("watchdog fired: the loop did not stop by itself");
}

/* Fails the test instead of hanging it if the loop never stops. */
static uint64_t arm_watchdog(loop_t *loop) { return loop_add_timer(loop, 3000, watchdog_cb, NULL); }

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void make_pipe(int fds[2])
{
    cr_assert_eq(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
}

/* ---- timers --------------------------------------------------------------- */

typedef struct order_log {
    uint64_t ids[2048];
    size_t n;
} order_log_t;

static void record_cb(loop_t *loop, uint64_t id, void *data)
{
    (void)loop;
    order_log_t *log = data;
    log->ids[log->n++] = id;
}

Test(loop, timers_fire_in_deadline_order, .timeout = 10)
{
    loop_t *loop = loop_create();
    cr_assert_not_null(loop);
    order_log_t log = {0};
    uint64_t c = loop_add_timer(loop, 30, record_cb, &log);
    uint64_t a = loop_add_timer(loop, 10, record_cb, &log);
    uint64_t b = loop_add_timer(loop, 20, record_cb, &log);
    loop_add_timer(loop, 60, stop_cb, NULL);
    arm_watchdog(loop);
    cr_assert(a > 0 && b > 0 && c > 0);
    cr_assert(a != b && b != c && a != c);
    cr_assert_eq(loop_run(loop), 0);
    cr_assert_eq(log.n, 3);
    cr_assert_eq(log.ids[0], a);
    cr_assert_eq(log.ids[1], b);
    cr_assert_eq(log.ids[2], c);
    loop_destroy(loop);
}

Test(loop, equal_deadlines_fire_in_creation_order, .timeout = 10)
{
    loop_t *loop = loop_create();
    order_log_t log = {0};
    uint64_t ids[5];
    for (int i = 0; i < 5; i++)
        ids[i] = loop_add_timer(loop, 0, record_cb, &log);
    loop_add_timer(loop, 20, stop_cb, NULL);
    arm_watchdog(loop);
    loop_run(loop);
    cr_assert_eq(log.n, 5);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(log.ids[i], ids[i]);
    loop_destroy(loop);
}

Test(loop, timer_does_not_fire_early, .timeout = 10)
{
    loop_t *loop = loop_create();
    uint64_t start = mono_ms();
    loop_add_timer(loop, 40, stop_cb, NULL);
    arm_watchdog(loop);
    loop_run(loop);
    cr_assert_geq(mono_ms() - start, 40);
    loop_destroy(loop);
}

Test(loop, cancel_prevents_firing, .timeout = 10)
{
    loop_t *loop = loop_create();
    order_log_t log = {0};
    uint64_t a = loop_add_timer(loop, 5, record_cb, &log);
    uint64_t b = loop_add_timer(loop, 10, record_cb, &log);
    loop_cancel_timer(loop, a);
    loop_cancel_timer(loop, a);      /* twice: no-op */
    loop_cancel_timer(loop, 987654); /* never issued: no-op */
    loop_cancel_timer(loop, 0);
    loop_add_timer(loop, 40, stop_cb, NULL);
    arm_watchdog(loop);
    loop_run(loop);
    cr_assert_eq(log.n, 1);
    cr_assert_eq(log.ids[0], b);
    loop_cancel_timer(loop, b); /* already fired: no-op */
    loop_destroy(loop);
}

typedef struct cancel_ctx {
    uint64_t victim;
    uint64_t self;
    int fired_victim;
    int fired_canceller;
} cancel_ctx_t;

static void canceller_cb(loop_t *loop, uint64_t id, void *data)
{
    cancel_ctx_t *c = data;
    c->fired_canceller++;
    loop_cancel_timer(loop, c->victim);
    loop_cancel_timer(loop, id); /* itself: already gone, a no-op */
}

static void victim_cb(loop_t *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    cancel_ctx_t *c = data;
    c->fired_victim++;
}

Test(loop, cancel_from_callback, .timeout = 10)
{
    loop_t *loop = loop_create();
    cancel_ctx_t c = {0};
    /* Same delay: both due in the same iteration; the canceller is older,
     * so it runs first and the victim must then not run. */
    c.self = loop_add_timer(loop, 5, canceller_cb, &c);
    c.victim = loop_add_timer(loop, 5, victim_cb, &c);
    loop_add_timer(loop, 40, stop_cb, NULL);
    arm_watchdog(loop);
    loop_run(loop);
    cr_assert_eq(c.fired_canceller, 1);
    cr_assert_eq(c.fired_victim, 0);
    loop_destroy(loop);
}

Test(loop, many_timers_with_random_cancels, .timeout = 20)
{
    loop_t *loop = loop_create();
    enum { N = 1000 };
    static order_log_t log;
    memset(&log, 0, sizeof log);
    uint64_t ids[N];
    int delay[N];
    bool cancelled[N];
    srand(12345);
    /* Delays are multiples of 50 ms and adding all N takes far less than
     * that (even under ThreadSanitizer on a loaded machine, where 5 ms was
     * seen not to be), so the expected order is by (delay, creation). */
    for (int i = 0; i < N; i++) {
        delay[i] = (rand() % 10) * 50;
        ids[i] = loop_add_timer(loop, (uint64_t)delay[i], record_cb, &log);
        cancelled[i] = false;
    }
    for (int k = 0; k < N / 2; k++) {
        int i = rand() % N;
        loop_cancel_timer(loop, ids[i]);
        cancelled[i] = true;
    }
    loop_add_timer(loop, 600, stop_cb, NULL);
    arm_watchdog(loop);
    loop_run(loop);

    size_t expected = 0;
    for (int i = 0; i < N; i++)
        expected += !cancelled[i];
    cr_assert_eq(log.n, expected);
    size_t pos = 0;
    for (int d = 0; d < 500; d += 50)
        for (int i = 0; i < N; i++)
            if (!cancelled[i] && delay[i] == d)
                cr_assert_eq(log.ids[pos++], ids[i], "position %zu", pos - 1);
    loop_destroy(loop);
}

typedef struct rearm_ctx {
    int count;
} rearm_ctx_t;

static void rearm_cb(loop_t *loop, uint64_t id, void *data)
{
    (void)id;
    rearm_ctx_t *c = data;
    c->count++;
    loop_add_timer(loop, 0, rearm_cb, c);
}

static void stop_on_readable(loop_t *loop, int fd, unsigned events, void *data)
{
    (void)fd;
    (void)data;
    cr_assert(events & LOOP_READABLE);
    loop_stop(loop);
}

Test(loop, zero_delay_rearm_does_not_starve_fds, .timeout = 10)
{
    loop_t *loop = loop_create();
    rearm_ctx_t c = {0};
    int p[2];
    make_pipe(p);
    cr_assert_eq(write(p[1], "x", 1), 1);
    cr_assert_eq(loop_add_fd(loop, p[0], LOOP_READABLE, stop_on_readable, NULL), 0);
    loop_add_timer(loop, 0, rearm_cb, &c);
    arm_watchdog(loop);
    cr_assert_eq(loop_run(loop), 0);
    /* The fd was seen within an iteration or two, not after an endless
     * chain of timers. */
    cr_assert_leq(c.count, 2);
    loop_del_fd(loop, p[0]);
    close(p[0]);
    close(p[1]);
    loop_destroy(loop);
}

Test(loop, now_ms_is_monotonic, .timeout = 10)
{
    loop_t *loop = loop_create();
    uint64_t a = loop_now_ms(loop);
    usleep(5000);
    uint64_t b = loop_update_time(loop);
    cr_assert_geq(b, a + 4);
    cr_assert_eq(loop_now_ms(loop), b);
    loop_destroy(loop);
}

/* ---- fds ------------------------------------------------------------------ */

typedef struct read_ctx {
    int calls;
    unsigned last_events;
    char buf[16];
} read_ctx_t;

static void read_and_stop(loop_t *loop, int fd, unsigned events, void *data)
{
    read_ctx_t *c = data;
    c->calls++;
    c->last_events = events;
    ssize_t n = read(fd, c->buf, sizeof c->buf - 1);
    if (n > 0)
        c->buf[n] = '\0';
    loop_stop(loop);
}

Test(loop, fd_readable, .timeout = 10)
{
    loop_t *loop = loop_create();
    int p[2];
    make_pipe(p);
    read_ctx_t c = {0};
    cr_assert_eq(loop_add_fd(loop, p[0], LOOP_READABLE, read_and_stop, &c), 0);
    cr_assert_eq(loop_add_fd(loop, p[0], LOOP_READABLE, read_and_stop, &c), -EEXIST);
    cr_assert_eq(loop_add_fd(loop, -1, LOOP_READABLE, read_and_stop, &c), -EBADF);
    cr_assert_eq(write(p[1], "hi", 2), 2);
    arm_watchdog(loop);
    loop_run(loop);
    cr_assert_eq(c.calls, 1);
    cr_assert(c.last_events & LOOP_READABLE);
    cr_assert_str_eq(c.buf, "hi");
    loop_del_fd(loop, p[0]);
    loop_del_fd(loop, p[0]); /* twice: no-op */
    close(p[0]);
    close(p[1]);
    loop_destroy(loop);
}

Test(loop, fd_hangup_reported, .timeout = 10)
{
    loop_t *loop = loop_create();
    int p[2];
    make_pipe(p);
    read_ctx_t c = {0};
    cr_assert_eq(loop_add_fd(loop, p[0], LOOP_READABLE, read_and_stop, &c), 0);
    close(p[1]);
    arm_watchdog(loop);
    loop_run(loop);
    cr_assert_eq(c.calls, 1);
    cr_assert(c.last_events & LOOP_HANGUP);
    cr_assert(c.last_events & LOOP_READABLE);
    loop_del_fd(loop, p[0]);
    close(p[0]);
    loop_destroy(loop);
}

typedef struct write_ctx {
    int writable_calls;
    int readable_calls;
    int rfd, wfd;
} write_ctx_t;

static void on_write_side(loop_t *loop, int fd, unsigned events, void *data)
{
    write_ctx_t *c = data;
    cr_assert(events & LOOP_WRITABLE);
    c->writable_calls++;
    cr_assert_eq(write(fd, "z", 1), 1);
    /* Done writing: stop asking, or this would fire every iteration. */
    cr_assert_eq(loop_mod_fd(loop, fd, 0), 0);
}

static void on_read_side(loop_t *loop, int fd, unsigned events, void *data)
{
    write_ctx_t *c = data;
    char ch;
    cr_assert_eq(read(fd, &ch, 1), 1);
    c->readable_calls++;
    loop_stop(loop);
}

Test(loop, mod_fd_switches_interest, .timeout = 10)
{
    loop_t *loop = loop_create();
    int p[2];
    make_pipe(p);
    write_ctx_t c = {.rfd = p[0], .wfd = p[1]};
    cr_assert_eq(loop_mod_fd(loop, p[1], LOOP_WRITABLE), -ENOENT);
    cr_assert_eq(loop_add_fd(loop, p[1], 0, on_write_side, &c), 0);
    cr_assert_eq(loop_mod_fd(loop, p[1], LOOP_WRITABLE), 0);
    cr_assert_eq(loop_mod_fd(loop, p[1], 1u << 7), -EINVAL);
    cr_assert_eq(loop_add_fd(loop, p[0], LOOP_READABLE, on_read_side, &c), 0);
    arm_watchdog(loop);
    loop_run(loop);
    cr_assert_eq(c.writable_calls, 1);
    cr_assert_eq(c.readable_calls, 1);
    loop_del_fd(loop, p[0]);
    loop_del_fd(loop, p[1]);
    close(p[0]);
    close(p[1]);
    loop_destroy(loop);
}

/* Two readable pipes; whichever callback runs first removes the other, so
 * the other's event, already fetched in the same epoll_wait, must be
 * dropped. */
typedef struct pair_ctx {
    int a[2], b[2];
    int calls_a, calls_b;
    bool reopen;    /* also put a fresh fd at the removed number */
    int fresh[2];   /* the pipe that took over the number */
    int calls_fresh;
} pair_ctx_t;

static void on_fresh(loop_t *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)fd;
    (void)events;
    pair_ctx_t *c = data;
    c->calls_fresh++;
}

static void on_pair(loop_t *loop, int fd, unsigned events, void *data)
{
    pair_ctx_t *c = data;
    bool is_a = fd == c->a[0];
    if (is_a)
        c->calls_a++;
    else
        c->calls_b++;
    int *other = is_a ? c->b : c->a;
    if (other[0] < 0)
        return;
    int number = other[0];
    loop_del_fd(loop, number);
    close(number);
    other[0] = -1;
    if (c->reopen) {
        /* The lowest free number is the one just closed. */
        make_pipe(c->fresh);
        cr_assert_eq(c->fresh[0], number);
        cr_assert_eq(loop_add_fd(loop, c->fresh[0], LOOP_READABLE, on_fresh, c), 0);
    }
}

static void run_pair_test(bool reopen)
{
    loop_t *loop = loop_create();
    pair_ctx_t c = {.reopen = reopen, .fresh = {-1, -1}};
    make_pipe(c.a);
    make_pipe(c.b);
    cr_assert_eq(write(c.a[1], "a", 1), 1);
    cr_assert_eq(write(c.b[1], "b", 1), 1);
    cr_assert_eq(loop_add_fd(loop, c.a[0], LOOP_READABLE, on_pair, &c), 0);
    cr_assert_eq(loop_add_fd(loop, c.b[0], LOOP_READABLE, on_pair, &c), 0);
    loop_add_timer(loop, 30, stop_cb, NULL);
    arm_watchdog(loop);
    loop_run(loop);
    /* Exactly one of the two ran (each stays readable, but the survivor
     * may run again on later iterations; the removed one never). */
    cr_assert((c.calls_a > 0) != (c.calls_b > 0));
    cr_assert_eq(c.calls_fresh, 0);
    int alive = c.a[0] >= 0 ? c.a[0] : c.b[0];
    loop_del_fd(loop, alive);
    close(alive);
    close(c.a[1]);
    close(c.b[1]);
    if (c.fresh[0] >= 0) {
        loop_del_fd(loop, c.fresh[0]);
        close(c.fresh[0]);
        close(c.fresh[1]);
    }
    loop_destroy(loop);
}

Test(loop, remove_fd_in_callback_drops_its_pending_event, .timeout = 10) { run_pair_test(false); }

Test(loop, fd_number_reused_in_callback_gets_no_stale_event, .timeout = 10) { run_pair_test(true); }

typedef struct self_remove_ctx {
    int calls;
    int p[2];
} self_remove_ctx_t;

static void remove_self(loop_t *loop, int fd, unsigned events, void *data)
{
    self_remove_ctx_t *c = data;
    c->calls++;
    loop_del_fd(loop, fd);
}

Test(loop, remove_self_in_callback, .timeout = 10)
{
    loop_t *loop = loop_create();
    self_remove_ctx_t c = {0};
    make_pipe(c.p);
    cr_assert_eq(write(c.p[1], "x", 1), 1);
    cr_assert_eq(loop_add_fd(loop, c.p[0], LOOP_READABLE, remove_self, &c), 0);
    loop_add_timer(loop, 30, stop_cb, NULL);
    arm_watchdog(loop);
    loop_run(loop);
    /* Still readable (never read), yet no further calls once removed. */
    cr_assert_eq(c.calls, 1);
    close(c.p[0]);
    close(c.p[1]);
    loop_destroy(loop);
}

typedef struct add_in_cb_ctx {
    int p[2];
    int q[2];
    int calls_p, calls_q;
} add_in_cb_ctx_t;

static void on_q(loop_t *loop, int fd, unsigned events, void *data)
{
    add_in_cb_ctx_t *c = data;
    char ch;
    cr_assert_eq(read(fd, &ch, 1), 1);
    c->calls_q++;
    loop_stop(loop);
}

static void on_p_adds_q(loop_t *loop, int fd, unsigned events, void *data)
{
    add_in_cb_ctx_t *c = data;
    char ch;
    cr_assert_eq(read(fd, &ch, 1), 1);
    c->calls_p++;
    cr_assert_eq(loop_add_fd(loop, c->q[0], LOOP_READABLE, on_q, c), 0);
    cr_assert_eq(write(c->q[1], "q", 1), 1);
}

Test(loop, add_fd_in_callback, .timeout = 10)
{
    loop_t *loop = loop_create();
    add_in_cb_ctx_t c = {0};
    make_pipe(c.p);
    make_pipe(c.q);
    cr_assert_eq(write(c.p[1], "p", 1), 1);
    cr_assert_eq(loop_add_fd(loop, c.p[0], LOOP_READABLE, on_p_adds_q, &c), 0);
    arm_watchdog(loop);
    loop_run(loop);
    cr_assert_eq(c.calls_p, 1);
    cr_assert_eq(c.calls_q, 1);
    loop_del_fd(loop, c.p[0]);
    loop_del_fd(loop, c.q[0]);
    close(c.p[0]);
    close(c.p[1]);
    close(c.q[0]);
    close(c.q[1]);
    loop_destroy(loop);
}

typedef struct cancel_from_fd_ctx {
    uint64_t timer;
    int timer_calls;
    int p[2];
} cancel_from_fd_ctx_t;

static void cancelled_timer_cb(loop_t *loop, uint64_t id, void *data)
{
    cancel_from_fd_ctx_t *c = data;
    c->timer_calls++;
}

static void fd_cancels_timer(loop_t *loop, int fd, unsigned events, void *data)
{
    cancel_from_fd_ctx_t *c = data;
    char ch;
    cr_assert_eq(read(fd, &ch, 1), 1);
    loop_cancel_timer(loop, c->timer);
}

Test(loop, cancel_timer_from_fd_callback_same_iteration, .timeout = 10)
{
    loop_t *loop = loop_create();
    cancel_from_fd_ctx_t c = {0};
    make_pipe(c.p);
    /* Due by the time the loop wakes for the fd; fds dispatch before timers
     * in an iteration, so the cancel must take effect at once. */
    c.timer = loop_add_timer(loop, 0, cancelled_timer_cb, &c);
    cr_assert_eq(write(c.p[1], "x", 1), 1);
    cr_assert_eq(loop_add_fd(loop, c.p[0], LOOP_READABLE, fd_cancels_timer, &c), 0);
    usleep(2000);
    loop_add_timer(loop, 30, stop_cb, NULL);
    arm_watchdog(loop);
    loop_run(loop);
    cr_assert_eq(c.timer_calls, 0);
    loop_del_fd(loop, c.p[0]);
    close(c.p[0]);
    close(c.p[1]);
    loop_destroy(loop);
}

/* ---- before-sleep hook ------------------------------------------------------ */

typedef struct hook_ctx {
    int calls;
    int stop_after;
} hook_ctx_t;

static void counting_hook(loop_t *loop, void *data)
{
    hook_ctx_t *c = data;
    c->calls++;
    if (c->calls == 1)
        loop_add_timer(loop, 1, NULL, NULL); /* something to wake for */
    if (c->calls >= c->stop_after)
        loop_stop(loop);
}

Test(loop, before_sleep_runs_each_iteration, .timeout = 10)
{
    loop_t *loop = loop_create();
    hook_ctx_t c = {.stop_after = 3};
    loop_set_before_sleep(loop, counting_hook, &c);
    /* Wake-ups so the loop iterates without anything else to do. */
    for (int i = 1; i <= 5; i++)
        loop_add_timer(loop, (uint64_t)(2 * i), NULL, NULL);
    arm_watchdog(loop);
    cr_assert_eq(loop_run(loop), 0);
    cr_assert_eq(c.calls, 3);

    /* Cleared: the loop then runs without it. */
    loop_set_before_sleep(loop, NULL, NULL);
    loop_add_timer(loop, 5, stop_cb, NULL);
    loop_run(loop);
    cr_assert_eq(c.calls, 3);
    loop_destroy(loop);
}

static void hook_arms_timer(loop_t *loop, void *data)
{
    int *armed = data;
    if (!*armed) {
        *armed = 1;
        loop_add_timer(loop, 0, stop_cb, NULL);
    }
}

Test(loop, before_sleep_timer_shortens_wait, .timeout = 10)
{
    loop_t *loop = loop_create();
    int armed = 0;
    loop_set_before_sleep(loop, hook_arms_timer, &armed);
    arm_watchdog(loop);
    uint64_t start = mono_ms();
    loop_run(loop);
    /* Would have slept until the 3 s watchdog had the hook's timer not
     * been taken into account. */
    cr_assert_lt(mono_ms() - start, 1000);
    loop_destroy(loop);
}

Test(loop, stop_before_run_returns_at_once, .timeout = 10)
{
    loop_t *loop = loop_create();
    arm_watchdog(loop);
    loop_stop(loop);
    uint64_t start = mono_ms();
    cr_assert_eq(loop_run(loop), 0);
    cr_assert_lt(mono_ms() - start, 1000);
    loop_destroy(loop);
}

/* ---- async ------------------------------------------------------------------ */

typedef struct async_ctx {
    int calls;
    loop_async_t *async;
} async_ctx_t;

static void async_stop_cb(loop_t *loop, void *data)
{
    async_ctx_t *c = data;
    c->calls++;
    loop_stop(loop);
}

static void *sender_thread(void *arg)
{
    loop_async_t *a = arg;
    usleep(20000);
    for (int i = 0; i < 100; i++)
        loop_async_send(a);
    return NULL;
}

Test(loop, async_from_other_thread_wakes_loop, .timeout = 10)
{
    loop_t *loop = loop_create();
    async_ctx_t c = {0};
    loop_async_t *a = loop_async_create(loop, async_stop_cb, &c);
    cr_assert_not_null(a);
    arm_watchdog(loop);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, sender_thread, a), 0);
    uint64_t start = mono_ms();
    cr_assert_eq(loop_run(loop), 0);
    pthread_join(th, NULL);
    cr_assert_geq(c.calls, 1);
    cr_assert_lt(mono_ms() - start, 2000);
    loop_async_destroy(a);
    loop_destroy(loop);
}

static void async_count_cb(loop_t *loop, void *data)
{
    async_ctx_t *c = data;
    c->calls++;
}

Test(loop, async_sends_coalesce, .timeout = 10)
{
    loop_t *loop = loop_create();
    async_ctx_t c = {0};
    loop_async_t *a = loop_async_create(loop, async_count_cb, &c);
    for (int i = 0; i < 10; i++)
        loop_async_send(a);
    loop_add_timer(loop, 30, stop_cb, NULL);
    arm_watchdog(loop);
    loop_run(loop);
    cr_assert_eq(c.calls, 1);
    /* Left for loop_destroy to free. */
    loop_destroy(loop);
}

static void async_self_destroy_cb(loop_t *loop, void *data)
{
    async_ctx_t *c = data;
    c->calls++;
    loop_async_destroy(c->async);
    c->async = NULL;
}

Test(loop, async_destroy_in_own_callback, .timeout = 10)
{
    loop_t *loop = loop_create();
    async_ctx_t c = {0};
    c.async = loop_async_create(loop, async_self_destroy_cb, &c);
    loop_async_t *other = loop_async_create(loop, async_count_cb, &(async_ctx_t){0});
    loop_async_send(c.async);
    loop_add_timer(loop, 20, stop_cb, NULL);
    arm_watchdog(loop);
    loop_run(loop);
    cr_assert_eq(c.calls, 1);
    cr_assert_null(c.async);
    loop_async_destroy(other);
    loop_destroy(loop);
}

/* ---- signals ---------------------------------------------------------------- */

typedef struct sig_ctx {
    int signo;
    int calls;
} sig_ctx_t;

static void on_signal(loop_t *loop, int signo, void *data)
{
    sig_ctx_t *c = data;
    c->signo = signo;
    c->calls++;
    loop_stop(loop);
}

Test(loop, signal_via_signalfd, .timeout = 10)
{
    loop_t *loop = loop_create();
    sig_ctx_t c = {0};
    int sigs[] = {SIGUSR1, SIGUSR2};
    cr_assert_eq(loop_watch_signals(loop, sigs, 2, on_signal, &c), 0);
    cr_assert_eq(loop_watch_signals(loop, sigs, 2, on_signal, &c), -EEXIST);
    /* Blocked now, so raising it cannot kill the test process. */
    raise(SIGUSR1);
    arm_watchdog(loop);
    loop_run(loop);
    cr_assert_eq(c.calls, 1);
    cr_assert_eq(c.signo, SIGUSR1);

    raise(SIGUSR2);
    loop_run(loop);
    cr_assert_eq(c.calls, 2);
    cr_assert_eq(c.signo, SIGUSR2);
    loop_destroy(loop);
}

Test(loop, watch_signals_rejects_bad_input)
{
    loop_t *loop = loop_create();
    int sigs[] = {SIGUSR1};
    cr_assert_eq(loop_watch_signals(loop, sigs, 0, on_signal, NULL), -EINVAL);
    int bad[] = {100000};
    cr_assert_eq(loop_watch_signals(loop, bad, 1, on_signal, NULL), -EINVAL);
    loop_destroy(loop);
}

/* ---- teardown ---------------------------------------------------------------- */

Test(loop, destroy_frees_pending_timers_and_asyncs)
{
    loop_t *loop = loop_create();
    for (int i = 0; i < 100; i++)
        loop_add_timer(loop, 1000 + (uint64_t)i, NULL, NULL);
    loop_async_create(loop, async_count_cb, NULL);
    loop_async_create(loop, async_count_cb, NULL);
    /* Under ASan, anything left behind shows up as a leak. */
    loop_destroy(loop);
    loop_destroy(NULL);
}
