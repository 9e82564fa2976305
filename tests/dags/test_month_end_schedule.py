"""When dags/enlivy_month_end.py runs and which month it closes, the way the scheduler makes its runs.

The DAG is scheduled on the billing's asset alias *or* the 4th at 06:00 Berlin. Here the billing DAG's
scheduled October run records its event (through the alias, as in production); the scheduler's own code
(``dags_needing_dagruns``, then the asset-triggered run creation) makes the month-end run and hands it the
events; the run is executed in this process. The events are moved to 1 November 01:30 Berlin, as if the
billing had finished then, so the run's reference date does not depend on today's date.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow_runs import (
    airflow_cli,
    backdate_asset_events,
    create_asset_triggered_runs,
    create_scheduled_run,
    delete_runs,
    execute_run,
    forget_asset_events,
    run_ids,
    set_paused,
    trigger_run,
)
from airflow_support import (
    AIRFLOW_3,
    asset_events,
    asset_tables,
    sync_dag_to_db,
    task_log,
    task_states,
    xcom_result,
)
from dag_helpers import DAGS_DIR, REPO
from month_end_support import BERLIN, BILLING, MONTH_END, bill_october_run, emails, october_invoices

from enlivy_provider.emulator.seed import DEMO_CUSTOMERS

ALIAS = "enlivy_billed_invoices"
DOC = REPO / "docs" / "month-end.md"
BILLING_FINISHED = pendulum.datetime(2026, 11, 1, 1, 30, tz=BERLIN)  # 00:30 UTC
ASSET_TRIGGERED = "asset_triggered" if AIRFLOW_3 else "dataset_triggered"
GATED = (  # every task after still_open: skipped when the backstop finds the month closed
    "expected_invoices",
    "expected_rows",
    "reconcile",
    "select_invoices",
    "send_invoices",
    "charge_invoices",
    "remind_7d",
    "remind_14d",
    "remind_30d",
    "summary",
)


def _clear_queue(dag_id: str) -> None:
    """Forget what the scheduler queued for ``dag_id`` in earlier tests (a fresh deployment has nothing)."""
    from airflow.utils.session import create_session

    queue = asset_tables().queue
    with create_session() as session:
        session.query(queue).filter(queue.target_dag_id == dag_id).delete()


def _record_billing_event(uri: str, extra: dict[str, Any]) -> None:
    """An event on the billing asset through the alias, recorded by Airflow's own asset manager (what a
    billing task's outlet, or ``POST /api/v2/assets/events``, ends in)."""
    from airflow.utils.session import create_session

    with create_session() as session:
        if AIRFLOW_3:
            from airflow.assets.manager import asset_manager
            from airflow.models.asset import AssetModel

            model = session.query(AssetModel).filter(AssetModel.uri == uri).one()
            asset_manager.register_asset_change(
                asset=model, extra=extra, source_alias_names=[ALIAS], session=session
            )
        else:
            from airflow.datasets import Dataset
            from airflow.datasets.manager import dataset_manager

            dataset_manager.register_dataset_change(
                dataset=Dataset(uri), extra=extra, source_alias_names=[ALIAS], session=session
            )


@pytest.fixture
def month_end(billing_and_month_end_dags: tuple[Any, Any], report_dir: Path, enlivy_airflow_connection: Any):
    """Both DAGs with no runs and nothing queued; the month-end DAG deployed and unpaused (the scheduler
    queues no run for a paused DAG)."""
    for dag_id in (BILLING, MONTH_END):
        delete_runs(dag_id)
    _clear_queue(MONTH_END)
    forget_asset_events("enlivy://%")
    sync_dag_to_db(billing_and_month_end_dags[1])
    set_paused(MONTH_END, False)
    return billing_and_month_end_dags


def _bill_october_and_report(dags: tuple[Any, Any]) -> Any:
    """The billing's October run, its event moved to when it 'finished'; its DagRun."""
    billing_run = bill_october_run(dags)
    if not AIRFLOW_3:
        # Airflow 2 resolves the alias when it parses the consuming DAG file (the alias's first event
        # requests a priority re-parse): only then does it hand the run the events of the resolved asset.
        from airflow.models import DagBag

        sync_dag_to_db(DagBag(dag_folder=str(DAGS_DIR / "enlivy_month_end.py")).get_dag(MONTH_END))
    assert backdate_asset_events(billing_run.run_id, MONTH_END, BILLING_FINISHED) == 1
    return billing_run


