/* The raylet socket: workers' and drivers' half of the node_manager.fbs
 * protocol.  One wclient per connection; registration hands the connection
 * to the pool's worker record, and each message is decoded at the edge
 * (wmsg.c) and turned into a call on a component: the pool, the lease
 * manager (blocked / unblocked), object waits, the store, GCS.
 *
 * Every frame is untrusted: a malformed flatbuffer, an unknown message type
 * or a request out of order closes that connection with a logged reason,
 * and the peer is treated as a dead worker; everyone else keeps being
 * served.  Loop thread only. */
#ifndef CRAYLET_RAYLET_WORKER_WORKER_SOCK_H
#define CRAYLET_RAYLET_WORKER_WORKER_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "gcs_client/gcs_client.h"
#include "object_store/store.h"
#include "raylet/objects/obj_wait.h"
#include "raylet/objects/transfer.h"
#include "raylet/sched/lease_mgr.h"
#include "raylet/worker/jobs.h"
#include "raylet/worker/pool.h"

typedef struct wsock wsock_t;

/* Everything borrowed: each must outlive the wsock_t. */
typedef struct wsock_options {
    loop_t *loop;
    pool_t *pool;
    lease_mgr_t *leases;
    owait_t *owait;
    store_t *store;
    xfer_t *xfer; /* fetches from other nodes; NULL: none */
    gcs_client_t *gcs;
    jobs_t *jobs;
    const uint8_t *node_id; /* ID_UNIQUE_SIZE bytes */
    const char *node_ip_address;
    /* Job-less workers started when the first Python driver registers
     * (prestart_worker_first_driver); 0 for none. */
    size_t prestart_on_first_driver;
    /* CRAYLET_RECORD_FRAMES (common/frame_record.h); NULL for none. */
    const char *record_frames_dir;
} wsock_options_t;

wsock_t *wsock_create(const wsock_options_t *opts);
/* A connection accepted on the raylet socket (the listener checked its
 * uid); takes `fd`.  `peer_pid` is from SO_PEERCRED. */
void wsock_accept(wsock_t *ws, int fd, pid_t peer_pid);
/* A worker record is about to be freed: detach its connection state. */
void wsock_worker_dead(wsock_t *ws, worker_t *w);
/* `w`'s lease ended (it goes back to the pool): drop the fetches its
 * task's gets and waits left behind. */
void wsock_lease_returned(wsock_t *ws, worker_t *w);
/* Close every connection now and cancel its waits; no callback after.
 * Idempotent; later accepts are refused. */
void wsock_stop(wsock_t *ws);
void wsock_destroy(wsock_t *ws);

#endif
