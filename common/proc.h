/* Child processes: spawned from a parsed argv with posix_spawn (never a
 * shell), with a clean signal state.
 *
 * The daemon blocks SIGTERM/SIGINT/SIGCHLD to read them from a signalfd; a
 * child must not inherit that mask or it would ignore `ray stop`. */
#ifndef CRAYLET_COMMON_PROC_H
#define CRAYLET_COMMON_PROC_H

#include <stddef.h>
#include <sys/types.h>

/* Environment = the daemon's own, with each "KEY=VALUE" in `overrides`
 * replacing or adding that key.  Returns a NULL-terminated array owned by
 * the caller (free with proc_env_free). */
char **proc_env_build(const char *const *overrides, size_t count);
void proc_env_free(char **envp);

typedef struct proc_spawn_options {
    int stdin_fd;  /* dup'ed to 0 in the child, or -1 to inherit */
    int stdout_fd; /* dup'ed to 1, or -1 to inherit */
    int stderr_fd; /* dup'ed to 2, or -1 to inherit */
    const char *cwd; /* NULL: inherit */
} proc_spawn_options_t;

/* argv[0] is searched in PATH when it has no slash.  Returns 0 and *pid, or
 * -errno. */
int proc_spawn(char *const argv[], char *const envp[], const proc_spawn_options_t *opts,
               pid_t *pid);

/* SIGTERM, wait up to grace_ms, then SIGKILL and reap.  Returns the wait
 * status, or -errno (e.g. -ECHILD when already reaped). */
int proc_terminate(pid_t pid, int grace_ms);

#endif
