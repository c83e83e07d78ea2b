/* The lease manager through its plain interface, with a fake worker pool
 * and no gRPC: leases queued, granted, returned, cancelled, spilled back,
 * rejected; the worker cap; blocked-worker CPU lending; leases on
 * placement-group bundles and their removal; stop. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "raylet/sched/bundles.h"
#include "raylet/sched/lease_mgr.h"
#include "raylet/sched/mem_monitor.h"

/* The scheduler only compares worker records by address. */
struct worker {
    int index;
};

#define FAKE_MAX 32

typedef struct fake_pop {
    bool live;
    lease_pop_cb cb;
    void *ctx;
    bool gpu;
} fake_pop_t;

typedef struct fake_pool {
    struct worker workers[FAKE_MAX];
    size_t used;
    bool async;            /* pops wait for fake_finish_pop() */
    bool fail_oldest_on_pop; /* a new pop fails the oldest pending one at once */
    fake_pop_t pops[FAKE_MAX];
    size_t pop_count;
    size_t cancelled;
    lease_release_t released_how[FAKE_MAX];
    struct worker *released[FAKE_MAX];
    size_t release_count;
    size_t leased_normal;
} fake_pool_t;

static void *fake_pop(void *pool, const lease_worker_need_t *need, lease_pop_cb cb, void *ctx)
{
    fake_pool_t *p = pool;
    if (!p->async) {
        cr_assert_lt(p->used, FAKE_MAX);
        struct worker *w = &p->workers[p->used];
        w->index = (int)p->used++;
        cb(ctx, w, 0, NULL, false);
        return NULL;
    }
    fake_pop_t *pop = &p->pops[p->pop_count++];
    *pop = (fake_pop_t){.live = true, .cb = cb, .ctx = ctx, .gpu = need->gpu};
    if (p->fail_oldest_on_pop) {
        /* As the real pool does when starting workers for this pop fails
         * an older pop (spawn error, runtime-env agent gone). */
        p->fail_oldest_on_pop = false;
        for (size_t i = 0; i < p->pop_count - 1; i++)
            if (p->pops[i].live) {
                p->pops[i].live = false;
                p->pops[i].cb(p->pops[i].ctx, NULL, -EAGAIN, "spawn failed", false);
                break;
            }
    }
    return pop;
}

static void fake_pop_cancel(void *pool, void *pop)
{
    fake_pool_t *p = pool;
    ((fake_pop_t *)pop)->live = false;
    p->cancelled++;
}

static void fake_leased(void *pool, struct worker *w, bool normal_task, bool detached)
{
    fake_pool_t *p = pool;
    p->leased_normal += normal_task;
}

static void fake_release(void *pool, struct worker *w, lease_release_t how, const char *detail)
{
    fake_pool_t *p = pool;
    p->released[p->release_count] = w;
    p->released_how[p->release_count++] = how;
}

static void fake_describe(void *pool, const struct worker *w, lease_worker_info_t *out)
{
    memset(out->id, 0, sizeof out->id);
    out->id[0] = (uint8_t)w->index;
    out->port = 10000 + w->index;
    out->pid = 500 + w->index;
}

static const lease_pool_ops_t fake_ops = {
    .pop = fake_pop,
    .pop_cancel = fake_pop_cancel,
    .leased = fake_leased,
    .release = fake_release,
    .describe = fake_describe,
};

/* Complete the i-th pending pop: with a new worker, or a failure. */
static void fake_finish_pop(fake_pool_t *p, size_t i, bool ok, bool env_failed)
{
    fake_pop_t *pop = &p->pops[i];
    cr_assert(pop->live, "pop %zu was cancelled or already finished", i);
    pop->live = false;
    if (!ok) {
        pop->cb(pop->ctx, NULL, -EIO, "spawn failed", env_failed);
        return;
    }
    struct worker *w = &p->workers[p->used];
    w->index = (int)p->used++;
    pop->cb(pop->ctx, w, 0, NULL, false);
}

/* ---- recorded outcomes ---------------------------------------------------- */

typedef struct answer {
    bool answered;
    lease_outcome_kind_t kind;
    lease_failure_t failure;
    int worker_port;
    res_amount_t cpu_granted;
    int64_t gpu_ids[8];
    size_t gpu_count;
    char remote[96];
} answer_t;

static void on_outcome(void *call, const lease_outcome_t *o)
{
    answer_t *a = call;
    cr_assert_not(a->answered, "a lease was answered twice");
    a->answered = true;
    a->kind = o->kind;
    a->failure = o->failure;
    if (o->kind == LEASE_GRANTED) {
        a->worker_port = o->worker.port;
        res_grant_t g;
        if (o->cpu_alloc && res_alloc_find(o->cpu_alloc, "CPU", &g))
            a->cpu_granted = g.amount;
        if (o->alloc && res_alloc_find(o->alloc, "GPU", &g)) {
            for (size_t i = 0; i < g.instance_count && i < 8; i++)
                a->gpu_ids[i] = (int64_t)g.instance_ids[i];
            a->gpu_count = g.instance_count;
        }
    }
    if (o->kind == LEASE_SPILLBACK)
        snprintf(a->remote, sizeof a->remote, "%s:%d", o->remote.address, o->remote.port);
}

/* ---- fixture ---------------------------------------------------------------- */

typedef struct env {
    loop_t *loop;
    res_node_t *res;
    fake_pool_t pool;
    lease_mgr_t *mgr;
    bool remote_available; /* pick_remote finds a node with free resources */
    bool remote_total;     /* pick_remote finds a node whose totals fit */
    int busy_changes;
    /* argument fetches */
    bool with_args;        /* submit() gives each lease two arguments */
    const uint8_t *caller; /* submit() names this worker as the caller */
    bool detached;         /* ... and asks for a detached actor's lease */
    bool local_only;       /* ... bound here by hard node affinity */
    const uint8_t *affinity; /* ... bound to that node by node affinity */
    bool affinity_soft;
    bool node_alive;       /* pick_node knows the node */
    bool node_free;        /* ... and it has the resources free */
    bool not_retriable;    /* ... with max_retries 0 */
    uint8_t parent;        /* ... submitted by this task (0: not said) */
    bool args_local;       /* args_fetch finds every argument here */
    const char *placement; /* submit() asks to be placed by this shape */
    int fetches, cancels;
    uint64_t last_token;
    size_t last_nargs;
} env_t;

