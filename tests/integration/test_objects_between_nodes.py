"""Issue 9: objects move between nodes, craylet and stock alike, on separate
network hosts (namespaces made by the test: netns.py).

Host 0 runs GCS and the head node; hosts 1 and 2 run one node each, with
a custom resource naming the host so tasks and actors land where a test
wants them.  Every node's raylet is checked to be the binary asked for."""

import hashlib
import json
import os
import re
import textwrap

import pytest

import helpers
import netns
import protowire

MB = 1024 * 1024


@pytest.fixture
def hosts():
    why = netns.namespaces_available()
    if why:
        pytest.skip(why)
    h = netns.Hosts(3)
    try:
        yield h
    finally:
        h.close()


@pytest.fixture
def host_cluster(request, shim_installed, hosts):
    made = []

    def make(env=None):
        c = netns.HostCluster(hosts, env=env)
        made.append(c)
        return c

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    problems = []
    for c in made:
        if failed:
            print("---- logs of cluster %s ----\n%s" % (c.temp_dir, c.log_tail(lines=80)))
        problems += c.teardown()
    assert not problems, "cluster teardown found leftovers:\n" + "\n".join(problems)


@pytest.fixture(scope="class")
def shared_three(shim_installed, craylet):
    """Three craylet hosts shared by the tests that only read and write
    objects (each test's driver ends before the next starts, and its objects
    go with it): one cluster start instead of one per test keeps CI short."""
    why = netns.namespaces_available()
    if why:
        pytest.skip(why)
    hosts = netns.Hosts(3)
    try:
        c = netns.HostCluster(hosts)
        try:
            for i in range(3):
                c.start_host(i, craylet, resources={"host%d" % i: 10}, num_cpus=2,
                             object_store_memory=512 * MB, env=FREQUENT_DUMPS if i == 2 else None)
            yield c
        finally:
            problems = c.teardown()
        assert not problems, "cluster teardown found leftovers:\n" + "\n".join(problems)
    finally:
        hosts.close()


# Every node of a cluster here writes the same debug_state.txt: the one a
# test reads (host 2) rewrites it often, the others every 10 s.
FREQUENT_DUMPS = {"RAY_debug_dump_period_milliseconds": "200"}


def start_three(make, raylets, store=512 * MB, env=None, host_env=None):
    """Hosts 0..2 with the given raylet binaries (None: stock); `host_env`
    maps a host to variables for its node only."""
    c = make(env)
    for i, raylet in enumerate(raylets):
        c.start_host(i, raylet, resources={"host%d" % i: 10}, num_cpus=2, object_store_memory=store,
                     env=(host_env or {}).get(i))
    return c


def run_on(cluster, host, body, timeout=300, env_extra=None, on_line=None):
    """Run a driver on `host` (None: where the cluster runs its commands,
    for a cluster on one host); `on_line` sees each stdout line as it comes
    (a test acts on the cluster mid-program: kills a node)."""
    import subprocess
    import threading
    code = textwrap.dedent("""
        import hashlib, json, os, sys, time
        import numpy as np
        import ray
        def emit(d):
            sys.stdout.write("\\nRESULT " + json.dumps(d) + "\\n")
            sys.stdout.flush()
        ray.init(address=%r, logging_level="ERROR")
    """) % cluster.gcs_address + textwrap.dedent(body)
    env = dict(cluster.env)
    env.update(env_extra or {})
    prefix = cluster.exec_prefix if host is None else cluster.hosts.prefix(host)
    argv = list(prefix) + [str(helpers.PYTHON), "-c", code]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env=env, cwd=str(helpers.REPO), start_new_session=True, text=True)
    cluster.session_ids.append(proc.pid)
    err = []
    t = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
    t.start()
    lines = []
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if on_line:
                on_line(lines[-1])
        proc.wait()
    finally:
        timer.cancel()
    t.join(5)
    out = "\n".join(lines)
    results = [json.loads(line[7:]) for line in lines if line.startswith("RESULT ")]
    assert proc.returncode == 0 and results, "rc=%s\n--- stdout\n%s\n--- stderr\n%s\n%s" % (
        proc.returncode, out[-4000:], "".join(err)[-4000:], cluster.log_tail(lines=60))
    merged = {}
    for d in results:
        merged.update(d)
    return merged


def make_three_with(make, raylet, extra):
    c = make(None)
    for i in range(3):
        res = {"host%d" % i: 10}
        res.update(extra.get(i, {}))
        c.start_host(i, raylet, resources=res, num_cpus=2, object_store_memory=512 * MB)
    return c


