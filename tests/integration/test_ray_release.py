"""Issue 7: the Ray release craylet was built for, whichever it is (2.60.0
by default, 2.54.0 too): what changed between them works, and a craylet
built for another release refuses to start, loudly.

These run unchanged on every supported release (CI runs the suite on
each); where the releases speak differently (object release through the
owner's eviction channel versus FreeLocalObjects, CancelResourceReserve
versus RemovePlacementGroupBundles) the same user-visible outcome is
asserted."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import helpers
from test_tasks_objects import MB, head, run_driver

# Indented like the driver bodies below, which run_driver dedents.
STORE_USED = """
        from ray._private.internal_api import node_stats
        _me = [n for n in ray.nodes() if n["Alive"]][0]
        def store_used():
            s = node_stats(_me["NodeManagerAddress"], _me["NodeManagerPort"], include_memory_info=False)
            return s.store_stats.object_store_bytes_used
"""


def test_put_object_lives_with_its_owner_and_goes_with_its_last_reference(cluster, craylet):
    head(cluster, craylet, num_cpus=2)
    res = run_driver(cluster, STORE_USED + """
        import numpy as np
        before = store_used()
        ref = ray.put(np.ones(20 * 1024 * 1024 // 8))
        # The owner lives and holds the reference: the copy must stay, and
        # a task started later still reads it (Ray 2.60 with a 2.54 craylet
        # deleted it right here).
        time.sleep(3)
        held = store_used()
        @ray.remote
        def total(a):
            return float(a.sum())
        got = ray.get(total.remote(ref), timeout=60)
        del ref
        deadline = time.time() + 30
        while time.time() < deadline and store_used() > before:
            time.sleep(0.2)
        emit({"before": before, "held": held, "got": got, "after": store_used()})
    """)
    assert res["held"] >= res["before"] + 20 * MB, res
    assert res["got"] == 20 * MB // 8, res
    assert res["after"] <= res["before"], res


def test_task_and_actor_call_with_a_10mb_argument(cluster, craylet):
    head(cluster, craylet, num_cpus=2)
    res = run_driver(cluster, """
        import numpy as np
        arg = np.arange(10 * 1024 * 1024 // 8, dtype=np.int64)

        @ray.remote
        def checksum(a):
            return int(a.sum())

        @ray.remote
        class Summer:
            def checksum(self, a):
                return int(a.sum())

        @ray.remote
        def later(a):
            time.sleep(1)
            return a

        s = Summer.remote()
        by_task = ray.get(checksum.remote(arg), timeout=120)
        by_actor = ray.get(s.checksum.remote(arg), timeout=120)
        # An argument still being computed: the actor waits for it through
        # the raylet (WaitForActorCallArgs, named by task since 2.60).
        by_actor_pending = ray.get(s.checksum.remote(later.remote(arg)), timeout=120)
        emit({"want": int(arg.sum()), "task": by_task, "actor": by_actor, "pending": by_actor_pending})
    """)
    assert res["task"] == res["want"] and res["actor"] == res["want"] and res["pending"] == res["want"], res


def test_removing_a_placement_group_returns_exactly_the_totals(cluster, craylet):
    head(cluster, craylet, num_cpus=4, resources={"disk": 3})
    res = run_driver(cluster, """
        from ray.util.placement_group import placement_group, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
        total = ray.cluster_resources()
        pg = placement_group([{"CPU": 1, "disk": 1}, {"CPU": 2}, {"disk": 2}], strategy="PACK")
        ray.get(pg.ready(), timeout=60)

        @ray.remote(num_cpus=2)
        def busy():
            time.sleep(600)
        # A task running in a bundle, and one queued behind it: both go.
        running = busy.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
            pg, placement_group_bundle_index=1)).remote()
        queued = busy.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
            pg, placement_group_bundle_index=1)).remote()
        time.sleep(2)
        held = ray.available_resources()
        remove_placement_group(pg)
        # GCS drops the group from its own view at once and hears the node
        # return its bundles one cancel at a time: a view sent between two
        # cancels shows the rest again for a moment.  Wait for it to settle.
        deadline = time.time() + 60
        settled = 0
        while time.time() < deadline and settled < 5:
            settled = settled + 1 if ray.available_resources() == total else 0
            time.sleep(0.2)
        emit({"total": total, "held": held, "after": ray.available_resources()})
    """)
    assert res["held"].get("CPU", 0) == 1 and res["held"].get("disk", 0) == 0, res
    assert res["after"] == res["total"], res


def test_finished_jobs_workers_go_and_driver_session_is_under_the_clusters_temp_dir(cluster, craylet):
    head(cluster, craylet, num_cpus=2)
    res = run_driver(cluster, """
        @ray.remote
        def pid():
            return os.getpid()
        pids = sorted(set(ray.get([pid.remote() for _ in range(20)])))
        emit({"pids": pids, "session_dir": ray._private.worker._global_node.get_session_dir_path()})
    """)
    # The job is over once its driver exits: GCS publishes it on the job
    # channel, and craylet must end that job's workers.
    deadline = time.time() + 5
    alive = res["pids"]
    while time.time() < deadline and alive:
        alive = [p for p in alive if os.path.exists("/proc/%d" % p)
                 and "ray::" in Path("/proc/%d/cmdline" % p).read_bytes().decode(errors="replace")]
        time.sleep(0.1)
    assert not alive, "workers of a finished job still running: %s\n%s" % (alive, cluster.log_tail())
    assert res["session_dir"].startswith(os.path.realpath(cluster.temp_dir) + "/") or \
        res["session_dir"].startswith(cluster.temp_dir + "/"), (res, cluster.temp_dir)


def test_node_death_reaches_craylet(cluster_factory, craylet):
    cluster = cluster_factory()
    head(cluster, craylet, num_cpus=1)
    other = cluster.start_worker(raylet=craylet, num_cpus=1)
    other.raylet_process().send_signal(signal.SIGTERM)  # unregisters: GCS publishes its death
    # Both nodes log into the one session directory; the head's craylet is
    # the one left to say it.
    want = "node %s left the cluster" % other.node_id
    deadline = time.time() + 60
    seen = False
    while time.time() < deadline and not seen:
        seen = any(want in p.read_text(errors="replace")
                   for p in Path(cluster.temp_dir).glob("session_*/logs/raylet*.out"))
        time.sleep(0.5)
    assert seen, cluster.log_tail()


# ---- the version guard ------------------------------------------------------


def _fake_ray(tmp_path, version):
    ray_dir = tmp_path / "site-packages" / "ray"
    (ray_dir / "_private" / "workers").mkdir(parents=True)
    (ray_dir / "_version.py").write_text('commit = "0"\nversion = "%s"\n' % version)
    worker = ray_dir / "_private" / "workers" / "default_worker.py"
    worker.write_text("")
    return worker


def _direct_argv(craylet, session):
    """craylet started by hand with the flags it requires, for checks that
    must stop it before it registers.  The GCS address is one nobody
    serves: a craylet that got past those checks would try to register
    there, and not exit within the test's timeout."""
    (session / "logs").mkdir(parents=True)
    return [craylet, "--raylet_socket_name=%s/raylet" % session, "--store_socket_name=%s/plasma" % session,
            "--node_id=" + "ab" * 28, "--node_ip_address=127.0.0.1", "--gcs-address=127.0.0.1:1",
            "--session_dir=%s" % session, "--cluster-id=" + "cd" * 28, "--object_store_memory=100000000"]