static bool pick_remote(void *ctx, const res_set_t *request, bool need_available, lease_remote_t *out)
{
    env_t *e = ctx;
    if (need_available ? !e->remote_available : !(e->remote_total || e->remote_available))
        return false;
    snprintf(out->address, sizeof out->address, "10.0.0.2");
    out->port = 7777;
    memset(out->node_id, 0xab, sizeof out->node_id);
    return true;
}

static bool pick_node(void *ctx, const uint8_t node_id[ID_UNIQUE_SIZE], const res_set_t *request,
                      bool need_available, lease_remote_t *out)
{
    env_t *e = ctx;
    if (!e->node_alive || (need_available && !e->node_free))
        return false;
    snprintf(out->address, sizeof out->address, "10.0.0.9");
    out->port = 9999;
    memcpy(out->node_id, node_id, ID_UNIQUE_SIZE);
    return true;
}

static void on_busy(void *ctx, bool busy) { ((env_t *)ctx)->busy_changes++; }

static bool args_fetch(void *ctx, uint64_t token, const id_object_t *ids, const ray_addr_t *owners, size_t n)
{
    env_t *e = ctx;
    (void)ids;
    (void)owners;
    e->fetches++;
    e->last_token = token;
    e->last_nargs = n;
    return e->args_local;
}

static void args_cancel(void *ctx, uint64_t token)
{
    env_t *e = ctx;
    cr_assert_leq(token, e->last_token);
    e->cancels++;
}

static void env_init(env_t *e, double cpus, int gpus, bool cap, uint64_t backoff_ms)
{
    memset(e, 0, sizeof *e);
    e->loop = loop_create();
    e->res = res_node_create(NULL);
    cr_assert_eq(res_node_add_total(e->res, "CPU", (res_amount_t)(cpus * RES_UNIT)), 0);
    if (gpus > 0)
        cr_assert_eq(res_node_add_total(e->res, "GPU", (res_amount_t)gpus * RES_UNIT), 0);
    lease_mgr_options_t o = {.worker_cap_enabled = cap,
                             .worker_cap_initial_backoff_ms = backoff_ms,
                             .worker_cap_max_backoff_ms = backoff_ms * 8};
    lease_mgr_callbacks_t cbs = {.pick_remote = pick_remote, .pick_node = pick_node, .on_busy_changed = on_busy,
                                 .args_fetch = args_fetch, .args_cancel = args_cancel};
    e->mgr = lease_mgr_create(e->loop, e->res, &fake_ops, &e->pool, &o, &cbs, e);
    cr_assert_not_null(e->mgr);
}

static void env_fini(env_t *e)
{
    lease_mgr_destroy(e->mgr);
    res_node_destroy(e->res);
    loop_destroy(e->loop);
}

static res_amount_t avail(env_t *e, const char *name) { return res_node_available(e->res, name); }

/* Submit a lease for `shape` ("CPU=1,GPU=2"); class_hash tells classes apart. */
/* "CPU=1,GPU=2" as a set. */
static res_set_t *parse_shape(const char *shape)
{
    res_set_t *set = res_set_create();
    char buf[128];
    snprintf(buf, sizeof buf, "%s", shape);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        *eq = '\0';
        res_amount_t amt;
        cr_assert_eq(res_amount_from_double(atof(eq + 1), &amt), 0);
        res_set_put(set, tok, amt);
    }
    return set;
}

static int submit(env_t *e, uint8_t id, const char *shape, uint64_t class_hash, bool grant_or_reject,
                  answer_t *a)
{
    res_set_t *set = parse_shape(shape);
    res_set_t *placement = e->placement ? parse_shape(e->placement) : NULL;
    uint8_t lease_id[8] = {id, 1, 2, 3, 4, 5, 6, 7};
    uint8_t job[ID_JOB_SIZE] = {1, 0, 0, 0};
    id_object_t args[2];
    ray_addr_t owners[2];
    memset(args, id, sizeof args);
    memset(owners, 0, sizeof owners);
    uint8_t parent[ID_TASK_SIZE];
    memset(parent, e->parent, sizeof parent);
    lease_request_t r = {.args = args,
                         .retriable = !e->not_retriable,
                         .parent_task_id = e->parent ? parent : NULL,
                         .task_name = "hog",
                         .arg_owners = owners,
                         .nargs = e->with_args ? 2 : 0,
                         .caller_worker_id = e->caller,
                         .detached = e->detached,
                         .detached_actor = e->detached,
                         .id = lease_id,
                         .id_len = sizeof lease_id,
                         .job_id = job,
                         .language = 0,
                         .normal_task = true,
                         .resources = set,
                         .placement = placement,
                         .class_hash = class_hash,
                         .grant_or_reject = grant_or_reject,
                         .local_only = e->local_only,
                         .affinity_node = e->affinity,
                         .affinity_soft = e->affinity_soft};
    memset(a, 0, sizeof *a);
    int rc = lease_mgr_request(e->mgr, &r, on_outcome, a);
    res_set_destroy(set);
    res_set_destroy(placement);
    lease_mgr_flush(e->mgr);
    return rc;
}

static void lid(uint8_t id, uint8_t out[8])
{
    uint8_t tmpl[8] = {id, 1, 2, 3, 4, 5, 6, 7};
    memcpy(out, tmpl, 8);
}

static void give_back(env_t *e, uint8_t id, bool disconnect)
{
    uint8_t b[8];
    lid(id, b);
    lease_mgr_return(e->mgr, b, 8, disconnect, false, disconnect ? "it misbehaved" : NULL);
    lease_mgr_flush(e->mgr);
}

/* Run the loop for about `ms` (timers fire, the before-sleep flush is ours). */
static void on_stop_timer(loop_t *loop, uint64_t id, void *data) { loop_stop(loop); }
static void flush_hook(loop_t *loop, void *data) { lease_mgr_flush(data); }
static void run_for(env_t *e, uint64_t ms)
{
    loop_set_before_sleep(e->loop, flush_hook, e->mgr);
    loop_add_timer(e->loop, ms, on_stop_timer, NULL);
    cr_assert_eq(loop_run(e->loop), 0);
    loop_set_before_sleep(e->loop, NULL, NULL);
}

/* ---- tests -------------------------------------------------------------------- */

