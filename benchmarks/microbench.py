#!/usr/bin/env python
"""Task and object rows of `ray microbenchmark`: craylet against the stock raylet.

Each run is a fresh single-node cluster started by `ray.init(address="local")`
in a child process of its own (a new session, its own short temp dir).
Runs alternate stock, craylet, stock, craylet, ... for --rounds rounds.

Rows (names as in Ray's python/ray/_private/ray_perf.py; the operations are
the same, and the remote functions/actors are imported from ray_perf):

  single client put calls (Plasma Store)      ray.put(0)
  single client get calls (Plasma Store)      ray.get of a small object in the store
  single client put gigabytes                 ray.put of an 800 MB numpy array (GB/s)
  single client get large object              ours: ray.get of a ~160 MB numpy array
                                              already in the store (gets/s)
  single client get object containing 10k refs
  single client tasks sync                    ray.get(small_value.remote())
  single client tasks async                   1000 submits, then one ray.get (tasks/s)
  multi client tasks async                    4 actors each submit --multi-n tasks
                                              (Ray uses 10000; default here 1000)
  lease latency                               per-call time of ray.get(f.remote()),
                                              p50/p99 over --lease-calls calls
  daemon memory                               RSS (and RssAnon) of the raylet/craylet
                                              process, sampled every 0.1 s while the
                                              async-task row runs; also at idle

Before the first row, each run waits until its cluster has finished
starting (the session's processes together idle for half a second, at most
20 s): `ray.init` returns as soon as the node registers, and a daemon that
registers sooner would otherwise share the cores with agents still
starting.

Timing is Ray's timeit method (a shorter settle): warm up for --warmup
seconds, then --windows windows of --window seconds each, and the row's value
for a run is the mean of `multiplier * calls / s` over those windows. The
summary shows, per row, the median over rounds for each variant and the
ratio of medians craylet/stock.

Nothing here asserts on timing. Exit status: 0 when every row of every run
produced a number, 1 otherwise.

    .venv/bin/python benchmarks/microbench.py                 # 2 rounds, ~5-8 min
    .venv/bin/python benchmarks/microbench.py --rounds 1 --rows tasks_sync,lease
    .venv/bin/python benchmarks/microbench.py --json /tmp/microbench.json
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

# (key, name, unit, higher_is_better)
ROWS = [
    ("put_calls", "single client put calls (Plasma Store)", "calls/s", True),
    ("get_calls", "single client get calls (Plasma Store)", "calls/s", True),
    ("put_gigabytes", "single client put gigabytes", "GB/s", True),
    ("get_large", "single client get large object (160 MB numpy)", "gets/s", True),
    ("get_10k_refs", "single client get object containing 10k refs", "gets/s", True),
    ("tasks_sync", "single client tasks sync", "tasks/s", True),
    ("lease", "lease latency (ray.get(f.remote()))", "ms", False),
    ("tasks_async", "single client tasks async", "tasks/s", True),
    ("multi_client", "multi client tasks async", "tasks/s", True),
]
ROW_KEYS = [r[0] for r in ROWS]
# Rows where the raylet is on the path but hardly busy (a few per cent of a
# core): their rates follow the driver and workers, so the daemon's own CPU
# per operation is reported beside them.
CPU_ROWS = ["tasks_sync", "tasks_async", "multi_client"]
ROW_INFO = {r[0]: r for r in ROWS}


# ==========================================================================
# Child: one fresh cluster, run the requested rows, write JSON lines.
# ==========================================================================

class _Out:
    """Append-only JSON-lines result file, flushed per record."""

    def __init__(self, path):
        self.f = open(path, "a")
        self.lock = threading.Lock()

    def write(self, rec):
        with self.lock:
            self.f.write(json.dumps(rec) + "\n")
            self.f.flush()
            os.fsync(self.f.fileno())


def _status_kib(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


class _Sampler(threading.Thread):
    """Samples the daemon's RSS / RssAnon every `interval` s, per label."""

    def __init__(self, pid, interval=0.1):
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.label = None
        self.samples = {}  # label -> [(rss_kib, anon_kib)]
        self.stop_ev = threading.Event()

    def run(self):
        while not self.stop_ev.is_set():
            label = self.label
            if label is not None:
                rss = _status_kib(self.pid, "VmRSS")
                anon = _status_kib(self.pid, "RssAnon")
                if rss is not None:
                    self.samples.setdefault(label, []).append((rss, anon))
            self.stop_ev.wait(self.interval)

    def summary(self, label):
        s = self.samples.get(label) or []
        if not s:
            return None
        rss = [x[0] / 1024.0 for x in s]
        anon = [x[1] / 1024.0 for x in s if x[1] is not None]
        return {
            "samples": len(s),
            "rss_mib_median": statistics.median(rss),
            "rss_mib_max": max(rss),
            "anon_mib_median": statistics.median(anon) if anon else None,
            "anon_mib_max": max(anon) if anon else None,
        }


