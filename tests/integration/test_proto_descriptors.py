"""craylet_proto against the installed Ray wheel, field by field and on the wire.

What is checked:
  * every message, enum and service the wheel's descriptors define for the
    generated files is compiled into craylet_proto with the same field names,
    numbers, types, labels, type names, packing and oneof grouping (the proto3
    `optional` rewrite shows up as one-member oneofs);
  * random instances of every wheel message survive Python -> C -> Python;
  * our hand-written ray_syncer.proto and health.proto equal the descriptors
    embedded in the installed gcs_server / raylet binaries;
  * a RaySyncMessageBatch encoded in C decodes in Python and the reverse.

Needs a build with the proto_dump target: CRAYLET_BUILD_DIR (default
/work/main/build) must hold proto/proto_dump.
Run: .venv/bin/python -m pytest tests/integration/test_proto_descriptors.py
"""

import importlib
import json
import os
import random
import re
import struct
import subprocess

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

BUILD_DIR = os.environ.get("CRAYLET_BUILD_DIR", "/work/main/build")
PROTO_BUILD = os.path.join(BUILD_DIR, "proto")
PROTO_DUMP = os.path.join(PROTO_BUILD, "proto_dump")
OWN_SET = os.path.join(PROTO_BUILD, "craylet_schemas.descset")
OWN_PACKAGES = ("ray.rpc.syncer.", "grpc.health.v1.")
DEFAULT_MODULES = ("common;gcs;gcs_service;node_manager;pubsub;autoscaler;"
                   "core_worker;runtime_env_agent")

# Messages craylet is known to need; they must be compiled in.
REQUIRED_MESSAGES = [
    "ray.rpc.GcsNodeInfo", "ray.rpc.RegisterNodeRequest",
    "ray.rpc.RegisterNodeReply", "ray.rpc.UnregisterNodeRequest",
    "ray.rpc.CheckAliveRequest", "ray.rpc.CheckAliveReply",
    "ray.rpc.GetInternalConfigRequest", "ray.rpc.GetInternalConfigReply",
    "ray.rpc.GcsSubscriberCommandBatchRequest",
    "ray.rpc.GcsSubscriberPollRequest", "ray.rpc.GcsSubscriberPollReply",
    "ray.rpc.PubMessage", "ray.rpc.GcsNodeAddressAndLiveness",
    "ray.rpc.NodeDeathInfo", "ray.rpc.GetResourceLoadReply",
    "ray.rpc.ResourcesData", "ray.rpc.GetAllNodeAddressAndLivenessReply",
    "ray.rpc.JobTableData",
    "ray.rpc.syncer.RaySyncMessage", "ray.rpc.syncer.RaySyncMessageBatch",
    "ray.rpc.syncer.ResourceViewSyncMessage",
    "ray.rpc.syncer.CommandsSyncMessage",
    "grpc.health.v1.HealthCheckRequest", "grpc.health.v1.HealthCheckResponse",
]

FDP = descriptor_pb2.FieldDescriptorProto
TYPE_NAMES = {
    FDP.TYPE_DOUBLE: "DOUBLE", FDP.TYPE_FLOAT: "FLOAT", FDP.TYPE_INT64: "INT64",
    FDP.TYPE_UINT64: "UINT64", FDP.TYPE_INT32: "INT32",
    FDP.TYPE_FIXED64: "FIXED64", FDP.TYPE_FIXED32: "FIXED32",
    FDP.TYPE_BOOL: "BOOL", FDP.TYPE_STRING: "STRING",
    FDP.TYPE_MESSAGE: "MESSAGE", FDP.TYPE_BYTES: "BYTES",
    FDP.TYPE_UINT32: "UINT32", FDP.TYPE_ENUM: "ENUM",
    FDP.TYPE_SFIXED32: "SFIXED32", FDP.TYPE_SFIXED64: "SFIXED64",
    FDP.TYPE_SINT32: "SINT32", FDP.TYPE_SINT64: "SINT64",
}
NOT_PACKABLE = {FDP.TYPE_STRING, FDP.TYPE_BYTES, FDP.TYPE_MESSAGE, FDP.TYPE_GROUP}


