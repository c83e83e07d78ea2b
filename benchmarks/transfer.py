#!/usr/bin/env python
"""Objects between nodes: node-to-node throughput of a 1 GB object, and a
500 MB object broadcast to 3 hosts at once, craylet<->craylet against
stock<->stock in the same run, on separate network hosts (network
namespaces joined by a bridge: tests/integration/netns.py; needs root).

Each round is a fresh 4-host cluster (GCS and head on host 0, one node on
each of hosts 1-3, 3 GB object stores).  The object is made by an actor on
host 1; readers on the other hosts time their own ray.get (a whole read,
including the owner lookup, the Pull and every chunk).  Rounds alternate
between the stock raylet and craylet; medians are compared.  For scale,
the same bytes copied once with memcpy (numpy) on this machine.

Nothing here asserts on timing.

    sudo .venv/bin/python benchmarks/transfer.py --raylet-path build/craylet [--rounds 2]
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))

import helpers  # noqa: E402
import netns  # noqa: E402

helpers.pin_authentication()

GB = 1 << 30
MB = 1 << 20

DRIVER = """
import json, time
import numpy as np
import ray
ray.init(address=%(address)r, logging_level="ERROR")

@ray.remote(resources={"host1": 1})
class Maker:
    def make(self, nbytes):
        return [ray.put(np.ones(nbytes, dtype=np.uint8))]

@ray.remote(num_cpus=0)
def read(refs):
    t = time.perf_counter()
    arr = ray.get(refs[0], timeout=600)
    dt = time.perf_counter() - t
    assert arr.nbytes > 0 and arr[-1] == 1
    return dt

m = Maker.remote()
out = {}
one = ray.get(m.make.remote(%(one)d), timeout=600)
out["one"] = ray.get(read.options(resources={"host2": 1}).remote(one), timeout=900)
del one
many = ray.get(m.make.remote(%(bcast)d), timeout=600)
t = time.perf_counter()
ray.get([read.options(resources={"host%%d" %% h: 1}).remote(many) for h in (0, 2, 3)], timeout=900)
out["broadcast"] = time.perf_counter() - t
print("RESULT " + json.dumps(out))
"""


def one_round(raylet, one, bcast):
    hosts = netns.Hosts(4)
    c = netns.HostCluster(hosts)
    try:
        for i in range(4):
            c.start_host(i, raylet, resources={"host%d" % i: 10}, num_cpus=2,
                         object_store_memory=3 * GB)
        with c.on_host(0):
            r = c.python(DRIVER % {"address": c.gcs_address, "one": one, "bcast": bcast}, timeout=1800)
        lines = [line for line in r.stdout.splitlines() if line.startswith("RESULT ")]
        if r.returncode != 0 or not lines:
            sys.exit("driver failed:\n" + r.output()[-3000:] + "\n" + c.log_tail(lines=40))
        return json.loads(lines[-1][7:])
    finally:
        c.teardown()
        hosts.close()


def memcpy_gbps(nbytes):
    import numpy as np
    src = np.ones(nbytes, dtype=np.uint8)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t)
    return nbytes / best / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--raylet-path", required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--size-mb", type=int, default=1024, help="the node-to-node object")
    ap.add_argument("--broadcast-mb", type=int, default=500)
    args = ap.parse_args()
    why = netns.namespaces_available()
    if why:
        print("transfer benchmark skipped: " + why)
        return
    one, bcast = args.size_mb * MB, args.broadcast_mb * MB
    runs = {"stock": [], "craylet": []}
    for _ in range(args.rounds):
        runs["stock"].append(one_round(None, one, bcast))
        runs["craylet"].append(one_round(args.raylet_path, one, bcast))
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("one", "broadcast")} for k, v in runs.items()}
    print("objects between nodes (%d rounds each, medians; namespaces on one machine)" % args.rounds)
    print("%-34s %10s %10s %8s" % ("", "stock", "craylet", "ratio"))
    for m, nbytes, label in (("one", one, "%d MB node to node, GB/s" % args.size_mb),
                             ("broadcast", 3 * bcast, "%d MB to 3 hosts, GB/s" % args.broadcast_mb)):
        s, c = nbytes / med["stock"][m] / 1e9, nbytes / med["craylet"][m] / 1e9
        print("%-34s %10.2f %10.2f %7.2fx" % (label, s, c, c / s))
    print("memcpy of %d MB on this machine: %.2f GB/s" % (args.size_mb, memcpy_gbps(one)))


if __name__ == "__main__":
    main()
