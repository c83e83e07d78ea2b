/* The rpc layer end to end in one process: a server and a client on the
 * same loop, completions crossing the cq bridge's poller thread. */
#include <criterion/criterion.h>
#include <grpc/grpc.h>
#include <stdio.h>
#include <string.h>

#include "common/cq_bridge.h"
#include "common/loop.h"
#include "common/rpc.h"
#include "proto/gen/health.pb-c.h"

typedef struct fixture {
    loop_t *loop;
    cq_bridge_t *bridge;
    rpc_server_t *server;
    rpc_channel_t *channel;
    int port;
    int replies;
    int expected;
    grpc_status_code last_code;
    int last_serving;
    char last_message[256];
    char seen_service[64];
    rpc_call_t *held; /* a call answered later, from a timer */
} fixture_t;

static void reply_serving(rpc_call_t *call)
{
    Grpc__Health__V1__HealthCheckResponse reply = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    reply.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    rpc_call_reply(call, &reply.base);
}

static void on_check(void *ctx, rpc_call_t *call, ProtobufCMessage *msg)
{
    fixture_t *f = ctx;
    const Grpc__Health__V1__HealthCheckRequest *req = (const Grpc__Health__V1__HealthCheckRequest *)msg;
    snprintf(f->seen_service, sizeof f->seen_service, "%s", req->service);
    if (strcmp(req->service, "fail") == 0) {
        rpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "no such service");
        return;
    }
    if (strcmp(req->service, "later") == 0) {
        f->held = call;
        return;
    }
    reply_serving(call);
}

static void on_reply(void *ctx, const rpc_status_t *st, ProtobufCMessage *reply)
{
    fixture_t *f = ctx;
    f->last_code = st->code;
    snprintf(f->last_message, sizeof f->last_message, "%s", st->message);
    f->last_serving = reply ? (int)((Grpc__Health__V1__HealthCheckResponse *)reply)->status : -1;
    if (++f->replies >= f->expected)
        loop_stop(f->loop);
}

static void on_deadline(loop_t *loop, uint64_t id, void *data) { loop_stop(loop); }

static void setup(fixture_t *f)
{
    memset(f, 0, sizeof *f);
    grpc_init();
    f->loop = loop_create();
    cr_assert_not_null(f->loop);
    f->bridge = cq_bridge_create(f->loop);
    cr_assert_not_null(f->bridge);
    f->server = rpc_server_create(f->bridge);
    cr_assert_eq(rpc_server_add_method(f->server, "/grpc.health.v1.Health/Check",
                                       &grpc__health__v1__health_check_request__descriptor, on_check, f),
                 0);
    cr_assert_eq(rpc_server_listen(f->server, "127.0.0.1", 0, &f->port), 0);
    cr_assert_gt(f->port, 0);
    cr_assert_eq(rpc_server_start(f->server), 0);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", f->port);
    f->channel = rpc_channel_create(f->bridge, target);
    cr_assert_not_null(f->channel);
}

static void run_until_replies(fixture_t *f, int n)
{
    f->expected = n;
    uint64_t guard = loop_add_timer(f->loop, 10000, on_deadline, f);
    loop_run(f->loop);
    loop_cancel_timer(f->loop, guard);
    cr_assert_eq(f->replies, n, "only %d of %d replies arrived", f->replies, n);
}

static void teardown(fixture_t *f)
{
    rpc_channel_destroy(f->channel);
    rpc_server_destroy(f->server);
    cq_bridge_destroy(f->bridge);
    loop_destroy(f->loop);
    grpc_shutdown();
}

