"""Harness for integration tests and benchmarks: real Ray clusters via the CLI.

Every cluster lives in its own short temp dir (Unix socket paths must stay
under 108 bytes) on its own free ports.  Each ``ray start`` runs in a new
session (setsid), so every process it leaves behind -- GCS, dashboard,
raylet/craylet, agents, workers -- can be found by session id even after it
has been re-parented to init.  Teardown is targeted: it never runs the
machine-wide ``ray stop`` (other people's clusters may share this machine).

Which raylet to run: ``CRAYLET_BIN`` (default ``<repo>/build/craylet``);
``CRAYLET_BIN=stock`` runs the stock raylet everywhere, which is how the
harness itself is validated.
"""

import atexit
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional


def _import_psutil():
    try:
        import psutil  # noqa: F401
    except ImportError:
        # ray[default] vendors psutil under ray/thirdparty_files, which is put
        # on sys.path by `import ray`; do the same without importing ray.
        import importlib.util

        spec = importlib.util.find_spec("ray")
        if spec is None or not spec.submodule_search_locations:
            raise
        tp = os.path.join(list(spec.submodule_search_locations)[0], "thirdparty_files")
        if tp not in sys.path:
            sys.path.append(tp)
    import psutil

    return psutil


psutil = _import_psutil()

REPO = Path(__file__).resolve().parents[2]
# The environment whose Ray the tests run: $CRAYLET_VENV, else the one
# running pytest (make runs it from .venv, or .venv-<version>).
VENV = Path(os.environ.get("CRAYLET_VENV") or sys.prefix)
PYTHON = VENV / "bin" / "python"
RAY = VENV / "bin" / "ray"

STOCK = None  # `raylet=STOCK`: no --raylet-path, Ray's own binary.


def craylet_bin() -> Optional[str]:
    """The craylet binary under test, or None when CRAYLET_BIN=stock."""
    value = os.environ.get("CRAYLET_BIN", "")
    if value == "stock":
        return None
    if not value:
        value = str(REPO / "build" / "craylet")
    return os.path.abspath(value)


def stock_raylet_bin() -> str:
    import importlib.util

    spec = importlib.util.find_spec("ray")
    ray_dir = list(spec.submodule_search_locations)[0]
    return os.path.join(ray_dir, "core", "src", "ray", "raylet", "raylet")


def stock_mode() -> bool:
    return craylet_bin() is None


# --------------------------------------------------------------------------
# Waiting with deadlines
# --------------------------------------------------------------------------

class WaitTimeout(AssertionError):
    pass


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value; return that value.

    Exceptions from the predicate count as "not yet".  On timeout raise
    WaitTimeout naming ``what`` and the last value or exception seen.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except Exception as e:  # noqa: BLE001 - report it on timeout
            last = e
        if time.monotonic() >= deadline:
            raise WaitTimeout("timed out after %.0fs waiting for %s; last: %r" % (timeout, what, last))
        time.sleep(interval)


# --------------------------------------------------------------------------
# Ports
# --------------------------------------------------------------------------

_handed_out = set()


