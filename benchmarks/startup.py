#!/usr/bin/env python
"""Head-node start-up time and daemon memory: craylet against the stock raylet.

For each round, in the order stock, craylet, stock, craylet, ...:
  * invoke `ray start --head ...` (craylet rounds add --raylet-path), and
    poll the GCS node table until the node is ALIVE: that interval is
    "alive_s"; "own_s" is the part from the daemon's exec (its process
    creation time) to ALIVE; "cli_s" is how long `ray start` took to return;
  * a few seconds after ALIVE, read the daemon's resident memory (RSS, and
    USS: the pages only it holds) with psutil;
  * stop that cluster (targeted kills of its own processes, never the
    machine-wide `ray stop`) before the next round.
Then print a table, the medians, and craylet/stock ratios of the medians.

Machines here are shared and noisy; read the ratio, not the absolute figures.

    .venv/bin/python benchmarks/startup.py [--rounds 3] [--craylet build/craylet]
    (--raylet-path is an alias of --craylet)
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

import helpers  # noqa: E402
from helpers import psutil  # noqa: E402

# Both raylets run as 2.60 users get them: with token authentication.
helpers.pin_authentication()


def one_round(variant, raylet, args):
    cluster = helpers.Cluster(name="crb")
    start_args = cluster.start_args(
        head=True, raylet=raylet, num_cpus=args.num_cpus,
        extra_args=["--include-dashboard=false"])
    row = {"variant": variant, "alive_s": None, "own_s": None, "cli_s": None,
           "rss_mib": None, "uss_mib": None, "error": None}
    try:
        t0 = time.perf_counter()
        proc = cluster.ray_popen(*start_args)
        alive_at = None
        cli_at = None
        node = None
        deadline = t0 + args.timeout
        while time.perf_counter() < deadline:
            if cli_at is None and proc.poll() is not None:
                cli_at = time.perf_counter()
                if proc.returncode != 0:
                    break
            if alive_at is None:
                try:
                    alive = [n for n in cluster.nodes_table() if n["state"] == "ALIVE"]
                except Exception:  # GCS not up yet
                    alive = []
                if alive:
                    alive_at = time.perf_counter()
                    alive_wall = time.time()
                    node = alive[0]
            if alive_at is not None and cli_at is not None:
                break
            time.sleep(args.poll)
        out, err = proc.communicate(timeout=max(1.0, deadline - time.perf_counter()))
        if proc.returncode != 0:
            row["error"] = "ray start exited %s: %s" % (proc.returncode, err.strip()[-300:])
            return row
        if alive_at is None:
            row["error"] = "node not ALIVE within %ss" % args.timeout
            return row
        row["alive_s"] = alive_at - t0
        row["cli_s"] = cli_at - t0
        daemon = None
        flag = "--node_id=" + node["node_id"]
        for p in psutil.process_iter(["pid"]):
            try:
                argv = p.cmdline()
            except psutil.Error:
                continue
            if argv and "raylet" in os.path.basename(argv[0]) and flag in argv:
                daemon = p
                break
        if daemon is None:
            row["error"] = "no raylet process with " + flag
            return row
        # From the daemon's exec to ALIVE: its own share (agents included).
        row["own_s"] = alive_wall - daemon.create_time()
        expected = raylet or helpers.stock_raylet_bin()
        if os.path.realpath(daemon.cmdline()[0]) != os.path.realpath(expected):
            row["error"] = "ran %s, expected %s" % (daemon.cmdline()[0], expected)
            return row
        time.sleep(args.settle)  # let it finish start-up work before measuring memory
        try:
            mem = daemon.memory_full_info()
            row["rss_mib"] = mem.rss / 2**20
            row["uss_mib"] = mem.uss / 2**20
        except psutil.AccessDenied:
            row["rss_mib"] = daemon.memory_info().rss / 2**20
        return row
    finally:
        problems = cluster.teardown()
        if problems and not row["error"]:
            row["error"] = "teardown: " + "; ".join(problems)[:300]


def median(rows, variant, key):
    vals = [r[key] for r in rows if r["variant"] == variant and r[key] is not None]
    return statistics.median(vals) if vals else None


def fmt(v, spec="%.2f"):
    return "-" if v is None else spec % v


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="rounds per variant (default 3)")
    ap.add_argument("--craylet", "--raylet-path", dest="craylet", default=None,
                    help="craylet binary (default $CRAYLET_BIN or build/craylet)")
    ap.add_argument("--num-cpus", type=int, default=1)
    ap.add_argument("--settle", type=float, default=3.0,
                    help="seconds after ALIVE before reading memory (default 3)")
    ap.add_argument("--poll", type=float, default=0.02, help="GCS poll interval, seconds")
    ap.add_argument("--timeout", type=float, default=120.0, help="per start, seconds")
    ap.add_argument("--json", default=None, help="also write the rows to this file")
    args = ap.parse_args(argv)

    craylet = args.craylet or helpers.craylet_bin()
    if craylet is None:
        ap.error("CRAYLET_BIN=stock: nothing to compare against; give --craylet")
    craylet = os.path.abspath(craylet)
    if not (os.path.isfile(craylet) and os.access(craylet, os.X_OK)):
        ap.error("craylet binary %s is missing or not executable" % craylet)

    variants = [("stock", None), ("craylet", craylet)]
    print("stock:   %s" % helpers.stock_raylet_bin())
    print("craylet: %s" % craylet)
    print("rounds: %d, cpus on this machine: %d" % (args.rounds, os.cpu_count()))
    print()
    header = "%-5s %-8s %9s %8s %8s %9s %9s  %s" % (
        "round", "variant", "alive_s", "own_s", "cli_s", "rss_MiB", "uss_MiB", "note")
    print(header)
    print("-" * len(header))
    rows = []
    for rnd in range(1, args.rounds + 1):
        for variant, raylet in variants:
            row = one_round(variant, raylet, args)
            row["round"] = rnd
            rows.append(row)
            print("%-5d %-8s %9s %8s %8s %9s %9s  %s" % (
                rnd, variant, fmt(row["alive_s"]), fmt(row["own_s"]), fmt(row["cli_s"]),
                fmt(row["rss_mib"], "%.1f"), fmt(row["uss_mib"], "%.1f"),
                row["error"] or ""), flush=True)

    print()
    print("%-24s %10s %10s %16s" % ("median", "stock", "craylet", "craylet/stock"))
    for key, label in (("alive_s", "start -> ALIVE (s)"), ("own_s", "daemon exec -> ALIVE (s)"),
                       ("cli_s", "ray start returns (s)"),
                       ("rss_mib", "daemon RSS (MiB)"), ("uss_mib", "daemon USS (MiB)")):
        s, c = median(rows, "stock", key), median(rows, "craylet", key)
        ratio = (c / s) if (s and c is not None) else None
        print("%-24s %10s %10s %16s" % (label, fmt(s), fmt(c), fmt(ratio, "%.3f")))

    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    failed = [r for r in rows if r["error"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
