"""A one-node Ray cluster on craylet, end to end: `python -m craylet.demo`.

Starts a head node with ``ray start --head --raylet-path=...`` in a fresh
temp dir on free ports, shows ``ray status``, runs a small driver against it
(tasks, then ``ray.put``/``ray.get``), and stops that cluster again -- only
its own processes (everything in the session ``ray start`` ran in), never the
machine-wide ``ray stop``.  ``--keep`` leaves it running instead.

Exit status 0 when the node came up and the driver's results were right.
"""

import argparse
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


def main(argv=None):
    import craylet

    ap = argparse.ArgumentParser(prog="python -m craylet.demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--raylet-path", default=None,
                    help="raylet binary (default: craylet.find_binary())")
    ap.add_argument("--num-cpus", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="leave the cluster running")
    ap.add_argument("--driver-timeout", type=float, default=120)
    args = ap.parse_args(argv)

    raylet = args.raylet_path or craylet.find_binary()
    temp_dir = tempfile.mkdtemp(prefix="crd", dir="/tmp")
    port = _free_port()
    address = "127.0.0.1:%d" % port
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    env.pop("RAY_ADDRESS", None)
    cmd = [_ray_cli(), "start", "--head", "--raylet-path=%s" % raylet,
           "--port=%d" % port, "--temp-dir=%s" % temp_dir,
           "--num-cpus=%d" % args.num_cpus, "--include-dashboard=false",
           "--disable-usage-stats", "--object-store-memory=%d" % (128 << 20),
           "--dashboard-agent-listen-port=%d" % _free_port(),
           "--ray-client-server-port=%d" % _free_port()]
    print("$ " + " ".join(cmd), flush=True)
    start = subprocess.Popen(cmd, env=env, start_new_session=True, stdin=subprocess.DEVNULL)
    sid = start.pid
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
        if args.keep:
            print("cluster left running at %s (temp dir %s); stop it with: "
                  "kill -TERM -- $(ps -o pid= -s %d)" % (address, temp_dir, sid))
        else:
            left = stop_session(sid)
            if left:
                print("could not stop pids %s" % left)
                ok = False
            if ok:
                shutil.rmtree(temp_dir, ignore_errors=True)
            else:
                print("logs kept in %s" % temp_dir)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
