/*
 * proto_dump: a test tool over the protobuf-c descriptors compiled into
 * craylet_proto.
 *
 *   proto_dump describe        JSON of every compiled message, enum and
 *                              service (field numbers, types, labels, ...).
 *   proto_dump roundtrip       stdin: records  u32le name_len, name,
 *                                              u32le len, payload
 *                              stdout: per record  u8 status, u32le len,
 *                                                  payload
 *                              each payload is unpacked as the named message
 *                              and packed again (status 0), or status 1 =
 *                              unknown message, 2 = unpack failed.
 *   proto_dump syncer-encode   a fixed RaySyncMessageBatch on stdout.
 *   proto_dump syncer-decode   a RaySyncMessageBatch from stdin, as JSON.
 *
 * tests/integration/test_proto_descriptors.py drives it.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "proto/gen/ray_syncer.pb-c.h"

/* From the generated proto_registry.c; each ends with NULL. */
extern const ProtobufCMessageDescriptor *const craylet_proto_messages[];
extern const ProtobufCEnumDescriptor *const craylet_proto_enums[];
extern const ProtobufCServiceDescriptor *const craylet_proto_services[];

/* ---- JSON output --------------------------------------------------------- */

static void json_str(FILE *out, const char *s)
{
	if (s == NULL) {
		fputs("null", out);
		return;
	}
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void json_hex(FILE *out, const uint8_t *data, size_t len)
{
	fputc('"', out);
	for (size_t i = 0; i < len; i++)
		fprintf(out, "%02x", data[i]);
	fputc('"', out);
}

static const char *label_name(ProtobufCLabel label)
{
	switch (label) {
	case PROTOBUF_C_LABEL_REQUIRED: return "REQUIRED";
	case PROTOBUF_C_LABEL_OPTIONAL: return "OPTIONAL";
	case PROTOBUF_C_LABEL_REPEATED: return "REPEATED";
	case PROTOBUF_C_LABEL_NONE: return "NONE";
	}
	return "?";
}

static const char *type_name(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT32: return "INT32";
	case PROTOBUF_C_TYPE_SINT32: return "SINT32";
	case PROTOBUF_C_TYPE_SFIXED32: return "SFIXED32";
	case PROTOBUF_C_TYPE_INT64: return "INT64";
	case PROTOBUF_C_TYPE_SINT64: return "SINT64";
	case PROTOBUF_C_TYPE_SFIXED64: return "SFIXED64";
	case PROTOBUF_C_TYPE_UINT32: return "UINT32";
	case PROTOBUF_C_TYPE_FIXED32: return "FIXED32";
	case PROTOBUF_C_TYPE_UINT64: return "UINT64";
	case PROTOBUF_C_TYPE_FIXED64: return "FIXED64";
	case PROTOBUF_C_TYPE_FLOAT: return "FLOAT";
	case PROTOBUF_C_TYPE_DOUBLE: return "DOUBLE";
	case PROTOBUF_C_TYPE_BOOL: return "BOOL";
	case PROTOBUF_C_TYPE_ENUM: return "ENUM";
	case PROTOBUF_C_TYPE_STRING: return "STRING";
	case PROTOBUF_C_TYPE_BYTES: return "BYTES";
	case PROTOBUF_C_TYPE_MESSAGE: return "MESSAGE";
	}
	return "?";
}

static void describe_field(FILE *out, const ProtobufCFieldDescriptor *f)
{
	fputs("{\"name\":", out);
	json_str(out, f->name);
	fprintf(out, ",\"number\":%u,\"label\":\"%s\",\"type\":\"%s\",\"type_name\":",
		f->id, label_name(f->label), type_name(f->type));
	if (f->type == PROTOBUF_C_TYPE_MESSAGE)
		json_str(out, ((const ProtobufCMessageDescriptor *)f->descriptor)->name);
	else if (f->type == PROTOBUF_C_TYPE_ENUM)
		json_str(out, ((const ProtobufCEnumDescriptor *)f->descriptor)->name);
	else
		fputs("null", out);
	fprintf(out, ",\"packed\":%s,\"deprecated\":%s,\"oneof\":",
		(f->flags & PROTOBUF_C_FIELD_FLAG_PACKED) ? "true" : "false",
		(f->flags & PROTOBUF_C_FIELD_FLAG_DEPRECATED) ? "true" : "false");
	/* Members of one oneof share the offset of its case member. */
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		fprintf(out, "%u", f->quantifier_offset);
	else
		fputs("null", out);
	fputc('}', out);
}

