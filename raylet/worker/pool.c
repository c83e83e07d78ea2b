#include "raylet/worker/core_worker_client.h"
#include "raylet/worker/pool.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/list.h"
#include "common/cmdline.h"
#include "common/base64.h"
#include "common/error.h"
#include "common/log.h"
#include "common/numa.h"
#include "common/proc.h"
#include "proto/ray_proto.h"
#include "raylet/worker/worker_int.h"
#include "raylet/worker/renv_client.h"
#include "raylet/sched/lease_mgr.h"

#define POOL_REAP_PERIOD_MS 200
#define POOL_KILL_GRACE_MS 3000
#define POOL_EXIT_TIMEOUT_MS 5000

struct pool_pop {
    list_t node; /* pool->pops, oldest first */
    int gpu_kind; /* 1: CPU-only work, 2: GPU work */
    bool actor;   /* needs a worker that never ran normal tasks */
    bool detached; /* for a detached actor's tree: kept when its job ends */
    uint64_t id; /* runtime-env replies find their pop by id: it may be gone */
    uint8_t job_id[ID_JOB_SIZE];
    int language;
    int runtime_env_hash;
    char *env;          /* serialized runtime env, NULL for none */
    uint8_t *env_config;
    size_t env_config_len;
    bool env_requested; /* the agent is building it */
    char *env_context;  /* its answer, once ready */
    pool_pop_cb cb;
    void *ctx;
};

struct pool {
    loop_t *loop;
    cq_bridge_t *bridge;
    pool_options_t opts;
    char **argv_template; /* the parsed --python_worker_command */
    size_t argc_template;
    char *preload_arg;    /* --worker-preload-modules=..., or NULL */
    char *io_config_arg;  /* --object-spilling-config=<base64>, or NULL: no I/O workers */
    int *ports; /* free worker ports, a ring: handed out from the head, returned to the tail */
    size_t port_head, port_count, port_cap;
    pool_callbacks_t cbs;
    void *ctx;
    list_t workers; /* worker_t, newest first */
    idtab_t *by_id; /* the same workers by worker id: messages name their worker */
    list_t pops;    /* pool_pop_t waiting, oldest first */
    uint64_t reap_timer;
    bool destroying;
    renv_client_t *renv;
    uint64_t next_pop_id;
    cpu_set_t own_cpus; /* the daemon's CPUs: what an unbound worker may use */
    uint64_t memory_nodes; /* NUMA nodes with memory here (bit per node) */
    uint64_t started_total;
};

/* An Exit call in flight on the worker's channel.  It is the worker
 * record's (w->exit_calls) until answered: the channel goes with the
 * record, silencing the call, and the record frees what is left. */
typedef struct pool_exit_call {
    struct pool_exit_call *next;
    pool_t *pool;
    uint8_t id[ID_UNIQUE_SIZE];
} pool_exit_call_t;

static void pool_pop_free(pool_pop_t *p)
{
    free(p->env);
    free(p->env_config);
    free(p->env_context);
    free(p);
}

static uint64_t pool_wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static bool pool_job_eq(const uint8_t *a, const uint8_t *b) { return memcmp(a, b, ID_JOB_SIZE) == 0; }

/* Can a worker started for `have` serve `want`?  Prestarted workers belong
 * to no job (nil id) until their first lease gives them one. */
static bool pool_job_fits(const uint8_t *have, const uint8_t *want)
{
    return pool_job_eq(have, want) || id_is_nil(have, ID_JOB_SIZE);
}

/* Hand `w` to a lease of `job`: a job-less worker joins that job for good. */
static void pool_assign_job(worker_t *w, const uint8_t job[ID_JOB_SIZE])
{
    if (id_is_nil(w->job_id, ID_JOB_SIZE))
        memcpy(w->job_id, job, ID_JOB_SIZE);
}

/* ---- worker ports ---------------------------------------------------------- */

