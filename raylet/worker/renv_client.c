#include "raylet/worker/renv_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/auth_token.h"
#include "common/error.h"
#include "common/log.h"
#include "proto/gen/runtime_env_agent.pb-c.h"

/* A reply is a small protobuf; anything bigger is not the agent talking. */
#define RENV_MAX_REPLY (16u << 20)

typedef struct renv_req {
    struct renv_req *next;
    renv_client_t *c;
    int fd;
    uint8_t *out;
    size_t out_len, out_off;
    uint8_t *in;
    size_t in_len, in_cap;
    uint64_t timer;
    renv_done_cb cb;
    void *ctx;
} renv_req_t;

struct renv_client {
    loop_t *loop;
    char ip[64];
    int port;
    uint64_t timeout_ms;
    char *authorization; /* "Bearer <token>" header value, or NULL */
    renv_req_t *reqs;
};

static void renv_req_free(renv_req_t *r)
{
    renv_client_t *c = r->c;
    for (renv_req_t **p = &c->reqs; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            break;
        }
    if (r->timer)
        loop_cancel_timer(c->loop, r->timer);
    if (r->fd >= 0) {
        loop_del_fd(c->loop, r->fd);
        close(r->fd);
    }
    free(r->out);
    free(r->in);
    free(r);
}

static void renv_finish(renv_req_t *r, int err, const char *message, const char *context)
{
    renv_done_cb cb = r->cb;
    void *ctx = r->ctx;
    renv_req_free(r);
    cb(ctx, err, message, context);
}

/* The whole response is in: status line, headers, protobuf body. */
static void renv_parse(renv_req_t *r)
{
    char msg[256];
    const char *end = r->in_len >= 4 ? memmem(r->in, r->in_len, "\r\n\r\n", 4) : NULL;
    int status = 0;
    if (!end || sscanf((const char *)r->in, "HTTP/1.%*d %d", &status) != 1) {
        renv_finish(r, CR_EBADMSG, "malformed HTTP reply from the runtime-env agent", NULL);
        return;
    }
    if (status != 200) {
        snprintf(msg, sizeof msg, "runtime-env agent answered HTTP %d", status);
        renv_finish(r, CR_ERPC, msg, NULL);
        return;
    }
    const uint8_t *body = (const uint8_t *)end + 4;
    size_t body_len = r->in_len - (size_t)(body - r->in);
    Ray__Rpc__GetOrCreateRuntimeEnvReply *reply = ray__rpc__get_or_create_runtime_env_reply__unpack(NULL, body_len, body);
    if (!reply) {
        renv_finish(r, CR_EBADMSG, "undecodable reply from the runtime-env agent", NULL);
        return;
    }
    if (reply->status != RAY__RPC__AGENT_RPC_STATUS__AGENT_RPC_STATUS_OK) {
        snprintf(msg, sizeof msg, "%s", reply->error_message ? reply->error_message : "runtime env setup failed");
        renv_finish(r, CR_ERPC, msg, NULL);
    } else {
        renv_finish(r, 0, "", reply->serialized_runtime_env_context ? reply->serialized_runtime_env_context : "{}");
    }
    ray__rpc__get_or_create_runtime_env_reply__free_unpacked(reply, NULL);
}

/* Content-Length, once the headers are in; -1 while unknown. */
static long renv_content_length(const renv_req_t *r)
{
    const char *end = r->in_len >= 4 ? memmem(r->in, r->in_len, "\r\n\r\n", 4) : NULL;
    if (!end)
        return -1;
    size_t hdr = (size_t)(end - (const char *)r->in);
    for (size_t i = 0; i + 16 < hdr; i++)
        if (strncasecmp((const char *)r->in + i, "\r\nContent-Length:", 17) == 0)
            return strtol((const char *)r->in + i + 17, NULL, 10);
    return -1;
}

static void renv_on_event(loop_t *loop, int fd, unsigned events, void *data)
{
    renv_req_t *r = data;
    if (r->out_off < r->out_len) {
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr) {
            char msg[128];
            snprintf(msg, sizeof msg, "cannot reach the runtime-env agent: %s", strerror(soerr));
            renv_finish(r, -soerr, msg, NULL);
            return;
        }
        ssize_t w = send(fd, r->out + r->out_off, r->out_len - r->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            renv_finish(r, -errno, "cannot send to the runtime-env agent", NULL);
            return;
        }
        if (w > 0)
            r->out_off += (size_t)w;
        if (r->out_off == r->out_len)
            loop_mod_fd(loop, fd, LOOP_READABLE);
        return;
    }
    for (;;) {
        if (r->in_cap - r->in_len < 4096) {
            r->in_cap = r->in_cap ? r->in_cap * 2 : 8192;
            if (r->in_cap > RENV_MAX_REPLY + 65536) {
                renv_finish(r, CR_ETOOBIG, "reply from the runtime-env agent too large", NULL);
                return;
            }
            r->in = xrealloc(r->in, r->in_cap);
        }
        ssize_t n = recv(fd, r->in + r->in_len, r->in_cap - r->in_len - 1, MSG_DONTWAIT);
        if (n > 0) {
            r->in_len += (size_t)n;
            r->in[r->in_len] = 0;
            long cl = renv_content_length(r);
            const char *end = memmem(r->in, r->in_len, "\r\n\r\n", 4);
            if (cl >= 0 && end && r->in_len >= (size_t)(end - (const char *)r->in) + 4 + (size_t)cl) {
                renv_parse(r);
                return;
            }
            continue;
        }
        if (n == 0) {
            renv_parse(r); /* the agent closed: that is the end of the reply */
            return;
        }
        if (errno == EAGAIN || errno == EINTR)
            return;
        renv_finish(r, -errno, "connection to the runtime-env agent failed", NULL);
        return;
    }
}