static int cmd_describe(void)
{
	FILE *out = stdout;
	fputs("{\"messages\":[", out);
	for (size_t i = 0; craylet_proto_messages[i] != NULL; i++) {
		const ProtobufCMessageDescriptor *m = craylet_proto_messages[i];
		fputs(i ? ",\n{" : "\n{", out);
		fputs("\"name\":", out);
		json_str(out, m->name);
		fputs(",\"c_name\":", out);
		json_str(out, m->c_name);
		fprintf(out, ",\"sizeof\":%zu,\"fields\":[", m->sizeof_message);
		for (unsigned j = 0; j < m->n_fields; j++) {
			if (j)
				fputc(',', out);
			describe_field(out, &m->fields[j]);
		}
		fputs("]}", out);
	}
	fputs("],\n\"enums\":[", out);
	for (size_t i = 0; craylet_proto_enums[i] != NULL; i++) {
		const ProtobufCEnumDescriptor *e = craylet_proto_enums[i];
		fputs(i ? ",\n{" : "\n{", out);
		fputs("\"name\":", out);
		json_str(out, e->name);
		/* values holds distinct numbers; values_by_name every name,
		 * aliases included. */
		fputs(",\"values\":[", out);
		for (unsigned j = 0; j < e->n_values; j++) {
			fputs(j ? ",{\"name\":" : "{\"name\":", out);
			json_str(out, e->values[j].name);
			fprintf(out, ",\"number\":%d}", e->values[j].value);
		}
		fputs("],\"names\":[", out);
		for (unsigned j = 0; j < e->n_value_names; j++) {
			const ProtobufCEnumValueIndex *ix = &e->values_by_name[j];
			fputs(j ? ",{\"name\":" : "{\"name\":", out);
			json_str(out, ix->name);
			fprintf(out, ",\"number\":%d}",
				ix->index < e->n_values ? e->values[ix->index].value : -1);
		}
		fputs("]}", out);
	}
	fputs("],\n\"services\":[", out);
	for (size_t i = 0; craylet_proto_services[i] != NULL; i++) {
		const ProtobufCServiceDescriptor *s = craylet_proto_services[i];
		fputs(i ? ",\n{" : "\n{", out);
		fputs("\"name\":", out);
		json_str(out, s->name);
		fputs(",\"methods\":[", out);
		for (unsigned j = 0; j < s->n_methods; j++) {
			const ProtobufCMethodDescriptor *md = &s->methods[j];
			fputs(j ? ",{\"name\":" : "{\"name\":", out);
			json_str(out, md->name);
			fputs(",\"input\":", out);
			json_str(out, md->input->name);
			fputs(",\"output\":", out);
			json_str(out, md->output->name);
			fputc('}', out);
		}
		fputs("]}", out);
	}
	fputs("]}\n", out);
	return ferror(out) ? 1 : 0;
}

/* ---- stdin helpers ------------------------------------------------------- */

static uint8_t *read_all(FILE *in, size_t *len_out)
{
	size_t cap = 1 << 16, len = 0;
	uint8_t *buf = malloc(cap);
	if (buf == NULL)
		return NULL;
	for (;;) {
		if (len == cap) {
			uint8_t *grown = realloc(buf, cap * 2);
			if (grown == NULL) {
				free(buf);
				return NULL;
			}
			buf = grown;
			cap *= 2;
		}
		size_t n = fread(buf + len, 1, cap - len, in);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(in)) {
		free(buf);
		return NULL;
	}
	*len_out = len;
	return buf;
}

