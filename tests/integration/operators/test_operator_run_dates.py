"""Run dates in the invoice operators: which period ``"data_interval"`` bills and which day ``due_in_days``
counts from, for a scheduled run, a run without a logical date (REST API / CLI trigger) and a retried task.

The DAG is monthly in Europe/Berlin with data intervals, like the billing example. Expected dates are
worked out by hand; the invoices are read back from the emulator.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
import pytest
from airflow_runs import create_scheduled_run, execute_run, trigger_run, try_numbers
from airflow_support import NO_LOGICAL_DATE
from invoice_support import CUSTOMERS, PLATFORM, live_invoices, make_dag, new_dag_id, requests_to, result

from enlivy_provider.compat import CronDataIntervalTimetable
from enlivy_provider.operators.invoices import (
    EnlivyCreateInvoiceOperator,
    EnlivyCreateInvoicesOperator,
    EnlivyUpdateInvoiceOperator,
)

BERLIN = "Europe/Berlin"
LINES = [{"product_id": PLATFORM, "quantity": 1}]


def monthly_dag(name: str, **create_kwargs: Any) -> Any:
    """create (due in 14 days) -> update (due in 30 days instead) -> a bulk of two (due in 10 days)."""
    with make_dag(
        new_dag_id(name),
        schedule=CronDataIntervalTimetable("0 0 1 * *", timezone=BERLIN),
        start_date=pendulum.datetime(2026, 1, 1, tz=BERLIN),
    ) as dag:
        create = EnlivyCreateInvoiceOperator(
            task_id="create",
            customer=CUSTOMERS[0],
            line_items=LINES,
            invoice={"currency": "EUR", "status": "pending", "due_in_days": 14},
            billing_period="data_interval",
            **create_kwargs,
        )
        update = EnlivyUpdateInvoiceOperator(
            task_id="update", invoice_id=create.output, changes={"due_in_days": 30}
        )
        (
            update
            >> EnlivyCreateInvoicesOperator(  # after create: a test's fault hits create's POST
                task_id="bulk",
                invoices=[{"customer": c, "line_items": LINES} for c in CUSTOMERS[1:3]],
                invoice_defaults={"currency": "EUR", "due_in_days": 10},
                billing_period="data_interval",
            )
        )
    return dag


def dates(emulator: Any) -> dict[str, tuple[str, str, str, str]]:
    """{customer: (period start, period end, issued_at date, due_at date)} of the live invoices."""
    found = {}
    for invoice in live_invoices(emulator):
        line = invoice["line_items"][0]
        found[invoice["organization_receiver_user_id"]] = (
            line["billing_period_started_at"][:10],
            line["billing_period_ended_at"][:10],
            str(invoice["issued_at"])[:10],
            str(invoice["due_at"])[:10],
        )
    return found


def test_scheduled_run_dates_invoices_from_the_end_of_its_interval(enlivy_emulator: Any) -> None:
    dag = monthly_dag("sched_dates")
    # As the scheduler makes it: logical date 2026-10-01 00:00 Berlin, interval October.
    dag_run = execute_run(dag, create_scheduled_run(dag, pendulum.datetime(2026, 10, 1, tz=BERLIN)))

    assert str(dag_run.state) == "success"
    assert try_numbers(dag_run) == {"create": 1, "update": 1, "bulk": 1}
    october = ("2026-10-01", "2026-10-31", "2026-11-01")
    assert dates(enlivy_emulator) == {
        CUSTOMERS[0]: (*october, "2026-12-01"),  # created due 15 November, then updated: 30 days
        CUSTOMERS[1]: (*october, "2026-11-11"),
        CUSTOMERS[2]: (*october, "2026-11-11"),
    }


@pytest.mark.airflow3_only(reason=NO_LOGICAL_DATE)
def test_run_without_a_logical_date_bills_the_last_whole_interval_before_its_trigger(
    enlivy_emulator: Any,
) -> None:
    dag = monthly_dag("nolog_dates")
    # Triggered through the REST API / CLI path (no logical date, no data interval) on 3 November, 10:30 Berlin.
    dag_run = execute_run(dag, trigger_run(dag, run_after=pendulum.datetime(2026, 11, 3, 10, 30, tz=BERLIN)))

    assert str(dag_run.state) == "success"
    assert try_numbers(dag_run) == {"create": 1, "update": 1, "bulk": 1}
    october = ("2026-10-01", "2026-10-31", "2026-11-01")  # dated from the end of the interval it covers
    assert dates(enlivy_emulator) == {
        CUSTOMERS[0]: (*october, "2026-12-01"),
        CUSTOMERS[1]: (*october, "2026-11-11"),
        CUSTOMERS[2]: (*october, "2026-11-11"),
    }


@pytest.mark.airflow3_only(reason=NO_LOGICAL_DATE)
def test_retry_of_a_run_without_a_logical_date_sends_the_same_body(
    enlivy_emulator: Any, connection_extra: Any
) -> None:
    # if_exists="create": no lookup, so only the Idempotency-Key saves the retry from a duplicate, and the
    # server replays the first answer only for the identical body (a changed date would be a 409).
    connection_extra(max_retries=0)  # the client gives up at once: the *task* fails and Airflow retries it
    enlivy_emulator.add_fault("POST", "/organizations/*/invoices", "drop_after_commit")
    dag = monthly_dag("retry_dates", if_exists="create", retries=1, retry_delay=dt.timedelta(0))
    dag_run = execute_run(dag, trigger_run(dag, run_after=pendulum.datetime(2026, 11, 3, 23, 59, tz=BERLIN)))

    assert str(dag_run.state) == "success"
    assert try_numbers(dag_run)["create"] == 2  # the first attempt lost its answer and failed
    assert result(dag_run, "create")["outcome"] == "replayed"  # same key, same body: the first answer
    assert requests_to(enlivy_emulator, "POST", "invoices") == 2 + 2  # create twice, bulk twice
    assert dates(enlivy_emulator)[CUSTOMERS[0]] == ("2026-10-01", "2026-10-31", "2026-11-01", "2026-12-01")
    assert len(live_invoices(enlivy_emulator)) == 3
