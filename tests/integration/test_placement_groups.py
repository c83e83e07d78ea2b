"""Placement groups on craylet: GCS's prepare/commit reserves bundles,
tasks and actors scheduled into bundles get the bundle's GPU instances,
and removing the group returns everything."""

from test_tasks_objects import head, run_driver


def test_bundles_reserve_gpus_and_removal_returns_them(cluster, craylet):
    head(cluster, craylet, num_cpus=4, num_gpus=2)
    res = run_driver(cluster, """
        from ray.util.placement_group import placement_group, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
        pg = placement_group([{"CPU": 1, "GPU": 1}, {"CPU": 1, "GPU": 1}], strategy="STRICT_PACK")
        ray.get(pg.ready(), timeout=60)
        held = ray.available_resources()

        @ray.remote(num_cpus=1, num_gpus=1)
        def g():
            return ray.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES")
        runs = ray.get([g.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
            pg, placement_group_bundle_index=i)).remote() for i in range(2)])

        @ray.remote(num_cpus=1)
        class A:
            def ok(self):
                return "ok"
        a = A.options(scheduling_strategy=PlacementGroupSchedulingStrategy(pg)).remote()
        actor = ray.get(a.ok.remote(), timeout=60)

        remove_placement_group(pg)
        # GCS may show the whole return before the node's reports of each
        # bundle (one CancelResourceReserve each on 2.54) catch up: wait
        # until the view has stayed whole for a second.
        deadline = time.time() + 60
        steady = 0
        while time.time() < deadline and steady < 5:
            avail = ray.available_resources()
            whole = avail.get("CPU") == 4 and avail.get("GPU") == 2 and not any("_group_" in k for k in avail)
            steady = steady + 1 if whole else 0
            time.sleep(0.2)
        emit({"held_cpu": held.get("CPU", 0), "held_gpu": held.get("GPU", 0), "runs": runs, "actor": actor,
              "after": {k: v for k, v in ray.available_resources().items() if k in ("CPU", "GPU") or "_group_" in k}})
    """)
    assert res["held_cpu"] == 2 and res["held_gpu"] == 0, res
    ids = sorted(r[0][0] for r in res["runs"])
    assert ids == [0, 1], res
    for gpu_ids, visible in res["runs"]:
        assert visible == str(gpu_ids[0])
    assert res["actor"] == "ok"
    assert res["after"] == {"CPU": 4.0, "GPU": 2.0}, res


def test_blocked_task_in_a_bundle_lends_its_cpu(cluster, craylet):
    """A task holding a bundle's only CPU blocks in ray.get on a child that
    needs that CPU: the raylet must lend the bundle CPU while it waits."""
    head(cluster, craylet, num_cpus=1)
    res = run_driver(cluster, """
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
        @ray.remote
        def child():
            return 1
        @ray.remote
        def parent():
            return ray.get(child.remote())
        pg = placement_group([{"CPU": 1}])
        ray.get(pg.ready(), timeout=60)
        strategy = PlacementGroupSchedulingStrategy(pg, placement_group_capture_child_tasks=True)
        emit({"value": ray.get(parent.options(scheduling_strategy=strategy).remote(), timeout=120)})
    """)
    assert res["value"] == 1
