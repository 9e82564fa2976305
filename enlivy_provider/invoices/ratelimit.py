"""A client-side request rate limit shared by the threads of a bulk run (the client's ``throttle``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MAX_PAUSE_S = 60.0  # as the client's max_retry_after: a server asking for longer is not waited for here


class RateLimiter:
    """Allow at most ``rate`` calls per second (a token bucket holding ``burst`` tokens, default 1: calls are
    spaced evenly, ``1/rate`` seconds apart); thread-safe. ``acquire()`` blocks until the call may go.
    ``rate=None`` disables the limit.

    It is also the client's :class:`~enlivy_provider.client.sync.Throttle`: when the server answers 429 with a
    ``Retry-After``, :meth:`rate_limited` holds *every* thread until then, not only the one that was refused —
    the quota is the token's, so the other threads' requests would be refused as well.
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
        self._paused_until = float("-inf")
        self._lock = threading.Lock()
        self.rate_limited_count = 0  # 429 answers heard

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                wait = self._paused_until - now
                if wait <= 0:
                    if self.rate is None:
                        return
                    self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self.rate)
                    self._updated = now
                    if self._tokens >= 1:
                        self._tokens -= 1
                        return
                    wait = (1 - self._tokens) / self.rate
            self._sleep(wait)

    def rate_limited(self, retry_after: float | None) -> None:
        """A 429: no thread sends before ``retry_after`` seconds have passed (nothing more without one: the
        client's own backoff then spaces the retry). The bucket restarts empty after the pause."""
        with self._lock:
            self.rate_limited_count += 1
            if retry_after is None or retry_after <= 0:
                return
            now = self._clock()
            self._paused_until = max(self._paused_until, now + min(retry_after, MAX_PAUSE_S))
            self._tokens = 0.0
            self._updated = self._paused_until
