#include "common/rpc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/log.h"

/* Largest message we accept from any peer.  Ray's own limit is 512 MiB;
 * nothing on the control plane comes close, and a cap keeps a hostile peer
 * from making us allocate without bound. */
#define RPC_MAX_MESSAGE (512 * 1024 * 1024)
/* How long rpc_server_destroy waits, after the first 5 s, for gRPC to
 * acknowledge a server's shutdown. */
#define RPC_SERVER_SHUTDOWN_WAIT_S 25

static grpc_byte_buffer *rpc_pack(const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    grpc_slice slice = grpc_slice_malloc(len);
    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(slice));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    return bb;
}

/* Flattens a received buffer into one slice the caller must unref. */
static bool rpc_flatten(grpc_byte_buffer *bb, grpc_slice *out)
{
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, bb))
        return false;
    *out = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    return true;
}

static char *rpc_slice_to_cstr(grpc_slice s)
{
    size_t n = GRPC_SLICE_LENGTH(s);
    char *p = xmalloc(n + 1);
    memcpy(p, GRPC_SLICE_START_PTR(s), n);
    p[n] = '\0';
    return p;
}

static gpr_timespec rpc_deadline(uint64_t timeout_ms)
{
    if (timeout_ms == 0)
        return gpr_inf_future(GPR_CLOCK_MONOTONIC);
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                        gpr_time_from_millis((int64_t)timeout_ms, GPR_TIMESPAN));
}

/* ---- client ---------------------------------------------------------- */

static int rpc_unary_buffer(rpc_channel_t *ch, const char *method, grpc_byte_buffer *request,
                            const ProtobufCMessageDescriptor *reply_desc, uint64_t timeout_ms,
                            rpc_unary_cb cb, void *ctx);

typedef struct rpc_inflight rpc_inflight_t;
struct rpc_inflight {
    rpc_inflight_t *prev, *next;
    grpc_call *call;
    bool orphaned; /* channel destroyed: complete silently */
};

struct rpc_channel {
    cq_bridge_t *bridge;
    grpc_channel *channel;
    char *target;
    grpc_metadata *md;
    size_t md_count, md_cap;
    rpc_inflight_t inflight; /* list head of calls and streams */
};

static void rpc_inflight_link(rpc_channel_t *ch, rpc_inflight_t *f)
{
    f->next = ch->inflight.next;
    f->prev = &ch->inflight;
    ch->inflight.next->prev = f;
    ch->inflight.next = f;
}

static void rpc_inflight_unlink(rpc_inflight_t *f)
{
    if (f->prev) {
        f->prev->next = f->next;
        f->next->prev = f->prev;
    }
    f->prev = f->next = NULL;
}

rpc_channel_t *rpc_channel_create(cq_bridge_t *bridge, const char *target)
{
    rpc_channel_t *ch = xcalloc(1, sizeof *ch);
    ch->bridge = bridge;
    ch->target = xstrdup(target);
    ch->inflight.next = ch->inflight.prev = &ch->inflight;

    grpc_arg args[4];
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = RPC_MAX_MESSAGE;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
    args[1].value.integer = RPC_MAX_MESSAGE;
    /* Reconnect quickly after the GCS restarts; gRPC's default backoff
     * grows to two minutes. */
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
    args[2].value.integer = 2000;
    /* Every peer is inside the cluster: a user's http_proxy/https_proxy
     * (which gRPC honours by default) must not reroute these calls, as
     * Ray's own components make sure too. */
    args[3].type = GRPC_ARG_INTEGER;
    args[3].key = GRPC_ARG_ENABLE_HTTP_PROXY;
    args[3].value.integer = 0;
    grpc_channel_args cargs = {.num_args = 4, .args = args};

    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    ch->channel = grpc_channel_create(target, creds, &cargs);
    grpc_channel_credentials_release(creds);
    if (!ch->channel) {
        log_error("cannot create a gRPC channel to %s", target);
        free(ch->target);
        free(ch);
        return NULL;
    }
    if (cq_bridge_authorization(bridge))
        rpc_channel_add_metadata(ch, "authorization", cq_bridge_authorization(bridge));
    return ch;
}