def free_port() -> int:
    """A TCP port that is free now (on all addresses) and not handed out before."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port")


def worker_port_range() -> List[str]:
    """`ray start` flags giving this pytest-xdist worker its own slice of
    Ray's default worker port range (10002-19999), or none outside xdist.

    Nodes of clusters that tests run side by side would otherwise hand out
    ports from one range; a port probed free by one node can be taken by
    the other's worker before this one's binds it.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if not worker.startswith("gw") or count < 2:
        return []
    index = int(worker[2:]) % count
    width = (19999 - 10002 + 1) // count
    low = 10002 + index * width
    return ["--min-worker-port=%d" % low, "--max-worker-port=%d" % (low + width - 1)]


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connect is refused)."""
    port = free_port()
    with socket.socket() as s:
        s.settimeout(1)
        assert s.connect_ex(("127.0.0.1", port)) != 0
    return port


def is_listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((host, port)) == 0


def listening_pids(port: int) -> List[int]:
    """Pids of processes holding a LISTEN socket on ``port``."""
    pids = set()
    for proc in psutil.process_iter(["pid"]):
        try:
            conns = proc.net_connections(kind="tcp")
        except (psutil.Error, OSError):
            continue
        for c in conns:
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port:
                pids.add(proc.pid)
    return sorted(pids)


# --------------------------------------------------------------------------
# Process classification
# --------------------------------------------------------------------------

def _session_id(pid: int) -> Optional[int]:
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("latin-1")
    except OSError:
        return None
    # comm may contain spaces and parens: split after the last ')'.
    rest = data[data.rfind(")") + 2:].split()
    try:
        return int(rest[3])  # state ppid pgrp session
    except (IndexError, ValueError):
        return None


def _cmdline(proc) -> List[str]:
    try:
        return proc.cmdline()
    except (psutil.Error, OSError):
        return []


def _name(proc) -> str:
    try:
        return proc.name()
    except (psutil.Error, OSError):
        return ""


def classify(proc) -> str:
    """'raylet', 'agent', 'worker', 'gcs' or 'other' for a Ray process."""
    name = _name(proc)
    argv = _cmdline(proc)
    joined = " ".join(argv)
    exe = os.path.basename(argv[0]) if argv else ""
    if "raylet" in name or "raylet" in exe:
        return "raylet"
    if ("DashboardAgent" in name or "RuntimeEnvAgent" in name
            or "DashboardAgent" in joined or "RuntimeEnvAgent" in joined
            or "dashboard/agent.py" in joined or "runtime_env/agent/main.py" in joined):
        return "agent"
    if ("default_worker.py" in joined or "setup_worker.py" in joined
            or name.startswith("ray::") or joined.startswith("ray::")):
        return "worker"
    if "gcs_server" in name:
        return "gcs"
    return "other"


def describe(proc) -> str:
    return "pid=%d name=%s kind=%s cmd=%.160s" % (
        proc.pid, _name(proc), classify(proc), " ".join(_cmdline(proc)))


# --------------------------------------------------------------------------
# GCS access (no driver needed)
# --------------------------------------------------------------------------

_gcs_clients = {}


def pin_authentication(token: bool = True) -> None:
    """Fix this process's (and its children's) Ray token authentication.

    Ray 2.60 turns token authentication on for every new local cluster, and
    `ray start` turns it on whenever ~/.ray/auth_token exists, while this
    process talks to GCS with whatever mode it was started in.  Tests and
    benchmarks pin it instead: on, with a fresh token of their own
    (RAY_AUTH_TOKEN_PATH), or off.  Call before Ray is imported."""
    import secrets

    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        os.environ.pop(name, None)
    if not token:
        os.environ["RAY_AUTH_MODE"] = "disabled"
        return
    fd, path = tempfile.mkstemp(prefix="craylet-token-")
    os.write(fd, secrets.token_hex(32).encode())
    os.close(fd)
    atexit.register(lambda: Path(path).unlink(missing_ok=True))
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN_PATH"] = path


def auth_metadata():
    """gRPC metadata carrying the cluster's token when the suite runs with
    token authentication (see conftest.py); None otherwise."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return None
    token = os.environ.get("RAY_AUTH_TOKEN") or Path(os.environ["RAY_AUTH_TOKEN_PATH"]).read_text().strip()
    return (("authorization", "Bearer " + token),)


def _gcs_client(address: str):
    """A cached GcsClient.  Only call once the GCS port accepts connections:
    the constructor blocks for ~35s against a GCS that is not up."""
    client = _gcs_clients.get(address)
    if client is None:
        from ray._raylet import GcsClient

        host, port = address.rsplit(":", 1)
        if not is_listening(int(port), host):
            raise ConnectionRefusedError("GCS at %s is not listening" % address)
        client = GcsClient(address=address)
        _gcs_clients[address] = client
    return client


