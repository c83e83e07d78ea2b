"""Lazy import hook loaded from craylet.pth at interpreter start-up.

Only the standard library modules that are already loaded by ``site`` are used
here, so a Python process that never imports Ray pays for one small class and
one entry in ``sys.meta_path``.  When ``ray._private.services`` or
``ray.scripts.scripts`` is imported, the real loader runs first and
``craylet._patch`` is applied to the finished module.

Nothing in this file may raise out to the interpreter: a failure to install or
to patch is reported once on stderr and Ray then behaves as stock.
"""

import sys

# Modules we patch after they have been executed, and the name of the
# function in craylet._patch that does it.
_TARGETS = {
    "ray._private.services": "patch_services",
    "ray.scripts.scripts": "patch_scripts",
}

DISABLE_ENV = "CRAYLET_NO_HOOK"


def _warn(msg):
    try:
        sys.stderr.write("craylet: %s\n" % (msg,))
    except Exception:
        pass


def _apply(fullname, module):
    try:
        from craylet import _patch

        getattr(_patch, _TARGETS[fullname])(module)
    except Exception as e:  # never break the import of Ray
        _warn("could not patch %s (%s: %s); Ray runs unmodified"
              % (fullname, type(e).__name__, e))


class _PatchingLoader:
    """Delegates everything to the real loader; patches after exec_module."""

    def __init__(self, loader, fullname):
        self._craylet_loader = loader
        self._craylet_name = fullname

    def create_module(self, spec):
        create = getattr(self._craylet_loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module):
        self._craylet_loader.exec_module(module)
        _apply(self._craylet_name, module)

    def __getattr__(self, name):
        # get_source, get_filename, get_data, is_package, ... for linecache,
        # inspect, importlib.resources.
        return getattr(self._craylet_loader, name)


class CrayletFinder:
    """A meta path finder that only ever answers for the modules in _TARGETS."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _TARGETS:
            return None
        try:
            spec = None
            for finder in sys.meta_path:
                if isinstance(finder, CrayletFinder):
                    continue
                find_spec = getattr(finder, "find_spec", None)
                if find_spec is None:
                    continue
                spec = find_spec(fullname, path, target)
                if spec is not None:
                    break
            if spec is None or spec.loader is None:
                return spec
            if not hasattr(spec.loader, "exec_module"):
                return spec
            spec.loader = _PatchingLoader(spec.loader, fullname)
            return spec
        except Exception as e:
            _warn("import hook failed for %s (%s: %s)" % (fullname, type(e).__name__, e))
            return None

    # Older protocol, unused since Python 3.4; kept so pkgutil does not choke.
    def find_module(self, fullname, path=None):
        return None


def installed():
    return any(isinstance(f, CrayletFinder) for f in sys.meta_path)


def install():
    """Insert the finder at the front of sys.meta_path (idempotent).

    If a target module is already imported (the hook was installed late,
    e.g. by ``import craylet`` after ``import ray``), it is patched now.
    """
    import os

    if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
        return False
    if not installed():
        sys.meta_path.insert(0, CrayletFinder())
    for name in _TARGETS:
        mod = sys.modules.get(name)
        if mod is not None:
            _apply(name, mod)  # idempotent
    return True
