/* The raylet socket (worker_sock.h).  Replies go out in request order
 * (clients block on each). */
#include "raylet/worker/worker_sock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/frame.h"
#include "common/frame_record.h"
#include "common/alloc.h"
#include "common/error.h"
#include "common/fb.h"
#include "common/list.h"
#include "common/log.h"
#include "raylet/worker/core_worker_client.h"
#include "raylet/worker/wmsg.h"
#include "raylet/worker/worker_int.h"

struct wsock {
    wsock_options_t o;
    frame_recorder_t *recorder; /* NULL unless recording */
    list_t clients;           /* wclient_t */
    bool first_driver_seen;   /* workers are prestarted for the first one */
    bool stopped;
};

typedef struct wclient {
    list_t node; /* ws->clients */
    wsock_t *ws;
    conn_t *conn;
    worker_t *worker; /* NULL until registered, and again once it is dead */
    pid_t peer_pid;   /* SO_PEERCRED at accept: who is really on the other end */
    list_t actor_waits; /* wsock_actor_args_t: cancelled when the client goes */
    list_t pulls;       /* wsock_pull_t: objects fetched from other nodes for it */
    bool disconnecting;
} wclient_t;

static uint64_t wsock_wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* Build-and-send for replies; `build` fills the table and returns its ref. */
static int wsock_send(wclient_t *c, int64_t type, fb_builder_t *b, fb_ref_t root)
{
    const uint8_t *buf;
    size_t len;
    int rc = fb_builder_finish(b, root, &buf, &len);
    if (rc == 0)
        rc = conn_send(c->conn, type, buf, len);
    fb_builder_destroy(b);
    return rc;
}

/* ---- registration --------------------------------------------------------------- */

static int wsock_reply_register(wclient_t *c, bool ok, const char *reason, int port)
{
    fb_builder_t *b = fb_builder_create(256);
    fb_ref_t why = fb_create_string_cstr(b, reason ? reason : "");
    fb_ref_t node = fb_create_string(b, c->ws->o.node_id, ID_UNIQUE_SIZE);
    fb_start_table(b);
    fb_add_bool(b, 0, ok, false);
    fb_add_ref(b, 1, why);
    fb_add_ref(b, 2, node);
    fb_add_i32(b, 3, port, 0);
    return wsock_send(c, WMSG_REGISTER_CLIENT_REPLY, b, fb_end_table(b));
}

static int wsock_on_register(wclient_t *c, const wmsg_t *m)
{
    wsock_t *ws = c->ws;
    if (c->worker)
        return CR_EBADMSG; /* registers once */
    char err[160] = "";
    worker_t *w = pool_register(ws->o.pool, c->conn, (worker_type_t)m->worker_type, m->worker_id,
                                (pid_t)m->worker_pid, c->peer_pid, m->job_id, m->language, m->runtime_env_hash, err,
                                sizeof err);
    if (!w) {
        log_warn("refusing registration of pid %lld: %s", (long long)m->worker_pid, err);
        wsock_reply_register(c, false, err, 0);
        conn_close(c->conn, NULL);
        return 0;
    }
    c->worker = w;
    w->client = c;
    if (w->type == WORKER_TYPE_DRIVER) {
        jobs_add(ws->o.jobs, m->job_id, (const uint8_t *)m->job_config.data, m->job_config.len);
        /* The first Python driver gets a node's worth of warm workers, as
         * under the stock raylet; they belong to no job until leased.
         * Unlike stock, the driver's registration does not wait for them. */
        if (!ws->first_driver_seen && w->language == RAY__RPC__LANGUAGE__PYTHON) {
            ws->first_driver_seen = true;
            if (ws->o.prestart_on_first_driver > 0) {
                uint8_t no_job[ID_JOB_SIZE];
                memset(no_job, 0xff, sizeof no_job);
                pool_prestart(ws->o.pool, no_job, RAY__RPC__LANGUAGE__PYTHON,
                              ws->o.prestart_on_first_driver);
            }
        }
    }
    log_debug("%s %s registered (pid %lld)", w->type == WORKER_TYPE_DRIVER ? "driver" : "worker", w->id_hex,
              (long long)m->worker_pid);
    return wsock_reply_register(c, true, "", pool_assigned_port(w));
}