def forget_gcs(address: str):
    _gcs_clients.pop(address, None)


def gcs_nodes(address: str, timeout: float = 5) -> List[dict]:
    """The GCS node table as plain dicts (ALIVE and DEAD nodes)."""
    from ray.core.generated import gcs_pb2

    reason_enum = gcs_pb2.GcsNodeInfo.DESCRIPTOR.fields_by_name[
        "death_info"].message_type.fields_by_name["reason"].enum_type
    client = _gcs_client(address)
    reply = client.get_all_node_info(timeout=timeout)
    out = []
    for node_id, info in reply.items():
        out.append({
            "node_id": node_id.hex(),
            "state": gcs_pb2.GcsNodeInfo.GcsNodeState.Name(info.state),
            "is_head_node": info.is_head_node,
            "node_manager_address": info.node_manager_address,
            "node_manager_port": info.node_manager_port,
            "object_manager_port": info.object_manager_port,
            "raylet_socket_name": info.raylet_socket_name,
            "object_store_socket_name": info.object_store_socket_name,
            "node_name": info.node_name,
            "resources_total": dict(info.resources_total),
            "death_reason": (reason_enum.values_by_number[info.death_info.reason].name
                             if info.HasField("death_info") else None),
            "death_message": (info.death_info.reason_message
                              if info.HasField("death_info") else None),
        })
    return out


# --------------------------------------------------------------------------
# `ray status` parsing
# --------------------------------------------------------------------------

_USAGE_RE = re.compile(r"^\s*([0-9.]+)\s*/\s*([0-9.]+)\s+(\S+)\s*$")


@dataclass
class Status:
    text: str
    active_nodes: List[str]
    totals: Dict[str, float]


def parse_status(text: str) -> Status:
    """Parse `ray status` output: active node ids and resource totals.

    Totals only cover plain-number resources (CPU, GPU, custom); memory
    lines carry units and are skipped.
    """
    active = []
    totals = {}
    section = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in ("Active:", "Pending:", "Recent failures:", "Idle:"):
            section = stripped
            continue
        if stripped.startswith("Total Usage:") or stripped.startswith("Usage:"):
            section = "usage"
            continue
        if stripped.startswith("Total Constraints:") or stripped.startswith("From request_resources:") \
                or stripped.startswith("Total Demands:") or stripped.startswith("Pending Demands:"):
            section = None
            continue
        if section in ("Active:", "Idle:"):
            m = re.match(r"^\s*\d+\s+node_([0-9a-f]+)", line)
            if m:
                active.append(m.group(1))
        elif section == "usage":
            m = _USAGE_RE.match(line)
            if m:
                totals[m.group(3)] = float(m.group(2))
    return Status(text=text, active_nodes=active, totals=totals)


# --------------------------------------------------------------------------
# Clusters
# --------------------------------------------------------------------------

@dataclass
class StartResult:
    args: List[str]
    returncode: int
    stdout: str
    stderr: str
    session_id: int  # sid of everything this `ray start` left running

    def output(self) -> str:
        return "$ %s\n[rc=%d]\n--- stdout\n%s\n--- stderr\n%s" % (
            " ".join(self.args), self.returncode, self.stdout[-4000:], self.stderr[-4000:])