static bool take_u32(const uint8_t *buf, size_t len, size_t *pos, uint32_t *v)
{
	if (len - *pos < 4)
		return false;
	const uint8_t *p = buf + *pos;
	*v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	     (uint32_t)p[3] << 24;
	*pos += 4;
	return true;
}

static void put_u32(FILE *out, uint32_t v)
{
	uint8_t b[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24};
	fwrite(b, 1, 4, out);
}

static const ProtobufCMessageDescriptor *find_message(const char *name, size_t len)
{
	for (size_t i = 0; craylet_proto_messages[i] != NULL; i++) {
		const char *n = craylet_proto_messages[i]->name;
		if (strlen(n) == len && memcmp(n, name, len) == 0)
			return craylet_proto_messages[i];
	}
	return NULL;
}

/* ---- roundtrip ----------------------------------------------------------- */

static int cmd_roundtrip(void)
{
	size_t len = 0, pos = 0;
	uint8_t *buf = read_all(stdin, &len);
	if (buf == NULL) {
		fprintf(stderr, "proto_dump: cannot read stdin\n");
		return 1;
	}
	while (pos < len) {
		uint32_t name_len, payload_len;
		if (!take_u32(buf, len, &pos, &name_len) || len - pos < name_len) {
			fprintf(stderr, "proto_dump: truncated record name\n");
			free(buf);
			return 1;
		}
		const char *name = (const char *)buf + pos;
		pos += name_len;
		if (!take_u32(buf, len, &pos, &payload_len) || len - pos < payload_len) {
			fprintf(stderr, "proto_dump: truncated record payload\n");
			free(buf);
			return 1;
		}
		const uint8_t *payload = buf + pos;
		pos += payload_len;

		const ProtobufCMessageDescriptor *desc = find_message(name, name_len);
		if (desc == NULL) {
			fputc(1, stdout);
			put_u32(stdout, 0);
			continue;
		}
		ProtobufCMessage *msg = protobuf_c_message_unpack(desc, NULL, payload_len,
								  payload);
		if (msg == NULL) {
			fputc(2, stdout);
			put_u32(stdout, 0);
			continue;
		}
		size_t out_len = protobuf_c_message_get_packed_size(msg);
		uint8_t *out = malloc(out_len ? out_len : 1);
		if (out == NULL) {
			protobuf_c_message_free_unpacked(msg, NULL);
			free(buf);
			return 1;
		}
		size_t packed = protobuf_c_message_pack(msg, out);
		fputc(packed == out_len ? 0 : 3, stdout);
		put_u32(stdout, (uint32_t)packed);
		fwrite(out, 1, packed, stdout);
		free(out);
		protobuf_c_message_free_unpacked(msg, NULL);
	}
	free(buf);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* ---- RaySyncer --------------------------------------------------------- */

typedef Ray__Rpc__Syncer__ResourceViewSyncMessage ResourceView;
typedef Ray__Rpc__Syncer__ResourceViewSyncMessage__ResourcesAvailableEntry AvailEntry;
typedef Ray__Rpc__Syncer__ResourceViewSyncMessage__ResourcesTotalEntry TotalEntry;
typedef Ray__Rpc__Syncer__ResourceViewSyncMessage__LabelsEntry LabelEntry;

static uint8_t *pack_message(const ProtobufCMessage *m, size_t *len)
{
	*len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(*len ? *len : 1);
	if (buf != NULL)
		protobuf_c_message_pack(m, buf);
	return buf;
}

/* The values here are mirrored in test_proto_descriptors.py. */
static int cmd_syncer_encode(void)
{
	static const char *const res_names[] = {"CPU", "GPU", "memory"};
	static const double avail[] = {3.5, 0.25, 1e10};
	static const double total[] = {8.0, 2.0, 3.2e10};
	AvailEntry a[3];
	TotalEntry t[3];
	AvailEntry *ap[3];
	TotalEntry *tp[3];
	for (int i = 0; i < 3; i++) {
		ray__rpc__syncer__resource_view_sync_message__resources_available_entry__init(&a[i]);
		ray__rpc__syncer__resource_view_sync_message__resources_total_entry__init(&t[i]);
		a[i].key = (char *)res_names[i];
		a[i].value = avail[i];
		t[i].key = (char *)res_names[i];
		t[i].value = total[i];
		ap[i] = &a[i];
		tp[i] = &t[i];
	}
	LabelEntry l[2];
	LabelEntry *lp[2];
	static const char *const label_kv[2][2] = {
		{"ray.io/node-id", "abc"}, {"zone", "us-west-2\xc3\xa9"}};
	for (int i = 0; i < 2; i++) {
		ray__rpc__syncer__resource_view_sync_message__labels_entry__init(&l[i]);
		l[i].key = (char *)label_kv[i][0];
		l[i].value = (char *)label_kv[i][1];
		lp[i] = &l[i];
	}
	static char *activity[] = {"Busy workers on node.", "Resource: CPU"};

	ResourceView view;
	ray__rpc__syncer__resource_view_sync_message__init(&view);
	view.n_resources_available = 3;
	view.resources_available = ap;
	view.n_resources_total = 3;
	view.resources_total = tp;
	view.object_pulls_queued = 1;
	view.idle_duration_ms = 0;
	view.is_draining = 1;
	view.draining_deadline_timestamp_ms = INT64_C(1700000000123);
	view.n_node_activity = 2;
	view.node_activity = activity;
	view.n_labels = 2;
	view.labels = lp;

	Ray__Rpc__Syncer__CommandsSyncMessage cmds;
	ray__rpc__syncer__commands_sync_message__init(&cmds);
	cmds.should_global_gc = 1;

	uint8_t node_id[28];
	for (int i = 0; i < 28; i++)
		node_id[i] = (uint8_t)(i + 1);

	size_t view_len, cmds_len;
	uint8_t *view_buf = pack_message(&view.base, &view_len);
	uint8_t *cmds_buf = pack_message(&cmds.base, &cmds_len);
	if (view_buf == NULL || cmds_buf == NULL)
		return 1;

	Ray__Rpc__Syncer__RaySyncMessage m[2];
	Ray__Rpc__Syncer__RaySyncMessage *mp[2] = {&m[0], &m[1]};
	ray__rpc__syncer__ray_sync_message__init(&m[0]);
	m[0].version = INT64_C(1234567890123);
	m[0].message_type = RAY__RPC__SYNCER__MESSAGE_TYPE__RESOURCE_VIEW;
	m[0].sync_message.len = view_len;
	m[0].sync_message.data = view_buf;
	m[0].node_id.len = sizeof node_id;
	m[0].node_id.data = node_id;
	ray__rpc__syncer__ray_sync_message__init(&m[1]);
	m[1].version = 2;
	m[1].message_type = RAY__RPC__SYNCER__MESSAGE_TYPE__COMMANDS;
	m[1].sync_message.len = cmds_len;
	m[1].sync_message.data = cmds_buf;
	m[1].node_id.len = sizeof node_id;
	m[1].node_id.data = node_id;

	Ray__Rpc__Syncer__RaySyncMessageBatch batch;
	ray__rpc__syncer__ray_sync_message_batch__init(&batch);
	batch.n_messages = 2;
	batch.messages = mp;

	size_t len;
	uint8_t *out = pack_message(&batch.base, &len);
	int rc = 1;
	if (out != NULL && fwrite(out, 1, len, stdout) == len && fflush(stdout) == 0)
		rc = 0;
	free(out);
	free(view_buf);
	free(cmds_buf);
	return rc;
}

static void print_view(FILE *out, const ResourceView *v)
{
	fputs("{\"resources_available\":{", out);
	for (size_t i = 0; i < v->n_resources_available; i++) {
		if (i)
			fputc(',', out);
		json_str(out, v->resources_available[i]->key);
		fprintf(out, ":%.17g", v->resources_available[i]->value);
	}
	fputs("},\"resources_total\":{", out);
	for (size_t i = 0; i < v->n_resources_total; i++) {
		if (i)
			fputc(',', out);
		json_str(out, v->resources_total[i]->key);
		fprintf(out, ":%.17g", v->resources_total[i]->value);
	}
	fprintf(out, "},\"object_pulls_queued\":%s,\"idle_duration_ms\":%" PRId64
		",\"is_draining\":%s,\"draining_deadline_timestamp_ms\":%" PRId64
		",\"node_activity\":[",
		v->object_pulls_queued ? "true" : "false", v->idle_duration_ms,
		v->is_draining ? "true" : "false", v->draining_deadline_timestamp_ms);
	for (size_t i = 0; i < v->n_node_activity; i++) {
		if (i)
			fputc(',', out);
		json_str(out, v->node_activity[i]);
	}
	fputs("],\"labels\":{", out);
	for (size_t i = 0; i < v->n_labels; i++) {
		if (i)
			fputc(',', out);
		json_str(out, v->labels[i]->key);
		fputc(':', out);
		json_str(out, v->labels[i]->value);
	}
	fputs("}}", out);
}

static int cmd_syncer_decode(void)
{
	size_t len = 0;
	uint8_t *buf = read_all(stdin, &len);
	if (buf == NULL)
		return 1;
	Ray__Rpc__Syncer__RaySyncMessageBatch *batch =
		ray__rpc__syncer__ray_sync_message_batch__unpack(NULL, len, buf);
	free(buf);
	if (batch == NULL) {
		fprintf(stderr, "proto_dump: batch does not decode\n");
		return 1;
	}
	int rc = 0;
	FILE *out = stdout;
	fputs("{\"messages\":[", out);
	for (size_t i = 0; i < batch->n_messages; i++) {
		const Ray__Rpc__Syncer__RaySyncMessage *m = batch->messages[i];
		fprintf(out, "%s{\"version\":%" PRId64 ",\"message_type\":%d,\"node_id\":",
			i ? "," : "", m->version, (int)m->message_type);
		json_hex(out, m->node_id.data, m->node_id.len);
		if (m->message_type == RAY__RPC__SYNCER__MESSAGE_TYPE__RESOURCE_VIEW) {
			ResourceView *v = ray__rpc__syncer__resource_view_sync_message__unpack(
				NULL, m->sync_message.len, m->sync_message.data);
			if (v == NULL) {
				fprintf(stderr, "proto_dump: resource view does not decode\n");
				rc = 1;
				fputs(",\"resource_view\":null", out);
			} else {
				fputs(",\"resource_view\":", out);
				print_view(out, v);
				ray__rpc__syncer__resource_view_sync_message__free_unpacked(v, NULL);
			}
		} else if (m->message_type == RAY__RPC__SYNCER__MESSAGE_TYPE__COMMANDS) {
			Ray__Rpc__Syncer__CommandsSyncMessage *c =
				ray__rpc__syncer__commands_sync_message__unpack(
					NULL, m->sync_message.len, m->sync_message.data);
			if (c == NULL) {
				fprintf(stderr, "proto_dump: commands do not decode\n");
				rc = 1;
				fputs(",\"commands\":null", out);
			} else {
				fprintf(out, ",\"commands\":{\"should_global_gc\":%s}",
					c->should_global_gc ? "true" : "false");
				ray__rpc__syncer__commands_sync_message__free_unpacked(c, NULL);
			}
		}
		fputc('}', out);
	}
	fputs("]}\n", out);
	ray__rpc__syncer__ray_sync_message_batch__free_unpacked(batch, NULL);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "describe") == 0)
		return cmd_describe();
	if (argc == 2 && strcmp(argv[1], "roundtrip") == 0)
		return cmd_roundtrip();
	if (argc == 2 && strcmp(argv[1], "syncer-encode") == 0)
		return cmd_syncer_encode();
	if (argc == 2 && strcmp(argv[1], "syncer-decode") == 0)
		return cmd_syncer_decode();
	fprintf(stderr, "usage: %s describe|roundtrip|syncer-encode|syncer-decode\n",
		argc ? argv[0] : "proto_dump");
	return 2;
}
