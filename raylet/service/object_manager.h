/* ObjectManagerService on --object_manager_port: Push (a chunk of an object
 * this node pulls), Pull (another node asks for an object held here) and
 * FreeObjects (a 2.54 raylet frees copies cluster-wide).  Each handler
 * checks what it decoded, hands plain data to the transfer component or
 * the store, and answers; a refused chunk is logged with its reason and
 * still answered OK, as the stock raylet does (the sender does not resend:
 * the puller asks again).  Loop thread only. */
#ifndef CRAYLET_RAYLET_SERVICE_OBJECT_MANAGER_H
#define CRAYLET_RAYLET_SERVICE_OBJECT_MANAGER_H

#include "common/rpc.h"
#include "object_store/store.h"
#include "raylet/objects/transfer.h"

typedef struct om_service om_service_t;

/* Registers the methods on `server` (before rpc_server_start); `xfer` and
 * `store` are borrowed and must outlive the service.  NULL on failure
 * (logged). */
om_service_t *om_service_create(rpc_server_t *server, xfer_t *xfer, store_t *store);
/* Later calls are answered UNAVAILABLE.  Idempotent. */
void om_service_stop(om_service_t *svc);
void om_service_destroy(om_service_t *svc);

#endif