def _cpu_s(pid):
    """User plus system CPU seconds the process has used so far."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _timeit(fn, multiplier, warmup, windows, window, ops=None):
    """Ray's timeit loop (warm-up, then fixed windows), with our durations.
    `ops`, a list, gets the number of operations the windows ran."""
    start = time.perf_counter()
    count = 0
    while True:
        fn()
        count += 1
        el = time.perf_counter() - start
        if el >= warmup:
            break
    # ~10 clock checks per window, as Ray's `count // 10 + 1` does for 2 s windows.
    step = int(count / el * window / 10) + 1
    stats = []
    for _ in range(windows):
        start = time.perf_counter()
        count = 0
        while time.perf_counter() - start < window:
            for _ in range(step):
                fn()
            count += step
        stats.append(multiplier * count / (time.perf_counter() - start))
        if ops is not None:
            ops.append(multiplier * count)
    return stats


def _quiesce(max_s=20.0, window_s=0.5, busy_cpu_s=0.05):
    """Wait until the cluster this driver started has finished starting.

    `ray.init` returns once the node is registered, while the agents it
    started (dashboard, runtime env, log monitor, ...) may still be
    importing.  A daemon that registers sooner would otherwise have its
    first rows share the two cores with that start-up.  Both variants get
    the same rule: every process of the session together uses less than
    `busy_cpu_s` of CPU in a `window_s` window (or `max_s` passes).
    Returns the seconds waited."""
    import psutil

    t0 = time.monotonic()
    me = psutil.Process(os.getpid())

    def cpu_total():
        total = 0.0
        for p in me.children(recursive=True):
            try:
                c = p.cpu_times()
                total += c.user + c.system
            except psutil.Error:
                pass
        return total

    prev = cpu_total()
    while time.monotonic() - t0 < max_s:
        time.sleep(window_s)
        cur = cpu_total()
        if cur - prev < busy_cpu_s:
            break
        prev = cur
    return time.monotonic() - t0


def _find_daemon(expected):
    """The raylet/craylet process among this driver's descendants."""
    import psutil

    found = []
    for p in psutil.Process(os.getpid()).children(recursive=True):
        try:
            argv = p.cmdline()
            name = p.name()
        except psutil.Error:
            continue
        exe = os.path.basename(argv[0]) if argv else ""
        if name in ("raylet", "craylet") or exe in ("raylet", "craylet"):
            found.append((p, argv))
    if not found:
        raise RuntimeError("no raylet/craylet process among the driver's descendants")
    p, argv = found[0]
    if os.path.realpath(argv[0]) != os.path.realpath(expected):
        raise RuntimeError("the cluster runs %s, expected %s" % (argv[0], expected))
    return p


