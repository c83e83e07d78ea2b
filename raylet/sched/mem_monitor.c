#include "raylet/sched/mem_monitor.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/id.h"
#include "common/list.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "common/sysmem.h"
#include "common/utf8.h"
#include "raylet/sched/oom_policy.h"

#define CANDIDATES_MAX 4096
#define CAUSES_MAX 4096
#define EVENT_EVERY_MS 10000 /* stock's pace for the "Out of Memory" event */
#define WAIT_LOG_EVERY_MS 1000
#define IDLE_LOG_EVERY_MS 5000

typedef struct mem_cause {
    list_t node; /* m->causes, oldest first */
    uint8_t id[LEASE_ID_MAX];
    size_t id_len;
    char *message;
    bool should_retry;
    uint64_t at_ms;
} mem_cause_t;

typedef struct mem_eviction {
    char *type, *name;
    uint64_t pending; /* since the last drain */
} mem_eviction_t;

struct mem_monitor {
    mem_monitor_options_t o;
    char *node_ip, *node_id_hex, *cgroup_root, *proc_dir;
    uint64_t timer;
    bool stopped;
    int64_t threshold_bytes; /* from the total seen at creation; -1 unknown */
    pid_t *killing;          /* the workers last killed, until their processes are gone */
    size_t nkilling;
    int64_t kill_buffer_bytes; /* by time: freed beyond the threshold */
    uint64_t last_event_ms, last_wait_log_ms, last_idle_log_ms;
    bool evented, wait_logged, idle_logged;
    list_t causes;
    size_t ncauses;
    mem_eviction_t *evictions;
    size_t nevictions;
    uint64_t kills;
};

static void mem_on_timer(loop_t *loop, uint64_t id, void *data)
{
    (void)loop, (void)id;
    mem_monitor_t *m = data;
    m->timer = 0;
    mem_monitor_check(m);
    if (!m->stopped)
        m->timer = loop_add_timer(m->o.loop, m->o.interval_ms, mem_on_timer, m);
}

mem_monitor_t *mem_monitor_create(const mem_monitor_options_t *opts)
{
    mem_monitor_t *m = xcalloc(1, sizeof *m);
    m->o = *opts;
    m->node_ip = xstrdup(opts->node_ip ? opts->node_ip : "");
    m->node_id_hex = xstrdup(opts->node_id_hex ? opts->node_id_hex : "");
    m->cgroup_root = xstrdup(opts->cgroup_root ? opts->cgroup_root : SYSMEM_CGROUP_ROOT);
    m->proc_dir = xstrdup(opts->proc_dir ? opts->proc_dir : SYSMEM_PROC_DIR);
    list_init(&m->causes);
    sysmem_t mem;
    sysmem_read(m->cgroup_root, m->proc_dir, &mem);
    m->threshold_bytes = sysmem_threshold(mem.total_bytes, opts->usage_threshold, opts->min_memory_free_bytes);
    /* Stock: 5% of the node's memory, at most max_kill_memory_buffer_bytes. */
    m->kill_buffer_bytes = mem.total_bytes > 0 ? mem.total_bytes / 20 : 0;
    if (opts->max_kill_buffer_bytes >= 0 && m->kill_buffer_bytes > opts->max_kill_buffer_bytes)
        m->kill_buffer_bytes = opts->max_kill_buffer_bytes;
    if (opts->interval_ms == 0) {
        log_info("memory monitor off (memory_monitor_refresh_ms is 0): no worker is killed for memory");
        return m;
    }
    if (m->threshold_bytes < 0)
        log_warn("memory monitor: the node's memory cannot be read; no worker will be killed for memory");
    else
        log_info("memory monitor: killing workers above %" PRId64 " bytes (%.1f%% of %" PRId64 "), checked every %" PRIu64
                 " ms",
                 m->threshold_bytes, 100.0 * (double)m->threshold_bytes / (double)mem.total_bytes, mem.total_bytes,
                 opts->interval_ms);
    m->timer = loop_add_timer(opts->loop, opts->interval_ms, mem_on_timer, m);
    return m;
}

