/* A queued lease's arguments brought here before it is granted, as the
 * stock raylet's lease dependency manager does: a worker is only handed
 * out once what its task reads is in the local store.
 *
 * Each fetch is a pull at task-argument priority (the lowest: gets and
 * waits of running programs go first) and a wait for every id to be sealed
 * here; when they all are, `ready` is called with the fetch's token.  An
 * argument no node can give becomes an error object in the store (see
 * object_store/transfer/pull.h), which counts as here: the task runs and
 * raises it.  Loop thread only. */
#ifndef CRAYLET_RAYLET_OBJECTS_LEASE_ARGS_H
#define CRAYLET_RAYLET_OBJECTS_LEASE_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/id.h"
#include "common/ray_addr.h"
#include "object_store/store.h"
#include "raylet/objects/obj_wait.h"
#include "raylet/objects/transfer.h"

typedef struct largs largs_t;

typedef void (*largs_ready_fn)(void *ctx, uint64_t token);

/* All borrowed and outliving it; `xfer` may be NULL (nothing to pull from:
 * the ids are waited for). */
largs_t *largs_create(store_t *store, owait_t *owait, xfer_t *xfer, largs_ready_fn ready, void *ctx);
/* Cancels every fetch, with no callback. */
void largs_destroy(largs_t *a);

/* True when every id is local now (nothing started).  Otherwise the fetch
 * runs until `ready` or largs_cancel for the same token. */
bool largs_fetch(largs_t *a, uint64_t token, const id_object_t *ids, const ray_addr_t *owners, size_t n);
/* Unknown tokens are ignored. */
void largs_cancel(largs_t *a, uint64_t token);
size_t largs_count(const largs_t *a);

#endif