static bool pool_port_bindable(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static void pool_give_port(pool_t *pool, int port)
{
    /* The ring holds every configured port once, so it cannot overflow
     * unless a port is returned twice; that one is dropped. */
    if (port <= 0 || pool->port_count == pool->port_cap)
        return;
    pool->ports[(pool->port_head + pool->port_count) % pool->port_cap] = port;
    pool->port_count++;
}

/* Ports are tried in order and a port some other process holds is skipped
 * (and goes to the tail) rather than handed to a worker that would then
 * fail to bind. */
static int pool_take_port(pool_t *pool)
{
    for (size_t tries = pool->port_count; tries > 0; tries--) {
        int port = pool->ports[pool->port_head];
        pool->port_head = (pool->port_head + 1) % pool->port_cap;
        pool->port_count--;
        if (pool_port_bindable(port))
            return port;
        pool_give_port(pool, port);
    }
    return 0;
}

/* The configured ports, starting at a random one.  The bind probe above
 * cannot see a port another node on this host has handed out but whose
 * worker has not bound yet; nodes that all began at the range's first port
 * would hand out the same sequence and collide exactly then (stock Ray
 * does), while random starts keep two nodes' sequences apart. */
static void pool_load_ports(pool_t *pool, const pool_options_t *opts)
{
    size_t n = 0;
    if (opts->worker_port_count > 0)
        n = opts->worker_port_count;
    else if (opts->min_worker_port > 0 && opts->max_worker_port >= opts->min_worker_port)
        n = (size_t)(opts->max_worker_port - opts->min_worker_port) + 1;
    if (n == 0)
        return;
    pool->ports = xmalloc(n * sizeof *pool->ports);
    pool->port_cap = n;
    unsigned int seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
        seed = (unsigned int)getpid() ^ (unsigned int)time(NULL);
    size_t start = seed % n;
    for (size_t i = 0; i < n; i++) {
        size_t k = (start + i) % n;
        pool_give_port(pool, opts->worker_port_count > 0 ? opts->worker_port_list[k]
                                                         : opts->min_worker_port + (int)k);
    }
}

/* ---- lists ------------------------------------------------------------------ */

/* The one place the daemon signals a process: only a worker this pool
 * spawned, by the pid posix_spawn returned, and only until it is reaped
 * (pid is -1 after that, so a recycled pid is never hit).  Drivers are the
 * user's processes and are never signalled. */
static void pool_signal(const worker_t *w, int sig)
{
    if (w->type == WORKER_TYPE_DRIVER || w->pid <= 0)
        return;
    if (kill(w->pid, sig) != 0 && errno != ESRCH)
        log_warn("cannot signal worker %s (pid %d): %s", w->id_hex, (int)w->pid, strerror(errno));
}

static void pool_link_worker(pool_t *pool, worker_t *w) { list_insert_head(&pool->workers, &w->node); }

_Static_assert(ID_UNIQUE_SIZE == sizeof(id_object_t), "worker ids share the object-id table");

/* Enters a new worker into the pool; fails (nothing changed) if its id is
 * taken, which only a client's chosen id (a driver's) can make happen. */
static int pool_add_worker(pool_t *pool, worker_t *w)
{
    memcpy(w->by_id.id.b, w->id, ID_UNIQUE_SIZE);
    int rc = idtab_insert(pool->by_id, &w->by_id);
    if (rc == 0)
        pool_link_worker(pool, w);
    return rc;
}
static void pool_unlink_worker(worker_t *w) { list_remove(&w->node); }
static void pool_unlink_pop(pool_pop_t *p) { list_remove(&p->node); }
static worker_t *pool_worker_of(list_t *n) { return LIST_ENTRY(n, worker_t, node); }
static pool_pop_t *pool_pop_of(list_t *n) { return LIST_ENTRY(n, pool_pop_t, node); }

/* Task and actor workers starting: the start-up concurrency limit is theirs
 * (I/O workers have their own, max_io_workers, as in the stock pool). */
static size_t pool_starting(const pool_t *pool)
{
    size_t n = 0;
    LIST_FOREACH_ENTRY(const worker_t, w, &pool->workers, node)
        if ((w->state == WORKER_STARTING || w->state == WORKER_REGISTERED) && w->type == WORKER_TYPE_WORKER)
            n++;
    return n;
}

size_t pool_count(const pool_t *pool, worker_state_t state)
{
    size_t n = 0;
    LIST_FOREACH_ENTRY(const worker_t, w, &pool->workers, node)
        if (w->state == state)
            n++;
    return n;
}

/* ---- spawning ----------------------------------------------------------------- */


static worker_t *pool_spawn(pool_t *pool, worker_type_t type, const uint8_t job_id[ID_JOB_SIZE], int language,
                            int runtime_env_hash, const char *env_context)
{
    if (!pool->argv_template || pool->argc_template == 0) {
        log_error("cannot start a worker: no --python_worker_command");
        return NULL;
    }
    worker_t *w = xcalloc(1, sizeof *w);
    if (id_random(w->id, sizeof w->id) != 0) {
        free(w);
        return NULL;
    }
    id_to_hex(w->id, sizeof w->id, w->id_hex);
    memcpy(w->job_id, job_id, ID_JOB_SIZE);
    w->type = type;
    w->language = language;
    w->runtime_env_hash = runtime_env_hash;
    w->launch_wall_ms = pool_wall_ms();

    char port[16], a_id[128], a_time[64], a_node[160], a_hash[48];
    snprintf(port, sizeof port, "%d", pool->opts.node_manager_port);
    snprintf(a_id, sizeof a_id, "--worker-id=%s", w->id_hex);
    snprintf(a_time, sizeof a_time, "--worker-launch-time-ms=%llu", (unsigned long long)w->launch_wall_ms);
    snprintf(a_node, sizeof a_node, "--node-id=%s", pool->opts.node_id_hex);
    snprintf(a_hash, sizeof a_hash, "--runtime-env-hash=%d", w->runtime_env_hash);

    size_t cap = pool->argc_template + 12;
    char **argv = xcalloc(cap, sizeof *argv);
    size_t n = 0;
    for (size_t i = 0; i < pool->argc_template; i++) {
        const char *tok = pool->argv_template[i];
        if (strcmp(tok, "RAY_WORKER_DYNAMIC_OPTION_PLACEHOLDER") == 0)
            continue; /* per-process options are for Java/C++ workers */
        /* With no runtime env to set up, Python runs default_worker.py
         * directly instead of going through setup_worker.py. */
        if (i == 1 && strstr(tok, "setup_worker.py") && !env_context)
            continue;
        argv[n++] = cmdline_replace(tok, "RAY_NODE_MANAGER_PORT_PLACEHOLDER", port);
    }
    argv[n++] = strdup(a_id);
    argv[n++] = strdup(a_time);
    argv[n++] = strdup(a_node);
    argv[n++] = strdup(a_hash);
    if (env_context) {
        size_t len = strlen(env_context) + 64;
        char *a = xmalloc(len);
        snprintf(a, len, "--serialized-runtime-env-context=%s", env_context);
        argv[n++] = strdup("--language=PYTHON");
        argv[n++] = a;
    }
    if (pool->opts.ray_debugger_external)
        argv[n++] = strdup("--ray-debugger-external");
    if (pool->preload_arg)
        argv[n++] = strdup(pool->preload_arg);
    if (type == WORKER_TYPE_SPILL || type == WORKER_TYPE_RESTORE) {
        argv[n++] = strdup(type == WORKER_TYPE_SPILL ? "--worker-type=SPILL_WORKER" : "--worker-type=RESTORE_WORKER");
        argv[n++] = xstrdup(pool->io_config_arg);
    }
    argv[n] = NULL;

    char job_hex[ID_HEX_BUF], env_job[96], env_pid[48], env_threads[64];
    id_to_hex(job_id, ID_JOB_SIZE, job_hex);
    snprintf(env_job, sizeof env_job, "RAY_JOB_ID=%s", job_hex);
    snprintf(env_pid, sizeof env_pid, "RAY_RAYLET_PID=%d", (int)getpid());
    /* setproctitle would otherwise wipe /proc/<pid>/environ. */
    /* I/O workers belong to no job, and are told none. */
    bool io = type == WORKER_TYPE_SPILL || type == WORKER_TYPE_RESTORE;
    const char *overrides[8] = {env_pid, "SPT_NOENV=1", env_job};
    size_t n_env = io ? 2 : 3;
    if (pool->opts.grpc_threads > 0) {
        snprintf(env_threads, sizeof env_threads, "RAY_num_grpc_internal_threads=%d", pool->opts.grpc_threads);
        overrides[n_env++] = env_threads;
    }
    if (pool->opts.support_fork) {
        /* A worker that forks (multiprocessing) needs gRPC's fork handlers,
         * the poll engine they work with, and no extra Python thread. */
        overrides[n_env++] = "GRPC_ENABLE_FORK_SUPPORT=True";
        overrides[n_env++] = "GRPC_POLL_STRATEGY=poll";
        overrides[n_env++] = "RAY_start_python_gc_manager_thread=0";
    }
    char **envp = proc_env_build(overrides, n_env);

    proc_spawn_options_t so = {.stdin_fd = -1, 
                               .stdout_fd = pool->opts.stdout_fd > 0 ? pool->opts.stdout_fd : -1,
                               .stderr_fd = pool->opts.stderr_fd > 0 ? pool->opts.stderr_fd : -1};
    int rc = proc_spawn(argv, envp, &so, &w->pid);
    w->spawned_pid = w->pid;
    proc_env_free(envp);
    for (size_t i = 0; i < n; i++)
        free(argv[i]);
    free(argv);
    if (rc != 0) {
        log_error("cannot start a worker: %s", cr_strerror(rc));
        free(w);
        return NULL;
    }
    w->state = WORKER_STARTING;
    pool->started_total++;
    pool_add_worker(pool, w); /* a fresh random id: cannot be taken */
    log_debug("started worker %s, pid %d, job %s", w->id_hex, (int)w->pid, job_hex);
    /* The reap timer enforces it (no per-worker timer to outlive the record). */
    w->register_deadline_ms = loop_now_ms(pool->loop) + pool->opts.register_timeout_ms;
    return w;
}

/* Whoever's turn it is gets the worker: the oldest waiting pop that fits. */
static bool pool_serve_pop(pool_t *pool, worker_t *w)
{
    LIST_FOREACH_ENTRY(pool_pop_t, p, &pool->pops, node) {
        if (p->language != w->language || p->runtime_env_hash != w->runtime_env_hash ||
            !pool_job_fits(w->job_id, p->job_id) || (w->gpu_kind && w->gpu_kind != p->gpu_kind) ||
            (p->actor && w->ran_tasks))
            continue;
        pool_unlink_pop(p);
        pool_assign_job(w, p->job_id);
        w->gpu_kind = p->gpu_kind;
        w->state = WORKER_LEASED; /* the callback's owner decides from here */
        p->cb(p->ctx, w, 0, NULL, false);
        pool_pop_free(p);
        return true;
    }
    return false;
}

static void pool_start_for_pops(pool_t *pool);

static pool_pop_t *pool_pop_by_id(pool_t *pool, uint64_t id)
{
    LIST_FOREACH_ENTRY(pool_pop_t, p, &pool->pops, node)
        if (p->id == id)
            return p;
    return NULL;
}

typedef struct pool_env_req {
    pool_t *pool;
    uint64_t pop_id;
} pool_env_req_t;

static void pool_on_env(void *ctx, int err, const char *message, const char *context)
{
    pool_env_req_t *e = ctx;
    pool_t *pool = e->pool;
    pool_pop_t *p = pool_pop_by_id(pool, e->pop_id);
    free(e);
    if (!p)
        return; /* cancelled meanwhile */
    if (err) {
        log_warn("runtime env setup failed: %s", message);
        pool_unlink_pop(p);
        p->cb(p->ctx, NULL, err, message, true);
        pool_pop_free(p);
        return;
    }
    p->env_context = xstrdup(context);
    pool_start_for_pops(pool);
}

/* Ask the agent to build a pop's environment; false if it cannot be asked. */
static bool pool_request_env(pool_t *pool, pool_pop_t *p)
{
    pool_env_req_t *e = xmalloc(sizeof *e);
    e->pool = pool;
    e->pop_id = p->id;
    int rc = pool->renv ? renv_get_or_create(pool->renv, p->job_id, p->env, p->env_config, p->env_config_len,
                                             pool_on_env, e)
                        : CR_ECLOSED;
    if (rc != 0) {
        free(e);
        return false;
    }
    p->env_requested = true;
    return true;
}

/* Start workers for waiting pops, within the start-up concurrency limit. */
static void pool_start_for_pops(pool_t *pool)
{
    if (pool->destroying)
        return;
    size_t starting = pool_starting(pool);
    LIST_FOREACH_ENTRY(pool_pop_t, p, &pool->pops, node) {
        if (p->env && !p->env_context) {
            if (!p->env_requested && !pool_request_env(pool, p)) {
                pool_unlink_pop(p);
                p->cb(p->ctx, NULL, CR_ECLOSED, "the runtime-env agent is not available", true);
                pool_pop_free(p);
                return; /* the list changed under us; the next event retries */
            }
            continue; /* the worker starts once the environment exists */
        }
        if (starting >= (size_t)pool->opts.maximum_startup_concurrency)
            return;
        /* One starting worker per waiting pop of the same kind. */
        size_t want = 0, have = 0;
        LIST_FOREACH_ENTRY(pool_pop_t, q, &pool->pops, node) {
            if (pool_job_eq(q->job_id, p->job_id) && q->language == p->language &&
                q->runtime_env_hash == p->runtime_env_hash)
                want++;
            if (q == p)
                break;
        }
        LIST_FOREACH_ENTRY(worker_t, w, &pool->workers, node)
            if ((w->state == WORKER_STARTING || w->state == WORKER_REGISTERED) && w->type == WORKER_TYPE_WORKER &&
                pool_job_fits(w->job_id, p->job_id) && w->language == p->language &&
                w->runtime_env_hash == p->runtime_env_hash)
                have++;
        if (have >= want)
            continue;
        if (!pool_spawn(pool, WORKER_TYPE_WORKER, p->job_id, p->language, p->runtime_env_hash, p->env_context)) {
            pool_unlink_pop(p);
            p->cb(p->ctx, NULL, CR_ECLOSED, "could not start a worker process", false);
            pool_pop_free(p);
            return; /* the list changed under us; the next event retries */
        }
        starting++;
    }
}

pool_pop_t *pool_pop(pool_t *pool, const uint8_t job_id[ID_JOB_SIZE], int language, const pool_env_t *env,
                     pool_pop_cb cb, void *ctx)
{
    int hash = env ? env->hash : 0;
    int gpu_kind = env && env->gpu ? 2 : 1;
    /* Newest idle first: its caches are warmest. */
    LIST_FOREACH_ENTRY(worker_t, w, &pool->workers, node) {
        if (w->state != WORKER_IDLE || w->exit_requested || w->language != language ||
            w->runtime_env_hash != hash || !pool_job_fits(w->job_id, job_id) ||
            (w->gpu_kind && w->gpu_kind != gpu_kind) || (env && env->actor && w->ran_tasks))
            continue;
        pool_assign_job(w, job_id);
        w->state = WORKER_LEASED;
        w->gpu_kind = gpu_kind;
        cb(ctx, w, 0, NULL, false);
        return NULL;
    }
    pool_pop_t *p = xcalloc(1, sizeof *p);
    p->id = ++pool->next_pop_id;
    p->gpu_kind = gpu_kind;
    p->actor = env && env->actor;
    p->detached = env && env->detached;
    memcpy(p->job_id, job_id, ID_JOB_SIZE);
    p->language = language;
    p->runtime_env_hash = hash;
    if (env && hash != 0 && env->serialized) {
        p->env = xstrdup(env->serialized);
        if (env->config && env->config_len) {
            p->env_config = xmalloc(env->config_len);
            memcpy(p->env_config, env->config, env->config_len);
            p->env_config_len = env->config_len;
        }
    }
    p->cb = cb;
    p->ctx = ctx;
    list_insert_tail(&pool->pops, &p->node);
    uint64_t id = p->id;
    pool_start_for_pops(pool);
    /* Starting workers may have failed this pop at once (callback run,
     * pop freed): then there is no handle to return. */
    return pool_pop_by_id(pool, id) ? p : NULL;
}

void pool_set_renv(pool_t *pool, renv_client_t *renv) { pool->renv = renv; }

void pool_pop_cancel(pool_t *pool, pool_pop_t *pop)
{
    if (!pop)
        return;
    pool_unlink_pop(pop);
    pool_pop_free(pop);
}

void pool_push_idle(pool_t *pool, worker_t *w)
{
    if (w->is_actor || w->exit_requested)
        return;
    if (pool_serve_pop(pool, w))
        return;
    w->state = WORKER_IDLE;
    w->idle_since_ms = loop_now_ms(pool->loop);
    /* Move to the front so pops find the newest idle worker first. */
    pool_unlink_worker(w);
    pool_link_worker(pool, w);
}

/* ---- registration ----------------------------------------------------------- */

worker_t *pool_find(pool_t *pool, const uint8_t id[ID_UNIQUE_SIZE])
{
    idtab_node_t *n = idtab_find(pool->by_id, (const id_object_t *)id);
    return n ? LIST_ENTRY(n, worker_t, by_id) : NULL;
}

worker_t *pool_register(pool_t *pool, conn_t *conn, worker_type_t type, const uint8_t id[ID_UNIQUE_SIZE],
                        pid_t pid, pid_t peer_pid, const uint8_t job_id[ID_JOB_SIZE], int language,
                        int runtime_env_hash, char *err, size_t err_len)
{
    /* The pid a client claims is only ever reported, never signalled; it
     * must still be the connecting process, so reports cannot name
     * someone else's process. */
    if (pid <= 0) {
        snprintf(err, err_len, "invalid worker pid %lld", (long long)pid);
        return NULL;
    }
    if (peer_pid > 0 && pid != peer_pid) {
        snprintf(err, err_len, "claimed pid %lld is not the connecting process (pid %lld)", (long long)pid,
                 (long long)peer_pid);
        return NULL;
    }
    worker_t *w = pool_find(pool, id);
    if (type == WORKER_TYPE_DRIVER) {
        if (w) {
            snprintf(err, err_len, "worker id already registered");
            return NULL;
        }
        if (id_is_nil(job_id, ID_JOB_SIZE)) {
            snprintf(err, err_len, "a driver must carry a job id");
            return NULL;
        }
        w = xcalloc(1, sizeof *w);
        memcpy(w->id, id, ID_UNIQUE_SIZE);
        id_to_hex(w->id, sizeof w->id, w->id_hex);
        memcpy(w->job_id, job_id, ID_JOB_SIZE);
        w->type = type;
        w->language = language;
        w->runtime_env_hash = runtime_env_hash;
        w->state = WORKER_DRIVER;
        pool_add_worker(pool, w); /* pool_find above saw the id free */
    } else {
        if (!w || w->state != WORKER_STARTING) {
            snprintf(err, err_len, "Unknown worker");
            return NULL;
        }
        if (type != w->type) {
            snprintf(err, err_len, "worker %s registered as type %d but was started as type %d", w->id_hex,
                     (int)type, (int)w->type);
            return NULL;
        }
        /* A worker is the process we spawned (setup_worker.py execs, so
         * the pid carries through); anything else is an impostor. */
        if (pid != w->spawned_pid || w->pid <= 0) {
            snprintf(err, err_len, "pid %lld is not the process started as worker %s (pid %lld)", (long long)pid,
                     w->id_hex, (long long)w->spawned_pid);
            return NULL;
        }
        w->state = WORKER_REGISTERED;
    }
    if (type == WORKER_TYPE_DRIVER)
        w->pid = pid;
    w->conn = conn;
    w->assigned_port = pool_take_port(pool);
    return w;
}

int pool_assigned_port(const worker_t *w) { return w->assigned_port; }

void pool_announce(pool_t *pool, worker_t *w, int port)
{
    w->port = port;
    if (w->type == WORKER_TYPE_DRIVER || w->state != WORKER_REGISTERED)
        return;
    if (w->type == WORKER_TYPE_SPILL || w->type == WORKER_TYPE_RESTORE) {
        w->state = WORKER_IO;
        w->io_busy = false;
        if (pool->cbs.io_ready)
            pool->cbs.io_ready(pool->ctx, w->type);
        pool_start_for_pops(pool);
        return;
    }
    pool_push_idle(pool, w);
    pool_start_for_pops(pool);
}

rpc_channel_t *pool_channel(pool_t *pool, worker_t *w)
{
    if (w->channel)
        return w->channel;
    if (w->port <= 0)
        return NULL;
    char target[96];
    snprintf(target, sizeof target, "%s:%d", pool->opts.node_ip_address, w->port);
    w->channel = rpc_channel_create(pool->bridge, target);
    return w->channel;
}

/* The worker's channel goes, silencing its calls; what they held goes too. */
static void pool_close_channel(worker_t *w)
{
    rpc_channel_destroy(w->channel);
    w->channel = NULL;
    while (w->exit_calls) {
        pool_exit_call_t *c = w->exit_calls;
        w->exit_calls = c->next;
        free(c);
    }
}

static void pool_free_worker(pool_t *pool, worker_t *w)
{
    pool_unlink_worker(w);
    idtab_remove(pool->by_id, &w->by_id);
    pool_give_port(pool, w->assigned_port);
    pool_close_channel(w);
    free(w);
}

void pool_disconnect(pool_t *pool, worker_t *w, int exit_type, const char *detail)
{
    pool_exit(pool, w, &(worker_exit_t){.type = exit_type, .detail = detail});
}

void pool_exit(pool_t *pool, worker_t *w, const worker_exit_t *exit)
{
    if (w->state == WORKER_DEAD)
        return;
    int exit_type = exit->type;
    worker_state_t was = w->state;
    w->state = WORKER_DEAD;
    if (pool->cbs.on_worker_dead)
        pool->cbs.on_worker_dead(pool->ctx, w, exit);
    if (w->conn) {
        conn_close(w->conn, NULL);
        w->conn = NULL;
    }
    /* A worker that broke off without saying goodbye may still be running
     * (wedged); never leave it behind.  Drivers are the user's processes. */
    if (w->type != WORKER_TYPE_DRIVER && w->pid > 0 && exit_type == RAY__RPC__WORKER_EXIT_TYPE__SYSTEM_ERROR &&
        was != WORKER_STARTING)
        pool_signal(w, SIGKILL);
    else if (w->type != WORKER_TYPE_DRIVER && was == WORKER_STARTING && w->pid > 0)
        pool_signal(w, SIGKILL);
    pool_free_worker(pool, w);
    pool_start_for_pops(pool);
}

bool pool_on_child_exit(pool_t *pool, pid_t pid, int wait_status)
{
    LIST_FOREACH_ENTRY(worker_t, w, &pool->workers, node) {
        if (w->pid != pid || w->type == WORKER_TYPE_DRIVER)
            continue;
        w->pid = -1; /* reaped: never signal this pid again */
        char detail[160];
        if (WIFSIGNALED(wait_status))
            snprintf(detail, sizeof detail, "worker process %d was killed by signal %d", (int)pid,
                     WTERMSIG(wait_status));
        else
            snprintf(detail, sizeof detail, "worker process %d exited with code %d", (int)pid,
                     WEXITSTATUS(wait_status));
        /* A registered worker's socket reports its exit too; whichever comes
         * first cleans up.  An orderly exit was already reported. */
        pool_disconnect(pool, w,
                        w->exit_requested ? RAY__RPC__WORKER_EXIT_TYPE__INTENDED_SYSTEM_EXIT
                                          : RAY__RPC__WORKER_EXIT_TYPE__SYSTEM_ERROR,
                        detail);
        return true;
    }
    return false;
}

/* Deadlines the reap timer enforces: registration, and the grace a
 * finished job's workers get before SIGKILL. */
static void pool_enforce_deadlines(pool_t *pool, uint64_t now)
{
    for (list_t *n = pool->workers.next, *next; n != &pool->workers; n = next) {
        worker_t *w = pool_worker_of(n);
        next = n->next;
        if (w->kill_deadline_ms && now >= w->kill_deadline_ms && w->state != WORKER_DEAD) {
            w->kill_deadline_ms = 0;
            pool_signal(w, SIGKILL);
        }
        if (w->state == WORKER_STARTING && w->register_deadline_ms && now >= w->register_deadline_ms) {
            log_warn("worker %s (pid %d) did not register within %llu ms; killing it", w->id_hex, (int)w->pid,
                     (unsigned long long)pool->opts.register_timeout_ms);
            /* Frees w; `next` is untouched (disconnect only starts workers,
             * which are linked at the head). */
            pool_disconnect(pool, w, RAY__RPC__WORKER_EXIT_TYPE__SYSTEM_ERROR, "worker did not register in time");
        }
    }
}

/* ---- idle reaping and job ends ---------------------------------------------- */


static void pool_exit_call_forget(worker_t *w, pool_exit_call_t *c)
{
    for (pool_exit_call_t **pp = &w->exit_calls; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            return;
        }
}

static void pool_on_exit_reply(void *ctx, const rpc_status_t *st, ProtobufCMessage *reply)
{
    pool_exit_call_t *c = ctx;
    worker_t *w = pool_find(c->pool, c->id);
    if (w)
        pool_exit_call_forget(w, c);
    if (w && w->state != WORKER_DEAD) {
        bool refused = st->code == GRPC_STATUS_OK && !((Ray__Rpc__ExitReply *)reply)->success;
        if (refused) {
            /* It still owns objects others use: keep it. */
            w->exit_requested = false;
            w->idle_since_ms = loop_now_ms(c->pool->loop);
        } else if (st->code != GRPC_STATUS_OK && w->pid > 0) {
            pool_signal(w, SIGKILL);
        }
    }
    free(c);
}

static void pool_request_exit(pool_t *pool, worker_t *w, bool force)
{
    rpc_channel_t *ch = pool_channel(pool, w);
    w->exit_requested = true;
    if (!ch) {
        if (w->pid > 0)
            pool_signal(w, SIGKILL);
        return;
    }
    pool_exit_call_t *c = xmalloc(sizeof *c);
    c->pool = pool;
    memcpy(c->id, w->id, ID_UNIQUE_SIZE);
    Ray__Rpc__ExitRequest req = RAY__RPC__EXIT_REQUEST__INIT;
    req.force_exit = force;
    if (cwc_exit(ch, &req, POOL_EXIT_TIMEOUT_MS, pool_on_exit_reply, c) != 0) {
        free(c);
        if (w->pid > 0)
            pool_signal(w, SIGKILL);
        return;
    }
    c->next = w->exit_calls;
    w->exit_calls = c;
}

static void pool_on_reap_timer(loop_t *loop, uint64_t id, void *data)
{
    pool_t *pool = data;
    pool->reap_timer = loop_add_timer(loop, POOL_REAP_PERIOD_MS, pool_on_reap_timer, pool);
    pool_enforce_deadlines(pool, loop_now_ms(loop));
    size_t idle = 0;
    LIST_FOREACH_ENTRY(worker_t, w, &pool->workers, node)
        if (w->state == WORKER_IDLE && !w->exit_requested)
            idle++;
    if (idle <= (size_t)pool->opts.soft_limit)
        return;
    uint64_t now = loop_now_ms(loop);
    /* Oldest idle first: they sit at the back of the list. */
    for (list_t *n = pool->workers.prev; n != &pool->workers && idle > (size_t)pool->opts.soft_limit; n = n->prev) {
        worker_t *w = pool_worker_of(n);
        if (w->state != WORKER_IDLE || w->exit_requested || now - w->idle_since_ms < pool->opts.idle_timeout_ms)
            continue;
        pool_request_exit(pool, w, false);
        idle--;
    }
}


void pool_kill_job(pool_t *pool, const uint8_t job_id[ID_JOB_SIZE])
{
    LIST_FOREACH_ENTRY(worker_t, w, &pool->workers, node) {
        /* A detached actor (and what runs under it) outlives its job, as
         * the stock raylet keeps workers with a root detached actor. */
        if (w->type == WORKER_TYPE_DRIVER || w->state == WORKER_DEAD || w->detached ||
            !pool_job_eq(w->job_id, job_id))
            continue;
        if (w->state == WORKER_STARTING) {
            pool_signal(w, SIGKILL);
            continue;
        }
        pool_request_exit(pool, w, true);
        w->kill_deadline_ms = loop_now_ms(pool->loop) + POOL_KILL_GRACE_MS;
    }
    /* Pops for a finished job will never be served. */
    for (list_t *n = pool->pops.next, *next; n != &pool->pops; n = next) {
        pool_pop_t *p = pool_pop_of(n);
        next = n->next;
        if (pool_job_eq(p->job_id, job_id) && !p->detached) {
            pool_unlink_pop(p);
            p->cb(p->ctx, NULL, CR_ECLOSED, "the job finished", false);
            pool_pop_free(p);
        }
    }
}

void pool_prestart(pool_t *pool, const uint8_t job_id[ID_JOB_SIZE], int language, size_t n)
{
    size_t starting = pool_starting(pool);
    for (size_t i = 0; i < n && starting < (size_t)pool->opts.maximum_startup_concurrency; i++, starting++)
        if (!pool_spawn(pool, WORKER_TYPE_WORKER, job_id, language, 0, NULL))
            break;
}

/* ---- I/O workers ------------------------------------------------------------ */

worker_t *pool_io_take(pool_t *pool, worker_type_t type)
{
    if (pool->destroying || !pool->io_config_arg)
        return NULL;
    size_t alive = 0, starting = 0;
    LIST_FOREACH_ENTRY(worker_t, w, &pool->workers, node) {
        if (w->type != type || w->state == WORKER_DEAD)
            continue;
        if (w->state == WORKER_IO && !w->io_busy && w->port > 0) {
            w->io_busy = true;
            return w;
        }
        alive++;
        starting += w->state == WORKER_STARTING || w->state == WORKER_REGISTERED;
    }
    /* Every taker waits for the next ready one: starting one at a time is
     * enough, as each ready worker serves the queue in turn. */
    if (starting == 0 && alive < (size_t)pool->opts.max_io_workers) {
        uint8_t no_job[ID_JOB_SIZE];
        memset(no_job, 0xff, sizeof no_job); /* JobID::Nil() */
        worker_t *w = pool_spawn(pool, type, no_job, RAY__RPC__LANGUAGE__PYTHON, 0, NULL);
        if (w)
            log_info("started %s worker %s (pid %d)", type == WORKER_TYPE_SPILL ? "spill" : "restore", w->id_hex,
                     (int)w->pid);
    }
    return NULL;
}

void pool_io_release(pool_t *pool, worker_t *w)
{
    if (w->state != WORKER_IO)
        return;
    w->io_busy = false;
    if (pool->cbs.io_ready)
        pool->cbs.io_ready(pool->ctx, w->type);
}

uint64_t pool_started_total(const pool_t *pool) { return pool->started_total; }

size_t pool_list(pool_t *pool, worker_t **out, size_t max)
{
    size_t n = 0;
    LIST_FOREACH_ENTRY(worker_t, w, &pool->workers, node) {
        if (n == max)
            break;
        if (w->state != WORKER_DEAD)
            out[n++] = w;
    }
    return n;
}

size_t pool_pids(pool_t *pool, int32_t *pids, size_t max)
{
    size_t n = 0;
    LIST_FOREACH_ENTRY(worker_t, w, &pool->workers, node) {
        if (n == max)
            break;
        if (w->state != WORKER_DEAD && w->pid > 0)
            pids[n++] = (int32_t)w->pid;
    }
    return n;
}

/* ---- lifecycle ------------------------------------------------------------- */

pool_t *pool_create(loop_t *loop, cq_bridge_t *bridge, const pool_options_t *opts,
                    const pool_callbacks_t *cbs, void *ctx)
{
    pool_t *pool = xcalloc(1, sizeof *pool);
    pool->loop = loop;
    if (sched_getaffinity(0, sizeof pool->own_cpus, &pool->own_cpus) != 0)
        CPU_ZERO(&pool->own_cpus);
    pool->memory_nodes = numa_memory_nodes();
    pool->bridge = bridge;
    pool->opts = *opts;
    pool->opts.python_worker_command = NULL;
    pool->opts.worker_port_list = NULL;
    pool->opts.preload_modules = NULL;
    pool->opts.object_spilling_config = NULL;
    if (opts->preload_modules && *opts->preload_modules) {
        pool->preload_arg = xmalloc(strlen(opts->preload_modules) + 32);
        sprintf(pool->preload_arg, "--worker-preload-modules=%s", opts->preload_modules);
    }
    if (opts->object_spilling_config && opts->object_spilling_config[0]) {
        char *b64 = base64_encode(opts->object_spilling_config, strlen(opts->object_spilling_config));
        pool->io_config_arg = xmalloc(strlen(b64) + 32);
        sprintf(pool->io_config_arg, "--object-spilling-config=%s", b64);
        free(b64);
    }
    if (pool->opts.maximum_startup_concurrency < 1)
        pool->opts.maximum_startup_concurrency = 1;
    pool->cbs = *cbs;
    pool->ctx = ctx;
    list_init(&pool->workers);
    list_init(&pool->pops);
    pool->by_id = idtab_xcreate();
    if (opts->python_worker_command && *opts->python_worker_command &&
        cmdline_split(opts->python_worker_command, &pool->argv_template, &pool->argc_template) != 0) {
        log_error("cannot parse --python_worker_command");
        free(pool);
        return NULL;
    }
    pool_load_ports(pool, opts);
    pool->reap_timer = loop_add_timer(loop, POOL_REAP_PERIOD_MS, pool_on_reap_timer, pool);
    return pool;
}

void pool_stop(pool_t *pool)
{
    if (!pool || pool->destroying)
        return;
    pool->destroying = true;
    loop_cancel_timer(pool->loop, pool->reap_timer);
    pool->reap_timer = 0;
    while (!list_empty(&pool->pops)) {
        pool_pop_t *p = pool_pop_of(pool->pops.next);
        pool_unlink_pop(p);
        pool_pop_free(p);
    }
    /* Workers get SIGKILL: with the raylet gone they would exit anyway, and
     * `ray stop` expects nothing left behind.  Their channels go now, so no
     * reply from a worker reaches the pool after this. */
    LIST_FOREACH_ENTRY(worker_t, w, &pool->workers, node) {
        if (w->type != WORKER_TYPE_DRIVER && w->pid > 0)
            pool_signal(w, SIGKILL);
        pool_close_channel(w);
    }
}

void pool_destroy(pool_t *pool)
{
    if (!pool)
        return;
    pool_stop(pool);
    while (!list_empty(&pool->workers)) {
        worker_t *w = pool_worker_of(pool->workers.next);
        if (w->conn)
            conn_close(w->conn, NULL);
        pool_free_worker(pool, w);
    }
    cmdline_free(pool->argv_template);
    free(pool->preload_arg);
    free(pool->io_config_arg);
    free(pool->ports);
    idtab_destroy(pool->by_id);
    free(pool);
}

/* ---- the lease manager's view of the pool ----------------------------------- */

void pool_kill(pool_t *pool, worker_t *w, int exit_type, const char *detail)
{
    if (w->state == WORKER_DEAD)
        return;
    /* Only pids this pool spawned and has not reaped are ever signalled. */
    if (w->type != WORKER_TYPE_DRIVER && w->pid > 0)
        pool_signal(w, SIGKILL);
    pool_disconnect(pool, w, exit_type, detail);
}

void pool_mark_actor(pool_t *pool, worker_t *w) { w->is_actor = true; }

static void *pool_lease_pop(void *pool, const lease_worker_need_t *need, lease_pop_cb cb, void *ctx)
{
    pool_env_t env = {.serialized = need->runtime_env,
                      .config = need->runtime_env_config,
                      .config_len = need->runtime_env_config_len,
                      .hash = need->runtime_env_hash,
                      .gpu = need->gpu,
                      .actor = need->actor,
                      .detached = need->detached};
    return pool_pop(pool, need->job_id, need->language, &env, cb, ctx);
}

static void pool_lease_pop_cancel(void *pool, void *pop) { pool_pop_cancel(pool, pop); }

static void pool_lease_leased(void *pool, worker_t *w, bool normal_task, bool detached)
{
    w->state = WORKER_LEASED;
    w->detached = detached;
    if (normal_task)
        w->ran_tasks = true;
}

int pool_bind_cpus(pool_t *pool, worker_t *w, const cpu_set_t *cpus)
{
    if (w->spawned_pid <= 0 || w->pid != w->spawned_pid)
        return -ESRCH;
    if (!cpus) {
        if (!w->cpus_bound)
            return 0;
        if (CPU_COUNT(&pool->own_cpus) == 0)
            return -EINVAL;
        cpus = &pool->own_cpus;
    }
    /* Every thread: a mask set on the process id reaches its main thread
     * only, and a Python worker runs gRPC and its own threads already. */
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)w->spawned_pid);
    DIR *d = opendir(path);
    if (!d)
        return -ESRCH;
    int rc = 0;
    size_t bound = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long tid = strtol(e->d_name, &end, 10);
        if (*end || tid <= 0)
            continue;
        if (sched_setaffinity((pid_t)tid, sizeof *cpus, cpus) == 0)
            bound++;
        else if (errno != ESRCH) /* a thread that just ended */
            rc = -errno;
    }
    closedir(d);
    if (bound == 0 && rc == 0)
        rc = -ESRCH;
    w->cpus_bound = rc == 0 && cpus != &pool->own_cpus;
    return rc;
}

