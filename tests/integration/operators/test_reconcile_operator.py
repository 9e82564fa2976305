"""EnlivyReconcileInvoicesOperator against the emulator: a seeded October with exactly one of each discrepancy.

October 2026 is billed under billing key "plan" (and variants) by a monthly DAG; its run of logical date
2026-10-01 has the reference date 2026-11-01 (run_dates). Every invoice is 1 x 100.00 at 19 % = 119.00 EUR
unless said otherwise.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pendulum
from airflow.timetables.interval import CronDataIntervalTimetable
from invoice_support import CUSTOMERS, VAT19, make_dag, new_dag_id, result, run, try_numbers

OCT = {"billing_period_start": "2026-10-01", "billing_period_end": "2026-10-31"}
C0, C1 = CUSTOMERS[0], CUSTOMERS[1]


def seed(emulator: Any, count: int = 1, *, key: str, customer: str = C0, **spec: Any) -> list[str]:
    spec = {**OCT, "issued_at": "2026-11-01", "due_at": "2026-11-15", **spec}
    made = emulator.bulk_invoices(count, customer_ids=[customer], billing_key=key, **spec)
    return [made["first_id"], made["last_id"]][: max(count, 1)] if count <= 2 else [made["first_id"]]


def row(key: str, total: str = "119.00", customer: str = C0) -> dict[str, str]:
    return {"customer_id": customer, "billing_key": key, "total": total, "currency": "EUR"}


def seeded_month(emulator: Any) -> dict[str, Any]:
    """One of each: ok (aged 31 days), missing, duplicate, mismatch, cancelled (+ its live re-bill), unexpected;
    and invoices that are none of this run's business."""
    ids: dict[str, Any] = {}
    ids["ok"] = seed(emulator, key="ok", due_at="2026-10-01")[0]  # 31 days past due on 2026-11-01
    ids["dup"] = seed(emulator, 2, key="dup")
    ids["mismatch"] = seed(emulator, key="mismatch")[0]
    ids["cancelled"] = seed(emulator, key="cancelled")[0]
    emulator.set_invoice_status(ids["cancelled"], "cancelled")
    seed(emulator, key="cancelled")  # its live re-bill
    ids["unexpected"] = seed(emulator, key="ok", customer=C1)[0]
    seed(emulator, key="paid", status="paid", due_at="2026-09-01")  # paid long ago: not aged
    # Not this run's: November's invoice of the same billing, another DAG's billing key, no billing period.
    seed(
        emulator,
        key="ok",
        billing_period_start="2026-11-01",
        billing_period_end="2026-11-30",
        issued_at="2026-12-01",
    )
    seed(emulator, key="other-dag.task")
    emulator.bulk_invoices(1, customer_ids=[C0], issued_at="2026-11-01")
    return ids


EXPECTED = [
    row("ok"),
    row("missing"),
    row("dup"),
    row("mismatch", total="100.00"),
    row("cancelled"),
    row("paid"),
]


def reconcile_dag(name: str, **kwargs: Any) -> Any:
    from enlivy_provider.operators.reconcile import EnlivyReconcileInvoicesOperator

    kwargs.setdefault("billing_period", "data_interval")
    with make_dag(
        new_dag_id(name),
        schedule=CronDataIntervalTimetable("0 0 1 * *", timezone="UTC"),
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    ) as dag:
        EnlivyReconcileInvoicesOperator(task_id="reconcile", **kwargs)
    return dag


# dag.test() with this logical date runs the interval 2026-10-01 .. 2026-11-01 (Airflow 3: it ends there).
OCTOBER_RUN = {"logical_date": pendulum.datetime(2026, 11, 1, tz="UTC")}