def _built_for(binary):
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30).stdout
    assert out.startswith("craylet for Ray "), out
    return out.split()[3]


def test_daemon_refuses_another_ray_release_before_registering(craylet, tmp_path):
    if craylet is None:
        pytest.skip("CRAYLET_BIN=stock: nothing of ours to check")
    built = _built_for(craylet)
    import ray
    assert built == ray.__version__, "build/craylet should be built for the Ray that runs the tests"
    worker = _fake_ray(tmp_path, "2.0.0")
    session = tmp_path / "session"
    argv = _direct_argv(craylet, session) + [
        "--python_worker_command=%s %s --flag" % (sys.executable, worker),
        "--stderr_filepath=%s/logs/raylet.err" % session, "--stdout_filepath=%s/logs/raylet.out" % session]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [l for l in r.stderr.splitlines() if "built for Ray" in l]
    assert len(lines) == 1, r.stderr
    assert ("built for Ray %s but Ray 2.0.0 started it" % built) in lines[0], lines
    assert "make setup RAY_VERSION=2.0.0" in lines[0], lines
    message = lines[0].split("craylet: ", 1)[1]
    assert message in (session / "logs" / "raylet.err").read_text(), "the log says it too"
    assert not (session / "raylet").exists(), "the raylet socket was bound: it got past the guard"


