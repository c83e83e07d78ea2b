/* Asynchronous client of Ray's GCS.
 *
 * One channel to the GCS address; every call carries the `ray_cluster_id`
 * metadata GCS checks.  Calls the daemon cannot do without (the config fetch,
 * registration) are retried with exponential backoff while GCS is
 * unreachable, up to the reconnect timeout (Ray's
 * gcs_rpc_server_reconnect_timeout_s); then they fail with CR_ETIMEOUT and
 * the caller decides (the raylet exits).  Callbacks run on the loop thread. */
#ifndef CRAYLET_GCS_CLIENT_GCS_CLIENT_H
#define CRAYLET_GCS_CLIENT_GCS_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/cq_bridge.h"
#include "common/id.h"
#include "common/loop.h"
#include "common/rpc.h"
#include "proto/ray_proto.h"

typedef struct gcs_client gcs_client_t;

/* GCS has answered nothing but UNAVAILABLE for `down_ms` (at least the
 * reconnect timeout): it was stopped, or died without Redis to come back
 * from.  Called once per outage, on the loop thread. */
typedef void (*gcs_unreachable_cb)(void *ctx, uint64_t down_ms);

typedef struct gcs_client_options {
    const char *address;       /* "host:port"; copied */
    const char *cluster_id_hex; /* copied; sent as ray_cluster_id */
    uint64_t reconnect_timeout_ms; /* give up on retried calls after this */
    uint64_t call_timeout_ms;      /* deadline of one attempt */
    gcs_unreachable_cb on_unreachable; /* optional */
    void *unreachable_ctx;
} gcs_client_options_t;

/* Returns NULL on failure (logged).  The loop and bridge must outlive it. */
gcs_client_t *gcs_client_create(loop_t *loop, cq_bridge_t *bridge, const gcs_client_options_t *opts);
/* Cancels outstanding calls without running their callbacks. */
void gcs_client_destroy(gcs_client_t *gcs);

/* How long calls keep retrying, and how long an outage may last before
 * on_unreachable, from now on (the system config arrives after creation). */
void gcs_client_set_reconnect_timeout(gcs_client_t *gcs, uint64_t timeout_ms);

rpc_channel_t *gcs_client_channel(gcs_client_t *gcs);
const char *gcs_client_address(const gcs_client_t *gcs);

/* err is 0, CR_ETIMEOUT (GCS unreachable for the whole reconnect timeout),
 * CR_EAUTH (GCS refused this node's token: token authentication is on
 * there and the token here is missing or another), CR_ERPC (another
 * non-retryable gRPC failure), CR_EGCS (GCS answered with an
 * error status) or CR_ECLOSED (the client is being destroyed: free ctx,
 * start nothing); message explains it.  `reply` is NULL unless err == 0, and
 * is freed when the callback returns. */
typedef void (*gcs_reply_cb)(void *ctx, int err, const char *message, ProtobufCMessage *reply);

/* Generic call.  `retry` selects backoff-and-retry on UNAVAILABLE /
 * DEADLINE_EXCEEDED until the reconnect timeout.  A reply carrying a
 * `GcsStatus status` field with a non-zero code is reported as CR_EGCS. */
int gcs_call(gcs_client_t *gcs, const char *method, const ProtobufCMessage *request,
             const ProtobufCMessageDescriptor *reply_desc, bool retry, gcs_reply_cb cb, void *ctx);
/* The same with an explicit per-attempt deadline; GCS_NO_DEADLINE for long
 * polls, which GCS itself holds open until there is news. */
#define GCS_NO_DEADLINE UINT64_MAX
int gcs_call_with_timeout(gcs_client_t *gcs, const char *method, const ProtobufCMessage *request,
                          const ProtobufCMessageDescriptor *reply_desc, bool retry,
                          uint64_t timeout_ms, gcs_reply_cb cb, void *ctx);

/* Convenience wrappers over gcs_call for the raylet's fixed calls. */
int gcs_get_internal_config(gcs_client_t *gcs, gcs_reply_cb cb, void *ctx);
int gcs_register_node(gcs_client_t *gcs, const Ray__Rpc__GcsNodeInfo *info, gcs_reply_cb cb,
                      void *ctx);
int gcs_unregister_node(gcs_client_t *gcs, const uint8_t node_id[ID_UNIQUE_SIZE], int reason,
                        const char *message, gcs_reply_cb cb, void *ctx);
int gcs_check_alive(gcs_client_t *gcs, const uint8_t node_id[ID_UNIQUE_SIZE], gcs_reply_cb cb, void *ctx);
/* NodeInfoGcsService: every node's address and liveness (a snapshot). */
int gcs_get_all_node_liveness(gcs_client_t *gcs, gcs_reply_cb cb, void *ctx);
/* JobInfoGcsService.  AddJob and MarkJobFinished are retried; ReportJobError
 * is best effort (the driver may be gone). */
int gcs_add_job(gcs_client_t *gcs, const Ray__Rpc__AddJobRequest *req, gcs_reply_cb cb, void *ctx);
int gcs_mark_job_finished(gcs_client_t *gcs, const uint8_t job_id[ID_JOB_SIZE], gcs_reply_cb cb, void *ctx);
/* An error for a job's driver to print (ErrorTableData: "worker_died",
 * ...); the strings are copied.  Best effort: failures are logged. */
int gcs_report_job_error(gcs_client_t *gcs, const uint8_t *job_id, size_t job_id_len, const char *type,
                         const char *message, double timestamp_ms);
/* WorkerInfoGcsService: a worker of this node is gone (GCS restarts or
 * fails its actors from this).  Retried while GCS is away, as stock does:
 * a report lost during a GCS restart would leave the dead worker's actors
 * ALIVE in the restarted GCS forever. */
int gcs_report_worker_failure(gcs_client_t *gcs, const Ray__Rpc__ReportWorkerFailureRequest *req,
                              gcs_reply_cb cb, void *ctx);

#endif
