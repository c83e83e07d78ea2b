"""A minimal in-tree PEP 517 / PEP 660 build backend for the craylet shim.

Why not setuptools: the wheel must carry ``craylet.pth`` at its root (so it
lands directly in site-packages), it must build with no network and no
``wheel`` package, and an editable install must carry the same hook.  The
package is three pure-Python files, so writing the wheel by hand is simpler
than teaching a general backend to do that.
"""

import base64
import hashlib
import io
import os
import tarfile
import tomllib
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "craylet"
PTH_NAME = "craylet.pth"
# One line: site.py exec()s lines that start with "import".  Any failure is
# swallowed so a broken install can never stop Python from starting.
HOOK_LINE = (
    'import sys; exec("try:\\n import craylet._hook as _h\\n _h.install()\\n'
    'except Exception:\\n pass")\n'
)


def _project():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]


def _dist_info_name():
    p = _project()
    return "%s-%s.dist-info" % (p["name"].replace("-", "_"), p["version"])


def _metadata():
    p = _project()
    lines = [
        "Metadata-Version: 2.1",
        "Name: %s" % p["name"],
        "Version: %s" % p["version"],
        "Summary: %s" % p.get("description", ""),
        "Requires-Python: %s" % p.get("requires-python", ">=3.9"),
    ]
    return "\n".join(lines) + "\n"


def _wheel_file():
    return (
        "Wheel-Version: 1.0\n"
        "Generator: craylet_backend\n"
        "Root-Is-Purelib: true\n"
        "Tag: py3-none-any\n"
    )


def _package_files():
    out = []
    pkg_dir = os.path.join(ROOT, PACKAGE)
    for name in sorted(os.listdir(pkg_dir)):
        if name.endswith(".py"):
            with open(os.path.join(pkg_dir, name), "rb") as f:
                out.append(("%s/%s" % (PACKAGE, name), f.read()))
    return out


def _record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _write_wheel(wheel_directory, files):
    p = _project()
    dist_info = _dist_info_name()
    files = list(files) + [
        (dist_info + "/METADATA", _metadata().encode()),
        (dist_info + "/WHEEL", _wheel_file().encode()),
        (dist_info + "/top_level.txt", (PACKAGE + "\n").encode()),
    ]
    record_lines = ["%s,%s,%d" % (n, _record_hash(d), len(d)) for n, d in files]
    record_lines.append(dist_info + "/RECORD,,")
    files.append((dist_info + "/RECORD", ("\n".join(record_lines) + "\n").encode()))
    name = "%s-%s-py3-none-any.whl" % (p["name"].replace("-", "_"), p["version"])
    path = os.path.join(wheel_directory, name)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for n, d in files:
            info = zipfile.ZipInfo(n, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, d)
    return name


def _write_metadata_dir(metadata_directory):
    dist_info = _dist_info_name()
    d = os.path.join(metadata_directory, dist_info)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "METADATA"), "w") as f:
        f.write(_metadata())
    with open(os.path.join(d, "WHEEL"), "w") as f:
        f.write(_wheel_file())
    return dist_info


# ---- PEP 517 hooks ---------------------------------------------------------

def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    return _write_metadata_dir(metadata_directory)


def prepare_metadata_for_build_editable(metadata_directory, config_settings=None):
    return _write_metadata_dir(metadata_directory)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = _package_files() + [(PTH_NAME, HOOK_LINE.encode())]
    return _write_wheel(wheel_directory, files)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    # The first line puts the source tree on sys.path, the second installs
    # the hook from there: edits to craylet/*.py take effect at once.
    pth = ROOT + "\n" + HOOK_LINE
    return _write_wheel(wheel_directory, [(PTH_NAME, pth.encode())])


def build_sdist(sdist_directory, config_settings=None):
    p = _project()
    base = "%s-%s" % (p["name"].replace("-", "_"), p["version"])
    name = base + ".tar.gz"
    members = ["pyproject.toml", "_craylet_build/craylet_backend.py"]
    members += [n for n, _ in _package_files()]
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as t:
        for m in members:
            t.add(os.path.join(ROOT, m), arcname=base + "/" + m)
        pkg_info = _metadata().encode()
        info = tarfile.TarInfo(base + "/PKG-INFO")
        info.size = len(pkg_info)
        t.addfile(info, io.BytesIO(pkg_info))
    return name
