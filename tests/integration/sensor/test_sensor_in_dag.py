"""The sensor inside dag.test(): deferrable (Airflow runs the trigger inline) and reschedule mode."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import DAG, task
from airflow_support import run_dag, task_states, xcom_result

from enlivy_provider.sensors.invoice_status import EnlivyInvoiceStatusSensor

pytestmark = pytest.mark.usefixtures("enlivy_airflow_connection")


@pytest.fixture
def pay_after_list_calls(
    enlivy_emulator: Any, invoice_list_calls: Callable[[], int]
) -> Iterator[Callable[[list[str], int], None]]:
    """Pay the invoices once the emulator has answered ``calls`` list requests (so the sensor saw them unpaid)."""
    threads: list[threading.Thread] = []
    stop = threading.Event()

    def start(ids: list[str], calls: int) -> None:
        def run() -> None:
            while not stop.is_set() and invoice_list_calls() < calls:
                time.sleep(0.05)
            for invoice_id in ids:
                enlivy_emulator.set_invoice_status(invoice_id, "paid")

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=10)


def _dag(dag_id: str, invoice_ids: list[str], **sensor_kwargs: Any) -> DAG:
    with DAG(dag_id=dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:

        @task
        def created_invoices() -> dict[str, Any]:
            return {"created": [], "existing": [], "replayed": [], "failed": [], "invoice_ids": invoice_ids}

        EnlivyInvoiceStatusSensor(
            task_id="wait_for_payment", invoice_ids=created_invoices(), timeout=30, **sensor_kwargs
        )
    return dag


def test_deferrable_sensor_in_dag_test_resumes_from_the_inline_trigger(
    make_invoices: Callable[..., list[str]],
    enlivy_emulator: Any,
    pay_after_list_calls: Callable[[list[str], int], None],
) -> None:
    ids = make_invoices(2)
    enlivy_emulator.reset_counters()
    # Call 1: the sensor's own check on the worker (pending, so it defers); call 2: the trigger's first poll.
    pay_after_list_calls(ids, 2)

    dag_run = run_dag(_dag("enlivy_sensor_deferrable", ids, deferrable=True, poke_interval=0.2))

    assert task_states(dag_run) == {"created_invoices": "success", "wait_for_payment": "success"}
    assert xcom_result(dag_run, "wait_for_payment") == dict.fromkeys(ids, "paid")


def test_reschedule_mode_in_dag_test(
    make_invoices: Callable[..., list[str]],
    enlivy_emulator: Any,
    pay_after_list_calls: Callable[[list[str], int], None],
) -> None:
    ids = make_invoices(1)
    enlivy_emulator.reset_counters()
    pay_after_list_calls(ids, 1)  # paid after the first (pending) poke: the task is rescheduled once

    dag_run = run_dag(
        _dag("enlivy_sensor_reschedule", ids, deferrable=False, mode="reschedule", poke_interval=1)
    )

    assert task_states(dag_run) == {"created_invoices": "success", "wait_for_payment": "success"}
    assert xcom_result(dag_run, "wait_for_payment") == {ids[0]: "paid"}


def test_accepts_the_summaries_of_a_mapped_upstream_task(make_invoices: Callable[..., list[str]]) -> None:
    """A mapped task's XComArg resolves to a lazy sequence (not a list) of its summaries."""
    ids = make_invoices(3, status="paid")
    with DAG(
        dag_id="enlivy_sensor_mapped_upstream",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    ) as dag:

        @task
        def invoice_summary(invoice_id: str) -> dict[str, Any]:
            return {"id": invoice_id, "status": "paid", "outcome": "created"}

        EnlivyInvoiceStatusSensor(
            task_id="wait_for_payment",
            invoice_ids=invoice_summary.expand(invoice_id=ids),
            deferrable=False,
            poke_interval=0.2,
            timeout=30,
        )

    dag_run = run_dag(dag)

    assert task_states(dag_run)["wait_for_payment"] == "success"
    assert xcom_result(dag_run, "wait_for_payment") == dict.fromkeys(ids, "paid")
