"""GPU gang packing end to end, on machines without GPUs: a node simulated
from an `nvidia-smi topo -m` file (CRAYLET_GPU_TOPOLOGY) with --num-gpus=8,
placement groups created by a stock driver, and the GPU ids read inside the
bundles with ray.get_gpu_ids().  The same scenarios with packing off, and on
the stock raylet, give the stock ids (lowest free index)."""

import os
import subprocess

import pytest

import helpers
from test_tasks_objects import head, run_driver

TOPOLOGIES = helpers.REPO / "python_shim" / "craylet" / "topologies"
GANG_RECORD = "craylet_gpu_gangs.txt"

# Gangs one after another, each held while the next is placed; every
# bundle's GPU ids and CPU affinity are read by an actor living in it.
GANGS = """
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    @ray.remote(num_gpus=1, num_cpus=0)
    class InBundle:
        def where(self):
            return (ray.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES"),
                    sorted(os.sched_getaffinity(0)))

    held = []
    out = []
    for sizes, strategy in GANGS:
        pg = placement_group([{"GPU": 1} for _ in range(sizes)], strategy=strategy,
                             lifetime="detached" if DETACHED else None)
        ray.get(pg.ready(), timeout=60)
        actors = [InBundle.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
            pg, placement_group_bundle_index=i)).remote() for i in range(sizes)]
        seen = ray.get([a.where.remote() for a in actors], timeout=120)
        held.append((pg, actors))
        out.append(seen)
    emit({"gangs": out})
"""


def gangs(cluster, spec, detached=False):
    """Place the gangs; detached ones outlive the driver (for reading the
    daemon's record of them afterwards)."""
    res = run_driver(cluster, "\n    GANGS = %r\n    DETACHED = %r\n" % (spec, detached) + GANGS)
    gangs_out = res["gangs"]
    for gang in gangs_out:
        for gpu_ids, visible, _ in gang:
            assert len(gpu_ids) == 1 and visible == str(gpu_ids[0]), gang
    return [[g[0][0] for g in gang] for gang in gangs_out], [[g[2] for g in gang] for gang in gangs_out]


def start(cluster, raylet, topology, packing=None, affinity=None):
    env = {"CRAYLET_GPU_TOPOLOGY": str(TOPOLOGIES / topology)}
    if packing:
        env["CRAYLET_GPU_PACKING"] = packing
    if affinity:
        env["CRAYLET_CPU_AFFINITY"] = affinity
    return head(cluster, raylet, num_cpus=4, num_gpus=8, env=env)


PAIRS = [(1, "PACK"), (2, "STRICT_PACK")]
ISLANDS = [(2, "STRICT_PACK"), (4, "PACK")]


@pytest.mark.parametrize("who", ["craylet", "off", "stock"])
def test_nvlink_pairs_after_a_one_gpu_group(cluster, craylet, stock_raylet, who):
    raylet = stock_raylet if who == "stock" else craylet
    start(cluster, raylet, "pcie-nvlink-pairs-8.txt", packing="off" if who == "off" else None)
    ids, _ = gangs(cluster, PAIRS)
    assert ids[0] == [0], ids
    if who == "craylet":
        # Stock Ray gives GPUs 1 and 2, which share no NVLink.
        assert sorted(ids[1]) == [2, 3], ids
    else:
        assert sorted(ids[1]) == [1, 2], ids


