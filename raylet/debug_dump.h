/* debug_state.txt: a periodic plain-text snapshot of the daemon's state in
 * <log_dir>/debug_state.txt, as the stock raylet keeps one.  `ray
 * cluster-dump` collects it, and people (and some of Ray's tests) read
 * lines such as "- num PYTHON workers: N" from it.
 *
 * The file is written whole to a temporary name and renamed into place, so
 * a reader never sees it half written. */
#ifndef CRAYLET_RAYLET_DEBUG_DUMP_H
#define CRAYLET_RAYLET_DEBUG_DUMP_H

#include <stddef.h>

struct raylet;

/* Starts the period timer (config.debug_dump_period_milliseconds; none when
 * it is 0 or less, or there is no log dir).  Writes once at once. */
void debug_dump_start(struct raylet *r);
void debug_dump_stop(struct raylet *r);

/* Formats the snapshot into buf (always NUL-terminated when cap > 0);
 * returns the length it wanted, like snprintf. */
size_t debug_dump_format(struct raylet *r, char *buf, size_t cap);

#endif
