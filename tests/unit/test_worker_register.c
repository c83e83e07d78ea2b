/* The raylet socket's registration rules, against a real pool that spawns
 * real (stand-in) worker processes: a claimed pid of 0, a pid other than
 * the connecting process's, a pid other than the spawned one and an unknown
 * worker id are all refused; the pool only ever signals the pid it spawned. */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "raylet/worker/pool.h"

typedef struct env {
    loop_t *loop;
    pool_t *pool;
    worker_t *popped;
    int dead;
} env_t;

static void on_dead(void *ctx, worker_t *w, const worker_exit_t *exit) { ((env_t *)ctx)->dead++; }

static void on_pop(void *ctx, worker_t *w, int err, const char *why, bool env_failed) { ((env_t *)ctx)->popped = w; }

static void env_init_ports(env_t *e, const int *ports, size_t nports, int min_port, int max_port)
{
    memset(e, 0, sizeof *e);
    e->loop = loop_create();
    /* A stand-in worker: sh ignores the flags the pool appends ($0, $1...). */
    pool_options_t o = {.python_worker_command = "/bin/sh -c 'sleep 30'",
                        .node_manager_port = 1,
                        .node_id_hex = "00",
                        .node_ip_address = "127.0.0.1",
                        .maximum_startup_concurrency = 4,
                        .register_timeout_ms = 60000,
                        .idle_timeout_ms = 60000,
                        .worker_port_list = (int *)ports,
                        .worker_port_count = nports,
                        .min_worker_port = min_port,
                        .max_worker_port = max_port};
    pool_callbacks_t cbs = {.on_worker_dead = on_dead};
    e->pool = pool_create(e->loop, NULL, &o, &cbs, e);
    cr_assert_not_null(e->pool);
}

static void env_init(env_t *e) { env_init_ports(e, NULL, 0, 0, 0); }

/* Starts one worker; returns its record (STARTING). */
static worker_t *spawn_one(env_t *e)
{
    uint8_t job[ID_JOB_SIZE] = {1, 0, 0, 0};
    pool_env_t penv = {0};
    pool_pop(e->pool, job, 0, &penv, on_pop, e);
    worker_t *list[4];
    cr_assert_eq(pool_list(e->pool, list, 4), 1);
    cr_assert_eq(worker_state(list[0]), WORKER_STARTING);
    cr_assert_gt(worker_spawned_pid(list[0]), 0);
    return list[0];
}