def test_billing_event_starts_a_run_that_closes_the_month_it_names_and_the_backstop_then_skips(
    month_end: tuple[Any, Any], enlivy_airflow_connection: Any, report_dir: Path
) -> None:
    emulator = enlivy_airflow_connection
    october = october_invoices(_bill_october_and_report(month_end))

    [run_id] = create_asset_triggered_runs(MONTH_END)
    dag_run = execute_run(month_end[1], run_id)

    assert str(dag_run.run_type) == ASSET_TRIGGERED
    assert str(dag_run.state) == "success", task_states(dag_run)
    usage = xcom_result(dag_run, "collect_usage")
    assert usage["period"] == {"start": "2026-10-01", "end": "2026-10-31", "label": "October 2026"}
    assert usage["reference_date"] == "2026-11-01"  # the day billing reported, in Berlin
    recon = xcom_result(dag_run, "reconcile")
    assert recon["expected"] == len(DEMO_CUSTOMERS) and recon["failed_on"] == []
    assert set(recon["counts"].values()) == {0}, recon["counts"]
    assert emails(emulator) == {(invoice["id"], "invoice"): 1 for invoice in october.values()}
    summary_text = (report_dir / "month-end-summary-2026-10.txt").read_text()
    assert summary_text.startswith("Month-end for October 2026 (2026-10-01 .. 2026-10-31), as of 2026-11-01")
    closed = json.loads((report_dir / "month-end-closed-2026-10.json").read_text())
    assert (closed["run_id"], closed["reference_date"]) == (run_id, "2026-11-01")
    assert create_asset_triggered_runs(MONTH_END) == []  # the event was consumed: no second run

    # The backstop: the scheduled run of 4 Nov 06:00 finds October closed and does nothing.
    emulator.reset_counters()
    backstop = execute_run(
        month_end[1], create_scheduled_run(month_end[1], pendulum.datetime(2026, 10, 4, 6, tz=BERLIN))
    )

    assert str(backstop.run_type) == "scheduled"
    assert str(backstop.state) == "success", task_states(backstop)
    states = task_states(backstop)
    assert (states["collect_usage"], states["still_open"]) == ("success", "success")
    assert {task: states[task] for task in GATED} == dict.fromkeys(GATED, "skipped")
    assert emulator.write_count() == 0 and len(emails(emulator)) == len(october)  # nothing sent again
    assert (
        report_dir / "month-end-summary-2026-10.txt"
    ).read_text() == summary_text  # the close's summary kept


def test_the_backstop_closes_the_month_when_no_run_closed_it(
    month_end: tuple[Any, Any], enlivy_airflow_connection: Any, report_dir: Path
) -> None:
    # Billing ran, but the month-end DAG was paused when it reported: no event run, the backstop closes.
    set_paused(MONTH_END, True)
    october = bill_october_run(month_end)
    set_paused(MONTH_END, False)
    assert create_asset_triggered_runs(MONTH_END) == []

    backstop = execute_run(
        month_end[1], create_scheduled_run(month_end[1], pendulum.datetime(2026, 10, 4, 6, tz=BERLIN))
    )

    assert str(backstop.state) == "success", task_states(backstop)
    assert xcom_result(backstop, "collect_usage")["period"]["label"] == "October 2026"
    sent = {invoice for invoice, kind in emails(enlivy_airflow_connection) if kind == "invoice"}
    assert sent == {invoice["id"] for invoice in october_invoices(october).values()}
    closed = json.loads((report_dir / "month-end-closed-2026-10.json").read_text())
    assert closed["run_id"] == backstop.run_id


def test_an_older_month_billed_and_never_closed_is_named_after_the_reported_month_is_closed(
    month_end: tuple[Any, Any], enlivy_airflow_connection: Any, report_dir: Path, capfd: Any, caplog: Any
) -> None:
    # September was billed while the month-end DAG was paused (not yet deployed): its event stays in the
    # alias's history, and the first month-end run after October's report is handed both.
    emulator = enlivy_airflow_connection
    set_paused(MONTH_END, True)
    billing = month_end[0]
    september = execute_run(billing, create_scheduled_run(billing, pendulum.datetime(2026, 9, 1, tz=BERLIN)))
    assert str(september.state) == "success", task_states(september)
    assert backdate_asset_events(september.run_id, MONTH_END, BILLING_FINISHED.subtract(months=1)) == 1
    september_ids = {summary["id"] for summary in xcom_result(september, "create_invoices")["created"]}
    set_paused(MONTH_END, False)
    october = october_invoices(_bill_october_and_report(month_end))

    [run_id] = create_asset_triggered_runs(MONTH_END)
    dag_run = execute_run(month_end[1], run_id)

    # October, reported last, is closed in full; the run then fails, naming September and its command.
    states = task_states(dag_run)
    assert str(dag_run.state) == "failed" and states["summary"] == "failed", states
    assert {states[task] for task in GATED if task != "summary"} == {"success"}
    assert xcom_result(dag_run, "collect_usage")["left_open"] == ["2026-09"]
    first_sends = {invoice for invoice, kind in emails(emulator) if kind == "invoice"}
    assert first_sends == {invoice["id"] for invoice in october.values()}  # no September e-mail
    assert not first_sends & september_ids
    assert json.loads((report_dir / "month-end-closed-2026-10.json").read_text())["run_id"] == run_id
    assert not (report_dir / "month-end-closed-2026-09.json").exists()
    command = """airflow dags trigger enlivy_month_end --conf '{"billing_period": "2026-09"}'"""
    assert (
        f"NOT CLOSED (billed, never closed): 2026-09; close each with: {command}"
        in (report_dir / "month-end-summary-2026-10.txt").read_text()
    )
    assert (
        f"October 2026 closed, but billed months were never closed: 2026-09; close each with: {command}"
        in (task_log(capfd, caplog))
    )