# --------------------------------------------------------------------------
# helpers

def _run(args, data=b""):
    proc = subprocess.run([PROTO_DUMP] + args, input=data, capture_output=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout


def _configured_modules():
    cache = os.path.join(BUILD_DIR, "CMakeCache.txt")
    try:
        with open(cache, encoding="utf-8") as fh:
            m = re.search(r"^CRAYLET_PROTO_MODULES:\w+=(.*)$", fh.read(), re.M)
            if m:
                return [x for x in m.group(1).split(";") if x]
    except FileNotFoundError:
        pass
    return DEFAULT_MODULES.split(";")


def _ray_binary(*parts):
    import ray

    path = os.path.join(os.path.dirname(ray.__file__), "core", "src", "ray", *parts)
    return path if os.path.exists(path) else None


def _embedded_file(binary, name):
    """Find the serialized FileDescriptorProto NAME inside BINARY.

    C++ protobuf code keeps each .proto's descriptor as one serialized
    FileDescriptorProto starting with field 1 (the file name).  Read fields
    from there while they look like FileDescriptorProto fields."""
    with open(binary, "rb") as fh:
        data = fh.read()
    raw = name.encode()
    start = data.find(b"\n" + bytes([len(raw)]) + raw)
    if start < 0:
        return None
    wire = {1: 2, 2: 2, 3: 2, 4: 2, 5: 2, 6: 2, 7: 2, 8: 2, 9: 2, 10: 0,
            11: 0, 12: 2, 14: 0}

    def varint(i):
        value = shift = 0
        while True:
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value, i

    i = start
    while i < len(data):
        try:
            key, j = varint(i)
            if wire.get(key >> 3) != (key & 7):
                break
            n, j = varint(j)
            if key & 7 == 2:
                j += n
        except IndexError:
            break
        if j > len(data):
            break
        i = j
    fdp = descriptor_pb2.FileDescriptorProto()
    fdp.ParseFromString(data[start:i])
    return fdp


def _walk_messages(prefix, messages):
    for m in messages:
        full = prefix + m.name
        yield full, m
        yield from _walk_messages(full + ".", m.nested_type)


def _walk_enums(prefix, enums, messages):
    for e in enums:
        yield prefix + e.name, e
    for m in messages:
        yield from _walk_enums(prefix + m.name + ".", m.enum_type, m.nested_type)


def _index_files(files):
    messages, enums, services = {}, {}, {}
    for f in files:
        prefix = f.package + "." if f.package else ""
        for full, m in _walk_messages(prefix, f.message_type):
            messages[full] = (f, m)
        for full, e in _walk_enums(prefix, f.enum_type, f.message_type):
            enums[full] = e
        for s in f.service:
            services[prefix + s.name] = s
    return messages, enums, services


def _expected_field(f, syntax):
    if f.label == FDP.LABEL_REPEATED:
        label = "REPEATED"
    elif f.label == FDP.LABEL_REQUIRED:
        label = "REQUIRED"
    elif syntax == "proto3" or f.HasField("oneof_index"):
        label = "NONE"
    else:
        label = "OPTIONAL"
    if f.label != FDP.LABEL_REPEATED or f.type in NOT_PACKABLE:
        packed = False
    elif f.options.HasField("packed"):
        packed = f.options.packed
    else:
        packed = syntax == "proto3"
    type_name = f.type_name[1:] if f.type_name.startswith(".") else (f.type_name or None)
    return {
        "name": f.name, "number": f.number, "label": label,
        "type": TYPE_NAMES[f.type], "type_name": type_name, "packed": packed,
        "deprecated": f.options.deprecated,
    }


def _compare_message(full, syntax, msg, dumped):
    got = {f["number"]: f for f in dumped["fields"]}
    want = {f.number: f for f in msg.field}
    assert sorted(got) == sorted(want), "%s: field numbers differ" % full
    problems = []
    for number, f in want.items():
        exp = _expected_field(f, syntax)
        have = {k: got[number][k] for k in exp}
        if have != exp:
            problems.append("%s.%s: C %r, wheel %r" % (full, f.name, have, exp))
        in_oneof = f.HasField("oneof_index")
        if in_oneof != (got[number]["oneof"] is not None):
            problems.append("%s.%s: oneof membership differs" % (full, f.name))
    # Fields grouped by oneof: the same partition on both sides.
    groups_want = {}
    for f in msg.field:
        if f.HasField("oneof_index"):
            groups_want.setdefault(f.oneof_index, set()).add(f.number)
    groups_got = {}
    for f in dumped["fields"]:
        if f["oneof"] is not None:
            groups_got.setdefault(f["oneof"], set()).add(f["number"])
    if sorted(map(sorted, groups_want.values())) != sorted(map(sorted, groups_got.values())):
        problems.append("%s: oneof grouping differs" % full)
    return problems


# --------------------------------------------------------------------------
# fixtures

@pytest.fixture(scope="module")
def dump():
    if not os.access(PROTO_DUMP, os.X_OK):
        pytest.fail("%s is missing: build the proto_dump target "
                    "(CRAYLET_BUILD_DIR=%s)" % (PROTO_DUMP, BUILD_DIR))
    return json.loads(_run(["describe"]))


@pytest.fixture(scope="module")
def wheel_files():
    """The wheel's FileDescriptorProtos, unmodified, for the configured
    modules and everything they import."""
    seen, out = set(), []

    def visit(fd):
        if fd.name in seen:
            return
        seen.add(fd.name)
        for dep in fd.dependencies:
            visit(dep)
        proto = descriptor_pb2.FileDescriptorProto()
        fd.CopyToProto(proto)
        if not proto.syntax:
            proto.syntax = "proto2"
        out.append(proto)

    for mod in _configured_modules():
        visit(importlib.import_module("ray.core.generated.%s_pb2" % mod).DESCRIPTOR)
    return out


@pytest.fixture(scope="module")
def own_files():
    if os.path.exists(OWN_SET):
        with open(OWN_SET, "rb") as fh:
            data = fh.read()
    else:
        src = os.path.join(os.path.dirname(__file__), "..", "..", "proto")
        data = subprocess.run(
            ["protoc", "-I", src, "--descriptor_set_out=/dev/stdout",
             "ray_syncer.proto", "health.proto"],
            check=True, capture_output=True).stdout
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(data)
    return list(fds.file)


def _pool_from(files):
    pool = descriptor_pool.DescriptorPool()
    for f in files:
        pool.Add(f)
    return pool


# --------------------------------------------------------------------------
# descriptor comparisons

def test_required_messages_present(dump):
    names = {m["name"] for m in dump["messages"]}
    missing = [n for n in REQUIRED_MESSAGES if n not in names]
    assert not missing


def test_messages_match_wheel(dump, wheel_files, own_files):
    c_msgs = {m["name"]: m for m in dump["messages"]}
    w_msgs, _, _ = _index_files(wheel_files)
    o_msgs, _, _ = _index_files(own_files)
    assert set(c_msgs) == set(w_msgs) | set(o_msgs)
    assert len(w_msgs) > 300  # the whole of the generated files, not a sample
    problems = []
    for full, (f, m) in list(w_msgs.items()) + list(o_msgs.items()):
        problems += _compare_message(full, f.syntax or "proto2", m, c_msgs[full])
    assert not problems, "\n".join(problems[:50])


def test_proto3_optional_became_oneof(dump, wheel_files):
    """Each proto3 `optional` field is the only member of its oneof in C."""
    c_msgs = {m["name"]: m for m in dump["messages"]}
    w_msgs, _, _ = _index_files(wheel_files)
    count = 0
    for full, (_, m) in w_msgs.items():
        for f in m.field:
            if not f.proto3_optional:
                continue
            count += 1
            cf = next(x for x in c_msgs[full]["fields"] if x["number"] == f.number)
            assert cf["oneof"] is not None, "%s.%s" % (full, f.name)
            peers = [x for x in c_msgs[full]["fields"] if x["oneof"] == cf["oneof"]]
            assert len(peers) == 1, "%s.%s" % (full, f.name)
    assert count > 0


def test_enums_match_wheel(dump, wheel_files, own_files):
    c_enums = {e["name"]: e for e in dump["enums"]}
    _, w_enums, _ = _index_files(wheel_files)
    _, o_enums, _ = _index_files(own_files)
    want = dict(w_enums)
    want.update(o_enums)
    assert set(c_enums) == set(want)
    for full, e in want.items():
        got_names = sorted((v["name"], v["number"]) for v in c_enums[full]["names"])
        assert got_names == sorted((v.name, v.number) for v in e.value), full
        assert sorted(v["number"] for v in c_enums[full]["values"]) == \
            sorted({v.number for v in e.value}), full


def test_services_match_wheel(dump, wheel_files, own_files):
    c_svcs = {s["name"]: s for s in dump["services"]}
    _, _, w_svcs = _index_files(wheel_files)
    _, _, o_svcs = _index_files(own_files)
    want = dict(w_svcs)
    want.update(o_svcs)
    assert set(c_svcs) == set(want)
    for full, s in want.items():
        got = [(m["name"], m["input"], m["output"]) for m in c_svcs[full]["methods"]]
        exp = [(m.name, m.input_type.lstrip("."), m.output_type.lstrip("."))
               for m in s.method]
        assert got == exp, full


# --------------------------------------------------------------------------
# hand-written schemas against the installed binaries

def _normalize(fdp):
    """Only what reaches the wire or the generated code's shape."""
    out = descriptor_pb2.FileDescriptorProto()
    out.CopyFrom(fdp)
    out.ClearField("name")
    out.ClearField("options")
    out.ClearField("source_code_info")

    def strip_msg(m):
        for f in m.field:
            f.ClearField("json_name")
        for n in m.nested_type:
            strip_msg(n)

    for m in out.message_type:
        strip_msg(m)
    return out


@pytest.mark.parametrize("own_name,embedded_name,binary", [
    ("ray_syncer.proto", "src/ray/protobuf/ray_syncer.proto", ("gcs", "gcs_server")),
    ("ray_syncer.proto", "src/ray/protobuf/ray_syncer.proto", ("raylet", "raylet")),
    ("health.proto", "src/proto/grpc/health/v1/health.proto", ("gcs", "gcs_server")),
])
def test_own_schema_matches_installed_binary(own_files, own_name, embedded_name, binary):
    path = _ray_binary(*binary)
    if path is None:
        pytest.skip("the wheel has no %s binary" % "/".join(binary))
    embedded = _embedded_file(path, embedded_name)
    if embedded is None:
        pytest.skip("%s embeds no %s" % (path, embedded_name))
    ours = next(f for f in own_files if f.name == own_name)
    assert _normalize(ours) == _normalize(embedded)


def test_object_manager_schema_matches_installed_raylet(own_files):
    """object_manager.proto (ours, one text for 2.54 and 2.60) against the
    stock raylet's embedded descriptor: every message and field of the
    installed release is there with its number and type.  The two known,
    wire-compatible differences are allowed: PullRequest field 2 is repeated
    in ours (a single bytes field in 2.54), and ours keeps FreeObjects (gone
    in 2.60)."""
    path = _ray_binary("raylet", "raylet")
    if path is None:
        pytest.skip("the wheel has no raylet binary")
    embedded = _embedded_file(path, "src/ray/protobuf/object_manager.proto")
    if embedded is None:
        pytest.skip("%s embeds no object_manager.proto" % path)
    ours = next(f for f in own_files if f.name == "object_manager.proto")
    assert ours.package == embedded.package == "ray.rpc"
    our_msgs = {m.name: m for m in ours.message_type}
    problems = []
    for m in embedded.message_type:
        if m.name not in our_msgs:
            problems.append("missing message %s" % m.name)
            continue
        our_fields = {f.number: f for f in our_msgs[m.name].field}
        for f in m.field:
            g = our_fields.get(f.number)
            if g is None:
                problems.append("%s: missing field %d (%s)" % (m.name, f.number, f.name))
                continue
            if (g.type, g.type_name) != (f.type, f.type_name):
                problems.append("%s.%s: type %s%s, binary %s%s" % (m.name, f.name, g.type, g.type_name,
                                                                  f.type, f.type_name))
            if g.label != f.label and not (m.name == "PullRequest" and f.number == 2):
                problems.append("%s.%s: label %d, binary %d" % (m.name, f.name, g.label, f.label))
        extra = set(our_fields) - {f.number for f in m.field}
        if extra:
            problems.append("%s: fields %s not in the binary" % (m.name, sorted(extra)))
    extra_msgs = set(our_msgs) - {m.name for m in embedded.message_type}
    assert extra_msgs <= {"FreeObjectsRequest", "FreeObjectsReply"}, extra_msgs
    (svc,) = [s for s in embedded.service if s.name == "ObjectManagerService"]
    (our_svc,) = ours.service
    want = {(m.name, m.input_type, m.output_type) for m in svc.method}
    got = {(m.name, m.input_type, m.output_type) for m in our_svc.method}
    assert want <= got and {m[0] for m in got - want} <= {"FreeObjects"}, (want, got)
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------
# wire round trips

def _is_repeated(field):
    if hasattr(field, "is_repeated"):
        return field.is_repeated
    return field.label == field.LABEL_REPEATED


class _Filler:
    def __init__(self, seed):
        self.rng = random.Random(seed)

    def scalar(self, field):
        r, t = self.rng, field.type
        F = field
        if t in (F.TYPE_INT32, F.TYPE_SINT32, F.TYPE_SFIXED32):
            return r.choice([0, 1, -1, 2**31 - 1, -2**31, r.randint(-1000, 1000)])
        if t in (F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64):
            return r.choice([0, -1, 2**63 - 1, -2**63, r.randint(-2**40, 2**40)])
        if t in (F.TYPE_UINT32, F.TYPE_FIXED32):
            return r.choice([0, 1, 2**32 - 1, r.randint(0, 100000)])
        if t in (F.TYPE_UINT64, F.TYPE_FIXED64):
            return r.choice([0, 2**64 - 1, r.randint(0, 2**50)])
        if t == F.TYPE_FLOAT:
            return r.choice([0.0, 1.5, -2.25, 1024.0])
        if t == F.TYPE_DOUBLE:
            return r.choice([0.0, 1e-300, -3.5, 1e10, r.random()])
        if t == F.TYPE_BOOL:
            return r.choice([False, True])
        if t == F.TYPE_STRING:
            return r.choice(["", "x", "CPU", "node-\u00e9\u4e2d", "a" * 300])
        if t == F.TYPE_BYTES:
            return bytes(r.randrange(256) for _ in range(r.choice([0, 1, 28, 40])))
        if t == F.TYPE_ENUM:
            values = [v.number for v in field.enum_type.values]
            return r.choice(values)
        raise AssertionError("unexpected type %d" % t)

    def fill(self, msg, depth=0):
        desc = msg.DESCRIPTOR
        chosen = {}
        for oneof in desc.oneofs:
            chosen[oneof.name] = self.rng.choice(oneof.fields).name
        for field in desc.fields:
            oneof = field.containing_oneof
            if oneof is not None:
                if chosen[oneof.name] != field.name:
                    continue
                if len(oneof.fields) == 1 and self.rng.random() < 0.3:
                    continue  # an unset proto3 optional
            elif self.rng.random() < 0.2:
                continue
            self.set_field(msg, field, depth, oneof is not None)

    def set_field(self, msg, field, depth, in_oneof):
        is_msg = field.type == field.TYPE_MESSAGE
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_f = field.message_type.fields_by_name["key"]
            val_f = field.message_type.fields_by_name["value"]
            container = getattr(msg, field.name)
            for _ in range(self.rng.randint(0, 3)):
                key = self.scalar(key_f)
                if val_f.type == val_f.TYPE_MESSAGE:
                    if depth < 3:
                        self.fill(container[key], depth + 1)
                else:
                    container[key] = self.scalar(val_f)
            return
        if _is_repeated(field):
            container = getattr(msg, field.name)
            for _ in range(self.rng.randint(0, 3)):
                if is_msg:
                    if depth < 3:
                        self.fill(container.add(), depth + 1)
                else:
                    container.append(self.scalar(field))
            return
        if is_msg:
            sub = getattr(msg, field.name)
            if depth < 3:
                self.fill(sub, depth + 1)
            sub.SetInParent()
            return
        value = self.scalar(field)
        if in_oneof and self.rng.random() < 0.3:
            # Presence of a default value must survive the trip too.
            value = type(value)()
        setattr(msg, field.name, value)


def _roundtrip(records):
    data = b"".join(struct.pack("<I", len(n)) + n + struct.pack("<I", len(p)) + p
                    for n, p in ((n.encode(), p) for n, p in records))
    out = _run(["roundtrip"], data)
    results, pos = [], 0
    for _ in records:
        status, length = struct.unpack_from("<BI", out, pos)
        pos += 5
        results.append((status, out[pos:pos + length]))
        pos += length
    assert pos == len(out)
    return results


def test_every_wheel_message_roundtrips_through_c(dump, wheel_files):
    pool = descriptor_pool.Default()
    w_msgs, _, _ = _index_files(wheel_files)
    filler = _Filler(20240607)
    originals, records = [], []
    for full in sorted(w_msgs):
        cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(full))
        for _ in range(3):
            msg = cls()
            filler.fill(msg)
            originals.append(msg)
            records.append((full, msg.SerializeToString()))
    failures = []
    for (full, payload), msg, (status, back) in zip(records, originals,
                                                     _roundtrip(records)):
        if status != 0:
            failures.append("%s: status %d" % (full, status))
            continue
        parsed = type(msg)()
        parsed.ParseFromString(back)
        if parsed != msg:
            failures.append("%s: differs after C round trip" % full)
    assert not failures, "\n".join(failures[:30])