Test(rpc, unary_round_trip)
{
    fixture_t f;
    setup(&f);
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = "abc";
    cr_assert_eq(rpc_unary(f.channel, "/grpc.health.v1.Health/Check", &req.base,
                           &grpc__health__v1__health_check_response__descriptor, 5000, on_reply, &f),
                 0);
    run_until_replies(&f, 1);
    cr_assert_eq(f.last_code, GRPC_STATUS_OK);
    cr_assert_eq(f.last_serving, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    cr_assert_str_eq(f.seen_service, "abc");
    teardown(&f);
}

Test(rpc, handler_error_status_reaches_client)
{
    fixture_t f;
    setup(&f);
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = "fail";
    rpc_unary(f.channel, "/grpc.health.v1.Health/Check", &req.base,
              &grpc__health__v1__health_check_response__descriptor, 5000, on_reply, &f);
    run_until_replies(&f, 1);
    cr_assert_eq(f.last_code, GRPC_STATUS_NOT_FOUND);
    cr_assert_str_eq(f.last_message, "no such service");
    teardown(&f);
}

Test(rpc, unregistered_method_is_unimplemented_at_once)
{
    fixture_t f;
    setup(&f);
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    rpc_unary(f.channel, "/ray.rpc.NodeManagerService/NoSuchMethod", &req.base,
              &grpc__health__v1__health_check_response__descriptor, 5000, on_reply, &f);
    run_until_replies(&f, 1);
    cr_assert_eq(f.last_code, GRPC_STATUS_UNIMPLEMENTED);
    teardown(&f);
}

Test(rpc, undecodable_request_is_rejected_and_server_keeps_serving)
{
    fixture_t f;
    setup(&f);
    /* Field 1 as a length-delimited string claiming 100 bytes, with 1 present. */
    static const uint8_t garbage[] = {0x0a, 0x64, 0x41};
    rpc_unary_bytes(f.channel, "/grpc.health.v1.Health/Check", garbage, sizeof garbage,
                    &grpc__health__v1__health_check_response__descriptor, 5000, on_reply, &f);
    run_until_replies(&f, 1);
    cr_assert_eq(f.last_code, GRPC_STATUS_INVALID_ARGUMENT);

    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    rpc_unary(f.channel, "/grpc.health.v1.Health/Check", &req.base,
              &grpc__health__v1__health_check_response__descriptor, 5000, on_reply, &f);
    run_until_replies(&f, 2);
    cr_assert_eq(f.last_code, GRPC_STATUS_OK);
    teardown(&f);
}

Test(rpc, many_concurrent_calls_all_complete)
{
    fixture_t f;
    setup(&f);
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    for (int i = 0; i < 200; i++)
        rpc_unary(f.channel, "/grpc.health.v1.Health/Check", &req.base,
                  &grpc__health__v1__health_check_response__descriptor, 5000, on_reply, &f);
    run_until_replies(&f, 200);
    cr_assert_eq(f.last_code, GRPC_STATUS_OK);
    teardown(&f);
}

Test(rpc, unreachable_server_reports_unavailable)
{
    fixture_t f;
    setup(&f);
    rpc_channel_t *dead = rpc_channel_create(f.bridge, "127.0.0.1:1");
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    rpc_unary(dead, "/grpc.health.v1.Health/Check", &req.base,
              &grpc__health__v1__health_check_response__descriptor, 5000, on_reply, &f);
    run_until_replies(&f, 1);
    cr_assert_eq(f.last_code, GRPC_STATUS_UNAVAILABLE);
    rpc_channel_destroy(dead);
    teardown(&f);
}

static void answer_held(loop_t *loop, uint64_t id, void *data)
{
    fixture_t *f = data;
    if (f->held) {
        reply_serving(f->held);
        f->held = NULL;
    } else {
        loop_add_timer(loop, 5, answer_held, f);
    }
}

static void stop_loop(loop_t *loop, uint64_t id, void *data) { loop_stop(loop); }

/* A reply sent outside any completion dispatch (from a timer) still reaches
 * the client, and its completion on the quiet queue is collected (by the
 * next dispatch or the flush timer): nothing stays outstanding. */
Test(rpc, reply_from_a_timer_is_delivered_and_collected)
{
    fixture_t f;
    setup(&f);
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = "later";
    cr_assert_eq(rpc_unary(f.channel, "/grpc.health.v1.Health/Check", &req.base,
                           &grpc__health__v1__health_check_response__descriptor, 5000, on_reply, &f),
                 0);
    loop_add_timer(f.loop, 5, answer_held, &f);
    run_until_replies(&f, 1);
    cr_assert_eq(f.last_code, GRPC_STATUS_OK);
    cr_assert_eq(f.last_serving, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    loop_add_timer(f.loop, 3 * CQ_BRIDGE_QUIET_FLUSH_MS, stop_loop, NULL);
    loop_run(f.loop);
    cr_assert_eq(cq_bridge_quiet_outstanding(f.bridge), 0);
    teardown(&f);
}

/* A call still unanswered when the server goes away is cancelled; answering
 * it afterwards neither crashes nor leaks (ASan checks the latter). */
Test(rpc, call_answered_after_server_destroy_is_freed)
{
    fixture_t f;
    setup(&f);
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = "later";
    cr_assert_eq(rpc_unary(f.channel, "/grpc.health.v1.Health/Check", &req.base,
                           &grpc__health__v1__health_check_response__descriptor, 5000, on_reply, &f),
                 0);
    for (int i = 0; i < 1000 && !f.held; i++) {
        loop_add_timer(f.loop, 5, stop_loop, NULL);
        loop_run(f.loop);
    }
    cr_assert_not_null(f.held, "the request never reached the handler");
    rpc_server_destroy(f.server);
    f.server = NULL;
    reply_serving(f.held);
    f.held = NULL;
    run_until_replies(&f, 1);
    cr_assert_neq(f.last_code, GRPC_STATUS_OK);
    teardown(&f);
}
