#include "raylet/worker/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/cmdline.h"
#include "common/error.h"
#include "common/log.h"
#include "common/proc.h"

struct agent {
    char *name;
    pid_t pid;
    int stdin_pipe; /* our write end; closing it tells the agent to exit */
    bool exited;
    int wait_status;
};

int agent_spawn(const agent_options_t *opts, agent_t **out)
{
    char port[16];
    snprintf(port, sizeof port, "%d", opts->node_manager_port);
    char *line = cmdline_replace(opts->command, "RAY_NODE_MANAGER_PORT_PLACEHOLDER", port);
    char **argv = NULL;
    size_t argc = 0;
    int rc = cmdline_split(line, &argv, &argc);
    free(line);
    if (rc != 0 || argc == 0) {
        log_error("cannot parse the %s command line", opts->name);
        cmdline_free(argv);
        return rc ? rc : CR_EBADMSG;
    }

    char env_node[128], env_pid[64], env_pipe[96];
    snprintf(env_node, sizeof env_node, "RAY_NODE_ID=%s", opts->node_id_hex);
    snprintf(env_pid, sizeof env_pid, "RAY_RAYLET_PID=%d", (int)getpid());
    snprintf(env_pipe, sizeof env_pipe, "RAY_enable_pipe_based_agent_to_parent_health_check=%d",
             opts->pipe_health_check ? 1 : 0);
    const char *overrides[] = {env_node, env_pid, env_pipe};
    char **envp = proc_env_build(overrides, 3);

    int fds[2] = {-1, -1};
    if (pipe2(fds, O_CLOEXEC) != 0) {
        rc = -errno;
        log_error("cannot create the %s stdin pipe: %s", opts->name, strerror(errno));
        goto out;
    }
    proc_spawn_options_t so = {.stdin_fd = fds[0], 
                               .stdout_fd = opts->stdout_fd > 0 ? opts->stdout_fd : -1,
                               .stderr_fd = opts->stderr_fd > 0 ? opts->stderr_fd : -1};
    pid_t pid;
    rc = proc_spawn(argv, envp, &so, &pid);
    close(fds[0]);
    if (rc != 0) {
        log_error("cannot start %s (%s): %s", opts->name, argv[0], cr_strerror(rc));
        close(fds[1]);
        goto out;
    }
    agent_t *a = xcalloc(1, sizeof *a);
    a->name = strdup(opts->name);
    a->pid = pid;
    a->stdin_pipe = fds[1];
    log_info("started %s, pid %d", opts->name, (int)pid);
    *out = a;
out:
    proc_env_free(envp);
    cmdline_free(argv);
    return rc;
}

pid_t agent_pid(const agent_t *a) { return a->pid; }
const char *agent_name(const agent_t *a) { return a->name; }
bool agent_exited(const agent_t *a) { return a->exited; }

void agent_mark_exited(agent_t *a, int wait_status)
{
    a->exited = true;
    a->wait_status = wait_status;
}

void agent_destroy(agent_t *a, int grace_ms)
{
    if (!a)
        return;
    if (a->stdin_pipe >= 0)
        close(a->stdin_pipe);
    if (!a->exited)
        proc_terminate(a->pid, grace_ms);
    free(a->name);
    free(a);
}

int agent_read_port_file(const char *session_dir, const char *port_name, const char *node_id_hex,
                         int *port)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s_%s", session_dir, port_name, node_id_hex) >= sizeof path)
        return -ENAMETOOLONG;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char buf[32];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -ENOENT; /* created but not yet written: treat as absent */
    buf[n] = '\0';
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 10);
    while (*end == '\n' || *end == ' ' || *end == '\r')
        end++;
    if (errno || end == buf || *end || v < -1 || v > 65535)
        return CR_EBADMSG;
    *port = (int)v;
    return 0;
}
