"""Actors on craylet: GCS leases a worker for the actor, a killed actor is
restarted (max_restarts), and ray.kill ends its process through
KillLocalActor."""

from test_tasks_objects import head, run_driver


def test_actor_restart_and_kill(cluster, craylet):
    head(cluster, craylet, num_cpus=2)
    res = run_driver(cluster, """
        import signal
        @ray.remote(max_restarts=1)
        class Counter:
            def __init__(self):
                self.n = 0
            def incr(self):
                self.n += 1
                return self.n
            def pid(self):
                return os.getpid()
        a = Counter.remote()
        counts = [ray.get(a.incr.remote()) for _ in range(3)]
        first = ray.get(a.pid.remote())
        os.kill(first, signal.SIGKILL)
        # Right after the kill a call may fail as ActorUnavailableError (the
        # owner saw the connection drop before GCS restarted the actor).
        deadline = time.time() + 60
        while True:
            try:
                second = ray.get(a.pid.remote(), timeout=60)
                break
            except ray.exceptions.ActorUnavailableError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        after_restart = ray.get(a.incr.remote())
        ray.kill(a)
        # ray.kill returns once GCS has taken the request; a call sent in the
        # moment before the owner hears of the death may still be answered
        # (stock Ray has the same window), so keep calling until one fails.
        dead = False
        deadline = time.time() + 30
        while not dead and time.time() < deadline:
            try:
                ray.get(a.pid.remote(), timeout=30)
                time.sleep(0.2)
            except ray.exceptions.RayActorError:
                dead = True
        deadline = time.time() + 30
        while time.time() < deadline and os.path.exists("/proc/%d" % second):
            with open("/proc/%d/stat" % second) as f:
                if f.read().split()[2] == "Z":
                    break
            time.sleep(0.1)
        gone = not os.path.exists("/proc/%d" % second) or open("/proc/%d/stat" % second).read().split()[2] == "Z"
        # The actor's CPU comes back once it is gone.
        while time.time() < deadline and ray.available_resources().get("CPU", 0) < 2:
            time.sleep(0.2)
        emit({"counts": counts, "restarted": second != first, "after_restart": after_restart,
              "dead": dead, "gone": gone, "cpu": ray.available_resources().get("CPU", 0)})
    """)
    assert res["counts"] == [1, 2, 3]
    assert res["restarted"] and res["after_restart"] == 1, res
    assert res["dead"] and res["gone"], res
    assert res["cpu"] == 2


def test_constructor_error_fails_the_actor_without_restarts(cluster, craylet):
    """An actor whose constructor raises is dead for good, whatever its
    max_restarts, and callers learn it failed in its creation task: the
    worker's DisconnectClient carries the exception, which the raylet must
    pass on to GCS in the worker-failure report."""
    head(cluster, craylet, num_cpus=1)
    res = run_driver(cluster, """
        import tempfile
        runs = tempfile.mktemp(prefix="craylet-ctor-")
        @ray.remote(max_restarts=-1)
        class Bad:
            def __init__(self, path):
                with open(path, "a") as f:
                    f.write("x")
                raise ValueError("constructor refused")
            def ping(self):
                return 1
        a = Bad.remote(runs)
        try:
            ray.get(a.ping.remote(), timeout=60)
            err = None
        except ray.exceptions.RayActorError as e:
            err = e
        time.sleep(2)  # a restart, were there one, would run the constructor again
        with open(runs) as f:
            ran = len(f.read())
        os.unlink(runs)
        emit({"error": err is not None, "init_failed": bool(err and err.actor_init_failed),
              "message": str(err)[:2000], "ran": ran,
              "cpu": ray.available_resources().get("CPU", 0)})
    """)
    assert res["error"], res
    assert res["init_failed"], res
    assert "constructor refused" in res["message"], res
    assert res["ran"] == 1, res
    assert res["cpu"] == 1, res


def test_task_worker_that_owns_objects_is_not_made_an_actor(cluster, craylet):
    """A worker that ran tasks may own objects the driver still holds; if it
    became an actor, killing the actor would lose them (OwnerDiedError)."""
    head(cluster, craylet, num_cpus=1, object_store_memory=100 * 1000 * 1000)
    res = run_driver(cluster, """
        import numpy as np
        @ray.remote
        def create_ref():
            return ray.put(np.ones(10_000_000))
        @ray.remote
        class Actor:
            def pid(self):
                return os.getpid()
        @ray.remote
        def task_pid():
            return os.getpid()
        wrapped = create_ref.remote()
        first = float(ray.get(ray.get(wrapped)).sum())
        task_worker = ray.get(task_pid.remote())
        a = Actor.remote()
        actor_worker = ray.get(a.pid.remote())
        del a
        for _ in range(10):
            ray.put(np.zeros(10_000_000))
        emit({"first": first, "again": float(ray.get(ray.get(wrapped)).sum()),
              "reused": actor_worker == task_worker})
    """)
    assert res["first"] == 10_000_000 and res["again"] == 10_000_000, res
    assert not res["reused"], res


def test_node_affinity_places_actors_and_tasks_on_their_node(cluster, craylet):
    """Hard node affinity holds whichever node the lease request reaches:
    on 2.54 GCS sends an actor's creation lease to a node of its choice,
    which must send it on to the named node."""
    first = head(cluster, craylet, num_cpus=2)
    second = cluster.start_worker(raylet=craylet, num_cpus=2)
    res = run_driver(cluster, """
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy as Affinity
        @ray.remote(num_cpus=0)
        class Where:
            def node(self):
                return ray.get_runtime_context().get_node_id()
        @ray.remote(num_cpus=1)
        def node():
            return ray.get_runtime_context().get_node_id()
        nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
        actors, tasks = [], []
        for i in range(8):
            want = nodes[i % 2]
            a = Where.options(scheduling_strategy=Affinity(want, soft=False)).remote()
            actors.append(ray.get(a.node.remote()) == want)
            tasks.append(ray.get(node.options(scheduling_strategy=Affinity(want, soft=False)).remote()) == want)
        emit({"actors": actors, "tasks": tasks, "nodes": sorted(nodes)})
    """)
    assert res["nodes"] == sorted([first.node_id, second.node_id])
    assert res["actors"] == [True] * 8
    assert res["tasks"] == [True] * 8


def test_actors_are_placed_where_a_cpu_is_free(cluster, craylet):
    """A default actor is placed as if it took 1 CPU and runs on none: a
    head node without CPUs never takes it (the request is sent on to the
    node with one), and a node with its CPU free takes several."""
    head(cluster, craylet, num_cpus=0)
    second = cluster.start_worker(raylet=craylet, num_cpus=1)
    res = run_driver(cluster, """
        @ray.remote
        class Where:
            def node(self):
                return ray.get_runtime_context().get_node_id()
        actors = [Where.remote() for _ in range(6)]
        emit({"nodes": [ray.get(a.node.remote(), timeout=60) for a in actors],
              "cpu": ray.available_resources().get("CPU", 0)})
    """)
    assert res["nodes"] == [second.node_id] * 6, res
    assert res["cpu"] == 1, res