int pool_move_memory(pool_t *pool, worker_t *w, unsigned node)
{
    if (w->spawned_pid <= 0 || w->pid != w->spawned_pid)
        return -ESRCH;
    if (node >= NUMA_MAX_NODES || !(pool->memory_nodes & (UINT64_C(1) << node)))
        return -ENODEV;
    uint64_t others = pool->memory_nodes & ~(UINT64_C(1) << node);
    if (others == 0 || (w->memory_moved && w->memory_node == node))
        return 0;
    int rc = numa_move_pages_async(w->spawned_pid, others, node);
    if (rc != 0)
        return rc;
    w->memory_moved = true;
    w->memory_node = node;
    return 0;
}

static void pool_lease_release(void *pool, worker_t *w, lease_release_t how, const char *detail)
{
    if (w->cpus_bound)
        pool_bind_cpus(pool, w, NULL);
    w->detached = false;
    switch (how) {
    case LEASE_RELEASE_IDLE:
        pool_push_idle(pool, w);
        break;
    case LEASE_RELEASE_RETIRE:
        w->exit_requested = true; /* on its way out: never reuse */
        break;
    case LEASE_RELEASE_FAILED:
        w->exit_requested = true;
        if (w->pid <= 0)
            break;
        w->failed_while_leased = true; /* its driver is told (worker_died) */
        log_info("killing worker %s on its owner's request: %s", w->id_hex, detail ? detail : "");
        pool_disconnect(pool, w, RAY__RPC__WORKER_EXIT_TYPE__SYSTEM_ERROR, detail);
        break;
    case LEASE_RELEASE_KILL:
        pool_kill(pool, w, RAY__RPC__WORKER_EXIT_TYPE__INTENDED_SYSTEM_EXIT, detail);
        break;
    case LEASE_RELEASE_OOM:
        pool_kill(pool, w, RAY__RPC__WORKER_EXIT_TYPE__NODE_OUT_OF_MEMORY, detail);
        break;
    }
}