@dataclass
class Node:
    cluster: "Cluster"
    start: StartResult
    node_id: str
    raylet: Optional[str]  # the --raylet-path given, None for stock
    is_head: bool
    node_manager_port_flag: int = 0
    dashboard_agent_listen_port: int = 0
    _raylet_proc: object = field(default=None, repr=False)

    def info(self) -> dict:
        for n in self.cluster.nodes_table():
            if n["node_id"] == self.node_id:
                return n
        raise KeyError(self.node_id)

    def state(self) -> str:
        return self.info()["state"]

    def grpc_address(self) -> str:
        """host:port of the node manager gRPC server, as published in GCS.

        (Ray resolves a 127.0.0.1 node IP to the machine's address, so the
        published host is what to dial, not localhost.)
        """
        info = self.info()
        return "%s:%d" % (info["node_manager_address"], info["node_manager_port"])

    def raylet_process(self):
        """The raylet/craylet process of this node (found by --node_id=)."""
        if self._raylet_proc is not None and self._raylet_proc.is_running():
            return self._raylet_proc
        flag = "--node_id=" + self.node_id
        for proc in psutil.process_iter(["pid"]):
            argv = _cmdline(proc)
            if argv and "raylet" in os.path.basename(argv[0]) and flag in argv:
                self._raylet_proc = proc
                return proc
        raise LookupError("no raylet process with %s" % flag)

    def wait_state(self, state: str, timeout: float) -> dict:
        """Wait until GCS reports this node in ``state``; return its info."""
        def check():
            info = self.info()
            return info if info["state"] == state else None

        return wait_for(check, timeout, what="node %s to be %s" % (self.node_id[:8], state))


