"""Deferrable EnlivyInvoiceStatusSensor: TaskDeferred, then the trigger's run(), then execute_complete."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)
from airflow.triggers.base import TriggerEvent

from enlivy_provider.sensors.invoice_status import EnlivyInvoiceStatusSensor
from enlivy_provider.triggers.invoice_status import EnlivyInvoiceStatusTrigger

pytestmark = pytest.mark.usefixtures("enlivy_airflow_connection")


def _sensor(invoice_ids: Any, **kwargs: Any) -> EnlivyInvoiceStatusSensor:
    kwargs.setdefault("poke_interval", 0.1)
    kwargs.setdefault("timeout", 30)
    return EnlivyInvoiceStatusSensor(
        task_id="wait_for_payment", invoice_ids=invoice_ids, deferrable=True, **kwargs
    )


def _defer(sensor: EnlivyInvoiceStatusSensor) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    return deferred.value


async def _all_events(trigger: EnlivyInvoiceStatusTrigger) -> list[TriggerEvent]:
    return [event async for event in trigger.run()]


def test_defers_then_the_trigger_fires_success_and_execute_complete_returns_statuses(
    make_invoices: Callable[..., list[str]], pay_later: Callable[..., None]
) -> None:
    ids = make_invoices(2)
    before = time.time()

    deferred = _defer(_sensor(ids, timeout=30))

    assert deferred.method_name == "execute_complete"
    trigger = deferred.trigger
    assert isinstance(trigger, EnlivyInvoiceStatusTrigger)
    _, kwargs = trigger.serialize()
    assert kwargs["invoice_ids"] == ids
    assert kwargs["target_statuses"] == ["paid"] and kwargs["failure_statuses"] == ["cancelled"]
    assert before + 30 <= kwargs["end_time"] <= time.time() + 30  # absolute deadline
    assert deferred.timeout is not None and deferred.timeout.total_seconds() >= 30

    pay_later(ids, after=0.3)
    events = asyncio.run(_all_events(trigger))

    assert len(events) == 1
    assert events[0].payload["status"] == "success"
    assert _sensor(ids).execute_complete({}, events[0].payload) == dict.fromkeys(ids, "paid")


def test_does_not_defer_when_the_invoices_are_already_paid(make_invoices: Callable[..., list[str]]) -> None:
    ids = make_invoices(2, status="paid")

    assert _sensor(ids).execute({}) == dict.fromkeys(ids, "paid")


def test_fails_before_deferring_when_an_invoice_is_cancelled(
    make_invoices: Callable[..., list[str]], enlivy_emulator: Any
) -> None:
    ids = make_invoices(2)
    enlivy_emulator.set_invoice_status(ids[0], "cancelled")

    with pytest.raises(AirflowFailException, match=rf"{ids[0]} \(status cancelled\)"):
        _sensor(ids).execute({})
    with pytest.raises(AirflowSkipException, match="status cancelled"):
        _sensor(ids, soft_fail=True).execute({})


def test_failure_reached_while_deferred_fails_the_task(
    make_invoices: Callable[..., list[str]], pay_later: Callable[..., None]
) -> None:
    ids = make_invoices(2)
    trigger = _defer(_sensor(ids)).trigger
    pay_later(ids[1:], after=0.2, status="cancelled")

    (event,) = asyncio.run(_all_events(trigger))

    assert event.payload["status"] == "failure"
    assert event.payload["failures"] == {ids[1]: "status cancelled"}
    with pytest.raises(AirflowFailException, match=rf"{ids[1]} \(status cancelled\)"):
        _sensor(ids).resume_execution("execute_complete", {"event": event.payload}, {})


def test_timeout_while_deferred_lists_pending_and_soft_fail_skips(
    make_invoices: Callable[..., list[str]], enlivy_emulator: Any
) -> None:
    ids = make_invoices(2, status="draft")
    enlivy_emulator.set_invoice_status(ids[0], "sent_email")
    trigger = _defer(_sensor(ids, timeout=0.5)).trigger

    started = time.monotonic()
    (event,) = asyncio.run(_all_events(trigger))

    assert time.monotonic() - started < 5
    assert event.payload["status"] == "timeout"
    assert event.payload["pending"] == {ids[0]: "sent_email", ids[1]: "draft"}
    with pytest.raises(AirflowSensorTimeout, match=rf"{ids[0]} \(sent_email\), {ids[1]} \(draft\)"):
        _sensor(ids).resume_execution("execute_complete", {"event": event.payload}, {})
    with pytest.raises(AirflowSkipException):
        _sensor(ids, soft_fail=True).resume_execution("execute_complete", {"event": event.payload}, {})


def test_share_poller_is_handed_to_the_trigger(make_invoices: Callable[..., list[str]]) -> None:
    ids = make_invoices(1)

    assert _defer(_sensor(ids)).trigger.serialize()[1]["share_poller"] is True
    assert _defer(_sensor(ids, share_poller=False)).trigger.serialize()[1]["share_poller"] is False
