"""EnlivyInvoiceEventTrigger against the emulator: real HTTP, real asyncio, the real event trail.

A trigger "restart" is what the triggerer does: the old instance's ``run()`` is cancelled and a new instance,
built from the same serialized kwargs, gets the same state store (here one InMemoryCursorStore; in Airflow,
the watched asset's state store).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from airflow.triggers.base import TriggerEvent

from enlivy_provider.client import EnlivyClient
from enlivy_provider.emulator import seed as demo
from enlivy_provider.triggers.invoice_events import EnlivyInvoiceEventTrigger, InMemoryCursorStore
from enlivy_provider.triggers.trail_cursor import TrailCursorMismatchError

pytestmark = pytest.mark.usefixtures("enlivy_airflow_connection")

POLL = 0.2
DEADLINE = 30.0  # generous: a loaded 2-core machine


def _trigger(store: InMemoryCursorStore, **kwargs: Any) -> EnlivyInvoiceEventTrigger:
    kwargs.setdefault("statuses", ["paid"])
    kwargs.setdefault("poll_interval", POLL)
    trigger = EnlivyInvoiceEventTrigger(**kwargs)
    # As after a restart: a new instance from the serialized kwargs, handed the durable store.
    classpath, serialized = trigger.serialize()
    assert classpath == "enlivy_provider.triggers.invoice_events.EnlivyInvoiceEventTrigger"
    restored = EnlivyInvoiceEventTrigger(**serialized)
    restored.asset_state_store = store
    return restored


class Running:
    """A trigger's ``run()`` driven in the background of the test's event loop, events collected."""

    def __init__(self, trigger: EnlivyInvoiceEventTrigger) -> None:
        self.trigger = trigger
        self.events: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self.task = asyncio.ensure_future(self._drive(trigger.run()))

    async def _drive(self, events: AsyncIterator[TriggerEvent]) -> None:
        try:
            async for event in events:
                self.events.append(event.payload)
        except Exception as exc:  # reported by the waits below
            self.error = exc

    async def until(self, what: str, condition: Callable[[], bool], timeout: float = DEADLINE) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.error is not None:
                raise AssertionError(f"the trigger failed while waiting for {what}") from self.error
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {timeout} s for {what}; events so far: {self.events}")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Cancel, as the triggerer does on shutdown or reassignment."""
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def _consumed(store: InMemoryCursorStore, trigger: EnlivyInvoiceEventTrigger) -> int:
    cursor = store.values.get(trigger.cursor_key)
    return -1 if cursor is None else int(cursor["consumed"])


