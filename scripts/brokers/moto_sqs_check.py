"""Checks moto_sqs_speedups against stock moto, in-process (moto's SQS backend called directly).

    PY=$(ls -d .brokers/cache/moto/*/venv)/bin/python
    $PY scripts/brokers/moto_sqs_check.py semantics            # prints what a client observes
    $PY scripts/brokers/moto_sqs_check.py semantics --stock    # same on unpatched moto: must match
    $PY scripts/brokers/moto_sqs_check.py speed 1000 [fifo] [--stock] [--profile]

`semantics` runs one scenario (visibility timeouts, receive counts, redrive to a DLQ, deleting
twice and with an old handle, FIFO group blocking and deduplication, long-poll wake-up) and
prints the results; diff the patched and --stock outputs. `speed` sends N messages, then
receives (10 at a time) and deletes until the queue is empty, and prints both rates.
"""

import cProfile
import json
import os
import pstats
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
STOCK = "--stock" in sys.argv
args = [a for a in sys.argv[1:] if not a.startswith("--")]
if not STOCK:
    import moto_sqs_speedups

    moto_sqs_speedups.install()

from moto.sqs.exceptions import ReceiptHandleIsInvalid  # noqa: E402
from moto.sqs.models import sqs_backends  # noqa: E402

backend = sqs_backends["123456789012"]["us-east-1"]


def semantics() -> None:
    b = backend
    dlq = b.create_queue("d")
    policy = json.dumps({"deadLetterTargetArn": dlq.queue_arn, "maxReceiveCount": 2})
    b.create_queue("q", RedrivePolicy=policy)
    for i in range(5):
        b.send_message("q", f"m{i}")
    r = b.receive_message("q", 2, 0, 1)
    print("receive 2", [m.body for m in r], [m.approximate_receive_count for m in r])
    print("receive rest", [m.body for m in b.receive_message("q", 10, 0, 1)])
    attrs = b.get_queue_attributes("q", ["All"])
    print("counts", {k: v for k, v in attrs.items() if k.startswith("Approximate")})
    b.delete_message("q", r[0].receipt_handle)
    b.delete_message("q", r[0].receipt_handle)
    print("deleted twice: fine")
    try:
        b.delete_message("q", "bogus")
        print("bogus handle accepted")
    except ReceiptHandleIsInvalid:
        print("bogus handle invalid")
    b.change_message_visibility("q", r[1].receipt_handle, 0)
    r3 = b.receive_message("q", 10, 0, 1)
    print("after visibility 0", [m.body for m in r3], [m.approximate_receive_count for m in r3])
    time.sleep(1.1)
    r4 = b.receive_message("q", 10, 0, 1)
    print("after expiry", [m.body for m in r4], [m.approximate_receive_count for m in r4])
    time.sleep(1.1)
    print("after maxReceiveCount", [m.body for m in b.receive_message("q", 10, 0, 1)])
    print("dlq", sorted(m.body for m in b.receive_message("d", 10, 0, 30)))
    b.send_message("q", "x")
    first = b.receive_message("q", 1, 0, 0)[0]
    second = b.receive_message("q", 1, 0, 5)[0]
    b.delete_message("q", first.receipt_handle)
    print("deleted by its old handle, left:", len(b.receive_message("q", 10, 0, 0)))
    try:
        b.change_message_visibility("q", second.receipt_handle, 0)
        print("visibility of a deleted message changed")
    except ReceiptHandleIsInvalid:
        print("visibility of a deleted message: invalid handle")
    b.create_queue("f.fifo", FifoQueue="true")
    for i in range(6):
        b.send_message("f.fifo", f"f{i}", group_id=f"g{i % 2}", deduplication_id=f"id{i}")
    b.send_message("f.fifo", "duplicate", group_id="g0", deduplication_id="id0")
    r = b.receive_message("f.fifo", 10, 0, 30)
    print("fifo", [m.body for m in r])
    print("fifo, groups in flight", [m.body for m in b.receive_message("f.fifo", 10, 0, 30)])
    for m in r:
        b.delete_message("f.fifo", m.receipt_handle)
    b.send_message("f.fifo", "same id after delete", group_id="g0", deduplication_id="id0")
    print("fifo, id of a deleted message", [m.body for m in b.receive_message("f.fifo", 10, 0, 30)])
    b.create_queue("lp")
    start = time.time()
    threading.Timer(0.3, lambda: b.send_message("lp", "late")).start()
    r = b.receive_message("lp", 10, 3, 30)
    print("long poll", [m.body for m in r], "woke within 1.2 s:", time.time() - start < 1.2)


def speed(n: int, fifo: bool) -> None:
    name = "s.fifo" if fifo else "s"
    backend.create_queue(name, **({"FifoQueue": "true"} if fifo else {}))
    body = json.dumps({"specversion": "1.0", "id": "x", "type": "bench", "data": {"note": "x" * 80}})
    attrs = {"content-type": {"DataType": "String", "StringValue": "application/cloudevents+json"}}
    start = time.time()
    for i in range(n):
        extra = {"group_id": f"k{i % 16}", "deduplication_id": f"id{i}"} if fifo else {}
        backend.send_message(name, body, message_attributes=attrs, **extra)
    sent = time.time()
    done = 0
    while done < n:
        got = backend.receive_message(name, 10, 0, 30, ["All"])
        if not got:
            raise SystemExit(f"nothing to receive after {done}")
        entries = [{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(got)]
        backend.delete_message_batch(name, entries)
        done += len(got)
    end = time.time()
    label = "stock" if STOCK else "patched"
    print(f"{label} {n}{' fifo' if fifo else ''}: send {n / (sent - start):.0f}/s, receive+delete {n / (end - sent):.0f}/s")


if args[:1] == ["semantics"]:
    semantics()
elif args[:1] == ["speed"]:
    work = lambda: speed(int(args[1]), args[2:3] == ["fifo"])  # noqa: E731
    if "--profile" in sys.argv:
        profile = cProfile.Profile()
        profile.runcall(work)
        pstats.Stats(profile).sort_stats("tottime").print_stats(12)
    else:
        work()
else:
    print(__doc__)
    sys.exit(2)
