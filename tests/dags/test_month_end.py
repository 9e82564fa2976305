"""dags/enlivy_month_end.py the way production runs it: the scheduler's run closing October (data interval
2026-10-04 06:00 .. 2026-11-04 06:00 Berlin, reference date 4 November), after the billing DAG's scheduled
October run has billed the month in the emulator. Nobody pays, so invoices stay unpaid.

Counted in the emulator: e-mails (``/_emulator/emails``; a reminder carries its step's subject) and charge
logs. A re-run is the same run cleared (``airflow tasks clear``) and run again, or a second run of the same
interval made by the command docs/month-end.md gives. The page's Python example runs here as written.
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
    clear_runs,
    create_scheduled_run,
    delete_runs,
    execute_run,
    run_ids,
    try_numbers,
)
from airflow_support import task_states, xcom_result
from dag_helpers import REPO
from month_end_support import BERLIN, BILLING, CUSTOMER, MONTH_END, REMINDER, bill_october, charges, emails

from enlivy_provider.client import EnlivyClient
from enlivy_provider.emulator.seed import DEMO_CUSTOMERS

REFERENCE = dt.date(2026, 11, 4)  # the day the month-end run's interval ends: days late count to it
ACTIONS = ("send_invoices", "charge_invoices", "remind_7d", "remind_14d", "remind_30d")
DOC = REPO / "docs" / "month-end.md"


def doc_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)


def test_the_documented_ladder_example_runs_as_written() -> None:
    [example] = [block for block in doc_blocks("python") if "assert" in block]
    exec(compile(example, str(DOC), "exec"), {"__name__": "docs_month_end_example"})


@pytest.fixture
def dags(billing_and_month_end_dags: tuple[Any, Any], report_dir: Path) -> tuple[Any, Any]:
    return billing_and_month_end_dags


@pytest.fixture
def emulator(enlivy_airflow_connection: Any) -> Any:
    for dag_id in (BILLING, MONTH_END):
        delete_runs(dag_id)  # each test starts from no runs, as a fresh deployment would
    return enlivy_airflow_connection


def close_october(dags: tuple[Any, Any]) -> Any:
    """The month-end DAG's scheduled run closing October, created and run as the scheduler would."""
    month_end = dags[1]
    dag_run = execute_run(
        month_end, create_scheduled_run(month_end, pendulum.datetime(2026, 10, 4, 6, tz=BERLIN))
    )
    assert str(dag_run.run_type) == "scheduled"
    assert pendulum.instance(dag_run.data_interval_end).in_timezone(BERLIN).date() == REFERENCE
    return dag_run


def rerun(dags: tuple[Any, Any], dag_run: Any) -> Any:
    """The same run again: every task cleared (``airflow tasks clear enlivy_month_end --yes``), then run."""
    assert clear_runs(MONTH_END) > 0
    return execute_run(dags[1], dag_run.run_id)


def seed_unpaid(
    emulator: Any, days_late: int, *, status: str = "sent_email", key: str = "monthly-usage"
) -> str:
    """An invoice of an earlier month (August, issued 1 September), ``days_late`` days past due on the
    reference date; returns its id."""
    due = REFERENCE - dt.timedelta(days=days_late)
    seeded = emulator.bulk_invoices(
        1,
        customer_ids=[CUSTOMER["globex"]],
        status=status,
        billing_key=key,
        billing_period_start="2026-08-01",
        billing_period_end="2026-08-31",
        issued_at="2026-09-01",
        due_at=due.isoformat(),
    )
    return str(seeded["first_id"])


@pytest.mark.airflow3_only(
    reason="the re-run clears the run with tests/airflow_runs.clear_runs, written against Airflow 3's SerializedDAG"
)
def test_clean_month_is_reconciled_emailed_once_and_only_the_stored_card_charged(
    dags: tuple[Any, Any], emulator: Any, report_dir: Path
) -> None:
    october = bill_october(dags)
    assert len(october) == len(DEMO_CUSTOMERS)

    dag_run = close_october(dags)

    assert str(dag_run.state) == "success", task_states(dag_run)
    assert set(try_numbers(dag_run).values()) == {1}
    recon = xcom_result(dag_run, "reconcile")
    assert recon["expected"] == len(DEMO_CUSTOMERS)
    assert (recon["issued_from"], recon["reference_date"]) == ("2026-10-01", REFERENCE.isoformat())
    assert recon["failed_on"] == [] and set(recon["counts"].values()) == {0}, recon["counts"]
    report = json.loads((report_dir / "month-end-reconciliation-2026-10.json").read_text())
    assert report == []  # nothing flagged (and nothing past due yet: the invoices fall due on 15 Nov, 1 Dec)
    # Every October invoice e-mailed once (the first send), nothing reminded (due 15 Nov, 1 Dec).
    invoice_ids = {summary["id"] for summary in october.values()}
    assert emails(emulator) == {(invoice_id, "invoice"): 1 for invoice_id in invoice_ids}
    # Wayne Logistics pays by a stored card: charged once, after its first e-mail; nobody else is charged.
    wayne = october[CUSTOMER["wayne"]]["id"]
    assert charges(emulator) == {wayne: 1}
    assert next(i for i in emulator.invoices() if i["id"] == wayne)["status"] == "paid"
    done = {row["customer"]: row["done"] for row in xcom_result(dag_run, "summary")["rows"]}
    assert done == {c.name: "e-mailed" for c in DEMO_CUSTOMERS} | {
        "Wayne Logistics": "e-mailed, charge succeeded"
    }
    text = (report_dir / "month-end-summary-2026-10.txt").read_text()
    assert text.startswith("Month-end for October 2026 (2026-10-01 .. 2026-10-31), as of 2026-11-04")
    assert "Wayne Logistics" in text

    emulator.reset_counters()
    again = rerun(dags, dag_run)

    assert str(again.state) == "success", task_states(again)
    assert emails(emulator) == {(invoice_id, "invoice"): 1 for invoice_id in invoice_ids}
    assert charges(emulator) == {wayne: 1}
    assert emulator.write_count() == 0  # e-mailed invoices are no longer "pending", Wayne's is paid
    assert xcom_result(again, "summary")["rows"] == []


