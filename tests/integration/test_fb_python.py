"""Round trips between craylet's C FlatBuffers codec (common/fb.c) and the
official Python `flatbuffers` package, which is what the stock Ray wheel's
own schemas are generated for.

The C side is tests/tools/fb_tool.c.  It is taken from $CRAYLET_BUILD_DIR
(default /work/main/build) as a built `fb_tool` if one exists there, else
compiled here against that build's libcraylet_core.a, else straight from
common/fb.c and common/error.c.  A sanitizer build (CRAYLET_SANITIZE=ON in
its CMakeCache.txt) gets the matching -fsanitize flags, so the mutation test
below runs the reader under ASan/UBSan.
"""

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

flatbuffers = pytest.importorskip(
    "flatbuffers", reason="pip install flatbuffers (the official Python package)")
from flatbuffers import number_types as N  # noqa: E402
from flatbuffers.table import Table  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("CRAYLET_BUILD_DIR", "/work/main/build"))


def _sanitized(build: Path) -> bool:
    cache = build / "CMakeCache.txt"
    return cache.exists() and "CRAYLET_SANITIZE:BOOL=ON" in cache.read_text(errors="replace")


def _archive_has(lib: Path, member: str) -> bool:
    ar = shutil.which("ar")
    if not ar:
        return False
    out = subprocess.run([ar, "t", str(lib)], capture_output=True, text=True)
    return out.returncode == 0 and member in out.stdout.split()


@pytest.fixture(scope="session")
def tool(tmp_path_factory) -> Path:
    built = BUILD / "fb_tool"
    if built.exists():
        return built
    cc = os.environ.get("CC", "cc")
    if not shutil.which(cc):
        pytest.skip("no C compiler to build fb_tool")
    out = tmp_path_factory.mktemp("fbtool") / "fb_tool"
    cmd = [cc, "-std=c11", "-D_GNU_SOURCE", "-g", "-O1", "-Wall", "-I", str(ROOT),
           str(ROOT / "tests/tools/fb_tool.c")]
    lib = BUILD / "libcraylet_core.a"
    if lib.exists() and _archive_has(lib, "fb.c.o") and _archive_has(lib, "error.c.o"):
        cmd.append(str(lib))
        if _sanitized(BUILD):
            cmd[1:1] = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
    else:
        cmd += [str(ROOT / "common/fb.c"), str(ROOT / "common/error.c")]
    cmd += ["-o", str(out)]
    subprocess.run(cmd, check=True)
    return out


def run_tool(tool, *args, check=True):
    p = subprocess.run([str(tool), *map(str, args)], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"fb_tool {args[0]} rc={p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def tool_read(tool, shape, path):
    out = run_tool(tool, f"read-{shape}", path).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


# ---- Python-side readers over flatbuffers.table.Table ----

def root_table(buf: bytes) -> Table:
    buf = bytearray(buf)
    return Table(buf, flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0))


def _off(t: Table, slot: int) -> int:
    return t.Offset(4 + 2 * slot)


def scalar(t, slot, flags, default=0):
    o = _off(t, slot)
    return t.Get(flags, o + t.Pos) if o else default


def string(t, slot):
    o = _off(t, slot)
    return bytes(t.String(o + t.Pos)) if o else b""


def child(t, slot):
    o = _off(t, slot)
    return Table(t.Bytes, t.Indirect(o + t.Pos)) if o else None


def vec(t, slot):
    o = _off(t, slot)
    return (t.Vector(o), t.VectorLen(o)) if o else (0, 0)


def vec_strings(t, slot):
    start, n = vec(t, slot)
    return [bytes(t.String(start + 4 * i)) for i in range(n)]


def vec_tables(t, slot):
    start, n = vec(t, slot)
    return [Table(t.Bytes, t.Indirect(start + 4 * i)) for i in range(n)]


def vec_scalars(t, slot, flags):
    start, n = vec(t, slot)
    return [t.Get(flags, start + flags.bytewidth * i) for i in range(n)]


def check_alignment(buf: bytes):
    """The finished size is padded to at least 4 and the root table is
    4-aligned, as the official builders produce and the C++ verifier
    expects.  (Field alignment is checked per test where it matters.)"""
    assert len(buf) % 4 == 0
    root = flatbuffers.encode.Get(flatbuffers.packer.uoffset, bytearray(buf), 0)
    assert root % 4 == 0


def address_py(t):
    return {
        "node_id": string(t, 0),
        "ip_address": string(t, 1),
        "port": scalar(t, 2, N.Int32Flags),
        "worker_id": string(t, 3),
    }