void rpc_channel_add_metadata(rpc_channel_t *ch, const char *key, const char *value)
{
    if (ch->md_count == ch->md_cap) {
        ch->md_cap = ch->md_cap ? ch->md_cap * 2 : 4;
        ch->md = xrealloc(ch->md, ch->md_cap * sizeof *ch->md);
    }
    grpc_metadata *m = &ch->md[ch->md_count++];
    memset(m, 0, sizeof *m);
    m->key = grpc_slice_from_copied_string(key);
    m->value = grpc_slice_from_copied_string(value);
}

void rpc_channel_destroy(rpc_channel_t *ch)
{
    if (!ch)
        return;
    /* Calls keep their own state and free it when gRPC reports them done;
     * here we only make sure they finish and do not call back. */
    for (rpc_inflight_t *f = ch->inflight.next; f != &ch->inflight;) {
        rpc_inflight_t *next = f->next;
        f->orphaned = true;
        grpc_call_cancel(f->call, NULL);
        rpc_inflight_unlink(f);
        f = next;
    }
    for (size_t i = 0; i < ch->md_count; i++) {
        grpc_slice_unref(ch->md[i].key);
        grpc_slice_unref(ch->md[i].value);
    }
    free(ch->md);
    grpc_channel_destroy(ch->channel);
    free(ch->target);
    free(ch);
}

typedef struct rpc_unary_call {
    cq_tag_t tag;
    rpc_inflight_t inflight;
    const ProtobufCMessageDescriptor *reply_desc;
    rpc_unary_cb cb;
    void *ctx;
    grpc_byte_buffer *send_buf;
    grpc_byte_buffer *recv_buf;
    grpc_metadata_array initial_md;
    grpc_metadata_array trailing_md;
    grpc_status_code status;
    grpc_slice details;
} rpc_unary_call_t;

static void rpc_unary_done(cq_tag_t *tag, bool ok)
{
    rpc_unary_call_t *u = CQ_TAG_OWNER(tag, rpc_unary_call_t, tag);
    rpc_inflight_unlink(&u->inflight);

    rpc_status_t st = {.code = u->status, .message = ""};
    char *details = NULL;
    ProtobufCMessage *reply = NULL;
    if (!ok) {
        st.code = GRPC_STATUS_UNAVAILABLE;
        st.message = "call did not complete";
    } else if (u->status != GRPC_STATUS_OK) {
        details = rpc_slice_to_cstr(u->details);
        st.message = details;
    } else {
        grpc_slice flat;
        if (!u->recv_buf || !rpc_flatten(u->recv_buf, &flat)) {
            st.code = GRPC_STATUS_INTERNAL;
            st.message = "reply missing";
        } else {
            reply = protobuf_c_message_unpack(u->reply_desc, NULL, GRPC_SLICE_LENGTH(flat),
                                              GRPC_SLICE_START_PTR(flat));
            grpc_slice_unref(flat);
            if (!reply) {
                st.code = GRPC_STATUS_INTERNAL;
                st.message = "reply could not be decoded";
            }
        }
    }
    /* The request goes first: lent bytes are then released (unless the
     * transport still holds them) before the caller hears of the end. */
    grpc_byte_buffer_destroy(u->send_buf);
    u->send_buf = NULL;
    if (!u->inflight.orphaned && u->cb)
        u->cb(u->ctx, &st, reply);

    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    free(details);
    if (u->recv_buf)
        grpc_byte_buffer_destroy(u->recv_buf);
    grpc_metadata_array_destroy(&u->initial_md);
    grpc_metadata_array_destroy(&u->trailing_md);
    grpc_slice_unref(u->details);
    grpc_call_unref(u->inflight.call);
    free(u);
}

int rpc_unary(rpc_channel_t *ch, const char *method, const ProtobufCMessage *request,
              const ProtobufCMessageDescriptor *reply_desc, uint64_t timeout_ms, rpc_unary_cb cb,
              void *ctx)
{
    grpc_byte_buffer *buf = rpc_pack(request);
    int rc = rpc_unary_buffer(ch, method, buf, reply_desc, timeout_ms, cb, ctx);
    grpc_byte_buffer_destroy(buf);
    return rc;
}

int rpc_unary_bytes(rpc_channel_t *ch, const char *method, const uint8_t *request, size_t len,
                    const ProtobufCMessageDescriptor *reply_desc, uint64_t timeout_ms,
                    rpc_unary_cb cb, void *ctx)
{
    grpc_slice slice = grpc_slice_from_copied_buffer((const char *)request, len);
    grpc_byte_buffer *buf = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    int rc = rpc_unary_buffer(ch, method, buf, reply_desc, timeout_ms, cb, ctx);
    grpc_byte_buffer_destroy(buf);
    return rc;
}

