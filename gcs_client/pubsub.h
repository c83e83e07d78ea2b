/* GCS pubsub subscriber: the long-poll protocol of the GCS's control-plane
 * channels (InternalPubSubGcsService before Ray 2.60,
 * ControlPlanePubSubGcsService since).
 *
 * Subscribes to whole channels (empty key = every key) with one
 * GcsSubscriberCommandBatch, then keeps exactly one GcsSubscriberPoll in
 * flight.  Messages are delivered in sequence order, each once; when the
 * publisher id changes (GCS restarted) the sequence restarts and the
 * subscription is re-sent.  Failures are retried with backoff forever: the
 * raylet's liveness is decided elsewhere (CheckAlive, the GCS
 * client's outage timer). */
#ifndef CRAYLET_GCS_CLIENT_PUBSUB_H
#define CRAYLET_GCS_CLIENT_PUBSUB_H

#include <stddef.h>

#include "gcs_client/gcs_client.h"

typedef struct gcs_sub gcs_sub_t;

/* `msg` is valid only during the call.  The callback must not destroy the
 * subscriber (defer that to a timer or the before-sleep hook). */
typedef void (*gcs_sub_message_cb)(void *ctx, const Ray__Rpc__PubMessage *msg);
/* Called after each (re)subscription is acknowledged: the moment to fetch
 * a snapshot of whatever the channels describe. */
typedef void (*gcs_sub_ready_cb)(void *ctx);

/* Starts subscribing at once.  `channels` (Ray__Rpc__ChannelType values) is
 * copied.  The GCS client must outlive the subscriber. */
gcs_sub_t *gcs_sub_create(loop_t *loop, gcs_client_t *gcs, const int *channels, size_t count,
                          gcs_sub_message_cb on_message, gcs_sub_ready_cb on_ready, void *ctx);
/* GCS restarted (NotifyGCSRestart): subscribe anew now, rather than when
 * the current poll fails, and call on_ready again once subscribed, so the
 * caller re-reads what it may have missed.  The poll in flight, if any, is
 * abandoned (its completion only frees itself). */
void gcs_sub_resubscribe(gcs_sub_t *sub);
void gcs_sub_destroy(gcs_sub_t *sub);

#endif
