/* Unit tests for craylet_proto: the generated protobuf-c bindings. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "proto/gen/gcs.pb-c.h"
#include "proto/gen/gcs_service.pb-c.h"
#include "proto/gen/health.pb-c.h"
#include "proto/gen/ray_syncer.pb-c.h"

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
	*len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(*len ? *len : 1);
	cr_assert_not_null(buf);
	cr_assert_eq(protobuf_c_message_pack(m, buf), *len);
	return buf;
}

Test(proto, gcs_node_info_roundtrip)
{
	uint8_t node_id[28];
	for (size_t i = 0; i < sizeof node_id; i++)
		node_id[i] = (uint8_t)(0xa0 + i);
	Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry cpu, gpu;
	ray__rpc__gcs_node_info__resources_total_entry__init(&cpu);
	ray__rpc__gcs_node_info__resources_total_entry__init(&gpu);
	cpu.key = "CPU";
	cpu.value = 16;
	gpu.key = "GPU";
	gpu.value = 8;
	Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry *res[] = {&cpu, &gpu};

	Ray__Rpc__GcsNodeInfo info = RAY__RPC__GCS_NODE_INFO__INIT;
	info.node_id.data = node_id;
	info.node_id.len = sizeof node_id;
	info.node_manager_address = "10.0.0.7";
	info.node_manager_port = 40123;
	info.state = RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE;
	info.n_resources_total = 2;
	info.resources_total = res;
	info.is_head_node = 1;

	size_t len;
	uint8_t *buf = pack(&info.base, &len);
	Ray__Rpc__GcsNodeInfo *back = ray__rpc__gcs_node_info__unpack(NULL, len, buf);
	cr_assert_not_null(back);
	cr_assert_eq(back->node_id.len, sizeof node_id);
	cr_assert_arr_eq(back->node_id.data, node_id, sizeof node_id);
	cr_assert_str_eq(back->node_manager_address, "10.0.0.7");
	cr_assert_eq(back->node_manager_port, 40123);
	cr_assert_eq(back->is_head_node, 1);
	cr_assert_eq(back->n_resources_total, 2);
	cr_assert_str_eq(back->resources_total[1]->key, "GPU");
	cr_assert_float_eq(back->resources_total[1]->value, 8.0, 1e-12);
	cr_assert_null(back->death_info);
	ray__rpc__gcs_node_info__free_unpacked(back, NULL);
	free(buf);
}

/* proto3 `optional` fields become one-member oneofs: presence survives, even
 * for a value equal to the default. */
Test(proto, proto3_optional_keeps_presence)
{
	Ray__Rpc__GetAllNodeAddressAndLivenessRequest req =
		RAY__RPC__GET_ALL_NODE_ADDRESS_AND_LIVENESS_REQUEST__INIT;
	size_t len;
	uint8_t *buf = pack(&req.base, &len);
	cr_assert_eq(len, 0);
	free(buf);

	req._state_filter_case =
		RAY__RPC__GET_ALL_NODE_ADDRESS_AND_LIVENESS_REQUEST___STATE_FILTER_STATE_FILTER;
	req.state_filter = RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE; /* 0 */
	buf = pack(&req.base, &len);
	/* field 3, varint, value 0 */
	cr_assert_eq(len, 2);
	cr_assert_eq(buf[0], (3 << 3) | 0);
	cr_assert_eq(buf[1], 0);

	Ray__Rpc__GetAllNodeAddressAndLivenessRequest *back =
		ray__rpc__get_all_node_address_and_liveness_request__unpack(NULL, len, buf);
	cr_assert_not_null(back);
	cr_assert_eq(back->_state_filter_case,
		     RAY__RPC__GET_ALL_NODE_ADDRESS_AND_LIVENESS_REQUEST___STATE_FILTER_STATE_FILTER);
	cr_assert_eq(back->_limit_case,
		     RAY__RPC__GET_ALL_NODE_ADDRESS_AND_LIVENESS_REQUEST___LIMIT__NOT_SET);
	ray__rpc__get_all_node_address_and_liveness_request__free_unpacked(back, NULL);
	free(buf);
}