def test_seeded_month_finds_exactly_one_of_each(enlivy_emulator: Any, tmp_path: Path) -> None:
    ids = seeded_month(enlivy_emulator)
    report = tmp_path / "out" / "october.csv"
    dag = reconcile_dag("reconcile_month", expected=EXPECTED, report_path=f"file://{report}", fail_on=())
    states, dag_run = run(dag, **OCTOBER_RUN)
    assert states == {"reconcile": "success"}
    summary = result(dag_run, "reconcile")

    assert summary["reference_date"] == "2026-11-01"
    assert summary["period"] == {"start": "2026-10-01", "end": "2026-10-31"}
    assert summary["issued_from"] == "2026-10-01" and summary["issued_to"] == "2026-12-15"
    assert summary["counts"] == {
        "missing": 1,
        "duplicate": 1,
        "unexpected": 1,
        "total_mismatch": 1,
        "cancelled_or_deleted": 1,
    }
    examples = summary["examples"]
    assert [e["billing_key"] for e in examples["missing"]] == ["missing"]
    assert examples["duplicate"][0]["invoice_ids"] == ",".join(ids["dup"])
    mismatch = examples["total_mismatch"][0]
    assert (mismatch["invoice_ids"], mismatch["expected_total"], mismatch["invoiced_total"]) == (
        ids["mismatch"],
        "100.00",
        "119.00",
    )
    assert mismatch["difference"] == "19.00"
    assert (examples["unexpected"][0]["invoice_ids"], examples["unexpected"][0]["customer_id"]) == (
        ids["unexpected"],
        C1,
    )
    assert (
        examples["cancelled_or_deleted"][0]["invoice_ids"],
        examples["cancelled_or_deleted"][0]["status"],
    ) == (
        ids["cancelled"],
        "cancelled",
    )
    # Expected 6 x 119.00 - 19.00; invoiced: ok, dup (counted once), mismatch, cancelled's re-bill, paid.
    assert summary["totals"] == {"EUR": {"expected": "695.00", "invoiced": "595.00", "difference": "-100.00"}}
    # Only "ok" is past due on 2026-11-01 (31 days); the paid one owes nothing, the rest are due 11-15.
    assert summary["ageing"] == {
        "0-30": {"count": 0, "totals": {}},
        "31-60": {"count": 1, "totals": {"EUR": "119.00"}},
        "61-90": {"count": 0, "totals": {}},
        "90+": {"count": 0, "totals": {}},
    }

    with report.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted((r["category"], r["billing_key"], r["invoice_ids"]) for r in rows) == sorted(
        [
            ("cancelled_or_deleted", "cancelled", ids["cancelled"]),
            ("unexpected", "ok", ids["unexpected"]),
            ("unpaid", "ok", ids["ok"]),
            ("missing", "missing", ""),
            ("duplicate", "dup", ",".join(ids["dup"])),
            ("total_mismatch", "mismatch", ids["mismatch"]),
        ]
    )
    unpaid = next(r for r in rows if r["category"] == "unpaid")
    assert (unpaid["days_past_due"], unpaid["ageing_bucket"]) == ("31", "31-60")
    assert summary["report_rows"] == 6


def test_fail_on_policy_fails_once_naming_the_categories(
    enlivy_emulator: Any, tmp_path: Path, failures: Any
) -> None:
    seeded_month(enlivy_emulator)
    report = tmp_path / "october.json"
    dag = reconcile_dag(
        "reconcile_fail",
        expected=EXPECTED,
        report_path=f"file://{report}",
        retries=2,
        on_failure_callback=failures,
    )
    states, dag_run = run(dag, **OCTOBER_RUN)
    assert states == {"reconcile": "failed"}
    assert try_numbers(dag_run) == {"reconcile": 1}  # AirflowFailException: no retry
    assert failures.seen[0][1] == "AirflowFailException"
    assert "missing: 1, duplicate: 1, total_mismatch: 1" in failures.text()
    # The report is complete even when the task fails (JSON, one array of findings).
    findings = json.loads(report.read_text(encoding="utf-8"))
    assert sorted(f["category"] for f in findings) == sorted(
        ["cancelled_or_deleted", "unexpected", "unpaid", "missing", "duplicate", "total_mismatch"]
    )