def child_main(args):
    out = _Out(args.out)
    expected = args.raylet
    info = {"kind": "start", "variant": args.variant, "pid": os.getpid()}

    if args.variant == "craylet":
        try:
            import craylet  # noqa: F401  (the shim honours RAY_RAYLET_PATH)
            info["via"] = "shim (RAY_RAYLET_PATH)"
        except ImportError:
            import ray._private.services as services

            services.RAYLET_EXECUTABLE = expected
            info["via"] = "services.RAYLET_EXECUTABLE"

    import numpy as np
    import ray
    from ray._private.ray_perf import Actor, create_object_containing_ref, small_value

    rows = args.rows.split(",")
    current = {"row": "init", "deadline": time.monotonic() + args.init_timeout}

    def watchdog():
        while True:
            time.sleep(0.5)
            if time.monotonic() > current["deadline"]:
                out.write({"kind": "row", "row": current["row"],
                           "error": "timed out after %ss" % (
                               args.init_timeout if current["row"] == "init"
                               else args.row_timeout)})
                os._exit(3)

    threading.Thread(target=watchdog, daemon=True).start()

    t0 = time.perf_counter()
    init_kwargs = dict(address="local", _temp_dir=args.temp_dir, include_dashboard=False,
                       object_store_memory=args.object_store_mib * 1024 * 1024,
                       log_to_driver=False, configure_logging=False)
    if args.num_cpus:
        init_kwargs["num_cpus"] = args.num_cpus
    try:
        ray.init(**init_kwargs)
    except Exception as e:  # noqa: BLE001
        out.write({"kind": "row", "row": "init",
                   "error": "ray.init failed: %s: %s" % (type(e).__name__, str(e)[:300])})
        os._exit(4)
    info["init_s"] = time.perf_counter() - t0
    try:
        daemon = _find_daemon(expected)
    except Exception as e:  # noqa: BLE001
        out.write({"kind": "row", "row": "init", "error": str(e)})
        os._exit(4)
    info["daemon_pid"] = daemon.pid
    info["daemon_exe"] = daemon.cmdline()[0]
    info["session_dir"] = ray._private.worker._global_node.get_session_dir_path()
    info["quiesce_s"] = _quiesce()
    sampler = _Sampler(daemon.pid)
    sampler.start()
    # Idle memory: a short sample right after start-up.
    sampler.label = "idle"
    time.sleep(1.0)
    sampler.label = None
    info["idle_mem"] = sampler.summary("idle")
    out.write(info)

    def timed_row(key, fn, multiplier, extra=None):
        if args.settle:
            time.sleep(args.settle)
        ops = []
        # The daemon's CPU over the whole row, warm-up included: how much of
        # the two cores the raylet takes from the driver and workers.
        cpu0 = _cpu_s(daemon.pid)
        t0 = time.perf_counter()
        stats = _timeit(fn, multiplier, args.warmup, args.windows, args.window, ops)
        cpu1 = _cpu_s(daemon.pid)
        rec = {"kind": "row", "row": key, "value": statistics.mean(stats),
               "sd": statistics.pstdev(stats), "windows": stats}
        if cpu0 is not None and cpu1 is not None and ops:
            total_ops = sum(ops) + statistics.mean(stats) * args.warmup  # warm-up ops estimated
            rec["daemon_cpu_us_per_op"] = (cpu1 - cpu0) * 1e6 / max(total_ops, 1)
            rec["daemon_cpu_share"] = (cpu1 - cpu0) / max(time.perf_counter() - t0, 1e-9)
        if extra:
            rec.update(extra)
        return rec

    def row_put_calls():
        return timed_row("put_calls", lambda: ray.put(0), 1)

    def row_get_calls():
        value = ray.put(0)
        return timed_row("get_calls", lambda: ray.get(value), 1)

    def row_put_gigabytes():
        n = args.put_mb * 1024 * 1024 // 8
        arr = np.zeros(n, dtype=np.int64)
        gb = arr.nbytes / 1e9
        rec = timed_row("put_gigabytes", lambda: ray.put(arr), gb,
                        {"bytes": arr.nbytes})
        del arr
        return rec

    def row_get_large():
        n = args.large_mb * 1024 * 1024 // 8
        arr = np.ones(n, dtype=np.int64)
        ref = ray.put(arr)
        del arr
        check = ray.get(ref)
        assert check.shape == (n,) and int(check[-1]) == 1
        del check
        return timed_row("get_large", lambda: ray.get(ref), 1,
                         {"bytes": n * 8})

    def row_get_10k_refs():
        ref = create_object_containing_ref.remote()
        ray.get(ref)
        return timed_row("get_10k_refs", lambda: ray.get(ref), 1)

    def row_tasks_sync():
        return timed_row("tasks_sync", lambda: ray.get(small_value.remote()), 1)

    def row_lease():
        for _ in range(args.lease_warmup):
            ray.get(small_value.remote())
        lat = []
        pc = time.perf_counter_ns
        for _ in range(args.lease_calls):
            t = pc()
            ray.get(small_value.remote())
            lat.append((pc() - t) / 1e6)
        a = np.array(lat)
        return {"kind": "row", "row": "lease", "value": float(np.percentile(a, 50)),
                "p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
                "mean_ms": float(a.mean()), "max_ms": float(a.max()), "calls": len(lat)}

    def row_tasks_async():
        def op():
            ray.get([small_value.remote() for _ in range(1000)])

        sampler.label = "tasks_async"
        try:
            rec = timed_row("tasks_async", op, 1000)
        finally:
            sampler.label = None
        rec["mem"] = sampler.summary("tasks_async")
        return rec

    def row_multi_client():
        n, m = args.multi_n, 4
        actors = [Actor.remote() for _ in range(m)]
        ray.get([a.small_value.remote() for a in actors])

        def op():
            ray.get([a.small_value_batch.remote(n) for a in actors])

        rec = timed_row("multi_client", op, n * m, {"n": n, "m": m})
        for a in actors:
            ray.kill(a)
        return rec

    funcs = {
        "put_calls": row_put_calls, "get_calls": row_get_calls,
        "put_gigabytes": row_put_gigabytes, "get_large": row_get_large,
        "get_10k_refs": row_get_10k_refs, "tasks_sync": row_tasks_sync,
        "lease": row_lease, "tasks_async": row_tasks_async,
        "multi_client": row_multi_client,
    }
    for key in rows:
        current["row"] = key
        current["deadline"] = time.monotonic() + args.row_timeout
        try:
            rec = funcs[key]()
        except Exception as e:  # noqa: BLE001
            rec = {"kind": "row", "row": key,
                   "error": "%s: %s" % (type(e).__name__, str(e)[:500]),
                   "traceback": traceback.format_exc()[-2000:]}
            out.write(rec)
            # The cluster may be broken: let the parent restart the rest.
            os._exit(5)
        out.write(rec)
    sampler.stop_ev.set()
    out.write({"kind": "done"})
    current["row"] = "shutdown"
    current["deadline"] = time.monotonic() + 60
    ray.shutdown()
    return 0


