"""GCS restarts (issue 10): craylet nodes ride out a restart of a
Redis-backed GCS, and leave when a GCS without Redis does not come back.

- With `RAY_REDIS_ADDRESS` (a real redis-server started here), `gcs_server`
  is SIGKILLed and started again, twice, with the same command line while a
  driver keeps calling two actors (one detached, one on the second node)
  and submitting tasks.  The driver sees no error and every count is
  right; both craylet nodes stay ALIVE under the same node ids with the
  same resource totals in `ray status`; each craylet heard
  NotifyGCSRestart (GCS sends it to every node it reloads as ALIVE).
- A detached actor whose worker dies while GCS is down is restarted once
  GCS is back: the craylet's worker-failure report waits out the restart.
- Without Redis, a GCS that stays away past
  `gcs_rpc_server_reconnect_timeout_s` makes the craylet exit with the
  stock raylet's explanation, instead of lingering as a node nobody can
  reach; and a GCS that comes back without its storage (a new cluster id)
  makes the craylet exit at its next liveness self-check.

CRAYLET_BIN=stock runs the same checks on the stock raylet (all but the
NotifyGCSRestart log line, which is craylet's own)."""

import json
import os
import shutil
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

import helpers
from test_tasks_objects import run_driver

REDIS_SERVER = shutil.which("redis-server")


@pytest.fixture
def redis(tmp_path):
    if REDIS_SERVER is None:
        pytest.fail("redis-server is not installed (make setup installs it)")
    port = helpers.free_port()
    proc = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        helpers.wait_for(lambda: helpers.is_listening(port), 20, what="redis-server")
        yield "127.0.0.1:%d" % port
    finally:
        proc.kill()
        proc.wait(10)


def gcs_process(cluster):
    procs = [p for p in cluster.processes() if helpers.classify(p) == "gcs"]
    assert len(procs) == 1, [helpers.describe(p) for p in cluster.processes()]
    return procs[0]


def restart_gcs(cluster, down_s: float, while_down=None):
    """SIGKILL gcs_server, leave it down `down_s` (calling `while_down()`
    first, if given), start it again as Ray started it (same argv,
    environment and directory)."""
    proc = gcs_process(cluster)
    argv, env, cwd = proc.cmdline(), proc.environ(), proc.cwd()
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    if while_down is not None:
        while_down()
    time.sleep(down_s)
    out = open(Path(cluster.temp_dir) / "gcs_server.restarted.out", "ab")
    new = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                           start_new_session=True)
    out.close()
    cluster.session_ids.append(new.pid)
    helpers.forget_gcs(cluster.gcs_address)
    helpers.wait_for(lambda: helpers.is_listening(cluster.gcs_port), 60, what="the restarted GCS")


def raylet_logs(cluster) -> str:
    return "".join(p.read_text(errors="replace")
                   for p in Path(cluster.temp_dir).glob("session_*/logs/raylet*"))


def wait_node_left_alone(cluster, craylet, raylet, timeout, what):
    """The node's raylet exits, and (craylet) takes its agents and workers
    with it.  The stock raylet's _Exit leaves its runtime-env agent behind:
    the teardown check would hold that against the test, so it is cleaned
    up here."""
    helpers.wait_for(lambda: not raylet.is_running() or raylet.status() == "zombie", timeout, what=what)
    survivors = cluster.wait_no_leftovers(30)
    if craylet is None:
        for p in survivors:
            p.kill()
    else:
        assert not survivors, [helpers.describe(p) for p in survivors]


WORKLOAD = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    import ray
    ray.init(address=%(address)r, namespace="gcs_ft", logging_level="ERROR")

    @ray.remote(num_cpus=0)
    class Counter:
        def __init__(self):
            self.n = 0
        def add(self, k):
            self.n += k
            return self.n

    @ray.remote(num_cpus=0.1)
    def square(x):
        return x * x

    detached = Counter.options(name="detached", lifetime="detached").remote()
    remote = Counter.options(resources={"w": 1}).remote()
    ray.get([detached.add.remote(0), remote.add.remote(0), square.remote(1)], timeout=120)
    Path(%(ready)r).write_text("ready")
    stop = Path(%(stop)r)
    calls = tasks = 0
    errors = []
    while not stop.exists() or calls < 20:
        try:
            a, b = ray.get([detached.add.remote(1), remote.add.remote(1)], timeout=120)
            calls += 1
            if a != calls or b != calls:
                errors.append("counts %%d, %%d after %%d calls" %% (a, b, calls))
                break
            if calls %% 5 == 0:
                if ray.get(square.remote(calls), timeout=120) != calls * calls:
                    errors.append("a task returned a wrong result")
                    break
                tasks += 1
        except Exception as e:
            errors.append(repr(e)[:500])
            break
        time.sleep(0.05)
    sys.stdout.write("\\nRESULT " + json.dumps({"calls": calls, "tasks": tasks, "errors": errors}) + "\\n")
