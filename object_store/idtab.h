/* A hash table of ObjectIDs with intrusive nodes.
 *
 * The store indexes its objects, and the get requests waiting for objects
 * that do not exist yet, by the 28-byte ObjectID.  Clients choose those IDs,
 * so the hash is keyed with a per-table random seed: a client cannot line
 * up IDs that collide and turn lookups into list walks.
 *
 * Nodes are embedded in the caller's structs (recover the struct with
 * offsetof); the table never allocates or frees them.  Not thread-safe. */
#ifndef CRAYLET_OBJECT_STORE_IDTAB_H
#define CRAYLET_OBJECT_STORE_IDTAB_H

#include <stddef.h>
#include <stdint.h>

#include "common/id.h"

typedef struct idtab_node {
    struct idtab_node *next; /* private */
    uint64_t hash;           /* private */
    id_object_t id;          /* set by the caller before insert; constant while inserted */
} idtab_node_t;

typedef struct idtab idtab_t;

/* Returns NULL only if the allocator does. */
idtab_t *idtab_create(void);
/* For bookkeeping tables: never NULL, aborts with a logged reason as the
 * wrappers of common/alloc.h do. */
idtab_t *idtab_xcreate(void);
/* Frees the table only; nodes still inserted are the caller's business. */
void idtab_destroy(idtab_t *t);

idtab_node_t *idtab_find(const idtab_t *t, const id_object_t *id);
/* Returns 0, or -EEXIST (nothing changed) if the ID is present.  Never
 * fails for lack of memory: a table that cannot grow just gets fuller. */
int idtab_insert(idtab_t *t, idtab_node_t *n);
/* n must be in the table. */
void idtab_remove(idtab_t *t, idtab_node_t *n);
size_t idtab_count(const idtab_t *t);

/* Iteration in no particular order.  Removing the current node is allowed
 * if the next one was fetched first. */
idtab_node_t *idtab_first(const idtab_t *t);
idtab_node_t *idtab_next(const idtab_t *t, const idtab_node_t *n);

#endif
