"""Out-of-memory prevention: a craylet node kills a worker whose task
pushes the node's memory past memory_usage_threshold, as the stock
raylet's memory monitor does, and its owner learns why
(GetWorkerFailureCause -> OutOfMemoryError with the node's figures).

The threshold is set just above what the machine uses when the test
starts, so a task that keeps allocating crosses it within a couple of
gigabytes; without the monitor the task would finish and return."""

from pathlib import Path

import pytest

import helpers
from test_metrics import raylet_series
from test_objects_between_nodes import run_on

GIB = 1024 ** 3


def meminfo():
    fields = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            fields[key] = int(rest.split()[0]) * 1024
    return fields["MemTotal"], fields["MemTotal"] - fields["MemAvailable"]


@pytest.mark.serial
def test_a_task_that_exhausts_memory_is_killed_and_its_owner_told(cluster, craylet):
    total, used = meminfo()
    if total - used < 6 * GIB:
        pytest.skip("needs 6 GiB of free memory to push past a threshold safely")
    # Room for the cluster itself, then the hog's first gigabyte or so.
    threshold = (used + 1.5 * GIB) / total
    port = helpers.free_port()
    head = cluster.start_head(raylet=craylet, num_cpus=2, include_dashboard=False,
                              extra_args=["--metrics-export-port=%d" % port],
                              env={"RAY_memory_usage_threshold": "%.4f" % threshold,
                                   "RAY_memory_monitor_refresh_ms": "100",
                                   "RAY_metrics_report_interval_ms": "1000"})
    res = run_on(cluster, None, """
        @ray.remote(max_retries=0)
        def hog():
            chunks = []
            for _ in range(30):  # up to 6 GiB, a page-touching 200 MiB at a time
                chunks.append(np.ones(200 * 1024 * 1024 // 8))
                time.sleep(0.05)
            return "finished"

        out = {}
        try:
            out["hog"] = ray.get(hog.remote(), timeout=180)
        except ray.exceptions.OutOfMemoryError as e:
            out["hog"] = "OutOfMemoryError"
            out["message"] = str(e)
        except Exception as e:
            out["hog"] = type(e).__name__
            out["message"] = str(e)

        @ray.remote
        def small():
            return 42
        out["after"] = ray.get(small.remote(), timeout=120)
        emit(out)
    """, timeout=400)
    assert res["hog"] == "OutOfMemoryError", res
    # Stock 2.54 says "Task was killed due to ...", 2.60 "1 worker(s) were
    # killed due to ...".
    assert "killed due to the node running low on memory" in res["message"], res["message"]
    assert head.node_id in res["message"], res["message"]
    assert "name=hog" in res["message"], res["message"]
    assert res["after"] == 42, "the node keeps serving"

    # The kill is counted where Ray's dashboard reads it.
    def counted():
        points = raylet_series(port).get("ray_memory_manager_worker_eviction_total", [])
        return [(labels, v) for labels, v in points
                if labels.get("Type") == "MemoryManager.TaskEviction.Total" and labels.get("Name") == "hog"]
    points = helpers.wait_for(counted, 60, interval=1, what="the eviction on the metrics port")
    assert points[0][1] >= 1, points
    if craylet:
        # The node says so in its own log.
        log = "".join(p.read_text(errors="replace") for p in Path(cluster.temp_dir).glob("session_*/logs/raylet.out"))
        assert "for memory:" in log, log[-2000:]