/* ---- drivers: AnnounceWorkerPort registers the job with GCS ---------------------- */

typedef struct wsock_add_job {
    wsock_t *ws;
    uint8_t worker_id[ID_UNIQUE_SIZE];
} wsock_add_job_t;

static void wsock_on_job_added(void *ctx, int err, const char *message, ProtobufCMessage *reply)
{
    wsock_add_job_t *a = ctx;
    worker_t *w = pool_find(a->ws->o.pool, a->worker_id);
    if (w && w->state != WORKER_DEAD && w->client) {
        wclient_t *c = w->client;
        if (err)
            log_error("AddJob for driver %s failed: %s", w->id_hex, message);
        fb_builder_t *b = fb_builder_create(128);
        fb_ref_t why = fb_create_string_cstr(b, err ? message : "");
        fb_start_table(b);
        fb_add_bool(b, 0, err == 0, false);
        fb_add_ref(b, 1, why);
        wsock_send(c, WMSG_ANNOUNCE_WORKER_PORT_REPLY, b, fb_end_table(b));
    }
    free(a);
}

static int wsock_announce_driver(wclient_t *c, worker_t *w, const wmsg_str_t *entrypoint)
{
    wsock_t *ws = c->ws;
    size_t config_len = 0;
    const uint8_t *config_bytes = jobs_config(ws->o.jobs, w->job_id, &config_len);
    Ray__Rpc__JobConfig *config = NULL;
    if (config_bytes) {
        config = ray__rpc__job_config__unpack(NULL, config_len, config_bytes);
        if (!config) {
            log_warn("driver %s sent an undecodable job config", w->id_hex);
            return CR_EBADMSG;
        }
    }
    char *entry = xstrndup(entrypoint->data, entrypoint->len);
    Ray__Rpc__JobTableData data = RAY__RPC__JOB_TABLE_DATA__INIT;
    Ray__Rpc__Address addr;
    worker_rpc_address(w, ws->o.node_id, ws->o.node_ip_address, &addr);
    data.job_id.data = w->job_id;
    data.job_id.len = ID_JOB_SIZE;
    data.is_dead = false;
    data.timestamp = (int64_t)wsock_wall_ms();
    data.start_time = wsock_wall_ms();
    data.driver_ip_address = (char *)ws->o.node_ip_address;
    data.driver_pid = w->pid;
    data.config = config;
    data.entrypoint = entry;
    data.driver_address = &addr;
    Ray__Rpc__AddJobRequest req = RAY__RPC__ADD_JOB_REQUEST__INIT;
    req.data = &data;
    wsock_add_job_t *a = xmalloc(sizeof *a);
    a->ws = ws;
    memcpy(a->worker_id, w->id, ID_UNIQUE_SIZE);
    int rc = gcs_add_job(ws->o.gcs, &req, wsock_on_job_added, a);
    if (rc != 0)
        free(a);
    if (config)
        ray__rpc__job_config__free_unpacked(config, NULL);
    free(entry);
    return rc;
}

static int wsock_on_announce(wclient_t *c, const wmsg_t *m)
{
    worker_t *w = c->worker;
    pool_announce(c->ws->o.pool, w, m->port);
    if (w->type == WORKER_TYPE_DRIVER)
        return wsock_announce_driver(c, w, &m->entrypoint);
    lease_mgr_mark_dirty(c->ws->o.leases);
    return 0;
}

/* ---- disconnects ------------------------------------------------------------------- */

static int wsock_on_disconnect(wclient_t *c, const wmsg_t *m)
{
    char *why = xstrndup(m->disconnect_detail.data ? m->disconnect_detail.data : "", m->disconnect_detail.len);
    c->disconnecting = true;
    /* Reply first: the client blocks on it, then closes. */
    fb_builder_t *b = fb_builder_create(64);
    fb_start_table(b);
    wsock_send(c, WMSG_DISCONNECT_CLIENT_REPLY, b, fb_end_table(b));
    if (c->worker)
        pool_exit(c->ws->o.pool, c->worker,
                  &(worker_exit_t){.type = m->disconnect_type,
                                   .detail = why,
                                   .creation_exception = (const uint8_t *)m->creation_task_exception.data,
                                   .creation_exception_len = m->creation_task_exception.len});
    free(why);
    return 0;
}

