"""Hand calls from a library's thread to one thread of our own.

gpiozero calls a button's handler on its callback thread (lgpio's on a Pi).
Work done there — writing the ledger, asking the central — would hold up
gpiozero's next edge and run the role's code on a thread the role does not
own. A `Handoff` takes the call, returns at once, and runs it in order on its
own named thread, where the role's code may take its time.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger("kiosk.handoff")

_STOP = object()


class Handoff:
    """`put(name)` from any thread; `handler(name)` runs on the thread called `thread_name`."""

    def __init__(self, handler: Callable[[str], None], thread_name: str):
        self.handler = handler
        self.thread_name = thread_name
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> Handoff:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            self._thread.start()
        return self

    def put(self, name: str) -> None:
        """Queue one call; never blocks the caller (gpiozero's callback thread)."""
        self._queue.put(name)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                self.handler(str(item))
            except Exception:  # one failed press must not stop the presses after it
                log.exception("%s: handler failed for %r", self.thread_name, item)

    def close(self, timeout: float = 2.0) -> None:
        """Run what is queued, then stop the thread."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout)
            self._thread = None
