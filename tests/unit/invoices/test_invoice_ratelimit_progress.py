from __future__ import annotations

import threading

import pytest

from enlivy_provider.invoices.progress import Progress
from enlivy_provider.invoices.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_rate_limiter_spaces_calls_evenly() -> None:
    clock = FakeClock()
    limiter = RateLimiter(4, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(9):
        limiter.acquire()
        times.append(clock.now)
    assert times[0] == 0.0
    assert times[-1] == pytest.approx(2.0)  # 9 calls at 4/s: the 9th goes at t = 8/4


def test_rate_limiter_off_and_bad_rate() -> None:
    RateLimiter(None).acquire()
    with pytest.raises(ValueError, match="must be > 0"):
        RateLimiter(0)


def test_progress_logs_at_most_every_interval_with_rate_and_eta() -> None:
    clock = FakeClock()
    lines: list[str] = []
    progress = Progress(10, lines.append, interval=5.0, clock=clock)
    for step in range(10):
        clock.now = step + 1.0
        progress.record("failed" if step == 3 else "created")
    assert len(lines) == 2  # at t=5 and t=10, not once per item
    assert (
        lines[0]
        == "invoices: 5/10 done (4 created, 0 existing, 0 replayed, 1 failed), 1.0/s, elapsed 5.0s, ETA 5s"
    )
    assert progress.line().startswith("invoices: 10/10 done (9 created, 0 existing, 0 replayed, 1 failed)")


def test_a_429_holds_every_caller_for_its_retry_after() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)
    limiter.acquire()  # t = 0
    limiter.rate_limited(2.0)  # one thread's request was refused: the token's quota is spent
    limiter.acquire()
    assert clock.now >= 2.0  # the next request of *any* thread waits for the Retry-After
    assert limiter.rate_limited_count == 1
    unlimited = RateLimiter(None, clock=clock, sleep=clock.sleep)
    unlimited.rate_limited(None)  # no Retry-After: the client's own backoff spaces the retry
    before = clock.now
    unlimited.acquire()
    assert clock.now == before
    unlimited.rate_limited(1.5)
    unlimited.acquire()
    assert clock.now == pytest.approx(before + 1.5)
    unlimited.rate_limited(3600)  # a server asking for an hour: capped, as the client caps Retry-After
    unlimited.acquire()
    assert clock.now == pytest.approx(before + 1.5 + 60)
