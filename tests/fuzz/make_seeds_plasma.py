"""Write seed inputs for fuzz_plasma (run by `make fuzz-test`): plasma
conversations built with the reference FlatBuffers implementation, in the
harness's record format (see tests/fuzz/fuzz_plasma.c), plus one raw
stream.  Usage: make_seeds_plasma.py DIR"""
import os
import struct
import sys

import flatbuffers

COOKIE = 0x5241590000000000

CONNECT, CREATE, RETRY, ABORT, SEAL, GET, RELEASE, DELETE, CONTAINS, DEBUG, DISCONNECT = (
    16, 1, 2, 4, 6, 8, 10, 12, 14, 18, 0)


def oid(n):
    return bytes([n]) * 24 + struct.pack("<I", n)


def finish(b, build):
    b.StartObject(12)
    build(b)
    b.Finish(b.EndObject())
    return bytes(b.Output())


def empty():
    return finish(flatbuffers.Builder(64), lambda b: None)


def id_msg(n, extra=None):
    b = flatbuffers.Builder(128)
    s = b.CreateString(oid(n))

    def build(b):
        b.PrependUOffsetTRelativeSlot(0, s, 0)
        if extra:
            extra(b)
    return finish(b, build)


def create(n, data_size, meta_size=0, try_immediately=False, mutable=False):
    b = flatbuffers.Builder(256)
    o = b.CreateString(oid(n))
    node = b.CreateString(b"\x11" * 28)
    ip = b.CreateString(b"10.0.0.1")
    worker = b.CreateString(b"\x22" * 28)

    def build(b):
        b.PrependUOffsetTRelativeSlot(0, o, 0)
        b.PrependUOffsetTRelativeSlot(1, node, 0)
        b.PrependUOffsetTRelativeSlot(2, ip, 0)
        b.PrependInt32Slot(3, 4321, 0)
        b.PrependUOffsetTRelativeSlot(4, worker, 0)
        b.PrependBoolSlot(5, mutable, False)
        b.PrependUint64Slot(6, data_size, 0)
        b.PrependUint64Slot(7, meta_size, 0)
        b.PrependBoolSlot(10, try_immediately, False)
    return finish(b, build)


def ids_msg(ids, timeout=None, count_slot=False):
    b = flatbuffers.Builder(256)
    refs = [b.CreateString(oid(n)) for n in ids]
    b.StartVector(4, len(refs), 4)
    for r in reversed(refs):
        b.PrependUOffsetTRelative(r)
    v = b.EndVector()

    def build(b):
        if count_slot:
            b.PrependInt32Slot(0, len(ids), 0)
            b.PrependUOffsetTRelativeSlot(1, v, 0)
        else:
            b.PrependUOffsetTRelativeSlot(0, v, 0)
            b.PrependInt64Slot(1, timeout, 0)
    return finish(b, build)


def get(ids, timeout):
    return ids_msg(ids, timeout)


def delete(ids):
    return ids_msg(ids, count_slot=True)


def release(n, may_unmap=False):
    return id_msg(n, lambda b: b.PrependBoolSlot(1, may_unmap, False))


def retry(n, request_id):
    return id_msg(n, lambda b: b.PrependUint64Slot(1, request_id, 0))


def record(client, mtype, payload, raw=False):
    head = (0x80 if client else 0) | (0x40 if raw else 0) | (mtype & 31)
    return struct.pack("<BH", head, len(payload)) + payload


def conversation(*recs):
    return b"\x01" + b"".join(recs)


def frame(mtype, payload):
    return struct.pack("<qqq", COOKIE, mtype, len(payload)) + payload


def main(out):
    os.makedirs(out, exist_ok=True)
    seeds = {
        "put_get": conversation(
            record(0, CONNECT, empty()), record(0, CREATE, create(1, 100, 8)),
            record(0, SEAL, id_msg(1)), record(0, RELEASE, release(1)),
            record(1, GET, get([1, 2, 1], 0)), record(1, CONTAINS, id_msg(1)),
            record(1, RELEASE, release(1)), record(1, DELETE, delete([1, 2]))),
        "get_wakes": conversation(
            record(1, GET, get([5], -1)), record(0, CREATE, create(5, 64)),
            record(0, SEAL, id_msg(5)), record(1, RELEASE, release(5)),
            record(0, RELEASE, release(5))),
        "get_timeout": conversation(record(0, GET, get([6, 7], 5)), record(0, CONTAINS, id_msg(6))),
        "fallback": conversation(
            record(0, CREATE, create(2, 900000)), record(0, SEAL, id_msg(2)),
            record(1, CREATE, create(3, 600000, 0, True)), record(1, SEAL, id_msg(3)),
            record(1, RELEASE, release(3, True)), record(0, GET, get([3], 0)),
            record(0, RELEASE, release(3, True))),
        "queue_retry": conversation(
            record(0, CREATE, create(2, 1000000)), record(1, CREATE, create(4, 500000)),
            record(1, RETRY, retry(4, 2)), record(1, RETRY, retry(4, 1)),
            record(0, ABORT, id_msg(2))),
        "abort_and_errors": conversation(
            record(0, CREATE, create(8, 10)), record(1, ABORT, id_msg(8)),
            record(1, SEAL, id_msg(8)), record(0, ABORT, id_msg(8)),
            record(0, SEAL, id_msg(9)), record(0, CREATE, create(8, 10, 0, False, True)),
            record(0, CREATE, create(8, 10)), record(0, DEBUG, empty()),
            record(0, DISCONNECT, empty())),
        "bad_type": conversation(record(0, CONNECT, empty()), record(0, 25, empty()),
                                 record(1, 3, empty())),
        "raw_stream": b"\x00" + frame(CONNECT, empty()) + frame(CREATE, create(1, 10)) +
                      frame(SEAL, id_msg(1)) + frame(GET, get([1], 0)),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1])
