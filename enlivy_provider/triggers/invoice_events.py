"""EnlivyInvoiceEventTrigger: one Airflow event per invoice status change, for event-driven scheduling.

Use it in an ``AssetWatcher`` (Airflow 3): the triggerer runs it for as long as a DAG is scheduled on the
asset, and every event it yields becomes an asset event (its payload under ``extra["payload"]``), so the DAG
runs once per change (docs/events.md, "Polling for invoice status changes").

It reads the organization's invoice event trail in order (:mod:`enlivy_provider.triggers.trail_cursor`) every
``poll_interval`` seconds, keeps the changes whose new status is one of ``statuses`` (and whose invoice
belongs to one of ``customer_ids``, when given), and yields one event per change::

    {"invoice_id", "old_status", "new_status", "event_trail_id", "event_type", "occurred_at",
     "organization_id", "customer_id"}

Its position in the trail is stored in Airflow's asset state store (``asset_state_store``, which the triggerer
gives a ``BaseEventTrigger`` that watches an asset), under a key derived from the connection, statuses and
customers, so a new trigger instance - after a triggerer restart, or on another triggerer - resumes where the
last one stopped. Delivery is at least once: the position moves past a round's changes one poll interval
after they were yielded (leaving the triggerer that long to write their asset events; it does not tell the
trigger when it has), so a triggerer that stops in that window makes the next instance yield them again;
consumers de-duplicate on ``event_trail_id``.

On Airflow 2 (no ``BaseEventTrigger``, no asset watchers) the class still imports, on ``BaseTrigger``, so
importing the provider never fails; it has no use there.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS
from airflow.triggers.base import TriggerEvent

from enlivy_provider.client import EnlivyError, EnlivyRateLimitError
from enlivy_provider.invoice_status import (
    INVOICE_STATUSES,
    batched,
    is_transient,
    normalize_statuses,
)
from enlivy_provider.invoices.status_trail import status_change_of
from enlivy_provider.triggers.invoice_status import connection_client
from enlivy_provider.triggers.status_poller import backoff_delay
from enlivy_provider.triggers.trail_cursor import TrailCursor, end_of_trail, read_after

if TYPE_CHECKING:
    from enlivy_provider.client import AsyncEnlivyClient

if AIRFLOW_V_3_0_PLUS:
    from airflow.triggers.base import BaseEventTrigger as _EventTriggerBase
else:  # Airflow 2: importable, unused (event-driven scheduling is Airflow 3's)
    from airflow.triggers.base import BaseTrigger as _EventTriggerBase  # type: ignore[assignment]

__all__ = ["CURSOR_KEY_PREFIX", "EnlivyInvoiceEventTrigger", "InMemoryCursorStore"]

CURSOR_KEY_PREFIX = "enlivy_invoice_events"
START_POSITIONS = ("now", "beginning")


def _customer_ids(value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise ValueError("customer_ids: give a list of customer ids, or None for every customer")
    if not all(isinstance(item, str) and item.strip() for item in items):
        raise ValueError(f"customer_ids: every customer id must be a non-empty string, got {items!r}")
    return sorted({item.strip() for item in items})


class CursorStore(Protocol):
    """What the trigger needs of a store: Airflow's asset state accessor has this shape (``aget``/``aset``)."""

    async def aget(self, key: str, default: Any = None) -> Any: ...

    async def aset(self, key: str, value: Any) -> None: ...


