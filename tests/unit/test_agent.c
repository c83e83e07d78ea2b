/* Agent port files and spawning with a real child process. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"
#include "raylet/worker/agent.h"

static const char *node = "abababababababababababababababababababababababababababab";

static void write_file(const char *dir, const char *name, const char *content)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s_%s", dir, name, node);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(content, f);
    fclose(f);
}

Test(agent, port_files)
{
    char dir[] = "/tmp/crt-agent-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    int port = 0;
    cr_assert_eq(agent_read_port_file(dir, "metrics_agent_port", node, &port), -ENOENT);
    write_file(dir, "metrics_agent_port", "51234");
    cr_assert_eq(agent_read_port_file(dir, "metrics_agent_port", node, &port), 0);
    cr_assert_eq(port, 51234);
    write_file(dir, "metrics_export_port", "-1\n");
    cr_assert_eq(agent_read_port_file(dir, "metrics_export_port", node, &port), 0);
    cr_assert_eq(port, -1);
    write_file(dir, "runtime_env_agent_port", "80x");
    cr_assert_eq(agent_read_port_file(dir, "runtime_env_agent_port", node, &port), CR_EBADMSG);
    write_file(dir, "dashboard_agent_listen_port", "70000");
    cr_assert_eq(agent_read_port_file(dir, "dashboard_agent_listen_port", node, &port), CR_EBADMSG);
    write_file(dir, "empty_port", "");
    cr_assert_eq(agent_read_port_file(dir, "empty_port", node, &port), -ENOENT);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(agent, spawn_substitutes_port_and_sets_environment)
{
    char out[] = "/tmp/crt-agent-out-XXXXXX";
    int fd = mkstemp(out);
    cr_assert_geq(fd, 0);
    close(fd);
    /* The agent writes its argv and environment, then waits for stdin EOF,
     * as Ray's agents do with the pipe-based parent check. */
    char command[1024];
    snprintf(command, sizeof command,
             "/bin/sh -c 'echo \"$0 $RAY_NODE_ID $RAY_RAYLET_PID $RAY_enable_pipe_based_agent_to_parent_health_check\" > %s; cat >/dev/null' "
             "--port=RAY_NODE_MANAGER_PORT_PLACEHOLDER",
             out);
    agent_options_t opts = {.name = "test_agent", .command = command, .node_manager_port = 4321,
                            .node_id_hex = node, .pipe_health_check = true};
    agent_t *a = NULL;
    cr_assert_eq(agent_spawn(&opts, &a), 0);
    cr_assert_gt(agent_pid(a), 0);
    char line[512] = "";
    for (int i = 0; i < 500 && !line[0]; i++) {
        FILE *f = fopen(out, "r");
        if (f) {
            if (!fgets(line, sizeof line, f))
                line[0] = '\0';
            fclose(f);
        }
        if (!line[0])
            usleep(10000);
    }
    char expect[512];
    snprintf(expect, sizeof expect, "--port=4321 %s %d 1\n", node, (int)getpid());
    cr_assert_str_eq(line, expect);
    /* Closing our end of the stdin pipe must end the child by itself. */
    pid_t pid = agent_pid(a);
    agent_destroy(a, 2000);
    cr_assert_eq(kill(pid, 0), -1);
    unlink(out);
}

Test(agent, unparsable_command_is_an_error)
{
    agent_options_t opts = {.name = "bad", .command = "python \"unterminated", .node_id_hex = node};
    agent_t *a = NULL;
    cr_assert_neq(agent_spawn(&opts, &a), 0);
    cr_assert_null(a);
}
