# polling: waiting for a condition with a deadline, and timing a block.
"""wait_for() polls a predicate until it holds or the deadline passes; timer() times a block."""

import contextlib
import time


def wait_for(pred, timeout, interval=0.02, what="condition"):
    """Poll pred() until it returns a true value; return (value, seconds waited)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last, time.monotonic() - t0
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.2fs waiting for %s (last: %r)"
                                 % (timeout, what, last))
        time.sleep(interval)


@contextlib.contextmanager
def timer():
    t = {"start": time.monotonic()}
    yield t
    t["elapsed"] = time.monotonic() - t["start"]
