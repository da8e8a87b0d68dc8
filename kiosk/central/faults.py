"""Fault injection for the bench central: the network failures devices must survive.

Bench only. Each fault applies to the next `count` API requests whose path
starts with `path` (default: every /api/v1 request):

- ``error``: answer `status` (500) without doing anything, optionally with Retry-After;
- ``slow``: wait `delay` seconds, then do the work and answer (a client with a
  shorter read timeout gives up while the server still commits);
- ``malformed``: do the work, then answer 200 with a body that is not JSON;
- ``drop``: do the work and commit, then close the connection without answering;
- ``partial``: do the work, then answer only the first half of an event batch's results;
- ``trickle``: do the work, then send the answer (status line, headers, body) one
  byte every `delay` seconds: each read of a client gets something before its
  per-read timeout, so only a deadline on the whole answer ends the wait;
- ``hang``: accept the connection and never answer (a central stuck in a lock,
  a half-dead proxy): nothing is done, and after `delay` seconds the connection
  is closed. Every call costs the client its whole timeout.
- ``answer``: do the work, then answer `status` with `body` (text) as
  `content_type` and `headers` instead: a central (or a proxy before it) that
  sends valid JSON of the wrong shape, an HTML page with 200, or a redirect.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field

KINDS = ("error", "slow", "malformed", "drop", "partial", "trickle", "answer", "hang")


@dataclass
class Fault:
    kind: str
    count: int = 1
    status: int = 500
    retry_after: float | None = None
    delay: float = 0.0
    path: str = "/api/v1/"
    body: str = ""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"fault kind {self.kind!r}: use one of {', '.join(KINDS)}")
        if not isinstance(self.count, int) or self.count < 1:
            raise ValueError("count must be a positive integer")
        if self.kind == "error" and not 400 <= int(self.status) <= 599:
            raise ValueError("status must be 400..599")
        if self.kind == "answer" and not 200 <= int(self.status) <= 599:
            raise ValueError("status must be 200..599")
        if not 0 <= float(self.delay) <= 120:
            raise ValueError("delay must be 0..120 seconds")


class FaultPlan:
    def __init__(self):
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, path: str) -> Fault | None:
        """The fault this request gets, if any; each use counts down."""
        with self._lock:
            for f in self._faults:
                if path.startswith(f.path):
                    f.count -= 1
                    if f.count <= 0:
                        self._faults.remove(f)
                    return f
        return None

    def pending(self) -> list[dict]:
        with self._lock:
            return [asdict(f) for f in self._faults]
