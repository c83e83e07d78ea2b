/* The node's resource model: totals, availability, and allocations.
 *
 * Amounts are fixed point: an int64 counting 1/10000ths (RES_UNIT is 1.0),
 * the granularity Ray itself schedules at, so repeated allocate/free of
 * 0.1 CPU returns exactly to where it started.  Doubles appear only at the
 * edges (flags in, protobuf maps out).
 *
 * "Unit-instance" resources (GPU, and by default neuron_cores, TPU, NPU,
 * HPU, RBLN, as in Ray's predefined/custom_unit_instance_resources) are
 * tracked per device: instance i has its own total and available amount,
 * each at most 1.0.  A whole-number request takes that many fully free
 * instances; a fraction below 1 takes part of one instance; the chosen
 * instance ids come back in the allocation (for CUDA_VISIBLE_DEVICES and
 * the lease reply's resource_mapping).  Other resources are one pooled
 * amount.
 *
 * Every res_node_t is owned by the main loop thread; nothing here locks. */
#ifndef CRAYLET_RAYLET_RESOURCES_H
#define CRAYLET_RAYLET_RESOURCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef int64_t res_amount_t;

#define RES_UNIT ((res_amount_t)10000)
/* Largest amount a resource may hold: 2^62 fixed-point units, i.e. about
 * 4.6e14 whole units (460 TB for the byte-valued memory resources), leaving
 * int64 headroom so adding one accepted amount to another cannot overflow. */
#define RES_AMOUNT_MAX ((res_amount_t)4611686018427387904LL)

/* Convert a double to fixed point, rounding to the nearest 1/10000.  Fails
 * with -EINVAL for a NaN, infinite or negative value and -ERANGE for one
 * above RES_AMOUNT_MAX / RES_UNIT. */
int res_amount_from_double(double value, res_amount_t *out);
double res_amount_to_double(res_amount_t amount);

/* ---- resource sets (requests) ---------------------------------------------- */

/* A map name -> positive amount, kept sorted by name.  Names are copied. */
typedef struct res_set res_set_t;

res_set_t *res_set_create(void);
void res_set_destroy(res_set_t *set);
/* A new set with the same entries. */
res_set_t *res_set_copy(const res_set_t *set);
/* Set the amount for `name` (replacing any previous one); an amount of 0
 * removes it.  -EINVAL for a negative amount, an empty name or a NULL name. */
int res_set_put(res_set_t *set, const char *name, res_amount_t amount);
/* 0 when absent. */
res_amount_t res_set_get(const res_set_t *set, const char *name);
size_t res_set_count(const res_set_t *set);
/* Entry i in name order; the name stays valid until the set changes. */
const char *res_set_name_at(const res_set_t *set, size_t i);
res_amount_t res_set_amount_at(const res_set_t *set, size_t i);

/* ---- node resources -------------------------------------------------------- */

typedef struct res_node res_node_t;

/* `unit_instance_names` is a comma-separated list of the resource names to
 * track per instance; NULL means Ray's default
 * "GPU,neuron_cores,TPU,NPU,HPU,RBLN".  Returns NULL only for an empty
 * name inside the list. */
res_node_t *res_node_create(const char *unit_instance_names);
/* Outstanding allocations must be freed (with res_free) or dropped
 * (res_alloc_destroy) by their owners; the node does not track them. */
void res_node_destroy(res_node_t *node);

bool res_node_is_unit_instance(const res_node_t *node, const char *name);

/* Grow the total (and available) amount of `name` by `amount`, creating the
 * resource if new.  For a unit-instance resource, one new instance of 1.0 is
 * appended per whole unit; a fractional part is dropped with a warning, as
 * the stock raylet builds floor(n) instances from "GPU,1.5".  -EINVAL for an
 * empty name or a negative amount, -ERANGE if the total would pass
 * RES_AMOUNT_MAX.  Adding 0 is a no-op. */
int res_node_add_total(res_node_t *node, const char *name, res_amount_t amount);
/* Append instances with the given totals (each in [0, RES_UNIT]) to a
 * unit-instance-style resource, creating it if new.  Placement-group bundle
 * resources use this so that e.g. "GPU_group_0_<pg>" mirrors exactly the
 * physical GPU instances reserved for the bundle (zeros elsewhere).
 * -EINVAL for an out-of-range amount, or if `name` exists as a pooled
 * resource. */
int res_node_add_instances(res_node_t *node, const char *name, const res_amount_t *totals, size_t count);
/* Add amounts[i] to instance i's total and availability, creating the
 * resource and instances as needed.  Placement-group bundle resources use
 * it so that "GPU_group_<pg>" keeps the physical GPU indices of every
 * bundle of the group, summed index by index.  -EINVAL for a negative
 * amount, an amount above RES_UNIT in one instance, or a pooled `name`. */
int res_node_merge_instances(res_node_t *node, const char *name, const res_amount_t *amounts, size_t count);
/* Take resources away: `amount` from a pooled resource, or amounts[i] from
 * instance i of a per-instance one (`amounts` NULL for pooled).  All or
 * nothing: -EBUSY if any of it is not available (in use), -ENOENT if
 * absent.  A resource whose total reaches zero is removed. */
int res_node_shrink(res_node_t *node, const char *name, res_amount_t amount, const res_amount_t *amounts,
                    size_t count);

/* Set the total of pooled resource `name` to `total`, creating it when new,
 * the way ResizeLocalResourceInstances does: a shrink takes no more than is
 * available, so nothing granted is taken back (a total of zero removes the
 * resource, as res_node_shrink does).  *changed (NULL allowed) says whether
 * anything moved.  -EINVAL for an empty name, a negative total or a
 * unit-instance resource, -ERANGE past RES_AMOUNT_MAX. */