Test(lease_mgr, queued_granted_returned)
{
    env_t e;
    env_init(&e, 1, 0, false, 0);
    answer_t a, b;
    cr_assert_eq(submit(&e, 1, "CPU=1", 1, false, &a), 0);
    cr_assert(a.answered);
    cr_assert_eq(a.kind, LEASE_GRANTED);
    cr_assert_eq(a.cpu_granted, RES_UNIT);
    cr_assert_eq(a.worker_port, 10000);
    cr_assert_eq(lease_mgr_granted(e.mgr), 1);
    cr_assert_eq(avail(&e, "CPU"), 0);
    cr_assert_eq(e.pool.leased_normal, 1);

    cr_assert_eq(submit(&e, 2, "CPU=1", 1, false, &b), 0);
    cr_assert_not(b.answered, "the second lease must wait for the CPU");
    cr_assert_eq(lease_mgr_queued(e.mgr), 1);
    const lease_demand_t *d;
    cr_assert_eq(lease_mgr_demand(e.mgr, &d), 1);
    cr_assert_eq(d[0].ready, 1);
    cr_assert_eq(d[0].infeasible, 0);

    give_back(&e, 1, false);
    cr_assert_eq(e.pool.release_count, 1);
    cr_assert_eq(e.pool.released_how[0], LEASE_RELEASE_IDLE);
    cr_assert(b.answered, "returning the first lease lets the second through");
    cr_assert_eq(b.kind, LEASE_GRANTED);
    cr_assert_eq(lease_mgr_queued(e.mgr), 0);

    give_back(&e, 2, true);
    cr_assert_eq(e.pool.released_how[1], LEASE_RELEASE_FAILED);
    cr_assert_eq(avail(&e, "CPU"), RES_UNIT);
    cr_assert_eq(lease_mgr_granted(e.mgr), 0);
    /* Busy, idle (return 1), busy (grant 2 in the same flush), idle. */
    cr_assert_eq(e.busy_changes, 4);
    /* Returning an unknown or already returned lease is harmless. */
    give_back(&e, 2, false);
    cr_assert_eq(e.pool.release_count, 2);
    env_fini(&e);
}

Test(lease_mgr, scheduling_is_batched_until_flush)
{
    env_t e;
    env_init(&e, 4, 0, false, 0);
    answer_t a[3];
    res_set_t *set = res_set_create();
    res_set_put(set, "CPU", RES_UNIT);
    for (uint8_t i = 0; i < 3; i++) {
        uint8_t id[8];
        lid(i + 1, id);
        lease_request_t r = {.id = id, .id_len = 8, .resources = set, .normal_task = true};
        memset(&a[i], 0, sizeof a[i]);
        cr_assert_eq(lease_mgr_request(e.mgr, &r, on_outcome, &a[i]), 0);
        cr_assert_not(a[i].answered, "nothing is granted before the flush");
    }
    lease_mgr_flush(e.mgr);
    for (int i = 0; i < 3; i++)
        cr_assert(a[i].answered && a[i].kind == LEASE_GRANTED);
    res_set_destroy(set);
    env_fini(&e);
}

Test(lease_mgr, duplicate_and_malformed_requests)
{
    env_t e;
    env_init(&e, 1, 0, false, 0);
    answer_t a, b, c;
    cr_assert_eq(submit(&e, 1, "CPU=1", 1, false, &a), 0);
    cr_assert_eq(a.kind, LEASE_GRANTED);
    /* A retry of a granted lease gets the same worker again. */
    cr_assert_eq(submit(&e, 1, "CPU=1", 1, false, &b), 0);
    cr_assert(b.answered);
    cr_assert_eq(b.kind, LEASE_GRANTED);
    cr_assert_eq(b.worker_port, a.worker_port);
    cr_assert_eq(lease_mgr_granted(e.mgr), 1);
    /* A second request for a queued lease id is refused. */
    cr_assert_eq(submit(&e, 2, "CPU=1", 1, false, &c), 0);
    cr_assert_eq(submit(&e, 2, "CPU=1", 1, false, &c), -EEXIST);
    lease_request_t bad = {.id = NULL, .id_len = 0};
    cr_assert_eq(lease_mgr_request(e.mgr, &bad, on_outcome, &c), -EINVAL);
    env_fini(&e);
}

Test(lease_mgr, cancel_queued_and_waiting)
{
    env_t e;
    env_init(&e, 2, 0, false, 0);
    e.pool.async = true;
    answer_t a, b, c;
    submit(&e, 1, "CPU=1", 1, false, &a);
    cr_assert_not(a.answered, "waiting for the pool");
    cr_assert_eq(e.pool.pop_count, 1);
    cr_assert_eq(avail(&e, "CPU"), RES_UNIT, "resources are held while the worker starts");
    submit(&e, 2, "CPU=1", 1, false, &b);
    submit(&e, 3, "CPU=1", 1, false, &c);
    cr_assert_not(c.answered);

    uint8_t id[8];
    lid(1, id);
    cr_assert(lease_mgr_cancel(e.mgr, id, 8));
    cr_assert(a.answered);
    cr_assert_eq(a.kind, LEASE_FAILED);
    cr_assert_eq(a.failure, LEASE_FAIL_INTENDED);
    cr_assert_eq(e.pool.cancelled, 1);
    lease_mgr_flush(e.mgr);
    cr_assert_eq(e.pool.pop_count, 3, "the freed CPU goes to the queued lease");

    lid(2, id);
    fake_finish_pop(&e.pool, 1, true, false);
    cr_assert_eq(b.kind, LEASE_GRANTED);
    cr_assert_not(lease_mgr_cancel(e.mgr, id, 8), "a granted lease is not cancelled");
    lid(3, id);
    cr_assert(lease_mgr_cancel(e.mgr, id, 8));
    cr_assert_eq(c.failure, LEASE_FAIL_INTENDED);
    lid(9, id);
    cr_assert_not(lease_mgr_cancel(e.mgr, id, 8));
    env_fini(&e);
}

/* A lease that could run here is granted only once its arguments are
 * local; no resources or worker are held while they come, a lease with no
 * arguments (or with them here) is not held up, and a lease that leaves
 * the queue stops its fetch. */