def test_a_report_handled_by_a_later_close_starts_a_run_that_does_nothing(
    month_end: tuple[Any, Any], enlivy_airflow_connection: Any
) -> None:
    emulator = enlivy_airflow_connection
    _bill_october_and_report(month_end)
    [first] = create_asset_triggered_runs(MONTH_END)
    assert str(execute_run(month_end[1], first).state) == "success"
    # An October report older than that close reaches a run late (Airflow's queue passed it over while a
    # run was busy, say): October was closed after it, so nothing is done again.
    [uri] = {uri for uri, extra in asset_events("enlivy://%") if extra.get("billing_period") == "2026-10"}
    _record_billing_event(uri, asset_events("enlivy://%")[-1][1])
    _move_queue(MONTH_END, BILLING_FINISHED + dt.timedelta(minutes=10))
    emulator.reset_counters()

    [late] = create_asset_triggered_runs(MONTH_END)
    dag_run = execute_run(month_end[1], late)

    states = task_states(dag_run)
    assert str(dag_run.state) == "success", states
    assert (states["collect_usage"], states["still_open"]) == ("success", "success")
    assert {task: states[task] for task in GATED} == dict.fromkeys(GATED, "skipped")
    assert xcom_result(dag_run, "collect_usage")["skip"].startswith(
        f"every month the billing reported (2026-10) was closed after its report: 2026-10 by run {first}"
    )
    assert emulator.write_count() == 0


def _move_queue(dag_id: str, moment: dt.datetime) -> None:
    """The latest event (recorded now) moved to ``moment``, with the scheduler's queue entry."""
    from airflow.utils.session import create_session

    tables = asset_tables()
    with create_session() as session:
        latest = session.query(tables.event).order_by(tables.event.id.desc()).first()
        latest.timestamp = moment
        session.query(tables.queue).filter(tables.queue.target_dag_id == dag_id).update(
            {"created_at": moment}
        )


def test_the_documented_command_closes_the_month_it_names(
    month_end: tuple[Any, Any], enlivy_airflow_connection: Any, report_dir: Path
) -> None:
    october = october_invoices(bill_october_run(month_end))
    section = DOC.read_text().split("**By hand.**", 1)[1]
    command = re.search(r"```bash\n(airflow dags trigger [^\n]+)\n```", section)
    assert command is not None, "docs/month-end.md gives no billing_period trigger command"

    airflow_cli(*shlex.split(command.group(1))[1:])  # the real CLI, on this session's metadata DB
    [manual] = run_ids(MONTH_END, "manual")
    dag_run = execute_run(month_end[1], manual)

    assert str(dag_run.state) == "success", task_states(dag_run)
    assert xcom_result(dag_run, "collect_usage")["period"]["label"] == "October 2026"
    sent = {invoice for invoice, kind in emails(enlivy_airflow_connection) if kind == "invoice"}
    assert sent == {invoice["id"] for invoice in october.values()}
    assert json.loads((report_dir / "month-end-closed-2026-10.json").read_text())["run_id"] == manual


@pytest.mark.airflow3_only(
    reason="runs without a logical date (airflow dags trigger, the REST API) exist since Airflow 3"
)
def test_a_named_month_closed_by_hand_early_in_the_next_month_is_dated_after_it_ended(
    month_end: tuple[Any, Any], enlivy_airflow_connection: Any
) -> None:
    # Triggered at 10:00 on 3 November: the backstop's last whole interval then ends on 4 October, a date
    # before October ended; the close of October is dated 1 November instead (days past due count to it).
    bill_october_run(month_end)
    run_id = trigger_run(
        month_end[1],
        run_after=pendulum.datetime(2026, 11, 3, 10, tz=BERLIN),
        conf={"billing_period": "2026-10"},
    )
    dag_run = execute_run(month_end[1], run_id)

    assert str(dag_run.state) == "success", task_states(dag_run)
    usage = xcom_result(dag_run, "collect_usage")
    assert (usage["period"]["label"], usage["reference_date"]) == ("October 2026", "2026-11-01")