def address_c(d, prefix):
    return {
        "node_id": bytes.fromhex(d[f"{prefix}.node_id"]),
        "ip_address": bytes.fromhex(d[f"{prefix}.ip_address"]),
        "port": int(d[f"{prefix}.port"]),
        "worker_id": bytes.fromhex(d[f"{prefix}.worker_id"]),
    }


# ---- RegisterClientRequest ----

REGISTER = {
    "worker_type": 1,  # DRIVER
    "worker_id": bytes(range(28)),
    "worker_pid": 4_000_000_123,
    "job_id": bytes([4, 3, 2, 1]),
    "runtime_env_hash": -123456789,
    "language": 0,
    "ip_address": b"192.168.7.21",
    "port": 0,
    "serialized_job_config": b"\x08\x01\x12\x00job config \x00 with NULs",
}


def build_register_py(v, force_defaults=False):
    b = flatbuffers.Builder(0)
    b.ForceDefaults(force_defaults)
    wid = b.CreateString(v["worker_id"])
    job = b.CreateString(v["job_id"])
    ip = b.CreateString(v["ip_address"])
    cfg = b.CreateString(v["serialized_job_config"])
    b.StartObject(9)
    b.PrependInt32Slot(0, v["worker_type"], 0)
    b.PrependUOffsetTRelativeSlot(1, wid, 0)
    b.PrependInt64Slot(2, v["worker_pid"], 0)
    b.PrependUOffsetTRelativeSlot(3, job, 0)
    b.PrependInt32Slot(4, v["runtime_env_hash"], 0)
    b.PrependInt32Slot(5, v["language"], 0)
    b.PrependUOffsetTRelativeSlot(6, ip, 0)
    b.PrependInt32Slot(7, v["port"], 0)
    b.PrependUOffsetTRelativeSlot(8, cfg, 0)
    b.Finish(b.EndObject())
    return bytes(b.Output())


def test_c_register_read_by_python(tool, tmp_path):
    v = REGISTER
    path = tmp_path / "reg.bin"
    run_tool(tool, "build-register", path, v["worker_type"], v["worker_id"].hex(),
             v["worker_pid"], v["job_id"].hex(), v["runtime_env_hash"], v["language"],
             v["ip_address"].decode(), v["port"], v["serialized_job_config"].hex())
    buf = path.read_bytes()
    check_alignment(buf)
    t = root_table(buf)
    assert scalar(t, 0, N.Int32Flags) == v["worker_type"]
    assert string(t, 1) == v["worker_id"]
    assert scalar(t, 2, N.Int64Flags) == v["worker_pid"]
    assert string(t, 3) == v["job_id"]
    assert scalar(t, 4, N.Int32Flags) == v["runtime_env_hash"]
    assert scalar(t, 5, N.Int32Flags) == v["language"]
    assert string(t, 6) == v["ip_address"]
    assert scalar(t, 7, N.Int32Flags) == v["port"]
    assert string(t, 8) == v["serialized_job_config"]
    # Defaults are omitted from the vtable, as the official builders do.
    assert _off(t, 5) == 0 and _off(t, 7) == 0


@pytest.mark.parametrize("force_defaults", [False, True])
def test_python_register_read_by_c(tool, tmp_path, force_defaults):
    v = REGISTER
    path = tmp_path / "reg.bin"
    path.write_bytes(build_register_py(v, force_defaults))
    d = tool_read(tool, "register", path)
    assert int(d["worker_type"]) == v["worker_type"]
    assert bytes.fromhex(d["worker_id"]) == v["worker_id"]
    assert int(d["worker_pid"]) == v["worker_pid"]
    assert bytes.fromhex(d["job_id"]) == v["job_id"]
    assert int(d["runtime_env_hash"]) == v["runtime_env_hash"]
    assert int(d["language"]) == v["language"]
    assert bytes.fromhex(d["ip_address"]) == v["ip_address"]
    assert int(d["port"]) == v["port"]
    assert bytes.fromhex(d["serialized_job_config"]) == v["serialized_job_config"]


def test_python_buffer_with_file_identifier_read_by_c(tool, tmp_path):
    b = flatbuffers.Builder(0)
    wid = b.CreateString(b"w" * 28)
    b.StartObject(9)
    b.PrependUOffsetTRelativeSlot(1, wid, 0)
    b.PrependInt32Slot(7, 5555, 0)
    b.Finish(b.EndObject(), file_identifier=b"RAYL")
    path = tmp_path / "id.bin"
    path.write_bytes(bytes(b.Output()))
    d = tool_read(tool, "register", path)
    assert bytes.fromhex(d["worker_id"]) == b"w" * 28
    assert int(d["port"]) == 5555
    assert d["job_id"] == ""


