/* What the daemon's children print before they set up their own logs.
 *
 * Workers and agents start with the raylet's stdout and stderr.  Handing
 * them our descriptors of raylet.out/raylet.err would let every child keep
 * those files open for its whole life (and write into them unsynchronised
 * with our log lines).  Like the stock raylet, which redirects its own
 * output through a pipe, children get the write ends of two pipes instead;
 * the loop copies what arrives into the daemon's stdout and stderr, so an
 * early crash of a worker (an import error, say) still shows in raylet.err.
 *
 * The read ends are close-on-exec and non-blocking; the write ends are
 * close-on-exec in the daemon and reach a child only as its fd 1 and 2. */
#ifndef CRAYLET_RAYLET_WORKER_CHILD_OUTPUT_H
#define CRAYLET_RAYLET_WORKER_CHILD_OUTPUT_H

#include "common/loop.h"

typedef struct child_output child_output_t;

/* Copies into `out_fd` and `err_fd` (borrowed; usually 1 and 2).  Returns
 * NULL with *err set if the pipes cannot be made (logged). */
child_output_t *child_output_create(loop_t *loop, int out_fd, int err_fd, int *err);
/* Descriptors to dup2 onto a child's fd 1 and 2; owned by the relay. */
int child_output_stdout(const child_output_t *co);
int child_output_stderr(const child_output_t *co);
/* Copies what is already in the pipes, stops watching them, closes all
 * four ends.  Idempotent. */
void child_output_stop(child_output_t *co);
void child_output_destroy(child_output_t *co);

#endif