PUT_ON_B_GET_ON_C = """
@ray.remote(resources={"host1": 1})
class Maker:
    def make(self, mb, seed):
        arr = np.random.default_rng(seed).integers(0, 255, size=mb * 1024 * 1024, dtype=np.uint8)
        return [ray.put(arr)], hashlib.sha256(arr.tobytes()).hexdigest()

@ray.remote(resources={"host2": 1})
def digest(refs):
    arr = ray.get(refs[0], timeout=120)
    return hashlib.sha256(arr.tobytes()).hexdigest(), ray.get_runtime_context().get_node_id()

m = Maker.remote()
refs, want = ray.get(m.make.remote(MB_SIZE, 7), timeout=120)
got, node = ray.get(digest.remote(refs), timeout=180)
emit({"want": want, "got": got, "reader_node": node})
"""


def node_debug_state(cluster, node_id, predicate, timeout=30):
    """The newest debug_state.txt written by `node_id` that satisfies
    `predicate`: every node of the cluster writes the same file in turn."""
    path = os.path.join(cluster.temp_dir, "session_latest", "logs", "debug_state.txt")
    seen = []

    def read():
        try:
            text = open(path).read()
        except OSError:
            return None
        if "Node ID: %s" % node_id not in text:
            return None
        seen[:] = [text]
        return text if predicate(text) else None

    try:
        return helpers.wait_for(read, timeout, interval=0.1, what="debug_state.txt of node %s" % node_id)
    except helpers.WaitTimeout:
        raise AssertionError("last debug_state.txt of node %s:\n%s" % (node_id, seen[0] if seen else "(none)"))


LOCATIONS = re.compile(r"- location subscriptions: (\d+) open, (\d+) opened; updates published: (\d+), lookups: (\d+)")


