#include "raylet/service/address.h"

#include <stdio.h>
#include <string.h>

void svc_address_decode(const Ray__Rpc__Address *a, ray_addr_t *out)
{
    memset(out, 0, sizeof *out);
    ID_SET_NIL(&out->node_id);
    ID_SET_NIL(&out->worker_id);
    if (!a)
        return;
    if (a->node_id.len == ID_UNIQUE_SIZE)
        memcpy(out->node_id.b, a->node_id.data, ID_UNIQUE_SIZE);
    if (a->worker_id.len == ID_UNIQUE_SIZE)
        memcpy(out->worker_id.b, a->worker_id.data, ID_UNIQUE_SIZE);
    snprintf(out->ip, sizeof out->ip, "%s", a->ip_address ? a->ip_address : "");
    out->port = a->port;
}
