"""The emulator's counters prove the batching: 300 invoices cost 10 list calls per check, in both modes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from enlivy_provider.sensors.invoice_status import EnlivyInvoiceStatusSensor
from enlivy_provider.triggers.invoice_status import EnlivyInvoiceStatusTrigger

pytestmark = pytest.mark.usefixtures("enlivy_airflow_connection")


def test_a_poke_and_a_trigger_check_over_300_invoices_each_make_10_list_calls(
    make_invoices: Callable[..., list[str]],
    enlivy_emulator: Any,
    invoice_list_calls: Callable[[], int],
    mark_invoices: Callable[..., None],
) -> None:
    ids = make_invoices(300)
    enlivy_emulator.set_invoice_status(ids[-1], "paid")
    sensor = EnlivyInvoiceStatusSensor(task_id="wait", invoice_ids=ids, deferrable=False, timeout=60)

    enlivy_emulator.reset_counters()
    assert sensor.poke({}) is False
    assert invoice_list_calls() == 10
    assert enlivy_emulator.counters()["total"] == 10
    check = sensor.check_statuses()
    assert check is not None and len(check.pending) == 299  # every invoice was read

    mark_invoices(ids[:-1])
    trigger = EnlivyInvoiceStatusTrigger(invoice_ids=ids, poll_interval=0.1, end_time=time.time() + 30)
    enlivy_emulator.reset_counters()

    event = asyncio.run(anext(trigger.run()))

    assert event.payload["status"] == "success"
    assert len(event.payload["statuses"]) == 300
    assert invoice_list_calls() == 10