Test(lease_mgr, arguments_come_before_the_grant)
{
    env_t e;
    env_init(&e, 2, 0, false, 0);
    e.with_args = true;
    answer_t a, b, c;
    submit(&e, 1, "CPU=1", 1, false, &a);
    cr_assert_eq(e.fetches, 1);
    cr_assert_eq(e.last_nargs, 2);
    cr_assert_not(a.answered, "its arguments are not here yet");
    cr_assert_eq(avail(&e, "CPU"), 2 * RES_UNIT, "nothing held meanwhile");
    cr_assert_eq(e.pool.used, 0, "no worker taken meanwhile");
    uint64_t first = e.last_token;

    e.with_args = false;
    submit(&e, 2, "CPU=1", 1, false, &b);
    cr_assert(b.answered && b.kind == LEASE_GRANTED, "a lease without arguments goes ahead");
    cr_assert_eq(e.fetches, 1);

    lease_mgr_args_ready(e.mgr, first);
    lease_mgr_args_ready(e.mgr, first); /* twice, or stale: harmless */
    lease_mgr_args_ready(e.mgr, 999);
    lease_mgr_flush(e.mgr);
    cr_assert(a.answered && a.kind == LEASE_GRANTED, "granted once they are here");
    cr_assert_eq(e.cancels, 0);

    /* All here already: granted in the same walk. */
    e.with_args = true;
    e.args_local = true;
    give_back(&e, 2, false);
    submit(&e, 3, "CPU=1", 1, false, &c);
    cr_assert(c.answered && c.kind == LEASE_GRANTED);

    /* Cancelled while its arguments come: the fetch stops with it. */
    e.args_local = false;
    give_back(&e, 3, false);
    answer_t d;
    submit(&e, 4, "CPU=1", 1, false, &d);
    cr_assert_not(d.answered);
    uint8_t id[8];
    lid(4, id);
    cr_assert(lease_mgr_cancel(e.mgr, id, 8));
    cr_assert_eq(e.cancels, 1);
    uint64_t cancelled = e.last_token;
    lease_mgr_args_ready(e.mgr, cancelled); /* late news of a gone lease */
    lease_mgr_flush(e.mgr);

    /* Two more waiting for their arguments: stopping cancels both. */
    answer_t f, g;
    submit(&e, 5, "CPU=1", 1, false, &f);
    submit(&e, 6, "CPU=1", 1, false, &g);
    cr_assert_eq(e.fetches, 5);
    env_fini(&e);
    cr_assert_eq(e.cancels, 3);
    cr_assert(f.answered && f.kind == LEASE_FAILED);
}

/* Whoever asked for a lease is the only one who returns it: when it dies
 * its queued leases go and the workers it holds are killed, except a
 * detached actor's. */
Test(lease_mgr, leases_die_with_their_owner)
{
    env_t e;
    env_init(&e, 3, 0, false, 0);
    uint8_t driver[ID_UNIQUE_SIZE], other[ID_UNIQUE_SIZE];
    memset(driver, 0x11, sizeof driver);
    memset(other, 0x22, sizeof other);
    answer_t held, detached, queued, theirs;
    e.caller = driver;
    submit(&e, 1, "CPU=1", 1, false, &held);
    e.detached = true;
    submit(&e, 2, "CPU=1", 1, false, &detached);
    e.detached = false;
    e.caller = other;
    submit(&e, 3, "CPU=1", 1, false, &theirs);
    e.caller = driver;
    submit(&e, 4, "CPU=1", 1, false, &queued);
    cr_assert(held.answered && detached.answered && theirs.answered);
    cr_assert_not(queued.answered);
    cr_assert_eq(lease_mgr_owner_died(e.mgr, driver), 2, "its held and its queued lease");
    cr_assert(queued.answered && queued.kind == LEASE_FAILED);
    cr_assert_eq(e.pool.release_count, 1);
    cr_assert_eq(e.pool.released_how[0], LEASE_RELEASE_KILL, "its worker is killed");
    cr_assert_eq(e.pool.released[0]->index, 0);
    cr_assert_eq(lease_mgr_granted(e.mgr), 2, "the detached actor's and the other owner's stay");
    cr_assert_eq(lease_mgr_owner_died(e.mgr, driver), 0);
    /* A request it sent just before dying, arriving after: refused. */
    answer_t late;
    submit(&e, 5, "CPU=1", 1, false, &late);
    cr_assert(late.answered && late.kind == LEASE_FAILED);
    cr_assert_eq(lease_mgr_granted(e.mgr), 2);
    /* But GCS restarting a detached actor that driver made long ago names
     * the dead driver as caller: that lease is served. */
    answer_t restart;
    e.detached = true;
    submit(&e, 6, "CPU=1", 1, false, &restart);
    cr_assert(restart.answered && restart.kind == LEASE_GRANTED, "a detached actor's restart is leased");
    env_fini(&e);
}

Test(lease_mgr, pool_failure_answers_the_lease)
{
    env_t e;
    env_init(&e, 1, 0, false, 0);
    e.pool.async = true;
    answer_t a, b;
    submit(&e, 1, "CPU=1", 1, false, &a);
    submit(&e, 2, "CPU=1", 1, false, &b);
    fake_finish_pop(&e.pool, 0, false, true);
    cr_assert_eq(a.kind, LEASE_FAILED);
    cr_assert_eq(a.failure, LEASE_FAIL_RUNTIME_ENV);
    cr_assert_eq(avail(&e, "CPU"), RES_UNIT, "a failed pop gives its resources back");
    lease_mgr_flush(e.mgr);
    fake_finish_pop(&e.pool, 1, false, false);
    cr_assert_eq(b.failure, LEASE_FAIL_SCHEDULING);
    env_fini(&e);
}

