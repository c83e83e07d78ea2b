/* Waiting for objects to be sealed in the local store: ray.wait
 * (WaitRequest), actor call arguments (WaitForActorCallArgsRequest) and
 * `await ref` (SubscribePlasmaReady) all reduce to "tell me when k of these
 * ids are local, or when the timeout passes".
 *
 * The owner feeds every seal in through owait_on_sealed(); a waiter is
 * checked only when one of its own ids arrives. */
#ifndef CRAYLET_RAYLET_OBJ_WAIT_H
#define CRAYLET_RAYLET_OBJ_WAIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/id.h"
#include "common/loop.h"

typedef struct owait owait_t;
typedef struct owait_req owait_req_t;

/* Is the object sealed in the local store now? */
typedef bool (*owait_contains_fn)(void *ctx, const uint8_t oid[ID_OBJECT_SIZE]);

/* `ready[i]` tells which ids were found; both arrays are valid only during
 * the call.  `timed_out` is true when the deadline ended the wait.  The
 * request is freed after the callback returns. */
typedef void (*owait_done_fn)(void *ctx, const uint8_t (*ids)[ID_OBJECT_SIZE], const bool *ready,
                              size_t count, bool timed_out);

owait_t *owait_create(loop_t *loop, owait_contains_fn contains, void *contains_ctx);
/* Cancels (without callbacks) every waiter still registered. */
void owait_destroy(owait_t *ow);

/* Wait until `required` of the `count` ids are local (0 answers at once,
 * values above count mean all), or timeout_ms passes (negative: forever).
 * The callback may run before this returns, in which case NULL is
 * returned. */
owait_req_t *owait_start(owait_t *ow, const uint8_t (*ids)[ID_OBJECT_SIZE], size_t count,
                         size_t required, int64_t timeout_ms, owait_done_fn done, void *ctx);
/* Drop a waiter without calling it (its client went away). */
void owait_cancel(owait_t *ow, owait_req_t *req);
/* Drop every waiter whose ctx is `ctx`. */
void owait_cancel_ctx(owait_t *ow, void *ctx);

void owait_on_sealed(owait_t *ow, const uint8_t oid[ID_OBJECT_SIZE]);
size_t owait_count(const owait_t *ow);

#endif
