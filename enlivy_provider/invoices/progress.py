"""Progress lines of a bulk run: done/total, rate, ETA, failures — at most every ``interval`` seconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Progress:
    def __init__(
        self,
        total: int,
        emit: Callable[[str], None],
        *,
        interval: float = 5.0,
        label: str = "invoices",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.counts: dict[str, int] = {"created": 0, "existing": 0, "replayed": 0, "failed": 0}
        self._emit = emit
        self._interval = interval
        self._label = label
        self._clock = clock
        self._started = clock()
        self._last_emit = self._started
        self._lock = threading.Lock()

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def record(self, outcome: str) -> None:
        """Count one finished item; log a line when ``interval`` has passed since the last one."""
        with self._lock:
            self.counts[outcome] = self.counts.get(outcome, 0) + 1
            now = self._clock()
            due = now - self._last_emit >= self._interval
            if due:
                self._last_emit = now
        if due:
            self._emit(self.line())

    def line(self) -> str:
        elapsed = max(self._clock() - self._started, 1e-9)
        done = self.done
        rate = done / elapsed
        remaining = self.total - done
        eta = f"{remaining / rate:.0f}s" if rate > 0 and remaining else ("0s" if not remaining else "?")
        return (
            f"{self._label}: {done}/{self.total} done ({self.counts['created']} created, "
            f"{self.counts['existing']} existing, {self.counts['replayed']} replayed, "
            f"{self.counts['failed']} failed), "
            f"{rate:.1f}/s, elapsed {elapsed:.1f}s, ETA {eta}"
        )