class Cluster:
    """One Ray cluster on this machine, started via the `ray` CLI."""

    def __init__(self, env: Optional[Dict[str, str]] = None, name: str = "crt"):
        self.temp_dir = tempfile.mkdtemp(prefix=name, dir="/tmp")
        self.gcs_port = free_port()
        self.dashboard_port = free_port()
        self.client_server_port = free_port()
        self.env = dict(os.environ)
        self.env.pop("RAY_RAYLET_PATH", None)  # each start says what it runs
        self.env.pop("RAY_ADDRESS", None)
        self.env.update({
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
            "PYTHONUNBUFFERED": "1",
        })
        if env:
            self.env.update(env)
        self.nodes: List[Node] = []
        self.session_ids: List[int] = []
        # (pid, create_time) of every process seen as part of this cluster, so
        # that orphans are still found after their parent died.
        self._seen = {}
        self.head: Optional[Node] = None
        self.torn_down = False
        # Prepended to every command this cluster runs (the netns harness
        # runs them inside a network namespace: `ip netns exec NAME`).
        self.exec_prefix: List[str] = []

    # ---- addresses -------------------------------------------------------

    @property
    def gcs_address(self) -> str:
        return "127.0.0.1:%d" % self.gcs_port

    # ---- running the CLI ---------------------------------------------------

    def ray(self, *args, env: Optional[Dict[str, str]] = None, timeout: float = 180,
            new_session: bool = False) -> StartResult:
        """Run the `ray` CLI; returns its exit code and output (never raises on rc)."""
        full_env = dict(self.env)
        if env:
            full_env.update(env)
        argv = self.exec_prefix + [str(RAY)] + [str(a) for a in args]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=full_env, cwd=str(REPO),
                                start_new_session=new_session, text=True)
        if new_session:
            self.session_ids.append(proc.pid)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err += "\n[harness: killed after %ss]" % timeout
        return StartResult(argv, proc.returncode, out, err, proc.pid if new_session else -1)

    def python(self, code: str, env: Optional[Dict[str, str]] = None,
               timeout: float = 180) -> StartResult:
        """Run ``python -c code`` (the venv's) in a new tracked session."""
        full_env = dict(self.env)
        if env:
            full_env.update(env)
        argv = self.exec_prefix + [str(PYTHON), "-c", code]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=full_env, cwd=str(REPO),
                                start_new_session=True, text=True)
        self.session_ids.append(proc.pid)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err += "\n[harness: killed after %ss]" % timeout
        return StartResult(argv, proc.returncode, out, err, proc.pid)

    def start_args(self, head: bool, raylet: Optional[str], num_cpus=1, num_gpus=None,
                   resources=None, extra_args: Iterable[str] = (),
                   agent_port: Optional[int] = None) -> List[str]:
        """The `ray start ...` arguments for a node of this cluster.

        Every node gets its own dashboard-agent listen port (the default,
        52365, is fixed and would clash between nodes on one machine); the
        other per-node ports are 0 or left to Ray, which picks free ones.
        """
        if agent_port is None:
            agent_port = free_port()
        args = ["start", "--disable-usage-stats",
                "--node-manager-port=0", "--object-manager-port=0",
                "--dashboard-agent-listen-port=%d" % agent_port,
                "--object-store-memory=%d" % (128 * 1024 * 1024)] + worker_port_range()
        if head:
            args += ["--head", "--port=%d" % self.gcs_port, "--temp-dir=%s" % self.temp_dir,
                     "--ray-client-server-port=%d" % self.client_server_port]
        else:
            args += ["--address=%s" % self.gcs_address]
        if num_cpus is not None:
            args.append("--num-cpus=%s" % num_cpus)
        if num_gpus is not None:
            args.append("--num-gpus=%s" % num_gpus)
        if resources:
            args.append("--resources=%s" % json.dumps(resources))
        if raylet is not None:
            args.append("--raylet-path=%s" % raylet)
        return args + list(extra_args)

    def ray_popen(self, *args, env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
        """Start the `ray` CLI in a new tracked session without waiting for it."""
        full_env = dict(self.env)
        if env:
            full_env.update(env)
        argv = self.exec_prefix + [str(RAY)] + [str(a) for a in args]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=full_env, cwd=str(REPO),
                                start_new_session=True, text=True)
        self.session_ids.append(proc.pid)
        return proc

    def _start(self, head: bool, raylet: Optional[str], num_cpus, num_gpus, resources,
               extra_args, env, check, timeout, runs: Optional[str] = None) -> Optional[Node]:
        agent_port = free_port()
        args = self.start_args(head, raylet, num_cpus, num_gpus, resources, extra_args,
                               agent_port=agent_port)

        before = set()
        if not head:
            before = {n["node_id"] for n in self.nodes_table()}
        result = self.ray(*args, env=env, timeout=timeout, new_session=True)
        self.snapshot()
        if result.returncode != 0:
            if check:
                raise AssertionError("ray start failed\n" + result.output())
            return None
        # The node that appeared in the table is the one just started.
        new = wait_for(lambda: [n for n in self.nodes_table()
                                if n["node_id"] not in before and n["state"] == "ALIVE"
                                and n["node_id"] not in {x.node_id for x in self.nodes}],
                       30, what="the new node in the GCS node table")
        if head:
            new = [n for n in new if n["is_head_node"]] or new
        node = Node(self, result, new[0]["node_id"], raylet, head,
                    dashboard_agent_listen_port=agent_port)
        self._assert_runs(node, raylet, env, runs)
        self.nodes.append(node)
        if head:
            self.head = node
        self.snapshot()
        return node

    @staticmethod
    def _assert_runs(node: "Node", raylet: Optional[str], env: Optional[Dict[str, str]],
                     runs: Optional[str] = None):
        """No test may pass by silently falling back to another raylet: the
        node's process is the binary asked for (a wrapper script may exec
        the craylet under test), or the stock raylet when none was.  `runs`
        names the binary outright (a wrapper that execs something else)."""
        asked = raylet or (env or {}).get("RAY_RAYLET_PATH")
        running = os.path.realpath(_cmdline(node.raylet_process())[0])
        if runs:
            allowed = {os.path.realpath(runs)}
        elif asked:
            allowed = {os.path.realpath(asked)}
            if craylet_bin():
                allowed.add(os.path.realpath(craylet_bin()))
        else:
            allowed = {os.path.realpath(stock_raylet_bin())}
        assert running in allowed, "node %s runs %s, expected one of %s" % (
            node.node_id, running, sorted(allowed))

    def start_head(self, raylet: Optional[str] = STOCK, num_cpus=1, num_gpus=None, resources=None,
                   include_dashboard: bool = True, extra_args: Iterable[str] = (),
                   env: Optional[Dict[str, str]] = None, check: bool = True,
                   timeout: float = 180, runs: Optional[str] = None) -> Node:
        extra = ["--include-dashboard=%s" % ("true" if include_dashboard else "false")]
        if include_dashboard:
            extra.append("--dashboard-port=%d" % self.dashboard_port)
        return self._start(True, raylet, num_cpus, num_gpus, resources,
                           extra + list(extra_args), env, check, timeout, runs=runs)

    def start_worker(self, raylet: Optional[str] = STOCK, num_cpus=1, num_gpus=None,
                     resources=None, extra_args: Iterable[str] = (),
                     env: Optional[Dict[str, str]] = None, check: bool = True,
                     timeout: float = 180) -> Node:
        return self._start(False, raylet, num_cpus, num_gpus, resources,
                           list(extra_args), env, check, timeout)

    # ---- what a user sees --------------------------------------------------

    def nodes_table(self) -> List[dict]:
        return gcs_nodes(self.gcs_address)

    def status(self) -> Status:
        r = self.ray("status", "--address=%s" % self.gcs_address, timeout=60)
        if r.returncode != 0:
            raise AssertionError("ray status failed\n" + r.output())
        return parse_status(r.stdout)

    def wait_status(self, predicate, timeout: float = 60, what="ray status") -> Status:
        """Poll `ray status` until predicate(Status) holds; return that Status."""
        last = {}

        def check():
            s = self.status()
            last["s"] = s
            return s if predicate(s) else None

        try:
            return wait_for(check, timeout, interval=1.0, what=what)
        except WaitTimeout as e:
            s = last.get("s")
            raise WaitTimeout("%s\nlast ray status output:\n%s" % (e, s.text if s else "<none>"))

    def list_nodes(self) -> List[dict]:
        """`ray list nodes --format=json` (state API through the dashboard)."""
        r = self.ray("list", "nodes", "--address=%s" % self.gcs_address,
                     "--format=json", "--detail", timeout=60)
        if r.returncode != 0:
            raise AssertionError("ray list nodes failed\n" + r.output())
        start = r.stdout.find("[")
        return json.loads(r.stdout[start:])

    # ---- processes ---------------------------------------------------------

    def processes(self) -> list:
        """Live processes of this cluster: by session, temp dir in argv, or seen before."""
        sids = set(self.session_ids)
        found = {}
        for proc in psutil.process_iter(["pid"]):
            pid = proc.pid
            try:
                ctime = proc.create_time()
            except (psutil.Error, OSError):
                continue
            if _session_id(pid) in sids or (pid, ctime) in self._seen:
                found[pid] = proc
                continue
            if self.temp_dir in " ".join(_cmdline(proc)):
                found[pid] = proc
        # Descendants of what we found (in case something called setsid).
        for proc in list(found.values()):
            try:
                for child in proc.children(recursive=True):
                    found.setdefault(child.pid, child)
            except (psutil.Error, OSError):
                pass
        alive = []
        for proc in found.values():
            try:
                if proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
            except (psutil.Error, OSError):
                pass
        return alive

    def snapshot(self):
        for proc in self.processes():
            try:
                self._seen[(proc.pid, proc.create_time())] = classify(proc)
            except (psutil.Error, OSError):
                pass

    def leftovers(self, kinds=("raylet", "agent", "worker")) -> list:
        return [p for p in self.processes() if classify(p) in kinds]

    def wait_no_leftovers(self, timeout: float = 30, kinds=("raylet", "agent", "worker")):
        """Wait until no process of ``kinds`` is left; return the survivors (empty on success)."""
        try:
            wait_for(lambda: not self.leftovers(kinds), timeout, what="cluster processes to exit")
            return []
        except WaitTimeout:
            return self.leftovers(kinds)

    # ---- stopping ------------------------------------------------------------

    @staticmethod
    def _signal(procs, sig):
        for p in procs:
            try:
                p.send_signal(sig)
            except (psutil.Error, OSError):
                pass

    @staticmethod
    def _wait_gone(procs, timeout: float) -> None:
        """Until every process has exited (a zombie counts as gone: its
        parent, `ray start` long since exited, is not ours to reap it).
        psutil.wait_procs would sit out seconds on such processes."""
        deadline = time.monotonic() + timeout
        left = list(procs)
        while left and time.monotonic() < deadline:
            still = []
            for proc in left:
                try:
                    if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                        still.append(proc)
                except (psutil.Error, OSError):
                    pass
            left = still
            if left:
                time.sleep(0.05)

    def stop(self, grace: float = 20) -> List[str]:
        """Targeted `ray stop`: SIGTERM raylets, then the rest, then GCS; SIGKILL after grace.

        Returns descriptions of raylet/agent/worker processes that had to be
        SIGKILLed (they did not go when their raylet was stopped).
        """
        self.snapshot()
        procs = self.processes()
        raylets = [p for p in procs if classify(p) == "raylet"]
        self._signal(raylets, signal.SIGTERM)
        self._wait_gone(raylets, grace / 2)
        # Agents and workers should follow their raylet by themselves.
        try:
            wait_for(lambda: not [p for p in self.processes() if classify(p) in ("agent", "worker")],
                     grace / 2, what="agents and workers to follow their raylet")
        except WaitTimeout:
            pass
        stubborn = [describe(p) for p in self.processes() if classify(p) in ("raylet", "agent", "worker")]
        rest = [p for p in self.processes() if classify(p) != "gcs"]
        self._signal(rest, signal.SIGTERM)
        self._wait_gone(rest, 5)
        gcs = [p for p in self.processes()]
        self._signal(gcs, signal.SIGTERM)
        self._wait_gone(gcs, 5)
        remaining = self.processes()
        self._signal(remaining, signal.SIGKILL)
        self._wait_gone(remaining, 5)
        return stubborn

    def teardown(self) -> List[str]:
        """Stop everything; return problems (empty list when clean)."""
        if self.torn_down:
            return []
        self.torn_down = True
        problems = ["not stopped by SIGTERM of its raylet: " + d for d in self.stop()]
        forget_gcs(self.gcs_address)
        still = self.processes()
        problems += ["survived SIGKILL: " + describe(p) for p in still]
        if not problems and not os.environ.get("CRAYLET_KEEP_TEMP"):
            shutil.rmtree(self.temp_dir, ignore_errors=True)
        return problems

    def log_tail(self, pattern: str = "raylet*", lines: int = 40) -> str:
        out = []
        for path in sorted(Path(self.temp_dir).glob("session_*/logs/" + pattern)):
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            out.append("==> %s <==\n%s" % (path, "\n".join(text)))
        return "\n".join(out)


