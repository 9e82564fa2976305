"""Triggers in one event loop share one status poller: real asyncio, the real trigger, the emulator over HTTP.

What each list call asked for is read from the emulator's request log, so every assertion about batching,
cancellation and faults is about requests that really reached the API. Waits are bounded loops on the
emulator's log (never a sleep that hopes); nothing asserts on elapsed time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from airflow.triggers.base import TriggerEvent

from enlivy_provider.triggers.invoice_status import EnlivyInvoiceStatusTrigger
from enlivy_provider.triggers.status_poller import active_pollers, loops_with_pollers

pytestmark = pytest.mark.usefixtures("enlivy_airflow_connection")

WAIT_S = 60.0  # upper bound of every wait below; a healthy run needs a few seconds


def _trigger(ids: list[str], **kwargs: Any) -> EnlivyInvoiceStatusTrigger:
    kwargs.setdefault("poll_interval", 0.2)
    kwargs.setdefault("end_time", time.time() + WAIT_S)
    return EnlivyInvoiceStatusTrigger(invoice_ids=ids, **kwargs)


async def _first_event(trigger: EnlivyInvoiceStatusTrigger) -> dict[str, Any]:
    events: list[TriggerEvent] = [event async for event in trigger.run()]
    assert len(events) == 1, events
    payload: dict[str, Any] = events[0].payload
    return payload


def _start(triggers: list[EnlivyInvoiceStatusTrigger]) -> list[asyncio.Task[dict[str, Any]]]:
    """Start the triggers as tasks of the running loop, as the triggerer does (all join the first round)."""
    return [asyncio.create_task(_first_event(trigger)) for trigger in triggers]


def _run_all(triggers: list[EnlivyInvoiceStatusTrigger]) -> list[dict[str, Any]]:
    """Run the triggers together in one new event loop until each has fired; their payloads, in order."""

    async def scenario() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*_start(triggers)))

    return asyncio.run(scenario())


async def _until(probe: Callable[[], Any], what: str) -> Any:
    """Await ``probe()`` (run in a thread: it talks HTTP) until it returns something truthy; bounded."""
    deadline = time.monotonic() + WAIT_S
    while not (result := await asyncio.to_thread(probe)):
        assert time.monotonic() < deadline, f"waited {WAIT_S:.0f}s for {what}"
        await asyncio.sleep(0.05)
    return result


async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel trigger tasks as Airflow does, and wait until each has run its cleanup."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with pytest.raises(asyncio.CancelledError):
            await task


async def _pollers_have_stopped() -> None:
    """Let the cancelled poller tasks finish (they end within a few loop iterations)."""
    for _ in range(100):
        if not active_pollers():
            return
        await asyncio.sleep(0)
    assert not active_pollers(), active_pollers()


def test_65_triggers_in_one_loop_cost_3_list_calls_per_round_instead_of_65(
    make_invoices: Callable[..., list[str]],
    mark_invoices: Callable[..., None],
    enlivy_emulator: Any,
    list_call_ids: Callable[[], list[list[str]]],
) -> None:
    ids = make_invoices(65)
    enlivy_emulator.reset_counters()

    async def scenario() -> list[dict[str, Any]]:
        tasks = _start([_trigger([invoice_id]) for invoice_id in ids])
        await _until(lambda: len(list_call_ids()) >= 6, "two polling rounds")
        (poller,) = active_pollers().values()  # one poller for all 65 triggers
        assert poller.subscribers == 65
        assert not any(task.done() for task in tasks), "a trigger fired before any invoice was paid"
        await asyncio.to_thread(mark_invoices, ids)
        events = await asyncio.gather(*tasks)
        await _pollers_have_stopped()  # the last trigger to leave stopped the poller
        return events

    events = asyncio.run(scenario())

    assert [event["status"] for event in events] == ["success"] * 65
    assert [event["statuses"] for event in events] == [{invoice_id: "paid"} for invoice_id in ids]
    calls = list_call_ids()
    # Rounds 1 and 2 (the invoices were unpaid throughout): ceil(65 / 30) = 3 calls, every id once.
    for round_calls in (calls[0:3], calls[3:6]):
        assert [len(call) for call in round_calls] == [30, 30, 5]
        assert [invoice_id for call in round_calls for invoice_id in call] == ids
    assert all(len(call) <= 30 for call in calls)
    assert loops_with_pollers() == 0


def test_a_cancelled_trigger_leaves_the_batch_but_ids_another_trigger_wants_stay(
    make_invoices: Callable[..., list[str]],
    list_call_ids: Callable[[], list[list[str]]],
    enlivy_emulator: Any,
) -> None:
    a, b, c, shared = make_invoices(4)
    enlivy_emulator.reset_counters()

    async def scenario() -> tuple[list[list[str]], int]:
        keep_a, cancelled, keep_c = _start([_trigger([a]), _trigger([b, shared]), _trigger([c, shared])])
        await _until(list_call_ids, "the first polling round")
        await _cancel([cancelled])
        (poller,) = active_pollers().values()
        assert poller.subscribers == 2
        calls_at_cancel = len(await asyncio.to_thread(list_call_ids))

        def two_more_rounds() -> list[list[str]] | None:
            calls = list_call_ids()
            return calls if len(calls) >= calls_at_cancel + 2 else None

        # One round may have been on its way when the trigger left; the round after it is the proof.
        calls = await _until(two_more_rounds, "two more rounds after the cancellation")
        await _cancel([keep_a, keep_c])
        await _pollers_have_stopped()
        return calls, calls_at_cancel

    calls, calls_at_cancel = asyncio.run(scenario())

    assert calls[0] == [a, b, shared, c]  # the shared id is asked for once
    after = calls[calls_at_cancel + 1 :]
    assert after and all(call == [a, c, shared] for call in after)  # b is gone; C still wants the shared id
    assert loops_with_pollers() == 0


def test_triggers_joining_a_running_poller_are_read_together_at_once_not_a_whole_interval_later(
    make_invoices: Callable[..., list[str]],
    mark_invoices: Callable[..., None],
    list_call_ids: Callable[[], list[list[str]]],
    enlivy_emulator: Any,
) -> None:
    first, late_1, late_2 = make_invoices(3)
    mark_invoices([late_1, late_2])
    enlivy_emulator.reset_counters()
    hourly = {"poll_interval": 3600.0}  # the next regular round is an hour away

    async def scenario() -> list[dict[str, Any]]:
        (waiting,) = _start([_trigger([first], **hourly)])
        await _until(list_call_ids, "the first round")
        late = _start([_trigger([late_1], **hourly), _trigger([late_2], **hourly)])
        events = await asyncio.wait_for(asyncio.gather(*late), WAIT_S)
        assert not waiting.done()
        await _cancel([waiting])
        return list(events)

    events = asyncio.run(scenario())

    assert [event["statuses"] for event in events] == [{late_1: "paid"}, {late_2: "paid"}]
    assert list_call_ids() == [[first], [late_1, late_2]]  # the two newcomers shared one call


def test_a_trigger_reads_once_even_when_its_deadline_has_passed_as_when_polling_alone(
    make_invoices: Callable[..., list[str]], mark_invoices: Callable[..., None]
) -> None:
    paid, pending = make_invoices(2)
    mark_invoices([paid])
    past = time.time() - 1

    events = _run_all([_trigger([paid], end_time=past), _trigger([pending], end_time=past)])

    assert events[0]["status"] == "success"
    assert events[1]["status"] == "timeout" and events[1]["pending"] == {pending: "pending"}


def test_each_trigger_applies_its_own_rule_to_one_shared_read(
    make_invoices: Callable[..., list[str]],
    mark_invoices: Callable[..., None],
    list_call_ids: Callable[[], list[list[str]]],
    enlivy_emulator: Any,
) -> None:
    pending, paid, cancelled = make_invoices(3)
    mark_invoices([paid])
    mark_invoices([cancelled], status="cancelled")
    missing = "org_inv_doesNotExist000000000001"
    enlivy_emulator.reset_counters()

    triggers = [
        _trigger([pending], target_statuses=["pending"]),
        _trigger([pending, paid], failure_statuses=["pending"]),
        _trigger([paid]),
        _trigger([paid, cancelled]),
        _trigger([cancelled], target_statuses=["cancelled"], failure_statuses=[]),
        _trigger([pending, missing]),
        _trigger([pending], end_time=time.time() + 1.0),  # waits for "paid": times out
    ]

    events = _run_all(triggers)

    assert [(event["status"], event["failures"]) for event in events] == [
        ("success", {}),
        ("failure", {pending: "status pending"}),
        ("success", {}),
        ("failure", {cancelled: "status cancelled"}),
        ("success", {}),
        ("failure", {missing: "not found"}),
        ("timeout", {}),
    ]
    assert events[0]["statuses"] == {pending: "pending"}
    assert events[4]["statuses"] == {cancelled: "cancelled"}
    assert events[6]["pending"] == {pending: "pending"}
    calls = list_call_ids()
    assert calls[0] == [pending, paid, cancelled, missing]  # one call answered all seven triggers
    assert all(call == [pending] for call in calls[1:])  # then only the trigger still waiting is polled


def test_422_on_one_batch_reaches_only_the_trigger_whose_id_caused_it(
    make_invoices: Callable[..., list[str]],
    enlivy_emulator: Any,
    list_call_ids: Callable[[], list[list[str]]],
) -> None:
    ids = make_invoices(45, status="paid")
    culprit = ids[40]
    enlivy_emulator.add_fault(
        "GET", "/organizations/*/invoices", "error", status=422, times=100, query=f"*{culprit}*"
    )
    enlivy_emulator.reset_counters()

    events = _run_all([_trigger([invoice_id]) for invoice_id in ids])

    assert events[40]["status"] == "error"
    assert "422" in events[40]["message"]
    others = events[:40] + events[41:]
    assert [event["statuses"] for event in others] == [{i: "paid"} for i in ids[:40] + ids[41:]]
    # The refused batch was read again one trigger at a time: 2 batch calls + 15 single ones.
    assert list_call_ids() == [ids[:30], ids[30:], *([invoice_id] for invoice_id in ids[30:])]


def test_404_on_one_batch_ends_the_triggers_of_that_batch_only(
    make_invoices: Callable[..., list[str]],
    enlivy_emulator: Any,
    list_call_ids: Callable[[], list[list[str]]],
) -> None:
    ids = make_invoices(45, status="paid")
    enlivy_emulator.add_fault(
        "GET", "/organizations/*/invoices", "error", status=404, times=100, query=f"*{ids[40]}*"
    )
    enlivy_emulator.reset_counters()

    events = _run_all([_trigger([invoice_id]) for invoice_id in ids])

    assert [event["status"] for event in events] == ["success"] * 30 + ["error"] * 15
    assert all("404" in event["message"] for event in events[30:])
    assert list_call_ids() == [ids[:30], ids[30:]]  # a 404 is not about one id: no second read


def test_5xx_on_one_batch_only_delays_that_batch_to_the_next_round(
    make_invoices: Callable[..., list[str]],
    enlivy_emulator: Any,
    list_call_ids: Callable[[], list[list[str]]],
    no_retry_conn_id: str,
) -> None:
    ids = make_invoices(45, status="paid")
    enlivy_emulator.add_fault("GET", "/organizations/*/invoices", "error", status=503, query=f"*{ids[40]}*")
    enlivy_emulator.reset_counters()
    triggers = [_trigger([invoice_id], enlivy_conn_id=no_retry_conn_id) for invoice_id in ids]

    events = _run_all(triggers)

    assert [event["statuses"] for event in events] == [{i: "paid"} for i in ids]
    # Round 1: the first batch is read, the second gets the 503; round 2 reads only the second again.
    assert list_call_ids() == [ids[:30], ids[30:], ids[30:]]


def test_api_failing_for_one_batch_until_the_deadline_times_out_that_batch_only(
    make_invoices: Callable[..., list[str]], enlivy_emulator: Any, no_retry_conn_id: str
) -> None:
    ids = make_invoices(45, status="paid")
    enlivy_emulator.add_fault(
        "GET", "/organizations/*/invoices", "error", status=503, times=10_000, query=f"*{ids[40]}*"
    )
    deadline = time.time() + 2.0
    triggers = [_trigger([i], enlivy_conn_id=no_retry_conn_id, end_time=deadline) for i in ids]

    events = _run_all(triggers)

    assert [event["status"] for event in events] == ["success"] * 30 + ["timeout"] * 15
    for invoice_id, event in zip(ids[30:], events[30:], strict=True):
        assert event["pending"] == {invoice_id: None}
        assert "status not read" in event["message"] and "503" in event["message"]


def test_429_ends_the_round_and_the_next_round_starts_with_the_batches_not_read(
    make_invoices: Callable[..., list[str]],
    mark_invoices: Callable[..., None],
    enlivy_emulator: Any,
    list_call_ids: Callable[[], list[list[str]]],
    no_retry_conn_id: str,
) -> None:
    ids = make_invoices(65)
    mark_invoices(ids[30:])  # the first batch stays pending, so its triggers stay subscribed
    enlivy_emulator.add_fault(
        "GET", "/organizations/*/invoices", "rate_limit", retry_after=1, query=f"*{ids[40]}*"
    )
    enlivy_emulator.reset_counters()
    triggers = [_trigger([invoice_id], enlivy_conn_id=no_retry_conn_id) for invoice_id in ids]

    async def scenario() -> list[dict[str, Any]]:
        tasks = _start(triggers)
        events = await asyncio.gather(*tasks[30:])
        await _cancel(tasks[:30])
        await _pollers_have_stopped()
        return list(events)

    events = asyncio.run(scenario())

    assert [event["statuses"] for event in events] == [{i: "paid"} for i in ids[30:]]
    calls = list_call_ids()
    # Round 1: batch 1, then batch 2 gets the 429 and batch 3 is not asked for. Round 2 starts at batch 2.
    assert calls[:2] == [ids[:30], ids[30:60]]
    rotated = ids[30:] + ids[:30]
    assert calls[2:5] == [rotated[:30], rotated[30:60], rotated[60:]]


def test_share_poller_false_polls_alone_as_before(
    make_invoices: Callable[..., list[str]],
    enlivy_emulator: Any,
    list_call_ids: Callable[[], list[list[str]]],
) -> None:
    ids = make_invoices(35, status="paid")

    def calls_for(share_poller: bool) -> list[list[str]]:
        enlivy_emulator.reset_counters()

        async def scenario() -> list[dict[str, Any]]:
            tasks = _start([_trigger([i], share_poller=share_poller) for i in ids])
            if not share_poller:
                assert not active_pollers()
            return list(await asyncio.gather(*tasks))

        events = asyncio.run(scenario())
        assert [event["statuses"] for event in events] == [{i: "paid"} for i in ids]
        return list_call_ids()

    assert calls_for(share_poller=True) == [ids[:30], ids[30:]]
    assert sorted(calls_for(share_poller=False)) == sorted([i] for i in ids)  # 35 calls, one per trigger


def test_connection_interval_and_backoff_cap_each_make_a_separate_poller(
    make_invoices: Callable[..., list[str]], no_retry_conn_id: str
) -> None:
    (invoice_id,) = make_invoices(1)

    async def scenario() -> set[tuple[str, float, float]]:
        tasks = _start(
            [
                _trigger([invoice_id]),
                _trigger([invoice_id]),
                _trigger([invoice_id], enlivy_conn_id=no_retry_conn_id),
                _trigger([invoice_id], poll_interval=0.3),
                _trigger([invoice_id], max_backoff=5),
            ]
        )
        await asyncio.sleep(0)  # every trigger has subscribed
        keys = {(k.conn_id, k.poll_interval, k.max_backoff) for k in active_pollers()}
        await _cancel(tasks)
        await _pollers_have_stopped()
        return keys

    assert asyncio.run(scenario()) == {
        ("enlivy_default", 0.2, 300.0),
        (no_retry_conn_id, 0.2, 300.0),
        ("enlivy_default", 0.3, 300.0),
        ("enlivy_default", 0.2, 5.0),
    }


def test_an_unusable_connection_ends_every_subscriber_with_an_error_event() -> None:
    events = _run_all([_trigger([f"org_inv_{n}"], enlivy_conn_id="no_such_connection") for n in range(3)])

    assert [event["status"] for event in events] == ["error"] * 3
    assert all("Cannot use Enlivy connection 'no_such_connection'" in event["message"] for event in events)
    assert loops_with_pollers() == 0


def test_two_event_loops_in_two_threads_never_share_a_poller(
    make_invoices: Callable[..., list[str]],
    mark_invoices: Callable[..., None],
    list_call_ids: Callable[[], list[list[str]]],
    enlivy_emulator: Any,
) -> None:
    ids = make_invoices(4)
    by_loop = {"first": ids[:2], "second": ids[2:]}
    enlivy_emulator.reset_counters()
    both_subscribed = threading.Barrier(2, timeout=WAIT_S)
    both_polled = threading.Barrier(2, timeout=WAIT_S)
    events: dict[str, list[dict[str, Any]]] = {}
    pollers_seen: dict[str, int] = {}

    async def scenario(name: str) -> list[dict[str, Any]]:
        tasks = _start([_trigger([invoice_id]) for invoice_id in by_loop[name]])
        await asyncio.sleep(0)
        await asyncio.to_thread(both_subscribed.wait)  # both loops hold a live poller now
        pollers_seen[name] = loops_with_pollers()
        mine = set(by_loop[name])
        await _until(lambda: any(set(call) == mine for call in list_call_ids()), f"a {name}-loop round")
        await asyncio.to_thread(both_polled.wait)
        await asyncio.to_thread(mark_invoices, by_loop[name])
        return list(await asyncio.gather(*tasks))

    def run(name: str) -> None:
        events[name] = asyncio.run(scenario(name))

    threads = [threading.Thread(target=run, args=(name,)) for name in by_loop]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WAIT_S * 2)

    assert pollers_seen == {"first": 2, "second": 2}
    for name, loop_ids in by_loop.items():
        assert [event["statuses"] for event in events[name]] == [{i: "paid"} for i in loop_ids]
    calls = list_call_ids()
    assert calls and all(set(call) <= {*ids[:2]} or set(call) <= {*ids[2:]} for call in calls)  # never mixed
    assert loops_with_pollers() == 0