""")


def test_nodes_and_actors_ride_out_two_gcs_restarts(cluster_factory, craylet, redis, tmp_path):
    env = {"RAY_REDIS_ADDRESS": redis, "RAY_external_storage_namespace": "craylet-%d" % os.getpid()}
    cluster = cluster_factory(env=env)
    head = cluster.start_head(raylet=craylet, num_cpus=1, include_dashboard=False)
    worker = cluster.start_worker(raylet=craylet, num_cpus=1, resources={"w": 1})
    before = cluster.wait_status(lambda s: len(s.active_nodes) == 2, 60, what="two active nodes")

    ready, stop = tmp_path / "ready", tmp_path / "stop"
    code = WORKLOAD % {"address": cluster.gcs_address, "ready": str(ready), "stop": str(stop)}
    driver = subprocess.Popen([str(helpers.PYTHON), "-c", code], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=cluster.env,
                              text=True, start_new_session=True)
    cluster.session_ids.append(driver.pid)
    try:
        helpers.wait_for(lambda: ready.exists() or driver.poll() is not None, 180, what="the workload")
        assert driver.poll() is None, driver.communicate()
        for _ in range(2):
            time.sleep(2)
            restart_gcs(cluster, down_s=2)
            # GCS reloads both nodes as ALIVE and health-checks them again.
            helpers.wait_for(lambda: {n["node_id"]: n["state"] for n in helpers.gcs_nodes(cluster.gcs_address)}
                             == {head.node_id: "ALIVE", worker.node_id: "ALIVE"},
                             60, what="both nodes ALIVE after the GCS restart")
        time.sleep(3)
        stop.write_text("stop")
        out, err = driver.communicate(timeout=240)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    results = [json.loads(line[7:]) for line in out.splitlines() if line.startswith("RESULT ")]
    assert driver.returncode == 0 and results, out + err + cluster.log_tail()
    res = results[-1]
    assert res["errors"] == [] and res["calls"] >= 20 and res["tasks"] >= 4, (res, err[-3000:])

    states = {n["node_id"]: n["state"] for n in helpers.gcs_nodes(cluster.gcs_address)}
    assert states == {head.node_id: "ALIVE", worker.node_id: "ALIVE"}, states
    after = cluster.wait_status(lambda s: len(s.active_nodes) == 2, 60, what="two active nodes")
    assert after.totals == before.totals, (before.totals, after.totals)
    # The detached actor lives on and is still reachable by name.
    again = run_driver(cluster, """
        c = ray.get_actor("detached", namespace="gcs_ft")
        emit({"n": ray.get(c.add.remote(0), timeout=60)})
    """)
    assert again["n"] == res["calls"], (again, res)
    if craylet is not None:
        # Each node's log (Ray may name one log by several paths) says it
        # heard both restarts.
        for node in (head, worker):
            heard = {p.read_text(errors="replace").count("GCS restarted: resubscribing")
                     for p in Path(cluster.temp_dir).glob("session_*/logs/raylet*.out")
                     if node.node_id in p.read_text(errors="replace")}
            assert heard == {2}, (node.node_id, heard)


def test_without_redis_craylet_leaves_when_gcs_stays_away(cluster_factory, craylet):
    cluster = cluster_factory(env={"RAY_gcs_rpc_server_reconnect_timeout_s": "5"})
    node = cluster.start_head(raylet=craylet, num_cpus=1, include_dashboard=False)
    raylet = node.raylet_process()
    proc = gcs_process(cluster)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    wait_node_left_alone(cluster, craylet, raylet, 90, "the raylet to exit once GCS stayed away")
    logs = raylet_logs(cluster)
    assert "Failed to connect to GCS within" in logs, logs[-3000:]


def test_detached_actor_restarts_after_its_worker_dies_while_gcs_is_down(cluster_factory, craylet, redis):
    env = {"RAY_REDIS_ADDRESS": redis, "RAY_external_storage_namespace": "craylet-%d" % os.getpid()}
    cluster = cluster_factory(env=env)
    cluster.start_head(raylet=craylet, num_cpus=1, include_dashboard=False)
    first = run_driver(cluster, """
        @ray.remote(num_cpus=0)
        class A:
            def pid(self):
                return os.getpid()
        a = A.options(name="a", namespace="ft", lifetime="detached", max_restarts=-1).remote()
        emit({"pid": ray.get(a.pid.remote(), timeout=120)})
    """)
    pid = first["pid"]
    restart_gcs(cluster, down_s=2, while_down=lambda: os.kill(pid, signal.SIGKILL))
    second = run_driver(cluster, """
        a = ray.get_actor("a", namespace="ft")
        deadline = time.time() + 90
        while True:
            try:
                emit({"pid": ray.get(a.pid.remote(), timeout=30)})
                break
            except (ray.exceptions.ActorUnavailableError, ray.exceptions.GetTimeoutError):
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
    """, timeout=180)
    assert second["pid"] != pid, (first, second)


def test_without_redis_a_restarted_gcs_makes_craylet_leave(cluster_factory, craylet):
    cluster = cluster_factory(env={"RAY_raylet_liveness_self_check_interval_ms": "1000"})
    node = cluster.start_head(raylet=craylet, num_cpus=1, include_dashboard=False)
    raylet = node.raylet_process()
    restart_gcs(cluster, down_s=0.5)
    # The new GCS has a new cluster id: it refuses the node's calls (or does
    # not know the node), and the node must not linger in a cluster that
    # no longer exists.
    wait_node_left_alone(cluster, craylet, raylet, 60,
                         "the raylet to exit after GCS came back without its storage")
    if craylet is not None:
        logs = raylet_logs(cluster)
        assert "restarted without persistent storage" in logs, logs[-3000:]