/* ---- pulls from other nodes ------------------------------------------------------------ */

/* A fetch started for a client: a get (named by its request id), an
 * `await` (named by its object) or a ray.wait(fetch_local=True).  A get or
 * await ends when answered or cancelled by the client.  A wait's fetch
 * outlives the wait, as in the stock raylet: what the program waited for
 * keeps coming here (so a later get is local) until the lease ends or the
 * client goes. */
#define WSOCK_PULL_AWAIT (-1)
#define WSOCK_PULL_WAIT (-2)
typedef struct wsock_pull {
    list_t node; /* wclient_t.pulls */
    uint64_t handle;
    int64_t get_request_id; /* or WSOCK_PULL_AWAIT, WSOCK_PULL_WAIT */
    uint8_t oid[ID_OBJECT_SIZE];
} wsock_pull_t;

static uint64_t wsock_pull_start(wclient_t *c, pull_priority_t prio, const wmsg_t *m)
{
    xfer_t *x = c->ws->o.xfer;
    if (!x || m->id_count == 0 || !m->owners)
        return 0;
    return xfer_pull(x, prio, (const id_object_t *)m->ids, m->owners, m->id_count);
}

static void wsock_pull_keep(wclient_t *c, uint64_t handle, int64_t get_request_id, const uint8_t *oid)
{
    if (!handle)
        return;
    wsock_pull_t *p = xcalloc(1, sizeof *p);
    p->handle = handle;
    p->get_request_id = get_request_id;
    if (oid)
        memcpy(p->oid, oid, ID_OBJECT_SIZE);
    list_insert_tail(&c->pulls, &p->node);
}

static void wsock_pull_drop(wclient_t *c, wsock_pull_t *p)
{
    list_remove(&p->node);
    xfer_cancel(c->ws->o.xfer, p->handle);
    free(p);
}

static int wsock_on_async_get(wclient_t *c, const wmsg_t *m)
{
    /* No reply: the worker blocks on the store, where the object appears. */
    wsock_pull_keep(c, wsock_pull_start(c, PULL_GET, m), m->request_id, NULL);
    return 0;
}

static int wsock_on_cancel_get(wclient_t *c, const wmsg_t *m)
{
    list_t *e = c->pulls.next;
    while (e != &c->pulls) {
        wsock_pull_t *p = LIST_ENTRY(e, wsock_pull_t, node);
        e = e->next;
        if (p->get_request_id == m->request_id)
            wsock_pull_drop(c, p);
    }
    return 0;
}

/* ---- waits ---------------------------------------------------------------------------- */

static void wsock_on_wait_done(void *ctx, const uint8_t (*ids)[ID_OBJECT_SIZE], const bool *ready, size_t count,
                               bool timed_out)
{
    wclient_t *c = ctx;
    fb_builder_t *b = fb_builder_create(256 + count * 40);
    fb_ref_t *found = xcalloc(count, sizeof *found);
    fb_ref_t *rest = xcalloc(count, sizeof *rest);
    size_t nf = 0, nr = 0;
    for (size_t i = 0; i < count; i++) {
        fb_ref_t s = fb_create_string(b, ids[i], ID_OBJECT_SIZE);
        if (ready[i])
            found[nf++] = s;
        else
            rest[nr++] = s;
    }
    fb_ref_t vf = fb_create_vec_ref(b, found, nf);
    fb_ref_t vr = fb_create_vec_ref(b, rest, nr);
    fb_start_table(b);
    fb_add_ref(b, 0, vf);
    fb_add_ref(b, 1, vr);
    wsock_send(c, WMSG_WAIT_REPLY, b, fb_end_table(b));
    free(found);
    free(rest);
}

