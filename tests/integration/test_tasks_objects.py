"""Issue 3: Ray programs run unchanged on craylet — tasks, objects, GPUs,
spillback, and hostile clients on both Unix sockets.

Each test starts its own cluster on craylet through the `ray` CLI, runs a
real driver against it and asserts on what the driver sees."""

import json
import os
import socket
import struct
import textwrap
import time

import pytest

import helpers

COOKIE = 0x5241590000000000
MB = 1024 * 1024


def run_driver(cluster, body, timeout=300, env=None):
    """Run driver code against the cluster; it calls emit(dict) for results."""
    code = textwrap.dedent("""
        import json, os, sys, time
        import ray
        def emit(d):
            sys.stdout.write("\\nRESULT " + json.dumps(d) + "\\n")
            sys.stdout.flush()
        ray.init(address=%r, logging_level="ERROR")
    """) % cluster.gcs_address + textwrap.dedent(body)
    r = cluster.python(code, timeout=timeout, env=env)
    # Ray prints errors pushed to the driver ("(raylet) A worker died ...")
    # on the same stdout from another thread: a result is written in one
    # call and starts a line of its own, and whatever another thread
    # appended to that line is not part of it.
    decoder = json.JSONDecoder()
    results = [decoder.raw_decode(line[7:])[0] for line in r.stdout.splitlines() if line.startswith("RESULT ")]
    assert r.returncode == 0 and results, r.output() + "\n" + cluster.log_tail()
    merged = {}
    for d in results:
        merged.update(d)
    return merged


def head(cluster, craylet, **kw):
    store = kw.pop("object_store_memory", None)
    extra = list(kw.pop("extra_args", []))
    if store:
        extra.append("--object-store-memory=%d" % store)
    return cluster.start_head(raylet=craylet, include_dashboard=False, extra_args=extra, **kw)


