"""Write seed inputs for fuzz_push_wire (run by `make fuzz-test`): Push
requests as a sender writes them, behind the harness's slicing byte.
Usage: make_seeds_push_wire.py DIR"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from protowire import field, push_request  # noqa: E402


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    seeds = {
        "first": push_request(b"\x04" * 28, b"\x05" * 28, 0, 100, 4, bytes(range(64))),
        "last": push_request(b"\x04" * 28, b"\x05" * 28, 3, 3 * 64 + 10, 10, b"m" * 10),
        "empty": push_request(b"\x04" * 28, b"\x05" * 28, 0, 0, 0, b""),
        "data_first": field(8, b"abc") + field(2, b"\x04" * 28) + field(3, b"\x05" * 28),
    }
    for name, body in seeds.items():
        for cut in (0, 5, 200):
            with open(os.path.join(out, "%s-%d" % (name, cut)), "wb") as f:
                f.write(bytes([cut]) + body)


if __name__ == "__main__":
    main()
