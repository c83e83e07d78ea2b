"""Metrics (issue 10): a craylet node's metrics reach the dashboard agent's
Prometheus endpoint (the node's metrics export port) as a stock node's do.

The same workload runs on a stock node and then on a craylet node, each
scraped the same way; the series Ray's dashboards and operators read
(ray_resources, ray_object_store_memory and the object store gauges, the
spill manager's, ray_scheduler_tasks, ray_internal_num_processes_started)
must exist on both with the same label keys and, where labels name
states, the same label values.  craylet's own (ray_craylet_*) must be
there too, with values that follow the workload."""

import os
import re
import time
import urllib.request

import pytest

import helpers
from test_tasks_objects import run_driver

# The series compared, with the labels whose values must match as sets.
COMPARED = {
    "ray_resources": ("Name", "State"),
    "ray_object_store_memory": ("Location", "ObjectState"),
    "ray_object_store_available_memory": (),
    "ray_object_store_used_memory": (),
    "ray_object_store_fallback_memory": (),
    "ray_object_store_num_local_objects": (),
    "ray_spill_manager_objects": ("State",),
    "ray_spill_manager_objects_bytes": ("State",),
    "ray_spill_manager_request_total": ("Type",),
    "ray_internal_num_processes_started": (),
}
GLOBAL = ("Component", "NodeAddress", "SessionName", "Version", "WorkerId")

_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\}\s+(\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def raylet_series(port):
    """{name: [(labels dict, value)]} of the series the raylet sent."""
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m.group(2)))
        # Only what the raylet exported (the agent's own series about the
        # raylet process carry no NodeAddress).
        if labels.get("Component") != "raylet" or "NodeAddress" not in labels:
            continue
        out.setdefault(m.group(1), []).append((labels, float(m.group(3))))
    return out


def scrape_after_workload(cluster, raylet, port):
    node = cluster.start_head(raylet=raylet, num_cpus=2, include_dashboard=False,
                              extra_args=["--metrics-export-port=%d" % port])
    res = run_driver(cluster, """
        import numpy as np
        @ray.remote
        def f(x):
            return x + 1
        refs = [ray.put(np.zeros(1 << 20, dtype=np.uint8)) for _ in range(3)]
        emit({"sum": sum(ray.get([f.remote(i) for i in range(200)]))})
        time.sleep(4)  # two exports with the objects held
    """)
    assert res["sum"] == sum(range(1, 201))
    seen = {}

    def complete():
        # 2.54's agent hands out each gauge to one scrape only: keep the
        # union of what the scrapes saw.
        for name, points in raylet_series(port).items():
            seen.setdefault(name, []).extend(points)
        return all(name in seen for name in COMPARED) and (
            raylet is None or "ray_craylet_lease_latency_ms_bucket" in seen)
    try:
        helpers.wait_for(complete, 90, interval=1, what="the raylet's metrics on the export port")
    except helpers.WaitTimeout:
        raise AssertionError("missing: %s" % sorted(set(COMPARED) - set(seen)))
    return node, seen


def test_craylet_metrics_match_a_stock_nodes(cluster_factory, craylet):
    if craylet is None:
        pytest.skip("CRAYLET_BIN=stock: this test compares craylet with stock itself")
    env = {"RAY_metrics_report_interval_ms": "1000"}
    stock = cluster_factory(env=env)
    _, want = scrape_after_workload(stock, None, helpers.free_port())
    stock.teardown()
    ours = cluster_factory(env=env)
    node, got = scrape_after_workload(ours, craylet, helpers.free_port())

    for name, keys in COMPARED.items():
        want_keys = {frozenset(l) for l, _ in want[name]}
        got_keys = {frozenset(l) for l, _ in got[name]}
        assert got_keys == want_keys, (name, got_keys, want_keys)
        for key in keys:
            assert {l[key] for l, _ in got[name]} == {l[key] for l, _ in want[name]}, (name, key)
        for labels, _ in got[name]:
            # Both nodes ran on this machine, under the same address.
            assert labels["NodeAddress"] == want[name][0][0]["NodeAddress"], labels
            assert labels["WorkerId"] == "" and labels["Version"] == want[name][0][0]["Version"], labels
            assert labels["SessionName"].startswith("session_"), labels
    # The stock node's resources include what craylet has, state by state.
    assert {(l["Name"], l["State"]) for l, _ in got["ray_resources"]} >= {("CPU", "AVAILABLE"), ("CPU", "USED")}

    def value(series, **labels):
        vals = [v for l, v in series if all(l.get(k) == x for k, x in labels.items())]
        assert vals, (labels, series)
        return vals[-1]
    assert value(got["ray_resources"], Name="CPU", State="AVAILABLE") + \
        value(got["ray_resources"], Name="CPU", State="USED") == 2
    assert value(got["ray_internal_num_processes_started"]) >= 1
    # craylet's own: the 200 tasks' leases were timed, the loop's turns too.
    lease_count = [v for l, v in got["ray_craylet_lease_latency_ms_count"]]
    assert lease_count and max(lease_count) >= 1, got.get("ray_craylet_lease_latency_ms_count")
    # The loop as counters and a gauge: a few points per export, whatever
    # the number of wake-ups (the agent replays histograms point by point).
    turns = [v for name, series in got.items() if name.startswith("ray_craylet_loop_iterations")
             for _, v in series]
    assert turns and max(turns) >= 200, sorted(got)
    assert [n for n in got if n.startswith("ray_craylet_loop_busy_ms")], sorted(got)
    assert max(v for _, v in got["ray_craylet_loop_iteration_max_ms"]) > 0
    assert not [n for n in got if n.startswith("ray_craylet_loop_iteration_ms")], sorted(got)
    assert {l["State"] for l, _ in got["ray_craylet_workers"]} >= {"Idle", "Leased", "Driver"}
