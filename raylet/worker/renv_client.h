/* Client of the runtime-env agent (ray/_private/runtime_env/agent): the
 * agent builds a job's runtime environment (env vars, working_dir, pip...)
 * and returns the context a worker needs to enter it.
 *
 * The agent speaks HTTP/1.1 with protobuf bodies:
 *   POST /get_or_create_runtime_env  GetOrCreateRuntimeEnvRequest -> Reply
 * One short connection per request, driven by the event loop; the reply
 * is read until the agent closes the connection or Content-Length is
 * reached.  Environment creation can take minutes (pip), so the deadline
 * is long. */
#ifndef CRAYLET_RAYLET_RENV_CLIENT_H
#define CRAYLET_RAYLET_RENV_CLIENT_H

#include <stdint.h>

#include "common/id.h"
#include "common/loop.h"

typedef struct renv_client renv_client_t;

/* err 0: `context` is the serialized runtime env context for the worker's
 * command line.  Otherwise `message` says why.  Both valid only during the
 * call. */
typedef void (*renv_done_cb)(void *ctx, int err, const char *message, const char *context);

/* `ip`/`port` of the agent (port -1 or 0: no agent; requests then fail). */
/* `authorization` ("Bearer <token>", copied) goes with every request when
 * the cluster uses token authentication; NULL otherwise. */
renv_client_t *renv_client_create(loop_t *loop, const char *ip, int port, uint64_t timeout_ms,
                                  const char *authorization);
/* Drops requests in flight without calling them back. */
void renv_client_destroy(renv_client_t *c);

int renv_get_or_create(renv_client_t *c, const uint8_t job_id[ID_JOB_SIZE], const char *serialized_runtime_env,
                       const uint8_t *runtime_env_config, size_t config_len, renv_done_cb cb, void *ctx);

#endif