# Substrings of argv that `ray stop` matches (RAY_PROCESSES in Ray).
_RAY_STOP_ARGV_KEYS = ("monitor.py", "ray.util.client.server", "default_worker.py",
                       "setup_worker.py", "log_monitor.py", "dashboard/dashboard.py",
                       "ray_process_reaper.py", "dashboard/agent.py",
                       "runtime_env/agent/main.py")


def foreign_ray_processes(clusters: Iterable[Cluster]) -> list:
    """Ray processes on this machine that belong to none of ``clusters``.

    Used to refuse running the machine-wide `ray stop` when it would hit
    someone else's cluster.
    """
    ours = set()
    for c in clusters:
        ours |= {p.pid for p in c.processes()}
    out = []
    for proc in psutil.process_iter(["pid"]):
        if proc.pid in ours or proc.pid == os.getpid():
            continue
        joined = " ".join(_cmdline(proc))
        if (classify(proc) != "other"
                or _name(proc).startswith("ray-dashboard")
                or any(k in joined for k in _RAY_STOP_ARGV_KEYS)):
            out.append(proc)
    return out


# --------------------------------------------------------------------------
# Running the daemon directly (bad-input tests)
# --------------------------------------------------------------------------

def random_hex_id(nbytes: int = 28) -> str:
    return "%0*x" % (nbytes * 2, random.getrandbits(nbytes * 8))