def test_presence_of_default_in_proto3_optional(dump):
    from ray.core.generated import gcs_service_pb2

    msg = gcs_service_pb2.GetAllNodeAddressAndLivenessRequest()
    msg.state_filter = 0
    assert msg.HasField("state_filter")
    (status, back), = _roundtrip([(msg.DESCRIPTOR.full_name, msg.SerializeToString())])
    assert status == 0
    parsed = gcs_service_pb2.GetAllNodeAddressAndLivenessRequest.FromString(back)
    assert parsed.HasField("state_filter")
    assert not parsed.HasField("limit")


def test_garbage_is_rejected(dump):
    results = _roundtrip([
        ("ray.rpc.GcsNodeInfo", b"\x0a\x10ab"),          # length past the end
        ("ray.rpc.GcsNodeInfo", b"\x0f\x00"),            # wire type 7
        ("ray.rpc.NoSuchMessage", b""),
    ])
    assert [s for s, _ in results] == [2, 2, 1]


# RaySyncer peers ----------------------------------------------------------

NODE_ID = bytes(range(1, 29))


def _syncer_classes(files, file_name):
    pool = _pool_from([f for f in files if f.name == file_name])
    fd = pool.FindFileByName(file_name)
    return {name: message_factory.GetMessageClass(d)
            for name, d in fd.message_types_by_name.items()}