static void pool_lease_describe(void *pool, const worker_t *w, lease_worker_info_t *out)
{
    memcpy(out->id, w->id, ID_UNIQUE_SIZE);
    out->port = w->port;
    out->pid = w->pid;
}

const lease_pool_ops_t pool_lease_ops = {
    .pop = pool_lease_pop,
    .pop_cancel = pool_lease_pop_cancel,
    .leased = pool_lease_leased,
    .release = pool_lease_release,
    .describe = pool_lease_describe,
};

/* ---- read-only views (worker.h) ---------------------------------------------- */

const uint8_t *worker_id(const worker_t *w) { return w->id; }
const char *worker_id_hex(const worker_t *w) { return w->id_hex; }
const uint8_t *worker_job_id(const worker_t *w) { return w->job_id; }
worker_type_t worker_type(const worker_t *w) { return w->type; }
worker_state_t worker_state(const worker_t *w) { return w->state; }
int worker_port(const worker_t *w) { return w->port; }
pid_t worker_pid(const worker_t *w) { return w->pid; }
pid_t worker_spawned_pid(const worker_t *w) { return w->spawned_pid; }
bool worker_is_actor(const worker_t *w) { return w->is_actor; }
bool worker_failed_while_leased(const worker_t *w) { return w->failed_while_leased; }

void worker_rpc_address(const worker_t *w, const uint8_t node_id[ID_UNIQUE_SIZE], const char *ip,
                        Ray__Rpc__Address *out)
{
    ray__rpc__address__init(out);
    out->node_id.data = (uint8_t *)node_id;
    out->node_id.len = ID_UNIQUE_SIZE;
    out->ip_address = (char *)ip;
    out->port = w->port;
    out->worker_id.data = (uint8_t *)w->id;
    out->worker_id.len = ID_UNIQUE_SIZE;
}
