"""A client-side request rate limit shared by the threads of a bulk run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Allow at most ``rate`` calls per second (a token bucket holding ``burst`` tokens, default 1: calls are
    spaced evenly, ``1/rate`` seconds apart); thread-safe. ``acquire()`` blocks until the call may go.
    ``rate=None`` disables the limit.
    """

    def __init__(
        self,
        rate: float | None,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"max_requests_per_second must be > 0 (got {rate})")
        self.rate = rate
        self._capacity = float(burst if burst is not None else 1)
        self._tokens = self._capacity
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if self.rate is None:
            return
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.rate
            self._sleep(wait)