def _syncer_schemas(own_files):
    schemas = [("ours", _syncer_classes(own_files, "ray_syncer.proto"))]
    path = _ray_binary("gcs", "gcs_server")
    embedded = path and _embedded_file(path, "src/ray/protobuf/ray_syncer.proto")
    if embedded is not None:
        schemas.append(("gcs_server", _syncer_classes([embedded], embedded.name)))
    return schemas


def test_syncer_c_to_python(own_files):
    data = _run(["syncer-encode"])
    for label, cls in _syncer_schemas(own_files):
        batch = cls["RaySyncMessageBatch"].FromString(data)
        assert len(batch.messages) == 2, label
        view_msg, cmd_msg = batch.messages
        assert view_msg.version == 1234567890123
        assert view_msg.message_type == 0  # RESOURCE_VIEW
        assert view_msg.node_id == NODE_ID
        view = cls["ResourceViewSyncMessage"].FromString(view_msg.sync_message)
        assert dict(view.resources_available) == {"CPU": 3.5, "GPU": 0.25, "memory": 1e10}
        assert dict(view.resources_total) == {"CPU": 8.0, "GPU": 2.0, "memory": 3.2e10}
        assert view.object_pulls_queued is True
        assert view.idle_duration_ms == 0
        assert view.is_draining is True
        assert view.draining_deadline_timestamp_ms == 1700000000123
        assert list(view.node_activity) == ["Busy workers on node.", "Resource: CPU"]
        assert dict(view.labels) == {"ray.io/node-id": "abc", "zone": "us-west-2\u00e9"}
        assert cmd_msg.version == 2
        assert cmd_msg.message_type == 1  # COMMANDS
        assert cmd_msg.node_id == NODE_ID
        cmds = cls["CommandsSyncMessage"].FromString(cmd_msg.sync_message)
        assert cmds.should_global_gc is True
        assert cmds.ByteSize() == len(cmd_msg.sync_message)  # nothing unknown


