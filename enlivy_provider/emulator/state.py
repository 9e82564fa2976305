"""The running emulator's mutable state: store, invoice service, config, counters and scripted faults."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass, replace
from typing import Any

from enlivy_provider.emulator.charging import ChargeOutcomeBook
from enlivy_provider.emulator.faults import FaultBook, RateLimiter
from enlivy_provider.emulator.invoicing import InvoiceService
from enlivy_provider.emulator.seeding import apply_seed
from enlivy_provider.emulator.store import Store
from enlivy_provider.emulator.trails import EventTrailLog
from enlivy_provider.emulator.webhook_delivery import WebhookDispatcher

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class EmulatorConfig:
    latency_ms: int = 0
    rate_limit: float | None = None  # requests per second before 429
    auto_pay_after: float | None = None  # seconds
    replay_header: bool = True  # send Idempotent-Replayed: true on replays (off: a server that does not say)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: How many requests the request log keeps (the oldest go first); enough for a benchmark's rounds.
REQUEST_LOG_SIZE = 20_000


class RequestCounters:
    """Requests per ``"METHOD <route template>"``; ``writes`` = writes under /organizations/…;
    ``rate_limited`` = answers 429 (the ``rate_limit`` config or a ``rate_limit`` fault);
    ``in_flight`` = per ``"METHOD <path>"``, requests counted but not finished yet, so a test can wait for
    its own request to end instead of sleeping (requests of earlier tests may still be running).

    The request log keeps the last :data:`REQUEST_LOG_SIZE` requests in arrival order with their decoded
    query, so a test can see *what* was asked (e.g. which invoice ids each list call carried), not only how
    often."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: Counter[str] = Counter()
        self._writes = 0
        self._rate_limited = 0
        self._in_flight: Counter[str] = Counter()
        self._log: deque[dict[str, str]] = deque(maxlen=REQUEST_LOG_SIZE)

    def hit(self, method: str, template: str, path: str, query: str = "") -> None:
        with self._lock:
            self._routes[f"{method} {template}"] += 1
            self._in_flight[f"{method} {path}"] += 1
            if method in WRITE_METHODS and path.startswith("/organizations/"):
                self._writes += 1
            self._log.append({"method": method, "route": template, "path": path, "query": query})

    def log(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self._log)

    def limited(self) -> None:
        with self._lock:
            self._rate_limited += 1

    def done(self, method: str, path: str) -> None:
        with self._lock:
            self._in_flight[f"{method} {path}"] -= 1
            if self._in_flight[f"{method} {path}"] <= 0:
                del self._in_flight[f"{method} {path}"]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "routes": dict(self._routes),
                "writes": self._writes,
                "rate_limited": self._rate_limited,
                "total": sum(self._routes.values()),
                "in_flight": dict(self._in_flight),
            }

    def clear(self) -> None:
        """Zero the counts and empty the request log; ``in_flight`` stays, since those requests are still running."""
        with self._lock:
            self._routes.clear()
            self._writes = 0
            self._log.clear()
            self._rate_limited = 0


class EmulatorState:
    def __init__(self, store: Store, config: EmulatorConfig) -> None:
        self.store = store
        self.invoices = InvoiceService(store)
        self.trails = EventTrailLog(store)
        self.invoices.observers.append(self.trails.observe)
        self.webhooks = WebhookDispatcher(store)
        self.invoices.observers.append(self.webhooks.observe)
        self.charge_outcomes = ChargeOutcomeBook()
        self.startup_config = replace(config)
        self.config = config
        self.counters = RequestCounters()
        self.faults = FaultBook()
        self.rate_limiter = RateLimiter(config.rate_limit)

    def configure(self, changes: dict[str, Any]) -> EmulatorConfig:
        for name, value in changes.items():
            setattr(self.config, name, value)
        self.rate_limiter = RateLimiter(self.config.rate_limit)
        return self.config

    def reset(self, seed: str = "demo", extra_customers: int = 0) -> None:
        """Wipe data, event trails, webhook deliveries (queued ones are dropped), counters, faults, charge
        outcomes and idempotency keys; config back to the startup (CLI) values."""
        with self.invoices.lock:
            self.webhooks.reset()
            apply_seed(self.store, seed, extra_customers)
            self.trails.wipe()
        self.counters.clear()
        self.faults.clear()
        self.charge_outcomes.clear()
        self.configure(asdict(self.startup_config))
