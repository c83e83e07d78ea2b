"""Write seed inputs for fuzz_raylet_msg (run by `make fuzz-test`): valid node_manager.fbs messages
built with the reference FlatBuffers implementation, both as direct
(type, payload) inputs and as framed streams.  Usage: make_seeds.py DIR"""
import os
import struct
import sys

import flatbuffers

COOKIE = 0x5241590000000000


def table(build_fields):
    b = flatbuffers.Builder(256)
    refs = build_fields(b, pre=True)
    b.StartObject(16)
    build_fields(b, pre=False, refs=refs)
    b.Finish(b.EndObject())
    return bytes(b.Output())


def ids_vec(b, ids):
    refs = [b.CreateString(i) for i in ids]
    b.StartVector(4, len(refs), 4)
    for r in reversed(refs):
        b.PrependUOffsetTRelative(r)
    return b.EndVector()


def register(b, pre, refs=None):
    if pre:
        return (b.CreateString(b"w" * 28), b.CreateString(b"\x01\x00\x00\x00"), b.CreateString(b"cfg"))
    b.PrependInt32Slot(0, 1, 0)
    b.PrependUOffsetTRelativeSlot(1, refs[0], 0)
    b.PrependInt64Slot(2, 1234, 0)
    b.PrependUOffsetTRelativeSlot(3, refs[1], 0)
    b.PrependUOffsetTRelativeSlot(8, refs[2], 0)


def announce(b, pre, refs=None):
    if pre:
        return (b.CreateString(b"python x.py"),)
    b.PrependInt32Slot(0, 40000, 0)
    b.PrependUOffsetTRelativeSlot(1, refs[0], 0)


def wait(b, pre, refs=None):
    if pre:
        return (ids_vec(b, [b"o" * 28, b"p" * 28]),)
    b.PrependUOffsetTRelativeSlot(0, refs[0], 0)
    b.PrependInt32Slot(2, 1, 0)
    b.PrependInt64Slot(3, 100, -1)


def free_objs(b, pre, refs=None):
    if pre:
        return (ids_vec(b, [b"o" * 28]),)
    b.PrependBoolSlot(0, True, False)
    b.PrependUOffsetTRelativeSlot(1, refs[0], 0)


def push_error(b, pre, refs=None):
    if pre:
        return (b.CreateString(b"\x01\x00\x00\x00"), b.CreateString(b"type"), b.CreateString(b"msg"))
    for i in range(3):
        b.PrependUOffsetTRelativeSlot(i, refs[i], 0)
    b.PrependFloat64Slot(3, 1.5, 0)


MESSAGES = {1: register, 3: announce, 11: wait, 13: wait, 15: free_objs, 14: push_error, 7: wait}


def main(out):
    os.makedirs(out, exist_ok=True)
    stream = b""
    for mtype, fn in MESSAGES.items():
        payload = table(fn)
        with open(os.path.join(out, f"direct_{mtype}"), "wb") as f:
            f.write(bytes([1, mtype]) + payload)
        stream += struct.pack("<qqq", COOKIE, mtype, len(payload)) + payload
    with open(os.path.join(out, "stream_all"), "wb") as f:
        f.write(b"\x00" + stream)


if __name__ == "__main__":
    main(sys.argv[1])