# ==========================================================================
# Parent: interleave runs, tear down, summarise.
# ==========================================================================

def _tail(path, lines=30):
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    text = [x for x in text if "[state-dump]" not in x]  # the stock raylet's periodic dump
    return "\n".join(text[-lines:])


def _daemon_logs(temp_dir, lines=30):
    """Tails of raylet.out / raylet.err of every session under temp_dir."""
    parts = []
    paths = sorted(set(Path(temp_dir).glob("session_2*/logs/raylet*"))
                   | set(Path(temp_dir).glob("session_2*/logs/old/raylet*")))
    for p in paths:
        t = _tail(p, lines)
        parts.append("==> %s <==\n%s" % (p, t if t.strip() else "(empty)"))
    if not parts:
        parts.append("(no raylet.out/raylet.err under %s/session_*/logs)" % temp_dir)
    return "\n".join(parts)


def run_child(variant, raylet, rows, args):
    """One fresh cluster running `rows`. Returns (start_info, {row: rec}, notes)."""
    import helpers

    cluster = helpers.Cluster(name="crmb")
    logdir = tempfile.mkdtemp(prefix="crmb-log-")
    out_path = os.path.join(logdir, "results.jsonl")
    env = dict(cluster.env)
    env.pop("RAY_RAYLET_PATH", None)
    if variant == "craylet":
        env["RAY_RAYLET_PATH"] = raylet
    argv = [sys.executable, os.path.abspath(__file__), "--child",
            "--variant", variant, "--raylet", raylet, "--rows", ",".join(rows),
            "--out", out_path, "--temp-dir", cluster.temp_dir]
    for opt in ("warmup", "windows", "window", "settle", "multi_n", "lease_calls",
                "lease_warmup", "put_mb", "large_mb", "object_store_mib", "num_cpus",
                "row_timeout", "init_timeout"):
        argv += ["--" + opt.replace("_", "-"), str(getattr(args, opt))]
    info, recs, notes = {}, {}, []
    stdout_path = os.path.join(logdir, "child.log")
    keep = False
    proc = None
    try:
        with open(stdout_path, "w") as logf:
            proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, cwd=str(REPO),
                                    start_new_session=True)
            cluster.session_ids.append(proc.pid)
            budget = args.init_timeout + args.row_timeout * len(rows) + 90
            try:
                rc = proc.wait(timeout=budget)
            except subprocess.TimeoutExpired:
                notes.append("child killed after %ss" % budget)
                os.killpg(proc.pid, signal.SIGKILL)
                rc = proc.wait()
        cluster.snapshot()
        if os.path.exists(out_path):
            with open(out_path) as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if rec.get("kind") == "start":
                        info = rec
                    elif rec.get("kind") == "row":
                        recs[rec["row"]] = rec
                    elif rec.get("kind") == "done":
                        info["done"] = True
        if rc != 0 and not info.get("done"):
            notes.append("child exited %s" % rc)
        failed = [k for k, r in recs.items() if r.get("error")]
        if failed or not info.get("done"):
            keep = True
            info["daemon_logs"] = _daemon_logs(cluster.temp_dir)
            info["child_log"] = _tail(stdout_path, 40)
    finally:
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait()
        if keep:
            os.environ["CRAYLET_KEEP_TEMP"] = "1"
        try:
            problems = cluster.teardown()
        finally:
            if keep:
                os.environ.pop("CRAYLET_KEEP_TEMP", None)
        if problems:
            notes.append("teardown: " + "; ".join(problems)[:400])
        if keep:
            info["temp_dir_kept"] = cluster.temp_dir
            info["child_log_path"] = stdout_path
        else:
            shutil.rmtree(logdir, ignore_errors=True)
    return info, recs, notes


