"""A one-node Ray cluster on craylet, end to end: `python -m craylet.demo`.

Starts a head node with ``ray start --head --raylet-path=...`` in a fresh
temp dir on free ports, shows ``ray status``, runs a small driver against it
(tasks, then ``ray.put``/``ray.get``), and stops that cluster again -- only
its own processes (everything in the session ``ray start`` ran in), never the
machine-wide ``ray stop``.  ``--keep`` leaves it running instead.

Then the GPU part: a simulated 8-GPU node (``--num-gpus=8`` with the
``nvidia-smi topo -m`` file shipped in craylet/topologies, NVLink pairs
0-1, 2-3, 4-5, 6-7) receives the same sequence of placement groups twice,
once on the stock raylet and once on craylet, and the GPUs each bundle got
(read with ``ray.get_gpu_ids()`` inside it) are printed side by side with
their NVLink scores.  ``--no-gpu-demo`` skips it.

Exit status 0 when the nodes came up and the drivers' results were right.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

DRIVER = r"""
import sys, ray
ray.init(address=sys.argv[1])
@ray.remote
def square(x):
    return x * x
print("tasks:", ray.get([square.remote(i) for i in range(8)]))
ref = ray.put(list(range(1000)))
print("object store:", sum(ray.get(ref)))
print("nodes:", [(n["NodeID"][:8], n["Alive"], n["Resources"].get("CPU")) for n in ray.nodes()])
ray.shutdown()
"""
DRIVER_EXPECT = ("tasks: [0, 1, 4, 9, 16, 25, 36, 49]", "object store: 499500")


def _free_port():
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _ray_cli():
    return os.path.join(os.path.dirname(sys.executable), "ray")


def _session_of(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
        return int(data[data.rfind(")") + 2:].split()[3])
    except (OSError, ValueError, IndexError):
        return None


def _session_pids(sid):
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid() and _session_of(int(name)) == sid:
            out.append(int(name))
    return out


def _comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def _wait_gone(pids, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [p for p in pids if os.path.exists("/proc/%d" % p)
                and _state(p) not in ("Z", "X")]
        if not pids:
            return []
        time.sleep(0.2)
    return pids


def _state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
        return data[data.rfind(")") + 2:].split()[0]
    except OSError:
        return "X"


def stop_session(sid):
    """SIGTERM the raylet(s) of the session, then the rest; SIGKILL stragglers."""
    raylets = [p for p in _session_pids(sid) if "raylet" in _comm(p)]
    for p in raylets:
        os.kill(p, signal.SIGTERM)
    _wait_gone(raylets, 10)
    rest = _session_pids(sid)
    for p in rest:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    left = _wait_gone(rest, 10)
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return _wait_gone(left, 5)


# Placement groups one after another, each held while the next comes: GPUs
# per bundle, strategy.
GANGS = [(1, 1, "PACK"), (2, 1, "STRICT_PACK"), (2, 1, "STRICT_PACK"), (1, 1, "PACK"), (2, 1, "STRICT_PACK")]

GPU_DRIVER = r"""
import json, sys, ray
from ray.util.placement_group import placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
ray.init(address=sys.argv[1])
gangs = json.loads(sys.argv[2])

@ray.remote(num_cpus=0)
class InBundle:
    def gpus(self):
        return ray.get_gpu_ids()

held, out = [], []
for bundles, gpus, strategy in gangs:
    # Detached: they outlive this driver, so `craylet topo --session` shows them.
    pg = placement_group([{"GPU": gpus}] * bundles, strategy=strategy, lifetime="detached")
    ray.get(pg.ready(), timeout=60)
    actors = [InBundle.options(num_gpus=gpus, scheduling_strategy=PlacementGroupSchedulingStrategy(
        pg, placement_group_bundle_index=i)).remote() for i in range(bundles)]
    out.append(sorted(g for ids in ray.get([a.gpus.remote() for a in actors], timeout=120) for g in ids))
    held.append((pg, actors))