class InMemoryCursorStore:
    """A cursor store that lives as long as the process: used when no asset state store was given (the
    trigger runs outside an asset watcher), and by tests that hand one store to two trigger instances."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = json.loads(json.dumps(value))  # stored as JSON, as Airflow's store does


class EnlivyInvoiceEventTrigger(_EventTriggerBase):  # type: ignore[misc,valid-type]
    """Yield one event per invoice status change into ``statuses`` (e.g. ``["paid"]``), forever.

    :param statuses: the new statuses to report (``paid``, ``overdue``, ``cancelled``, ...).
    :param customer_ids: only invoices of these customers (organization user ids); None: every invoice.
    :param enlivy_conn_id: the Enlivy connection (its token and organization).
    :param poll_interval: seconds between reads of the trail.
    :param start: where a trigger with no stored position starts: ``now`` (changes after its first read) or
        ``beginning`` (every change the trail holds).
    :param max_backoff: longest pause between reads while the API keeps failing transiently.
    """

    def __init__(
        self,
        statuses: list[str],
        customer_ids: list[str] | None = None,
        enlivy_conn_id: str = "enlivy_default",
        poll_interval: float = 60.0,
        start: str = "now",
        max_backoff: float = 300.0,
    ) -> None:
        super().__init__()
        self.statuses = sorted(normalize_statuses(statuses, name="statuses"))
        unknown = [status for status in self.statuses if status not in INVOICE_STATUSES]
        if not self.statuses or unknown:
            raise ValueError(f"statuses: expected invoice statuses, got unknown {unknown or statuses!r}")
        self.customer_ids = None if customer_ids is None else _customer_ids(customer_ids)
        if not isinstance(enlivy_conn_id, str) or not enlivy_conn_id:
            raise ValueError("enlivy_conn_id: expected a connection id")
        self.enlivy_conn_id = enlivy_conn_id
        self.poll_interval = float(poll_interval)
        if not self.poll_interval > 0:
            raise ValueError(f"poll_interval: expected seconds > 0, got {poll_interval!r}")
        if start not in START_POSITIONS:
            raise ValueError(f"start: expected one of {', '.join(START_POSITIONS)}, got {start!r}")
        self.start = start
        self.max_backoff = float(max_backoff)
        if not AIRFLOW_V_3_0_PLUS:
            self.asset_state_store: Any = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "statuses": list(self.statuses),
                "customer_ids": None if self.customer_ids is None else list(self.customer_ids),
                "enlivy_conn_id": self.enlivy_conn_id,
                "poll_interval": self.poll_interval,
                "start": self.start,
                "max_backoff": self.max_backoff,
            },
        )

    @property
    def cursor_key(self) -> str:
        """The stored position's key: what the trigger watches, not how often (changing ``poll_interval``
        makes Airflow create a new trigger, which must resume where the old one stopped)."""
        identity = json.dumps([self.enlivy_conn_id, self.statuses, self.customer_ids])
        return f"{CURSOR_KEY_PREFIX}:{hashlib.sha256(identity.encode()).hexdigest()[:24]}"

    def _cursor_store(self) -> CursorStore:
        store = getattr(self, "asset_state_store", None)
        if store is None:
            self.log.warning(
                "No asset state store (this trigger is not run by an AssetWatcher): its position in the "
                "invoice event trail is kept in memory only and is lost when the process stops"
            )
            store = self.asset_state_store = InMemoryCursorStore()
        return store  # type: ignore[no-any-return]

    async def run(self) -> AsyncIterator[TriggerEvent]:
        store = self._cursor_store()
        async with connection_client(self.enlivy_conn_id) as client:
            cursor = await self._load_cursor(store, client)
            errors_in_row = 0
            while True:
                try:
                    entries, after, more = await read_after(client, cursor)
                    changes = await self._matching_changes(client, entries)
                except EnlivyError as exc:
                    if not is_transient(exc):
                        raise
                    errors_in_row += 1
                    delay = backoff_delay(errors_in_row, self.poll_interval, self.max_backoff)
                    if isinstance(exc, EnlivyRateLimitError) and exc.retry_after:
                        delay = max(delay, float(exc.retry_after))
                    self.log.warning(
                        "Transient error #%d, next read in %.1f s: %s", errors_in_row, delay, exc
                    )
                    await asyncio.sleep(delay)
                    continue
                errors_in_row = 0
                for payload in changes:
                    self.log.info(
                        "Invoice %s: %s -> %s (trail entry %s)",
                        payload["invoice_id"],
                        payload["old_status"],
                        payload["new_status"],
                        payload["event_trail_id"],
                    )
                    yield TriggerEvent(payload)
                if changes:
                    # Move past these changes only after the triggerer has had a poll interval to write their
                    # asset events: stopping before then re-delivers them (at least once), never loses them.
                    await asyncio.sleep(self.poll_interval)
                    await store.aset(self.cursor_key, after.to_json())
                else:
                    await store.aset(self.cursor_key, after.to_json())
                    if not more:
                        await asyncio.sleep(self.poll_interval)
                cursor = after

    async def _load_cursor(self, store: CursorStore, client: AsyncEnlivyClient) -> TrailCursor:
        stored = await store.aget(self.cursor_key)
        cursor = TrailCursor.from_json(stored)
        if cursor is not None:
            self.log.info("Resuming after entry #%d of the invoice event trail", cursor.consumed)
            return cursor
        if stored is not None:
            raise ValueError(f"the stored position {self.cursor_key!r} is not a trail cursor: {stored!r}")
        cursor = await end_of_trail(client) if self.start == "now" else TrailCursor(0, None)
        await store.aset(self.cursor_key, cursor.to_json())
        self.log.info(
            "No stored position: starting after entry #%d of the invoice event trail", cursor.consumed
        )
        return cursor

    async def _matching_changes(
        self, client: AsyncEnlivyClient, entries: Iterable[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """The payloads of the entries' status changes into ``statuses`` (of ``customer_ids``), in order."""
        payloads: list[dict[str, Any]] = []
        for entry in entries:
            change = status_change_of(entry)
            if change is None or change.new not in self.statuses or change.old == change.new:
                continue
            payloads.append(
                {
                    "invoice_id": entry.get("subject_id"),
                    "old_status": change.old,
                    "new_status": change.new,
                    "event_trail_id": entry.get("id"),
                    "event_type": entry.get("event_type"),
                    "occurred_at": entry.get("occurred_at"),
                    "organization_id": entry.get("organization_id"),
                    "customer_id": None,
                }
            )
        if payloads:
            customers = await self._customers_of(client, {str(p["invoice_id"]) for p in payloads})
            for payload in payloads:
                payload["customer_id"] = customers.get(str(payload["invoice_id"]))
        if self.customer_ids is not None:
            payloads = [p for p in payloads if p["customer_id"] in self.customer_ids]
        return payloads

    async def _customers_of(self, client: AsyncEnlivyClient, invoice_ids: set[str]) -> dict[str, str | None]:
        """{invoice id: its customer}; deleted invoices included (their past changes are still reported)."""
        customers: dict[str, str | None] = {}
        for batch in batched(sorted(invoice_ids)):
            async for invoice in client.iter_invoices(ids=batch, deleted=-1):
                customers[str(invoice["id"])] = invoice.get("organization_receiver_user_id")
        return customers