int rpc_unary_lent(rpc_channel_t *ch, const char *method, const uint8_t *head, size_t head_len,
                   const rpc_lent_t *lent, const ProtobufCMessageDescriptor *reply_desc,
                   uint64_t timeout_ms, rpc_unary_cb cb, void *ctx)
{
    grpc_slice_buffer parts;
    grpc_slice_buffer_init(&parts);
    grpc_slice_buffer_add(&parts, grpc_slice_from_copied_buffer((const char *)head, head_len));
    for (size_t i = 0; i < lent->iovcnt; i++) {
        if (lent->iov[i].iov_len == 0)
            continue;
        lent->retain(lent->keep);
        grpc_slice_buffer_add(&parts, grpc_slice_new_with_user_data(lent->iov[i].iov_base, lent->iov[i].iov_len,
                                                                    lent->release, lent->keep));
    }
    grpc_byte_buffer *buf = grpc_raw_byte_buffer_create(parts.slices, parts.count);
    grpc_slice_buffer_destroy(&parts);
    int rc = rpc_unary_buffer(ch, method, buf, reply_desc, timeout_ms, cb, ctx);
    grpc_byte_buffer_destroy(buf);
    return rc;
}

static int rpc_unary_buffer(rpc_channel_t *ch, const char *method, grpc_byte_buffer *request,
                            const ProtobufCMessageDescriptor *reply_desc, uint64_t timeout_ms,
                            rpc_unary_cb cb, void *ctx)
{
    rpc_unary_call_t *u = xcalloc(1, sizeof *u);
    u->tag.done = rpc_unary_done;
    u->reply_desc = reply_desc;
    u->cb = cb;
    u->ctx = ctx;
    u->details = grpc_empty_slice();
    grpc_metadata_array_init(&u->initial_md);
    grpc_metadata_array_init(&u->trailing_md);

    grpc_slice mslice = grpc_slice_from_static_string(method);
    grpc_call *call = grpc_channel_create_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS,
                                               cq_bridge_cq(ch->bridge), mslice, NULL,
                                               rpc_deadline(timeout_ms), NULL);
    if (!call) {
        log_error("cannot create a call to %s", method);
        grpc_metadata_array_destroy(&u->initial_md);
        grpc_metadata_array_destroy(&u->trailing_md);
        free(u);
        return CR_ERPC;
    }
    u->inflight.call = call;
    u->send_buf = grpc_byte_buffer_copy(request);

    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = ch->md_count;
    ops[0].data.send_initial_metadata.metadata = ch->md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = u->send_buf;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &u->initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &u->recv_buf;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &u->trailing_md;
    ops[5].data.recv_status_on_client.status = &u->status;
    ops[5].data.recv_status_on_client.status_details = &u->details;
    grpc_call_error err = grpc_call_start_batch(call, ops, 6, &u->tag, NULL);
    if (err != GRPC_CALL_OK) {
        log_error("cannot start a call to %s: %d", method, (int)err);
        grpc_call_unref(call);
        grpc_byte_buffer_destroy(u->send_buf);
        grpc_metadata_array_destroy(&u->initial_md);
        grpc_metadata_array_destroy(&u->trailing_md);
        free(u);
        return CR_ERPC;
    }
    rpc_inflight_link(ch, &u->inflight);
    return 0;
}

/* A bidi stream needs four kinds of outstanding operations; each gets its
 * own tag so completions can be told apart. */
typedef struct rpc_stream_msg {
    struct rpc_stream_msg *next;
    grpc_byte_buffer *buf;
} rpc_stream_msg_t;

struct rpc_stream {
    rpc_inflight_t inflight;
    cq_tag_t tag_start, tag_read, tag_write, tag_status;
    rpc_stream_callbacks_t cbs;
    void *ctx;
    grpc_metadata *md;
    size_t md_count;
    grpc_metadata_array initial_md, trailing_md;
    grpc_status_code status;
    grpc_slice details;
    grpc_byte_buffer *recv_buf;
    rpc_stream_msg_t *queue_head, *queue_tail;
    size_t queue_len;
    grpc_byte_buffer *writing;
    bool start_pending, read_pending, write_pending, status_pending;
    bool closed; /* status received or cancelled */
    bool silent;
};