def test_syncer_python_to_c(own_files):
    for label, cls in _syncer_schemas(own_files):
        view = cls["ResourceViewSyncMessage"]()
        view.resources_available["CPU"] = 1.0
        view.resources_available["custom/\u00fc"] = 0.5
        view.resources_total["CPU"] = 64.0
        view.object_pulls_queued = False
        view.idle_duration_ms = 987654321
        view.is_draining = False
        view.draining_deadline_timestamp_ms = -1
        view.node_activity.append("pulling objects")
        view.labels["accelerator"] = "H100"
        cmds = cls["CommandsSyncMessage"](should_global_gc=True)
        batch = cls["RaySyncMessageBatch"]()
        m = batch.messages.add(version=77, message_type=0, node_id=NODE_ID[::-1])
        m.sync_message = view.SerializeToString()
        batch.messages.add(version=78, message_type=1, node_id=NODE_ID,
                           sync_message=cmds.SerializeToString())

        got = json.loads(_run(["syncer-decode"], batch.SerializeToString()))
        assert got == {"messages": [
            {"version": 77, "message_type": 0, "node_id": NODE_ID[::-1].hex(),
             "resource_view": {
                 "resources_available": {"CPU": 1.0, "custom/\u00fc": 0.5},
                 "resources_total": {"CPU": 64.0},
                 "object_pulls_queued": False,
                 "idle_duration_ms": 987654321,
                 "is_draining": False,
                 "draining_deadline_timestamp_ms": -1,
                 "node_activity": ["pulling objects"],
                 "labels": {"accelerator": "H100"}}},
            {"version": 78, "message_type": 1, "node_id": NODE_ID.hex(),
             "commands": {"should_global_gc": True}},
        ]}, label