Test(proto, syncer_batch_roundtrip)
{
	Ray__Rpc__Syncer__ResourceViewSyncMessage__ResourcesTotalEntry e =
		RAY__RPC__SYNCER__RESOURCE_VIEW_SYNC_MESSAGE__RESOURCES_TOTAL_ENTRY__INIT;
	e.key = "CPU";
	e.value = 4;
	Ray__Rpc__Syncer__ResourceViewSyncMessage__ResourcesTotalEntry *ep[] = {&e};
	Ray__Rpc__Syncer__ResourceViewSyncMessage view =
		RAY__RPC__SYNCER__RESOURCE_VIEW_SYNC_MESSAGE__INIT;
	view.n_resources_total = 1;
	view.resources_total = ep;
	view.object_pulls_queued = 1;
	view.idle_duration_ms = 250;
	size_t view_len;
	uint8_t *view_buf = pack(&view.base, &view_len);

	uint8_t node_id[28] = {1, 2, 3};
	Ray__Rpc__Syncer__RaySyncMessage msg = RAY__RPC__SYNCER__RAY_SYNC_MESSAGE__INIT;
	msg.version = 9;
	msg.message_type = RAY__RPC__SYNCER__MESSAGE_TYPE__RESOURCE_VIEW;
	msg.sync_message.data = view_buf;
	msg.sync_message.len = view_len;
	msg.node_id.data = node_id;
	msg.node_id.len = sizeof node_id;
	Ray__Rpc__Syncer__RaySyncMessage *mp[] = {&msg};
	Ray__Rpc__Syncer__RaySyncMessageBatch batch =
		RAY__RPC__SYNCER__RAY_SYNC_MESSAGE_BATCH__INIT;
	batch.n_messages = 1;
	batch.messages = mp;
	size_t len;
	uint8_t *buf = pack(&batch.base, &len);

	Ray__Rpc__Syncer__RaySyncMessageBatch *b =
		ray__rpc__syncer__ray_sync_message_batch__unpack(NULL, len, buf);
	cr_assert_not_null(b);
	cr_assert_eq(b->n_messages, 1);
	cr_assert_eq(b->messages[0]->version, 9);
	cr_assert_eq(b->messages[0]->node_id.len, 28);
	Ray__Rpc__Syncer__ResourceViewSyncMessage *v =
		ray__rpc__syncer__resource_view_sync_message__unpack(
			NULL, b->messages[0]->sync_message.len,
			b->messages[0]->sync_message.data);
	cr_assert_not_null(v);
	cr_assert_eq(v->object_pulls_queued, 1);
	cr_assert_eq(v->idle_duration_ms, 250);
	cr_assert_eq(v->n_resources_total, 1);
	cr_assert_str_eq(v->resources_total[0]->key, "CPU");
	ray__rpc__syncer__resource_view_sync_message__free_unpacked(v, NULL);
	ray__rpc__syncer__ray_sync_message_batch__free_unpacked(b, NULL);
	free(buf);
	free(view_buf);
}

Test(proto, health_enum_values)
{
	cr_assert_eq(GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__UNKNOWN, 0);
	cr_assert_eq(GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING, 1);
	cr_assert_eq(GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING, 2);
	cr_assert_eq(GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN, 3);

	Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	r.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	size_t len;
	uint8_t *buf = pack(&r.base, &len);
	cr_assert_eq(len, 2);
	cr_assert_eq(buf[0], 0x08);
	cr_assert_eq(buf[1], 0x01);
	free(buf);
}

/* Untrusted bytes: decoding fails cleanly instead of aborting. */
Test(proto, garbage_is_rejected)
{
	static const uint8_t truncated_len[] = {0x0a, 0x10, 'a', 'b'};
	static const uint8_t bad_wire_type[] = {0x0f, 0x00};
	static const uint8_t long_varint[] = {0x10, 0xff, 0xff, 0xff, 0xff, 0xff,
					      0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	cr_assert_null(ray__rpc__gcs_node_info__unpack(NULL, sizeof truncated_len,
							truncated_len));
	cr_assert_null(ray__rpc__gcs_node_info__unpack(NULL, sizeof bad_wire_type,
							bad_wire_type));
	cr_assert_null(ray__rpc__syncer__ray_sync_message__unpack(
		NULL, sizeof long_varint, long_varint));
	/* A nested message whose length runs past its parent. */
	static const uint8_t nested_overrun[] = {0x0a, 0x03, 0x0a, 0x05, 0x00};
	cr_assert_null(ray__rpc__syncer__ray_sync_message_batch__unpack(
		NULL, sizeof nested_overrun, nested_overrun));
}
