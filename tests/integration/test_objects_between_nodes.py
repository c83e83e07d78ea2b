"""Issue 9: objects move between nodes, craylet and stock alike, on separate
network hosts (namespaces made by the test: netns.py).

Host 0 runs GCS and the head node; hosts 1 and 2 run one node each, with
a custom resource naming the host so tasks and actors land where a test
wants them.  Every node's raylet is checked to be the binary asked for."""

import hashlib
import json
import textwrap

import pytest

import helpers
import netns

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


def start_three(make, raylets, store=512 * MB, env=None):
    """Hosts 0..2 with the given raylet binaries (None: stock)."""
    c = make(env)
    for i, raylet in enumerate(raylets):
        c.start_host(i, raylet, resources={"host%d" % i: 10}, num_cpus=2, object_store_memory=store)
    return c


def run_on(cluster, host, body, timeout=300):
    code = textwrap.dedent("""
        import hashlib, json, os, sys, time
        import numpy as np
        import ray
        def emit(d):
            sys.stdout.write("\\nRESULT " + json.dumps(d) + "\\n")
            sys.stdout.flush()
        ray.init(address=%r, logging_level="ERROR")
    """) % cluster.gcs_address + textwrap.dedent(body)
    with cluster.on_host(host):
        r = cluster.python(code, timeout=timeout)
    results = [json.loads(line[7:]) for line in r.stdout.splitlines() if line.startswith("RESULT ")]
    assert r.returncode == 0 and results, r.output() + "\n" + cluster.log_tail(lines=60)
    out = {}
    for d in results:
        out.update(d)
    return out


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


def test_get_on_one_host_of_an_object_put_on_another(host_cluster, craylet):
    c = start_three(host_cluster, [craylet, craylet, craylet])
    res = run_on(c, 0, "MB_SIZE = 200\n" + PUT_ON_B_GET_ON_C)
    assert res["got"] == res["want"], "200 MB array read on host 2 differs from the one put on host 1"
    assert res["reader_node"] == c.nodes[2].node_id


def test_task_argument_produced_on_another_host(host_cluster, craylet):
    c = start_three(host_cluster, [craylet, craylet, craylet])
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
