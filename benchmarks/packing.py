#!/usr/bin/env python
"""GPU gang packing: stock Ray's rule (lowest free ids) against craylet's
packer and the exhaustive optimum, on gang traces.

Each trace is --gangs arrivals of 1-8 GPU gangs with random departures,
replayed on every sample topology in python_shim/craylet/topologies and on generated
16- and 64-GPU graphs (NVLink islands with a few cross links) by the C
replay tool next to the daemon (build/pack_replay, the same packer the
daemon links).  Per policy it prints:

  share     mean NVLink bandwidth of the chosen set as a share of the best
            set free at that moment (64 GPUs: of the packer's own answer,
            exhaustive search being out of reach there)
  all-NV    share of multi-GPU gangs whose every pair has NVLink
  ring ms   modelled ring all-reduce time of a 1 GB gradient (the slowest
            link of the best ring; per-link figures in pack_replay.c:
            NVLink 25 GB/s per bonded link, PCIe PIX 22 / PXB 20 / PHB 16 /
            NODE 12 / SYS 8 GB/s)
  p50/p99   decision time in microseconds

Goals: craylet at 100% of the optimum on 8 GPUs and >= 95% on 16; decisions
under 100 us at 8 GPUs and under 1 ms at 64.

    .venv/bin/python benchmarks/packing.py [--replay build/pack_replay] [--gangs 2000]
"""
import argparse
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(replay, target, gangs, seed):
    out = subprocess.run([replay, target, str(gangs), str(seed)], capture_output=True, text=True,
                         timeout=600)
    if out.returncode != 0:
        sys.exit("pack_replay %s failed: %s" % (target, out.stderr))
    rows = {}
    for line in out.stdout.splitlines():
        fields = dict(kv.split("=", 1) for kv in line.split())
        rows[fields["policy"]] = fields
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replay", default=os.path.join(REPO, "build", "pack_replay"))
    ap.add_argument("--gangs", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    topo_dir = os.path.join(REPO, "python_shim", "craylet", "topologies")
    targets = [(f[:-4], os.path.join(topo_dir, f)) for f in sorted(os.listdir(topo_dir)) if f.endswith(".txt")]
    targets += [("random-16", "random:16:7"), ("random-64", "random:64:7")]
    print("%-26s %-8s %5s %8s %8s %9s %9s %9s" % ("topology", "policy", "GPUs", "share", "all-NV", "ring ms",
                                                 "p50 us", "p99 us"))
    ok = True
    for name, target in targets:
        rows = run(args.replay, target, args.gangs, args.seed)
        for policy in ("stock", "craylet", "optimum"):
            r = rows.get(policy)
            if not r:
                continue
            print("%-26s %-8s %5s %7.1f%% %7.1f%% %9.2f %9.2f %9.2f" % (
                name, policy, r["gpus"], 100 * float(r["share"]), 100 * float(r["all_nvlink"]),
                float(r["allreduce_ms"]), float(r["decide_p50_us"]), float(r["decide_p99_us"])))
        c, s = rows["craylet"], rows["stock"]
        gpus = int(c["gpus"])
        goal_share = 1.0 if gpus <= 8 else 0.95
        goal_us = 100 if gpus <= 8 else 1000
        met = float(c["share"]) >= goal_share - 1e-9 and float(c["decide_p99_us"]) < goal_us
        ok &= met
        ring_s, ring_c = float(s["allreduce_ms"]), float(c["allreduce_ms"])
        print("%-26s craylet/stock ring all-reduce time %.2fx; goal (share >= %.0f%%, p99 < %d us): %s" % (
            "", ring_c / ring_s if ring_s else 1.0, 100 * goal_share, goal_us, "met" if met else "MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