static void rpc_stream_maybe_free(rpc_stream_t *s)
{
    if (s->start_pending || s->read_pending || s->write_pending || s->status_pending)
        return;
    rpc_inflight_unlink(&s->inflight);
    for (rpc_stream_msg_t *m = s->queue_head; m;) {
        rpc_stream_msg_t *next = m->next;
        grpc_byte_buffer_destroy(m->buf);
        free(m);
        m = next;
    }
    for (size_t i = 0; i < s->md_count; i++) {
        grpc_slice_unref(s->md[i].key);
        grpc_slice_unref(s->md[i].value);
    }
    free(s->md);
    grpc_metadata_array_destroy(&s->initial_md);
    grpc_metadata_array_destroy(&s->trailing_md);
    grpc_slice_unref(s->details);
    grpc_call_unref(s->inflight.call);
    free(s);
}

static void rpc_stream_post_read(rpc_stream_t *s)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &s->recv_buf;
    s->recv_buf = NULL;
    if (grpc_call_start_batch(s->inflight.call, &op, 1, &s->tag_read, NULL) == GRPC_CALL_OK)
        s->read_pending = true;
}

static void rpc_stream_pump_writes(rpc_stream_t *s)
{
    if (s->write_pending || s->closed || !s->queue_head)
        return;
    rpc_stream_msg_t *m = s->queue_head;
    s->queue_head = m->next;
    if (!s->queue_head)
        s->queue_tail = NULL;
    s->queue_len--;
    s->writing = m->buf;
    free(m);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = s->writing;
    if (grpc_call_start_batch(s->inflight.call, &op, 1, &s->tag_write, NULL) == GRPC_CALL_OK) {
        s->write_pending = true;
    } else {
        grpc_byte_buffer_destroy(s->writing);
        s->writing = NULL;
    }
}

static bool rpc_stream_live(rpc_stream_t *s) { return !s->inflight.orphaned && !s->silent; }

static void rpc_stream_on_start(cq_tag_t *tag, bool ok)
{
    rpc_stream_t *s = CQ_TAG_OWNER(tag, rpc_stream_t, tag_start);
    s->start_pending = false;
    if (ok && !s->closed) {
        rpc_stream_post_read(s);
        if (rpc_stream_live(s) && s->cbs.on_ready)
            s->cbs.on_ready(s->ctx, s);
    }
    rpc_stream_maybe_free(s);
}

static void rpc_stream_on_read(cq_tag_t *tag, bool ok)
{
    rpc_stream_t *s = CQ_TAG_OWNER(tag, rpc_stream_t, tag_read);
    s->read_pending = false;
    /* A NULL buffer means the server half-closed; the status op reports the rest. */
    if (ok && s->recv_buf) {
        grpc_slice flat;
        bool have = rpc_flatten(s->recv_buf, &flat);
        grpc_byte_buffer_destroy(s->recv_buf);
        s->recv_buf = NULL;
        if (have) {
            if (rpc_stream_live(s) && !s->closed && s->cbs.on_message)
                s->cbs.on_message(s->ctx, s, GRPC_SLICE_START_PTR(flat), GRPC_SLICE_LENGTH(flat));
            grpc_slice_unref(flat);
        }
        if (!s->closed)
            rpc_stream_post_read(s);
    }
    rpc_stream_maybe_free(s);
}

static void rpc_stream_on_write(cq_tag_t *tag, bool ok)
{
    rpc_stream_t *s = CQ_TAG_OWNER(tag, rpc_stream_t, tag_write);
    s->write_pending = false;
    grpc_byte_buffer_destroy(s->writing);
    s->writing = NULL;
    if (ok)
        rpc_stream_pump_writes(s);
    rpc_stream_maybe_free(s);
}

static void rpc_stream_on_status(cq_tag_t *tag, bool ok)
{
    rpc_stream_t *s = CQ_TAG_OWNER(tag, rpc_stream_t, tag_status);
    s->status_pending = false;
    s->closed = true;
    if (rpc_stream_live(s) && s->cbs.on_closed) {
        char *details = rpc_slice_to_cstr(s->details);
        rpc_status_t st = {.code = ok ? s->status : GRPC_STATUS_UNAVAILABLE, .message = details};
        s->cbs.on_closed(s->ctx, s, &st);
        free(details);
    }
    rpc_stream_maybe_free(s);
}

