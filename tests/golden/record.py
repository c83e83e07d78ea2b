#!/usr/bin/env python3
"""Record the frames stock Ray clients send to craylet, as golden inputs.

Starts a one-node cluster on craylet with CRAYLET_RECORD_FRAMES set (see
common/frame_record.h), runs a driver that makes the stock core worker send
every raylet-socket and plasma message it can be made to send, stops the
cluster, and leaves one file per message type in
tests/golden/<ray version>/ (raylet-NN.frame, plasma-NN.frame: a whole frame,
header and payload, as it came off the wire).

    .venv/bin/python tests/golden/record.py [--craylet build/craylet]

Run it once per supported Ray release (with that release's venv); the
recorded files are committed, and tests/unit/test_golden.c decodes them.
"""

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
import helpers  # noqa: E402

# Each step exercises some message types; comments name them (raylet socket
# RS, plasma PL) by their schema names.
DRIVER = r'''
import time
import numpy as np
import ray

ray.init(address="auto")                       # RS RegisterClientRequest, AnnounceWorkerPort; PL Connect

ref = ray.put(np.arange(1 << 18))              # PL Create, Seal
assert ray.get(ref).sum() == sum(range(1 << 18))  # PL Get, Release

@ray.remote
def slow(x):
    time.sleep(1.0)
    return x

@ray.remote
def nested():
    # Blocks inside a task: RS NotifyDirectCallTaskBlocked / Unblocked
    return ray.get(slow.remote(3))

assert ray.get(nested.remote()) == 3

bigs = [ray.put(np.zeros(200_000)) for _ in range(3)]  # in the shared store
ready, rest = ray.wait(bigs, num_returns=2, timeout=5)  # RS WaitRequest
assert len(ready) == 2

@ray.remote
class Holder:                                   # RS ActorCreationTaskDone
    def size(self, a):
        return len(a)

h = Holder.remote()
pending = slow.remote(np.zeros(100_000))       # an argument not ready yet
assert ray.get(h.size.remote(pending)) == 100_000  # RS WaitForActorCallArgsRequest

w = ray._private.worker.global_worker
big = ray.put(np.zeros(1 << 20))
if hasattr(w.core_worker, "free_objects"):    # gone in 2.60
    w.core_worker.free_objects([big], False)  # RS FreeObjectsInObjectStoreRequest

w.core_worker.push_error(w.current_job_id, "golden_frames", "recorded", time.time())  # RS PushErrorRequest

ray.get(slow.remote(5), timeout=30)            # plain get of a remote result
ray.shutdown()                                 # RS DisconnectClientRequest; PL Disconnect
print("RECORDED")
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--craylet", default=str(helpers.REPO / "build" / "craylet"))
    ap.add_argument("--out", help="default tests/golden/<ray version>")
    args = ap.parse_args()

    import ray  # the release this venv runs
    out = Path(args.out or HERE / ray.__version__)
    scratch = Path(tempfile.mkdtemp(prefix="craylet-golden-"))
    os.chmod(scratch, 0o755)
    cluster = helpers.Cluster(env={"CRAYLET_RECORD_FRAMES": str(scratch)}, name="golden")
    try:
        cluster.start_head(raylet=os.path.abspath(args.craylet), num_cpus=4, include_dashboard=False)
        r = cluster.python(DRIVER, timeout=300)
        if "RECORDED" not in r.stdout:
            sys.exit("the driver failed:\n%s" % r.output())
    finally:
        cluster.stop()
    frames = sorted(scratch.glob("*.frame"))
    if not frames:
        sys.exit("nothing recorded in %s" % scratch)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.frame"):
        old.unlink()
    for f in frames:
        shutil.copy(f, out / f.name)
    shutil.rmtree(scratch, ignore_errors=True)
    print("Ray %s: %d frames in %s: %s" % (ray.__version__, len(frames), out,
                                           " ".join(f.name for f in frames)))


if __name__ == "__main__":
    main()