static void env_fini(env_t *e)
{
    pool_destroy(e->pool);
    loop_destroy(e->loop);
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

Test(worker_register, refusals)
{
    env_t e;
    env_init(&e);
    worker_t *w = spawn_one(&e);
    pid_t spawned = worker_spawned_pid(w);
    uint8_t job[ID_JOB_SIZE] = {1, 0, 0, 0};
    char err[200];

    /* pid 0: would be kill(0, ...) -- the whole process group. */
    cr_assert_null(pool_register(e.pool, NULL, WORKER_TYPE_WORKER, worker_id(w), 0, 0, job, 0, 0, err, sizeof err));
    cr_assert(strstr(err, "invalid worker pid"), "%s", err);
    cr_assert_null(pool_register(e.pool, NULL, WORKER_TYPE_WORKER, worker_id(w), -5, 0, job, 0, 0, err, sizeof err));

    /* The connecting process is someone else than the pid claimed. */
    cr_assert_null(pool_register(e.pool, NULL, WORKER_TYPE_WORKER, worker_id(w), spawned, getpid(), job, 0, 0, err,
                                 sizeof err));
    cr_assert(strstr(err, "not the connecting process"), "%s", err);

    /* A real process (us), honest about its pid, but not the one spawned
     * for this worker id. */
    cr_assert_null(pool_register(e.pool, NULL, WORKER_TYPE_WORKER, worker_id(w), getpid(), getpid(), job, 0, 0, err,
                                 sizeof err));
    cr_assert(strstr(err, "is not the process started"), "%s", err);

    /* An id the pool never handed out. */
    uint8_t unknown[ID_UNIQUE_SIZE];
    memset(unknown, 0x77, sizeof unknown);
    cr_assert_null(pool_register(e.pool, NULL, WORKER_TYPE_WORKER, unknown, spawned, spawned, job, 0, 0, err,
                                 sizeof err));
    cr_assert_str_eq(err, "Unknown worker");

    /* None of that touched the worker: it is still starting, alive, and
     * registers fine under its own pid. */
    cr_assert_eq(worker_state(w), WORKER_STARTING);
    cr_assert_eq(kill(spawned, 0), 0);
    cr_assert_eq(e.dead, 0);
    worker_t *ok = pool_register(e.pool, NULL, WORKER_TYPE_WORKER, worker_id(w), spawned, spawned, job, 0, 0, err,
                                 sizeof err);
    cr_assert_eq(ok, w, "%s", err);
    cr_assert_eq(worker_pid(w), spawned);
    /* A second registration of the same worker id is refused. */
    cr_assert_null(pool_register(e.pool, NULL, WORKER_TYPE_WORKER, worker_id(w), spawned, spawned, job, 0, 0, err,
                                 sizeof err));

    /* Killing it signals exactly the spawned pid. */
    pool_kill(e.pool, w, 0, "test");
    int status;
    cr_assert_eq(waitpid(spawned, &status, 0), spawned);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    cr_assert_eq(e.dead, 1);
    env_fini(&e);
}

Test(worker_register, drivers)
{
    env_t e;
    env_init(&e);
    uint8_t id[ID_UNIQUE_SIZE];
    memset(id, 0x42, sizeof id);
    uint8_t job[ID_JOB_SIZE] = {2, 0, 0, 0};
    uint8_t nil_job[ID_JOB_SIZE];
    memset(nil_job, 0xff, sizeof nil_job);
    char err[200];
    cr_assert_null(pool_register(e.pool, NULL, WORKER_TYPE_DRIVER, id, 0, getpid(), job, 0, 0, err, sizeof err));
    cr_assert_null(pool_register(e.pool, NULL, WORKER_TYPE_DRIVER, id, 1, getpid(), job, 0, 0, err, sizeof err),
                   "pid 1 is not us");
    cr_assert_null(pool_register(e.pool, NULL, WORKER_TYPE_DRIVER, id, getpid(), getpid(), nil_job, 0, 0, err,
                                 sizeof err));
    worker_t *d = pool_register(e.pool, NULL, WORKER_TYPE_DRIVER, id, getpid(), getpid(), job, 0, 0, err, sizeof err);
    cr_assert_not_null(d, "%s", err);
    cr_assert_eq(worker_state(d), WORKER_DRIVER);
    cr_assert_eq(pool_find(e.pool, id), d);
    cr_assert_null(pool_register(e.pool, NULL, WORKER_TYPE_DRIVER, id, getpid(), getpid(), job, 0, 0, err, sizeof err));
    cr_assert(strstr(err, "already registered"), "%s", err);
    uint8_t other[ID_UNIQUE_SIZE];
    memset(other, 0x43, sizeof other);
    cr_assert_null(pool_find(e.pool, other));
    /* A driver is the user's process: killing it only disconnects. */
    pool_kill(e.pool, d, 0, "test");
    cr_assert_eq(e.dead, 1);
    cr_assert_eq(kill(getpid(), 0), 0, "still alive");
    env_fini(&e);
}

/* A loopback TCP socket bound to a free port; returns the fd, *port set. */
static int bound_port(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

static worker_t *register_driver(env_t *e, uint8_t tag)
{
    uint8_t id[ID_UNIQUE_SIZE];
    memset(id, tag, sizeof id);
    uint8_t job[ID_JOB_SIZE] = {tag, 0, 0, 0};
    char err[200];
    worker_t *d = pool_register(e->pool, NULL, WORKER_TYPE_DRIVER, id, getpid(), getpid(), job, 0, 0, err, sizeof err);
    cr_assert_not_null(d, "%s", err);
    return d;
}

/* Every port is handed to one process at a time, a port someone else holds
 * is skipped, and a port comes back when its process goes. */
Test(worker_register, ports)
{
    int ports[3], held[3];
    for (int i = 0; i < 3; i++)
        held[i] = bound_port(&ports[i]);
    close(held[0]);
    close(held[2]); /* ports[1] stays taken by this test */
    env_t e;
    env_init_ports(&e, ports, 3, 0, 0);
    worker_t *a = register_driver(&e, 1), *b = register_driver(&e, 2), *c = register_driver(&e, 3);
    int pa = pool_assigned_port(a), pb = pool_assigned_port(b);
    cr_assert(pa == ports[0] || pa == ports[2], "%d", pa);
    cr_assert(pb == ports[0] || pb == ports[2], "%d", pb);
    cr_assert_neq(pa, pb);
    cr_assert_eq(pool_assigned_port(c), 0, "the held port is never handed out");
    pool_disconnect(e.pool, a, 0, "test");
    worker_t *d = register_driver(&e, 4);
    cr_assert_eq(pool_assigned_port(d), pa, "a freed port is handed out again");
    close(held[1]);
    env_fini(&e);
}

/* Nodes on one host begin their ranges at different ports, so two nodes
 * starting workers at once do not hand out the same port. */
Test(worker_register, port_range_start_varies)
{
    int first[6];
    bool varied = false;
    for (int i = 0; i < 6; i++) {
        env_t e;
        env_init_ports(&e, NULL, 0, 40000, 44999);
        worker_t *d = register_driver(&e, 9);
        first[i] = pool_assigned_port(d);
        cr_assert(first[i] >= 40000 && first[i] <= 44999, "%d", first[i]);
        varied |= first[i] != first[0];
        env_fini(&e);
    }
    cr_assert(varied, "six pools all began at port %d", first[0]);
}
