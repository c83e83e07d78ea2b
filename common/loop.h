/* The event loop: the one thread that owns all daemon state runs here.
 *
 * An epoll loop in the spirit of Redis's ae: file events, one-shot timers,
 * a before-sleep hook for batched work, cross-thread wake-ups (eventfd) and
 * signals delivered as ordinary events (signalfd).  Everything except
 * loop_async_send() must be called on the loop's own thread.
 *
 * Callbacks may add or remove any fd, timer or async, including the one
 * being dispatched, and may call loop_stop(). */
#ifndef CRAYLET_COMMON_LOOP_H
#define CRAYLET_COMMON_LOOP_H

#include <stdint.h>

typedef struct loop loop_t;
typedef struct loop_async loop_async_t;

enum { LOOP_READABLE = 1u << 0, LOOP_WRITABLE = 1u << 1 };
/* Extra bits passed to fd callbacks only. */
enum { LOOP_HANGUP = 1u << 2, LOOP_ERROR = 1u << 3 };

typedef void (*loop_fd_cb)(loop_t *loop, int fd, unsigned events, void *data);
typedef void (*loop_timer_cb)(loop_t *loop, uint64_t timer_id, void *data);
typedef void (*loop_hook_cb)(loop_t *loop, void *data);
typedef void (*loop_signal_cb)(loop_t *loop, int signo, void *data);

/* Returns NULL only if the kernel refuses an epoll fd. */
loop_t *loop_create(void);
/* Frees the loop and every timer and async still registered; fds added with
 * loop_add_fd are not closed (the caller owns them). */
void loop_destroy(loop_t *loop);

/* Runs until loop_stop() is called; returns 0, or -errno if epoll fails. */
int loop_run(loop_t *loop);
/* loop_run() returns once the current iteration's dispatch is done (at once
 * if called before loop_run); the loop may then be run again. */
void loop_stop(loop_t *loop);

/* Cached monotonic time in milliseconds, refreshed on each iteration. */
uint64_t loop_now_ms(loop_t *loop);
/* Refresh and return the monotonic clock now. */
uint64_t loop_update_time(loop_t *loop);
/* Microseconds since the loop last woke from waiting (monotonic clock):
 * from the before-sleep hook, the work of the iteration ending. */
uint64_t loop_awake_us(loop_t *loop);

/* Watch fd for `events` (LOOP_READABLE | LOOP_WRITABLE).  One registration per
 * fd; adding an fd twice returns -EEXIST.  The caller keeps ownership of fd and
 * must loop_del_fd() before closing it.  A hang-up or error is passed to the
 * callback as LOOP_HANGUP / LOOP_ERROR together with the readiness bits the
 * registration asked for, so a reader also sees EOF through read(). */
int loop_add_fd(loop_t *loop, int fd, unsigned events, loop_fd_cb cb, void *data);
int loop_mod_fd(loop_t *loop, int fd, unsigned events);
void loop_del_fd(loop_t *loop, int fd);

/* One-shot timer firing after `delay_ms`.  Returns an id > 0 (never reused
 * during the loop's life).  A callback wanting a periodic timer re-arms itself.
 * Timers armed from a timer callback run on a later iteration, even with a
 * zero delay.  `cb` may be NULL (a pure wake-up). */
uint64_t loop_add_timer(loop_t *loop, uint64_t delay_ms, loop_timer_cb cb, void *data);
/* Cancelling an id that already fired or was cancelled is a no-op. */
void loop_cancel_timer(loop_t *loop, uint64_t timer_id);

/* Runs before every blocking wait (one hook; NULL clears it). */
void loop_set_before_sleep(loop_t *loop, loop_hook_cb cb, void *data);

/* Cross-thread wake-up.  loop_async_send() may be called from any thread, any
 * number of times; sends coalesce into at least one callback on the loop
 * thread.  The async is owned by the loop until loop_async_destroy(). */
loop_async_t *loop_async_create(loop_t *loop, loop_hook_cb cb, void *data);
void loop_async_send(loop_async_t *async);
void loop_async_destroy(loop_async_t *async);

/* Deliver `signos` through a signalfd.  Blocks those signals in the calling
 * thread, so call it before starting other threads (they inherit the mask).
 * Returns 0 or -errno (-EEXIST on a second call).  One call per loop.  The
 * signals stay blocked after loop_destroy(): unblocking one that is pending
 * would run its default action. */
int loop_watch_signals(loop_t *loop, const int *signos, int count, loop_signal_cb cb, void *data);

#endif