@pytest.mark.parametrize("who", ["craylet", "off", "stock"])
def test_four_gpu_gang_lands_whole_on_one_island(cluster, craylet, stock_raylet, who):
    raylet = stock_raylet if who == "stock" else craylet
    start(cluster, raylet, "two-islands-8.txt", packing="off" if who == "off" else None)
    ids, _ = gangs(cluster, ISLANDS, detached=True)
    assert sorted(ids[0]) == [0, 1], ids
    if who == "craylet":
        assert sorted(ids[1]) == [4, 5, 6, 7], ids
        # Ranks follow the NVLink ring: neighbours in bundle order share NVLink.
        session = os.path.join(cluster.temp_dir, "session_latest")
        shown = subprocess.run([craylet, "topo", "--session", session], capture_output=True, text=True,
                               timeout=30)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.count("72/72") == 4, "the 4-GPU gang has all 6 NV12 pairs:\n" + shown.stdout
        assert shown.stdout.count(" yes ") == 6, "every bundle of both gangs is all-NVLink:\n" + shown.stdout
        # debug_state.txt is rewritten every 10 s.
        state_file = os.path.join(session, "logs", "debug_state.txt")
        helpers.wait_for(lambda: "gang=4,5,6,7" in open(state_file).read(), 30,
                         what="the gangs in debug_state.txt")
    else:
        assert sorted(ids[1]) == [2, 3, 4, 5], ids


def test_workers_run_on_the_cores_of_their_gpus(cluster, craylet):
    cpus = os.sched_getaffinity(0)
    if not {0, 1} <= cpus:
        pytest.skip("needs CPUs 0 and 1")
    # GPUs 0-3 sit by CPU 0 and GPUs 4-7 by CPU 1 in this file.
    start(cluster, craylet, "pairs-split-cpus-8.txt")
    ids, affinity = gangs(cluster, [(4, "PACK"), (4, "PACK")])
    assert sorted(ids[0] + ids[1]) == list(range(8)), ids
    for gang_ids, gang_cpus in zip(ids, affinity):
        for gpu, bound in zip(gang_ids, gang_cpus):
            assert bound == ([0] if gpu < 4 else [1]), (ids, affinity)
    # GPUs 4-7 name NUMA node 1.  Where it has no memory (a file describing
    # another machine) craylet says so once and moves no pages.
    if not os.path.exists("/sys/devices/system/node/node1"):
        log = open(os.path.join(cluster.temp_dir, "session_latest", "logs", "raylet.out")).read()
        assert log.count("GPU NUMA node 1 has no memory on this machine") == 1, log[-3000:]


def test_cpu_affinity_off_leaves_workers_unbound(cluster, craylet):
    start(cluster, craylet, "pairs-split-cpus-8.txt", affinity="off")
    _, affinity = gangs(cluster, [(2, "PACK")])
    for bound in affinity[0]:
        assert len(bound) == len(os.sched_getaffinity(0)), affinity


def test_strict_refuses_a_gang_without_an_all_nvlink_set(cluster, craylet):
    start(cluster, craylet, "pcie-nvlink-pairs-8.txt", packing="strict")
    res = run_driver(cluster, """
        from ray.util.placement_group import placement_group, remove_placement_group
        pair = placement_group([{"GPU": 1}, {"GPU": 1}], strategy="STRICT_PACK")
        ok_pair = pair.wait(timeout_seconds=60)
        four = placement_group([{"GPU": 1}] * 4, strategy="STRICT_PACK")
        ok_four = four.wait(timeout_seconds=5)
        remove_placement_group(four)
        remove_placement_group(pair)
        emit({"pair": ok_pair, "four": ok_four})
    """)
    assert res == {"pair": True, "four": False}, res
    log = open(os.path.join(cluster.temp_dir, "session_latest", "logs", "raylet.out")).read()
    assert "strict GPU packing finds no set of GPUs all joined by NVLink" in log


def run_direct(craylet, tmp_path, env, **flags):
    argv = helpers.direct_raylet_argv(craylet, str(tmp_path), "127.0.0.1:1", **flags)
    full = dict(os.environ)
    full.update(env)
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=full)


