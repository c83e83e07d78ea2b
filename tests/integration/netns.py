"""Several hosts on one machine: Ray nodes in network namespaces.

`Hosts(n)` makes n namespaces, each with a veth pair into a bridge in the
root namespace and its own address on a private /24 (10.213.K.0/24, K
picked per run) that nothing outside these namespaces uses.  Host i is
10.213.K.(i+1); the bridge, through which the test process reaches them,
is 10.213.K.254.  No route leaves the subnet: a namespace has only its
veth and its loopback.

`HostCluster` is a `helpers.Cluster` whose head (GCS and a raylet) runs on
host 0 and whose other nodes and drivers run on the host they are given,
each with --node-ip-address set to that host's address.

Everything is removed afterwards, even when the test fails: processes
left in a namespace are killed, then the namespaces, veths and bridge are
deleted.  Needs root; where the kernel refuses namespaces the fixture
skips with the reason.
"""
import contextlib
import os
import random
import signal
import subprocess
import time
from typing import List

import helpers


def _ip(*args, check=True, ns=None):
    argv = ["ip"] + (["-n", ns] if ns else []) + [str(a) for a in args]
    r = subprocess.run(argv, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), r.stderr.strip()))
    return r


class Hosts:
    def __init__(self, count: int):
        self.tag = "cr%04x" % random.randrange(0x10000)
        # A /24 no other Hosts (of this run, or left over) has taken.
        taken = _ip("-4", "addr", check=False).stdout
        free = [o for o in range(1, 250) if "10.213.%d." % o not in taken]
        self.octet = random.choice(free)
        self.names: List[str] = []
        self.bridge = self.tag + "br"
        self._veths: List[str] = []
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", "%s/24" % self.bridge_address, "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for i in range(count):
                self._add(i)
        except Exception:
            self.close()
            raise

    @property
    def bridge_address(self) -> str:
        return "10.213.%d.254" % self.octet

    def address(self, i: int) -> str:
        return "10.213.%d.%d" % (self.octet, i + 1)

    def _add(self, i: int):
        name = "%sh%d" % (self.tag, i)
        _ip("netns", "add", name)
        self.names.append(name)
        outer, inner = "%sv%d" % (self.tag, i), "%sp%d" % (self.tag, i)
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        self._veths.append(outer)
        _ip("link", "set", inner, "netns", name)
        _ip("link", "set", outer, "master", self.bridge)
        _ip("link", "set", outer, "up")
        _ip("addr", "add", "%s/24" % self.address(i), "dev", inner, ns=name)
        _ip("link", "set", inner, "up", ns=name)
        _ip("link", "set", "lo", "up", ns=name)

    def prefix(self, i: int) -> List[str]:
        return ["ip", "netns", "exec", self.names[i]]

    def pids(self) -> List[int]:
        out = []
        for name in self.names:
            r = _ip("netns", "pids", name, check=False)
            out += [int(p) for p in r.stdout.split() if p.isdigit()]
        return out

    def close(self):
        # Whatever still runs in a namespace is this test's: kill it.
        for _ in range(3):
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.3)
        for name in self.names:
            _ip("netns", "del", name, check=False)
        for veth in self._veths:
            _ip("link", "del", veth, check=False)
        _ip("link", "del", self.bridge, check=False)
        self.names = []


def namespaces_available() -> str:
    """'' if this process may make namespaces, else why not."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    probe = "crprobe%04x" % random.randrange(0x10000)
    r = _ip("netns", "add", probe, check=False)
    if r.returncode != 0:
        return "the kernel refuses network namespaces: " + r.stderr.strip()
    _ip("netns", "del", probe, check=False)
    return ""


class HostCluster(helpers.Cluster):
    """A cluster whose nodes run on separate hosts (namespaces)."""

    def __init__(self, hosts: Hosts, env=None):
        super().__init__(env=env, name="crn")
        self.hosts = hosts
        self.exec_prefix = hosts.prefix(0)

    @property
    def gcs_address(self) -> str:
        return "%s:%d" % (self.hosts.address(0), self.gcs_port)

    @contextlib.contextmanager
    def on_host(self, i: int):
        saved = self.exec_prefix
        self.exec_prefix = self.hosts.prefix(i)
        try:
            yield
        finally:
            self.exec_prefix = saved

    def start_host(self, i: int, raylet, resources=None, num_cpus=1, object_store_memory=None,
                   extra_args=(), env=None):
        extra = ["--node-ip-address=%s" % self.hosts.address(i)] + list(extra_args)
        if object_store_memory:
            extra.append("--object-store-memory=%d" % object_store_memory)
        with self.on_host(i):
            if i == 0:
                return self.start_head(raylet=raylet, num_cpus=num_cpus, resources=resources,
                                       include_dashboard=False, extra_args=extra, env=env)
            return self.start_worker(raylet=raylet, num_cpus=num_cpus, resources=resources,
                                     extra_args=extra, env=env)
