/* One client connection on a Unix stream socket speaking Ray's framed
 * protocol (int64 cookie, int64 type, int64 length, payload), driven by the
 * event loop.
 *
 * Reads are non-blocking and decoded incrementally; each complete frame is
 * handed to on_message in arrival order.  Writes are queued and flushed as
 * the socket allows, so a slow peer never blocks the loop.  Any protocol
 * violation (wrong cookie, oversized length) closes the connection with a
 * logged reason; the owner learns of every close through on_close, exactly
 * once, and frees its own state there. */
#ifndef CRAYLET_RAYLET_CONN_H
#define CRAYLET_RAYLET_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "common/loop.h"

typedef struct conn conn_t;

typedef struct conn_callbacks {
    /* `payload` is valid only during the call.  Return 0 to keep reading, or
     * a negative code to close the connection (the reason is logged). */
    int (*on_message)(void *ctx, conn_t *c, int64_t type, const uint8_t *payload, size_t len);
    /* The connection is closed (peer hung up, error, or conn_close()).  The
     * conn is freed right after this returns.  `reason` is never NULL. */
    void (*on_close)(void *ctx, conn_t *c, const char *reason);
} conn_callbacks_t;

/* Takes ownership of `fd` (closed on destroy).  `what` names the socket in
 * logs ("raylet socket").  Returns NULL only if the loop refuses the fd. */
conn_t *conn_create(loop_t *loop, int fd, const char *what, const conn_callbacks_t *cbs, void *ctx);

/* Queue one frame.  Returns 0, or CR_ECLOSED if the connection is closing. */
int conn_send(conn_t *c, int64_t type, const void *payload, size_t len);

/* Close with a reason (logged at warn level unless it is NULL, meaning an
 * orderly close).  on_close runs from the loop shortly after, not inside
 * this call, so callers up the stack may keep using the conn's owner. */
void conn_close(conn_t *c, const char *reason);

/* Close and free now, without on_close (the owner is being torn down and
 * frees its own state).  Not from inside this conn's on_message. */
void conn_destroy(conn_t *c);
/* The peer's credentials (SO_PEERCRED) pid, or -1. */
int conn_peer_pid(const conn_t *c);
int conn_fd(const conn_t *c);

#endif
