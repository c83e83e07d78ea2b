"""Patches applied to Ray modules right after they are imported.

Nothing on disk is changed.  ``ray._private.services.start_raylet`` builds the
raylet command from the module global ``RAYLET_EXECUTABLE`` at call time; we
wrap it so that, while ``RAY_RAYLET_PATH`` is set, that global names the
chosen binary for the duration of the call.  ``ray start`` gains a
``--raylet-path`` option that sets ``RAY_RAYLET_PATH`` in its own environment,
so every process it starts (and that may start raylets) inherits the choice.
"""

import functools
import os
import sys

ENV_VAR = "RAY_RAYLET_PATH"


def validate_executable(path):
    """Return the absolute path if it names an executable regular file.

    Raises ValueError with a one-line reason otherwise.
    """
    if not path:
        raise ValueError("empty path")
    if os.sep not in path:
        # A bare name, as after `pip install .`: the binary this environment
        # installed first, then $PATH, like a shell would.
        found = resolve_bare_name(path)
        if found is None:
            raise ValueError("%s is not in %s nor on $PATH" % (path, _scripts_dir()))
        return found
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.exists(full):
        raise ValueError("%s does not exist" % full)
    if not os.path.isfile(full):
        raise ValueError("%s is not a regular file" % full)
    if not os.access(full, os.X_OK):
        raise ValueError("%s is not executable" % full)
    return full


def _scripts_dir():
    import sysconfig

    return sysconfig.get_path("scripts")


def resolve_bare_name(name):
    """Absolute path of executable NAME in this environment's bin/ or on
    $PATH, or None."""
    import shutil

    for where in (_scripts_dir(), None):
        found = shutil.which(name, path=where)
        if found:
            return os.path.abspath(found)
    return None


def raylet_path_from_env(environ=None):
    """The validated RAY_RAYLET_PATH, or None when unset or empty."""
    env = os.environ if environ is None else environ
    value = env.get(ENV_VAR, "")
    if not value:
        return None
    try:
        return validate_executable(value)
    except ValueError as e:
        raise RuntimeError("%s=%r: %s" % (ENV_VAR, value, e)) from None


def _ray_version():
    try:
        from ray._version import version
    except Exception:  # an unusual install: the daemon checks again itself
        return None
    return version


def version_mismatch(path):
    """One line saying why craylet at PATH cannot serve this Ray, or None.

    ``craylet --version`` names the Ray release it was built for; the daemon
    refuses any other at start (exit 2), and saying so here, before GCS and
    friends are started, is kinder.  Binaries that are not craylet (the stock
    raylet, wrappers) are left alone."""
    import re
    import subprocess

    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10,
                             stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.match(r"craylet for Ray (\S+)", out)
    running = _ray_version()
    if not m or not running or m.group(1) == running:
        return None
    return ("craylet was built for Ray %s but Ray %s started it; rebuild it for this Ray: "
            "`make setup RAY_VERSION=%s`, or `pip install .` in this environment"
            % (m.group(1), running, running))


def _warn_name(path):
    # `ray stop`, services._is_raylet_process and the dashboard agent find the
    # raylet by "raylet" in its executable name.
    if "raylet" not in os.path.basename(path):
        sys.stderr.write(
            "craylet: warning: %s does not have 'raylet' in its name; "
            "`ray stop` and the dashboard agent will not recognise it\n" % path
        )


def patch_services(mod):
    # (Checked on the function, not a module flag: importlib.reload keeps the
    # module's dict but re-creates start_raylet.)
    if hasattr(mod.start_raylet, "_craylet_original"):
        mod._craylet_patched = True
        return
    original_start_raylet = mod.start_raylet
    mod.CRAYLET_STOCK_RAYLET_EXECUTABLE = mod.RAYLET_EXECUTABLE

    @functools.wraps(original_start_raylet)
    def start_raylet(*args, **kwargs):
        path = raylet_path_from_env()
        if path is None:
            return original_start_raylet(*args, **kwargs)
        _warn_name(path)
        why = version_mismatch(path)
        if why:
            raise RuntimeError(why)
        saved = mod.RAYLET_EXECUTABLE
        mod.RAYLET_EXECUTABLE = path
        try:
            return original_start_raylet(*args, **kwargs)
        finally:
            mod.RAYLET_EXECUTABLE = saved

    start_raylet._craylet_original = original_start_raylet
    mod.start_raylet = start_raylet
    mod._craylet_patched = True


def _raylet_path_callback(ctx, param, value):
    import click

    if value is None or value == "":
        return None
    try:
        path = validate_executable(value)
    except ValueError as e:
        raise click.BadParameter(str(e), ctx=ctx, param=param)
    why = version_mismatch(path)
    if why:
        raise click.BadParameter(why, ctx=ctx, param=param)
    return path


def patch_scripts(mod):
    import click

    cmd = getattr(mod, "start", None)
    if not isinstance(cmd, click.Command):
        raise TypeError("ray.scripts.scripts.start is not a click command")
    if any(p.name == "raylet_path" for p in cmd.params):
        mod._craylet_patched = True
        return

    option = click.Option(
        ["--raylet-path"],
        required=False,
        default=None,
        type=str,
        callback=_raylet_path_callback,
        help=(
            "Path of the raylet executable to launch instead of the raylet "
            "bundled with Ray (for example craylet). Also exported as %s to "
            "the processes this command starts." % ENV_VAR
        ),
    )
    # Put it next to the other raylet options in --help.
    index = len(cmd.params)
    for i, p in enumerate(cmd.params):
        if p.name == "node_manager_port":
            index = i + 1
            break
    cmd.params.insert(index, option)

    original_callback = cmd.callback

    @functools.wraps(original_callback)
    def callback(*args, raylet_path=None, **kwargs):
        if raylet_path:
            _warn_name(raylet_path)
            os.environ[ENV_VAR] = raylet_path
        else:
            # Check $RAY_RAYLET_PATH now, before GCS and friends are started.
            try:
                raylet_path_from_env()
            except RuntimeError as e:
                raise click.UsageError(str(e))
        return original_callback(*args, **kwargs)

    cmd.callback = callback
    mod._craylet_patched = True