print("GANGS " + json.dumps(out))
ray.shutdown()
"""


def topology_path(name):
    """A sample ``nvidia-smi topo -m`` file shipped with craylet."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "topologies", name + ".txt")


def _nvlinks(path):
    """Bonded NVLinks per GPU pair, read from a topo -m file."""
    links, header = {}, None
    for line in open(path):
        cells = line.split()
        if not cells:
            if header:
                break
            continue
        if header is None:
            header = [c for c in cells if c.startswith("GPU") and c[3:].isdigit()]
            continue
        if cells[0] in header:
            a = int(cells[0][3:])
            for b, cell in enumerate(cells[1:1 + len(header)]):
                if cell.startswith("NV"):
                    links[(a, b)] = int(cell[2:])
    return links


def _score(links, gpus):
    return sum(links.get((a, b), 0) for i, a in enumerate(gpus) for b in gpus[i + 1:])


def _match_authentication(env):
    """Ray 2.60's `ray start` turns token authentication on whenever a token
    is at hand (~/.ray/auth_token, RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH), but a
    driver only uses it when RAY_AUTH_MODE=token: say so for both."""
    if env.get("RAY_AUTH_MODE"):
        return
    if (env.get("RAY_AUTH_TOKEN") or env.get("RAY_AUTH_TOKEN_PATH")
            or os.path.exists(os.path.expanduser("~/.ray/auth_token"))):
        env["RAY_AUTH_MODE"] = "token"


def _start_head(raylet, num_cpus, env, extra=(), quiet=False):
    temp_dir = tempfile.mkdtemp(prefix="crd", dir="/tmp")
    port = _free_port()
    cmd = [_ray_cli(), "start", "--head"]
    if raylet:
        cmd.append("--raylet-path=%s" % raylet)
    cmd += ["--port=%d" % port, "--temp-dir=%s" % temp_dir,
            "--num-cpus=%d" % num_cpus, "--include-dashboard=false",
            "--disable-usage-stats", "--object-store-memory=%d" % (128 << 20),
            "--dashboard-agent-listen-port=%d" % _free_port(),
            "--ray-client-server-port=%d" % _free_port()] + list(extra)
    print("$ " + " ".join(cmd), flush=True)
    out = subprocess.DEVNULL if quiet else None
    start = subprocess.Popen(cmd, env=env, start_new_session=True, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=out)
    return start, "127.0.0.1:%d" % port, temp_dir


def _finish(sid, temp_dir, ok, keep, address):
    if keep:
        print("cluster left running at %s (temp dir %s); stop it with: "
              "kill -TERM -- $(ps -o pid= -s %d)" % (address, temp_dir, sid))
        return ok
    left = stop_session(sid)
    if left:
        print("could not stop pids %s" % left)
        ok = False
    if ok:
        shutil.rmtree(temp_dir, ignore_errors=True)
    else:
        print("logs kept in %s" % temp_dir)
    return ok


