"""One retry delay rule for every background loop: exponential, full jitter, capped.

Full jitter (a delay drawn uniformly from 0 up to the exponential bound)
matters in a hall: when the central or the hall's switch comes back, every
device saw the same failures at the same moments, and without jitter they
would all retry in lockstep and knock the central over again. The server's
Retry-After is honoured as a lower bound. Delays are for the monotonic clock:
a Pi's wall clock jumps when NTP arrives.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable


class Backoff:
    """failure() -> seconds to wait; success() starts over.

    base: bound of the first delay; each failure doubles it, up to cap.
    floor: no delay is shorter (so a loop never spins).
    max_retry_after: a server asking for longer than this is not waited for
    longer (a misconfigured proxy must not park a device for a day).
    rng: a random.Random; tests pass a seeded one.
    """

    def __init__(
        self,
        base: float = 1.0,
        cap: float = 60.0,
        *,
        floor: float = 0.0,
        max_retry_after: float = 600.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not 0 < base <= cap:
            raise ValueError(f"backoff base {base} and cap {cap}: need 0 < base <= cap")
        self.base, self.cap, self.floor, self.max_retry_after = base, cap, floor, max_retry_after
        self.rng = rng or random.Random()
        self.clock = clock
        self.failures = 0
        self.next_at = 0.0  # monotonic time the next try is due

    def bound(self) -> float:
        """The largest delay the current failure count can draw."""
        return min(self.cap, self.base * 2.0 ** max(0, self.failures - 1))

    def failure(self, retry_after: float | None = None) -> float:
        """Count a failure; return the delay before the next try (and set next_at)."""
        self.failures += 1
        delay = self.rng.uniform(0, self.bound())
        if retry_after is not None and retry_after > 0:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return self._due_in(max(delay, self.floor))

    def success(self) -> None:
        self.failures = 0
        self.next_at = 0.0

    def remaining(self) -> float:
        return max(0.0, self.next_at - self.clock())

    def _due_in(self, delay: float) -> float:
        self.next_at = self.clock() + delay
        return delay