def test_tasks_nesting_wait_and_errors(cluster, craylet):
    node = head(cluster, craylet, num_cpus=2)
    res = run_driver(cluster, """
        @ray.remote
        def f(x):
            return x * 2
        out = ray.get([f.remote(i) for i in range(2000)])
        emit({"many_ok": out == [2 * i for i in range(2000)]})

        @ray.remote
        def slow(s):
            time.sleep(s)
            return s
        refs = [slow.remote(0), slow.remote(30)]
        ready, rest = ray.wait(refs, num_returns=2, timeout=2)
        emit({"wait_ready": len(ready), "wait_rest": len(rest)})
        # ray.cancel of a running task reaches its worker through this
        # node (CancelLocalTask): forced, the worker goes; an async actor's
        # call is cancelled in place and the actor lives on.  Either way the
        # owner sees it cancelled long before the 30 s sleep ends.
        def cancelled(ref, force):
            ray.cancel(ref, force=force)
            t0 = time.time()
            try:
                ray.get(ref, timeout=20)
                return "finished"
            except ray.exceptions.TaskCancelledError:
                return "cancelled" if time.time() - t0 < 15 else "cancelled late"
            except Exception as e:
                return type(e).__name__

        @ray.remote
        class Sleeper:
            async def sleep(self, s):
                import asyncio
                await asyncio.sleep(s)
            def pid(self):
                return os.getpid()
        sleeper = Sleeper.remote()
        pid = ray.get(sleeper.pid.remote())
        call = sleeper.sleep.remote(30)
        ray.wait([call], timeout=1)
        emit({"cancel": [cancelled(refs[1], True), cancelled(call, False)],
              "actor_lives": ray.get(sleeper.pid.remote(), timeout=10) == pid})

        # Objects in the shared store, all sealed: the raylet answers the
        # wait and must report no more than num_returns (the core worker
        # aborts the driver otherwise).
        import numpy as np
        big = [ray.put(np.zeros(200_000)) for _ in range(5)]
        ready, rest = ray.wait(big, num_returns=2, timeout=5)
        emit({"plasma_wait": [len(ready), len(rest), set(ready) | set(rest) == set(big)]})

        @ray.remote
        def boom():
            raise ValueError("raised inside a task")
        try:
            ray.get(boom.remote())
            emit({"raised": False})
        except ValueError as e:
            emit({"raised": "raised inside a task" in str(e)})
    """)
    assert res["many_ok"]
    assert (res["wait_ready"], res["wait_rest"]) == (1, 1)
    assert res["cancel"] == ["cancelled", "cancelled"] and res["actor_lives"], res
    # CancelLocalTask naming no worker, or one that is not here: refused as
    # invalid, or answered as done (nothing runs there to cancel).
    import grpc
    from ray.core.generated import node_manager_pb2 as nm, node_manager_pb2_grpc as nm_grpc
    with grpc.insecure_channel(node.grpc_address()) as ch:
        stub = nm_grpc.NodeManagerServiceStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            stub.CancelLocalTask(nm.CancelLocalTaskRequest(executor_worker_id=b"short"), timeout=10,
                                 metadata=helpers.auth_metadata())
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        reply = stub.CancelLocalTask(nm.CancelLocalTaskRequest(executor_worker_id=os.urandom(28), force_kill=True),
                                     timeout=10, metadata=helpers.auth_metadata())
        assert reply.attempt_succeeded and not reply.requested_task_running
        # ResizeLocalResourceInstances: totals change (a new resource too);
        # per-instance resources, NaN and negative totals are refused.
        reply = stub.ResizeLocalResourceInstances(
            nm.ResizeLocalResourceInstancesRequest(resources={"CPU": 3, "extra": 2}), timeout=10,
            metadata=helpers.auth_metadata())
        assert (reply.total_resources["CPU"], reply.total_resources["extra"]) == (3, 2), reply
        for bad in ({"GPU": 2}, {"CPU": float("nan")}, {"CPU": -1}, {"": 1}):
            with pytest.raises(grpc.RpcError) as e:
                stub.ResizeLocalResourceInstances(nm.ResizeLocalResourceInstancesRequest(resources=bad),
                                                  timeout=10, metadata=helpers.auth_metadata())
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
    # GCS hears of the new totals at once: `ray status` shows them.
    cluster.wait_status(lambda s: s.totals.get("CPU") == 3 and s.totals.get("extra") == 2,
                        what="ray status to show the resized totals")
    assert res["plasma_wait"] == [2, 3, True]
    assert res["raised"]


def test_nested_tasks_do_not_deadlock_on_one_cpu(cluster, craylet):
    head(cluster, craylet, num_cpus=1)
    res = run_driver(cluster, """
        @ray.remote
        def leaf(x):
            return x + 1
        @ray.remote
        def parent(n):
            return sum(ray.get([leaf.remote(i) for i in range(n)]))
        @ray.remote
        def grandparent():
            return ray.get(parent.remote(5))
        emit({"sum": ray.get(grandparent.remote(), timeout=120)})
    """)
    assert res["sum"] == sum(range(1, 6))


def test_sigkilled_worker_is_retried_and_cpu_returns(cluster, craylet, tmp_path):
    head(cluster, craylet, num_cpus=1)
    marker = str(tmp_path / "died-once")
    res = run_driver(cluster, """
        import signal
        @ray.remote(max_retries=2)
        def fragile(marker):
            if not os.path.exists(marker):
                open(marker, "w").close()
                os.kill(os.getpid(), signal.SIGKILL)
            return os.getpid()
        pid = ray.get(fragile.remote(%r))
        # The dead worker's CPU must come back to the pool.
        deadline = time.time() + 60
        while time.time() < deadline and ray.available_resources().get("CPU", 0) < 1:
            time.sleep(0.2)
        emit({"pid": pid, "cpu": ray.available_resources().get("CPU", 0)})
    """ % marker)
    assert os.path.exists(marker)
    assert res["pid"] > 0
    assert res["cpu"] == 1