rpc_stream_t *rpc_stream_open(rpc_channel_t *ch, const char *method, const char *const *extra,
                              size_t extra_count, const rpc_stream_callbacks_t *cbs, void *ctx)
{
    grpc_call *call = grpc_channel_create_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS,
                                               cq_bridge_cq(ch->bridge),
                                               grpc_slice_from_static_string(method), NULL,
                                               gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (!call) {
        log_error("cannot open a stream to %s", method);
        return NULL;
    }
    rpc_stream_t *s = xcalloc(1, sizeof *s);
    s->inflight.call = call;
    s->tag_start.done = rpc_stream_on_start;
    s->tag_read.done = rpc_stream_on_read;
    s->tag_write.done = rpc_stream_on_write;
    s->tag_status.done = rpc_stream_on_status;
    s->cbs = *cbs;
    s->ctx = ctx;
    s->details = grpc_empty_slice();
    grpc_metadata_array_init(&s->initial_md);
    grpc_metadata_array_init(&s->trailing_md);

    size_t pairs = extra_count / 2;
    s->md = xcalloc(ch->md_count + pairs, sizeof *s->md);
    for (size_t i = 0; i < ch->md_count; i++) {
        s->md[i].key = grpc_slice_ref(ch->md[i].key);
        s->md[i].value = grpc_slice_ref(ch->md[i].value);
    }
    for (size_t i = 0; i < pairs; i++) {
        s->md[ch->md_count + i].key = grpc_slice_from_copied_string(extra[2 * i]);
        s->md[ch->md_count + i].value = grpc_slice_from_copied_string(extra[2 * i + 1]);
    }
    s->md_count = ch->md_count + pairs;

    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = s->md_count;
    ops[0].data.send_initial_metadata.metadata = s->md;
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &s->initial_md;
    grpc_op st;
    memset(&st, 0, sizeof st);
    st.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    st.data.recv_status_on_client.trailing_metadata = &s->trailing_md;
    st.data.recv_status_on_client.status = &s->status;
    st.data.recv_status_on_client.status_details = &s->details;

    rpc_inflight_link(ch, &s->inflight);
    if (grpc_call_start_batch(call, ops, 2, &s->tag_start, NULL) == GRPC_CALL_OK)
        s->start_pending = true;
    if (grpc_call_start_batch(call, &st, 1, &s->tag_status, NULL) == GRPC_CALL_OK)
        s->status_pending = true;
    if (!s->start_pending || !s->status_pending) {
        log_error("cannot start stream %s", method);
        s->inflight.orphaned = true;
        grpc_call_cancel(call, NULL);
        rpc_stream_maybe_free(s);
        return NULL;
    }
    return s;
}

int rpc_stream_write(rpc_stream_t *s, const ProtobufCMessage *msg)
{
    if (s->closed)
        return CR_ECLOSED;
    rpc_stream_msg_t *m = xcalloc(1, sizeof *m);
    m->buf = rpc_pack(msg);
    if (s->queue_tail)
        s->queue_tail->next = m;
    else
        s->queue_head = m;
    s->queue_tail = m;
    s->queue_len++;
    rpc_stream_pump_writes(s);
    return 0;
}

size_t rpc_stream_backlog(const rpc_stream_t *s) { return s->queue_len; }

void rpc_stream_cancel(rpc_stream_t *s, bool silent)
{
    s->silent = s->silent || silent;
    grpc_call_cancel(s->inflight.call, NULL);
}

/* ---- server ---------------------------------------------------------- */

typedef struct rpc_method {
    struct rpc_method *next;
    rpc_server_t *srv;
    const char *path;
    const ProtobufCMessageDescriptor *request_desc;
    rpc_method_fn fn;
    rpc_raw_method_fn raw_fn; /* instead of fn: the request as received */
    void *ctx;
    void *handle; /* from grpc_server_register_method */
} rpc_method_t;

struct rpc_server {
    cq_bridge_t *bridge;
    grpc_server *server;
    rpc_method_t *methods;
    bool started;
    bool shutting_down;
    size_t pending_requests; /* request tags posted to gRPC, not yet completed */
};