async def _in_thread(function: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(function, *args)


def test_yields_one_event_per_matching_change_in_order_with_old_and_new_status(
    make_invoices: Callable[..., list[str]], mark_invoices: Callable[..., None]
) -> None:
    ids = make_invoices(4)
    mark_invoices([ids[3]], "paid")  # before the trigger starts: start="now" does not report it

    async def scenario() -> list[dict[str, Any]]:
        store = InMemoryCursorStore()
        running = Running(_trigger(store, statuses=["paid", "overdue"]))
        await running.until("the trigger's first position", lambda: _consumed(store, running.trigger) > 0)
        for invoice_id, status in ((ids[0], "paid"), (ids[1], "cancelled"), (ids[2], "overdue")):
            await _in_thread(mark_invoices, [invoice_id], status)
        await _in_thread(mark_invoices, [ids[2]], "paid")  # overdue, then paid: two changes, both reported
        await running.until("3 status changes", lambda: len(running.events) >= 3)
        await asyncio.sleep(3 * POLL)  # a few more rounds: nothing else may come
        await running.stop()
        return running.events

    events = asyncio.run(scenario())
    assert [(e["invoice_id"], e["old_status"], e["new_status"]) for e in events] == [
        (ids[0], "pending", "paid"),
        (ids[2], "pending", "overdue"),
        (ids[2], "overdue", "paid"),
    ]
    assert all(e["event_trail_id"].startswith("org_evt_trl_") for e in events)
    assert len({e["event_trail_id"] for e in events}) == 3
    assert events[0]["customer_id"] == demo.DEMO_CUSTOMERS[0].id
    assert events[0]["organization_id"] and events[0]["occurred_at"]


def test_a_new_instance_resumes_from_the_stored_position_without_losing_or_repeating_committed_changes(
    make_invoices: Callable[..., list[str]], mark_invoices: Callable[..., None]
) -> None:
    ids = make_invoices(5)

    async def scenario() -> None:
        store = InMemoryCursorStore()
        first = Running(_trigger(store))
        await first.until("the first position", lambda: _consumed(store, first.trigger) > 0)
        await _in_thread(mark_invoices, [ids[0]], "paid")
        await first.until("the first payment", lambda: len(first.events) == 1)
        position = _consumed(store, first.trigger)
        await first.until("the position to move past it", lambda: _consumed(store, first.trigger) > position)
        await first.stop()

        # Changed while no trigger runs, and between two polls of the next one.
        await _in_thread(mark_invoices, [ids[1], ids[2]], "paid")
        second = Running(_trigger(store))
        await second.until("the two payments made while stopped", lambda: len(second.events) == 2)
        await _in_thread(mark_invoices, [ids[3]], "paid")
        await second.until("the payment made while running", lambda: len(second.events) == 3)
        # Stopped right after yielding, before the position moved past ids[3]: the next instance yields it
        # again (at least once), with the same trail entry id, so a consumer can tell it is the same change.
        await second.stop()
        await _in_thread(mark_invoices, [ids[4]], "paid")
        third = Running(_trigger(store))
        await third.until("the repeated and the new payment", lambda: len(third.events) == 2)
        await asyncio.sleep(3 * POLL)
        await third.stop()

        assert [e["invoice_id"] for e in first.events] == [ids[0]]
        assert sorted(e["invoice_id"] for e in second.events) == sorted([ids[1], ids[2], ids[3]])
        assert [e["invoice_id"] for e in third.events] == [ids[3], ids[4]]
        assert third.events[0]["event_trail_id"] == second.events[2]["event_trail_id"]

    asyncio.run(scenario())


def test_filters_by_customer_and_reports_changes_of_an_invoice_deleted_since(
    make_invoices: Callable[..., list[str]],
    mark_invoices: Callable[..., None],
    client: EnlivyClient,
    new_invoice_payload: Callable[..., dict[str, Any]],
) -> None:
    ids = make_invoices(3)  # for three demo customers, one each
    mine = client.create_invoice(new_invoice_payload(3, customer_id=demo.DEMO_CUSTOMERS[0].id))["id"]
    ids.append(mine)  # ids[0] and mine are DEMO_CUSTOMERS[0]'s
    customer = demo.DEMO_CUSTOMERS[0].id

    async def scenario() -> list[dict[str, Any]]:
        store = InMemoryCursorStore()
        running = Running(_trigger(store, customer_ids=[customer], poll_interval=2.0))
        await running.until("the first position", lambda: _consumed(store, running.trigger) > 0)
        await _in_thread(mark_invoices, ids, "paid")
        await _in_thread(client.delete_invoice, ids[0])  # deleted before the next poll reads the change
        await running.until("the customer's two payments", lambda: len(running.events) >= 2)
        await asyncio.sleep(2.5)
        await running.stop()
        return running.events

    events = asyncio.run(scenario())
    assert sorted(e["invoice_id"] for e in events) == sorted([ids[0], mine])
    assert {e["customer_id"] for e in events} == {customer}


def test_start_beginning_reports_changes_made_before_the_first_run(
    make_invoices: Callable[..., list[str]], mark_invoices: Callable[..., None]
) -> None:
    ids = make_invoices(2)
    mark_invoices([ids[1]], "cancelled")

    async def scenario() -> list[dict[str, Any]]:
        running = Running(_trigger(InMemoryCursorStore(), statuses=["cancelled"], start="beginning"))
        await running.until("the earlier cancellation", lambda: len(running.events) >= 1)
        await running.stop()
        return running.events

    (event,) = asyncio.run(scenario())
    assert (event["invoice_id"], event["old_status"], event["new_status"]) == (ids[1], "pending", "cancelled")


def test_a_position_the_trail_no_longer_matches_stops_the_trigger_instead_of_skipping(
    make_invoices: Callable[..., list[str]],
) -> None:
    make_invoices(2)
    store = InMemoryCursorStore()
    trigger = _trigger(store)
    store.values[trigger.cursor_key] = {"consumed": 1, "last_id": "org_evt_trl_not_this_one"}

    async def scenario() -> None:
        running = Running(trigger)
        await running.until("the trigger to stop", lambda: running.task.done())

        assert isinstance(running.error, TrailCursorMismatchError)
        assert "org_evt_trl_not_this_one" in str(running.error)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"statuses": []}, "statuses"),
        ({"statuses": ["void"]}, "statuses: expected invoice statuses"),
        ({"statuses": ["paid"], "customer_ids": []}, "customer_ids"),
        ({"statuses": ["paid"], "start": "yesterday"}, "start: expected one of now, beginning"),
        ({"statuses": ["paid"], "poll_interval": 0}, "poll_interval"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(kwargs: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        EnlivyInvoiceEventTrigger(**kwargs)


def test_the_cursor_key_names_what_is_watched_not_how_often() -> None:
    store = InMemoryCursorStore()
    key = _trigger(store, poll_interval=5).cursor_key
    assert _trigger(store, poll_interval=60).cursor_key == key
    assert _trigger(store, statuses=["overdue"]).cursor_key != key
    assert _trigger(store, customer_ids=["org_user_1"]).cursor_key != key