Test(lease_mgr, spillback_reject_and_infeasible)
{
    env_t e;
    env_init(&e, 1, 0, false, 0);
    answer_t a, b, c, d;
    /* Never fits here; a node whose totals fit takes it. */
    e.remote_total = true;
    submit(&e, 1, "CPU=4", 1, false, &a);
    cr_assert_eq(a.kind, LEASE_SPILLBACK);
    cr_assert_str_eq(a.remote, "10.0.0.2:7777");
    /* Grant-or-reject never spills: it is rejected here. */
    submit(&e, 2, "CPU=4", 1, true, &b);
    cr_assert_eq(b.kind, LEASE_REJECTED);
    /* No node anywhere: kept as infeasible demand. */
    e.remote_total = false;
    submit(&e, 3, "CPU=4", 1, false, &c);
    cr_assert_not(c.answered);
    const lease_demand_t *dm;
    cr_assert_eq(lease_mgr_demand(e.mgr, &dm), 1);
    cr_assert_eq(dm[0].infeasible, 1);
    /* Busy here, free elsewhere: spilled to the node with it available. */
    submit(&e, 4, "CPU=1", 2, false, &d);
    cr_assert_eq(d.kind, LEASE_GRANTED);
    /* The autoscaler gives up on the infeasible shape. */
    res_set_t *shape = res_set_create();
    res_set_put(shape, "CPU", 4 * RES_UNIT);
    cr_assert_eq(lease_mgr_cancel_shapes(e.mgr, &shape, 1), 1);
    cr_assert_eq(c.failure, LEASE_FAIL_UNSCHEDULABLE);
    res_set_destroy(shape);
    answer_t f, g, h;
    e.remote_available = true;
    submit(&e, 5, "CPU=1", 2, false, &f);
    cr_assert_eq(f.kind, LEASE_SPILLBACK);
    /* Grant-or-reject, busy here and free elsewhere: rejected, so GCS asks
     * the free node instead of waiting on this one. */
    submit(&e, 6, "CPU=1", 3, true, &g);
    cr_assert_eq(g.kind, LEASE_REJECTED);
    /* Busy here and nowhere free: it waits here. */
    e.remote_available = false;
    submit(&e, 7, "CPU=1", 4, true, &h);
    cr_assert_not(h.answered);
    env_fini(&e);
}

/* An actor is placed by its placement resources (by default 1 CPU) and
 * holds only what it runs with (none): a node must have the CPU free to
 * take it, and one that never has a CPU sends it on. */
Test(lease_mgr, actors_are_placed_by_their_placement_resources)
{
    env_t e;
    env_init(&e, 1, 0, false, 0);
    answer_t a, b, c, d, f;
    e.placement = "CPU=1";
    submit(&e, 1, "", 1, false, &a);
    submit(&e, 2, "", 1, false, &b);
    cr_assert_eq(a.kind, LEASE_GRANTED);
    cr_assert_eq(b.kind, LEASE_GRANTED, "placed while the CPU is free; it holds none");
    cr_assert_eq(avail(&e, "CPU"), RES_UNIT);
    e.placement = NULL;
    submit(&e, 3, "CPU=1", 2, false, &c);
    cr_assert_eq(c.kind, LEASE_GRANTED);
    /* No CPU free here: another node with one free takes the actor. */
    e.placement = "CPU=1";
    e.remote_available = true;
    submit(&e, 4, "", 1, false, &d);
    cr_assert_eq(d.kind, LEASE_SPILLBACK);
    /* Nowhere free: it waits here, reported by the shape it is placed by. */
    e.remote_available = false;
    submit(&e, 5, "", 1, false, &f);
    cr_assert_not(f.answered);
    const lease_demand_t *dm;
    cr_assert_eq(lease_mgr_demand(e.mgr, &dm), 1);
    cr_assert_eq(res_set_get(dm[0].shape, "CPU"), RES_UNIT);
    give_back(&e, 3, false);
    lease_mgr_flush(e.mgr);
    cr_assert_eq(f.kind, LEASE_GRANTED);
    env_fini(&e);

    /* A node without CPUs (Ray's usual head node) never takes it. */
    env_t z;
    env_init(&z, 0, 0, false, 0);
    z.placement = "CPU=1";
    z.remote_total = true;
    answer_t g, h;
    submit(&z, 1, "", 1, false, &g);
    cr_assert_eq(g.kind, LEASE_SPILLBACK);
    submit(&z, 2, "", 1, true, &h);
    cr_assert_eq(h.kind, LEASE_REJECTED, "GCS asks a node that can place it");
    env_fini(&z);
}

/* A draining node grants nothing more: leases go elsewhere, or wait here
 * as demand; those bound here fail; granted ones run on. */
Test(lease_mgr, a_draining_node_grants_nothing_more)
{
    env_t e;
    env_init(&e, 2, 0, false, 0);
    answer_t running, queued, spilled, bound, placed, waiting;
    submit(&e, 1, "CPU=1", 1, false, &running);
    cr_assert_eq(running.kind, LEASE_GRANTED);
    submit(&e, 2, "CPU=2", 1, false, &queued);
    cr_assert_not(queued.answered, "busy: queued here");
    lease_mgr_set_draining(e.mgr);
    e.remote_total = true; /* another node could run it, though busy now */
    lease_mgr_flush(e.mgr);
    cr_assert_eq(queued.kind, LEASE_SPILLBACK, "a queued lease leaves for the other node");
    submit(&e, 3, "CPU=1", 2, false, &spilled);
    cr_assert_eq(spilled.kind, LEASE_SPILLBACK, "a CPU free here is not offered");
    e.local_only = true;
    submit(&e, 4, "CPU=1", 3, false, &bound);
    cr_assert(bound.answered && bound.failure == LEASE_FAIL_UNSCHEDULABLE, "hard affinity to this node fails");
    e.local_only = false;
    submit(&e, 5, "CPU=1", 4, true, &placed);
    cr_assert_eq(placed.kind, LEASE_REJECTED, "GCS's grant-or-reject goes elsewhere");
    e.remote_total = false;
    submit(&e, 6, "CPU=1", 5, false, &waiting);
    cr_assert_not(waiting.answered, "no other node: it waits here");
    const lease_demand_t *dm;
    cr_assert_eq(lease_mgr_demand(e.mgr, &dm), 1);
    cr_assert_eq(dm[0].infeasible, 1, "as demand for a new node");
    cr_assert_eq(lease_mgr_granted(e.mgr), 1, "the running lease runs on");
    give_back(&e, 1, false);
    cr_assert_eq(lease_mgr_granted(e.mgr), 0);
    cr_assert_not(waiting.answered, "a freed CPU is still not used");
    env_fini(&e);
}