def _other_release_binary():
    """A craylet built for another supported release, if this checkout has
    one (CI builds 2.60 first, then 2.54 beside it)."""
    import ray
    for d in sorted(helpers.REPO.glob("build*")):
        b = d / "craylet"
        if b.is_file() and os.access(b, os.X_OK) and "asan" not in d.name and "tsan" not in d.name:
            try:
                if _built_for(str(b)) != ray.__version__:
                    return str(b)
            except (AssertionError, OSError, subprocess.SubprocessError):
                continue
    return None


def test_ray_start_with_a_craylet_of_another_release_says_so(cluster):
    other = _other_release_binary()
    if not other:
        pytest.skip("no craylet built for another Ray release in this checkout "
                    "(make setup RAY_VERSION=2.54.0 builds one)")
    import ray
    built = _built_for(other)
    r = cluster.ray("start", "--head", "--port=%d" % cluster.gcs_port, "--raylet-path=%s" % other,
                    "--temp-dir=%s" % cluster.temp_dir, timeout=120)
    assert r.returncode != 0, r.output()
    text = r.stdout + r.stderr
    assert "craylet was built for Ray %s but Ray %s started it" % (built, ray.__version__) in text, text
    assert "make setup RAY_VERSION=%s" % ray.__version__ in text, text
    # And through RAY_RAYLET_PATH with ray.init(): the same refusal.
    r = cluster.python("import ray; ray.init(num_cpus=1, include_dashboard=False)",
                       env={"RAY_RAYLET_PATH": other}, timeout=120)
    assert r.returncode != 0
    assert "built for Ray %s" % built in r.stdout + r.stderr, r.output()


def test_mixed_cluster_runs_tasks_and_a_placement_group_across_both(cluster, craylet, stock_raylet):
    if craylet is None:
        pytest.skip("CRAYLET_BIN=stock: nothing of ours to mix in")
    stock = cluster.start_head(raylet=stock_raylet, num_cpus=1, resources={"on_stock": 4},
                               include_dashboard=False)
    ours = cluster.start_worker(raylet=craylet, num_cpus=1, resources={"on_craylet": 4})
    cluster.wait_status(lambda s: len(s.active_nodes) == 2, what="both nodes in ray status")
    res = run_driver(cluster, """
        from ray.util.placement_group import placement_group, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        @ray.remote(num_cpus=0)
        def where():
            return ray.get_runtime_context().get_node_id()

        on = {r: ray.get([where.options(resources={r: 1}).remote() for _ in range(4)], timeout=120)
              for r in ("on_stock", "on_craylet")}
        total = ray.cluster_resources()
        pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_SPREAD")
        ray.get(pg.ready(), timeout=120)
        in_pg = ray.get([where.options(num_cpus=1, scheduling_strategy=PlacementGroupSchedulingStrategy(
            pg, placement_group_bundle_index=i)).remote() for i in range(2)], timeout=120)
        remove_placement_group(pg)
        deadline = time.time() + 60
        while time.time() < deadline and ray.available_resources() != total:
            time.sleep(0.2)
        emit({"on": on, "in_pg": in_pg, "restored": ray.available_resources() == total})
    """)
    assert set(res["on"]["on_stock"]) == {stock.node_id}, res
    assert set(res["on"]["on_craylet"]) == {ours.node_id}, res
    assert sorted(res["in_pg"]) == sorted([stock.node_id, ours.node_id]), res
    assert res["restored"], res


# ---- token authentication (on by default for new local clusters in 2.60) ----