def one_run(variant, raylet, args):
    """All requested rows for one variant; a fresh cluster again after a failure."""
    remaining = list(args.row_list)
    run = {"variant": variant, "rows": {}, "starts": [], "notes": []}
    while remaining:
        info, recs, notes = run_child(variant, raylet, remaining, args)
        run["starts"].append(info)
        run["notes"] += notes
        progressed = False
        for key in list(remaining):
            if key in recs:
                run["rows"][key] = recs[key]
                remaining.remove(key)
                progressed = True
        if recs.get("init"):
            err = recs["init"]["error"]
            for key in remaining:
                run["rows"][key] = {"row": key, "error": "cluster start: " + err}
            remaining = []
        elif not progressed:
            # Died without naming a row: blame the first one and go on.
            key = remaining.pop(0)
            run["rows"][key] = {"row": key, "error": "child died: " + "; ".join(notes)}
        for key, rec in recs.items():
            if rec.get("error"):
                print("  !! %s %s: %s" % (variant, key, rec["error"]), flush=True)
        if not info.get("done"):
            for n in notes:
                print("  !! %s: %s" % (variant, n), flush=True)
            if info.get("daemon_logs"):
                print("  daemon logs (kept in %s):\n%s" % (
                    info.get("temp_dir_kept", "?"),
                    "\n".join("    " + x for x in info["daemon_logs"].splitlines())),
                    flush=True)
            if info.get("child_log") and (not recs or "init" in recs):
                print("  child output tail:\n%s" % "\n".join(
                    "    " + x for x in info["child_log"].splitlines()[-15:]), flush=True)
    return run


def fmt(v, spec="%.2f"):
    return "-" if v is None else spec % v


def _num(v):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.3f" % v


def metric_values(runs, variant):
    """metric name -> list of per-run values for `variant`."""
    out = {}

    def add(k, v):
        if v is not None:
            out.setdefault(k, []).append(v)

    for run in runs:
        if run["variant"] != variant:
            continue
        for key in ROW_KEYS:
            rec = run["rows"].get(key)
            if not rec or rec.get("error"):
                continue
            if key == "lease":
                add("lease p50 (ms)", rec["p50_ms"])
                add("lease p99 (ms)", rec["p99_ms"])
            else:
                add(key, rec["value"])
            if key in CPU_ROWS and rec.get("daemon_cpu_us_per_op") is not None:
                add("cpu:" + key, rec["daemon_cpu_us_per_op"])
            if key == "tasks_async" and rec.get("mem"):
                add("daemon RSS during tasks async, median (MiB)", rec["mem"]["rss_mib_median"])
                add("daemon RSS during tasks async, max (MiB)", rec["mem"]["rss_mib_max"])
                add("daemon RssAnon during tasks async, max (MiB)", rec["mem"]["anon_mib_max"])
        for st in run["starts"]:
            idle = st.get("idle_mem")
            if idle:
                add("daemon RSS idle (MiB)", idle["rss_mib_median"])
                break
        for st in run["starts"]:
            if st.get("init_s"):
                add("ray.init (s)", st["init_s"])
                break
    return out


def metric_order():
    order = []
    for key, name, unit, hib in ROWS:
        if key == "lease":
            order += [("lease p50 (ms)", "lease latency p50", "ms", False),
                      ("lease p99 (ms)", "lease latency p99", "ms", False)]
        else:
            order.append((key, name, unit, hib))
    order += [("cpu:" + key, "daemon CPU per op, " + ROW_INFO[key][1].replace("single client ", ""),
               "us", False) for key in CPU_ROWS]
    order += [("daemon RSS during tasks async, median (MiB)", "daemon RSS under load, median", "MiB", False),
              ("daemon RSS during tasks async, max (MiB)", "daemon RSS under load, max", "MiB", False),
              ("daemon RssAnon during tasks async, max (MiB)", "daemon RssAnon under load, max", "MiB", False),
              ("daemon RSS idle (MiB)", "daemon RSS idle", "MiB", False),
              ("ray.init (s)", "ray.init() time", "s", False)]
    return order


