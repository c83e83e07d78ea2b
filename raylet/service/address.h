/* A Ray process's address off the wire (common.proto `Address`), decoded
 * into plain data.  Untrusted: ids of the wrong length read as nil, an ip
 * too long is cut (and then fails to connect, nothing worse). */
#ifndef CRAYLET_RAYLET_SERVICE_ADDRESS_H
#define CRAYLET_RAYLET_SERVICE_ADDRESS_H

#include "common/ray_addr.h"
#include "proto/ray_proto.h"

/* `a` may be NULL (all nil). */
void svc_address_decode(const Ray__Rpc__Address *a, ray_addr_t *out);

#endif
