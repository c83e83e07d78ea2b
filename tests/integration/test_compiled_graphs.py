"""Compiled graphs (Ray's accelerated DAGs) on craylet nodes.

Their channels are mutable objects in the object store.  On one node the
workers share them through the plasma socket; across nodes the writer's
worker pushes every version to the reader node's raylet
(NodeManagerService PushMutableObject, after RegisterMutableObject), which
writes it into the local reader object once the local readers have
released the last version.  That second half is craylet's: without it the
graph's first execute never completes."""

import re

import netns
from test_objects_between_nodes import FREQUENT_DUMPS, hosts, node_debug_state, run_on  # noqa: F401 (fixture)
from test_tasks_objects import head, run_driver

GRAPH = """
    import numpy as np
    from ray.dag import InputNode

    @ray.remote(num_cpus=0)
    class Stage:
        def __init__(self, k):
            self.k = k
        def step(self, x):
            return x + self.k
        def where(self):
            return ray.get_runtime_context().get_node_id()

    a = Stage.options(%(a)s).remote(1)
    b = Stage.options(%(b)s).remote(10)
    where = {"a": ray.get(a.where.remote()), "b": ray.get(b.where.remote()),
             "driver": ray.get_runtime_context().get_node_id()}
    with InputNode() as inp:
        dag = b.step.bind(a.step.bind(inp))
    compiled = dag.experimental_compile()
    small = [compiled.execute(i).get(timeout=60) for i in range(20)]
    big = []
    for i in range(5):
        arr = np.full(1 << 20, i, dtype=np.uint8)   # 1 MiB per version
        got = compiled.execute(arr).get(timeout=60)
        big.append(int(got.sum()) == (1 << 20) * ((i + 11) %% 256) and got.shape == arr.shape)
        # The array is the channel's buffer (zero-copy): the next version
        # cannot be written into it while it lives.
        del got
    emit(dict(where, small=small, big=big))
    # No teardown: across hosts it hangs on the stock raylet as well (Ray
    # 2.60), and a driver that ran a compiled graph dies of SIGSEGV in the
    # interpreter's exit on stock too: the cluster's teardown ends it all.
    os._exit(0)
"""


WRITTEN = re.compile(r"- from writers on other nodes: (\d+), waiting for their readers: \d+, versions written: (\d+)")


def test_compiled_graph_on_one_node(cluster, craylet):
    node = head(cluster, craylet, num_cpus=2)
    res = run_driver(cluster, GRAPH % {"a": "", "b": ""}, timeout=240)
    assert res["small"] == [i + 11 for i in range(20)]
    assert res["big"] == [True] * 5
    assert res["a"] == res["b"] == node.node_id


def test_compiled_graph_across_hosts(shim_installed, hosts, craylet):
    """Stage a on host 1 writes to stage b on host 2, which writes to the
    driver on host 0: every channel crosses hosts, and each version reaches
    its reader through that host's craylet."""
    c = netns.HostCluster(hosts)
    try:
        for i in range(3):
            c.start_host(i, craylet, resources={"host%d" % i: 10}, num_cpus=2,
                         env=FREQUENT_DUMPS if i != 1 else None)
        res = run_on(c, 0, GRAPH % {"a": 'resources={"host1": 1}', "b": 'resources={"host2": 1}'},
                     timeout=240)
        assert res["small"] == [i + 11 for i in range(20)]
        assert res["big"] == [True] * 5
        assert [res["driver"], res["a"], res["b"]] == [n.node_id for n in c.nodes]
        # The craylets of hosts 2 and 0 wrote all 25 versions into their
        # readers' objects themselves.
        def wrote_them(text):
            m = WRITTEN.search(text)
            return m and int(m.group(1)) >= 1 and int(m.group(2)) >= 25
        for host in (2, 0):
            node_debug_state(c, c.nodes[host].node_id, wrote_them)
    except BaseException:
        print("---- logs ----\n" + c.log_tail(lines=80))
        raise
    finally:
        problems = c.teardown()
    assert not problems, "cluster teardown found leftovers:\n" + "\n".join(problems)


def test_channel_calls_with_bad_input_are_refused(cluster, craylet):
    """RegisterMutableObject and PushMutableObject as a confused or hostile
    peer could send them: each is answered with an error naming the
    problem, and the node keeps serving."""
    import grpc
    import helpers
    from ray.core.generated import node_manager_pb2 as nm, node_manager_pb2_grpc
    node = head(cluster, craylet, num_cpus=1)
    stub = node_manager_pb2_grpc.NodeManagerServiceStub(grpc.insecure_channel(node.grpc_address()))
    md = helpers.auth_metadata()

    def code(call, request):
        try:
            call(request, metadata=md, timeout=10)
        except grpc.RpcError as e:
            return e.code()
        return grpc.StatusCode.OK

    writer, reader = b"\x01" * 28, b"\x02" * 28
    register = stub.RegisterMutableObject
    push = stub.PushMutableObject
    cases = [
        (register, nm.RegisterMutableObjectRequest(writer_object_id=b"short", num_readers=1, reader_object_id=reader),
         grpc.StatusCode.INVALID_ARGUMENT),
        (register, nm.RegisterMutableObjectRequest(writer_object_id=writer, num_readers=1, reader_object_id=reader),
         grpc.StatusCode.NOT_FOUND),  # no such object in the store
        (push, nm.PushMutableObjectRequest(writer_object_id=writer, total_data_size=5, chunk_size=5, data=b"hello"),
         grpc.StatusCode.NOT_FOUND),  # no reader registered
        (push, nm.PushMutableObjectRequest(writer_object_id=writer, total_data_size=5, chunk_size=9, data=b"hello"),
         grpc.StatusCode.INVALID_ARGUMENT),  # the chunk is not the size it says
        (push, nm.PushMutableObjectRequest(writer_object_id=writer, total_data_size=1, total_metadata_size=4,
                                           chunk_size=1, data=b"x", metadata=b"m"),
         grpc.StatusCode.INVALID_ARGUMENT),
        (push, nm.PushMutableObjectRequest(writer_object_id=b"", chunk_size=0),
         grpc.StatusCode.INVALID_ARGUMENT),
    ]
    got = [code(call, request) for call, request, _ in cases]
    assert got == [want for _, _, want in cases]
    res = run_driver(cluster, """
        @ray.remote
        def f(x):
            return x + 1
        emit({"v": ray.get(f.remote(1))})
    """)
    assert res["v"] == 2
    # The refused registration is logged with the object it named.
    assert "RegisterMutableObject for reader object %s refused" % ("02" * 28) in cluster.log_tail(lines=400)