@pytest.mark.parametrize("case", ["malformed", "too_few", "too_many", "packing", "affinity"])
def test_bad_gpu_settings_stop_craylet_at_start(craylet, tmp_path, case):
    bad = tmp_path / "bad.txt"
    bad.write_text("\tGPU0\tGPU1\nGPU0\t X \tNV1\nGPU1\tNV2\t X \n")
    eight = str(TOPOLOGIES / "pcie-nvlink-pairs-8.txt")
    resources = "CPU,1,GPU,%d,memory,1000000000,object_store_memory,100000000"
    env, gpus, expect = {
        "malformed": ({"CRAYLET_GPU_TOPOLOGY": str(bad)}, 2, "bad.txt:3:6"),
        "too_few": ({"CRAYLET_GPU_TOPOLOGY": eight}, 16, "describes 8 GPUs but this node has 16"),
        "too_many": ({"CRAYLET_GPU_TOPOLOGY": eight}, 4, "describes 8 GPUs but this node has 4"),
        "packing": ({"CRAYLET_GPU_PACKING": "tight"}, 0, "CRAYLET_GPU_PACKING"),
        "affinity": ({"CRAYLET_CPU_AFFINITY": "maybe"}, 0, "CRAYLET_CPU_AFFINITY"),
    }[case]
    r = run_direct(craylet, tmp_path, env, static_resource_list=resources % gpus)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert expect in r.stderr, r.stderr