# ---- WaitRequest: vectors of strings and of tables ----

def wait_entries(n):
    return [
        (os.urandom(28), os.urandom(28), f"10.0.{i}.{i + 1}", 10000 + i, os.urandom(28))
        for i in range(n)
    ]


@pytest.mark.parametrize("n", [0, 1, 7, 300])
def test_c_wait_read_by_python(tool, tmp_path, n):
    entries = wait_entries(n)
    path = tmp_path / "wait.bin"
    args = []
    for oid, node, ip, port, worker in entries:
        args += [oid.hex(), node.hex(), ip, port, worker.hex()]
    run_tool(tool, "build-wait", path, 3, -1, *args)
    buf = path.read_bytes()
    check_alignment(buf)
    t = root_table(buf)
    assert vec_strings(t, 0) == [e[0] for e in entries]
    addrs = [address_py(a) for a in vec_tables(t, 1)]
    assert addrs == [
        {"node_id": e[1], "ip_address": e[2].encode(), "port": e[3], "worker_id": e[4]}
        for e in entries
    ]
    assert scalar(t, 2, N.Int32Flags) == 3
    assert scalar(t, 3, N.Int64Flags) == -1


def build_wait_py(entries, num_required, timeout):
    b = flatbuffers.Builder(0)
    oids = [b.CreateString(e[0]) for e in entries]
    addrs = []
    for _, node, ip, port, worker in entries:
        n, i, w = b.CreateString(node), b.CreateString(ip), b.CreateString(worker)
        b.StartObject(4)
        b.PrependUOffsetTRelativeSlot(0, n, 0)
        b.PrependUOffsetTRelativeSlot(1, i, 0)
        b.PrependInt32Slot(2, port, 0)
        b.PrependUOffsetTRelativeSlot(3, w, 0)
        addrs.append(b.EndObject())

    def offsets(items):
        b.StartVector(4, len(items), 4)
        for x in reversed(items):
            b.PrependUOffsetTRelative(x)
        return b.EndVector()

    ov, av = offsets(oids), offsets(addrs)
    b.StartObject(4)
    b.PrependUOffsetTRelativeSlot(0, ov, 0)
    b.PrependUOffsetTRelativeSlot(1, av, 0)
    b.PrependInt32Slot(2, num_required, 0)
    b.PrependInt64Slot(3, timeout, 0)
    b.Finish(b.EndObject())
    return bytes(b.Output())


@pytest.mark.parametrize("n", [0, 1, 7, 300])
def test_python_wait_read_by_c(tool, tmp_path, n):
    entries = wait_entries(n)
    path = tmp_path / "wait.bin"
    path.write_bytes(build_wait_py(entries, 2, 1500))
    d = tool_read(tool, "wait", path)
    assert int(d["object_ids.len"]) == n
    assert int(d["owner_addresses.len"]) == n
    for i, (oid, node, ip, port, worker) in enumerate(entries):
        assert bytes.fromhex(d[f"object_ids[{i}]"]) == oid
        assert address_c(d, f"owner_addresses[{i}]") == {
            "node_id": node, "ip_address": ip.encode(), "port": port, "worker_id": worker}
    assert int(d["num_required_objects"]) == 2
    assert int(d["timeout"]) == 1500


# ---- Kitchen: every field kind (see fb_tool.c) ----

KITCHEN = {
    "b": 1, "i8": -5, "u8": 250, "i16": -30000, "u16": 60000, "i32": -2000000000,
    "u32": 4000000000, "i64": -9000000000000000000, "u64": 18000000000000000000,
    "f32": 1.5, "f64": -2.25, "name": b"kitchen", "tags": [b"alpha", b"", b"gamma"],
    "nums": [1, -2, 2**63 - 1, -(2**63)],
    "addrs": [
        {"node_id": b"\x00", "ip_address": b"1.1.1.1", "port": 1, "worker_id": b"\xaa"},
        {"node_id": b"\x01", "ip_address": b"2.2.2.2", "port": 2, "worker_id": b"\xbb"},
    ],
    "child": {"node_id": b"\xcc", "ip_address": b"3.3.3.3", "port": 3, "worker_id": b"\xdd"},
    "spec": (7, 0x0102030405060708, True),
    "specs": [(10, 20, True), (-10, 2**64 - 1, False)],
    "nested": {"node_id": b"nn", "ip_address": b"10.0.0.9", "port": 7, "worker_id": b""},
    "bytes": b"\x00\x01\x02\xff",
    "doubles": [0.5, -1e300, 3.25],
}