def test_worker_that_dies_mid_task_is_reported_to_its_driver(cluster, craylet):
    head(cluster, craylet, num_cpus=1)
    res = run_driver(cluster, """
        from ray._private.test_utils import init_error_pubsub, get_error_message
        errors_sub = init_error_pubsub()

        @ray.remote(max_retries=0)
        def die():
            eval("exit()")
        try:
            ray.get(die.remote())
            crashed = False
        except ray.exceptions.WorkerCrashedError:
            crashed = True
        errors = get_error_message(errors_sub, 1, "worker_died", timeout=30)
        emit({"crashed": crashed, "errors": [e["error_message"] for e in errors]})
    """)
    assert res["crashed"]
    assert len(res["errors"]) == 1, res
    assert "died or was killed while executing" in res["errors"][0]


def test_put_get_sizes_and_zero_copy(cluster, craylet):
    head(cluster, craylet, num_cpus=1, object_store_memory=600 * MB)
    res = run_driver(cluster, """
        import numpy as np
        out = {}
        for name, n in (("1k", 1024), ("1m", 1024 * 1024), ("200m", 200 * 1024 * 1024)):
            a = np.arange(n, dtype=np.uint8)
            b = ray.get(ray.put(a))
            out[name] = bool((a == b).all())
        big = ray.get(ray.put(np.ones(200 * 1024 * 1024, dtype=np.uint8)))
        addr = big.__array_interface__["data"][0]
        backing = None
        with open("/proc/self/maps") as maps:
            for line in maps:
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                if lo <= addr < hi:
                    backing = line.split(None, 5)[5].strip() if len(line.split(None, 5)) > 5 else ""
        out["writeable"] = bool(big.flags.writeable)
        out["backing"] = backing
        emit(out)
    """)
    assert res["1k"] and res["1m"] and res["200m"]
    # Zero-copy: a read-only view straight into the store's shared region.
    assert res["writeable"] is False
    assert res["backing"] is not None and ("/dev/shm" in res["backing"] or "plasma" in res["backing"]), res


def test_more_puts_than_the_store_holds_stay_readable(cluster, craylet):
    head(cluster, craylet, num_cpus=1, object_store_memory=1024 * MB)
    res = run_driver(cluster, """
        import numpy as np
        refs = [ray.put(np.full(100 * 1024 * 1024, i, dtype=np.uint8)) for i in range(30)]
        ok = all(int(ray.get(r)[-1]) == i for i, r in enumerate(refs))
        emit({"readable": ok, "count": len(refs)})
    """, timeout=600)
    assert res["readable"] and res["count"] == 30


def test_gpu_tasks_get_distinct_ids_two_at_a_time(cluster, craylet):
    head(cluster, craylet, num_cpus=4, num_gpus=2)
    res = run_driver(cluster, """
        @ray.remote(num_gpus=1)
        def g():
            start = time.time()
            time.sleep(2)
            return ray.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES"), start, time.time()
        emit({"runs": ray.get([g.remote() for _ in range(4)])})
    """)
    runs = res["runs"]
    assert len(runs) == 4
    for ids, visible, _, _ in runs:
        assert len(ids) == 1 and ids[0] in (0, 1)
        assert visible == str(ids[0])
    # At most two at once, and overlapping runs hold different GPUs.
    for i, (ids_i, _, s_i, e_i) in enumerate(runs):
        overlapping = [r for r in runs if r[2] < e_i and s_i < r[3]]
        assert len(overlapping) <= 2, runs
        for ids_j, _, s_j, e_j in overlapping:
            if (s_j, e_j) != (s_i, e_i):
                assert ids_j != ids_i, runs
    assert max(sum(1 for r in runs if r[2] < e and s < r[3]) for _, _, s, e in runs) == 2


