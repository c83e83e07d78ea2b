/* The raylet's calls on a worker's CoreWorkerService: typed wrappers, so
 * the method names and reply types live in one place.  Each starts a unary
 * call on `ch` (owned by the caller, usually the pool) and behaves as
 * rpc_unary(): 0 and the callback runs exactly once unless the channel is
 * destroyed first, or a negative code and it never runs.  `timeout_ms` 0
 * means no deadline. */
#ifndef CRAYLET_RAYLET_WORKER_CORE_WORKER_CLIENT_H
#define CRAYLET_RAYLET_WORKER_CORE_WORKER_CLIENT_H

#include "common/rpc.h"
#include "proto/ray_proto.h"

int cwc_exit(rpc_channel_t *ch, const Ray__Rpc__ExitRequest *req, uint64_t timeout_ms, rpc_unary_cb cb,
             void *ctx);
int cwc_kill_actor(rpc_channel_t *ch, const Ray__Rpc__KillActorRequest *req, uint64_t timeout_ms,
                   rpc_unary_cb cb, void *ctx);
/* ray.cancel of a task the worker is running (service/ CancelLocalTask). */
int cwc_cancel_task(rpc_channel_t *ch, const Ray__Rpc__CancelTaskRequest *req, uint64_t timeout_ms,
                    rpc_unary_cb cb, void *ctx);
int cwc_get_stats(rpc_channel_t *ch, const Ray__Rpc__GetCoreWorkerStatsRequest *req, uint64_t timeout_ms,
                  rpc_unary_cb cb, void *ctx);
int cwc_plasma_object_ready(rpc_channel_t *ch, const Ray__Rpc__PlasmaObjectReadyRequest *req,
                            uint64_t timeout_ms, rpc_unary_cb cb, void *ctx);
int cwc_actor_call_arg_wait_complete(rpc_channel_t *ch, const Ray__Rpc__ActorCallArgWaitCompleteRequest *req,
                                     uint64_t timeout_ms, rpc_unary_cb cb, void *ctx);
/* An I/O worker's work (objects/spill.c). */
int cwc_spill_objects(rpc_channel_t *ch, const Ray__Rpc__SpillObjectsRequest *req, uint64_t timeout_ms,
                      rpc_unary_cb cb, void *ctx);
int cwc_restore_spilled_objects(rpc_channel_t *ch, const Ray__Rpc__RestoreSpilledObjectsRequest *req,
                                uint64_t timeout_ms, rpc_unary_cb cb, void *ctx);
int cwc_delete_spilled_objects(rpc_channel_t *ch, const Ray__Rpc__DeleteSpilledObjectsRequest *req,
                               uint64_t timeout_ms, rpc_unary_cb cb, void *ctx);
/* GCS restarted: the worker re-sends its GCS subscriptions. */
int cwc_raylet_notify_gcs_restart(rpc_channel_t *ch, uint64_t timeout_ms, rpc_unary_cb cb, void *ctx);
/* The owner side of object pubsub (objects/owner_sub.c). */
int cwc_pubsub_long_polling(rpc_channel_t *ch, const Ray__Rpc__PubsubLongPollingRequest *req,
                            uint64_t timeout_ms, rpc_unary_cb cb, void *ctx);
int cwc_pubsub_command_batch(rpc_channel_t *ch, const Ray__Rpc__PubsubCommandBatchRequest *req,
                             uint64_t timeout_ms, rpc_unary_cb cb, void *ctx);
/* Where an owner's objects are, and where copies came and went
 * (objects/owners.c). */
int cwc_get_object_locations_owner(rpc_channel_t *ch, const Ray__Rpc__GetObjectLocationsOwnerRequest *req,
                                   uint64_t timeout_ms, rpc_unary_cb cb, void *ctx);
int cwc_update_object_location_batch(rpc_channel_t *ch, const Ray__Rpc__UpdateObjectLocationBatchRequest *req,
                                     uint64_t timeout_ms, rpc_unary_cb cb, void *ctx);

#endif
