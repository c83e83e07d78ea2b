"""Spilling (issue 10): primary copies go to external storage when the
store fills, come back when read, and their files go when their references
do.

- One node, a 1 GiB store, 3 GiB of objects held by the driver: every
  object reads back intact, `ray memory --stats-only` shows the spilled
  bytes (and restores), spill files exist under the session directory while
  the objects live, and are gone once the references drop.
- Two hosts (network namespaces): an object spilled on one host (and
  evicted there) is read by a driver on the other, so the spilling node
  restores it to push it.

CRAYLET_BIN=stock runs the same checks on the stock raylet."""

import subprocess
import time
from pathlib import Path

import pytest

import helpers
import netns
from test_objects_between_nodes import run_on
from test_tasks_objects import run_driver

MB = 1024 * 1024


def spill_files(cluster, node_id):
    return [p for p in Path(cluster.temp_dir).glob("session_*/ray_spilled_objects_%s/*" % node_id)
            if p.is_file()]


def test_three_gib_through_a_one_gib_store(cluster, craylet, tmp_path):
    node = cluster.start_head(raylet=craylet, num_cpus=1, include_dashboard=False,
                              extra_args=["--object-store-memory=%d" % (1024 * MB)])
    marker = tmp_path / "held"
    go = tmp_path / "go"
    code = """
        import numpy as np
        from pathlib import Path
        from ray._private.internal_api import memory_summary
        refs = [ray.put(np.full(100 * 1024 * 1024, i %% 251, dtype=np.uint8)) for i in range(30)]
        bad = []
        for i, r in enumerate(refs):
            a = ray.get(r)
            if a.shape != (100 * 1024 * 1024,) or a[0] != i %% 251 or a[-1] != i %% 251 or a[a.size // 2] != i %% 251:
                bad.append(i)
            del a
        emit({"bad": bad, "stats": memory_summary(address=ray.get_runtime_context().gcs_address, stats_only=True)})
        Path(%(held)r).write_text("held")
        while not Path(%(go)r).exists():
            time.sleep(0.2)
        del refs
        emit({"released": True})
    """ % {"held": str(marker), "go": str(go)}
    import threading
    box = {}
    t = threading.Thread(target=lambda: box.update(res=run_driver(cluster, code, timeout=600)))
    t.start()
    try:
        helpers.wait_for(lambda: marker.exists() or not t.is_alive(), 540, what="the driver's puts")
        held = spill_files(cluster, node.node_id)
        cli = cluster.ray("memory", "--stats-only", "--address=%s" % cluster.gcs_address, timeout=120)
    finally:
        go.write_text("go")
        t.join(120)
    res = box.get("res")
    assert res is not None, cluster.log_tail()
    assert res["bad"] == [], res
    assert held, "no spill files while 3 GiB were held in a 1 GiB store"
    # 3 GiB held, at most 1 GiB in memory: at least 2 GiB went to files.
    stats = res["stats"]
    import re
    m = re.search(r"Spilled (\d+) MiB, (\d+) objects", stats)
    assert m and int(m.group(1)) >= 1900 and int(m.group(2)) >= 19, stats
    assert re.search(r"Restored (\d+) MiB, (\d+) objects", stats), stats
    assert "Spilled" in cli.stdout, cli.output()
    # The driver ended: its objects, and their files, go.
    helpers.wait_for(lambda: not spill_files(cluster, node.node_id), 60,
                     what="the spill files to be deleted")


@pytest.fixture
def two_hosts(request, shim_installed):
    why = netns.namespaces_available()
    if why:
        pytest.skip(why)
    hosts = netns.Hosts(2)
    cluster = netns.HostCluster(hosts)
    try:
        yield cluster
    finally:
        failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
        if failed:
            print("---- logs ----\n%s" % cluster.log_tail(lines=80))
        problems = cluster.teardown()
        hosts.close()
        assert not problems, "\n".join(problems)


def test_an_object_spilled_on_one_host_is_read_on_another(two_hosts, craylet):
    c = two_hosts
    c.start_host(0, craylet, resources={"host0": 10}, num_cpus=1, object_store_memory=512 * MB)
    far = c.start_host(1, craylet, resources={"host1": 10}, num_cpus=1, object_store_memory=256 * MB)
    res = run_on(c, None, """
        @ray.remote(num_cpus=0, resources={"host1": 1})
        class Keeper:
            def make(self, n):
                # Owned here, on host 1: more than its store holds.
                self.refs = [ray.put(np.full(60 * 1024 * 1024, i + 1, dtype=np.uint8)) for i in range(n)]
                return self.refs
        k = Keeper.remote()
        refs = ray.get(k.make.remote(8), timeout=300)
        vals = []
        for r in refs:
            a = ray.get(r, timeout=300)
            vals.append([int(a[0]), int(a[-1]), int(a.size)])
            del a
        emit({"vals": vals})
    """, timeout=600)
    assert res["vals"] == [[i + 1, i + 1, 60 * MB] for i in range(8)], res
    # Host 1's store holds four at most: the rest were spilled there.
    stats = c.ray("memory", "--stats-only", "--address=%s" % c.gcs_address, timeout=120)
    assert "Spilled" in stats.stdout, stats.output()
    if craylet is not None:
        # craylet restores what was evicted since to push it (stock reads
        # the file as it pushes).
        assert "Restored" in stats.stdout, stats.output()
