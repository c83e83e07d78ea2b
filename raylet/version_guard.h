/* The Ray release craylet was built for, against the one launching it.
 *
 * craylet speaks the protocol of the Ray wheel it was compiled against
 * (proto/gen/ray_version.h); another release may renumber channels or
 * rename services and leave a node that registers but half works.  The
 * launching release is read from the `ray` package whose
 * default_worker.py is in --python_worker_command: that package's
 * _version.py names it.  A mismatch stops craylet before it registers. */
#ifndef CRAYLET_RAYLET_VERSION_GUARD_H
#define CRAYLET_RAYLET_VERSION_GUARD_H

#include <stddef.h>

/* The version string of the ray package that `worker_command` runs, into
 * `out`.  Returns 0, or CR_EBADMSG when the command names no
 * default_worker.py or its package has no readable version. */
int version_guard_launcher(const char *worker_command, char *out, size_t outlen);

/* Compare the built-for release with the launcher's.  Returns 0 when they
 * match or the launcher cannot be told (a warning is logged); otherwise 2,
 * the exit code, with the one-line explanation in `why`. */
int version_guard_check(const char *worker_command, char *why, size_t whylen);

#endif
