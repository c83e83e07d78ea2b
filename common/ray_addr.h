/* A Ray process's address (common.proto `Address`, node_manager.fbs
 * `Address`), decoded at the edge into plain data: who owns an object and
 * where to reach it. */
#ifndef CRAYLET_COMMON_RAY_ADDR_H
#define CRAYLET_COMMON_RAY_ADDR_H

#include <stdbool.h>
#include <stdint.h>

#include "common/id.h"

#define RAY_ADDR_IP_MAX 64

typedef struct ray_addr {
    id_node_t node_id;     /* nil when not said */
    id_worker_t worker_id; /* nil when not said */
    char ip[RAY_ADDR_IP_MAX]; /* NUL-terminated; "" when not said */
    int32_t port;
} ray_addr_t;

/* Can a call reach it: a worker id, an ip and a port. */
static inline bool ray_addr_reachable(const ray_addr_t *a)
{
    return a->ip[0] != '\0' && a->port > 0 && a->port <= 65535 &&
           !id_is_nil(a->worker_id.b, ID_UNIQUE_SIZE);
}

#endif
