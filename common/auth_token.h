/* Ray's token authentication, as configured for the processes of a node.
 *
 * With RAY_AUTH_MODE=token in the environment (Ray 2.60 turns it on for
 * every new local cluster), every gRPC call between Ray's processes, and
 * the runtime-env agent's HTTP requests, carry `authorization: Bearer
 * <token>`, and servers refuse calls without it.  The token comes, as in
 * Ray, from RAY_AUTH_TOKEN, else the file RAY_AUTH_TOKEN_PATH names, else
 * ~/.ray/auth_token; surrounding whitespace is dropped. */
#ifndef CRAYLET_COMMON_AUTH_TOKEN_H
#define CRAYLET_COMMON_AUTH_TOKEN_H

#include <stddef.h>

/* Longer tokens are refused (Ray's are 64 hex characters). */
#define AUTH_TOKEN_MAX 4096

/* Read the mode and the token from the environment.  Returns 0 with
 * *authorization set to a new "Bearer <token>" string (free() it), or to
 * NULL when token authentication is off; or -ENOENT (token mode but no
 * token found) or -EINVAL (unreadable or malformed token), with the reason
 * in `err`. */
int auth_token_load(char **authorization, char *err, size_t errlen);

#endif