static int wsock_on_wait(wclient_t *c, const wmsg_t *m)
{
    /* The worker asks only with fetch_local: what is elsewhere comes here
     * (also for num_required 0, a prefetch). */
    wsock_pull_keep(c, wsock_pull_start(c, PULL_WAIT, m), WSOCK_PULL_WAIT, NULL);
    if (m->num_required == 0) {
        wsock_on_wait_done(c, NULL, NULL, 0, false);
        return 0;
    }
    owait_start(c->ws->o.owait, (const uint8_t(*)[ID_OBJECT_SIZE])m->ids, m->id_count, (size_t)m->num_required,
                m->timeout_ms, wsock_on_wait_done, c);
    return 0;
}

/* Completion pushed to the worker over gRPC: nothing to do with the reply. */
static void wsock_on_push_done(void *ctx, const rpc_status_t *st, ProtobufCMessage *reply)
{
    if (st->code != GRPC_STATUS_OK)
        log_debug("notifying a worker failed: %s", st->message);
}

/* An actor's wait for its call arguments.  Answered over gRPC, so it does
 * not hold the connection; it is still the client's, and goes with it (a
 * dead actor's waits would otherwise stay registered for ever). */
typedef struct wsock_actor_args {
    list_t node; /* wclient_t.actor_waits */
    owait_req_t *req;
    wsock_t *ws;
    uint8_t worker_id[ID_UNIQUE_SIZE];
    int32_t tag;
    uint8_t task_id[ID_TASK_SIZE];
    int32_t attempt_number;
    uint64_t pull; /* fetching arguments held elsewhere; 0 none */
} wsock_actor_args_t;

static void wsock_on_actor_args_ready(void *ctx, const uint8_t (*ids)[ID_OBJECT_SIZE], const bool *ready,
                                      size_t count, bool timed_out)
{
    wsock_actor_args_t *a = ctx;
    list_remove(&a->node);
    if (a->pull)
        xfer_cancel(a->ws->o.xfer, a->pull);
    worker_t *w = pool_find(a->ws->o.pool, a->worker_id);
    rpc_channel_t *ch = w && w->state != WORKER_DEAD ? pool_channel(a->ws->o.pool, w) : NULL;
    if (ch) {
        Ray__Rpc__ActorCallArgWaitCompleteRequest req = RAY__RPC__ACTOR_CALL_ARG_WAIT_COMPLETE_REQUEST__INIT;
        req.intended_worker_id.data = w->id;
        req.intended_worker_id.len = ID_UNIQUE_SIZE;
#if CRAYLET_RAY_ACTOR_ARG_WAIT_BY_TASK
        req.task_id.data = a->task_id;
        req.task_id.len = ID_TASK_SIZE;
        req.attempt_number = a->attempt_number;
#else
        req.tag = a->tag;
#endif
        cwc_actor_call_arg_wait_complete(ch, &req, 0, wsock_on_push_done, NULL);
    }
    free(a);
}

static int wsock_on_wait_actor_args(wclient_t *c, const wmsg_t *m)
{
    wsock_actor_args_t *a = xcalloc(1, sizeof *a);
    list_init(&a->node);
    a->ws = c->ws;
    memcpy(a->worker_id, c->worker->id, ID_UNIQUE_SIZE);
    a->tag = m->tag;
    memcpy(a->task_id, m->task_id, ID_TASK_SIZE);
    a->attempt_number = m->attempt_number;
    a->pull = wsock_pull_start(c, PULL_WAIT, m);
    owait_req_t *req = owait_start(c->ws->o.owait, (const uint8_t(*)[ID_OBJECT_SIZE])m->ids, m->id_count, m->id_count,
                                   -1, wsock_on_actor_args_ready, a);
    if (req) { /* NULL: answered (and freed) already */
        a->req = req;
        list_insert_tail(&c->actor_waits, &a->node);
    }
    return 0;
}

static void wsock_on_plasma_ready(void *ctx, const uint8_t (*ids)[ID_OBJECT_SIZE], const bool *ready, size_t count,
                                  bool timed_out)
{
    wclient_t *c = ctx;
    if (count == 1) {
        LIST_FOREACH_ENTRY(wsock_pull_t, p, &c->pulls, node) {
            if (p->get_request_id == -1 && memcmp(p->oid, ids[0], ID_OBJECT_SIZE) == 0) {
                wsock_pull_drop(c, p);
                break;
            }
        }
    }
    worker_t *w = c->worker;
    rpc_channel_t *ch = w ? pool_channel(c->ws->o.pool, w) : NULL;
    if (!ch || count != 1)
        return;
    Ray__Rpc__PlasmaObjectReadyRequest req = RAY__RPC__PLASMA_OBJECT_READY_REQUEST__INIT;
    req.object_id.data = (uint8_t *)ids[0];
    req.object_id.len = ID_OBJECT_SIZE;
    cwc_plasma_object_ready(ch, &req, 0, wsock_on_push_done, NULL);
}