int res_node_resize(res_node_t *node, const char *name, res_amount_t total, bool *changed);

/* Set what is available of a pooled resource measured rather than
 * allocated (object_store_memory: the store's free bytes), clamped to
 * [0, total].  Bumps the version only when the amount changes.  -ENOENT if
 * absent, -EINVAL for a per-instance resource. */
int res_node_set_available(res_node_t *node, const char *name, res_amount_t amount);

/* Forget a resource entirely (placement-group cleanup, drain).  Later
 * res_free() calls skip it.  -ENOENT if absent. */
int res_node_remove(res_node_t *node, const char *name);

/* Totals and availability by name (0 when absent). */
res_amount_t res_node_total(const res_node_t *node, const char *name);
res_amount_t res_node_available(const res_node_t *node, const char *name);

/* A read-only view of one resource, valid until the node next changes. */
typedef struct res_entry {
    const char *name;
    res_amount_t total;
    res_amount_t available;
    bool unit_instance;
    size_t instance_count;                 /* 0 for pooled resources */
    const res_amount_t *instance_total;     /* [instance_count] */
    const res_amount_t *instance_available; /* [instance_count] */
} res_entry_t;

/* Iterate resources in name order: for (i = 0; i < count; i++) entry_at(i). */
size_t res_node_count(const res_node_t *node);
void res_node_entry_at(const res_node_t *node, size_t i, res_entry_t *out);

/* Bumped on every change to totals or availability; RaySyncer messages
 * carry it so receivers can drop stale snapshots.  Starts at 0. */
uint64_t res_node_version(const res_node_t *node);

/* ---- allocation ------------------------------------------------------------- */

/* ---- instance choice ----------------------------------------------------------- */

/* Chooses `want` whole instances of `resource` for a request, from those
 * fully free; writes their ids to ids[0..want) and returns want, or 0 to
 * leave the choice to the default rule (the lowest free ids).  An answer
 * naming an instance that is not fully free, or one twice, is ignored the
 * same way.  Called on the loop thread inside res_allocate(); it must not
 * change the node. */
typedef size_t (*res_picker_fn)(void *ctx, const res_entry_t *resource, size_t want, uint32_t *ids);

/* Route whole-instance requests for `name` (e.g. "GPU") through `fn`; a NULL
 * fn restores the default.  One picker per node; ctx is borrowed. */
void res_node_set_picker(res_node_t *node, const char *name, res_picker_fn fn, void *ctx);

/* What one successful request took.  Owned by the caller: pass it back to
 * res_free() (returns the resources) or res_alloc_destroy() (just forgets). */
typedef struct res_alloc res_alloc_t;

/* Could `request` be granted now (0), later once something is freed
 * (-EAGAIN), or never on this node as it stands (-ENOSPC: an unknown
 * resource, more than the total, or more whole instances than exist)?
 * -EINVAL for a malformed request (a fractional unit-instance amount above
 * 1.0).  Changes nothing. */
int res_check(const res_node_t *node, const res_set_t *request);
/* All-or-nothing: either every resource in `request` is taken and *out is
 * the record, or the node is left exactly as it was and the error is as for
 * res_check().  An empty request succeeds with an empty record. */
int res_allocate(res_node_t *node, const res_set_t *request, res_alloc_t **out);
/* As res_allocate(), but the whole instances of `name` are exactly
 * ids[0..n) (a gang plan chosen for several requests together): -EINVAL
 * unless the request asks for n whole instances of `name`, -EAGAIN unless
 * every one of them is fully free.  Nothing is taken on failure. */
int res_allocate_pinned(res_node_t *node, const res_set_t *request, const char *name, const uint32_t *ids,
                        size_t n, res_alloc_t **out);
/* Return what `alloc` took and destroy it.  Resources removed since are
 * skipped; availability never rises above the current total. */
void res_free(res_node_t *node, res_alloc_t *alloc);
void res_alloc_destroy(res_alloc_t *alloc);

/* One resource within an allocation. */
typedef struct res_grant {
    const char *name;
    res_amount_t amount;                 /* the amount requested */
    size_t instance_count;               /* instances touched; 0 for pooled */
    const uint32_t *instance_ids;        /* [instance_count], ascending */
    const res_amount_t *instance_amounts; /* [instance_count], taken from each */
} res_grant_t;

size_t res_alloc_count(const res_alloc_t *alloc);
/* Grants in name order. */
void res_alloc_at(const res_alloc_t *alloc, size_t i, res_grant_t *out);
/* The grant for `name`; false if the allocation holds none. */
bool res_alloc_find(const res_alloc_t *alloc, const char *name, res_grant_t *out);

/* ---- the --static_resource_list format --------------------------------------- */

/* Called once per parsed pair; `name` is NUL-terminated and only valid for
 * the call.  A negative return stops parsing and is passed up. */
typedef int (*res_list_cb)(void *ctx, const char *name, double value);

/* Parse "CPU,8,GPU,1,memory,1e9,..." (name,value pairs separated by commas;
 * "" is an empty list).  Values must be finite, non-negative decimal
 * numbers not above RES_AMOUNT_MAX / RES_UNIT; pairs whose value rounds to
 * zero at 1/10000 are skipped, as the stock raylet drops zero resources.
 * Names must be non-empty, without control characters, and unique.
 * Returns 0, the callback's error, or CR_EBADFLAG with a short reason
 * (without the flag name) in err. */
int res_parse_list(const char *text, res_list_cb cb, void *ctx, char *err, size_t err_len);

#endif