def test_task_spills_to_the_node_that_has_its_resource(cluster_factory, craylet):
    cluster = cluster_factory()
    head(cluster, craylet, num_cpus=1)
    other = cluster.start_worker(raylet=craylet, num_cpus=1, resources={"special": 1})
    res = run_driver(cluster, """
        @ray.remote(resources={"special": 1})
        def where():
            return ray.get_runtime_context().get_node_id()
        emit({"driver_node": ray.get_runtime_context().get_node_id(), "ran_on": ray.get(where.remote())})
    """)
    assert res["ran_on"] == other.node_id
    assert res["driver_node"] != other.node_id


def test_busy_node_is_never_reported_idle(cluster, craylet):
    """The autoscaler terminates nodes GCS sees as idle, so a node running a
    task, or holding a primary copy, must read as busy; and the view's
    object_store_memory must drop by what the store holds."""
    head(cluster, craylet, num_cpus=1, object_store_memory=300 * MB)
    res = run_driver(cluster, """
        import numpy as np
        from ray.autoscaler.v2.sdk import get_cluster_status
        addr = ray.get_runtime_context().gcs_address

        def idle():
            s = get_cluster_status(addr)
            assert len(s.active_nodes) + len(s.idle_nodes) == 1, s
            return len(s.idle_nodes) == 1

        def settle(want, timeout=15):
            end = time.time() + timeout
            while time.time() < end:
                if idle() == want:
                    return True
                time.sleep(0.2)
            return False

        def store_free():
            return ray.available_resources().get("object_store_memory", 0)

        out = {"idle_at_start": settle(True)}
        free_before = store_free()

        @ray.remote
        def busy(s):
            time.sleep(s)
            return 1
        ref = busy.remote(6)
        out["busy_during_task"] = settle(False)
        # Stays busy for as long as the task runs, not only once.
        samples = []
        for _ in range(10):
            samples.append(idle())
            time.sleep(0.2)
        out["still_busy"] = not any(samples)
        ray.get(ref)
        out["idle_after_task"] = settle(True)

        big = ray.put(np.ones(80 * 1024 * 1024, dtype=np.uint8))
        out["busy_holding_object"] = settle(False)
        end = time.time() + 10
        while time.time() < end and free_before - store_free() < 80e6:
            time.sleep(0.2)
        out["store_drop"] = free_before - store_free()
        del big
        out["idle_after_free"] = settle(True)
        emit(out)
    """)
    assert res["idle_at_start"], res
    assert res["busy_during_task"] and res["still_busy"], res
    assert res["idle_after_task"], res
    assert res["busy_holding_object"], res
    assert res["store_drop"] >= 80e6, res
    assert res["idle_after_free"], res