def verdict(item) -> str:
    """Better or worse only when every round of one variant beats every
    round of the other; overlapping values are this machine's noise (rows
    the daemon is hardly part of swing by 20% from run to run)."""
    s, c = item["stock_values"], item["craylet_values"]
    if not s or not c:
        return "no verdict"
    hib = item["higher_is_better"]
    if (min(c) > max(s)) if hib else (max(c) < min(s)):
        return "craylet better"
    if (max(c) < min(s)) if hib else (min(c) > max(s)):
        return "craylet worse"
    r = item["ratio"]
    leaning = "" if r == 1 else (" leaning %s" % ("better" if (r > 1) == hib else "worse"))
    return "within noise, ranges overlap%s" % leaning


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2, help="rounds per variant (default 2)")
    ap.add_argument("--craylet", "--raylet-path", dest="craylet", default=None,
                    help="craylet binary (default $CRAYLET_BIN or build/craylet)")
    ap.add_argument("--rows", default=",".join(ROW_KEYS),
                    help="comma-separated subset of: " + ",".join(ROW_KEYS))
    ap.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per row (Ray: 1)")
    ap.add_argument("--windows", type=int, default=4, help="timed windows per row (as Ray)")
    ap.add_argument("--window", type=float, default=2.0, help="seconds per window (as Ray)")
    ap.add_argument("--settle", type=float, default=0.5,
                    help="sleep before each row (Ray: 10)")
    ap.add_argument("--multi-n", type=int, default=1000,
                    help="tasks per client actor in 'multi client tasks async' (Ray: 10000)")
    ap.add_argument("--lease-calls", type=int, default=2000,
                    help="timed calls of the lease row; its p99 is the 20th slowest")
    ap.add_argument("--lease-warmup", type=int, default=50)
    ap.add_argument("--put-mb", type=int, default=800, help="array size for put gigabytes (Ray: 800)")
    ap.add_argument("--large-mb", type=int, default=160, help="array size for get large object")
    ap.add_argument("--object-store-mib", type=int, default=2048)
    ap.add_argument("--num-cpus", type=int, default=0,
                    help="ray.init num_cpus (default: Ray's, the machine's cpu count)")
    ap.add_argument("--row-timeout", type=float, default=120.0, help="seconds per row")
    ap.add_argument("--init-timeout", type=float, default=120.0, help="seconds for ray.init")
    ap.add_argument("--json", default=None, help="also write all results to this file")
    # internal
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--raylet", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--temp-dir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        return child_main(args)

    import helpers

    # Both raylets run as 2.60 users get them: with token authentication
    # (the children inherit it).
    helpers.pin_authentication()

    args.row_list = [r.strip() for r in args.rows.split(",") if r.strip()]
    bad = [r for r in args.row_list if r not in ROW_INFO]
    if bad:
        ap.error("unknown rows %s; known: %s" % (bad, ",".join(ROW_KEYS)))
    craylet = args.craylet or helpers.craylet_bin()
    if craylet is None:
        ap.error("CRAYLET_BIN=stock: nothing to compare against; give --craylet")
    craylet = os.path.abspath(craylet)
    if not (os.path.isfile(craylet) and os.access(craylet, os.X_OK)):
        ap.error("craylet binary %s is missing or not executable" % craylet)
    stock = helpers.stock_raylet_bin()

    print("stock:   %s" % stock)
    print("craylet: %s" % craylet)
    print("rounds: %d; rows: %s" % (args.rounds, ",".join(args.row_list)))
    print("timing: warm-up %.1fs, %d x %.1fs windows, settle %.1fs; cpus on this machine: %d"
          % (args.warmup, args.windows, args.window, args.settle, os.cpu_count()))
    print(flush=True)

    runs = []
    t_start = time.time()
    for rnd in range(1, args.rounds + 1):
        # Alternate which variant goes first (stock, craylet, craylet, stock,
        # ...): on a shared two-core machine the second cluster of a round
        # runs on a warmer, busier machine, and that must not favour one side.
        order = [("stock", stock), ("craylet", craylet)]
        if rnd % 2 == 0:
            order.reverse()
        for variant, binary in order:
            t = time.time()
            print("round %d %s ..." % (rnd, variant), flush=True)
            run = one_run(variant, binary, args)
            run["round"] = rnd
            run["elapsed_s"] = time.time() - t
            runs.append(run)
            for key in args.row_list:
                rec = run["rows"].get(key, {})
                if rec.get("error"):
                    s = "ERROR " + rec["error"][:200]
                elif key == "lease":
                    s = "p50 %.3f ms  p99 %.3f ms  (%d calls)" % (
                        rec["p50_ms"], rec["p99_ms"], rec["calls"])
                else:
                    s = "%s %s  (sd %s)" % (_num(rec.get("value")), ROW_INFO[key][2],
                                             _num(rec.get("sd")))
                    if rec.get("daemon_cpu_share") is not None:
                        s += "  daemon CPU %.0f%% (%.1f us/op)" % (
                            100 * rec["daemon_cpu_share"], rec["daemon_cpu_us_per_op"])
                    if rec.get("mem"):
                        s += "  daemon RSS median %.1f / max %.1f MiB" % (
                            rec["mem"]["rss_mib_median"], rec["mem"]["rss_mib_max"])
                print("  %-46s %s" % (ROW_INFO[key][1], s), flush=True)
            for n in run["notes"]:
                print("  note: %s" % n, flush=True)
            print("  (%.0fs)" % run["elapsed_s"], flush=True)

    stock_vals = metric_values(runs, "stock")
    cray_vals = metric_values(runs, "craylet")
    summary = []
    print()
    header = "%-48s %-8s %12s %12s %10s" % ("row", "unit", "stock", "craylet", "c/s")
    print("medians over %d round(s)" % args.rounds)
    print(header)
    print("-" * len(header))
    for key, name, unit, hib in metric_order():
        s_list, c_list = stock_vals.get(key), cray_vals.get(key)
        if not s_list and not c_list:
            if key in ROW_INFO and key in args.row_list:
                print("%-48s %-8s %12s %12s %10s" % (name[:48], unit, "FAILED", "FAILED", "-"))
            continue
        s = statistics.median(s_list) if s_list else None
        c = statistics.median(c_list) if c_list else None
        ratio = (c / s) if (s and c is not None) else None
        summary.append({"metric": key, "name": name, "unit": unit,
                        "higher_is_better": hib, "stock_median": s, "craylet_median": c,
                        "ratio": ratio, "stock_values": s_list or [],
                        "craylet_values": c_list or []})
        print("%-48s %-8s %12s %12s %10s" % (name[:48], unit, _num(s) if s_list else "FAILED",
                                             _num(c) if c_list else "FAILED",
                                             fmt(ratio, "%.3f")))

    print()
    print("ratios (craylet / stock, of the medians; from %d round(s) on a shared machine)" % args.rounds)
    print("  a verdict needs the two variants' per-round values not to overlap; otherwise the"
          " difference is within this machine's noise")
    for item in summary:
        if item["ratio"] is None:
            continue
        r = item["ratio"]
        item["verdict"] = verdict(item)
        direction = "higher is better" if item["higher_is_better"] else "lower is better"
        print("  %-48s %7.3f   (%s; %s)" % (item["name"][:48], r, direction, item["verdict"]))

    errors = []
    for run in runs:
        for key, rec in run["rows"].items():
            if rec.get("error"):
                errors.append((run["round"], run["variant"], key, rec["error"]))
    if errors:
        print()
        print("failures")
        for rnd, variant, key, err in errors:
            print("  round %d %s %s: %s" % (rnd, variant, key, err[:300]))
        for run in runs:
            for st in run["starts"]:
                if st.get("temp_dir_kept"):
                    print("  logs kept: %s (child log %s)" % (
                        st["temp_dir_kept"], st.get("child_log_path")))
    print()
    print("total %.0fs" % (time.time() - t_start))

    if args.json:
        config = {k: v for k, v in vars(args).items()
                  if k not in ("child", "variant", "raylet", "out", "temp_dir", "json")}
        config.update({"stock": stock, "craylet": craylet, "cpus": os.cpu_count()})
        with open(args.json, "w") as f:
            json.dump({"config": config, "runs": runs, "summary": summary}, f, indent=2)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