def gpu_demo(raylet, env, timeout):
    """The same gang sequence on a simulated 8-GPU node, stock then craylet."""
    topo = topology_path("pcie-nvlink-pairs-8")
    links = _nvlinks(topo)
    print("\n== GPU gangs on a simulated 8-GPU node (%s) ==" % os.path.basename(topo), flush=True)
    subprocess.run([raylet, "topo", "--topology", topo], timeout=30)
    results = {}
    for who in ("stock", "craylet"):
        node_env = dict(env, CRAYLET_GPU_TOPOLOGY=topo)
        if who == "stock":
            node_env.pop("RAY_RAYLET_PATH", None)
        start, address, temp_dir = _start_head(raylet if who == "craylet" else None, 2, node_env,
                                               ["--num-gpus=8"], quiet=True)
        ok = False
        try:
            if start.wait(timeout=300) != 0:
                print("ray start failed (logs: %s)" % temp_dir)
                continue
            r = subprocess.run([sys.executable, "-c", GPU_DRIVER, address, json.dumps(GANGS)], env=env,
                               capture_output=True, text=True, timeout=timeout)
            got = [line[6:] for line in r.stdout.splitlines() if line.startswith("GANGS ")]
            if r.returncode == 0 and got:
                results[who] = json.loads(got[-1])
                ok = True
            else:
                sys.stdout.write(r.stdout[-2000:] + r.stderr[-3000:])
            if who == "craylet" and ok:
                subprocess.run([raylet, "topo", "--session", os.path.join(temp_dir, "session_latest")],
                               timeout=30)
        except subprocess.TimeoutExpired:
            print("GPU driver did not finish within %.0fs" % timeout)
        finally:
            _finish(start.pid, temp_dir, ok, False, address)
    if len(results) != 2:
        return False
    print("\n%-6s %-24s %-14s %-6s %-14s %-6s" % ("gang", "bundles", "stock GPUs", "NVLink", "craylet GPUs",
                                                  "NVLink"))
    totals = [0, 0, 0]
    for i, (bundles, gpus, strategy) in enumerate(GANGS):
        s, c = results["stock"][i], results["craylet"][i]
        best = max(_score(links, s), _score(links, c))
        totals[0] += _score(links, s)
        totals[1] += _score(links, c)
        totals[2] += best
        print("%-6d %-24s %-14s %-6d %-14s %-6d" % (i + 1, "%d x %d GPU %s" % (bundles, gpus, strategy),
                                                 ",".join(map(str, s)), _score(links, s),
                                                 ",".join(map(str, c)), _score(links, c)))
    print("%-6s %-24s %-14s %-6d %-14s %-6d" % ("total", "", "", totals[0], "", totals[1]))
    print("NVLink score: bonded NVLinks summed over each gang's GPU pairs (NV4 per pair here); "
          "stock Ray hands out the lowest free GPU ids.")
    return totals[1] >= totals[0]


def main(argv=None):
    import craylet

    ap = argparse.ArgumentParser(prog="python -m craylet.demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--raylet-path", default=None,
                    help="raylet binary (default: craylet.find_binary())")
    ap.add_argument("--num-cpus", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="leave the cluster running")
    ap.add_argument("--driver-timeout", type=float, default=120)
    ap.add_argument("--no-gpu-demo", action="store_true", help="skip the simulated GPU node")
    args = ap.parse_args(argv)

    raylet = args.raylet_path or craylet.find_binary()
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    env.pop("RAY_ADDRESS", None)
    _match_authentication(env)
    start, address, temp_dir = _start_head(raylet, args.num_cpus, env)
    ok = False
    try:
        rc = start.wait(timeout=300)
        if rc != 0:
            print("ray start failed with exit status %d (logs: %s)" % (rc, temp_dir))
            return 1
        # The autoscaler monitor reports a moment after the node is up.
        deadline = time.monotonic() + 60
        while True:
            st = subprocess.run([_ray_cli(), "status", "--address=%s" % address], env=env,
                                capture_output=True, text=True, timeout=120)
            if "Resources" in st.stdout or time.monotonic() > deadline:
                break
            time.sleep(1)
        sys.stdout.write(st.stdout)
        print("$ python <driver> %s" % address, flush=True)
        try:
            r = subprocess.run([sys.executable, "-c", DRIVER, address], env=env,
                               capture_output=True, text=True, timeout=args.driver_timeout)
            sys.stdout.write(r.stdout)
            if r.returncode != 0:
                sys.stdout.write(r.stderr[-3000:])
            ok = r.returncode == 0 and all(e in r.stdout for e in DRIVER_EXPECT)
        except subprocess.TimeoutExpired:
            print("driver did not finish within %.0fs" % args.driver_timeout)
        print("demo %s" % ("OK" if ok else "FAILED"))
    finally:
        ok = _finish(start.pid, temp_dir, ok, args.keep, address)
    if ok and not args.keep and not args.no_gpu_demo:
        ok = gpu_demo(raylet, env, args.driver_timeout)
        print("GPU demo %s" % ("OK" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