Test(lease_mgr, blocked_worker_lends_its_cpu)
{
    env_t e;
    env_init(&e, 1, 0, false, 0);
    answer_t a, b;
    submit(&e, 1, "CPU=1", 1, false, &a);
    submit(&e, 2, "CPU=1", 2, false, &b);
    cr_assert_not(b.answered);
    struct worker *wa = &e.pool.workers[0];
    lease_mgr_worker_blocked(e.mgr, wa);
    cr_assert_eq(lease_mgr_blocked(e.mgr), 1);
    cr_assert_eq(avail(&e, "CPU"), RES_UNIT, "the blocked lease lent its CPU");
    lease_mgr_flush(e.mgr);
    cr_assert_eq(b.kind, LEASE_GRANTED, "the nested task runs on the lent CPU");
    /* Unblocking runs oversubscribed rather than stalling. */
    lease_mgr_worker_unblocked(e.mgr, wa);
    cr_assert_eq(lease_mgr_blocked(e.mgr), 0);
    cr_assert_eq(avail(&e, "CPU"), 0);
    give_back(&e, 2, false);
    give_back(&e, 1, false);
    cr_assert_eq(avail(&e, "CPU"), RES_UNIT, "nothing leaked or double-freed");
    env_fini(&e);
}

Test(lease_mgr, worker_cap_backs_off_one_class_only)
{
    env_t e;
    env_init(&e, 1, 0, true, 150);
    answer_t a, b, other;
    submit(&e, 1, "CPU=1", 7, false, &a);
    cr_assert_eq(a.kind, LEASE_GRANTED);
    lease_mgr_worker_blocked(e.mgr, &e.pool.workers[0]);
    /* Same class, CPU free again (lent): held back by the cap. */
    submit(&e, 2, "CPU=1", 7, false, &b);
    cr_assert_not(b.answered, "the class already holds the node's CPUs: back off");
    /* Another class goes first. */
    submit(&e, 3, "CPU=1", 8, false, &other);
    cr_assert_eq(other.kind, LEASE_GRANTED);
    give_back(&e, 3, false);
    cr_assert_not(b.answered);
    /* After the back-off the capped class gets its extra lease. */
    run_for(&e, 400);
    cr_assert(b.answered, "the back-off timer let the lease through");
    cr_assert_eq(b.kind, LEASE_GRANTED);
    env_fini(&e);
}

Test(lease_mgr, worker_death_frees_the_lease)
{
    env_t e;
    env_init(&e, 1, 1, false, 0);
    answer_t a;
    submit(&e, 1, "CPU=1,GPU=1", 1, false, &a);
    cr_assert_eq(a.kind, LEASE_GRANTED);
    cr_assert_eq(a.gpu_count, 1);
    struct worker *w = &e.pool.workers[0];
    cr_assert(lease_mgr_worker_leased(e.mgr, w));
    lease_mgr_worker_dead(e.mgr, w);
    cr_assert_not(lease_mgr_worker_leased(e.mgr, w));
    cr_assert_eq(avail(&e, "GPU"), RES_UNIT);
    cr_assert_eq(avail(&e, "CPU"), RES_UNIT);
    /* Its return, arriving late, finds nothing. */
    give_back(&e, 1, false);
    cr_assert_eq(e.pool.release_count, 0);
    env_fini(&e);
}

Test(lease_mgr, bundle_leases_and_removal)
{
    env_t e;
    env_init(&e, 2, 4, false, 0);
    bundles_t *bundles = bundles_create(e.res, NULL);
    res_set_t *two_gpus = res_set_create();
    res_set_put(two_gpus, "GPU", 2 * RES_UNIT);
    bundle_spec_t spec = {.index = 0, .resources = two_gpus};
    memset(spec.pg_id, 0x5a, sizeof spec.pg_id);
    cr_assert_eq(bundles_prepare(bundles, &spec, 1), 0);
    bundles_commit(bundles, &spec, 1);
    char pg_hex[ID_HEX_BUF];
    id_to_hex(spec.pg_id, ID_PG_SIZE, pg_hex);
    char shape[160];
    snprintf(shape, sizeof shape, "GPU_group_0_%s=1", pg_hex);
    answer_t a, b, c;
    submit(&e, 1, shape, 1, false, &a);
    cr_assert_eq(a.kind, LEASE_GRANTED, "a lease on the committed bundle is granted");
    submit(&e, 2, shape, 1, false, &b);
    cr_assert_eq(b.kind, LEASE_GRANTED);
    submit(&e, 3, shape, 1, false, &c);
    cr_assert_not(c.answered, "the bundle holds two GPUs only");

    /* The service passes the group id's hex: it names both the wildcard
     * and the indexed resources of every bundle of the group. */
    cr_assert_eq(lease_mgr_drop_matching(e.mgr, pg_hex), 2);
    cr_assert_eq(e.pool.release_count, 2);
    cr_assert_eq(e.pool.released_how[0], LEASE_RELEASE_KILL);
    cr_assert_eq(e.pool.released_how[1], LEASE_RELEASE_KILL);
    cr_assert_eq(c.kind, LEASE_FAILED);
    cr_assert_eq(c.failure, LEASE_FAIL_PG_REMOVED);
    cr_assert_eq(lease_mgr_granted(e.mgr), 0);
    cr_assert_eq(bundles_return(bundles, &spec), 0, "with its leases gone the bundle can be returned");
    cr_assert_eq(avail(&e, "GPU"), 4 * RES_UNIT);
    res_set_destroy(two_gpus);
    bundles_destroy(bundles);
    env_fini(&e);
}

Test(lease_mgr, stop_answers_everything_once)
{
    env_t e;
    env_init(&e, 1, 0, false, 0);
    e.pool.async = true;
    answer_t a, b, c;
    submit(&e, 1, "CPU=1", 1, false, &a); /* waiting for the pool */
    submit(&e, 2, "CPU=1", 1, false, &b); /* queued */
    lease_mgr_stop(e.mgr);
    cr_assert_eq(a.failure, LEASE_FAIL_SHUTDOWN);
    cr_assert_eq(b.failure, LEASE_FAIL_SHUTDOWN);
    cr_assert_eq(e.pool.cancelled, 1);
    cr_assert_eq(avail(&e, "CPU"), RES_UNIT);
    cr_assert_eq(submit(&e, 3, "CPU=1", 1, false, &c), 0);
    cr_assert_eq(c.failure, LEASE_FAIL_SHUTDOWN, "after stop, requests are answered at once");
    lease_mgr_stop(e.mgr); /* idempotent */
    env_fini(&e);
}

