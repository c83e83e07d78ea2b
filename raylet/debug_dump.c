#include "raylet/debug_dump.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/strbuf.h"
#include "common/alloc.h"

static void dd_workers(strbuf_t *b, const debug_dump_sources_t *r)
{
    size_t jobs = r->jobs ? jobs_running(r->jobs) : 0;
    size_t workers = 0, drivers = 0, starting = 0, idle = 0, leased = 0, actors = 0;
    size_t blocked = lease_mgr_blocked(r->leases);
    enum { MAX_LISTED = 65536 };
    worker_t **list = r->pool ? malloc(MAX_LISTED * sizeof *list) : NULL;
    size_t n = list ? pool_list(r->pool, list, MAX_LISTED) : 0;
    for (size_t i = 0; i < n; i++) {
        const worker_t *w = list[i];
        if (worker_type(w) == WORKER_TYPE_DRIVER) {
            drivers++;
            continue;
        }
        if (worker_state(w) == WORKER_STARTING) {
            starting++;
            continue;
        }
        /* Like the stock raylet: registered worker processes, idle or not. */
        workers++;
        idle += worker_state(w) == WORKER_IDLE;
        leased += worker_state(w) == WORKER_LEASED;
        actors += worker_is_actor(w);
    }
    free(list);
    strbuf_printf(b, "WorkerPool:\n");
    strbuf_printf(b, "- registered jobs: %zu\n", jobs);
    strbuf_printf(b, "- num PYTHON workers: %zu\n", workers);
    strbuf_printf(b, "- num PYTHON drivers: %zu\n", drivers);
    strbuf_printf(b, "- num PYTHON pending start requests: %zu\n", starting);
    strbuf_printf(b, "- idle workers: %zu\n", idle);
    strbuf_printf(b, "- leased workers: %zu (actors: %zu, blocked: %zu)\n", leased, actors, blocked);
}

/* A fixed-point amount as a plain decimal: "17657210880", "0.25". */
static void dd_amount(char *out, size_t cap, res_amount_t a)
{
    res_amount_t whole = a / RES_UNIT, frac = a % RES_UNIT;
    if (frac < 0)
        frac = -frac;
    if (frac == 0) {
        snprintf(out, cap, "%lld", (long long)whole);
        return;
    }
    int len = snprintf(out, cap, "%s%lld.%04lld", a < 0 && whole == 0 ? "-" : "", (long long)whole,
                       (long long)frac);
    while (len > 0 && (size_t)len < cap && out[len - 1] == '0')
        out[--len] = '\0';
}

static void dd_resources(strbuf_t *b, const debug_dump_sources_t *r)
{
    strbuf_printf(b, "Resources (available / total):\n");
    size_t n = r->resources ? res_node_count(r->resources) : 0;
    for (size_t i = 0; i < n; i++) {
        res_entry_t e;
        res_node_entry_at(r->resources, i, &e);
        char avail[48], total[48];
        dd_amount(avail, sizeof avail, e.available);
        dd_amount(total, sizeof total, e.total);
        strbuf_printf(b, "- %s: %s / %s\n", e.name, avail, total);
    }
}