void mem_monitor_stop(mem_monitor_t *m)
{
    if (!m || m->stopped)
        return;
    m->stopped = true;
    if (m->timer)
        loop_cancel_timer(m->o.loop, m->timer);
    m->timer = 0;
}

static void cause_free(mem_monitor_t *m, mem_cause_t *c)
{
    list_remove(&c->node);
    m->ncauses--;
    free(c->message);
    free(c);
}

void mem_monitor_destroy(mem_monitor_t *m)
{
    if (!m)
        return;
    mem_monitor_stop(m);
    while (!list_empty(&m->causes))
        cause_free(m, LIST_ENTRY(m->causes.next, mem_cause_t, node));
    for (size_t i = 0; i < m->nevictions; i++) {
        free(m->evictions[i].type);
        free(m->evictions[i].name);
    }
    free(m->evictions);
    free(m->killing);
    free(m->node_ip);
    free(m->node_id_hex);
    free(m->cgroup_root);
    free(m->proc_dir);
    free(m);
}

/* Whether the process still holds its memory: present and not a zombie
 * (read from /proc; the pool is the only one to signal or reap it). */
static bool process_alive(const char *proc_dir, pid_t pid)
{
    char path[512], buf[512];
    snprintf(path, sizeof path, "%s/%d/stat", proc_dir, (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *close = strrchr(buf, ')'); /* the name may hold anything */
    return !(close && close[1] == ' ' && (close[2] == 'Z' || close[2] == 'X'));
}

static bool paced(uint64_t now, uint64_t *last, bool *done, uint64_t every)
{
    if (*done && now - *last < every)
        return false;
    *last = now;
    *done = true;
    return true;
}

static void gc_causes(mem_monitor_t *m, uint64_t now)
{
    while (!list_empty(&m->causes)) {
        mem_cause_t *c = LIST_ENTRY(m->causes.next, mem_cause_t, node);
        if (m->ncauses <= CAUSES_MAX && now - c->at_ms <= m->o.failure_ttl_ms)
            break;
        cause_free(m, c);
    }
}

static void count_eviction(mem_monitor_t *m, const char *type, const char *name)
{
    for (size_t i = 0; i < m->nevictions; i++)
        if (strcmp(m->evictions[i].type, type) == 0 && strcmp(m->evictions[i].name, name) == 0) {
            m->evictions[i].pending++;
            return;
        }
    m->evictions = xrealloc(m->evictions, (m->nevictions + 1) * sizeof *m->evictions);
    m->evictions[m->nevictions++] = (mem_eviction_t){xstrdup(type), xstrdup(name), 1};
}

static double gib(int64_t bytes) { return (double)bytes / 1024.0 / 1024.0 / 1024.0; }

/* The stock raylet's wording, which users search for: 2.54's for the
 * by-group policy, 2.60's for the by-time one. */
static char *kill_message(mem_monitor_t *m, const lease_granted_info_t *all, const oom_candidate_t *cand, size_t n,
                          size_t v, size_t nvictims, const sysmem_t *mem)
{
    const lease_granted_info_t *victim = &all[v];
    char lease_hex[2 * LEASE_ID_MAX + 1];
    id_to_hex(victim->id, victim->id_len, lease_hex);
    char text[4096];
    strbuf_t sb = {text, sizeof text, 0};
    int64_t victim_uss = cand[v].uss;
    double fraction = (double)mem->used_bytes / (double)mem->total_bytes;
    double threshold = (double)m->threshold_bytes / (double)mem->total_bytes;
    if (m->o.by_group)
        strbuf_printf(&sb,
                      "Task was killed due to the node running low on memory. Memory on the node (IP: %s, ID: %s) "
                      "where the lease (%s, name=%s, pid=%d, memory used=%.2fGB) was running was %.2fGB / %.2fGB "
                      "(%f), which exceeds the memory usage threshold of %f. Ray killed this worker because it was "
                      "the most recently scheduled task; ",
                      m->node_ip, m->node_id_hex, lease_hex, victim->task_name, (int)victim->pid,
                      gib(victim_uss > 0 ? victim_uss : 0), gib(mem->used_bytes), gib(mem->total_bytes), fraction,
                      threshold);
    else
        strbuf_printf(&sb,
                      "%zu worker(s) were killed due to the node running low on memory. Memory on the node (IP: %s, "
                      "ID: %s) was %.2fGB used / %.2fGB limit (%f), which exceeds the memory usage threshold of %f. "
                      "Selected to kill: (lease ID=%s, task name=%s, pid=%d, actual memory used=%.2fGB). ",
                      nvictims, m->node_ip, m->node_id_hex, gib(mem->used_bytes), gib(mem->total_bytes), fraction,
                      threshold, lease_hex, victim->task_name, (int)victim->pid, gib(victim_uss > 0 ? victim_uss : 0));
    strbuf_printf(&sb,
                  "To see more information about memory usage on this node, use `ray logs raylet.out -ip %s`. "
                  "Memory used by this node's leased workers (newest first):",
                  m->node_ip);
    size_t shown = 0;
    for (size_t i = n; i-- > 0 && shown < 10; shown++)
        strbuf_printf(&sb, "%s pid=%d %.2fGB (%s)", shown ? "," : "", (int)all[i].pid,
                      gib(cand[i].uss > 0 ? cand[i].uss : 0), all[i].task_name[0] ? all[i].task_name : "-");
    strbuf_printf(&sb,
                  ". Refer to the documentation on how to address the out of memory issue: "
                  "https://docs.ray.io/en/latest/ray-core/scheduling/ray-oom-prevention.html. Consider "
                  "provisioning more memory on this node or reducing task parallelism by requesting more CPUs "
                  "per task. %sTo adjust the kill threshold, set the environment variable "
                  "`RAY_memory_usage_threshold` when starting Ray. To disable worker killing, set the "
                  "environment variable `RAY_memory_monitor_refresh_ms` to zero.",
                  victim->retriable        ? ""
                  : victim->actor_creation ? "Set max_restarts and max_task_retries to enable retry when the task "
                                             "crashes due to OOM. "
                                           : "Set max_retries to enable retry when the task crashes due to OOM. ");
    /* A message cut at the buffer's end is still one the owner can show,
     * but not with half a character (task names may be any UTF-8). */
    size_t len = strlen(text);
    for (int i = 0; i < 3 && len && !utf8_valid(text, len); i++)
        text[--len] = '\0';
    return xstrdup(text);
}

/* Record why all[vi] dies, count it, and remember its pid until it is
 * gone.  The lease itself is taken afterwards (its strings go with it). */
static char *mem_record_kill(mem_monitor_t *m, const lease_granted_info_t *all, const oom_candidate_t *cand, size_t n,
                             size_t vi, size_t nvictims, bool should_retry, const sysmem_t *mem, uint64_t now)
{
    const lease_granted_info_t *v = &all[vi];
    char *message = kill_message(m, all, cand, n, vi, nvictims, mem);
    log_info("killing worker pid %d (task %s) for memory: %s", (int)v->pid, v->task_name, message);
    if (m->o.events && paced(now, &m->last_event_ms, &m->evented, EVENT_EVERY_MS))
        ray_event_log_write(m->o.events, RAY_EVENT_ERROR, "Out of Memory", message);
    mem_cause_t *c = xcalloc(1, sizeof *c);
    memcpy(c->id, v->id, v->id_len);
    c->id_len = v->id_len;
    c->message = message;
    c->should_retry = should_retry;
    c->at_ms = now;
    list_insert_tail(&m->causes, &c->node);
    m->ncauses++;
    count_eviction(m, v->actor_creation ? "MemoryManager.ActorEviction.Total" : "MemoryManager.TaskEviction.Total",
                   v->task_name);
    m->killing = xrealloc(m->killing, (m->nkilling + 1) * sizeof *m->killing);
    m->killing[m->nkilling++] = v->pid;
    m->kills++;
    return message;
}

void mem_monitor_check(mem_monitor_t *m)
{
    if (m->stopped)
        return;
    uint64_t now = loop_now_ms(m->o.loop);
    gc_causes(m, now);
    if (m->threshold_bytes < 0)
        return;
    sysmem_t mem;
    sysmem_read(m->cgroup_root, m->proc_dir, &mem);
    if (mem.used_bytes < 0 || mem.total_bytes <= 0 || mem.used_bytes <= m->threshold_bytes)
        return;
    /* The last kills first free their memory. */
    size_t alive = 0;
    for (size_t i = 0; i < m->nkilling; i++)
        if (process_alive(m->proc_dir, m->killing[i]))
            m->killing[alive++] = m->killing[i];
    m->nkilling = alive;
    if (alive) {
        if (paced(now, &m->last_wait_log_ms, &m->wait_logged, WAIT_LOG_EVERY_MS))
            log_info("memory usage above threshold; still waiting for %zu killed worker(s) to exit (pid %d)", alive,
                     (int)m->killing[0]);
        return;
    }
    lease_granted_info_t *all = xmalloc(CANDIDATES_MAX * sizeof *all);
    size_t n = lease_mgr_granted_list(m->o.leases, all, CANDIDATES_MAX);
    if (n == 0) {
        if (paced(now, &m->last_idle_log_ms, &m->idle_logged, IDLE_LOG_EVERY_MS))
            log_warn("memory usage %" PRId64 " bytes is above the threshold %" PRId64
                     " but no leased worker can be killed (idle workers or other processes hold the memory)",
                     mem.used_bytes, m->threshold_bytes);
        free(all);
        return;
    }
    /* Each worker's memory is read once: the by-time policy weighs it and
     * the message shows it. */
    oom_candidate_t *cand = xmalloc(n * sizeof *cand);
    size_t *order = xmalloc(n * sizeof *order);
    for (size_t i = 0; i < n; i++)
        cand[i] = (oom_candidate_t){all[i].retriable, all[i].parent_task_id, all[i].granted_at_ms,
                                    sysmem_process_uss(m->proc_dir, all[i].pid)};
    size_t nvictims;
    bool group_retry = false;
    if (m->o.by_group) {
        order[0] = (size_t)oom_pick(cand, n, &group_retry);
        nvictims = 1;
    } else {
        nvictims = oom_pick_by_time(cand, n, mem.used_bytes - m->threshold_bytes + m->kill_buffer_bytes, order);
    }
    /* Everything is recorded before any lease is taken: taking one frees
     * its strings and may reorder the list. */
    struct {
        uint8_t id[LEASE_ID_MAX];
        size_t id_len;
        const char *message; /* the cause's */
    } *victims = xmalloc(nvictims * sizeof *victims);
    for (size_t k = 0; k < nvictims; k++) {
        const lease_granted_info_t *v = &all[order[k]];
        bool retry = m->o.by_group ? group_retry : v->retriable;
        victims[k].message = mem_record_kill(m, all, cand, n, order[k], nvictims, retry, &mem, now);
        memcpy(victims[k].id, v->id, v->id_len);
        victims[k].id_len = v->id_len;
    }
    m->wait_logged = false;
    free(cand);
    free(order);
    free(all);
    for (size_t k = 0; k < nvictims; k++)
        lease_mgr_evict(m->o.leases, victims[k].id, victims[k].id_len, victims[k].message);
    free(victims);
    gc_causes(m, now);
}

bool mem_monitor_failure_cause(mem_monitor_t *m, const uint8_t *id, size_t id_len, const char **message,
                               bool *should_retry)
{
    list_t *n;
    LIST_FOREACH(n, &m->causes) {
        mem_cause_t *c = LIST_ENTRY(n, mem_cause_t, node);
        if (c->id_len == id_len && memcmp(c->id, id, id_len) == 0) {
            *message = c->message;
            *should_retry = c->should_retry;
            return true;
        }
    }
    return false;
}

void mem_monitor_drain_evictions(mem_monitor_t *m, mem_monitor_eviction_fn fn, void *ctx)
{
    for (size_t i = 0; i < m->nevictions; i++) {
        if (!m->evictions[i].pending)
            continue;
        fn(ctx, m->evictions[i].type, m->evictions[i].name, m->evictions[i].pending);
        m->evictions[i].pending = 0;
    }
}

uint64_t mem_monitor_kills(const mem_monitor_t *m) { return m->kills; }