static int wsock_on_subscribe_plasma_ready(wclient_t *c, const wmsg_t *m)
{
    wsock_pull_keep(c, wsock_pull_start(c, PULL_WAIT, m), WSOCK_PULL_AWAIT, m->ids[0]);
    owait_start(c->ws->o.owait, (const uint8_t(*)[ID_OBJECT_SIZE])m->ids, 1, 1, -1, wsock_on_plasma_ready, c);
    return 0;
}

/* ---- the rest ---------------------------------------------------------------------- */

static int wsock_on_push_error(wclient_t *c, const wmsg_t *m)
{
    char *type_s = xstrndup(m->error_type.data ? m->error_type.data : "", m->error_type.len);
    char *msg_s = xstrndup(m->error_message.data ? m->error_message.data : "", m->error_message.len);
    gcs_report_job_error(c->ws->o.gcs, (const uint8_t *)m->error_job_id.data, m->error_job_id.len, type_s, msg_s,
                         m->error_timestamp);
    free(type_s);
    free(msg_s);
    return 0;
}

static int wsock_dispatch(wclient_t *c, const wmsg_t *m)
{
    /* Everything but registration needs a registered client. */
    if (m->type != WMSG_REGISTER_CLIENT_REQUEST && !c->worker)
        return CR_EBADMSG;
    switch (m->type) {
    case WMSG_REGISTER_CLIENT_REQUEST: return wsock_on_register(c, m);
    case WMSG_ANNOUNCE_WORKER_PORT: return wsock_on_announce(c, m);
    case WMSG_DISCONNECT_CLIENT_REQUEST: return wsock_on_disconnect(c, m);
    case WMSG_ACTOR_CREATION_TASK_DONE:
        pool_mark_actor(c->ws->o.pool, c->worker);
        return 0;
    case WMSG_NOTIFY_WORKER_BLOCKED:
        lease_mgr_worker_blocked(c->ws->o.leases, c->worker);
        return 0;
    case WMSG_NOTIFY_WORKER_UNBLOCKED:
        lease_mgr_worker_unblocked(c->ws->o.leases, c->worker);
        return 0;
    case WMSG_WAIT_REQUEST: return wsock_on_wait(c, m);
    case WMSG_WAIT_FOR_ACTOR_CALL_ARGS_REQUEST: return wsock_on_wait_actor_args(c, m);
    case WMSG_PUSH_ERROR_REQUEST: return wsock_on_push_error(c, m);
    case WMSG_FREE_OBJECTS_REQUEST:
        for (size_t i = 0; i < m->id_count; i++)
            store_free(c->ws->o.store, (const id_object_t *)m->ids[i]);
        return 0;
    case WMSG_SUBSCRIBE_PLASMA_READY: return wsock_on_subscribe_plasma_ready(c, m);
    case WMSG_ASYNC_GET_OBJECTS_REQUEST: return wsock_on_async_get(c, m);
    case WMSG_CANCEL_GET_REQUEST: return wsock_on_cancel_get(c, m);
    default:
        return CR_EBADMSG;
    }
}

static int wsock_on_message(void *ctx, conn_t *conn, int64_t type, const uint8_t *payload, size_t len)
{
    wclient_t *c = ctx;
    if (c->disconnecting)
        return 0;
    frame_recorder_add(c->ws->recorder, type, payload, len);
    wmsg_t m;
    int rc = wmsg_decode(type, payload, len, &m);
    if (rc != 0) {
        log_warn("malformed raylet message (type %lld, %zu bytes): %s", (long long)type, len, cr_strerror(rc));
        return rc;
    }
    rc = wsock_dispatch(c, &m);
    wmsg_clear(&m);
    return rc;
}

/* Drop every wait the client still has: its own (ctx = c), its actor
 * argument waits, and the fetches behind them. */
