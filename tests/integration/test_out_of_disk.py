"""A full disk (issue 10): objects that do not fit in memory are refused with
Ray's OutOfDiskError at once, never a crash, a hang or a lost object.

Two nodes on this host, the cluster's local_fs_capacity_threshold at one
millionth (so every disk in use counts as full; Ray's own
test_out_of_disk_space.py uses 0, which stock reports with no event):
- a put that fits in memory still succeeds; one that does not raises
  OutOfDiskError in the driver;
- a task whose argument lives on the other node and does not fit here fails
  with OutOfDiskError (the pull is failed, not retried forever);
- the node keeps serving afterwards;
- an "Out of Disk" ERROR event for the node is in the session's event log,
  where the dashboard reads it.

CRAYLET_BIN=stock runs the same checks on the stock raylet."""

import json
from pathlib import Path

import helpers
from test_tasks_objects import run_driver

MB = 1024 * 1024


def test_a_full_disk_is_out_of_disk_error_and_the_node_keeps_serving(cluster, craylet):
    full = cluster.start_head(raylet=craylet, num_cpus=1, include_dashboard=False,
                              resources={"full": 1},
                              extra_args=["--object-store-memory=%d" % (80 * MB),
                                          "--system-config=%s" % json.dumps({"local_fs_capacity_threshold": 1e-6})])
    cluster.start_worker(raylet=craylet, num_cpus=1, resources={"roomy": 1},
                         extra_args=["--object-store-memory=%d" % (300 * MB)])
    res = run_driver(cluster, """
        import numpy as np

        def kind(e):
            cause = getattr(e, "cause", None)
            return type(e).__name__ + ("/" + type(cause).__name__ if cause is not None else "")

        small = ray.put(np.ones(10 * 1024 * 1024 // 8))
        ok_small = float(ray.get(small).sum()) == 10 * 1024 * 1024 // 8
        try:
            ray.put(np.ones(100 * 1024 * 1024 // 8))
            big = "no error"
        except Exception as e:
            big = kind(e)

        @ray.remote(num_cpus=0, resources={"roomy": 1})
        def make():
            return np.ones(160 * 1024 * 1024 // 8)

        @ray.remote(num_cpus=0, resources={"full": 1})
        def use(a):
            return float(a[0])

        @ray.remote(num_cpus=0, resources={"full": 1})
        def ping(x):
            return x + 1

        try:
            ray.get(use.remote(make.remote()), timeout=120)
            arg = "no error"
        except Exception as e:
            arg = kind(e)
        emit({"ok_small": ok_small, "big": big, "arg": arg,
              "after": ray.get([ping.remote(i) for i in range(20)], timeout=60)})
    """, timeout=300)
    assert res["ok_small"], res
    assert "OutOfDiskError" in res["big"], res
    assert "OutOfDiskError" in res["arg"], res
    assert res["after"] == list(range(1, 21)), res

    def events():
        out = []
        for f in Path(cluster.temp_dir).glob("session_*/logs/events/event_RAYLET*.log"):
            for line in f.read_text().splitlines():
                if line.strip():
                    out.append(json.loads(line))
        return [e for e in out if e.get("custom_fields", {}).get("node_id") == full.node_id]

    found = helpers.wait_for(lambda: [e for e in events() if e.get("label") == "Out of Disk"], 10,
                             what="an Out of Disk event of the full node")
    assert found[0]["severity"] == "ERROR", found
    assert "Object creation will fail if spilling is required" in found[0]["message"], found
    assert found[0]["source_type"] == "RAYLET", found