SCALARS = [("b", N.BoolFlags), ("i8", N.Int8Flags), ("u8", N.Uint8Flags),
           ("i16", N.Int16Flags), ("u16", N.Uint16Flags), ("i32", N.Int32Flags),
           ("u32", N.Uint32Flags), ("i64", N.Int64Flags), ("u64", N.Uint64Flags),
           ("f32", N.Float32Flags), ("f64", N.Float64Flags)]


def spec_py(t: Table, pos: int):
    return (t.Get(N.Int32Flags, pos), t.Get(N.Uint64Flags, pos + 8), t.Get(N.BoolFlags, pos + 16))


def create_spec(b, a, u, c):
    # struct Spec { a:int; b:ulong; c:bool; }: 4 bytes, 4 padding, 8, 1, 7 padding.
    b.Prep(8, 24)
    b.Pad(7)
    b.PrependBool(c)
    b.PrependUint64(u)
    b.Pad(4)
    b.PrependInt32(a)
    return b.Offset()


def build_address_py(b, a):
    n, i, w = (b.CreateString(a["node_id"]), b.CreateString(a["ip_address"]),
               b.CreateString(a["worker_id"]))
    b.StartObject(4)
    b.PrependUOffsetTRelativeSlot(0, n, 0)
    b.PrependUOffsetTRelativeSlot(1, i, 0)
    b.PrependInt32Slot(2, a["port"], 0)
    b.PrependUOffsetTRelativeSlot(3, w, 0)
    return b.EndObject()


def build_kitchen_py(k):
    nb = flatbuffers.Builder(0)
    nb.Finish(build_address_py(nb, k["nested"]))
    nested = bytes(nb.Output())

    b = flatbuffers.Builder(0)
    name = b.CreateString(k["name"])
    tags = [b.CreateString(s) for s in k["tags"]]
    b.StartVector(4, len(tags), 4)
    for x in reversed(tags):
        b.PrependUOffsetTRelative(x)
    tagv = b.EndVector()
    b.StartVector(8, len(k["nums"]), 8)
    for x in reversed(k["nums"]):
        b.PrependInt64(x)
    numv = b.EndVector()
    addrs = [build_address_py(b, a) for a in k["addrs"]]
    b.StartVector(4, len(addrs), 4)
    for x in reversed(addrs):
        b.PrependUOffsetTRelative(x)
    addrv = b.EndVector()
    child_ref = build_address_py(b, k["child"])
    b.StartVector(24, len(k["specs"]), 8)
    for s in reversed(k["specs"]):
        create_spec(b, *s)
    specv = b.EndVector()
    nestv = b.CreateByteVector(nested)
    bytev = b.CreateByteVector(k["bytes"])
    b.StartVector(8, len(k["doubles"]), 8)
    for x in reversed(k["doubles"]):
        b.PrependFloat64(x)
    dblv = b.EndVector()

    b.StartObject(21)
    b.PrependBoolSlot(0, bool(k["b"]), False)
    b.PrependInt8Slot(1, k["i8"], 0)
    b.PrependUint8Slot(2, k["u8"], 0)
    b.PrependInt16Slot(3, k["i16"], 0)
    b.PrependUint16Slot(4, k["u16"], 0)
    b.PrependInt32Slot(5, k["i32"], 0)
    b.PrependUint32Slot(6, k["u32"], 0)
    b.PrependInt64Slot(7, k["i64"], 0)
    b.PrependUint64Slot(8, k["u64"], 0)
    b.PrependFloat32Slot(9, k["f32"], 0)
    b.PrependFloat64Slot(10, k["f64"], 0)
    b.PrependUOffsetTRelativeSlot(11, name, 0)
    b.PrependUOffsetTRelativeSlot(12, tagv, 0)
    b.PrependUOffsetTRelativeSlot(13, numv, 0)
    b.PrependUOffsetTRelativeSlot(14, addrv, 0)
    b.PrependUOffsetTRelativeSlot(15, child_ref, 0)
    b.PrependStructSlot(16, create_spec(b, *k["spec"]), 0)
    b.PrependUOffsetTRelativeSlot(17, specv, 0)
    b.PrependUOffsetTRelativeSlot(18, nestv, 0)
    b.PrependUOffsetTRelativeSlot(19, bytev, 0)
    b.PrependUOffsetTRelativeSlot(20, dblv, 0)
    b.Finish(b.EndObject())
    return bytes(b.Output())


