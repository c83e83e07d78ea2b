#!/usr/bin/env python
"""Placement-group throughput: create, wait until ready, remove, again,
with 1, 10 and 40 bundles per group, on the stock raylet and on craylet in
the same run (alternating rounds), printed as groups per second and the
craylet/stock ratio of medians.

Each round is a fresh one-node cluster (`ray start --head`, 8 CPUs; every
bundle asks {"CPU": 0.1}) and one driver that runs --cycles cycles per size
back to back: a new group is created right after the previous one was
removed, as Ray Tune and Train do between trials.  GCS holds a group until
it has seen the node's resources change; craylet reports them the moment a
bundle is reserved or given back instead of at the next 100 ms report.

Nothing here asserts on timing.

    .venv/bin/python benchmarks/pg_throughput.py --raylet-path build/craylet [--rounds 2] [--cycles 30]
"""
import argparse
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))

import helpers  # noqa: E402

helpers.pin_authentication()

SIZES = (1, 10, 40)

DRIVER = """
import json, time, ray
from ray.util.placement_group import placement_group, remove_placement_group
ray.init(address=%(address)r, logging_level="ERROR")
out = {}
for n in %(sizes)r:
    t = time.perf_counter()
    for _ in range(%(cycles)d):
        pg = placement_group([{"CPU": 0.1}] * n, strategy="PACK")
        assert pg.wait(120)
        remove_placement_group(pg)
    out[n] = %(cycles)d / (time.perf_counter() - t)
print("RESULT " + json.dumps(out))
"""


def one_round(raylet, cycles):
    c = helpers.Cluster(name="pgb")
    try:
        c.start_head(raylet=raylet, num_cpus=8, include_dashboard=False)
        r = c.python(DRIVER % {"address": c.gcs_address, "sizes": SIZES, "cycles": cycles}, timeout=1800)
        lines = [line for line in r.stdout.splitlines() if line.startswith("RESULT ")]
        if r.returncode != 0 or not lines:
            sys.exit("driver failed:\n" + r.output()[-3000:])
        return {int(k): v for k, v in json.loads(lines[-1][7:]).items()}
    finally:
        c.teardown()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raylet-path", default=str(REPO / "build" / "craylet"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cycles", type=int, default=30)
    args = ap.parse_args()
    runs = {"stock": [], "craylet": []}
    for i in range(args.rounds):
        for variant, raylet in (("stock", helpers.STOCK), ("craylet", args.raylet_path)):
            res = one_round(raylet, args.cycles)
            runs[variant].append(res)
            print("round %d %-7s %s" % (i + 1, variant, "  ".join("%d bundles: %.1f/s" % (n, res[n]) for n in SIZES)),
                  flush=True)
    print("\n%-28s %12s %12s %8s" % ("groups/s (create+ready+remove)", "stock", "craylet", "ratio"))
    for n in SIZES:
        s = statistics.median(r[n] for r in runs["stock"])
        c = statistics.median(r[n] for r in runs["craylet"])
        print("%-28s %12.1f %12.1f %7.2fx" % ("%d bundles per group" % n, s, c, c / s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
