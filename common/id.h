/* Ray's binary identifiers.
 *
 * Ray IDs are fixed-size byte strings.  On the wire (flatbuffer strings,
 * protobuf bytes) they travel raw; on command lines, in file names and in
 * logs they are lowercase hex.  Nil is all 0xff bytes, not zero.
 *
 * Sizes (Ray 2.54), and how the derived ones embed their parents:
 *   UniqueID, NodeID, WorkerID, ClusterID, FunctionID  28
 *   JobID             4   uint32, little-endian
 *   ActorID          16   12 unique bytes + JobID
 *   TaskID           24   8 unique bytes + ActorID
 *   ObjectID         28   TaskID + 4-byte little-endian index
 *   PlacementGroupID 18   14 unique bytes + JobID
 *   LeaseID          32   (opaque to the raylet; built by lease requesters)
 *
 * Each kind has its own struct so a NodeID cannot be passed where a WorkerID
 * is wanted; the generic functions take (bytes, size) and the ID_* macros
 * apply them to any of the structs.  Everything coming from a peer goes
 * through id_from_binary() or id_from_hex(), which insist on the exact
 * size. */
#ifndef CRAYLET_COMMON_ID_H
#define CRAYLET_COMMON_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/error.h"

#define ID_UNIQUE_SIZE 28
#define ID_JOB_SIZE 4
#define ID_ACTOR_SIZE 16
#define ID_TASK_SIZE 24
#define ID_OBJECT_SIZE 28
#define ID_PG_SIZE 18
#define ID_LEASE_SIZE 32
#define ID_MAX_SIZE 32
/* Room for the hex form of any ID plus its NUL. */
#define ID_HEX_BUF (2 * ID_MAX_SIZE + 1)

typedef struct { uint8_t b[ID_UNIQUE_SIZE]; } id_unique_t;
typedef struct { uint8_t b[ID_UNIQUE_SIZE]; } id_node_t;
typedef struct { uint8_t b[ID_UNIQUE_SIZE]; } id_worker_t;
typedef struct { uint8_t b[ID_UNIQUE_SIZE]; } id_cluster_t;
typedef struct { uint8_t b[ID_JOB_SIZE]; } id_job_t;
typedef struct { uint8_t b[ID_ACTOR_SIZE]; } id_actor_t;
typedef struct { uint8_t b[ID_TASK_SIZE]; } id_task_t;
typedef struct { uint8_t b[ID_OBJECT_SIZE]; } id_object_t;
typedef struct { uint8_t b[ID_PG_SIZE]; } id_pg_t;
typedef struct { uint8_t b[ID_LEASE_SIZE]; } id_lease_t;

/* Raw bytes from a peer: exactly size bytes, else CR_EBADMSG (out is then
 * set to nil). */
int id_from_binary(const void *data, size_t len, uint8_t *out, size_t size)
    __attribute__((warn_unused_result));
/* Hex of exactly 2*size digits, either case; anything else is CR_EBADMSG
 * (out is then set to nil).  hex need not be NUL-terminated. */
int id_from_hex(const char *hex, size_t hex_len, uint8_t *out, size_t size)
    __attribute__((warn_unused_result));
/* Writes 2*size lowercase digits and a NUL; returns out. */
char *id_to_hex(const uint8_t *id, size_t size, char *out);
/* Random bytes from getrandom(2).  Returns 0 or -errno. */
int id_random(uint8_t *out, size_t size) __attribute__((warn_unused_result));
void id_set_nil(uint8_t *id, size_t size);
bool id_is_nil(const uint8_t *id, size_t size);

/* The job an ID belongs to (the trailing JobID bytes). */
id_job_t id_job_of_actor(const id_actor_t *a);
id_job_t id_job_of_task(const id_task_t *t);
id_job_t id_job_of_object(const id_object_t *o);
id_job_t id_job_of_pg(const id_pg_t *pg);
id_task_t id_task_of_object(const id_object_t *o);
uint32_t id_object_index(const id_object_t *o);
id_job_t id_job_from_int(uint32_t v);
uint32_t id_job_to_int(const id_job_t *j);

/* Typed conveniences; p is a pointer to any of the id_*_t structs. */
#define ID_FROM_BINARY(p, data, len) id_from_binary((data), (len), (p)->b, sizeof((p)->b))
#define ID_FROM_HEX(p, hex, len) id_from_hex((hex), (len), (p)->b, sizeof((p)->b))
#define ID_TO_HEX(p, out) id_to_hex((p)->b, sizeof((p)->b), (out))
#define ID_RANDOM(p) id_random((p)->b, sizeof((p)->b))
#define ID_SET_NIL(p) id_set_nil((p)->b, sizeof((p)->b))
#define ID_IS_NIL(p) id_is_nil((p)->b, sizeof((p)->b))
#define ID_EQUAL(p, q) (sizeof((p)->b) == sizeof((q)->b) && !memcmp((p)->b, (q)->b, sizeof((p)->b)))

#endif