def test_pending_demand_shows_in_ray_status(cluster, craylet):
    head(cluster, craylet, num_cpus=1)
    code = textwrap.dedent("""
        import ray, time
        ray.init(address=%r, logging_level="ERROR")
        @ray.remote(num_cpus=64)
        def too_big():
            return 1
        ref = too_big.remote()
        time.sleep(60)
    """) % cluster.gcs_address
    import subprocess
    driver = subprocess.Popen([str(helpers.PYTHON), "-c", code], env=cluster.env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    cluster.session_ids.append(driver.pid)
    try:
        st = cluster.wait_status(lambda s: "'CPU': 64.0" in s.text, timeout=60, what="demand in ray status")
        demands = st.text.split("Pending Demands:")[1]
        assert "'CPU': 64.0" in demands and "pending" in demands
    finally:
        driver.kill()
        driver.wait()


# ---- hostile clients ----------------------------------------------------------------


def frame(mtype, payload, cookie=COOKIE):
    return struct.pack("<qqq", cookie, mtype, len(payload)) + payload


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s


def closed_by_peer(s, timeout=10):
    s.settimeout(timeout)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def empty_table():
    import flatbuffers
    b = flatbuffers.Builder(16)
    b.StartObject(0)
    b.Finish(b.EndObject())
    return bytes(b.Output())


def plasma_create_request(object_id, size):
    import flatbuffers
    b = flatbuffers.Builder(256)
    oid = b.CreateString(object_id)
    b.StartObject(11)
    b.PrependUOffsetTRelativeSlot(0, oid, 0)
    b.PrependUint64Slot(6, size, 0)
    b.PrependBoolSlot(10, True, False)  # try_immediately
    b.Finish(b.EndObject())
    return bytes(b.Output())


def test_hostile_clients_on_both_sockets(cluster, craylet):
    node = head(cluster, craylet, num_cpus=1, object_store_memory=200 * MB)
    info = node.info()
    raylet_sock = info["raylet_socket_name"]
    plasma_sock = info["object_store_socket_name"]
    import flatbuffers

    cases = {
        "wrong cookie": frame(1, b"\0" * 16, cookie=0x1234),
        "unknown type": frame(99, b"\0" * 16),
        "lying length": struct.pack("<qqq", COOKIE, 1, 1 << 40),
        "negative length": struct.pack("<qqq", COOKIE, 1, -5),
        "offsets outside": frame(1, struct.pack("<I", 0xFFFFFF00) + b"\0" * 12),
        "unregistered request": frame(11, b"\x0c\0\0\0" + b"\0" * 12),
    }
    for name, data in cases.items():
        for path in (raylet_sock, plasma_sock):
            s = connect(path)
            s.sendall(data)
            assert closed_by_peer(s), "%s on %s left the connection open" % (name, path)
            s.close()

    # A truncated frame followed by a hang-up.
    s = connect(raylet_sock)
    s.sendall(frame(1, b"\0" * 64)[:30])
    s.close()

    # A plasma client that dies in the middle of a create: its 150 MB must be
    # accounted back, or the next 150 MB create cannot fit in a 200 MB store.
    for attempt in range(3):
        s = connect(plasma_sock)
        s.sendall(frame(16, empty_table()))  # connect
        oid = os.urandom(28)
        s.sendall(frame(1, plasma_create_request(oid, 150 * MB)))
        time.sleep(0.2)
        s.close()
    # A get for an unknown id with a timeout is answered, not hung.
    s = connect(plasma_sock)
    b = flatbuffers.Builder(128)
    sid = b.CreateString(os.urandom(28))
    b.StartVector(4, 1, 4)
    b.PrependUOffsetTRelative(sid)
    vec = b.EndVector()
    b.StartObject(2)
    b.PrependUOffsetTRelativeSlot(0, vec, 0)
    b.PrependInt64Slot(1, 100, 0)
    b.Finish(b.EndObject())
    s.sendall(frame(16, empty_table()))
    s.sendall(frame(8, bytes(b.Output())))
    s.settimeout(10)
    got = b""
    types = []
    deadline = time.time() + 10
    while time.time() < deadline and 9 not in types:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
        types, off = [], 0
        while off + 24 <= len(got):
            cookie, mtype, length = struct.unpack_from("<qqq", got, off)
            assert cookie == COOKIE
            if off + 24 + length > len(got):
                break
            types.append(mtype)
            off += 24 + length
    s.close()
    assert 17 in types and 9 in types, types  # ConnectReply, GetReply

    # Everyone else is still served, with the memory back.
    res = run_driver(cluster, """
        import numpy as np
        a = ray.get(ray.put(np.ones(150 * 1024 * 1024, dtype=np.uint8)))
        @ray.remote
        def f():
            return 7
        emit({"sum": int(a[:10].sum()), "task": ray.get(f.remote())})
    """)
    assert res == {"sum": 10, "task": 7}
    log = cluster.log_tail("raylet.out", lines=400)
    assert "closing raylet socket connection" in log
    assert node.raylet_process() is not None


@pytest.mark.serial
def test_no_leaks_after_stop(cluster, craylet):
    head(cluster, craylet, num_cpus=2)
    run_driver(cluster, """
        import numpy as np
        refs = [ray.put(np.ones(8 * 1024 * 1024, dtype=np.uint8)) for _ in range(4)]
        @ray.remote
        def f(x):
            return x
        ray.get([f.remote(i) for i in range(50)])
        emit({"ok": True})
    """)
    raylet = cluster.head.raylet_process()
    pid = raylet.pid
    shm_before = {e for e in os.listdir("/dev/shm")}
    problems = cluster.teardown()
    assert not problems, problems
    # Exited: gone, or a zombie nobody of ours is left to reap (its parent,
    # `ray start`, exited long ago).
    assert not os.path.exists("/proc/%d" % pid) or helpers.psutil.Process(pid).status() == "zombie"
    leftover = [p for p in cluster.processes()]
    assert not leftover, [helpers.describe(p) for p in leftover]
    # The store's region is unlinked at creation; nothing of ours may remain.
    assert {e for e in os.listdir("/dev/shm")} <= shm_before


def test_ray_memory_reports_objects_and_workers(cluster, craylet):
    """`ray memory` goes through FormatGlobalMemoryInfo and GetNodeStats,
    which fans out to every worker's CoreWorkerStats."""
    head(cluster, craylet, num_cpus=1)
    res = run_driver(cluster, """
        import subprocess
        import numpy as np
        ref = ray.put(np.ones(2 * 1024 * 1024, dtype=np.uint8))
        @ray.remote
        def f():
            return 1
        ray.get(f.remote())
        out = subprocess.run([sys.executable, "-m", "ray.scripts.scripts", "memory",
                              "--address=%s" % ray.get_runtime_context().gcs_address],
                             capture_output=True, text=True, timeout=120)
        emit({"rc": out.returncode, "out": out.stdout, "ref": ref.hex()})

        # `ray list objects` (the state API) asks each node GetObjectsInfo.
        import grpc
        from ray.core.generated import node_manager_pb2 as nm, node_manager_pb2_grpc as nm_grpc
        md = None
        if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
            token = os.environ.get("RAY_AUTH_TOKEN") or open(os.environ["RAY_AUTH_TOKEN_PATH"]).read().strip()
            md = (("authorization", "Bearer " + token),)
        me = [n for n in ray.nodes() if n["Alive"]][0]
        with grpc.insecure_channel("%s:%d" % (me["NodeManagerAddress"], me["NodeManagerPort"])) as ch:
            stub = nm_grpc.NodeManagerServiceStub(ch)
            full = stub.GetObjectsInfo(nm.GetObjectsInfoRequest(), metadata=md, timeout=30)
            none = stub.GetObjectsInfo(nm.GetObjectsInfoRequest(limit=0), metadata=md, timeout=30)
        listed = [(r.object_id.hex(), r.local_ref_count, r.object_size)
                  for w in full.core_workers_stats for r in w.object_refs]
        emit({"listed": listed, "total": full.total, "workers": len(full.core_workers_stats),
              "limit0": [len(none.core_workers_stats), none.total]})
    """)
    assert res["rc"] == 0, res
    assert res["ref"] in res["out"], res["out"]
    assert "Plasma memory usage 2 MiB, 1 objects" in res["out"], res["out"]
    # The driver's reference, with its size, from the driver's own stats;
    # a limit of 0 keeps no worker's list but still counts every object.
    mine = [r for r in res["listed"] if r[0] == res["ref"]]
    assert len(mine) == 1 and mine[0][1] == 1 and 2 * MB <= mine[0][2] < 2 * MB + 4096, res
    assert res["total"] >= 1 and res["workers"] >= 1, res
    assert res["limit0"] == [0, res["total"]], res


def test_runtime_env_vars_and_setup_failure(cluster, craylet):
    """Runtime envs go through the runtime-env agent craylet started; a
    worker runs inside the env it built, and a failed setup reaches the
    driver as RuntimeEnvSetupError instead of hanging.  The agent tries a
    failing setup once here instead of three times (a virtualenv each)."""
    head(cluster, craylet, num_cpus=2, env={"RUNTIME_ENV_RETRY_TIMES": "1"})
    code = textwrap.dedent("""
        import json, os, ray
        ray.init(address=%r, logging_level="ERROR", runtime_env={"env_vars": {"CRAYLET_MARK": "job"}})
        @ray.remote
        def f():
            return os.environ.get("CRAYLET_MARK")
        @ray.remote(runtime_env={"env_vars": {"CRAYLET_MARK": "task"}})
        def g():
            return os.environ.get("CRAYLET_MARK")
        @ray.remote(runtime_env={"pip": ["craylet-no-such-package-zzz==0.0.1"]})
        def h():
            return 1
        out = {"job": ray.get(f.remote(), timeout=120), "task": ray.get(g.remote(), timeout=120)}
        try:
            ray.get(h.remote(), timeout=300)
            out["failed"] = None
        except Exception as e:
            out["failed"] = type(e).__name__
        import sys
        sys.stdout.write("\\nRESULT " + json.dumps(out) + "\\n")
        sys.stdout.flush()
    """) % cluster.gcs_address
    r = cluster.python(code, timeout=420)
    lines = [l for l in r.stdout.splitlines() if l.startswith("RESULT ")]
    assert r.returncode == 0 and lines, r.output()
    res = json.JSONDecoder().raw_decode(lines[0][7:])[0]
    assert res["job"] == "job" and res["task"] == "task", res
    assert res["failed"] == "RuntimeEnvSetupError", res


def test_cpu_and_gpu_work_never_share_a_worker(cluster, craylet):
    """Like the stock pool: a worker that ran CPU-only work is not reused
    for GPU work (CUDA state sticks to a process)."""
    head(cluster, craylet, num_cpus=1, num_gpus=1)
    res = run_driver(cluster, """
        @ray.remote(num_gpus=0)
        def cpu_task():
            return os.getpid()
        @ray.remote(num_gpus=1)
        def gpu_task():
            return os.getpid()
        cpu_pids = {ray.get(cpu_task.remote()) for _ in range(3)}
        gpu_pids = {ray.get(gpu_task.remote()) for _ in range(3)}
        emit({"cpu": sorted(cpu_pids), "gpu": sorted(gpu_pids)})
    """)
    assert not set(res["cpu"]) & set(res["gpu"]), res


def test_worker_cap_holds_back_a_flood_of_blocking_tasks(cluster, craylet):
    """Each task blocks on a nested one.  Blocked tasks lend their CPU, but
    the tasks' own class is capped (back-off before each extra lease), so the
    CPU goes to the nested tasks instead of a new worker per queued task."""
    head(cluster, craylet, num_cpus=1)
    res = run_driver(cluster, """
        @ray.remote(num_cpus=0)
        class Counter:
            def __init__(self):
                self.now = 0
                self.most = 0
            def inc(self):
                self.now += 1
                self.most = max(self.most, self.now)
            def dec(self):
                self.now -= 1
            def peak(self):
                return self.most

        counter = Counter.remote()

        @ray.remote(num_cpus=1)
        def inner():
            return 1

        @ray.remote(num_cpus=1)
        def outer():
            ray.get(counter.inc.remote())
            out = ray.get(inner.remote())
            ray.get(counter.dec.remote())
            return out

        ready, _ = ray.wait([outer.remote() for _ in range(200)], num_returns=200, timeout=120)
        emit({"done": len(ready), "sum": sum(ray.get(ready)), "peak": ray.get(counter.peak.remote())})
    """)
    assert res["done"] == 200 and res["sum"] == 200, res
    # With the cap the one CPU alternates between outer and inner tasks
    # (a back-off of 1 s, then 2 s, ... lets a few more in: 1 when measured);
    # without it, about every queued task got a worker of its own (24).
    assert res["peak"] <= 12, res
