"""EnlivyInvoiceStatusTrigger on its own against the emulator: events, errors, backoff, concurrency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from airflow.triggers.base import TriggerEvent

from enlivy_provider.triggers.invoice_status import EnlivyInvoiceStatusTrigger

pytestmark = pytest.mark.usefixtures("enlivy_airflow_connection")


def _trigger(ids: list[str], **kwargs: Any) -> EnlivyInvoiceStatusTrigger:
    kwargs.setdefault("poll_interval", 0.1)
    kwargs.setdefault("end_time", time.time() + 20)
    return EnlivyInvoiceStatusTrigger(invoice_ids=ids, **kwargs)


async def _all_events(trigger: EnlivyInvoiceStatusTrigger) -> list[TriggerEvent]:
    return [event async for event in trigger.run()]


def _only_event(trigger: EnlivyInvoiceStatusTrigger) -> dict[str, Any]:
    events = asyncio.run(_all_events(trigger))
    assert len(events) == 1, events
    payload: dict[str, Any] = events[0].payload
    return payload


def test_missing_invoice_is_a_failure_event(make_invoices: Callable[..., list[str]]) -> None:
    ids = make_invoices(1, status="paid")
    missing = "org_inv_doesNotExist000000000001"

    payload = _only_event(_trigger([*ids, missing]))

    assert payload["status"] == "failure"
    assert payload["failures"] == {missing: "not found"}
    assert payload["statuses"] == {ids[0]: "paid", missing: None}


def test_transient_errors_are_retried_with_backoff_without_ending_the_wait(
    make_invoices: Callable[..., list[str]],
    enlivy_emulator: Any,
    invoice_list_calls: Callable[[], int],
    no_retry_conn_id: str,
) -> None:
    ids = make_invoices(1, status="paid")
    enlivy_emulator.add_fault("GET", "/organizations/*/invoices", "error", status=503, times=3)
    enlivy_emulator.reset_counters()

    started = time.monotonic()
    payload = _only_event(_trigger(ids, enlivy_conn_id=no_retry_conn_id, poll_interval=0.05, max_backoff=0.4))

    assert payload["status"] == "success"
    assert invoice_list_calls() == 4
    # backed off between failures: at least 0.5 * (0.05->1.0 floor: 1, 2, 4 capped at 0.4) of waiting
    assert time.monotonic() - started >= 0.5 * 0.4 * 3


def test_api_down_until_the_deadline_is_a_timeout_saying_why(
    make_invoices: Callable[..., list[str]], enlivy_emulator: Any, no_retry_conn_id: str
) -> None:
    ids = make_invoices(1)
    enlivy_emulator.add_fault("GET", "/organizations/*/invoices", "error", status=503, times=1000)

    payload = _only_event(_trigger(ids, enlivy_conn_id=no_retry_conn_id, end_time=time.time() + 1.0))

    assert payload["status"] == "timeout"
    assert payload["pending"] == {ids[0]: None}
    assert "status not read" in payload["message"] and "503" in payload["message"]


def test_rate_limit_is_waited_out(make_invoices: Callable[..., list[str]], enlivy_emulator: Any) -> None:
    ids = make_invoices(1, status="paid")
    enlivy_emulator.add_fault("GET", "/organizations/*/invoices", "rate_limit", retry_after=1, times=1)

    assert _only_event(_trigger(ids))["status"] == "success"


def test_bad_token_ends_the_wait_with_an_error_event_without_the_token(
    make_invoices: Callable[..., list[str]],
    bad_token_conn_id: str,
    bad_token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids = make_invoices(1)

    payload = _only_event(_trigger(ids, enlivy_conn_id=bad_token_conn_id))

    assert payload["status"] == "error"
    assert "401" in payload["message"]
    assert bad_token not in repr(payload) and bad_token not in caplog.text


def test_other_organization_is_forbidden_error_event(
    make_invoices: Callable[..., list[str]], enlivy_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = make_invoices(1)
    # The demo token asking for the other organization's invoices: 403 (or 404) — the wait ends either way.
    monkeypatch.setenv(
        "AIRFLOW_CONN_ENLIVY_WRONG_ORG",
        enlivy_emulator.connection_json().replace(enlivy_emulator.org_id, enlivy_emulator.other_org_id),
    )

    payload = _only_event(_trigger(ids, enlivy_conn_id="enlivy_wrong_org"))

    assert payload["status"] == "error"
    assert "403" in payload["message"] or "404" in payload["message"]


def test_unknown_connection_is_an_error_event() -> None:
    payload = _only_event(_trigger(["org_inv_x"], enlivy_conn_id="no_such_connection"))

    assert payload["status"] == "error"
    assert "no_such_connection" in payload["message"]


def test_200_triggers_in_one_event_loop_all_complete_after_payment(
    make_invoices: Callable[..., list[str]], mark_invoices: Callable[..., None]
) -> None:
    ids = make_invoices(200)
    triggers = [_trigger([invoice_id], poll_interval=0.5, end_time=time.time() + 40) for invoice_id in ids]

    async def scenario() -> list[list[TriggerEvent]]:
        waits = [asyncio.create_task(_all_events(trigger)) for trigger in triggers]
        await asyncio.sleep(1.0)
        assert not any(wait.done() for wait in waits), "a trigger fired before any invoice was paid"
        await asyncio.to_thread(mark_invoices, ids)
        return await asyncio.wait_for(asyncio.gather(*waits), timeout=30)

    results = asyncio.run(scenario())

    assert [len(events) for events in results] == [1] * 200
    assert {events[0].payload["status"] for events in results} == {"success"}
    assert [next(iter(events[0].payload["statuses"])) for events in results] == ids