class TestOnSharedHosts:
    """Tests that only move objects share one three-host craylet cluster
    (made once for the class, gone before the tests that make their own)."""

    def test_locations_are_followed_not_polled(self, shared_three):
        """First in the class, so host 2 has pulled nothing before.  Host 2
        wants an object host 1 is still making: as the stock raylet, it
        subscribes to the owner's location channel and is told when the copy
        exists, instead of asking the owner over and over; once the copy is
        here it unsubscribes."""
        c = shared_three
        res = run_on(c, 0, """
            @ray.remote(resources={"host1": 1})
            def slow_make():
                time.sleep(4)
                return np.arange(4 * 1024 * 1024, dtype=np.int64)

            @ray.remote(resources={"host2": 1})
            class Reader:
                def read(self, refs):
                    t = time.time()
                    last = int(ray.get(refs[0], timeout=120)[-1])
                    return last, time.time() - t

            r = Reader.remote()
            ray.get(r.__ray_ready__.remote())
            last, waited = ray.get(r.read.remote([slow_make.remote()]), timeout=180)
            emit({"last": last, "waited": waited})
        """)
        assert res["last"] == 4 * 1024 * 1024 - 1
        node = c.nodes[2].node_id
        text = node_debug_state(c, node, lambda t: (lambda m: m and m.group(1) == "0")(LOCATIONS.search(t)))
        open_now, opened, published, lookups = (int(g) for g in LOCATIONS.search(text).groups())
        assert opened >= 1, text
        assert published >= 1, "the owner told host 2 where the copy was"
        # Asked directly only as the safety net, once per
        # object_manager_pull_timeout_ms (10 s); polling would have asked
        # every 100 ms to 1 s.
        assert lookups <= 1 + int(res["waited"] // 10), \
            "host 2 asked the owner directly %d times in %.1f s" % (lookups, res["waited"])

    def test_get_on_one_host_of_an_object_put_on_another(self, shared_three):
        c = shared_three
        res = run_on(c, 0, "MB_SIZE = 200\n" + PUT_ON_B_GET_ON_C)
        assert res["got"] == res["want"], "200 MB array read on host 2 differs from the one put on host 1"
        assert res["reader_node"] == c.nodes[2].node_id

    def test_task_argument_produced_on_another_host(self, shared_three):
        c = shared_three
        res = run_on(c, 0, """
            @ray.remote(resources={"host1": 1})
            def produce():
                return np.arange(3 * 1024 * 1024, dtype=np.int64)  # 24 MB: in the store

            @ray.remote(resources={"host2": 1})
            def consume(arr):
                return int(arr.sum()), int(arr[-1])

            emit({"sum_last": ray.get(consume.remote(produce.remote()), timeout=180)})
        """)
        n = 3 * 1024 * 1024
        assert res["sum_last"] == [n * (n - 1) // 2, n - 1]

    def test_wait_fetch_local_returns_once_the_copy_is_here(self, shared_three):
        c = shared_three
        res = run_on(c, 0, """
            @ray.remote(resources={"host1": 1})
            class Maker:
                def make(self):
                    return [ray.put(np.ones(50 * 1024 * 1024, dtype=np.uint8))]

            @ray.remote(resources={"host2": 1})
            def waiter(refs):
                ready, _ = ray.wait(refs, num_returns=1, timeout=120, fetch_local=True)
                # Local now: a get that may not wait at all must succeed.
                try:
                    ray.get(refs[0], timeout=0)
                    local = True
                except ray.exceptions.GetTimeoutError:
                    local = False
                return len(ready), local

            m = Maker.remote()
            refs = ray.get(m.make.remote(), timeout=60)
            n, local = ray.get(waiter.remote(refs), timeout=180)
            emit({"ready": n, "local": local})
        """)
        assert res == {"ready": 1, "local": True}

    def test_one_object_read_on_every_host(self, shared_three):
        c = shared_three
        res = run_on(c, 0, """
            @ray.remote(resources={"host1": 1})
            class Maker:
                def make(self):
                    arr = np.random.default_rng(3).integers(0, 255, size=500 * 1024 * 1024, dtype=np.uint8)
                    return [ray.put(arr)], hashlib.sha256(arr.tobytes()).hexdigest()

            @ray.remote(num_cpus=0)
            def digest(refs):
                return hashlib.sha256(ray.get(refs[0], timeout=300).tobytes()).hexdigest()

            m = Maker.remote()
            refs, want = ray.get(m.make.remote(), timeout=120)
            got = ray.get([digest.options(resources={"host%d" % h: 1}).remote(refs) for h in range(3)], timeout=600)
            emit({"want": want, "got": got})
        """)
        assert res["got"] == [res["want"]] * 3

    def test_two_gb_object_through_half_gb_stores(self, shared_three):
        c = shared_three
        res = run_on(c, 0, "MB_SIZE = 2048\n" + PUT_ON_B_GET_ON_C, timeout=900)
        assert res["got"] == res["want"]


@pytest.mark.parametrize("maker,reader", [("stock", "craylet"), ("craylet", "stock")])
def test_objects_cross_between_stock_and_craylet(host_cluster, craylet, maker, reader):
    pick = {"stock": None, "craylet": craylet}
    c = start_three(host_cluster, [craylet, pick[maker], pick[reader]], host_env={2: FREQUENT_DUMPS})
    res = run_on(c, 0, "MB_SIZE = 100\n" + PUT_ON_B_GET_ON_C)
    assert res["got"] == res["want"], "%s -> %s" % (maker, reader)
    if reader == "craylet":
        # It learnt where the copy was from the owner's location channel
        # (the owner a worker of a stock node, on either release's pubsub).
        def told(text):
            m = LOCATIONS.search(text)
            return m and int(m.group(2)) >= 1 and int(m.group(3)) >= 1
        text = node_debug_state(c, c.nodes[2].node_id, told)
        # At most the safety net's one direct ask (after 10 s without the copy).
        assert int(LOCATIONS.search(text).group(4)) <= 1, text


# ---- faults --------------------------------------------------------------------


def kill_node(cluster, index):
    import signal
    cluster.nodes[index].raylet_process().send_signal(signal.SIGKILL)


def test_holder_killed_mid_transfer_another_copy_serves(host_cluster, craylet):
    c = start_three(host_cluster, [craylet, craylet, craylet])
    res = run_on(c, 0, """
        import subprocess
        arr = np.random.default_rng(5).integers(0, 255, size=300 * 1024 * 1024, dtype=np.uint8)
        want = hashlib.sha256(arr.tobytes()).hexdigest()
        ref = ray.put(arr)          # primary copy on host 0
        del arr

        @ray.remote(num_cpus=0)
        def digest(refs):
            return hashlib.sha256(ray.get(refs[0], timeout=300).tobytes()).hexdigest()

        # A second copy on host 1, then a reader on host 2 while host 1 dies.
        assert ray.get(digest.options(resources={"host1": 1}).remote([ref]), timeout=300) == want
        reader = digest.options(resources={"host2": 1}).remote([ref])
        time.sleep(0.3)
        emit({"kill": True})
        sys.stdout.flush()
        while not os.path.exists(os.environ["KILLED_FLAG"]):
            time.sleep(0.05)
        emit({"want": want, "got": ray.get(reader, timeout=300)})
    """, env_extra={"KILLED_FLAG": c.temp_dir + "/killed"}, on_line=lambda line: (
        line.startswith("RESULT ") and '"kill"' in line and (kill_node(c, 1), open(c.temp_dir + "/killed", "w"))))
    assert res["got"] == res["want"]


def test_lost_task_output_is_rebuilt_by_its_owner(host_cluster, craylet):
    c = make_three_with(host_cluster, craylet, extra={1: {"maker": 1}, 2: {"maker": 1}})
    res = run_on(c, 0, """
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        nodes = {n["Resources"].get("host1") and "h1" or n["Resources"].get("host2") and "h2" or "h0": n["NodeID"]
                 for n in ray.nodes() if n["Alive"]}

        @ray.remote(resources={"maker": 1}, max_retries=3)
        def produce():
            return np.full(64 * 1024 * 1024, 7, dtype=np.uint8)

        @ray.remote(num_cpus=0, resources={"host2": 1})
        def total(refs):
            return int(ray.get(refs[0], timeout=300).sum())

        ref = produce.options(scheduling_strategy=NodeAffinitySchedulingStrategy(nodes["h1"], soft=True)).remote()
        ray.wait([ref], fetch_local=False, timeout=120)
        emit({"kill": True})
        while not os.path.exists(os.environ["KILLED_FLAG"]):
            time.sleep(0.05)
        time.sleep(1)
        emit({"total": ray.get(total.remote([ref]), timeout=300)})
    """, env_extra={"KILLED_FLAG": c.temp_dir + "/killed"}, on_line=lambda line: (
        line.startswith("RESULT ") and '"kill"' in line and (kill_node(c, 1), open(c.temp_dir + "/killed", "w"))))
    assert res["total"] == 7 * 64 * 1024 * 1024


def test_object_with_no_copy_left_raises_promptly(host_cluster, craylet):
    """The only copy goes with its node and nothing can make it again (no
    retries): a reader elsewhere gets an ObjectLostError, promptly, not a
    hang."""
    c = start_three(host_cluster, [craylet, craylet, craylet])
    res = run_on(c, 0, """
        @ray.remote(resources={"host1": 1}, max_retries=0)
        def produce():
            return np.ones(8 * 1024 * 1024, dtype=np.uint8)

        @ray.remote(num_cpus=0, resources={"host2": 1})
        def read(refs):
            t = time.time()
            try:
                ray.get(refs[0], timeout=120)
                return "value", time.time() - t
            except ray.exceptions.ObjectLostError as e:
                return type(e).__name__, time.time() - t
            except ray.exceptions.GetTimeoutError:
                return "hang", time.time() - t

        ref = produce.remote()
        ray.wait([ref], fetch_local=False, timeout=120)
        emit({"kill": True})
        while not os.path.exists(os.environ["KILLED_FLAG"]):
            time.sleep(0.05)
        outcome, seconds = ray.get(read.remote([ref]), timeout=300)
        emit({"outcome": outcome, "seconds": seconds})
    """, env_extra={"KILLED_FLAG": c.temp_dir + "/killed"}, on_line=lambda line: (
        line.startswith("RESULT ") and '"kill"' in line and (kill_node(c, 1), open(c.temp_dir + "/killed", "w"))))
    assert res["outcome"] not in ("value", "hang"), res
    assert res["seconds"] < 60, res


def test_stalled_sender_times_out_and_another_copy_serves(host_cluster, craylet):
    """A holder that stops answering (SIGSTOP) holds nothing up for longer
    than object_manager_pull_timeout_ms: the puller asks again, a copy at
    random, until one sends."""
    import signal
    c = start_three(host_cluster, [craylet, craylet, craylet],
                    env={"RAY_object_manager_pull_timeout_ms": "1000"})
    stopped = []

    def on_line(line):
        if line.startswith("RESULT ") and '"stop"' in line:
            proc = c.nodes[1].raylet_process()
            proc.send_signal(signal.SIGSTOP)
            stopped.append(proc)
            open(c.temp_dir + "/stopped", "w").close()

    try:
        res = run_on(c, 0, """
            arr = np.random.default_rng(9).integers(0, 255, size=64 * 1024 * 1024, dtype=np.uint8)
            want = hashlib.sha256(arr.tobytes()).hexdigest()
            ref = ray.put(arr)
            del arr

            @ray.remote(num_cpus=0)
            def digest(refs):
                return hashlib.sha256(ray.get(refs[0], timeout=300).tobytes()).hexdigest()

            assert ray.get(digest.options(resources={"host1": 1}).remote([ref]), timeout=300) == want
            emit({"stop": True})
            while not os.path.exists(os.environ["STOPPED_FLAG"]):
                time.sleep(0.05)
            t = time.time()
            got = ray.get(digest.options(resources={"host2": 1}).remote([ref]), timeout=300)
            emit({"want": want, "got": got, "seconds": time.time() - t})
        """, env_extra={"STOPPED_FLAG": c.temp_dir + "/stopped"}, on_line=on_line)
    finally:
        for proc in stopped:
            proc.send_signal(signal.SIGCONT)
    assert res["got"] == res["want"]
    # A stalled pull is asked again after 1 s, 2 s, 4 s...: not after minutes.
    assert res["seconds"] < 60, res

# ---- bad input on the object manager port ------------------------------------

def test_object_manager_port_refuses_bad_input_and_keeps_serving(cluster_factory, craylet):
    import grpc
    import os
    # Parked Pulls and debug_state.txt on short clocks, so the test need not wait.
    cluster = cluster_factory({"RAY_object_manager_push_timeout_ms": "2000",
                               "RAY_debug_dump_period_milliseconds": "1000"})
    node = cluster.start_head(raylet=craylet, include_dashboard=False)
    info = node.info()
    target = "%s:%d" % (info["node_manager_address"], info["object_manager_port"])
    assert info["object_manager_port"] > 0
    md = helpers.auth_metadata()
    ident = lambda b: b
    with grpc.insecure_channel(target) as ch:
        push = ch.unary_unary("/ray.rpc.ObjectManagerService/Push", request_serializer=ident,
                              response_deserializer=ident)
        pull = ch.unary_unary("/ray.rpc.ObjectManagerService/Pull", request_serializer=ident,
                              response_deserializer=ident)
        peer = os.urandom(28)
        # Chunks nobody asked for: each answered (as stock does), none kept.
        for oid, idx, total, meta, data in [
                (os.urandom(28), 0, 10, 0, b"x" * 10),          # unsolicited
                (os.urandom(28), 5, 10, 0, b"x" * 10),          # past the end
                (os.urandom(28), 0, 10, 20, b"x" * 10),         # metadata > size
                (os.urandom(28), 0, 2 ** 63, 0, b"x")]:         # lying size
            assert push(protowire.push_request(oid, peer, idx, total, meta, data), metadata=md, timeout=10) == b""
        # Requests that do not decode as a Push: refused as invalid.
        for bad in [protowire.push_request(b"short", peer, 0, 10, 0, b"x" * 10),          # bad id
                    protowire.push_request(os.urandom(28), peer, 0, 10, 0, b"x" * 10)[:-3],  # data cut short
                    protowire.field(2, os.urandom(28)) + protowire.field(3, peer) + protowire.varint(8 << 3) + b"\x01",  # wrong wire type
                    protowire.field(2, os.urandom(28)) + protowire.field(3, peer) + protowire.field(5, 2 ** 40)]:    # index past 32 bits
            with pytest.raises(grpc.RpcError) as e:
                push(bad, metadata=md, timeout=10)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # A Pull from a node not in the cluster: answered, nothing parked.
        assert pull(protowire.field(1, peer) + protowire.field(2, os.urandom(28)), metadata=md, timeout=10) == b""
        with pytest.raises(grpc.RpcError) as e:
            pull(protowire.field(1, b"abc") + protowire.field(2, os.urandom(28)), metadata=md, timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as e:
            push(b"\xff\xff\xff", metadata=md, timeout=10)
        assert e.value.code() != grpc.StatusCode.OK
    # Still serving, nothing held: the store is empty and a program runs.
    res = run_on(cluster, None, """
        @ray.remote
        def f(x):
            return x + 1
        emit({"v": ray.get(f.remote(1), timeout=60)})
    """)
    assert res["v"] == 2
    state = os.path.join(cluster.temp_dir, "session_latest", "logs", "debug_state.txt")

    def dumped():
        text = open(state).read() if os.path.exists(state) else ""
        return text if "chunks received: 0, refused: 4" in text and " 0 parked" in text else None

    # Four chunks with good ids refused, none taken; the parked Pull forgotten.
    helpers.wait_for(dumped, 30, what="debug_state.txt: 4 chunks refused and no Pull parked")
    log = open(os.path.join(cluster.temp_dir, "session_latest", "logs", "raylet.out")).read()
    assert log.count("no pull here wants it") == 4, log[-3000:]
    assert "which is not in the cluster" in log
    assert "malformed ids" in log
    assert "a field of the wrong wire type" in log and "chunk index past 32 bits" in log
    assert node.raylet_process().is_running()
