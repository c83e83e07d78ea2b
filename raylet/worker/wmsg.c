#include "raylet/worker/wmsg.h"

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/fb.h"
#include "proto/gen/ray_version.h"

static int wmsg_str(const fb_table_t *t, unsigned slot, wmsg_str_t *out)
{
    fb_str_t s;
    int rc = fb_read_str(t, slot, &s);
    if (rc == 0) {
        out->data = s.data;
        out->len = s.len;
    }
    return rc;
}

/* A [ubyte] field; absent reads as empty. */
static int wmsg_bytes(const fb_table_t *t, unsigned slot, wmsg_str_t *out)
{
    fb_vec_t v;
    int rc = fb_read_vec_scalar(t, slot, 1, &v);
    if (rc == 0 && fb_vec_len(&v) > 0) {
        out->data = (const char *)fb_vec_data(&v);
        out->len = fb_vec_len(&v);
    }
    return rc;
}

static int wmsg_ids(const fb_table_t *t, unsigned slot, wmsg_t *m)
{
    fb_vec_t v;
    int rc = fb_read_vec_ref(t, slot, &v);
    if (rc != 0)
        return rc;
    uint32_t n = fb_vec_len(&v);
    if (n > WMSG_MAX_IDS)
        return CR_ETOOBIG;
    m->ids = xmalloc((n ? n : 1) * (size_t)ID_OBJECT_SIZE);
    for (uint32_t i = 0; i < n; i++) {
        fb_str_t s;
        rc = fb_vec_str(&v, i, &s);
        if (rc != 0 || s.len != ID_OBJECT_SIZE)
            return rc ? rc : CR_EBADMSG;
        memcpy(m->ids[i], s.data, ID_OBJECT_SIZE);
    }
    m->id_count = n;
    return 0;
}

/* One node_manager.fbs Address: node_id, ip_address, port, worker_id. */
static int wmsg_addr(const fb_table_t *a, ray_addr_t *out)
{
    fb_str_t node, ip, worker;
    int32_t port;
    int rc = fb_read_str(a, 0, &node);
    rc = rc ? rc : fb_read_str(a, 1, &ip);
    rc = rc ? rc : fb_read_i32(a, 2, 0, &port);
    rc = rc ? rc : fb_read_str(a, 3, &worker);
    if (rc != 0)
        return rc;
    if ((node.len != 0 && node.len != ID_UNIQUE_SIZE) || (worker.len != 0 && worker.len != ID_UNIQUE_SIZE) ||
        ip.len >= RAY_ADDR_IP_MAX || (ip.len && memchr(ip.data, '\0', ip.len)) || port < 0 || port > 65535)
        return CR_EBADMSG;
    memset(out, 0, sizeof *out);
    if (node.len)
        memcpy(out->node_id.b, node.data, ID_UNIQUE_SIZE);
    else
        ID_SET_NIL(&out->node_id);
    if (worker.len)
        memcpy(out->worker_id.b, worker.data, ID_UNIQUE_SIZE);
    else
        ID_SET_NIL(&out->worker_id);
    if (ip.len)
        memcpy(out->ip, ip.data, ip.len);
    out->port = port;
    return 0;
}