def test_c_kitchen_read_by_python(tool, tmp_path):
    path = tmp_path / "k.bin"
    run_tool(tool, "build-kitchen", path)
    buf = path.read_bytes()
    check_alignment(buf)
    assert len(buf) % 8 == 0
    t = root_table(buf)
    k = KITCHEN
    for slot, (key, flags) in enumerate(SCALARS):
        assert scalar(t, slot, flags) == k[key], key
    assert string(t, 11) == k["name"]
    assert vec_strings(t, 12) == k["tags"]
    assert vec_scalars(t, 13, N.Int64Flags) == k["nums"]
    assert [address_py(a) for a in vec_tables(t, 14)] == k["addrs"]
    assert address_py(child(t, 15)) == k["child"]
    o = _off(t, 16)
    assert o and (t.Pos + o) % 8 == 0
    assert spec_py(t, t.Pos + o) == k["spec"]
    start, n = vec(t, 17)
    assert start % 8 == 0
    assert [spec_py(t, start + 24 * i) for i in range(n)] == k["specs"]
    start, n = vec(t, 18)
    nested = bytes(t.Bytes[start:start + n])
    assert address_py(root_table(nested)) == k["nested"]
    start, n = vec(t, 19)
    assert bytes(t.Bytes[start:start + n]) == k["bytes"]
    assert vec_scalars(t, 20, N.Float64Flags) == k["doubles"]


def check_kitchen_c(d, k):
    for key, _ in SCALARS:
        got = float(d[key]) if key.startswith("f") else int(d[key])
        assert got == k[key], key
    assert bytes.fromhex(d["name"]) == k["name"]
    assert [bytes.fromhex(d[f"tags[{i}]"]) for i in range(int(d["tags.len"]))] == k["tags"]
    assert [int(d[f"nums[{i}]"]) for i in range(int(d["nums.len"]))] == k["nums"]
    assert [address_c(d, f"addrs[{i}]") for i in range(int(d["addrs.len"]))] == k["addrs"]
    assert address_c(d, "child") == k["child"]

    def spec_c(prefix):
        return (int(d[f"{prefix}.a"]), int(d[f"{prefix}.b"]), bool(int(d[f"{prefix}.c"])))

    assert spec_c("spec") == k["spec"]
    assert [spec_c(f"specs[{i}]") for i in range(int(d["specs.len"]))] == k["specs"]
    assert address_c(d, "nested") == k["nested"]
    assert bytes.fromhex(d["bytes"]) == k["bytes"]
    assert [float(d[f"doubles[{i}]"]) for i in range(int(d["doubles.len"]))] == k["doubles"]


def test_python_kitchen_read_by_c(tool, tmp_path):
    path = tmp_path / "k.bin"
    path.write_bytes(build_kitchen_py(KITCHEN))
    check_kitchen_c(tool_read(tool, "kitchen", path), KITCHEN)


def test_c_kitchen_survives_c_reread(tool, tmp_path):
    path = tmp_path / "k.bin"
    run_tool(tool, "build-kitchen", path)
    check_kitchen_c(tool_read(tool, "kitchen", path), KITCHEN)


def test_empty_python_table_reads_as_defaults(tool, tmp_path):
    b = flatbuffers.Builder(0)
    b.StartObject(0)
    b.Finish(b.EndObject())
    path = tmp_path / "empty.bin"
    path.write_bytes(bytes(b.Output()))
    d = tool_read(tool, "register", path)
    assert d["worker_id"] == "" and int(d["worker_pid"]) == 0
    d = tool_read(tool, "kitchen", path)
    assert int(d["tags.len"]) == 0 and d["child.present"] == "0" and d["spec.present"] == "0"


def test_mutated_buffers_never_crash_the_reader(tool, tmp_path):
    """Bit flips, planted offsets and truncations of Python-built buffers,
    all run through every C reader in one process.  Exit status 0 means no
    crash (and, in a sanitizer build, no ASan/UBSan report)."""
    rng = random.Random(1234)
    seeds = [build_kitchen_py(KITCHEN), build_register_py(REGISTER),
             build_wait_py(wait_entries(5), 1, 10)]
    paths = []
    for i in range(1500):
        buf = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(buf))
            if rng.random() < 0.5:
                buf[at] = rng.randrange(256)
            else:
                at &= ~3
                word = rng.choice([0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, 0x40000001,
                                   len(buf) - at, rng.randrange(len(buf) + 16)])
                buf[at:at + 4] = (word & 0xFFFFFFFF).to_bytes(4, "little")[: len(buf) - at]
        if rng.random() < 0.2:
            buf = buf[: rng.randrange(len(buf))]
        p = tmp_path / f"m{i}.bin"
        p.write_bytes(bytes(buf))
        paths.append(p)
    for chunk in range(0, len(paths), 500):
        out = run_tool(tool, "probe", *paths[chunk:chunk + 500]).stdout
        assert out.startswith("ok=")