static void wsock_cancel_waits(wclient_t *c)
{
    owait_cancel_ctx(c->ws->o.owait, c);
    while (!list_empty(&c->actor_waits)) {
        wsock_actor_args_t *a = LIST_ENTRY(c->actor_waits.next, wsock_actor_args_t, node);
        list_remove(&a->node);
        owait_cancel(c->ws->o.owait, a->req);
        if (a->pull)
            xfer_cancel(c->ws->o.xfer, a->pull);
        free(a);
    }
    while (!list_empty(&c->pulls))
        wsock_pull_drop(c, LIST_ENTRY(c->pulls.next, wsock_pull_t, node));
}

static void wsock_on_close(void *ctx, conn_t *conn, const char *reason)
{
    wclient_t *c = ctx;
    wsock_cancel_waits(c);
    list_remove(&c->node);
    if (c->worker) {
        worker_t *w = c->worker;
        c->worker = NULL;
        w->client = NULL;
        w->conn = NULL;
        char detail[256];
        snprintf(detail, sizeof detail, "the %s's connection to the raylet closed (%s)",
                 w->type == WORKER_TYPE_DRIVER ? "driver" : "worker", reason);
        /* A worker this raylet told to exit (or killed) did not fail. */
        int exit_type = w->type == WORKER_TYPE_DRIVER ? RAY__RPC__WORKER_EXIT_TYPE__INTENDED_USER_EXIT
                        : w->exit_requested           ? RAY__RPC__WORKER_EXIT_TYPE__INTENDED_SYSTEM_EXIT
                                                      : RAY__RPC__WORKER_EXIT_TYPE__SYSTEM_ERROR;
        pool_disconnect(c->ws->o.pool, w, exit_type, detail);
    }
    free(c);
}

void wsock_lease_returned(wsock_t *ws, worker_t *w)
{
    wclient_t *c = ws ? w->client : NULL;
    if (!c)
        return;
    /* The task is over: nothing it fetched is needed for it any more. */
    while (!list_empty(&c->pulls))
        wsock_pull_drop(c, LIST_ENTRY(c->pulls.next, wsock_pull_t, node));
}

void wsock_worker_dead(wsock_t *ws, worker_t *w)
{
    wclient_t *c = ws ? w->client : NULL;
    if (!c)
        return;
    wsock_cancel_waits(c);
    c->worker = NULL;
    w->client = NULL;
}

wsock_t *wsock_create(const wsock_options_t *opts)
{
    wsock_t *ws = xcalloc(1, sizeof *ws);
    ws->o = *opts;
    ws->recorder = frame_recorder_create(opts->record_frames_dir, "raylet", FRAME_RAY_COOKIE);
    ws->o.record_frames_dir = NULL;
    list_init(&ws->clients);
    return ws;
}

void wsock_accept(wsock_t *ws, int fd, pid_t peer_pid)
{
    if (ws->stopped) {
        close(fd);
        return;
    }
    wclient_t *c = xcalloc(1, sizeof *c);
    c->ws = ws;
    c->peer_pid = peer_pid;
    list_init(&c->actor_waits);
    list_init(&c->pulls);
    list_insert_tail(&ws->clients, &c->node);
    static const conn_callbacks_t cbs = {.on_message = wsock_on_message, .on_close = wsock_on_close};
    c->conn = conn_create(ws->o.loop, fd, "raylet socket", &cbs, c);
    if (!c->conn) {
        list_remove(&c->node);
        free(c);
    }
}

void wsock_stop(wsock_t *ws)
{
    if (!ws)
        return;
    ws->stopped = true;
    while (!list_empty(&ws->clients)) {
        wclient_t *c = LIST_ENTRY(ws->clients.next, wclient_t, node);
        list_remove(&c->node);
        wsock_cancel_waits(c);
        if (c->worker) {
            c->worker->client = NULL;
            c->worker->conn = NULL;
        }
        conn_destroy(c->conn);
        free(c);
    }
}

void wsock_destroy(wsock_t *ws)
{
    if (!ws)
        return;
    wsock_stop(ws);
    frame_recorder_destroy(ws->recorder);
    free(ws);
}