struct rpc_call {
    cq_tag_t tag; /* request arrival, then reply completion */
    rpc_server_t *srv;
    cq_bridge_t *bridge; /* outlives the server; the reply is counted on it */
    rpc_method_t *method; /* NULL: unregistered method, or server gone */
    bool has_details;     /* `details` was initialised (unregistered slot) */
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array request_md;
    grpc_byte_buffer *payload;
    grpc_call_details details; /* unregistered only */
    ProtobufCMessage *request;
    struct iovec *raw_iov; /* a raw method's request, in gRPC's slices */
    grpc_byte_buffer *reply_buf;
    grpc_slice status_details;
    int cancelled;
    char *peer;
    bool answered;
};

static void rpc_server_post_request(rpc_server_t *srv, rpc_method_t *m);

static void rpc_call_free(rpc_call_t *c)
{
    if (c->request)
        protobuf_c_message_free_unpacked(c->request, NULL);
    free(c->raw_iov);
    if (c->payload)
        grpc_byte_buffer_destroy(c->payload);
    if (c->reply_buf)
        grpc_byte_buffer_destroy(c->reply_buf);
    grpc_metadata_array_destroy(&c->request_md);
    if (c->has_details)
        grpc_call_details_destroy(&c->details);
    grpc_slice_unref(c->status_details);
    if (c->peer)
        gpr_free(c->peer);
    if (c->call)
        grpc_call_unref(c->call);
    free(c);
}

static void rpc_call_on_finished(cq_tag_t *tag, bool ok)
{
    rpc_call_free(CQ_TAG_OWNER(tag, rpc_call_t, tag));
}

static void rpc_call_send(rpc_call_t *c, grpc_status_code code, const char *message,
                          grpc_byte_buffer *reply)
{
    if (c->answered) {
        log_error("a gRPC call was answered twice; ignoring the second answer");
        return;
    }
    c->answered = true;
    c->reply_buf = reply;
    c->status_details = grpc_slice_from_copied_string(message ? message : "");
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (reply) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = reply;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n++].data.send_status_from_server.status_details = &c->status_details;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
    c->tag.done = rpc_call_on_finished;
    /* The call is bound to the quiet queue: its completion only frees it. */
    if (grpc_call_start_batch(c->call, ops, n, &c->tag, NULL) != GRPC_CALL_OK)
        rpc_call_free(c);
    else
        cq_bridge_quiet_started(c->bridge);
}

void rpc_call_reply(rpc_call_t *c, const ProtobufCMessage *reply)
{
    rpc_call_send(c, GRPC_STATUS_OK, NULL, rpc_pack(reply));
}

void rpc_call_fail(rpc_call_t *c, grpc_status_code code, const char *message)
{
    rpc_call_send(c, code, message, NULL);
}

const char *rpc_call_peer(rpc_call_t *c)
{
    if (!c->peer)
        c->peer = grpc_call_get_peer(c->call);
    return c->peer;
}

/* With token authentication on, a call must carry `authorization:
 * Bearer <token>`; health checks are exempt, as in Ray (load balancers and
 * probes have no token).  Compared in constant time. */
static bool rpc_call_authorized(const rpc_call_t *c)
{
    const char *want = cq_bridge_authorization(c->bridge);
    if (!want)
        return true;
    if (c->method && strncmp(c->method->path, "/grpc.health.v1.Health/", 23) == 0)
        return true;
    size_t want_len = strlen(want);
    for (size_t i = 0; i < c->request_md.count; i++) {
        const grpc_metadata *m = &c->request_md.metadata[i];
        if (grpc_slice_str_cmp(m->key, "authorization") != 0)
            continue;
        if (GRPC_SLICE_LENGTH(m->value) != want_len)
            return false;
        const uint8_t *got = GRPC_SLICE_START_PTR(m->value);
        unsigned char diff = 0;
        for (size_t k = 0; k < want_len; k++)
            diff |= (unsigned char)(got[k] ^ (uint8_t)want[k]);
        return diff == 0;
    }
    return false;
}

/* A raw method sees the payload's slices in place.  gRPC hands the
 * surface an uncompressed buffer (compressed messages are inflated below
 * it), whose slices live as long as the buffer, which the call keeps. */
