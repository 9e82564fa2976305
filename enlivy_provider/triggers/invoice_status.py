"""EnlivyInvoiceStatusTrigger: waits in the triggerer until invoices reach a target status.

It polls with :class:`~enlivy_provider.client.AsyncEnlivyClient` using the same batching and the same rule as
the sensor (:mod:`enlivy_provider.invoice_status`), and fires exactly one event, whose payload is described by
:class:`InvoiceStatusEvent`:

- ``success``: every invoice is in a target status; ``statuses`` is the {id: status} map.
- ``failure``: an invoice is in a failure status, deleted or unknown to the API; ``failures`` gives reasons.
- ``timeout``: ``end_time`` passed; ``pending`` lists the invoices still waiting and their last status.
- ``error``: the wait cannot go on (401/403, another non-retryable API error, unusable connection).

Connection errors, 429 and 5xx do not end the wait: the trigger backs off and tries again.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from enlivy_provider.client import EnlivyError, EnlivyRateLimitError

if TYPE_CHECKING:
    from enlivy_provider.client import AsyncEnlivyClient
from enlivy_provider.invoice_status import (
    StatusCheck,
    afetch_statuses,
    classify,
    is_transient,
    normalize_invoice_ids,
    normalize_statuses,
    validate_status_sets,
)

EVENT_STATUSES = ("success", "failure", "timeout", "error")


@dataclass(frozen=True)
class InvoiceStatusEvent:
    """The trigger's event payload (a JSON object) and its validation on the way back into the sensor."""

    status: str
    message: str
    statuses: dict[str, str | None] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    pending: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def from_check(cls, check: StatusCheck, *, status: str, message: str) -> InvoiceStatusEvent:
        return cls(status, message, dict(check.statuses), dict(check.failures), dict(check.pending))

    def to_payload(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: Any) -> InvoiceStatusEvent:
        """Parse an event payload; raise ``ValueError`` saying what is wrong with a malformed one."""
        if not isinstance(payload, Mapping):
            raise ValueError(f"expected a dict, got {type(payload).__name__}")
        status = payload.get("status")
        if status not in EVENT_STATUSES:
            raise ValueError(f"unknown status {status!r} (expected one of {', '.join(EVENT_STATUSES)})")
        message = payload.get("message")
        if not isinstance(message, str):
            raise ValueError("'message' must be a string")
        maps = {name: payload.get(name) or {} for name in ("statuses", "failures", "pending")}
        for name, value in maps.items():
            if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in value.items()
            ):
                raise ValueError(f"{name!r} must map invoice ids to strings")
        if status == "success" and not maps["statuses"]:
            raise ValueError("a success event must carry 'statuses'")
        return cls(status, message, dict(maps["statuses"]), dict(maps["failures"]), dict(maps["pending"]))


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Delay before poll number ``attempt`` (1, 2, ...) after consecutive transient errors: doubling, jittered."""
    exponent = min(attempt - 1, 16)
    return min(cap, max(base, 1.0) * 2**exponent) * random.uniform(0.5, 1.0)


class EnlivyInvoiceStatusTrigger(BaseTrigger):
    """Fire once the invoices are all in ``target_statuses``, one is in ``failure_statuses``, or time is up.

    :param invoice_ids: ids of the invoices to watch (already normalised).
    :param target_statuses: statuses that count as done.
    :param failure_statuses: statuses that end the wait with a failure.
    :param enlivy_conn_id: the Enlivy connection.
    :param poll_interval: seconds between checks.
    :param end_time: absolute deadline (epoch seconds); None waits without limit.
    :param max_backoff: longest pause between attempts while the API keeps failing transiently.
    """

    def __init__(
        self,
        invoice_ids: list[str],
        target_statuses: list[str] | None = None,
        failure_statuses: list[str] | None = None,
        enlivy_conn_id: str = "enlivy_default",
        poll_interval: float = 60.0,
        end_time: float | None = None,
        max_backoff: float = 300.0,
    ) -> None:
        super().__init__()
        self.invoice_ids = normalize_invoice_ids(invoice_ids)
        targets = normalize_statuses(target_statuses or ["paid"], name="target_statuses")
        failures = normalize_statuses(
            ["cancelled"] if failure_statuses is None else failure_statuses, name="failure_statuses"
        )
        validate_status_sets(targets, failures)
        self.target_statuses, self.failure_statuses = list(targets), list(failures)
        self.enlivy_conn_id = enlivy_conn_id
        self.poll_interval = float(poll_interval)
        self.end_time = None if end_time is None else float(end_time)
        self.max_backoff = float(max_backoff)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "invoice_ids": list(self.invoice_ids),
                "target_statuses": list(self.target_statuses),
                "failure_statuses": list(self.failure_statuses),
                "enlivy_conn_id": self.enlivy_conn_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "max_backoff": self.max_backoff,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        event = await self._wait()
        self.log.info("Invoice status trigger fired: %s", event.message)
        yield TriggerEvent(event.to_payload())

    async def _wait(self) -> InvoiceStatusEvent:
        from enlivy_provider.hooks.enlivy import EnlivyHook

        hook = EnlivyHook(enlivy_conn_id=self.enlivy_conn_id)
        try:
            try:
                client = await hook.aget_async_client()
            except Exception as exc:  # missing or unusable connection: say so in the event, not as a crash
                return InvoiceStatusEvent(
                    "error",
                    f"Cannot use Enlivy connection {self.enlivy_conn_id!r}: {type(exc).__name__}: {exc}",
                )
            return await self._poll(client)
        finally:
            await hook.aclose()

    async def _poll(self, client: AsyncEnlivyClient) -> InvoiceStatusEvent:
        last = StatusCheck.unread(self.invoice_ids, self.target_statuses)
        errors_in_row = 0
        last_error = ""
        while True:
            try:
                observed = await afetch_statuses(client, self.invoice_ids)
            except EnlivyError as exc:
                if not is_transient(exc):
                    return InvoiceStatusEvent(
                        "error", f"Enlivy API error while checking invoice statuses: {exc}"
                    )
                errors_in_row += 1
                last_error = f" (the last {errors_in_row} check(s) failed: {exc})"
                delay = backoff_delay(errors_in_row, self.poll_interval, self.max_backoff)
                if isinstance(exc, EnlivyRateLimitError) and exc.retry_after:
                    delay = max(delay, float(exc.retry_after))
                self.log.warning("Transient error #%d, next check in %.1f s: %s", errors_in_row, delay, exc)
            else:
                errors_in_row, last_error = 0, ""
                last = classify(self.invoice_ids, observed, self.target_statuses, self.failure_statuses)
                if last.outcome == "success":
                    return InvoiceStatusEvent.from_check(
                        last, status="success", message=last.success_message()
                    )
                if last.outcome == "failure":
                    return InvoiceStatusEvent.from_check(
                        last, status="failure", message=last.failure_message()
                    )
                self.log.info("%s", last.progress_message())
                delay = self.poll_interval
            remaining = None if self.end_time is None else self.end_time - time.time()
            if remaining is not None and remaining <= 0:
                message = last.timeout_message() + last_error
                return InvoiceStatusEvent.from_check(last, status="timeout", message=message)
            await asyncio.sleep(delay if remaining is None else min(delay, remaining))