def test_topo_command_prints_the_graph(craylet):
    r = subprocess.run([craylet, "topo", "--topology", str(TOPOLOGIES / "two-islands-8.txt")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "NVLink islands (2)" in r.stdout and "island 1: GPU 4,5,6,7" in r.stdout, r.stdout


TRAIN = """
    import json, shutil, tempfile
    import ray.train
    from ray.train import RunConfig, ScalingConfig
    try:  # Train v2 where the release turns it on (2.60), else v1
        from ray.train.v2._internal.constants import is_v2_enabled
        v2 = is_v2_enabled()
    except ImportError:
        v2 = False
    if v2:
        from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer
    else:
        from ray.train.data_parallel_trainer import DataParallelTrainer

    # GPU 0 is busy before training starts, as on a shared node.
    @ray.remote(num_gpus=1, num_cpus=0)
    class Hold:
        def gpus(self):
            return ray.get_gpu_ids()
    hold = Hold.remote()
    held = ray.get(hold.gpus.remote(), timeout=60)

    out_dir = tempfile.mkdtemp(prefix="train-ranks-")

    def train_fn(config):
        ctx = ray.train.get_context()
        rank = ctx.get_world_rank()
        with open(os.path.join(config["out"], "rank-%d.json" % rank), "w") as f:
            json.dump({"rank": rank, "gpus": ray.get_gpu_ids(),
                       "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
                       "cpus": sorted(os.sched_getaffinity(0))}, f)
        ray.train.report({"rank": rank})

    trainer = DataParallelTrainer(train_fn, train_loop_config={"out": out_dir},
                                  scaling_config=ScalingConfig(num_workers=4, use_gpu=True),
                                  run_config=RunConfig(storage_path=out_dir, name="gang"))
    trainer.fit()
    ranks = [json.load(open(os.path.join(out_dir, f))) for f in sorted(os.listdir(out_dir))
             if f.startswith("rank-")]
    shutil.rmtree(out_dir, ignore_errors=True)
    emit({"held": held, "ranks": ranks})
"""


@pytest.mark.parametrize("packing", ["prefer", "off"])
def test_ray_train_workers_get_an_nvlink_set_and_its_cores(cluster, craylet, packing):
    pytest.importorskip("pandas", reason="Ray Train needs ray[train]")
    cpus = os.sched_getaffinity(0)
    env = {"CRAYLET_GPU_TOPOLOGY": str(TOPOLOGIES / "pairs-split-cpus-8.txt"), "CRAYLET_GPU_PACKING": packing}
    head(cluster, craylet, num_cpus=8, num_gpus=8, env=env)
    res = run_driver(cluster, TRAIN, timeout=400)
    assert res["held"] == [0], res
    ranks = res["ranks"]
    assert sorted(r["rank"] for r in ranks) == [0, 1, 2, 3], res
    for r in ranks:
        assert len(r["gpus"]) == 1 and r["visible"] == str(r["gpus"][0]), r
    gpus = sorted(r["gpus"][0] for r in ranks)
    if packing == "off":
        assert gpus == [1, 2, 3, 4], res  # stock Ray's lowest free ids
        return
    # Two NVLink pairs on one NUMA node, rather than 1-4 (one pair, mixed nodes).
    assert gpus == [4, 5, 6, 7], res
    if {0, 1} <= cpus:
        for r in ranks:
            assert r["cpus"] == [1], r  # the cores next to GPUs 4-7 in this file


def test_strict_gang_goes_to_the_node_that_can_give_all_nvlink(cluster, craylet):
    """Two nodes, strict packing: one (NVLink pairs) cannot give a 4-GPU gang
    an all-NVLink set and refuses the prepare; the gang must end up on the
    other (two 4-GPU islands) within 30 s, whichever node GCS tries first."""
    first = start(cluster, craylet, "two-islands-8.txt", packing="strict")
    pairs = cluster.start_worker(raylet=craylet, num_cpus=2, num_gpus=8, env={
        "CRAYLET_GPU_TOPOLOGY": str(TOPOLOGIES / "pcie-nvlink-pairs-8.txt"), "CRAYLET_GPU_PACKING": "strict"})
    res = run_driver(cluster, """
        from ray.util.placement_group import placement_group, placement_group_table
        t0 = time.time()
        pg = placement_group([{"GPU": 1}] * 4, strategy="STRICT_PACK")
        ok = pg.wait(timeout_seconds=30)
        took = time.time() - t0
        nodes = set(placement_group_table(pg)["bundles_to_node_id"].values())
        emit({"ok": ok, "took": took, "nodes": sorted(nodes)})
    """)
    assert res["ok"], res
    assert res["nodes"] == [first.node_id], (res, first.node_id, pairs.node_id)
    logs = os.path.join(cluster.temp_dir, "session_latest", "logs")
    refusals = sum(open(os.path.join(logs, f)).read().count("strict GPU packing finds no set")
                   for f in os.listdir(logs) if f.startswith("raylet") and f.endswith(".out"))
    print("refusals: %d, placed after %.1f s" % (refusals, res["took"]))


def _bundle(pg, index, resources):
    from ray.core.generated import common_pb2
    b = common_pb2.Bundle()
    b.bundle_id.placement_group_id = pg
    b.bundle_id.bundle_index = index
    for k, v in resources.items():
        b.unit_resources[k] = v
    return b


def test_bundle_calls_with_bad_input_reserve_nothing(cluster, craylet):
    """GCS's two-phase commit, driven by hand with what a confused or hostile
    peer could send: each call is answered, nothing is reserved twice or
    leaked, and the node's 8 GPUs can all be prepared afterwards."""
    import grpc
    from ray.core.generated import node_manager_pb2 as nm, node_manager_pb2_grpc
    node = start(cluster, craylet, "pcie-nvlink-pairs-8.txt")
    stub = node_manager_pb2_grpc.NodeManagerServiceStub(grpc.insecure_channel(node.grpc_address()))
    md = helpers.auth_metadata()

    def prepare(*bundles):
        return stub.PrepareBundleResources(nm.PrepareBundleResourcesRequest(bundle_specs=list(bundles)),
                                           metadata=md, timeout=10).success

    def give_back(pg, *indexes):
        specs = [_bundle(pg, i, {}) for i in indexes]
        if hasattr(nm, "RemovePlacementGroupBundlesRequest"):
            stub.RemovePlacementGroupBundles(nm.RemovePlacementGroupBundlesRequest(
                placement_group_id=pg, bundle_specs=specs), metadata=md, timeout=10)
        else:
            for s in specs:
                stub.CancelResourceReserve(nm.CancelResourceReserveRequest(bundle_spec=s), metadata=md, timeout=10)

    pg = lambda n: bytes([n]) * 18  # noqa: E731
    refused = {
        "unknown resource": {"FOO": 1.0},
        "negative": {"GPU": -1.0},
        "NaN": {"GPU": float("nan")},
        "fraction above one GPU": {"GPU": 1.5},
        "more GPUs than the node has": {"GPU": 9.0},
    }
    for i, (why, res) in enumerate(refused.items()):
        assert not prepare(_bundle(pg(10 + i), 0, res)), why
    # A bad bundle fails the whole request, good ones in it included.
    assert not prepare(_bundle(pg(20), 0, {"GPU": 2.0}), _bundle(pg(20), 1, {"GPU": -3.0}))
    # The same bundle twice (in one request, then again): reserved once.
    assert prepare(_bundle(pg(21), 0, {"GPU": 2.0}), _bundle(pg(21), 0, {"GPU": 2.0}))
    assert prepare(_bundle(pg(21), 0, {"GPU": 2.0}))
    assert prepare(_bundle(pg(22), 0, {"GPU": 6.0})), "only 2 GPUs may be held by the duplicate"
    assert not prepare(_bundle(pg(23), 0, {"GPU": 1.0}))
    # Commit of a bundle never prepared, cancel of an unknown group: answered, no effect.
    stub.CommitBundleResources(nm.CommitBundleResourcesRequest(bundle_specs=[_bundle(pg(24), 0, {})]),
                               metadata=md, timeout=10)
    give_back(pg(25), 0, 1)
    give_back(pg(21), 0)
    give_back(pg(22), 0)
    # Everything is back: all 8 GPUs in one gang, as two NVLink-pair bundles of 4.
    assert prepare(_bundle(pg(26), 0, {"GPU": 4.0}), _bundle(pg(26), 1, {"GPU": 4.0}))
    give_back(pg(26), 0, 1)
    assert prepare(_bundle(pg(27), 0, {"GPU": 8.0}))
    give_back(pg(27), 0)
    # What GCS (and `ray status`) sees: all 8 GPUs free again.
    helpers.wait_for(lambda: "0.0/8.0 GPU" in cluster.ray("status", "--address=%s" % cluster.gcs_address).stdout,
                     60, interval=1, what="ray status showing 0.0/8.0 GPU")


def test_many_gpu_groups_created_and_removed_leave_nothing_behind(cluster, craylet):
    start(cluster, craylet, "two-islands-8.txt")
    res = run_driver(cluster, """
        from ray.util.placement_group import placement_group, remove_placement_group
        total = ray.cluster_resources()
        # Each group is made right after the previous one was removed: GCS
        # holds the new one until craylet reports the GPUs given back.
        for i in range(500):
            pg = placement_group([{"GPU": 1}] * 4, strategy="PACK" if i % 2 else "STRICT_PACK")
            assert pg.wait(60), i
            remove_placement_group(pg)
        deadline = time.time() + 60
        while time.time() < deadline:
            avail = ray.available_resources()
            if avail.get("GPU") == total.get("GPU") and not any("_group_" in k for k in avail):
                break
            time.sleep(0.2)
        emit({"total": total.get("GPU"), "avail": {k: v for k, v in ray.available_resources().items()
                                                    if k == "GPU" or "_group_" in k}})
    """, timeout=600)
    assert res["avail"] == {"GPU": res["total"]} and res["total"] == 8.0, res
    # No bundle and no leased worker left on the node (debug_state.txt, rewritten every 10 s).
    state = os.path.join(cluster.temp_dir, "session_latest", "logs", "debug_state.txt")
    helpers.wait_for(lambda: "- placement group bundles: 0\n" in open(state).read()
                     and "- leased workers: 0 " in open(state).read(), 30, what="an empty node in debug_state.txt")
    gangs = open(os.path.join(cluster.temp_dir, "session_latest", "logs", GANG_RECORD)).read()
    assert gangs == "", "every gang was forgotten:\n" + gangs
