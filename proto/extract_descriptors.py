#!/usr/bin/env python3
"""Collect the Ray wheel's protobuf schemas as a FileDescriptorSet for protoc.

The installed Ray wheel carries its schemas only as serialized
FileDescriptorProtos inside the generated ``*_pb2`` modules.  This script
imports the requested modules, walks their imports transitively, and writes
one FileDescriptorSet that ``protoc --descriptor_set_in`` can feed to
protoc-gen-c.  Two rewrites happen on the way:

* File names.  ``src/ray/protobuf/X.proto`` becomes ``proto/gen/X.proto`` and
  every other file ``F`` becomes ``proto/gen/F``, so the generated headers are
  included as ``#include "proto/gen/X.pb-c.h"``.  Import lists are renamed the
  same way.  File names never reach the wire.

* proto3 ``optional``.  protoc-gen-c 1.4.1 rejects fields flagged
  ``proto3_optional``.  Such a field is already the only member of a synthetic
  oneof; clearing the flag turns that oneof into an ordinary one-member oneof.
  Field number, type and wire encoding stay the same, and presence is kept
  (the oneof's case member says whether the field was set).

Modes:
  --features H  write a C header naming the wheel's Ray version and the
             protocol features its schemas have (see FEATURES below), so C
             code selects a version's behaviour at compile time from what
             the bindings contain rather than from version arithmetic.
  --list     print "PROTO <renamed file name>" for each file and
             "DEPENDS <path>" for each Python file the result depends on
             (used at configure time to name the outputs and dependencies).
  --out SET  write the rewritten FileDescriptorSet to SET.
"""

import argparse
import importlib
import os
import sys

RAY_PREFIX = "src/ray/protobuf/"
GEN_PREFIX = "proto/gen/"


def rename(name):
    if name.startswith(RAY_PREFIX):
        return GEN_PREFIX + name[len(RAY_PREFIX):]
    return GEN_PREFIX + name


def load_files(modules):
    """Return the FileDescriptors of MODULES and all their imports,
    dependencies first."""
    ordered = []
    seen = set()

    def visit(fd):
        if fd.name in seen:
            return
        seen.add(fd.name)
        for dep in fd.dependencies:
            visit(dep)
        ordered.append(fd)

    for mod in modules:
        visit(importlib.import_module("ray.core.generated.%s_pb2" % mod).DESCRIPTOR)
    return ordered


def clear_proto3_optional(msg):
    """Clear proto3_optional on MSG's fields (and nested types'); count them."""
    n = 0
    for field in msg.field:
        if field.proto3_optional:
            if not field.HasField("oneof_index"):
                raise SystemExit("%s.%s: proto3 optional without a synthetic oneof"
                                 % (msg.name, field.name))
            field.ClearField("proto3_optional")
            n += 1
    for nested in msg.nested_type:
        n += clear_proto3_optional(nested)
    return n


def to_proto(fd):
    from google.protobuf import descriptor_pb2

    proto = descriptor_pb2.FileDescriptorProto()
    fd.CopyToProto(proto)
    proto.name = rename(proto.name)
    deps = [rename(d) for d in proto.dependency]
    del proto.dependency[:]
    proto.dependency.extend(deps)
    proto.ClearField("source_code_info")
    for ext in proto.extension:
        if ext.proto3_optional:
            ext.ClearField("proto3_optional")
    for msg in proto.message_type:
        clear_proto3_optional(msg)
    return proto


# Each feature: (macro, what it means, test on the wheel's descriptor pool).
# The tests look only at schema facts; the meaning says what craylet does
# differently when the fact holds.
def _has_method(pool, service, method):
    try:
        svc = pool.FindServiceByName(service)
    except KeyError:
        return False
    return any(m.name == method for m in svc.methods)


def _has_field(pool, message, field):
    try:
        return field in pool.FindMessageTypeByName(message).fields_by_name
    except KeyError:
        return False


def _has_enum_value(pool, enum, value):
    try:
        return value in pool.FindEnumTypeByName(enum).values_by_name
    except KeyError:
        return False