/* The owners vector beside the ids (at most as many entries). */
static int wmsg_owners(const fb_table_t *t, unsigned slot, wmsg_t *m)
{
    m->owners = xcalloc(m->id_count ? m->id_count : 1, sizeof *m->owners);
    for (size_t i = 0; i < m->id_count; i++) {
        ID_SET_NIL(&m->owners[i].node_id);
        ID_SET_NIL(&m->owners[i].worker_id);
    }
    fb_vec_t v;
    int rc = fb_read_vec_ref(t, slot, &v);
    if (rc != 0)
        return rc;
    uint32_t n = fb_vec_len(&v);
    if (n > m->id_count)
        return CR_EBADMSG;
    for (uint32_t i = 0; i < n; i++) {
        fb_table_t a;
        rc = fb_vec_table(&v, i, &a);
        rc = rc ? rc : wmsg_addr(&a, &m->owners[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int wmsg_register(const fb_table_t *t, wmsg_t *m)
{
    wmsg_str_t id, job;
    int rc = fb_read_i32(t, 0, 0, &m->worker_type);
    rc = rc ? rc : wmsg_str(t, 1, &id);
    rc = rc ? rc : fb_read_i64(t, 2, 0, &m->worker_pid);
    rc = rc ? rc : wmsg_str(t, 3, &job);
    rc = rc ? rc : fb_read_i32(t, 4, 0, &m->runtime_env_hash);
    rc = rc ? rc : fb_read_i32(t, 5, 0, &m->language);
    rc = rc ? rc : wmsg_str(t, 8, &m->job_config);
    if (rc != 0)
        return rc;
    if (id.len != ID_UNIQUE_SIZE || (job.len != 0 && job.len != ID_JOB_SIZE) || m->worker_pid < 0 ||
        m->worker_pid > INT32_MAX || m->worker_type < 0 || m->worker_type > 3)
        return CR_EBADMSG;
    memcpy(m->worker_id, id.data, ID_UNIQUE_SIZE);
    if (job.len == ID_JOB_SIZE)
        memcpy(m->job_id, job.data, ID_JOB_SIZE);
    else
        id_set_nil(m->job_id, ID_JOB_SIZE);
    return 0;
}

static int wmsg_decode_table(const fb_table_t *t, wmsg_t *m)
{
    int rc;
    switch (m->type) {
    case WMSG_REGISTER_CLIENT_REQUEST:
        return wmsg_register(t, m);
    case WMSG_ANNOUNCE_WORKER_PORT:
        rc = fb_read_i32(t, 0, 0, &m->port);
        rc = rc ? rc : wmsg_str(t, 1, &m->entrypoint);
        return rc ? rc : (m->port < 0 || m->port > 65535 ? CR_EBADMSG : 0);
    case WMSG_DISCONNECT_CLIENT_REQUEST:
        rc = fb_read_i32(t, 0, 0, &m->disconnect_type);
        rc = rc ? rc : wmsg_str(t, 1, &m->disconnect_detail);
        return rc ? rc : wmsg_bytes(t, 2, &m->creation_task_exception);
    case WMSG_ASYNC_GET_OBJECTS_REQUEST:
        rc = wmsg_ids(t, 0, m);
        rc = rc ? rc : wmsg_owners(t, 1, m);
        return rc ? rc : fb_read_i64(t, 2, 0, &m->request_id);
    case WMSG_CANCEL_GET_REQUEST:
        return fb_read_i64(t, 0, 0, &m->request_id);
    case WMSG_WAIT_REQUEST:
        rc = wmsg_ids(t, 0, m);
        rc = rc ? rc : wmsg_owners(t, 1, m);
        rc = rc ? rc : fb_read_i32(t, 2, 0, &m->num_required);
        rc = rc ? rc : fb_read_i64(t, 3, -1, &m->timeout_ms);
        return rc ? rc : (m->num_required < 0 ? CR_EBADMSG : 0);
    case WMSG_WAIT_FOR_ACTOR_CALL_ARGS_REQUEST:
        rc = wmsg_ids(t, 0, m);
        rc = rc ? rc : wmsg_owners(t, 1, m);
#if CRAYLET_RAY_ACTOR_ARG_WAIT_BY_TASK
        if (rc == 0) {
            wmsg_str_t task;
            rc = wmsg_str(t, 2, &task);
            if (rc == 0 && task.len != ID_TASK_SIZE)
                rc = CR_EBADMSG;
            if (rc == 0)
                memcpy(m->task_id, task.data, ID_TASK_SIZE);
        }
        return rc ? rc : fb_read_i32(t, 3, 0, &m->attempt_number);
#else
        return rc ? rc : fb_read_i32(t, 2, 0, &m->tag);
#endif
    case WMSG_PUSH_ERROR_REQUEST:
        rc = wmsg_str(t, 0, &m->error_job_id);
        rc = rc ? rc : wmsg_str(t, 1, &m->error_type);
        rc = rc ? rc : wmsg_str(t, 2, &m->error_message);
        return rc ? rc : fb_read_f64(t, 3, 0, &m->error_timestamp);
    case WMSG_FREE_OBJECTS_REQUEST:
        rc = fb_read_bool(t, 0, false, &m->local_only);
        return rc ? rc : wmsg_ids(t, 1, m);
    case WMSG_SUBSCRIBE_PLASMA_READY: {
        wmsg_str_t id;
        rc = wmsg_str(t, 0, &id);
        if (rc != 0)
            return rc;
        if (id.len != ID_OBJECT_SIZE)
            return CR_EBADMSG;
        m->ids = xmalloc(ID_OBJECT_SIZE);
        memcpy(m->ids[0], id.data, ID_OBJECT_SIZE);
        m->id_count = 1;
        m->owners = xcalloc(1, sizeof *m->owners);
        ID_SET_NIL(&m->owners[0].node_id);
        ID_SET_NIL(&m->owners[0].worker_id);
        fb_table_t a;
        rc = fb_read_table(t, 1, &a);
        if (rc == 0 && fb_table_present(&a))
            rc = wmsg_addr(&a, &m->owners[0]);
        return rc;
    }
    default:
        return 0;
    }
}

int wmsg_decode(int64_t type, const uint8_t *payload, size_t len, wmsg_t *m)
{
    memset(m, 0, sizeof *m);
    m->type = type;
    m->timeout_ms = -1;
    switch (type) {
    case WMSG_ACTOR_CREATION_TASK_DONE:
    case WMSG_NOTIFY_WORKER_BLOCKED:
    case WMSG_NOTIFY_WORKER_UNBLOCKED:
        /* No fields; an empty payload or an empty table are both fine. */
        if (len == 0)
            return 0;
        break;
    case WMSG_CANCEL_GET_REQUEST:
        if (len == 0)
            return 0; /* older clients send it without a table */
        break;
    case WMSG_REGISTER_CLIENT_REQUEST:
    case WMSG_ANNOUNCE_WORKER_PORT:
    case WMSG_DISCONNECT_CLIENT_REQUEST:
    case WMSG_ASYNC_GET_OBJECTS_REQUEST:
    case WMSG_WAIT_REQUEST:
    case WMSG_WAIT_FOR_ACTOR_CALL_ARGS_REQUEST:
    case WMSG_PUSH_ERROR_REQUEST:
    case WMSG_FREE_OBJECTS_REQUEST:
    case WMSG_SUBSCRIBE_PLASMA_READY:
        break;
    default:
        return CR_EBADMSG; /* unknown, or a reply type a client never sends */
    }
    fb_table_t t;
    int rc = fb_root(payload, len, &t);
    if (rc == 0)
        rc = wmsg_decode_table(&t, m);
    if (rc != 0)
        wmsg_clear(m);
    return rc;
}

void wmsg_clear(wmsg_t *m)
{
    free(m->ids);
    m->ids = NULL;
    free(m->owners);
    m->owners = NULL;
    m->id_count = 0;
}
