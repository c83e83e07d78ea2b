/* The two Python agents every raylet runs: the dashboard agent and the
 * runtime-env agent.
 *
 * Each is a direct child started from its command-line flag with
 * RAY_NODE_MANAGER_PORT_PLACEHOLDER replaced by our bound gRPC port, and
 * the environment Ray's agents read (RAY_NODE_ID, RAY_RAYLET_PID, and the
 * pipe-based parent check).  Its stdin is a pipe we hold open: the agent
 * exits on EOF, so it dies with us even after a SIGKILL.  The raylet
 * fate-shares with its agents: the owner watches for their exit (SIGCHLD)
 * and shuts down when one dies. */
#ifndef CRAYLET_RAYLET_AGENT_H
#define CRAYLET_RAYLET_AGENT_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct agent agent_t;

typedef struct agent_options {
    const char *name;           /* for logs, e.g. "dashboard_agent" */
    const char *command;        /* the flag's value, a whole command line */
    int node_manager_port;      /* substituted for the placeholder */
    const char *node_id_hex;
    bool pipe_health_check;     /* RAY_enable_pipe_based_agent_to_parent_health_check */
    int stdout_fd, stderr_fd;   /* the agent's fd 1 and 2; <= 0: inherit ours */
} agent_options_t;

/* Starts the agent.  Returns 0 and *out, or a negative code (logged). */
int agent_spawn(const agent_options_t *opts, agent_t **out);
pid_t agent_pid(const agent_t *agent);
const char *agent_name(const agent_t *agent);
/* Record that the process was reaped elsewhere (SIGCHLD handler). */
void agent_mark_exited(agent_t *agent, int wait_status);
bool agent_exited(const agent_t *agent);
/* Stops a live agent (stdin EOF + SIGTERM, SIGKILL after grace_ms) and frees it. */
void agent_destroy(agent_t *agent, int grace_ms);

/* Reads <session_dir>/<port_name>_<node_id_hex>, the file Ray's agents write
 * once their servers are bound.  Returns 0 and *port (-1 means "service not
 * available", a legal value), -ENOENT while the file is not there yet, or
 * CR_EBADMSG if its content is not a port. */
int agent_read_port_file(const char *session_dir, const char *port_name, const char *node_id_hex,
                         int *port);

#endif