def direct_raylet_argv(binary: str, temp_dir: str, gcs_address: str, **overrides) -> List[str]:
    """A complete raylet argv like the one services.start_raylet builds.

    ``overrides`` replace (or, with value None, drop) flags by name, e.g.
    ``node_manager_port="abc"``.
    """
    session = os.path.join(temp_dir, "session_direct")
    for sub in ("sockets", "logs", "runtime_resources"):
        os.makedirs(os.path.join(session, sub), exist_ok=True)
    agent = subprocess.list2cmdline([str(PYTHON), "-c", "import sys; sys.stdin.read()"])
    flags = {
        "raylet_socket_name": os.path.join(session, "sockets", "raylet"),
        "store_socket_name": os.path.join(session, "sockets", "plasma_store"),
        "object_manager_port": "0",
        "min_worker_port": "0",
        "max_worker_port": "0",
        "node_manager_port": "0",
        "node_id": random_hex_id(),
        "node_ip_address": "127.0.0.1",
        "maximum_startup_concurrency": "1",
        "static_resource_list": "CPU,1,memory,1000000000,object_store_memory,100000000,node:127.0.0.1,1.0",
        "python_worker_command": subprocess.list2cmdline([str(PYTHON), "-c", "pass"]),
        "java_worker_command": "",
        "cpp_worker_command": "",
        "native_library_path": "",
        "temp_dir": temp_dir,
        "session_dir": session,
        "log_dir": os.path.join(session, "logs"),
        "resource_dir": os.path.join(session, "runtime_resources"),
        "metrics-agent-port": "0",
        "metrics_export_port": "0",
        "runtime_env_agent_port": "0",
        "object_store_memory": "100000000",
        "plasma_directory": temp_dir,
        "fallback_directory": temp_dir,
        "ray-debugger-external": "0",
        "gcs-address": gcs_address,
        "session-name": "session_direct",
        "labels": "{}",
        "cluster-id": random_hex_id(),
        "num_prestart_python_workers": "0",
        "dashboard_agent_command": agent,
        "runtime_env_agent_command": agent,
    }
    for k, v in overrides.items():
        key = k
        if key not in flags:
            alt = key.replace("_", "-") if "_" in key else key.replace("-", "_")
            key = alt if alt in flags else k
        if v is None:
            flags.pop(key, None)
        else:
            flags[key] = str(v)
    return [binary] + ["--%s=%s" % (k, v) for k, v in flags.items()]


