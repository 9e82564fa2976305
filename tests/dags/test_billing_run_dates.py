"""Issue and due dates of the billing DAG's invoices, for each way a run is made.

The rule (docs/operators.md, "Run dates"): invoices are issued on the day the run's data interval ends, in
the schedule's time zone, and ``due_in_days`` counts from there; a run without a data interval dates them on
the day it was triggered and bills the last whole month before that. Expected dates are worked out by hand
below; the invoices are read back from the emulator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow_runs import (
    airflow_cli,
    create_scheduled_run,
    delete_runs,
    execute_run,
    run_ids,
    trigger_run,
    try_numbers,
)
from airflow_support import NO_LOGICAL_DATE, run_dag, sync_dag_to_db, task_states
from dag_helpers import live_invoices

from enlivy_provider.emulator.seed import DEMO_CUSTOMERS

DAG_ID = "enlivy_recurring_billing"
BERLIN = "Europe/Berlin"
HOOLI = next(c.id for c in DEMO_CUSTOMERS if c.email == "billing@hooli.example")  # due_in_days: 30


@pytest.fixture
def emulator(enlivy_airflow_connection: Any, report_dir: Path) -> Any:
    """The demo emulator; customers pay half a second after an invoice is issued (the sensor succeeds)."""
    enlivy_airflow_connection.configure(auto_pay_after=0.5)
    delete_runs(DAG_ID)
    return enlivy_airflow_connection


def dates_by_period(emulator: Any) -> dict[tuple[str, str], set[tuple[str, str, str]]]:
    """{(period start, end): {(customer, issued_at date, due_at date)}} of the live invoices."""
    found: dict[tuple[str, str], set[tuple[str, str, str]]] = {}
    for invoice in live_invoices(emulator):
        lines = invoice["line_items"]
        period = (lines[0]["billing_period_started_at"][:10], lines[0]["billing_period_ended_at"][:10])
        issued = str(invoice["issued_at"])[:10] if invoice["issued_at"] else "-"
        due = str(invoice["due_at"])[:10] if invoice["due_at"] else "-"
        found.setdefault(period, set()).add((invoice["organization_receiver_user_id"], issued, due))
    return found


def expected(issued: str, due: str, hooli_due: str) -> set[tuple[str, str, str]]:
    """Every demo customer issued on ``issued``, due on ``due`` (14 days), Hooli on ``hooli_due`` (30 days)."""
    return {(c.id, issued, hooli_due if c.id == HOOLI else due) for c in DEMO_CUSTOMERS}


def test_scheduled_run_issues_the_month_when_it_has_ended(billing_dag: Any, emulator: Any) -> None:
    # The scheduler's run for October: logical date = interval start = 2026-10-01 00:00 Berlin.
    october = pendulum.datetime(2026, 10, 1, tz=BERLIN)
    dag_run = execute_run(billing_dag, create_scheduled_run(billing_dag, october))

    assert str(dag_run.run_type) == "scheduled"
    assert dag_run.logical_date == october
    assert str(dag_run.state) == "success", task_states(dag_run)
    assert set(try_numbers(dag_run).values()) == {1}
    # Interval 2026-10-01 .. 2026-11-01 (Berlin): issued 1 November, due 15 November (Hooli: 1 December).
    assert dates_by_period(emulator) == {
        ("2026-10-01", "2026-10-31"): expected("2026-11-01", "2026-11-15", "2026-12-01")
    }


def test_manual_run_with_a_logical_date_dates_invoices_like_the_scheduled_run(
    billing_dag: Any, emulator: Any
) -> None:
    # `airflow dags test enlivy_recurring_billing 2026-11-01`: a manual run whose interval is October.
    dag_run = run_dag(billing_dag, logical_date=pendulum.datetime(2026, 11, 1, tz=BERLIN))

    assert str(dag_run.run_type) == "manual"
    assert str(dag_run.state) == "success", task_states(dag_run)
    assert dates_by_period(emulator) == {
        ("2026-10-01", "2026-10-31"): expected("2026-11-01", "2026-11-15", "2026-12-01")
    }


@pytest.mark.airflow3_only(
    reason="`airflow backfill create` (Airflow 3) only creates the runs; Airflow 2's `airflow dags backfill` "
    "runs them itself through an executor, which SQLite cannot share with this test session"
)
def test_backfill_issues_each_month_when_it_ended(billing_dag: Any, emulator: Any) -> None:
    # The command of docs/recurring-billing.md; the backfill's runs are then executed here, one by one.
    # The dates are Berlin midnights: a bare 2026-08-01 is UTC midnight, after the August run's logical
    # date (2026-07-31T22:00Z), and would leave August out.
    sync_dag_to_db(billing_dag)
    airflow_cli(
        "backfill", "create", "--dag-id", DAG_ID,
        "--from-date", "2026-08-01T00:00:00+02:00", "--to-date", "2026-10-01T00:00:00+02:00",
    )  # fmt: skip
    runs = [execute_run(billing_dag, run_id) for run_id in run_ids(DAG_ID, "backfill")]

    assert [str(run.state) for run in runs] == ["success"] * 3, [task_states(run) for run in runs]
    assert {str(run.run_type) for run in runs} == {"backfill"}
    assert all(set(try_numbers(run).values()) == {1} for run in runs)
    assert dates_by_period(emulator) == {
        ("2026-08-01", "2026-08-31"): expected("2026-09-01", "2026-09-15", "2026-10-01"),
        ("2026-09-01", "2026-09-30"): expected("2026-10-01", "2026-10-15", "2026-10-31"),
        ("2026-10-01", "2026-10-31"): expected("2026-11-01", "2026-11-15", "2026-12-01"),
    }


@pytest.mark.airflow3_only(reason=NO_LOGICAL_DATE)
def test_run_without_a_logical_date_bills_the_last_whole_month_before_its_trigger(
    billing_dag: Any, emulator: Any
) -> None:
    # Triggered (REST API / CLI shape: no logical date, no data interval) on 3 November, 10:30 Berlin.
    triggered = pendulum.datetime(2026, 11, 3, 10, 30, tz=BERLIN)
    dag_run = execute_run(billing_dag, trigger_run(billing_dag, run_after=triggered))

    assert dag_run.logical_date is None and dag_run.data_interval_start is None
    assert str(dag_run.state) == "success", task_states(dag_run)
    assert set(try_numbers(dag_run).values()) == {1}
    assert dates_by_period(emulator) == {
        # Dated like the scheduled October run: every run billing October sends the same body.
        ("2026-10-01", "2026-10-31"): expected("2026-11-01", "2026-11-15", "2026-12-01")
    }


@pytest.mark.airflow3_only(reason=NO_LOGICAL_DATE)
def test_trigger_just_after_midnight_berlin_bills_the_berlin_month(billing_dag: Any, emulator: Any) -> None:
    # 2026-12-01 00:30 in Berlin is still 30 November in UTC: November has ended in the schedule's zone.
    triggered = pendulum.datetime(2026, 12, 1, 0, 30, tz=BERLIN)
    dag_run = execute_run(billing_dag, trigger_run(billing_dag, run_after=triggered))

    assert str(dag_run.state) == "success", task_states(dag_run)
    assert dates_by_period(emulator) == {
        ("2026-11-01", "2026-11-30"): expected("2026-12-01", "2026-12-15", "2026-12-31")
    }


@pytest.mark.airflow3_only(reason=NO_LOGICAL_DATE)
def test_cli_dry_run_trigger_previews_the_last_whole_month(
    billing_dag: Any, emulator: Any, report_dir: Path
) -> None:
    # Exactly the command docs/recurring-billing.md gives; the scheduler's part is played by execute_run.
    sync_dag_to_db(billing_dag)
    emulator.reset_counters()
    airflow_cli("dags", "trigger", DAG_ID, "--conf", '{"dry_run": true}')
    [run_id] = run_ids(DAG_ID)
    dag_run = execute_run(billing_dag, run_id)

    assert dag_run.logical_date is None
    assert str(dag_run.state) == "success", task_states(dag_run)
    assert set(try_numbers(dag_run).values()) == {1}
    assert task_states(dag_run)["create_invoices"] == "skipped"
    assert emulator.write_count() == 0
    # The month before the one the trigger time falls in (Berlin): the last whole month.
    local = pendulum.instance(dag_run.run_after).in_timezone(BERLIN)
    year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    first = pendulum.date(year, month, 1)
    last = first.add(months=1).subtract(days=1)
    preview = (report_dir / f"billing-preview-{first.format('YYYY-MM')}.txt").read_text()
    assert preview.startswith(
        f"DRY RUN - invoices for {first.format('MMMM YYYY')} ({first.isoformat()} .. {last.isoformat()})"
    )
