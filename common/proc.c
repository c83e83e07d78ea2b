#include "common/proc.h"

#include "common/alloc.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

char **proc_env_build(const char *const *overrides, size_t count)
{
    size_t base = 0;
    while (environ && environ[base])
        base++;
    char **envp = xmalloc((base + count + 1) * sizeof *envp);
    size_t n = 0;
    for (size_t i = 0; i < base; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t klen = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        int overridden = 0;
        for (size_t j = 0; j < count; j++)
            if (strncmp(overrides[j], environ[i], klen) == 0 && overrides[j][klen] == '=')
                overridden = 1;
        if (!overridden)
            envp[n++] = xstrdup(environ[i]);
    }
    for (size_t j = 0; j < count; j++)
        envp[n++] = xstrdup(overrides[j]);
    envp[n] = NULL;
    return envp;
}

void proc_env_free(char **envp)
{
    if (!envp)
        return;
    for (char **p = envp; *p; p++)
        free(*p);
    free(envp);
}

int proc_spawn(char *const argv[], char *const envp[], const proc_spawn_options_t *opts,
               pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);

    sigset_t empty, all;
    sigemptyset(&empty);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &empty);
    /* Reset every signal the daemon may have set a disposition for. */
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    if (opts) {
        if (opts->stdin_fd >= 0)
            posix_spawn_file_actions_adddup2(&fa, opts->stdin_fd, 0);
        if (opts->stdout_fd >= 0)
            posix_spawn_file_actions_adddup2(&fa, opts->stdout_fd, 1);
        if (opts->stderr_fd >= 0)
            posix_spawn_file_actions_adddup2(&fa, opts->stderr_fd, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
        if (opts->cwd)
            posix_spawn_file_actions_addchdir_np(&fa, opts->cwd);
#endif
    }
    int rc = strchr(argv[0], '/') ? posix_spawn(pid, argv[0], &fa, &attr, argv, envp)
                                  : posix_spawnp(pid, argv[0], &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    return rc == 0 ? 0 : -rc;
}

int proc_terminate(pid_t pid, int grace_ms)
{
    int status;
    if (kill(pid, SIGTERM) != 0 && errno != ESRCH)
        return -errno;
    for (int waited = 0; waited <= grace_ms; waited += 10) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0)
            return -errno;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    if (waitpid(pid, &status, 0) == pid)
        return status;
    return -errno;
}