def test_token_authentication_on_craylets_services(cluster, craylet):
    if craylet is None:
        pytest.skip("CRAYLET_BIN=stock: nothing of ours to check")
    if os.environ.get("RAY_AUTH_MODE") != "token":
        pytest.skip("the suite runs without token authentication (CRAYLET_TEST_AUTH=off)")
    node = head(cluster, craylet, num_cpus=1)
    # Everything this node does with GCS, workers and agents carried the
    # token, or nothing below would run.
    res = run_driver(cluster, """
        @ray.remote
        def f(x):
            return x + 1
        emit({"sum": sum(ray.get([f.remote(i) for i in range(50)]))})
    """)
    assert res["sum"] == sum(range(1, 51))

    import grpc
    from ray.core.generated import node_manager_pb2, node_manager_pb2_grpc
    token = Path(os.environ["RAY_AUTH_TOKEN_PATH"]).read_text().strip()
    channel = grpc.insecure_channel(node.grpc_address())
    stub = node_manager_pb2_grpc.NodeManagerServiceStub(channel)
    request = node_manager_pb2.GetSystemConfigRequest()
    for metadata in (None, (("authorization", "Bearer not-the-token"),), (("authorization", token),)):
        with pytest.raises(grpc.RpcError) as e:
            stub.GetSystemConfig(request, metadata=metadata, timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED, (metadata, e.value)
    stub.GetSystemConfig(request, metadata=(("authorization", "Bearer " + token),), timeout=10)
    # Health checks need no token, as in Ray.
    health = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda b: b,
                                 response_deserializer=lambda b: b)
    assert health(b"", timeout=10) == b"\x08\x01"  # SERVING
    assert "without the cluster's authentication token" in "".join(
        p.read_text(errors="replace") for p in Path(cluster.temp_dir).glob("session_*/logs/raylet.out"))


def test_token_mode_without_a_token_stops_craylet_with_the_reason(craylet, tmp_path):
    if craylet is None:
        pytest.skip("CRAYLET_BIN=stock: nothing of ours to check")
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(tmp_path / "missing"))
    env.pop("RAY_AUTH_TOKEN", None)
    argv = _direct_argv(craylet, tmp_path / "session")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "RAY_AUTH_MODE=token" in r.stderr and str(tmp_path / "missing") in r.stderr, r.stderr


def test_a_craylet_with_another_token_cannot_join_and_says_why(cluster, craylet, tmp_path):
    """A node whose token is not the cluster's is refused by GCS; craylet
    stops before registering and says which token to give it."""
    if craylet is None:
        pytest.skip("CRAYLET_BIN=stock: nothing of ours to check")
    if os.environ.get("RAY_AUTH_MODE") != "token":
        pytest.skip("the suite runs without token authentication (CRAYLET_TEST_AUTH=off)")
    node = head(cluster, craylet, num_cpus=1)
    cluster_id = next(a.split("=", 1)[1] for a in node.raylet_process().cmdline() if a.startswith("--cluster-id="))
    other = tmp_path / "other_token"
    other.write_text("0" * 64 + "\n")
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(other))
    env.pop("RAY_AUTH_TOKEN", None)
    argv = helpers.direct_raylet_argv(craylet, str(tmp_path), cluster.gcs_address, cluster_id=cluster_id)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=90, env=env)
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    assert "refused this node's authentication token" in r.stderr and "another token" in r.stderr, r.stderr
    assert [n["node_id"] for n in helpers.gcs_nodes(cluster.gcs_address)] == [node.node_id]


# ---- installed the way Ray users install things ----------------------------


def test_ray_start_with_the_bare_name_runs_the_environments_craylet(cluster, craylet):
    """`make setup` installs with `pip install .`, as a user would: the daemon
    lands in the environment's bin/, and `--raylet-path=craylet` finds it
    there even when that bin/ is not on $PATH."""
    installed = helpers.VENV / "bin" / "craylet"
    if craylet is None or not installed.exists():
        pytest.skip("no craylet installed in %s (make setup, or pip install .)" % helpers.VENV)
    import ray
    assert _built_for(str(installed)) == ray.__version__
    env = {"PATH": "/usr/bin:/bin"}  # the venv's bin/ is not on it
    node = cluster.start_head(raylet="craylet", runs=str(installed), env=env, include_dashboard=False)
    res = run_driver(cluster, """
        @ray.remote
        def f():
            return 42
        emit({"f": ray.get(f.remote())})
    """)
    assert res["f"] == 42
    assert os.path.realpath(node.raylet_process().cmdline()[0]) == os.path.realpath(installed)


def test_a_users_http_proxy_does_not_reroute_cluster_traffic(cluster, craylet):
    """gRPC honours http_proxy by default; Ray's own calls never go through
    one, and neither may craylet's (Ray's test_http_proxy)."""
    proxy = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
             "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    head(cluster, craylet, num_cpus=1, env=proxy)
    res = run_driver(cluster, """
        @ray.remote
        def f():
            return os.environ.get("http_proxy")
        emit({"seen": ray.get(f.remote(), timeout=60)})
    """, env=proxy)
    assert res["seen"] == "http://127.0.0.1:9"