static void renv_on_timeout(loop_t *loop, uint64_t id, void *data)
{
    renv_req_t *r = data;
    r->timer = 0;
    renv_finish(r, CR_ETIMEOUT, "runtime env setup timed out", NULL);
}

int renv_get_or_create(renv_client_t *c, const uint8_t job_id[ID_JOB_SIZE], const char *serialized_runtime_env,
                       const uint8_t *runtime_env_config, size_t config_len, renv_done_cb cb, void *ctx)
{
    if (c->port <= 0)
        return CR_ECLOSED;
    Ray__Rpc__GetOrCreateRuntimeEnvRequest req = RAY__RPC__GET_OR_CREATE_RUNTIME_ENV_REQUEST__INIT;
    req.serialized_runtime_env = (char *)serialized_runtime_env;
    /* The agent wants the job id as hex text (it names log files by it). */
    char job_hex[ID_HEX_BUF];
    id_to_hex(job_id, ID_JOB_SIZE, job_hex);
    req.job_id.data = (uint8_t *)job_hex;
    req.job_id.len = 2 * ID_JOB_SIZE;
    req.source_process = "raylet";
    Ray__Rpc__RuntimeEnvConfig *config = NULL;
    if (runtime_env_config && config_len)
        config = ray__rpc__runtime_env_config__unpack(NULL, config_len, runtime_env_config);
    req.runtime_env_config = config;
    size_t body_len = protobuf_c_message_get_packed_size(&req.base);

    renv_req_t *r = xcalloc(1, sizeof *r);
    r->c = c;
    r->cb = cb;
    r->ctx = ctx;
    /* The token is at most AUTH_TOKEN_MAX bytes (checked when loaded). */
    char head[512 + AUTH_TOKEN_MAX];
    int hl = snprintf(head, sizeof head,
                      "POST /get_or_create_runtime_env HTTP/1.1\r\nHost: %s:%d\r\n"
                      "Content-Type: application/octet-stream\r\nContent-Length: %zu\r\n%s%s%s"
                      "Connection: close\r\n\r\n",
                      c->ip, c->port, body_len, c->authorization ? "Authorization: " : "",
                      c->authorization ? c->authorization : "", c->authorization ? "\r\n" : "");
    if (hl < 0 || (size_t)hl >= sizeof head) {
        free(r);
        if (config)
            ray__rpc__runtime_env_config__free_unpacked(config, NULL);
        return CR_ETOOBIG;
    }
    r->out_len = (size_t)hl + body_len;
    r->out = xmalloc(r->out_len);
    memcpy(r->out, head, (size_t)hl);
    protobuf_c_message_pack(&req.base, r->out + hl);
    if (config)
        ray__rpc__runtime_env_config__free_unpacked(config, NULL);

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
    r->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (r->fd < 0 || inet_pton(AF_INET, c->ip, &addr.sin_addr) != 1 ||
        (connect(r->fd, (struct sockaddr *)&addr, sizeof addr) != 0 && errno != EINPROGRESS) ||
        loop_add_fd(c->loop, r->fd, LOOP_WRITABLE, renv_on_event, r) != 0) {
        int err = errno ? -errno : CR_ERPC;
        if (r->fd >= 0)
            close(r->fd);
        free(r->out);
        free(r);
        return err;
    }
    r->timer = loop_add_timer(c->loop, c->timeout_ms, renv_on_timeout, r);
    r->next = c->reqs;
    c->reqs = r;
    return 0;
}

renv_client_t *renv_client_create(loop_t *loop, const char *ip, int port, uint64_t timeout_ms,
                                  const char *authorization)
{
    renv_client_t *c = xcalloc(1, sizeof *c);
    c->authorization = authorization ? xstrdup(authorization) : NULL;
    c->loop = loop;
    snprintf(c->ip, sizeof c->ip, "%s", ip);
    c->port = port;
    c->timeout_ms = timeout_ms ? timeout_ms : 600000;
    return c;
}

void renv_client_destroy(renv_client_t *c)
{
    if (!c)
        return;
    while (c->reqs)
        renv_req_free(c->reqs);
    free(c->authorization);
    free(c);
}
