"""System-config keys that change how craylet starts workers, and the
debug_state.txt snapshot: what the stock raylet does with them, checked
through real workers."""

import json

from test_tasks_objects import head, run_driver


def test_fork_support_and_preloaded_modules(cluster, craylet):
    config = {"support_fork": True, "preload_python_modules": ["colorsys"]}
    head(cluster, craylet, num_cpus=2, extra_args=["--system-config=" + json.dumps(config)])
    res = run_driver(cluster, """
        @ray.remote
        def pool_sum():
            import math, multiprocessing
            with multiprocessing.get_context("fork").Pool(processes=2) as pool:
                return sum(pool.map(math.factorial, range(8)))

        @ray.remote
        def probe():
            import threading
            return {"threads": threading.active_count(),
                    "preloaded": "colorsys" in sys.modules,
                    "fork_env": os.environ.get("GRPC_ENABLE_FORK_SUPPORT"),
                    "poll": os.environ.get("GRPC_POLL_STRATEGY"),
                    "forked_sum": ray.get(pool_sum.remote())}
        emit(ray.get(probe.remote()))
    """)
    # One Python thread: forking a multi-threaded worker is what breaks.
    assert res["threads"] == 1, res
    assert res["preloaded"], res
    assert (res["fork_env"], res["poll"]) == ("True", "poll")
    assert res["forked_sum"] == 5914


def test_workers_without_fork_support_keep_their_defaults(cluster, craylet):
    head(cluster, craylet, num_cpus=1)
    res = run_driver(cluster, """
        @ray.remote
        def probe():
            return {"fork_env": os.environ.get("GRPC_ENABLE_FORK_SUPPORT"),
                    "preloaded": "colorsys" in sys.modules}
        emit(ray.get(probe.remote()))
    """)
    assert res == {"fork_env": None, "preloaded": False}


def test_debug_state_counts_workers_and_drivers(cluster, craylet):
    config = {"debug_dump_period_milliseconds": 100}
    head(cluster, craylet, num_cpus=2, extra_args=["--system-config=" + json.dumps(config)])
    res = run_driver(cluster, """
        import re
        session = ray._private.worker.global_worker.node.address_info["session_dir"]
        path = os.path.join(session, "logs", "debug_state.txt")

        def read():
            with open(path) as f:
                text = f.read()
            def num(label):
                m = re.search(r"^- num PYTHON %s: (\\d+)$" % label, text, re.M)
                return int(m.group(1)) if m else None
            cpu = re.search(r"^- CPU: ([0-9.]+) / ([0-9.]+)$", text, re.M)
            return num("workers"), num("drivers"), cpu.groups() if cpu else None

        @ray.remote
        def hold(s):
            time.sleep(s)
        refs = [hold.remote(30) for _ in range(2)]
        deadline = time.time() + 60
        seen = None
        while time.time() < deadline:
            seen = read()
            if seen[0] == 2 and seen[2] == ("0", "2"):
                break
            time.sleep(0.1)
        emit({"busy": seen})
        ray.cancel(refs[0], force=True)
        ray.cancel(refs[1], force=True)
    """)
    workers, drivers, cpu = res["busy"]
    assert workers == 2 and drivers == 1, res
    assert cpu == ["0", "2"], res


def test_first_driver_gets_prestarted_workers_that_its_tasks_use(cluster, craylet):
    head(cluster, craylet, num_cpus=2)
    res = run_driver(cluster, """
        from ray._private.state import state
        # No task yet: the workers come from the first driver connecting.
        deadline = time.time() + 60
        while time.time() < deadline and len(state.workers()) < 2:
            time.sleep(0.1)
        warm = sorted(state.workers())

        @ray.remote
        def whoami():
            time.sleep(1)
            return ray.get_runtime_context().get_worker_id()
        used = ray.get([whoami.remote(), whoami.remote()])
        emit({"warm": warm, "used": sorted(used)})
    """)
    assert len(res["warm"]) == 2, res
    # Job-less prestarted workers are handed to the job's first leases.
    assert res["used"] == res["warm"], res
