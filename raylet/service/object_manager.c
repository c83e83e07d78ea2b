#include "raylet/service/object_manager.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "proto/ray_proto.h"
#include "raylet/service/push_wire.h"

struct om_service {
    xfer_t *xfer;
    store_t *store;
    bool stopped;
};

static const char *om_refusal(int rc)
{
    switch (rc) {
    case -ENOENT: return "no pull here wants it";
    case -EINVAL: return "impossible sizes";
    case -ERANGE: return "chunk index past the object's end";
    case -EMSGSIZE: return "chunk length does not match its index";
    case -EALREADY: return "duplicate chunk";
    case -ENOMEM: return "no room in the object store now";
    default: return "refused";
    }
}

static void om_push(void *ctx, rpc_call_t *call, const struct iovec *iov, size_t iovcnt, size_t total)
{
    om_service_t *svc = ctx;
    if (svc->stopped) {
        rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "raylet shutting down");
        return;
    }
    transfer_chunk_t c;
    struct iovec *segs;
    const char *why;
    if (push_wire_decode(iov, iovcnt, total, &c, &segs, &why) != 0) {
        log_warn("refused a Push from %s: %s", rpc_call_peer(call), why);
        rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, why);
        return;
    }
    int rc = xfer_on_chunk(svc->xfer, &c);
    free(segs);
    char hex[ID_HEX_BUF];
    if (rc == -ENOENT) {
        /* Late chunks of a pull that just finished or was cancelled are
         * normal: said, but not as a warning. */
        log_info("dropped chunk %u of object %s from %s: %s", c.index, ID_TO_HEX(&c.id, hex), rpc_call_peer(call),
                 om_refusal(rc));
    } else if (rc != 0) {
        log_warn("refused chunk %u of object %s from %s: %s", c.index, ID_TO_HEX(&c.id, hex), rpc_call_peer(call),
                 om_refusal(rc));
    }
    Ray__Rpc__PushReply reply = RAY__RPC__PUSH_REPLY__INIT;
    rpc_call_reply(call, &reply.base);
}

static void om_pull(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    om_service_t *svc = ctx;
    const Ray__Rpc__PullRequest *req = (const Ray__Rpc__PullRequest *)msg;
    if (svc->stopped) {
        rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "raylet shutting down");
        return;
    }
    if (req->node_id.len != ID_UNIQUE_SIZE) {
        log_warn("refused a Pull from %s: node id of %zu bytes", rpc_call_peer(call), req->node_id.len);
        rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "node_id must be 28 bytes");
        return;
    }
    id_node_t from;
    memcpy(from.b, req->node_id.data, ID_UNIQUE_SIZE);
    for (size_t i = 0; i < req->n_object_ids; i++) {
        if (req->object_ids[i].len != ID_OBJECT_SIZE) {
            log_warn("ignored an object id of %zu bytes in a Pull from %s", req->object_ids[i].len,
                     rpc_call_peer(call));
            continue;
        }
        if (!xfer_on_pull(svc->xfer, &from, (const id_object_t *)req->object_ids[i].data)) {
            char hex[ID_HEX_BUF];
            log_warn("ignored a Pull from %s for node %s, which is not in the cluster", rpc_call_peer(call),
                     id_to_hex(from.b, ID_UNIQUE_SIZE, hex));
            break;
        }
    }
    Ray__Rpc__PullReply reply = RAY__RPC__PULL_REPLY__INIT;
    rpc_call_reply(call, &reply.base);
}

static void om_free_objects(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    om_service_t *svc = ctx;
    const Ray__Rpc__FreeObjectsRequest *req = (const Ray__Rpc__FreeObjectsRequest *)msg;
    if (svc->stopped) {
        rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "raylet shutting down");
        return;
    }
    for (size_t i = 0; i < req->n_object_ids; i++)
        if (req->object_ids[i].len == ID_OBJECT_SIZE)
            store_free(svc->store, (const id_object_t *)req->object_ids[i].data);
    Ray__Rpc__FreeObjectsReply reply = RAY__RPC__FREE_OBJECTS_REPLY__INIT;
    rpc_call_reply(call, &reply.base);
}

om_service_t *om_service_create(rpc_server_t *server, xfer_t *xfer, store_t *store)
{
    om_service_t *svc = xcalloc(1, sizeof *svc);
    svc->xfer = xfer;
    svc->store = store;
    static const struct {
        const char *path;
        const ProtobufCMessageDescriptor *desc;
        rpc_method_fn fn;
    } methods[] = {
        {"/ray.rpc.ObjectManagerService/Pull", &ray__rpc__pull_request__descriptor, om_pull},
        {"/ray.rpc.ObjectManagerService/FreeObjects", &ray__rpc__free_objects_request__descriptor, om_free_objects},
    };
    /* Push carries megabytes: read in place, not unpacked (push_wire.h). */
    if (rpc_server_add_raw_method(server, "/ray.rpc.ObjectManagerService/Push", om_push, svc) != 0) {
        log_error("cannot register ObjectManagerService/Push");
        free(svc);
        return NULL;
    }
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        if (rpc_server_add_method(server, methods[i].path, methods[i].desc, methods[i].fn, svc) != 0) {
            log_error("cannot register %s", methods[i].path);
            free(svc);
            return NULL;
        }
    }
    return svc;
}

void om_service_stop(om_service_t *svc)
{
    if (svc)
        svc->stopped = true;
}

void om_service_destroy(om_service_t *svc) { free(svc); }
