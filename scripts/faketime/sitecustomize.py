"""Loaded only by scripts/test-clock (through PYTHONPATH) when the suite runs
under libfaketime: libfaketime 0.9.10 breaks Python's time.sleep
(clock_nanosleep answers EINVAL when the monotonic clock is left real), while
Event.wait, Condition.wait, select and socket timeouts keep working. Sleep on
an Event instead, so the product and the tests run unchanged otherwise."""

import os
import threading
import time

if os.environ.get("FAKETIME"):

    def _sleep(seconds, _wait=threading.Event().wait):
        if seconds > 0:
            _wait(seconds)

    time.sleep = _sleep
