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
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from enlivy_provider.client import EnlivyError, EnlivyRateLimitError
from enlivy_provider.invoice_status import (
    ObservedStatuses,
    StatusCheck,
    afetch_statuses,
    checked_flag,
    classify,
    is_transient,
    normalize_invoice_ids,
    normalize_statuses,
    validate_status_sets,
)
from enlivy_provider.triggers.status_poller import (
    PollerKey,
    Subscription,
    backoff_delay,
    open_client,
    subscribe,
)

if TYPE_CHECKING:
    from enlivy_provider.client import AsyncEnlivyClient

__all__ = ["EVENT_STATUSES", "EnlivyInvoiceStatusTrigger", "InvoiceStatusEvent", "backoff_delay"]

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


@asynccontextmanager
async def connection_client(conn_id: str) -> AsyncIterator[AsyncEnlivyClient]:
    """An async client for the Airflow connection, closed afterwards (the connection is read each time, so a
    rotated token is picked up by the next round of a long-lived shared poller)."""
    from enlivy_provider.hooks.enlivy import EnlivyHook

    hook = EnlivyHook(enlivy_conn_id=conn_id)
    try:
        yield await hook.aget_async_client()
    finally:
        await hook.aclose()


class _WaitState:
    """One trigger's view of its wait: the last check, the transient errors in a row, and the rule that turns
    a read (or a failed read) into an event. Shared by the trigger's own polling loop and the shared poller."""

    def __init__(self, trigger: EnlivyInvoiceStatusTrigger) -> None:
        self.trigger = trigger
        self.last = StatusCheck.unread(trigger.invoice_ids, trigger.target_statuses)
        self.errors_in_row = 0
        self.last_error = ""

    def read(self, observed: ObservedStatuses) -> InvoiceStatusEvent | None:
        """Apply the rule to what was read: the final event, or None to keep waiting."""
        trigger = self.trigger
        self.errors_in_row, self.last_error = 0, ""
        self.last = classify(trigger.invoice_ids, observed, trigger.target_statuses, trigger.failure_statuses)
        if self.last.outcome == "success":
            return InvoiceStatusEvent.from_check(
                self.last, status="success", message=self.last.success_message()
            )
        if self.last.outcome == "failure":
            return InvoiceStatusEvent.from_check(
                self.last, status="failure", message=self.last.failure_message()
            )
        trigger.log.info("%s", self.last.progress_message())
        return None

    def failed(self, exc: EnlivyError, next_check_in: float) -> InvoiceStatusEvent | None:
        """A read failed: an ``error`` event when waiting cannot fix it, else None (counted, logged)."""
        if not is_transient(exc):
            return InvoiceStatusEvent("error", f"Enlivy API error while checking invoice statuses: {exc}")
        self.errors_in_row += 1
        self.last_error = f" (the last {self.errors_in_row} check(s) failed: {exc})"
        self.trigger.log.warning(
            "Transient error #%d, next check in %.1f s: %s", self.errors_in_row, next_check_in, exc
        )
        return None

    def timeout(self) -> InvoiceStatusEvent:
        message = self.last.timeout_message() + self.last_error
        return InvoiceStatusEvent.from_check(self.last, status="timeout", message=message)

    def remaining(self) -> float | None:
        """Seconds to the deadline (None: no deadline)."""
        return None if self.trigger.end_time is None else self.trigger.end_time - time.time()


class EnlivyInvoiceStatusTrigger(BaseTrigger):
    """Fire once the invoices are all in ``target_statuses``, one is in ``failure_statuses``, or time is up.

    :param invoice_ids: ids of the invoices to watch (already normalised).
    :param target_statuses: statuses that count as done.
    :param failure_statuses: statuses that end the wait with a failure.
    :param enlivy_conn_id: the Enlivy connection.
    :param poll_interval: seconds between checks.
    :param end_time: absolute deadline (epoch seconds); None waits without limit.
    :param max_backoff: longest pause between attempts while the API keeps failing transiently.
    :param share_poller: True (default): poll together with the other triggers in this triggerer that have
        the same connection, ``poll_interval`` and ``max_backoff`` - one list call per 30 invoice ids of all
        of them per interval (:mod:`enlivy_provider.triggers.status_poller`). False: this trigger polls
        alone (one list call per 30 of its own ids per interval), as every trigger did before.
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
        share_poller: bool = True,
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
        self.share_poller = checked_flag(share_poller, name="share_poller")

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
                "share_poller": self.share_poller,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        event = await (self._wait_shared() if self.share_poller else self._wait())
        self.log.info("Invoice status trigger fired: %s", event.message)
        yield TriggerEvent(event.to_payload())

    # ------------------------------------------------------------------------------------ shared poller

    async def _wait_shared(self) -> InvoiceStatusEvent:
        state = _WaitState(self)
        if not self.invoice_ids:  # nothing to read: the rule decides at once, as a first poll would
            return state.read(ObservedStatuses()) or state.timeout()
        key = PollerKey(self.enlivy_conn_id, self.poll_interval, self.max_backoff)
        subscription = subscribe(key, self.invoice_ids, connection_client)
        try:  # leave the poller however the wait ends, also when Airflow cancels this trigger
            return await self._follow(subscription, state)
        finally:
            subscription.close()

    async def _follow(self, subscription: Subscription, state: _WaitState) -> InvoiceStatusEvent:
        first = True  # as when polling alone, the invoices are read once before the deadline can end the wait
        while True:
            remaining = None if first else state.remaining()
            if remaining is not None and remaining <= 0:
                return state.timeout()
            try:
                # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives in the same
                # loop iteration as the result, and the cancelled trigger would go on polling to its deadline.
                async with asyncio.timeout(remaining):
                    result = await subscription.next_result()
            except TimeoutError:
                return state.timeout()
            first = False
            if result.unusable_connection is not None:
                return InvoiceStatusEvent("error", result.unusable_connection)
            if result.error is not None:
                event = state.failed(result.error, result.next_poll_in)
            else:
                event = state.read(result.observed)
            if event is not None:
                return event

    # ------------------------------------------------------------------------------------ polling alone

    async def _wait(self) -> InvoiceStatusEvent:
        async with AsyncExitStack() as stack:
            client = await open_client(stack, connection_client, self.enlivy_conn_id)
            if isinstance(client, str):  # missing or unusable connection: say so in the event, not as a crash
                return InvoiceStatusEvent("error", client)
            return await self._poll(client)

    async def _poll(self, client: AsyncEnlivyClient) -> InvoiceStatusEvent:
        state = _WaitState(self)
        while True:
            try:
                observed = await afetch_statuses(client, self.invoice_ids)
            except EnlivyError as exc:
                delay = backoff_delay(state.errors_in_row + 1, self.poll_interval, self.max_backoff)
                if isinstance(exc, EnlivyRateLimitError) and exc.retry_after:
                    delay = max(delay, float(exc.retry_after))
                event = state.failed(exc, delay)
            else:
                delay = self.poll_interval
                event = state.read(observed)
            if event is not None:
                return event
            remaining = state.remaining()
            if remaining is not None and remaining <= 0:
                return state.timeout()
            await asyncio.sleep(delay if remaining is None else min(delay, remaining))
