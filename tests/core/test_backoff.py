"""The one retry rule: exponential bound, full jitter, cap, Retry-After, monotonic clock."""

import random
import threading

import pytest

from kiosk.core.backoff import Backoff
from kiosk.roles.pad.service import WindowWatcher


def test_full_jitter_under_a_doubling_bound_up_to_the_cap():
    b = Backoff(base=1.0, cap=8.0, rng=random.Random(7))
    delays = [b.failure() for _ in range(6)]
    bounds = [1, 2, 4, 8, 8, 8]
    ref = random.Random(7)
    assert delays == [ref.uniform(0, x) for x in bounds]  # deterministic with a seeded random
    assert all(0 <= d <= x for d, x in zip(delays, bounds, strict=True))


def test_two_devices_with_the_same_failures_do_not_wait_alike():
    a, b = Backoff(rng=random.Random(1)), Backoff(rng=random.Random(2))
    assert [a.failure() for _ in range(4)] != [b.failure() for _ in range(4)]


def test_retry_after_is_a_lower_bound_but_not_forever():
    b = Backoff(base=1.0, cap=2.0, rng=random.Random(0), max_retry_after=600)
    assert b.failure(retry_after=45) == 45
    assert b.failure(retry_after=86400) == 600


def test_floor_success_and_the_monotonic_due_time():
    now = [100.0]
    b = Backoff(base=1.0, cap=4.0, floor=0.5, rng=random.Random(3), clock=lambda: now[0])
    d = b.failure()
    assert d >= 0.5 and b.next_at == 100.0 + d and b.remaining() == d
    now[0] += d + 1
    assert b.remaining() == 0.0
    b.failure()
    b.success()
    assert b.failures == 0 and b.bound() == 1.0


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError):
        Backoff(base=0, cap=1)


class _Down:
    def window_session(self, *a, **kw):
        raise ConnectionError("central down")


class _Pad:
    window = "01"

    def set_online(self, online):
        self.online = online


class _Waits(threading.Event):
    """Records the watcher's waits instead of sleeping; stops it after a few."""

    def __init__(self, n):
        super().__init__()
        self.waits, self.n = [], n

    def wait(self, timeout=None):
        self.waits.append(timeout)
        if len(self.waits) >= self.n:
            self.set()
        return self.is_set()


def _watch(seed):
    w = WindowWatcher(_Pad(), lambda: _Down(), poll_wait=1, backoff=Backoff(1.0, 30.0, rng=random.Random(seed)))
    w._stop_event = _Waits(6)
    w.run()
    return w._stop_event.waits


def test_the_pad_window_watcher_reconnects_with_jitter():
    first, second = _watch(1), _watch(2)
    assert first != second  # two pads of a hall: not in lockstep
    assert first != [1.0, 2.0, 4.0, 8.0, 16.0, 30.0]  # not the old fixed doubling
    ref = random.Random(1)
    assert first == [ref.uniform(0, x) for x in (1, 2, 4, 8, 16, 30)]


def test_the_pad_watcher_jitters_by_default():
    w = WindowWatcher(_Pad(), lambda: None, poll_wait=1)
    assert isinstance(w.backoff, Backoff) and w.backoff.cap == 30.0
