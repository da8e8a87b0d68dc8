"""What the bench central allows one client: connections, time to send a request, lookup rate.

The numbers are the contract's (docs/central-api.yaml, "Limits"); tests shorten
the timeouts. The server library (uvicorn) enforces the keep-alive timeout;
the rest is enforced in kiosk/central/asgi.py and server.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    # Connections open at once; one more closes the oldest one waiting for a
    # request (503), or is refused 503 itself when all are busy: a flood of idle
    # sockets can neither use up the file descriptors nor keep devices out.
    max_connections: int = 500  # well under the usual 1,024 file descriptors
    # From a connection's first byte (or its opening) to the end of the request
    # headers: a slow-loris client that trickles its headers gets 408.
    header_timeout: float = 10.0
    # From the end of the headers to the last byte of the body: 408 as well.
    body_timeout: float = 30.0
    # An idle kept-alive connection is closed after this long (devices reconnect).
    keep_alive: float = 15.0
    # Case lookups per device: a burst, then one every lookup_interval seconds.
    lookup_burst: int = 10
    lookup_interval: float = 3.0
    # Bench pages, all clients together: a burst, then one every bench_interval
    # seconds (a technician's browser needs a few a second; a script polling
    # /bench/events.json without pause would otherwise take the CPU from the devices).
    bench_burst: int = 8
    bench_interval: float = 0.25
    # Requests handled at once (threads); long-polls have their own, larger pool.
    workers: int = 16
    long_poll_workers: int = 64


class RateLimit:
    """A token bucket per key: `take` answers None (go on) or the seconds until the next token."""

    def __init__(self, burst: int, interval: float, clock: Callable[[], float] = time.monotonic):
        self.burst, self.interval, self.clock = burst, interval, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str) -> float | None:
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) / self.interval)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return None
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) * self.interval
