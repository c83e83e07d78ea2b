"""Fixtures for integration tests against real Ray clusters.

    craylet          path of the binary under test ($CRAYLET_BIN, default
                     build/craylet); None when CRAYLET_BIN=stock, in which
                     case every "craylet" node runs the stock raylet.
    stock_raylet     always None: pass as raylet= to start a stock node.
    cluster_factory  make_cluster(env=None) -> helpers.Cluster; every cluster
                     made is torn down after the test (targeted kills, never
                     the machine-wide `ray stop`) and the test errors if a
                     raylet, agent or worker of it had to be SIGKILLed.
    cluster          one Cluster, same teardown.
    shim_installed   fails the test early when `ray start` lacks --raylet-path.

Run:  .venv/bin/python -m pytest tests/integration
      CRAYLET_BIN=stock .venv/bin/python -m pytest tests/integration   (harness check)

Token authentication: Ray 2.60 turns it on for every new local cluster (and
`ray start` turns it on whenever ~/.ray/auth_token exists), so the suite runs
every cluster with RAY_AUTH_MODE=token and a token of its own
(RAY_AUTH_TOKEN_PATH), set here before Ray is imported: results do not depend
on what ~/.ray holds, and craylet's side of authentication is exercised by
every test.  CRAYLET_TEST_AUTH=off runs the suite with authentication
disabled instead.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Hand-written wire formats shared with the fuzz seeds (tests/tools/).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))

import helpers  # noqa: E402

helpers.pin_authentication(os.environ.get("CRAYLET_TEST_AUTH", "on") != "off")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "serial: needs the machine to itself (a machine-wide `ray stop`, a system-wide "
        "memory threshold, /dev/shm compared before and after); `make integration-test` "
        "runs these after the rest, one at a time")


def pytest_report_header(config):
    b = helpers.craylet_bin()
    return "craylet under test: %s" % (b if b else "STOCK raylet (CRAYLET_BIN=stock)")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(scope="session")
def craylet():
    path = helpers.craylet_bin()
    if path is None:
        return None
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("craylet binary %s is missing or not executable "
                    "(build it, set CRAYLET_BIN, or CRAYLET_BIN=stock to check the harness)" % path)
    return path


@pytest.fixture(scope="session")
def stock_raylet():
    return helpers.STOCK


@pytest.fixture(scope="session")
def shim_installed():
    """The --raylet-path option comes from python_shim; fail early without it."""
    r = __import__("subprocess").run([str(helpers.RAY), "start", "--help"],
                                     capture_output=True, text=True, timeout=120)
    if "--raylet-path" not in r.stdout:
        pytest.fail("`ray start --help` has no --raylet-path: install the shim with "
                    "`make setup` (or `pip install .` at the repository root)")


@pytest.fixture
def cluster_factory(request, shim_installed):
    clusters = []

    def make(env=None):
        c = helpers.Cluster(env=env)
        clusters.append(c)
        return c

    yield make

    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    problems = []
    for c in clusters:
        if failed:
            print("---- logs of cluster %s ----\n%s" % (c.temp_dir, c.log_tail()))
        problems += ["[%s] %s" % (c.temp_dir, p) for p in c.teardown()]
    assert not problems, "cluster teardown found leftovers:\n" + "\n".join(problems)


@pytest.fixture
def cluster(cluster_factory):
    return cluster_factory()
