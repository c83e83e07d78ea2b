/* Placement-group bundles on this node: the raylet half of GCS's two-phase
 * commit.
 *
 * Prepare reserves a bundle's resources from the node (with the very GPU
 * instances they occupy), all or nothing per request.  Commit turns the
 * reservation into resources that leases can ask for by name, as Ray names
 * them: <R>_group_<index>_<pg> and the wildcard <R>_group_<pg> with the
 * reserved instance layout (so a lease on GPU_group_<pg> learns the physical
 * GPU index), plus bundle_group_<index>_<pg> and bundle_group_<pg> (1000
 * each).  Return takes those resources away again and gives the reservation
 * back; it fails while any of them is still leased.
 *
 * The GPUs of all bundles of one prepare request are chosen together, by
 * the gang packer when the node has a GPU graph (gpu_gang.h), else by the
 * resource model's lowest-free-index rule. */
#ifndef CRAYLET_RAYLET_SCHED_BUNDLES_H
#define CRAYLET_RAYLET_SCHED_BUNDLES_H

#include <stdbool.h>
#include <stddef.h>

#include "common/id.h"
#include "raylet/sched/gpu_gang.h"
#include "raylet/sched/resources.h"

typedef struct bundles bundles_t;

/* One bundle of a request, decoded by the service.  Borrowed for the call. */
typedef struct bundle_spec {
    uint8_t pg_id[ID_PG_SIZE];
    int32_t index;               /* >= 0 */
    const res_set_t *resources;  /* its unit resources (prepare only; else may be NULL) */
} bundle_spec_t;

/* `gang` (may be NULL: no packing) is borrowed and must outlive the table. */
bundles_t *bundles_create(res_node_t *resources, gpu_gang_t *gang);
/* Frees the table; reservations still held are given back. */
void bundles_destroy(bundles_t *b);

/* Returns 0, or a negative code with nothing reserved by this call
 * (-EINVAL for a negative index, -EAGAIN when the resources are not free,
 * -ENOSPC when strict GPU packing finds no all-NVLink set here). */
int bundles_prepare(bundles_t *b, const bundle_spec_t *specs, size_t n);
/* Unknown or already committed bundles are skipped (GCS retries). */
void bundles_commit(bundles_t *b, const bundle_spec_t *specs, size_t n);
/* 0 (also for an unknown bundle), -EBUSY while its resources are leased. */
int bundles_return(bundles_t *b, const bundle_spec_t *spec);
/* Return every bundle not listed (after a GCS restart).  Returns how many
 * could not be returned because they are busy. */
size_t bundles_release_unused(bundles_t *b, const bundle_spec_t *in_use, size_t n);

size_t bundles_count(const bundles_t *b);

#endif
