#include "raylet/worker/core_worker_client.h"

#define CWC_METHOD(name) "/ray.rpc.CoreWorkerService/" name

int cwc_exit(rpc_channel_t *ch, const Ray__Rpc__ExitRequest *req, uint64_t timeout_ms, rpc_unary_cb cb,
             void *ctx)
{
    return rpc_unary(ch, CWC_METHOD("Exit"), &req->base, &ray__rpc__exit_reply__descriptor, timeout_ms, cb, ctx);
}

int cwc_kill_actor(rpc_channel_t *ch, const Ray__Rpc__KillActorRequest *req, uint64_t timeout_ms,
                   rpc_unary_cb cb, void *ctx)
{
    return rpc_unary(ch, CWC_METHOD("KillActor"), &req->base, &ray__rpc__kill_actor_reply__descriptor, timeout_ms,
                     cb, ctx);
}

int cwc_cancel_task(rpc_channel_t *ch, const Ray__Rpc__CancelTaskRequest *req, uint64_t timeout_ms,
                    rpc_unary_cb cb, void *ctx)
{
    return rpc_unary(ch, CWC_METHOD("CancelTask"), &req->base, &ray__rpc__cancel_task_reply__descriptor, timeout_ms,
                     cb, ctx);
}

int cwc_get_stats(rpc_channel_t *ch, const Ray__Rpc__GetCoreWorkerStatsRequest *req, uint64_t timeout_ms,
                  rpc_unary_cb cb, void *ctx)
{
    return rpc_unary(ch, CWC_METHOD("GetCoreWorkerStats"), &req->base,
                     &ray__rpc__get_core_worker_stats_reply__descriptor, timeout_ms, cb, ctx);
}

int cwc_spill_objects(rpc_channel_t *ch, const Ray__Rpc__SpillObjectsRequest *req, uint64_t timeout_ms,
                      rpc_unary_cb cb, void *ctx)
{
    return rpc_unary(ch, CWC_METHOD("SpillObjects"), &req->base, &ray__rpc__spill_objects_reply__descriptor,
                     timeout_ms, cb, ctx);
}

int cwc_restore_spilled_objects(rpc_channel_t *ch, const Ray__Rpc__RestoreSpilledObjectsRequest *req,
                                uint64_t timeout_ms, rpc_unary_cb cb, void *ctx)
{
    return rpc_unary(ch, CWC_METHOD("RestoreSpilledObjects"), &req->base,
                     &ray__rpc__restore_spilled_objects_reply__descriptor, timeout_ms, cb, ctx);
}

int cwc_delete_spilled_objects(rpc_channel_t *ch, const Ray__Rpc__DeleteSpilledObjectsRequest *req,
                               uint64_t timeout_ms, rpc_unary_cb cb, void *ctx)
{
    return rpc_unary(ch, CWC_METHOD("DeleteSpilledObjects"), &req->base,
                     &ray__rpc__delete_spilled_objects_reply__descriptor, timeout_ms, cb, ctx);
}

int cwc_raylet_notify_gcs_restart(rpc_channel_t *ch, uint64_t timeout_ms, rpc_unary_cb cb, void *ctx)
{
    Ray__Rpc__RayletNotifyGCSRestartRequest req = RAY__RPC__RAYLET_NOTIFY_GCSRESTART_REQUEST__INIT;
    return rpc_unary(ch, CWC_METHOD("RayletNotifyGCSRestart"), &req.base,
                     &ray__rpc__raylet_notify_gcsrestart_reply__descriptor, timeout_ms, cb, ctx);
}

int cwc_plasma_object_ready(rpc_channel_t *ch, const Ray__Rpc__PlasmaObjectReadyRequest *req,
                            uint64_t timeout_ms, rpc_unary_cb cb, void *ctx)
{
    return rpc_unary(ch, CWC_METHOD("PlasmaObjectReady"), &req->base, &ray__rpc__plasma_object_ready_reply__descriptor,
                     timeout_ms, cb, ctx);
}

int cwc_actor_call_arg_wait_complete(rpc_channel_t *ch, const Ray__Rpc__ActorCallArgWaitCompleteRequest *req,
                                     uint64_t timeout_ms, rpc_unary_cb cb, void *ctx)
{
    return rpc_unary(ch, CWC_METHOD("ActorCallArgWaitComplete"), &req->base,
                     &ray__rpc__actor_call_arg_wait_complete_reply__descriptor, timeout_ms, cb, ctx);
}

int cwc_pubsub_long_polling(rpc_channel_t *ch, const Ray__Rpc__PubsubLongPollingRequest *req,
                            uint64_t timeout_ms, rpc_unary_cb cb, void *ctx)
{
    return rpc_unary(ch, CWC_METHOD("PubsubLongPolling"), &req->base,
                     &ray__rpc__pubsub_long_polling_reply__descriptor, timeout_ms, cb, ctx);
}

int cwc_pubsub_command_batch(rpc_channel_t *ch, const Ray__Rpc__PubsubCommandBatchRequest *req,
                             uint64_t timeout_ms, rpc_unary_cb cb, void *ctx)
{
    return rpc_unary(ch, CWC_METHOD("PubsubCommandBatch"), &req->base,
                     &ray__rpc__pubsub_command_batch_reply__descriptor, timeout_ms, cb, ctx);
}

int cwc_get_object_locations_owner(rpc_channel_t *ch, const Ray__Rpc__GetObjectLocationsOwnerRequest *req,
                                   uint64_t timeout_ms, rpc_unary_cb cb, void *ctx)
{
    return rpc_unary(ch, CWC_METHOD("GetObjectLocationsOwner"), &req->base,
                     &ray__rpc__get_object_locations_owner_reply__descriptor, timeout_ms, cb, ctx);
}

int cwc_update_object_location_batch(rpc_channel_t *ch, const Ray__Rpc__UpdateObjectLocationBatchRequest *req,
                                     uint64_t timeout_ms, rpc_unary_cb cb, void *ctx)
{
    return rpc_unary(ch, CWC_METHOD("UpdateObjectLocationBatch"), &req->base,
                     &ray__rpc__update_object_location_batch_reply__descriptor, timeout_ms, cb, ctx);
}
