"""Draining (issue 10): a craylet node asked to leave the cluster, through
`ray drain-node` (GCS -> DrainRaylet), decides as the stock raylet does.

- idle termination: refused while the node runs something, accepted once
  it is idle; the node then leaves with AUTOSCALER_DRAIN_IDLE and the
  request's message in the node table;
- preemption: accepted while busy; the node takes no new work (tasks go
  to the other node, hard affinity to it fails, placement-group bundles are
  refused), reports itself draining, and leaves AUTOSCALER_DRAIN_PREEMPTED
  the moment its last work ends.

Two craylet nodes on this host; the head stays."""

import time

import helpers
from test_objects_between_nodes import run_on


def drain(cluster, node, reason, message, deadline_s=None):
    args = ["drain-node", "--address=%s" % cluster.gcs_address, "--node-id=%s" % node.node_id,
            "--reason=%s" % reason, "--reason-message=%s" % message]
    if deadline_s is not None:
        args.append("--deadline-remaining-seconds=%d" % deadline_s)
    return cluster.ray(*args, timeout=60)


def keep_busy(cluster, node):
    """A detached actor (no CPU) on `node`: the node is busy until it goes."""
    res = run_on(cluster, None, """
        @ray.remote(num_cpus=0, resources={"w": 1}, lifetime="detached", name="busy", namespace="d")
        class Busy:
            def node(self):
                return ray.get_runtime_context().get_node_id()
        emit({"node": ray.get(Busy.remote().node.remote(), timeout=60)})
    """)
    assert res["node"] == node.node_id


def let_go(cluster):
    run_on(cluster, None, """
        ray.kill(ray.get_actor("busy", namespace="d"))
        emit({})
    """)


def test_idle_termination_waits_for_idle_then_the_node_leaves(cluster, craylet):
    cluster.start_head(raylet=craylet, num_cpus=1, include_dashboard=False)
    worker = cluster.start_worker(raylet=craylet, num_cpus=1, resources={"w": 1})
    keep_busy(cluster, worker)
    r = drain(cluster, worker, "DRAIN_NODE_REASON_IDLE_TERMINATION", "idle for long enough")
    assert r.returncode != 0, r.output()
    assert "The node to be idle terminated is no longer idle." in r.stderr + r.stdout, r.output()
    assert worker.state() == "ALIVE", "a refused drain changes nothing"
    let_go(cluster)

    def accepted():
        r = drain(cluster, worker, "DRAIN_NODE_REASON_IDLE_TERMINATION", "idle for long enough")
        return r if r.returncode == 0 else None

    helpers.wait_for(accepted, 60, interval=1.0, what="the drain to be accepted once the node is idle")
    info = worker.wait_state("DEAD", 60)
    assert info["death_reason"] == "AUTOSCALER_DRAIN_IDLE", info
    assert info["death_message"] == "idle for long enough", info
    # A drain of a node already gone is accepted (GCS answers for it).
    assert drain(cluster, worker, "DRAIN_NODE_REASON_IDLE_TERMINATION", "again").returncode == 0


def test_preempted_node_takes_no_new_work_and_leaves_when_done(cluster, craylet):
    head = cluster.start_head(raylet=craylet, num_cpus=1, include_dashboard=False)
    worker = cluster.start_worker(raylet=craylet, num_cpus=1, resources={"w": 1})
    keep_busy(cluster, worker)
    r = drain(cluster, worker, "DRAIN_NODE_REASON_PREEMPTION", "spot reclaimed", deadline_s=3600)
    assert r.returncode == 0, r.output()
    assert worker.state() == "ALIVE", "busy: it stays until its work ends"
    res = run_on(cluster, None, """
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        from ray.util.placement_group import placement_group

        @ray.remote(num_cpus=1)
        def where():
            return ray.get_runtime_context().get_node_id()

        worker = %r
        spread = ray.get([where.options(scheduling_strategy="SPREAD").remote() for _ in range(4)], timeout=60)
        soft = ray.get(where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(worker, soft=True)).remote(),
                       timeout=60)
        try:
            ray.get(where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(worker, soft=False)).remote(),
                    timeout=60)
            hard = "ran"
        except ray.exceptions.TaskUnschedulableError:
            hard = "unschedulable"
        # A group of two one-CPU bundles would need the draining node.
        pg = placement_group([{"CPU": 1}, {"CPU": 1}])
        pg_ready = pg.wait(5)
        ray.util.remove_placement_group(pg)
        emit({"spread": spread, "soft": soft, "hard": hard, "pg_ready": pg_ready})
    """ % worker.node_id)
    assert set(res["spread"]) == {head.node_id}, "no task lands on the draining node"
    assert res["soft"] == head.node_id
    assert res["hard"] == "unschedulable"
    assert res["pg_ready"] is False, "its CPU is not offered to a placement group"
    let_go(cluster)
    info = worker.wait_state("DEAD", 60)
    assert info["death_reason"] == "AUTOSCALER_DRAIN_PREEMPTED", info
    assert info["death_message"] == "spot reclaimed", info
    assert head.state() == "ALIVE"