# --------------------------------------------------------------------------
# grpc.health.v1 by hand (no grpcio-health-checking needed)
# --------------------------------------------------------------------------

HEALTH_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode_health_request(service: str) -> bytes:
    data = service.encode()
    return b"\x0a" + _varint(len(data)) + data if data else b""


def decode_health_response(data: bytes) -> int:
    """Return field 1 (status enum) of a HealthCheckResponse; 0 if absent."""
    i = 0
    status = 0
    while i < len(data):
        key = 0
        shift = 0
        while True:
            b = data[i]
            i += 1
            key |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        field_no, wire = key >> 3, key & 7
        if wire == 0:
            val = 0
            shift = 0
            while True:
                b = data[i]
                i += 1
                val |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            if field_no == 1:
                status = val
        elif wire == 2:
            ln = 0
            shift = 0
            while True:
                b = data[i]
                i += 1
                ln |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            i += ln
        elif wire == 5:
            i += 4
        elif wire == 1:
            i += 8
        else:
            raise ValueError("bad wire type %d" % wire)
    return status


def health_check(address: str, service: str, timeout: float = 5) -> str:
    """grpc.health.v1.Health/Check; returns 'SERVING', 'NOT_SERVING', ...

    Raises grpc.RpcError when the call fails.
    """
    import grpc

    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=None,
            response_deserializer=None,
        )
        reply = call(encode_health_request(service), timeout=timeout)
    return HEALTH_STATUS.get(decode_health_response(reply), "?")