FEATURES = [
    ("CRAYLET_RAY_SPLIT_GCS_PUBSUB",
     "GCS pubsub is ControlPlanePubSubGcsService + ObservabilityPubSubService "
     "(ReportJobError on the latter), not InternalPubSubGcsService",
     lambda p: _has_method(p, "ray.rpc.ControlPlanePubSubGcsService", "GcsSubscriberPoll")),
    ("CRAYLET_RAY_OBJECT_EVICTION_CHANNEL",
     "pinned copies are released by subscribing to each owner's "
     "WORKER_OBJECT_EVICTION channel",
     lambda p: _has_enum_value(p, "ray.rpc.ChannelType", "WORKER_OBJECT_EVICTION")),
    ("CRAYLET_RAY_FREE_LOCAL_OBJECTS",
     "owners release pinned copies with NodeManagerService.FreeLocalObjects",
     lambda p: _has_method(p, "ray.rpc.NodeManagerService", "FreeLocalObjects")),
    ("CRAYLET_RAY_REMOVE_PG_BUNDLES",
     "GCS returns bundles with NodeManagerService.RemovePlacementGroupBundles",
     lambda p: _has_method(p, "ray.rpc.NodeManagerService", "RemovePlacementGroupBundles")),
    ("CRAYLET_RAY_CANCEL_RESOURCE_RESERVE",
     "GCS returns one bundle at a time with CancelResourceReserve",
     lambda p: _has_method(p, "ray.rpc.NodeManagerService", "CancelResourceReserve")),
    ("CRAYLET_RAY_ACTOR_ARG_WAIT_BY_TASK",
     "actor-argument waits are named by task id and attempt number (raylet "
     "socket and ActorCallArgWaitComplete), not by an integer tag",
     lambda p: _has_field(p, "ray.rpc.ActorCallArgWaitCompleteRequest", "task_id")),
    ("CRAYLET_RAY_CANCEL_LEASE_REPLY_SUCCESS",
     "CancelWorkerLeaseReply carries a success flag",
     lambda p: _has_field(p, "ray.rpc.CancelWorkerLeaseReply", "success")),
    ("CRAYLET_RAY_NODE_INFO_DIRS",
     "GcsNodeInfo carries the node's temp_dir and session_dir",
     lambda p: _has_field(p, "ray.rpc.GcsNodeInfo", "session_dir")),
    ("CRAYLET_RAY_WORKER_TABLE_JOB_ID",
     "WorkerTableData carries the worker's job_id",
     lambda p: _has_field(p, "ray.rpc.WorkerTableData", "job_id")),
]


def c_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def features_header(files):
    from google.protobuf import descriptor_pool
    import ray

    pool = descriptor_pool.Default()
    version = getattr(ray, "__version__", "")
    commit = getattr(ray, "__commit__", "")
    if not version or any(c not in "0123456789.abcdefghijklmnopqrstuvwxyz+-" for c in version):
        raise SystemExit("extract_descriptors: cannot read the Ray version (%r)" % version)
    lines = [
        "/* Generated by proto/extract_descriptors.py from the Ray wheel the",
        " * bindings were made from; never edited by hand. */",
        "#ifndef CRAYLET_PROTO_RAY_VERSION_H",
        "#define CRAYLET_PROTO_RAY_VERSION_H",
        "",
        "#define CRAYLET_RAY_VERSION %s" % c_string(version),
        "#define CRAYLET_RAY_COMMIT %s" % c_string(commit),
        "",
    ]
    for macro, meaning, test in FEATURES:
        lines.append("/* %s */" % meaning)
        lines.append("#define %s %d" % (macro, 1 if test(pool) else 0))
    lines += ["", "#endif", ""]
    return "\n".join(lines)


def write_atomically(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb" if isinstance(data, bytes) else "w") as fh:
        fh.write(data)
    os.replace(tmp, path)


def python_dependencies():
    """Python files whose change must trigger regeneration."""
    paths = set()
    for name, mod in list(sys.modules.items()):
        if name.startswith("ray.core.generated.") and name.endswith("_pb2"):
            path = getattr(mod, "__file__", None)
            if path:
                paths.add(os.path.realpath(path))
    import google.protobuf
    paths.add(os.path.realpath(google.protobuf.__file__))
    import ray
    # ray/_version.py changes with every wheel release.
    version_file = os.path.join(os.path.dirname(ray.__file__), "_version.py")
    if os.path.exists(version_file):
        paths.add(os.path.realpath(version_file))
    return sorted(paths)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modules", required=True,
                    help="comma or semicolon separated ray.core.generated module "
                         "stems, e.g. gcs_service,node_manager")
    ap.add_argument("--reserved", default="",
                    help="comma or semicolon separated file names that the wheel "
                         "must not produce (our hand-written schemas)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--features")
    args = ap.parse_args()

    split = lambda s: [x for x in s.replace(";", ",").split(",") if x]
    files = load_files(split(args.modules))
    names = [rename(fd.name) for fd in files]
    if len(set(names)) != len(names):
        raise SystemExit("extract_descriptors: two wheel files map to one name")
    for r in split(args.reserved):
        if GEN_PREFIX + r in names:
            raise SystemExit("extract_descriptors: the wheel now ships %s; "
                             "retire the hand-written copy" % r)

    if args.list:
        for n in names:
            print("PROTO " + n)
        for p in python_dependencies():
            print("DEPENDS " + p)
    if args.out:
        from google.protobuf import descriptor_pb2

        fds = descriptor_pb2.FileDescriptorSet()
        for fd in files:
            fds.file.append(to_proto(fd))
        write_atomically(args.out, fds.SerializeToString())
    if args.features:
        write_atomically(args.features, features_header(files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