Test(lease_mgr, older_pop_failing_inside_the_walk_leaves_the_queue)
{
    env_t e;
    env_init(&e, 2, 0, false, 0);
    e.pool.async = true;
    answer_t a, b, again;
    submit(&e, 1, "CPU=1", 1, false, &a);
    cr_assert_eq(e.pool.pop_count, 1);
    e.pool.fail_oldest_on_pop = true;
    submit(&e, 2, "CPU=1", 1, false, &b); /* its pop fails lease 1's */
    cr_assert(a.answered);
    cr_assert_eq(a.failure, LEASE_FAIL_SCHEDULING);
    cr_assert_not(b.answered);
    cr_assert_eq(lease_mgr_queued(e.mgr), 1, "the failed lease is gone, only lease 2 waits");
    cr_assert_eq(avail(&e, "CPU"), RES_UNIT, "the failed lease's CPU came back");
    const lease_demand_t *d;
    cr_assert_eq(lease_mgr_demand(e.mgr, &d), 0, "no phantom demand");
    /* A retry of lease 1 is a new request, not a duplicate. */
    cr_assert_eq(submit(&e, 1, "CPU=1", 1, false, &again), 0);
    cr_assert_eq(e.pool.pop_count, 3);
    fake_finish_pop(&e.pool, 1, true, false);
    fake_finish_pop(&e.pool, 2, true, false);
    cr_assert_eq(b.kind, LEASE_GRANTED);
    cr_assert_eq(again.kind, LEASE_GRANTED);
    env_fini(&e);
}

/* ---- the memory monitor over granted leases ------------------------------------- */

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

/* A /proc with meminfo at `avail_kb` of 1000000 kB free, and worker pids
 * 500.. in `state` (R: running, Z: gone but not reaped). */
static void fake_proc_uss(const char *proc, long avail_kb, size_t workers, const char *states, const long *uss_kb)
{
    char text[256];
    snprintf(text, sizeof text, "MemTotal:       1000000 kB\nMemFree:  %ld kB\nMemAvailable:   %ld kB\n", avail_kb,
             avail_kb);
    write_file(proc, "meminfo", text);
    for (size_t i = 0; i < workers; i++) {
        char dir[512], name[64];
        snprintf(dir, sizeof dir, "%s/%zu", proc, 500 + i);
        mkdir(dir, 0700);
        snprintf(text, sizeof text, "%zu (python (odd) name) %c 1 2 3\n", 500 + i, states[i]);
        write_file(dir, "stat", text);
        snprintf(name, sizeof name, "smaps_rollup");
        snprintf(text, sizeof text, "00400000-7ffc [rollup]\nRss: 9000 kB\nPrivate_Clean: 100 kB\nPrivate_Dirty: %ld kB\n",
                 uss_kb ? uss_kb[i] : 2048L);
        write_file(dir, name, text);
    }
}

static void fake_proc(const char *proc, long avail_kb, size_t workers, const char *states)
{
    fake_proc_uss(proc, avail_kb, workers, states, NULL);
}

/* A fixture tree: root/ (no cgroup files there: meminfo decides) and
 * root/proc/. */
#define OOM_ROOT "/tmp/craylet-oom-XXXXXX"
static void oom_root_make(char root[sizeof OOM_ROOT], char proc[sizeof OOM_ROOT + 8])
{
    memcpy(root, OOM_ROOT, sizeof OOM_ROOT);
    cr_assert_not_null(mkdtemp(root));
    snprintf(proc, sizeof OOM_ROOT + 8, "%s/proc", root);
    cr_assert_eq(mkdir(proc, 0700), 0);
}

static void oom_root_remove(const char *root)
{
    char cmd[64 + sizeof OOM_ROOT];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    cr_assert_eq(system(cmd), 0);
}

static void count_evictions(void *ctx, const char *type, const char *name, uint64_t n)
{
    cr_assert_str_eq(type, "MemoryManager.TaskEviction.Total");
    cr_assert_str_eq(name, "hog");
    *(uint64_t *)ctx += n;
}

Test(lease_mgr, memory_monitor_kills_the_newest_lease_of_the_largest_retriable_group)
{
    char root[sizeof OOM_ROOT], proc[sizeof OOM_ROOT + 8];
    oom_root_make(root, proc);
    fake_proc(proc, 10000, 3, "RRR"); /* 99% used */

    env_t e;
    env_init(&e, 3, 0, false, 0);
    answer_t a, b, c;
    e.parent = 7;
    submit(&e, 1, "CPU=1", 1, false, &a);
    submit(&e, 2, "CPU=1", 1, false, &b);
    e.parent = 8;
    e.not_retriable = true;
    submit(&e, 3, "CPU=1", 1, false, &c);
    cr_assert(a.answered && b.answered && c.answered);
    cr_assert_eq(lease_mgr_granted(e.mgr), 3);

    mem_monitor_options_t mo = {.loop = e.loop, .leases = e.mgr, .interval_ms = 3600 * 1000,
                                .usage_threshold = 0.9, .min_memory_free_bytes = -1,
                                .failure_ttl_ms = 60000, .node_ip = "10.0.0.1", .node_id_hex = "ab",
                                .by_group = true,
                                .cgroup_root = root /* no cgroup files: meminfo decides */, .proc_dir = proc};
    mem_monitor_t *m = mem_monitor_create(&mo);

    mem_monitor_check(m);
    cr_assert_eq(mem_monitor_kills(m), 1);
    cr_assert_eq(e.pool.release_count, 1);
    cr_assert_eq(e.pool.released_how[0], LEASE_RELEASE_OOM);
    cr_assert_eq(e.pool.released[0], &e.pool.workers[1], "the newest lease of task 7's pair goes first");
    cr_assert_eq(lease_mgr_granted(e.mgr), 2);
    cr_assert_eq(avail(&e, "CPU"), RES_UNIT, "its CPU is back");
    uint8_t id[8];
    const char *msg;
    bool retry;
    lid(2, id);
    cr_assert(mem_monitor_failure_cause(m, id, 8, &msg, &retry));
    cr_assert(retry, "its group keeps a member running: worth retrying");
    cr_assert_not_null(strstr(msg, "Task was killed due to the node running low on memory"), "%s", msg);
    cr_assert_not_null(strstr(msg, "name=hog, pid=501, memory used=0.00GB"), "%s", msg);
    lid(1, id);
    cr_assert_not(mem_monitor_failure_cause(m, id, 8, &msg, &retry), "nothing recorded for a lease not killed");

    /* The killed process has not exited yet: nobody else dies meanwhile. */
    mem_monitor_check(m);
    cr_assert_eq(mem_monitor_kills(m), 1);

    /* It has (a zombie holds no memory): the last of task 7's leases goes,
     * still before the non-retriable one, and is not worth retrying. */
    fake_proc(proc, 10000, 3, "RZR");
    mem_monitor_check(m);
    cr_assert_eq(mem_monitor_kills(m), 2);
    cr_assert_eq(e.pool.released[1], &e.pool.workers[0]);
    lid(1, id);
    cr_assert(mem_monitor_failure_cause(m, id, 8, &msg, &retry));
    cr_assert_not(retry);

    /* Memory is back below the threshold: no more kills. */
    fake_proc(proc, 500000, 3, "ZZR");
    mem_monitor_check(m);
    cr_assert_eq(mem_monitor_kills(m), 2);
    cr_assert_eq(lease_mgr_granted(e.mgr), 1);

    uint64_t evictions = 0;
    mem_monitor_drain_evictions(m, count_evictions, &evictions);
    cr_assert_eq(evictions, 2);
    evictions = 0;
    mem_monitor_drain_evictions(m, count_evictions, &evictions);
    cr_assert_eq(evictions, 0, "counts are taken once");

    mem_monitor_destroy(m);
    env_fini(&e);
    oom_root_remove(root);
}