static void rpc_call_dispatch_raw(rpc_call_t *c)
{
    grpc_byte_buffer_reader reader;
    if (!c->payload || !grpc_byte_buffer_reader_init(&reader, c->payload)) {
        rpc_call_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "request payload missing");
        return;
    }
    size_t n = 0, cap = 0, total = 0;
    grpc_slice *s;
    while (grpc_byte_buffer_reader_peek(&reader, &s)) {
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            c->raw_iov = xrealloc(c->raw_iov, cap * sizeof *c->raw_iov);
        }
        c->raw_iov[n++] = (struct iovec){.iov_base = GRPC_SLICE_START_PTR(*s), .iov_len = GRPC_SLICE_LENGTH(*s)};
        total += GRPC_SLICE_LENGTH(*s);
    }
    grpc_byte_buffer_reader_destroy(&reader);
    c->method->raw_fn(c->method->ctx, c, c->raw_iov, n, total);
}

static void rpc_server_on_request(cq_tag_t *tag, bool ok)
{
    rpc_call_t *c = CQ_TAG_OWNER(tag, rpc_call_t, tag);
    rpc_server_t *srv = c->srv;
    srv->pending_requests--;
    if (!ok || srv->shutting_down) {
        /* The server is going away: this request slot was never filled, or
         * we will not serve it. */
        c->method = NULL; /* may already be freed */
        if (ok && c->call)
            rpc_call_fail(c, GRPC_STATUS_UNAVAILABLE, "server shutting down");
        else
            rpc_call_free(c);
        /* The last slot to come back frees a server destroyed before it. */
        if (!srv->server && srv->pending_requests == 0)
            free(srv);
        return;
    }
    /* Keep one request outstanding per method before serving this one. */
    rpc_server_post_request(srv, c->method);

    if (!rpc_call_authorized(c)) {
        log_warn("refused a call from %s without the cluster's authentication token", rpc_call_peer(c));
        rpc_call_fail(c, GRPC_STATUS_UNAUTHENTICATED, "InvalidAuthToken: Authentication token is missing or incorrect");
        return;
    }

    if (!c->method) {
        char *method = rpc_slice_to_cstr(c->details.method);
        log_debug("unimplemented method %s from %s", method, rpc_call_peer(c));
        char msg[300];
        snprintf(msg, sizeof msg, "craylet does not implement %.250s", method);
        free(method);
        rpc_call_fail(c, GRPC_STATUS_UNIMPLEMENTED, msg);
        return;
    }
    if (c->method->raw_fn) {
        rpc_call_dispatch_raw(c);
        return;
    }
    grpc_slice flat;
    if (!c->payload || !rpc_flatten(c->payload, &flat)) {
        rpc_call_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "request payload missing");
        return;
    }
    c->request = protobuf_c_message_unpack(c->method->request_desc, NULL, GRPC_SLICE_LENGTH(flat),
                                           GRPC_SLICE_START_PTR(flat));
    grpc_slice_unref(flat);
    if (!c->request) {
        log_warn("undecodable %s request from %s", c->method->path, rpc_call_peer(c));
        rpc_call_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "request could not be decoded");
        return;
    }
    c->method->fn(c->method->ctx, c, c->request);
}

static void rpc_server_post_request(rpc_server_t *srv, rpc_method_t *m)
{
    if (srv->shutting_down)
        return;
    rpc_call_t *c = xcalloc(1, sizeof *c);
    c->srv = srv;
    c->bridge = srv->bridge;
    c->method = m;
    c->tag.done = rpc_server_on_request;
    c->status_details = grpc_empty_slice();
    grpc_metadata_array_init(&c->request_md);
    /* New calls are announced on the main queue; the call itself (whose only
     * later completion is its reply going out) is bound to the quiet one. */
    grpc_completion_queue *cq = cq_bridge_cq(srv->bridge);
    grpc_completion_queue *bound = cq_bridge_quiet_cq(srv->bridge);
    grpc_call_error err;
    if (m) {
        err = grpc_server_request_registered_call(srv->server, m->handle, &c->call, &c->deadline,
                                                  &c->request_md, &c->payload, bound, cq, &c->tag);
    } else {
        grpc_call_details_init(&c->details);
        c->has_details = true;
        err = grpc_server_request_call(srv->server, &c->call, &c->details, &c->request_md, bound, cq,
                                       &c->tag);
    }
    if (err != GRPC_CALL_OK) {
        log_error("cannot post a gRPC request slot: %d", (int)err);
        rpc_call_free(c);
        return;
    }
    srv->pending_requests++;
}

