"""Protocol Buffers wire format written by hand, for tests that must send
what no well-behaved serializer would (lying lengths, wrong wire types,
fields out of order): a varint, and a field as key + value."""


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, value):
    """An int is a varint field; bytes are length-delimited."""
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    return varint(num << 3 | 2) + varint(len(value)) + value


def push_request(oid, node, index, total, meta, data, ip=b"127.0.0.1"):
    """An ObjectManagerService PushRequest, fields in number order."""
    owner = field(1, b"\x02" * 28) + field(2, ip) + field(3, 9) + field(4, b"\x03" * 28)
    return (field(1, b"\x01" * 28) + field(2, oid) + field(3, node) + field(4, owner) +
            field(5, index) + field(6, total) + field(7, meta) + field(8, data))