Test(lease_mgr, memory_monitor_by_time_kills_enough_newest_retriable_leases_at_once)
{
    char root[sizeof OOM_ROOT], proc[sizeof OOM_ROOT + 8];
    oom_root_make(root, proc);
    /* 99% of 1000000 kB used; the threshold is 90% and the buffer 5%: 14%
     * (about 140 MB) must go.  The middle worker holds 100 MB, the others
     * 60 MB each. */
    long uss[] = {60 * 1024, 100 * 1024, 60 * 1024};
    fake_proc_uss(proc, 10000, 3, "RRR", uss);

    env_t e;
    env_init(&e, 3, 0, false, 0);
    answer_t a, b, c;
    e.parent = 7;
    submit(&e, 1, "CPU=1", 1, false, &a);
    submit(&e, 2, "CPU=1", 1, false, &b);
    e.not_retriable = true;
    submit(&e, 3, "CPU=1", 1, false, &c);
    cr_assert_eq(lease_mgr_granted(e.mgr), 3);

    mem_monitor_options_t mo = {.loop = e.loop, .leases = e.mgr, .interval_ms = 3600 * 1000,
                                .usage_threshold = 0.9, .min_memory_free_bytes = -1, .failure_ttl_ms = 60000,
                                .node_ip = "10.0.0.1", .node_id_hex = "ab", .by_group = false,
                                .max_kill_buffer_bytes = 3LL << 30, .cgroup_root = root, .proc_dir = proc};
    mem_monitor_t *m = mem_monitor_create(&mo);
    mem_monitor_check(m);
    /* Retriable ones first, newest first: lease 2 (100 MB) then lease 1
     * (60 MB) cover it; the non-retriable lease 3 lives. */
    cr_assert_eq(mem_monitor_kills(m), 2);
    cr_assert_eq(e.pool.release_count, 2);
    cr_assert_eq(e.pool.released[0], &e.pool.workers[1]);
    cr_assert_eq(e.pool.released[1], &e.pool.workers[0]);
    cr_assert_eq(e.pool.released_how[1], LEASE_RELEASE_OOM);
    cr_assert_eq(lease_mgr_granted(e.mgr), 1);
    uint8_t id[8];
    const char *msg;
    bool retry;
    lid(1, id);
    cr_assert(mem_monitor_failure_cause(m, id, 8, &msg, &retry));
    cr_assert(retry, "retriable work is retried under this policy, whatever its group");
    cr_assert_not_null(strstr(msg, "2 worker(s) were killed due to the node running low on memory"), "%s", msg);

    /* Both must be gone before anything else dies. */
    fake_proc_uss(proc, 10000, 3, "ZRR", uss);
    mem_monitor_check(m);
    cr_assert_eq(mem_monitor_kills(m), 2);
    fake_proc_uss(proc, 10000, 3, "ZZR", uss);
    mem_monitor_check(m);
    cr_assert_eq(mem_monitor_kills(m), 3, "then the non-retriable one");
    lid(3, id);
    cr_assert(mem_monitor_failure_cause(m, id, 8, &msg, &retry));
    cr_assert_not(retry);
    cr_assert_not_null(strstr(msg, "Set max_retries to enable retry"), "%s", msg);

    mem_monitor_destroy(m);
    env_fini(&e);
    oom_root_remove(root);
}

/* Node affinity to another node: hard goes there whatever this node has
 * free (or fails once that node is gone); soft goes there only while it has
 * the resources free, and otherwise runs like any lease. */
Test(lease_mgr, node_affinity_to_another_node)
{
    env_t e;
    env_init(&e, 2, 0, false, 0);
    uint8_t other[ID_UNIQUE_SIZE];
    memset(other, 0x77, sizeof other);
    answer_t hard, gone, soft_there, soft_here, gor;
    e.affinity = other;
    e.node_alive = true;
    submit(&e, 1, "CPU=1", 1, false, &hard);
    cr_assert_eq(hard.kind, LEASE_SPILLBACK, "CPUs free here do not matter");
    cr_assert_str_eq(hard.remote, "10.0.0.9:9999");
    submit(&e, 2, "CPU=1", 1, true, &gor);
    cr_assert_eq(gor.kind, LEASE_REJECTED, "GCS's grant-or-reject is placed again by GCS");
    e.node_alive = false;
    submit(&e, 3, "CPU=1", 1, false, &gone);
    cr_assert(gone.answered && gone.failure == LEASE_FAIL_UNSCHEDULABLE, "the node is gone");
    e.affinity_soft = true;
    e.node_alive = e.node_free = true;
    submit(&e, 4, "CPU=1", 1, false, &soft_there);
    cr_assert_eq(soft_there.kind, LEASE_SPILLBACK);
    e.node_free = false;
    submit(&e, 5, "CPU=1", 1, false, &soft_here);
    cr_assert_eq(soft_here.kind, LEASE_GRANTED, "that node is busy: runs here");
    cr_assert_eq(lease_mgr_granted(e.mgr), 1);
    env_fini(&e);
}