size_t debug_dump_format(const debug_dump_sources_t *r, char *buf, size_t cap)
{
    strbuf_t b = {.buf = buf, .cap = cap};
    if (cap)
        buf[0] = '\0';
    strbuf_printf(&b, "NodeManager:\n");
    strbuf_printf(&b, "Node ID: %s\n", r->node_hex);
    strbuf_printf(&b, "Node address: %s:%d\n", r->node_ip_address ? r->node_ip_address : "",
              r->node_manager_port);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t now_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
    strbuf_printf(&b, "Daemon: craylet, pid %d, up %llu s\n", (int)getpid(),
              (unsigned long long)(now_ms > r->start_wall_ms ? (now_ms - r->start_wall_ms) / 1000 : 0));
    dd_resources(&b, r);
    dd_workers(&b, r);
    strbuf_printf(&b, "LeaseManager:\n");
    strbuf_printf(&b, "- granted leases: %zu\n", r->leases ? lease_mgr_granted(r->leases) : 0);
    strbuf_printf(&b, "- queued leases: %zu (waiting for their arguments: %zu)\n",
                  r->leases ? lease_mgr_queued(r->leases) : 0, largs_count(r->largs));
    strbuf_printf(&b, "- placement group bundles: %zu\n", r->bundles ? bundles_count(r->bundles) : 0);
    if (r->gang) {
        const gpu_topo_t *t = gpu_gang_topo(r->gang);
        strbuf_printf(&b, "GpuGangs:\n");
        strbuf_printf(&b, "- GPU graph: %zu GPUs from %s, packing %s\n", t->n, t->source,
                  gpu_pack_mode_name(gpu_gang_mode(r->gang)));
        size_t room = b.len < b.cap ? b.cap - b.len : 0;
        b.len += gpu_gang_format(r->gang, room ? b.buf + b.len : NULL, room);
    }
    if (r->channels) {
        chan_stats_t cst;
        chan_get_stats(r->channels, &cst);
        strbuf_printf(&b, "CompiledGraphChannels:\n");
        strbuf_printf(&b, "- from writers on other nodes: %zu, waiting for their readers: %zu, versions written: %llu\n",
                      cst.channels, cst.blocked, (unsigned long long)cst.versions_written);
    }
    strbuf_printf(&b, "WaitManager:\n");
    strbuf_printf(&b, "- num active wait requests: %zu\n", r->owait ? owait_count(r->owait) : 0);
    if (r->xfer) {
        xfer_stats_t x;
        xfer_get_stats(r->xfer, &x);
        strbuf_printf(&b, "ObjectManager:\n");
        strbuf_printf(&b, "- pulls: %zu bundles, %zu objects, %zu receiving\n", x.pull_bundles, x.pull_objects,
                      x.receiving);
        strbuf_printf(&b, "- pushes: %zu active, %zu parked, %zu chunks in flight\n", x.pushes, x.pushes_parked,
                      x.chunks_in_flight);
        strbuf_printf(&b, "- chunks received: %llu, refused: %llu, sent: %llu; objects received: %llu\n",
                      (unsigned long long)x.chunks_received, (unsigned long long)x.chunks_refused,
                      (unsigned long long)x.chunks_sent, (unsigned long long)x.objects_received);
        strbuf_printf(&b, "- peer channels: %zu\n", x.channels);
        strbuf_printf(&b, "- location subscriptions: %zu open, %llu opened; updates published: %llu, lookups: %llu\n",
                      x.loc_subscribed, (unsigned long long)x.loc_subscribes, (unsigned long long)x.loc_published,
                      (unsigned long long)x.loc_lookups);
    }
    strbuf_printf(&b, "RaySyncer:\n");
    strbuf_printf(&b, "- batches sent: %llu, received: %llu\n",
              (unsigned long long)(r->syncer ? syncer_sent(r->syncer) : 0),
              (unsigned long long)(r->syncer ? syncer_received(r->syncer) : 0));
    strbuf_printf(&b, "ObjectStore:\n");
    if (r->store) {
        size_t room = b.len < b.cap ? b.cap - b.len : 0;
        b.len += store_debug_string(r->store, room ? b.buf + b.len : NULL, room);
        strbuf_printf(&b, "\n");
    }
    return b.len;
}

struct debug_dump {
    loop_t *loop;
    char *path; /* <log_dir>/debug_state.txt */
    uint64_t period_ms;
    debug_dump_sources_t src;
    uint64_t timer;
    bool failed; /* the last write failed (logged once) */
};

static int debug_dump_write(debug_dump_t *dd)
{
    size_t want = debug_dump_format(&dd->src, NULL, 0) + 1;
    char *text = xmalloc(want + 4096); /* state may grow between the two passes */
    size_t len = debug_dump_format(&dd->src, text, want + 4096);
    if (len >= want + 4096)
        len = want + 4095;

    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", dd->path);
    int rc = 0;
    FILE *f = fopen(tmp, "we");
    if (!f) {
        rc = -errno;
    } else {
        bool written = fwrite(text, 1, len, f) == len;
        int saved = errno;
        if (fclose(f) != 0 && written) {
            written = false;
            saved = errno;
        }
        if (!written)
            rc = saved ? -saved : -EIO;
        else if (rename(tmp, dd->path) != 0)
            rc = -errno;
    }
    if (rc != 0)
        unlink(tmp);
    free(text);
    return rc;
}

static void debug_dump_on_timer(loop_t *loop, uint64_t id, void *data)
{
    debug_dump_t *dd = data;
    dd->timer = 0;
    int rc = debug_dump_write(dd);
    if (rc != 0 && !dd->failed) {
        /* Logged once: a full or read-only disk would otherwise flood the log. */
        log_warn("cannot write %s: %s", dd->path, strerror(-rc));
        dd->failed = true;
    } else if (rc == 0) {
        dd->failed = false;
    }
    dd->timer = loop_add_timer(loop, dd->period_ms, debug_dump_on_timer, dd);
}

debug_dump_t *debug_dump_create(loop_t *loop, const char *log_dir, uint64_t period_ms,
                                const debug_dump_sources_t *src)
{
    if (period_ms == 0 || !log_dir || !*log_dir)
        return NULL;
    debug_dump_t *dd = xcalloc(1, sizeof *dd);
    dd->loop = loop;
    size_t len = strlen(log_dir) + sizeof "/debug_state.txt";
    dd->path = xmalloc(len);
    snprintf(dd->path, len, "%s/debug_state.txt", log_dir);
    dd->period_ms = period_ms;
    dd->src = *src;
    dd->timer = loop_add_timer(loop, 0, debug_dump_on_timer, dd);
    return dd;
}

void debug_dump_stop(debug_dump_t *dd)
{
    if (!dd)
        return;
    if (dd->timer)
        loop_cancel_timer(dd->loop, dd->timer);
    dd->timer = 0;
}

void debug_dump_destroy(debug_dump_t *dd)
{
    if (!dd)
        return;
    debug_dump_stop(dd);
    free(dd->path);
    free(dd);
}
