"""craylet: run Ray with the craylet daemon in place of the stock raylet.

Installing this package puts ``craylet.pth`` in site-packages.  It adds a lazy
import hook (see ``craylet._hook``) so that:

* ``ray start --raylet-path=PATH`` launches PATH as the raylet;
* ``RAY_RAYLET_PATH=PATH`` does the same for ``ray start`` and ``ray.init()``.

With neither set Ray behaves exactly as stock.  Set ``CRAYLET_NO_HOOK=1`` to
keep the hook out of a process entirely.

This module imports nothing heavy; the helpers below are for tests and
benchmarks.
"""

import os

__version__ = "0.1.0"

ENV_VAR = "RAY_RAYLET_PATH"
BIN_ENV_VAR = "CRAYLET_BIN"

__all__ = [
    "ENV_VAR",
    "BIN_ENV_VAR",
    "find_binary",
    "stock_raylet_path",
    "raylet_path_from_env",
    "hook_installed",
    "install_hook",
]


def _ray_package_dir():
    import importlib.util

    spec = importlib.util.find_spec("ray")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the ray package is not importable")
    return list(spec.submodule_search_locations)[0]


def stock_raylet_path():
    """Path of the raylet binary shipped in the installed Ray wheel.

    Computed without importing ray.
    """
    return os.path.join(_ray_package_dir(), "core", "src", "ray", "raylet", "raylet")


def find_binary(required=True):
    """Locate the craylet binary.

    Order: $CRAYLET_BIN; ``build/craylet`` in the current directory or any
    parent; ``build/craylet`` next to this package's source tree (editable
    installs); ``craylet`` on $PATH.  Returns an absolute path, or None (or
    raises FileNotFoundError when ``required``) if nothing executable is found.
    """
    import shutil

    candidates = []
    env = os.environ.get(BIN_ENV_VAR)
    if env:
        candidates.append(env)
    here = os.getcwd()
    while True:
        candidates.append(os.path.join(here, "build", "craylet"))
        parent = os.path.dirname(here)
        if parent == here:
            break
        here = parent
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    candidates.append(os.path.join(src, "build", "craylet"))
    on_path = shutil.which("craylet")
    if on_path:
        candidates.append(on_path)
    for c in candidates:
        c = os.path.abspath(c)
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    if env and required:
        raise FileNotFoundError("%s=%s is not an executable file" % (BIN_ENV_VAR, env))
    if required:
        raise FileNotFoundError("craylet binary not found (set %s)" % BIN_ENV_VAR)
    return None


def raylet_path_from_env(environ=None):
    """The validated $RAY_RAYLET_PATH, None when unset; RuntimeError if bad."""
    from craylet._patch import raylet_path_from_env as f

    return f(environ)


def hook_installed():
    """True when the import hook is active in this interpreter."""
    from craylet import _hook

    return _hook.installed()


def install_hook():
    """Install the hook by hand (for interpreters started with -S)."""
    from craylet import _hook

    return _hook.install()
