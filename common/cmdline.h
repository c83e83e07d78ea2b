/* Splitting a command string into argv, as the raylet receives worker and
 * agent commands: one flag value holding a whole command line.
 *
 * Ray quotes these with Python's subprocess.list2cmdline; the stock raylet
 * splits them POSIX-style.  We accept what both agree on: whitespace
 * separates words; "double quotes" group, with \" and \\ escapes inside;
 * 'single quotes' group literally; a backslash outside quotes escapes the
 * next character.  No shell is involved anywhere. */
#ifndef CRAYLET_COMMON_CMDLINE_H
#define CRAYLET_COMMON_CMDLINE_H

#include <stddef.h>

/* On success *argv_out is a NULL-terminated array (owned by the caller, free
 * with cmdline_free) and *argc_out its length.  Returns CR_EBADMSG for an
 * unterminated quote or a trailing backslash. */
int cmdline_split(const char *line, char ***argv_out, size_t *argc_out);
void cmdline_free(char **argv);

/* Replace every occurrence of `needle` in `s` with `with`; returns a new
 * string owned by the caller. */
char *cmdline_replace(const char *s, const char *needle, const char *with);

#endif
