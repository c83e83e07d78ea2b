"""Two of Ray's own multi-node tests hung on craylet; these are their
scenarios as our tests, one per cause.

- test_placement_group_strict_spread: actors placed into a STRICT_SPREAD
  group "by wildcard" (no bundle index).  GCS leases such an actor with
  grant_or_reject on one of the group's nodes; a node whose bundle was
  busy queued the lease instead of rejecting it (and spills piled onto one
  node), so GCS never tried the group's other nodes and the actor never
  started.  Now a busy grant-or-reject lease is rejected when another node
  is free, and spills are counted against the target's view.
- test_actor_restart_on_node_failure: a detached, restartable actor whose
  node dies with calls in flight must come back on a new node and answer
  every call.  It has passed since the grant-or-reject fix above and the
  one that lets a detached actor's workers outlive its job; the hang was
  not caught again to tell which of the two it was.  The scenario also
  guards the rule that leases die with their owner (Ray's
  test_multi_node.py::test_drivers_release_resources) while a detached
  actor's do not.

Several nodes on this host (each its own raylet and ports), all craylet."""

import os
import signal

from test_objects_between_nodes import run_on


def test_wildcard_actors_fill_a_strict_spread_group(cluster, craylet):
    cluster.start_head(raylet=craylet, num_cpus=4, include_dashboard=False)
    for _ in range(2):
        cluster.start_worker(raylet=craylet, num_cpus=4)
    res = run_on(cluster, None, """
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        @ray.remote
        class Actor:
            def node(self):
                return ray.get_runtime_context().get_node_id()

        pg = ray.util.placement_group([{"CPU": 2}] * 3, strategy="STRICT_SPREAD")
        ray.get(pg.ready(), timeout=60)
        def into(index, cpus):
            return Actor.options(num_cpus=cpus, scheduling_strategy=PlacementGroupSchedulingStrategy(
                placement_group=pg, placement_group_bundle_index=index)).remote()
        indexed = [into(i, 1) for i in range(3)]
        indexed_nodes = ray.get([a.node.remote() for a in indexed], timeout=60)
        # Each bundle has one CPU left: three more by wildcard fill them.
        wildcard = [into(-1, 1) for _ in range(3)]
        wildcard_nodes = ray.get([a.node.remote() for a in wildcard], timeout=60)
        # And one that fits no bundle any more stays pending.
        too_big = into(-1, 2)
        try:
            ray.get(too_big.node.remote(), timeout=2)
            too_big_ran = True
        except ray.exceptions.GetTimeoutError:
            too_big_ran = False
        emit({"indexed": indexed_nodes, "wildcard": wildcard_nodes, "too_big_ran": too_big_ran})
    """, timeout=240)
    assert len(set(res["indexed"])) == 3, "STRICT_SPREAD: one bundle per node"
    assert sorted(res["wildcard"]) == sorted(res["indexed"]), "one wildcard actor in each bundle's free CPU"
    assert not res["too_big_ran"]


def test_detached_actor_comes_back_on_a_new_node_after_its_node_dies(cluster_factory, craylet):
    # GCS notices the dead node within about a second.
    cluster = cluster_factory(env={"RAY_health_check_period_ms": "200", "RAY_health_check_failure_threshold": "5",
                                   "RAY_health_check_initial_delay_ms": "0"})
    cluster.start_head(raylet=craylet, num_cpus=0, include_dashboard=False)
    cluster.start_worker(raylet=craylet, num_cpus=1, resources={"signal": 1})
    cluster.start_worker(raylet=craylet, num_cpus=1, resources={"actor": 1})
    flag = os.path.join(cluster.temp_dir, "replaced")

    def on_line(line):
        if line.startswith("RESULT ") and '"calls_in_flight"' in line:
            cluster.nodes[2].raylet_process().send_signal(signal.SIGKILL)
            cluster.start_worker(raylet=craylet, num_cpus=1, resources={"actor": 1})
            open(flag, "w").close()

    res = run_on(cluster, None, """
        import asyncio

        @ray.remote(num_cpus=0, resources={"signal": 1})
        class Signal:
            def __init__(self):
                self.event = asyncio.Event()
            async def send(self):
                self.event.set()
            async def wait(self):
                await self.event.wait()

        @ray.remote(num_cpus=1, max_restarts=1, max_task_retries=-1)
        class Restartable:
            def __init__(self, signal):
                self.signal = signal
            def echo(self, value):
                if value >= 50:
                    ray.get(self.signal.wait.remote())
                return value, ray.get_runtime_context().get_node_id()

        sig = Signal.remote()
        actor = Restartable.options(lifetime="detached", resources={"actor": 1}).remote(sig)
        ray.get(actor.__ray_ready__.remote(), timeout=60)
        first_node = ray.get(actor.echo.remote(0), timeout=60)[1]
        calls = [actor.echo.remote(i) for i in range(100)]
        emit({"calls_in_flight": True})
        while not os.path.exists(os.environ["REPLACED_FLAG"]):
            time.sleep(0.05)
        ray.get(sig.send.remote(), timeout=60)
        out = ray.get(calls, timeout=180)
        ray.kill(actor)
        emit({"values": [v for v, _ in out], "first_node": first_node, "last_node": out[-1][1]})
    """, timeout=300, env_extra={"REPLACED_FLAG": flag}, on_line=on_line)
    assert res["values"] == list(range(100)), "every call answered, in order"
    assert res["last_node"] != res["first_node"], "the later calls ran on the new node"
    assert res["last_node"] == cluster.nodes[3].node_id
