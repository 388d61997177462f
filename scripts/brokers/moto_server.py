"""moto_server that keeps its SNS and SQS state across a restart.

moto holds everything in memory. This wrapper loads a pickle of the SNS and SQS backends (topics,
subscriptions, queues, messages) from $EVENTWIRE_MOTO_STATE before serving, and writes it back when
the server gets SIGTERM or SIGINT, so `brokers.sh restart sns-sqs` keeps data like the other brokers.
A crash (SIGKILL) loses what changed since the last start. Arguments are moto_server's.

The snapshot must see every request the server answered with success, or a publish acknowledged
after it would be lost by the restart. So on a stop signal the server first refuses new requests
with 503 (the AWS SDKs retry those), waits for the requests in progress to finish, and only then
snapshots.

Before anything else it installs moto_sqs_speedups (moto's SQS without its per-request walk over
the whole queue); it refuses to start if moto is not the version those patches were written for.
"""

import copyreg
import os
import pickle
import sys
import threading
import time

import moto.server
import moto_sqs_speedups
from moto.backends import get_backend

SERVICES = ("sns", "sqs")
STATE = os.environ.get("EVENTWIRE_MOTO_STATE", "")

# Locks are not picklable; a restored object gets a fresh one.
copyreg.pickle(type(threading.Lock()), lambda _lock: (threading.Lock, ()))
copyreg.pickle(type(threading.RLock()), lambda _lock: (threading.RLock, ()))


def log(message: str) -> None:
    print(f"[eventwire moto] {message}", file=sys.stderr, flush=True)


def load() -> None:
    if not STATE or not os.path.exists(STATE):
        return
    try:
        with open(STATE, "rb") as f:
            data = pickle.load(f)
        for service in SERVICES:
            get_backend(service).update(data.get(service, {}))
        log(f"restored {', '.join(SERVICES)} state from {STATE}")
    except Exception as e:  # e.g. a state file from another moto version
        os.replace(STATE, STATE + ".unreadable")
        log(f"could not restore state ({e!r}); starting empty, old file kept as {STATE}.unreadable")


def save() -> None:
    if not STATE:
        return
    for attempt in range(50):
        try:
            blob = pickle.dumps({s: dict(get_backend(s)) for s in SERVICES}, protocol=pickle.HIGHEST_PROTOCOL)
            break
        except RuntimeError:  # a request thread changed a dict while it was being pickled
            time.sleep(0.02)
    else:
        log("could not take a consistent snapshot; state not saved")
        return
    tmp = STATE + ".tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, STATE)
    log(f"saved state to {STATE} ({len(blob)} bytes)")


class Gate:
    """Counts requests in progress and, once closed, turns new ones away."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.active = 0
        self.closed = False

    def wrap(self, app):
        def gated(environ, start_response):
            with self.cond:
                if self.closed:
                    start_response("503 Service Unavailable", [("Connection", "close"), ("Content-Length", "0")])
                    return [b""]
                self.active += 1
            try:
                # Materialise the body inside the gate: moto does its work while building it.
                return list(app(environ, start_response))
            finally:
                with self.cond:
                    self.active -= 1
                    self.cond.notify_all()

        return gated

    def close(self, timeout: float) -> bool:
        with self.cond:
            self.closed = True
            return self.cond.wait_for(lambda: self.active == 0, timeout)


GATE = Gate()


def stop(_signum, _frame) -> None:
    try:
        if not GATE.close(timeout=15):
            log("requests still running after 15 s; saving anyway")
        save()
    finally:
        os._exit(0)


if __name__ == "__main__":
    try:
        moto_sqs_speedups.install()
    except RuntimeError as e:
        log(f"refusing to start: {e}")
        sys.exit(1)
    load()
    # moto.server.main installs this handler for SIGTERM and SIGINT; make it save first.
    moto.server.signal_handler = stop
    dispatcher = moto.server.DomainDispatcherApplication
    moto.server.DomainDispatcherApplication = lambda *a, **k: GATE.wrap(dispatcher(*a, **k))
    moto.server.main(sys.argv[1:])
