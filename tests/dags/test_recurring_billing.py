"""dags/enlivy_recurring_billing.py end to end: dag.test() against the emulator over HTTP."""

from __future__ import annotations

import csv
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow_support import asset_events, run_dag, task_states, xcom_result
from dag_helpers import DAGS_DIR, live_invoices

from enlivy_provider.invoices.reconcile import parse_expected_row
from enlivy_provider.invoices.totals import compute_invoice_totals, compute_line_totals
from enlivy_provider.operators.reconcile import load_expected_rows

TZ = "Europe/Berlin"
DEMO_CUSTOMERS = 6
GLOBEX_ID = "org_user_2qD7mZ0demoCustomer000001"


def run_for_month(dag: Any, year: int, month: int, **conf: Any) -> Any:
    """A manual run of a data-interval timetable bills the last whole month before its logical date."""
    first_of_next = pendulum.datetime(year, month, 1, tz=TZ).add(months=1)
    return run_dag(dag, logical_date=first_of_next, run_conf=conf or None)


def periods_by_customer(invoices: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    """(customer, period start, period end) of every invoice, from its line items' billing period."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for invoice in invoices:
        periods = {
            (str(line["billing_period_started_at"])[:10], str(line["billing_period_ended_at"])[:10])
            for line in invoice["line_items"]
        }
        assert len(periods) == 1, periods
        start, end = periods.pop()
        counts[(invoice["organization_receiver_user_id"], start, end)] += 1
    return counts


def usage_total(account: str, metric: str, start: str, end: str) -> Decimal:
    with (DAGS_DIR / "data" / "usage.csv").open() as handle:
        return sum(
            (
                Decimal(row["quantity"])
                for row in csv.DictReader(handle)
                if row["account"] == account and row["metric"] == metric and start <= row["date"] <= end
            ),
            Decimal(0),
        )


@pytest.fixture
def emulator(enlivy_airflow_connection: Any, report_dir: Path) -> Any:
    """The emulator, reset to the demo seed; customers pay an invoice half a second after it is issued."""
    enlivy_airflow_connection.configure(auto_pay_after=0.5)
    return enlivy_airflow_connection


@pytest.fixture
def non_paying_emulator(enlivy_airflow_connection: Any, report_dir: Path) -> Any:
    """The emulator, reset to the demo seed; nobody pays."""
    return enlivy_airflow_connection


def test_bills_the_month_of_the_data_interval_with_plan_fee_and_metered_usage(
    billing_dag: Any, emulator: Any, report_dir: Path
) -> None:
    dr = run_for_month(billing_dag, 2026, 10)

    assert str(dr.state) == "success", task_states(dr)
    states = task_states(dr)
    assert states["preview_invoices"] == "skipped"
    assert states["wait_for_payment"] == "success"
    invoices = live_invoices(emulator)
    assert len(invoices) == DEMO_CUSTOMERS
    assert set(periods_by_customer(invoices).values()) == {1}
    assert {key[1:] for key in periods_by_customer(invoices)} == {("2026-10-01", "2026-10-31")}

    # Globex, growth plan in EUR with 19 % VAT: 199.00 + API calls above 1,000,000 at 0.35 per 1k calls.
    globex = next(i for i in invoices if i["organization_receiver_user_id"] == GLOBEX_ID)
    calls = usage_total("globex", "api_calls", "2026-10-01", "2026-10-31")
    assert calls > 1_000_000
    quantity = (calls - 1_000_000) / 1000
    expected = compute_invoice_totals(
        [
            compute_line_totals(Decimal(1), Decimal("199.00"), tax_rate_percent=Decimal(19)),
            compute_line_totals(quantity, Decimal("0.35"), tax_rate_percent=Decimal(19)),
        ]
    )
    assert Decimal(str(globex["total"])) == expected.total
    assert [Decimal(str(line["quantity"])) for line in globex["line_items"]] == [Decimal(1), quantity]
    assert globex["currency"] == "EUR"
    initech = next(i for i in invoices if i["organization_receiver_user_id"].endswith("000002"))
    assert initech["currency"] == "USD"

    rows = xcom_result(dr, "summary")
    assert len(rows) == DEMO_CUSTOMERS
    assert {row["status"] for row in rows} == {"paid"}
    assert "Globex Corporation <billing@globex.example>" in {
        row["customer"] for row in rows
    }  # name and e-mail
    summary = (report_dir / "billing-summary-2026-10.txt").read_text()
    assert "Invoices for October 2026 (2026-10-01 .. 2026-10-31): 6 created" in summary


def billed_asset_events() -> list[tuple[str, dict[str, Any]]]:
    """(URI, extra) of every event recorded on an ``enlivy://`` asset of the billing key, oldest first."""
    return asset_events("enlivy://%billing_key=monthly-usage")


def test_rerunning_a_billing_period_creates_no_new_invoice(billing_dag: Any, emulator: Any) -> None:
    before = len(billed_asset_events())
    run_for_month(billing_dag, 2026, 10)
    emulator.reset_counters()

    dr = run_for_month(billing_dag, 2026, 10)

    assert str(dr.state) == "success", task_states(dr)
    assert emulator.request_count("POST", "/organizations/{org}/invoices") == 0
    assert emulator.write_count() == 0
    assert len(live_invoices(emulator)) == DEMO_CUSTOMERS
    result = xcom_result(dr, "create_invoices")
    assert result["created"] == []
    assert len(result["existing"]) == DEMO_CUSTOMERS
    # Each run records the billed period on the billing's invoices asset, with what that run did.
    host = emulator.base_url.split("://", 1)[1].rstrip("/")
    uri = f"enlivy://{host}/organizations/{emulator.org_id}/invoices?billing_key=monthly-usage"
    first, second = billed_asset_events()[before:]
    assert first[0] == second[0] == uri
    period = {"billing_period": "2026-10", "period_start": "2026-10-01", "period_end": "2026-10-31"}
    assert first[1] == {
        **period,
        "created": DEMO_CUSTOMERS,
        "existing": 0,
        "replayed": 0,
        "failed": 0,
        "unpaid": 0,
    }
    assert second[1] == {
        **period,
        "created": 0,
        "existing": DEMO_CUSTOMERS,
        "replayed": 0,
        "failed": 0,
        "unpaid": 0,
    }


def test_backfill_of_three_months_creates_one_invoice_per_customer_per_month(
    billing_dag: Any, emulator: Any
) -> None:
    for month in (8, 9, 10):
        dr = run_for_month(billing_dag, 2026, month)
        assert str(dr.state) == "success", task_states(dr)
    # The same months again (a cleared backfill): nothing new.
    for month in (8, 9, 10):
        run_for_month(billing_dag, 2026, month)

    counts = periods_by_customer(live_invoices(emulator))
    assert len(counts) == DEMO_CUSTOMERS * 3
    assert set(counts.values()) == {1}
    assert {key[1:] for key in counts} == {
        ("2026-08-01", "2026-08-31"),
        ("2026-09-01", "2026-09-30"),
        ("2026-10-01", "2026-10-31"),
    }


def test_dry_run_writes_a_preview_report_and_nothing_to_enlivy(
    billing_dag: Any, emulator: Any, report_dir: Path
) -> None:
    emulator.reset_counters()

    dr = run_for_month(billing_dag, 2026, 9, dry_run=True)

    assert str(dr.state) == "success", task_states(dr)
    states = task_states(dr)
    assert states["create_invoices"] == "skipped"
    assert states["summary"] == "skipped"
    assert emulator.write_count() == 0
    assert live_invoices(emulator) == []
    preview = (report_dir / "billing-preview-2026-09.txt").read_text()
    assert preview.startswith("DRY RUN - invoices for September 2026 (2026-09-01 .. 2026-09-30)")
    for name in ("Globex Corporation", "Initech LLC", "Hooli Cloud"):
        assert name in preview
    # Its JSON carries the rows the month-end DAG reconciles against (one function builds both): a valid
    # `expected` input of the reconcile operator, one billing per customer of September.
    rows = load_expected_rows(json.loads((report_dir / "billing-preview-2026-09.json").read_text()))
    parsed = [parse_expected_row(row, f"expected[{n}]") for n, row in enumerate(rows)]
    assert [issues for _, issues in parsed if issues] == []
    expected = [billing for billing, _ in parsed if billing is not None]
    assert len(expected) == DEMO_CUSTOMERS
    assert {(b.billing_key, b.period.start.isoformat(), b.period.end.isoformat()) for b in expected} == {
        ("monthly-usage", "2026-09-01", "2026-09-30")
    }


def test_unpaid_invoices_do_not_fail_the_run_and_are_listed(
    billing_dag: Any, non_paying_emulator: Any
) -> None:
    billing_dag.get_task("wait_for_payment").timeout = 2

    dr = run_for_month(billing_dag, 2026, 10)

    assert str(dr.state) == "success", task_states(dr)
    states = task_states(dr)
    assert states["wait_for_payment"] == "skipped"  # soft_fail after the timeout
    assert states["list_unpaid"] == "success", states
    unpaid = xcom_result(dr, "list_unpaid")["unpaid"]
    assert len(unpaid) == DEMO_CUSTOMERS
    assert {item["status"] for item in unpaid} == {"pending"}
    assert {row["status"] for row in xcom_result(dr, "summary")} == {"pending"}