def test_fail_on_only_unexpected_passes_without_one(enlivy_emulator: Any, tmp_path: Path) -> None:
    seed(enlivy_emulator, key="ok")
    dag = reconcile_dag(
        "reconcile_policy",
        expected=[row("ok"), row("missing")],
        report_path=f"file://{tmp_path}/r.csv",
        fail_on=["unexpected"],
    )
    states, dag_run = run(dag, **OCTOBER_RUN)
    assert states == {"reconcile": "success"}
    assert result(dag_run, "reconcile")["counts"]["missing"] == 1
    assert result(dag_run, "reconcile")["failed_on"] == []


def test_malformed_expected_rows_fail_before_any_request(
    enlivy_emulator: Any, tmp_path: Path, failures: Any
) -> None:
    enlivy_emulator.reset_counters()
    bad = [
        row("ok"),
        {**row("x"), "total": 119.0},
        {**row("y"), "period_start": "2026-10-32"},
        {"currency": "EURO"},
    ]
    dag = reconcile_dag(
        "reconcile_bad",
        expected=bad,
        report_path=f"file://{tmp_path}/r.csv",
        retries=2,
        on_failure_callback=failures,
    )
    states, dag_run = run(dag, **OCTOBER_RUN)
    assert states == {"reconcile": "failed"}
    assert try_numbers(dag_run) == {"reconcile": 1}
    text = failures.text()
    assert "expected[1].total: must be a decimal string, not a float (119.0)" in text
    assert "expected[2].period_start: must be a date YYYY-MM-DD (got '2026-10-32')" in text
    assert "expected[3].customer_id" in text and "expected[3].currency" in text
    assert enlivy_emulator.counters()["total"] == 0
    assert not (tmp_path / "r.csv").exists()


def test_expected_from_a_csv_file_and_from_the_bulk_operators_result(
    enlivy_emulator: Any, tmp_path: Path
) -> None:
    """The bulk create operator's XCom (no billing key or period in it: the operator's defaults fill them)."""
    from enlivy_provider.operators.invoices import EnlivyCreateInvoicesOperator
    from enlivy_provider.operators.reconcile import EnlivyReconcileInvoicesOperator

    (tmp_path / "expected.csv").write_text(
        "customer_id,billing_key,period_start,period_end,total,currency\n"
        f"{C0},billing.bulk,2026-10-01,2026-10-31,119.00,EUR\n"
        f"{C1},billing.bulk,2026-10-01,2026-10-31,119.00,EUR\n",
        encoding="utf-8",
    )
    with make_dag(
        new_dag_id("reconcile_bulk"),
        schedule=CronDataIntervalTimetable("0 0 1 * *", timezone="UTC"),
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    ) as dag:
        bulk = EnlivyCreateInvoicesOperator(
            task_id="bulk",
            invoices=[
                {
                    "customer": c,
                    "line_items": [{"name": "Plan", "quantity": 1, "price": "100.00", "tax_class_id": VAT19}],
                }
                for c in (C0, C1)
            ],
            invoice_defaults={"currency": "EUR", "due_in_days": 14},
            billing_period="data_interval",
            billing_key="billing.bulk",
        )
        for task_id, expected in (
            ("from_xcom", bulk.output),
            ("from_csv", f"file://{tmp_path}/expected.csv"),
        ):
            bulk >> EnlivyReconcileInvoicesOperator(
                task_id=task_id,
                expected=expected,
                billing_key="billing.bulk",
                billing_period="data_interval",
                report_path=f"file://{tmp_path}/{task_id}.csv",
            )
    states, dag_run = run(dag, **OCTOBER_RUN)
    assert states == {"bulk": "success", "from_xcom": "success", "from_csv": "success"}
    for task_id in ("from_xcom", "from_csv"):
        summary = result(dag_run, task_id)
        assert summary["expected"] == 2
        assert set(summary["counts"].values()) == {0}, summary
