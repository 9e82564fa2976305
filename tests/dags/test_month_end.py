"""dags/enlivy_month_end.py after the billing DAG: dag.test() of both against the emulator over HTTP."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow_support import run_dag, task_states, xcom_result
from dag_helpers import live_invoices
from test_recurring_billing import DEMO_CUSTOMERS, run_for_month

from enlivy_provider.client import EnlivyClient

TZ = "Europe/Berlin"


def month_end(dag: Any, year: int, month: int, as_of: str) -> Any:
    """The month-end run after billing ``year-month``: 06:00 on the 1st of the next month."""
    when = pendulum.datetime(year, month, 1, 6, tz=TZ).add(months=1)
    return run_dag(dag, logical_date=when, run_conf={"as_of": as_of})


def emails_by_subject(emulator: Any) -> Counter[tuple[str, str]]:
    return Counter((e["organization_invoice_id"], e["subject"] or "") for e in emulator.emails())


@pytest.fixture
def emulator(enlivy_airflow_connection: Any, report_dir: Path) -> Any:
    return enlivy_airflow_connection  # nobody pays: invoices stay unpaid and fall overdue


def test_clean_month_reconciles_emails_once_and_reminds_once_per_step(
    billing_dag: Any, month_end_dag: Any, emulator: Any, report_dir: Path
) -> None:
    assert str(run_for_month(billing_dag, 2026, 10).state) == "success"
    ids = {invoice["id"] for invoice in live_invoices(emulator)}
    assert len(ids) == DEMO_CUSTOMERS

    # 30 November: invoices due 15 November are 15 days past due (7d and 14d); Hooli's (30 days) is not due.
    dr = month_end(month_end_dag, 2026, 10, "2026-11-30")

    assert str(dr.state) == "success", task_states(dr)
    recon = xcom_result(dr, "reconcile")
    assert recon["counts"]["missing"] == recon["counts"]["duplicate"] == 0, recon
    report = report_dir / "month-end-reconciliation-2026-10.json"
    assert json.loads(report.read_text()) == []
    first = Counter(e["organization_invoice_id"] for e in emulator.emails())
    reminded = {e["organization_invoice_id"] for e in emulator.emails() if "14 days" in (e["subject"] or "")}
    assert set(first) == ids
    assert len(reminded) == DEMO_CUSTOMERS - 1  # all but Hooli
    assert sorted(set(first.values())) == [1, 3]  # first e-mail (+ 7d and 14d reminders when overdue)
    charged = xcom_result(dr, "charge_invoices")
    assert [entry["outcome"] for entry in charged["invoices"]] == ["charged"] or len(charged["invoices"]) == 1

    # 20 December: 35 days past due, the 30d step is new; the 7d/14d reminders and first e-mails are not re-sent.
    before = emails_by_subject(emulator)
    again = month_end(month_end_dag, 2026, 10, "2026-12-20")

    assert str(again.state) == "success", task_states(again)
    new = emails_by_subject(emulator) - before
    assert {subject for _, subject in new} == {"Reminder: invoice 30 days past due"}
    assert all(count == 1 for count in emails_by_subject(emulator).values())


def test_a_deleted_invoice_fails_the_run_naming_it(
    billing_dag: Any, month_end_dag: Any, emulator: Any, report_dir: Path
) -> None:
    assert str(run_for_month(billing_dag, 2026, 10).state) == "success"
    victim = live_invoices(emulator)[0]
    with EnlivyClient(emulator.base_url, emulator.token, organization_id=emulator.org_id) as api:
        api.delete_invoice(victim["id"])

    dr = month_end(month_end_dag, 2026, 10, "2026-11-30")

    assert str(dr.state) == "failed"
    assert task_states(dr)["reconcile"] == "failed"
    assert task_states(dr)["send_invoices"] != "success"
    assert emulator.emails() == []
    findings = json.loads((report_dir / "month-end-reconciliation-2026-10.json").read_text())
    missing = [f for f in findings if f["category"] == "missing"]
    assert [f["customer_id"] for f in missing] == [victim["organization_receiver_user_id"]]