rpc_server_t *rpc_server_create(cq_bridge_t *bridge)
{
    rpc_server_t *srv = xcalloc(1, sizeof *srv);
    srv->bridge = bridge;
    grpc_arg args[2];
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = RPC_MAX_MESSAGE;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_ALLOW_REUSEPORT;
    args[1].value.integer = 0; /* a port we report must be ours alone */
    grpc_channel_args cargs = {.num_args = 2, .args = args};
    srv->server = grpc_server_create(&cargs, NULL);
    grpc_server_register_completion_queue(srv->server, cq_bridge_cq(bridge), NULL);
    return srv;
}

int rpc_server_add_method(rpc_server_t *srv, const char *path,
                          const ProtobufCMessageDescriptor *request_desc, rpc_method_fn fn,
                          void *ctx)
{
    if (srv->started)
        return -EINVAL;
    rpc_method_t *m = xcalloc(1, sizeof *m);
    m->srv = srv;
    m->path = path;
    m->request_desc = request_desc;
    m->fn = fn;
    m->ctx = ctx;
    m->handle = grpc_server_register_method(srv->server, path, NULL,
                                            GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    if (!m->handle) {
        log_error("cannot register gRPC method %s", path);
        free(m);
        return CR_ERPC;
    }
    m->next = srv->methods;
    srv->methods = m;
    return 0;
}

int rpc_server_add_raw_method(rpc_server_t *srv, const char *path, rpc_raw_method_fn fn, void *ctx)
{
    int rc = rpc_server_add_method(srv, path, NULL, NULL, ctx);
    if (rc == 0)
        srv->methods->raw_fn = fn;
    return rc;
}

int rpc_server_listen(rpc_server_t *srv, const char *host, int port, int *bound_port)
{
    char addr[300];
    if (strchr(host, ':'))
        snprintf(addr, sizeof addr, "[%s]:%d", host, port);
    else
        snprintf(addr, sizeof addr, "%s:%d", host, port);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    int bound = grpc_server_add_http2_port(srv->server, addr, creds);
    grpc_server_credentials_release(creds);
    if (bound <= 0) {
        log_error("cannot bind gRPC server to %s", addr);
        return -EADDRINUSE; /* the usual cause */
    }
    *bound_port = bound;
    return 0;
}

int rpc_server_start(rpc_server_t *srv)
{
    grpc_server_start(srv->server);
    srv->started = true;
    for (rpc_method_t *m = srv->methods; m; m = m->next)
        rpc_server_post_request(srv, m);
    rpc_server_post_request(srv, NULL);
    return 0;
}

void rpc_server_destroy(rpc_server_t *srv)
{
    if (!srv)
        return;
    srv->shutting_down = true;
    /* Shutdown is acknowledged on a private queue so we can wait for it
     * here, without running the loop. */
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    static int shutdown_tag;
    grpc_server_shutdown_and_notify(srv->server, cq, &shutdown_tag);
    grpc_server_cancel_all_calls(srv->server);
    /* Blocking waits, never a spin: normally the acknowledgement comes at
     * once (every call was just cancelled); a server that takes longer gets
     * RPC_SERVER_SHUTDOWN_WAIT_S more, then is abandoned (the process is
     * on its way out and must not hang in `ray stop`). */
    grpc_event ev = grpc_completion_queue_pluck(
        cq, &shutdown_tag, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(5, GPR_TIMESPAN)), NULL);
    if (ev.type != GRPC_OP_COMPLETE) {
        log_warn("gRPC server has not shut down after 5 s; waiting up to %d s more", RPC_SERVER_SHUTDOWN_WAIT_S);
        ev = grpc_completion_queue_pluck(cq, &shutdown_tag,
                                         gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                                      gpr_time_from_seconds(RPC_SERVER_SHUTDOWN_WAIT_S, GPR_TIMESPAN)),
                                         NULL);
    }
    if (ev.type != GRPC_OP_COMPLETE) {
        log_error("gRPC server did not shut down; leaving it behind");
        srv->server = NULL;
        return;
    }
    /* Nothing else was ever started on cq: after shutdown it drains at once. */
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    grpc_server_destroy(srv->server);
    for (rpc_method_t *m = srv->methods; m;) {
        rpc_method_t *next = m->next;
        free(m);
        m = next;
    }
    /* Request slots still queued on the bridge refer to srv and to their
     * methods; they complete with ok=false.  Keep srv alive until then by
     * leaking only when some remain (rare: process exit follows). */
    srv->methods = NULL;
    srv->server = NULL;
    if (srv->pending_requests == 0)
        free(srv);
}
