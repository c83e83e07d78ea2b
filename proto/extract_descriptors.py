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
        data = fds.SerializeToString()
        tmp = args.out + ".tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