@pytest.mark.airflow3_only(
    reason="the documented second run is Airflow 3's `airflow dags trigger --logical-date` (2.x spells it -e)"
)
def test_dunning_ladder_reminds_each_overdue_invoice_at_its_step_once(
    dags: tuple[Any, Any], emulator: Any
) -> None:
    october = bill_october(dags)
    late = {days: seed_unpaid(emulator, days) for days in (6, 7, 13, 14, 29, 30, 45)}
    paid = seed_unpaid(emulator, 30, status="paid")
    other_billing = seed_unpaid(emulator, 14, key="consulting-hours")

    dag_run = close_october(dags)

    assert str(dag_run.state) == "success", task_states(dag_run)
    reminders = {invoice: subject for (invoice, subject) in emails(emulator) if subject != "invoice"}
    assert reminders == {
        late[7]: REMINDER.format(7),
        late[13]: REMINDER.format(7),
        late[14]: REMINDER.format(14),
        late[29]: REMINDER.format(14),
        late[30]: REMINDER.format(30),
        late[45]: REMINDER.format(30),
    }  # 6 days late: nothing yet; paid, or another billing's: never
    assert set(emails(emulator).values()) == {1}
    assert paid not in reminders and other_billing not in reminders
    assert {invoice for (invoice, subject) in emails(emulator) if subject == "invoice"} == {
        s["id"] for s in october.values()
    }

    # A second run of the same interval: the command docs/month-end.md gives, run by the real CLI.
    [command] = [
        line
        for block in doc_blocks("bash")
        for line in block.splitlines()
        if " dags trigger " in line and "--logical-date" in line
    ]
    airflow_cli(*shlex.split(command)[1:])
    [manual] = run_ids(MONTH_END, "manual")
    again = execute_run(dags[1], manual)

    assert str(again.state) == "success", task_states(again)
    assert pendulum.instance(again.data_interval_end) == pendulum.instance(dag_run.data_interval_end)
    assert set(emails(emulator).values()) == {1}  # no second reminder of any step
    for task_id, step in (("remind_7d", 7), ("remind_14d", 14), ("remind_30d", 30)):
        result = xcom_result(again, task_id)
        assert result["counts"] == {"already_sent": 2}, (task_id, result)  # the step's key, answered again
        assert {entry["invoice_id"] for entry in result["invoices"]} == {
            invoice for invoice, subject in reminders.items() if subject == REMINDER.format(step)
        }


@pytest.mark.parametrize("fault", ["missing", "duplicate"])
def test_a_missing_or_duplicate_invoice_fails_the_run_loudly_and_sends_nothing(
    dags: tuple[Any, Any], emulator: Any, report_dir: Path, fault: str
) -> None:
    october = bill_october(dags)
    globex = october[CUSTOMER["globex"]]
    extra = None
    if fault == "missing":  # deleted in the app after billing
        with EnlivyClient(emulator.base_url, emulator.token, organization_id=emulator.org_id) as api:
            api.delete_invoice(globex["id"])
    else:  # a second invoice of the same billing (customer, October, monthly-usage)
        extra = emulator.bulk_invoices(
            1,
            customer_ids=[CUSTOMER["globex"]],
            billing_key="monthly-usage",
            billing_period_start="2026-10-01",
            billing_period_end="2026-10-31",
            issued_at="2026-11-01",
            due_at="2026-11-15",
        )["first_id"]

    dag_run = close_october(dags)  # execute_run raises if a task waits for a retry

    states = task_states(dag_run)
    assert str(dag_run.state) == "failed"
    assert states["reconcile"] == "failed" and states["summary"] == "failed"
    assert {states[task_id] for task_id in ("select_invoices", *ACTIONS)} == {"upstream_failed"}
    assert try_numbers(dag_run)["reconcile"] == 1  # failed once, not retried
    assert emulator.emails() == [] and charges(emulator) == {}
    report = json.loads((report_dir / "month-end-reconciliation-2026-10.json").read_text())
    flagged = [row for row in report if row["category"] in ("missing", "duplicate")]
    assert [(row["category"], row["customer_id"]) for row in flagged] == [(fault, CUSTOMER["globex"])]
    if extra is not None:
        assert set(flagged[0]["invoice_ids"].split(",")) == {globex["id"], extra}
    text = (report_dir / "month-end-summary-2026-10.txt").read_text()
    assert f"{fault}: Globex Corporation ({CUSTOMER['globex']}), 2026-10-01..2026-10-31" in text
    assert (
        "FAILED: reconcile; not run: charge_invoices, remind_14d, remind_30d, remind_7d, select_invoices"
        in text
    )
