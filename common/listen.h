/* A listening Unix stream socket on the event loop: bind, accept, hand each
 * connection to its owner.
 *
 * Shared by the raylet socket and the object store's socket, so both get
 * the same hardening:
 *   - the socket file is created 0600 (chmod between bind and listen, so no
 *     client can connect while it is wider), its directory 0700 if we have
 *     to create it; a stale file from a crashed predecessor is replaced;
 *   - a peer whose uid (SO_PEERCRED) is neither ours nor root's is refused
 *     with a logged reason, before the owner sees it;
 *   - when accept() fails for lack of descriptors or memory (EMFILE,
 *     ENFILE, ENOBUFS, ENOMEM), the listener stops polling and re-arms
 *     after LISTEN_BACKOFF_MS, as nginx disables accept events, instead of
 *     spinning on the connection still pending in the backlog;
 *   - every accepted descriptor is non-blocking and close-on-exec. */
#ifndef CRAYLET_COMMON_LISTEN_H
#define CRAYLET_COMMON_LISTEN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/loop.h"

#define LISTEN_BACKOFF_MS 100

typedef struct listener listener_t;

/* A new connection; the callee owns `fd` from here on.  `uid`/`pid` are the
 * peer's credentials. */
typedef void (*listen_accept_cb)(void *ctx, int fd, uid_t uid, pid_t pid);

typedef struct listen_options {
    const char *path; /* copied */
    const char *what; /* names the socket in logs ("raylet socket"); copied */
    int backlog;      /* 0: 1024 */
    /* Admit peers of any uid (tests only); the default refuses others. */
    bool any_uid;
} listen_options_t;

/* Binds and starts accepting.  Returns NULL with *err set (logged). */
listener_t *listener_create(loop_t *loop, const listen_options_t *opts, listen_accept_cb cb, void *ctx, int *err);
/* Stop accepting (pending connections are refused), remove the socket
 * file, cancel the back-off timer.  No callback runs afterwards.
 * Idempotent. */
void listener_stop(listener_t *l);
/* Stops if needed and frees. */
void listener_destroy(listener_t *l);

/* Counters, for tests and debug_state.txt. */
typedef struct listen_stats {
    uint64_t accepted;
    uint64_t refused_uid; /* peers of another uid */
    uint64_t backoffs;    /* times accept was paused for lack of resources */
} listen_stats_t;
void listener_stats(const listener_t *l, listen_stats_t *out);

#endif
