"""EnlivyCreateInvoicesOperator: inputs, results, skip_invalid, rate limit, progress lines, per-item failures."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import task
from airflow_support import task_log
from invoice_support import (
    CUSTOMERS,
    OCTOBER,
    PLATFORM,
    Failures,
    bulk_dag,
    live_invoices,
    make_dag,
    new_dag_id,
    result,
    run,
    xcom,
)

from enlivy_provider.emulator import seed
from enlivy_provider.operators.invoices import EnlivyCreateInvoicesOperator

INVOICES = "/organizations/*/invoices"
LINE = {"product_id": PLATFORM, "quantity": 1}


def specs(n: int = len(CUSTOMERS)) -> list[dict[str, Any]]:
    return [{"customer": CUSTOMERS[i], "line_items": [LINE]} for i in range(n)]


def test_specs_from_a_jinja_json_file(enlivy_emulator: Any, tmp_path: Path) -> None:
    template = (
        "[{% for c in params.customers %}"
        '{"customer": {"email": "{{ c.email }}"}, "line_items": [{"name": "Seats", "quantity": {{ c.seats }}, '
        '"price": "12.50", "tax_class_id": "' + seed.TAX_CLASS_STANDARD_ID + '"}]}'
        "{{ ',' if not loop.last }}{% endfor %}]"
    )
    (tmp_path / "specs.json.j2").write_text(template)
    customers = [{"email": c.email, "seats": n + 1} for n, c in enumerate(seed.DEMO_CUSTOMERS[:4])]
    with make_dag(
        new_dag_id("bulk_file"), template_searchpath=[str(tmp_path)], params={"customers": customers}
    ) as dag:
        EnlivyCreateInvoicesOperator(
            task_id="bulk",
            invoices="specs.json.j2",
            invoice_defaults={"currency": "EUR"},
            billing_period=OCTOBER,
        )
    states, dag_run = run(dag)
    assert states == {"bulk": "success"}
    out = result(dag_run, "bulk")
    assert [s["customer_id"] for s in out["created"]] == [c.id for c in seed.DEMO_CUSTOMERS[:4]]
    assert [s["totals"]["total"] for s in out["created"]] == ["14.88", "29.75", "44.63", "59.50"]
    assert out["invoice_ids"] == [s["id"] for s in out["created"]]
    assert out["existing"] == out["replayed"] == out["failed"] == out["invalid"] == []


def test_specs_from_xcom_with_per_spec_overrides(enlivy_emulator: Any) -> None:
    with make_dag(new_dag_id("bulk_xcom")) as dag:

        @task
        def build() -> list[dict[str, Any]]:
            out = specs(3)
            out[1]["invoice"] = {"currency": "USD", "status": "pending"}
            out[1]["line_items"] = [{"name": "Custom", "quantity": 2, "price": 9.99}]
            out[2]["billing_period"] = {"start": "2026-09-01", "end": "2026-09-30"}
            return out

        EnlivyCreateInvoicesOperator(
            task_id="bulk", invoices=build(), invoice_defaults={"currency": "EUR"}, billing_period=OCTOBER
        )
    states, dag_run = run(dag)
    assert states == {"build": "success", "bulk": "success"}
    created = result(dag_run, "bulk")["created"]
    assert [(s["currency"], s["status"]) for s in created] == [
        ("EUR", "draft"),
        ("USD", "pending"),
        ("EUR", "draft"),
    ]
    stored = {i["id"]: i for i in enlivy_emulator.invoices()}
    assert stored[created[2]["id"]]["line_items"][0]["billing_period_started_at"] == "2026-09-01"


def test_skip_invalid_creates_the_valid_ones(enlivy_emulator: Any) -> None:
    bad = specs(5)
    bad[2]["line_items"] = [{"product_id": PLATFORM, "quantity": "lots"}]
    dag = bulk_dag(
        "bulk_skip_invalid",
        invoices=bad,
        skip_invalid=True,
    )
    states, dag_run = run(dag)
    assert states == {"bulk": "success"}
    out = result(dag_run, "bulk")
    assert len(out["created"]) == 4
    assert out["invalid"] == [
        {
            "key": CUSTOMERS[2],
            "customer": CUSTOMERS[2],
            "errors": ["invoices[2].line_items[0].quantity: must be a number (got 'lots')"],
        }
    ]
    assert len(live_invoices(enlivy_emulator)) == 4


def test_skip_invalid_still_fails_when_every_spec_is_invalid(enlivy_emulator: Any) -> None:
    """Skipping the bad specs must not turn "nothing could be billed" into a green task."""
    bad = specs(2)
    for spec in bad:
        spec["line_items"] = [{"product_id": PLATFORM, "quantity": "lots"}]
    dag = bulk_dag(
        "bulk_all_invalid",
        invoices=bad,
        skip_invalid=True,
        retries=2,
    )
    states, _ = run(dag)
    assert states == {"bulk": "failed"}
    assert enlivy_emulator.write_count() == 0


def test_two_specs_for_one_customer_need_distinct_keys(enlivy_emulator: Any, failures: Failures) -> None:
    twice = [*specs(2), {"customer": {"email": seed.DEMO_CUSTOMERS[0].email}, "line_items": [LINE]}]
    with make_dag(new_dag_id("bulk_dup_keys")) as dag:
        EnlivyCreateInvoicesOperator(
            task_id="bulk", invoices=twice, invoice_defaults={"currency": "EUR"}, on_failure_callback=failures
        )
        EnlivyCreateInvoicesOperator(
            task_id="keyed",
            invoices=[{**s, "key": f"line-{n}"} for n, s in enumerate(twice)],
            invoice_defaults={"currency": "EUR"},
        )
    states, _ = run(dag)
    assert states == {"bulk": "failed", "keyed": "success"}
    assert f"invoices[2]: duplicate key '{CUSTOMERS[0]}' (also invoices[0])" in failures.text()
    assert len(live_invoices(enlivy_emulator)) == 3


def test_dry_run_previews_every_spec_and_writes_nothing(enlivy_emulator: Any) -> None:
    dag = bulk_dag(
        "bulk_dry",
        invoices=specs(),
        dry_run=True,
    )
    states, dag_run = run(dag)
    assert states == {"bulk": "success"}
    out = result(dag_run, "bulk")
    assert out["dry_run"] is True and out["invalid"] == []
    assert [p["totals"]["total"] for p in out["previews"]] == ["236.81"] * len(CUSTOMERS)
    assert enlivy_emulator.write_count() == 0


def test_a_rejected_item_fails_the_task_after_all_others_were_attempted(
    enlivy_emulator: Any, failures: Failures
) -> None:
    enlivy_emulator.add_fault("POST", INVOICES, "error", status=422, times=1)
    dag = bulk_dag("bulk_4xx", specs(), max_concurrency=1, retries=2, on_failure_callback=failures)
    states, dag_run = run(dag)
    assert states == {"bulk": "failed"}
    assert [kind for _, kind, _ in failures.seen] == ["AirflowFailException"]  # a 4xx is not retried
    assert "1 of 6 invoices failed (created 5, existing 0, replayed 0)" in failures.text()
    assert len(live_invoices(enlivy_emulator)) == 5
    partial = xcom(dag_run, "bulk", "bulk_result")  # the partial result is kept for the retry and the user
    assert len(partial["created"]) == 5 and partial["failed"][0]["retryable"] is False


def test_client_side_rate_limit_spaces_requests(enlivy_emulator: Any) -> None:
    dag = bulk_dag("bulk_rate", specs(5), max_concurrency=5, max_requests_per_second=10)
    started = time.monotonic()
    states, _ = run(dag)
    assert states == {"bulk": "success"}
    assert time.monotonic() - started >= 0.9  # 10 requests (lookup + create per item) at 10/s: >= 0.9 s


def test_progress_lines_are_logged(
    enlivy_emulator: Any, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with make_dag(new_dag_id("bulk_progress")) as dag:
        EnlivyCreateInvoicesOperator(
            task_id="bulk", invoices=specs(), invoice_defaults={"currency": "EUR"}, progress_interval=0
        )
    states, _ = run(dag)
    assert states == {"bulk": "success"}
    out = task_log(capfd, caplog)
    assert "create invoices: 3/6 done" in out
    assert "create invoices: 6/6 done (6 created, 0 existing, 0 replayed, 0 failed)" in out
    assert "ETA" in out
    assert json.dumps(enlivy_emulator.token)[1:-1] not in out


def test_skip_invalid_skips_an_absurdly_large_amount_and_bills_the_others(enlivy_emulator: Any) -> None:
    bad = specs(3)
    bad[1]["line_items"] = [{"name": "typo", "price": "100000000000000000000000000000", "quantity": 1}]
    dag = bulk_dag(
        "bulk_huge_amount",
        invoices=bad,
        skip_invalid=True,
    )
    states, dag_run = run(dag)
    assert states == {"bulk": "success"}
    out = result(dag_run, "bulk")
    assert [s["customer_id"] for s in out["created"]] == [CUSTOMERS[0], CUSTOMERS[2]]
    assert out["invalid"][0]["errors"] == ["invoices[1].line_items[0].price: must be at most 1000000000000"]
    assert len(live_invoices(enlivy_emulator)) == 2


def test_two_specs_billing_one_customer_for_one_period_are_refused_unless_if_exists_create(
    enlivy_emulator: Any, failures: Failures
) -> None:
    # Distinct keys, same customer and period (e.g. a duplicated row upstream): both items ran their lookup
    # before either was created, so if_exists="skip" billed the customer twice in one run.
    twice = [{**s, "key": f"row-{n}"} for n, s in enumerate([*specs(2), specs(1)[0]])]
    with make_dag(new_dag_id("bulk_dup_period")) as dag:
        EnlivyCreateInvoicesOperator(
            task_id="skip",
            invoices=twice,
            invoice_defaults={"currency": "EUR"},
            billing_period=OCTOBER,
            on_failure_callback=failures,
        )
    states, _ = run(dag)
    assert states == {"skip": "failed"}
    assert (
        f"invoices[2]: bills {CUSTOMERS[0]} for 2026-10-01 .. 2026-10-31 like invoices[0]" in failures.text()
    )
    assert enlivy_emulator.write_count() == 0

    with make_dag(new_dag_id("bulk_dup_period_create")) as dag:
        EnlivyCreateInvoicesOperator(
            task_id="create",
            invoices=twice,
            invoice_defaults={"currency": "EUR"},
            billing_period=OCTOBER,
            if_exists="create",
        )
    states, _ = run(dag)
    assert states == {"create": "success"}
    assert len(live_invoices(enlivy_emulator)) == 3


def test_a_customer_whose_role_cannot_be_invoiced_stops_the_bulk_before_any_write(
    enlivy_emulator: Any, failures: Failures
) -> None:
    # The sender (staff role) is an organization user too; Enlivy refuses to invoice it (422). Found only by
    # the server, it failed mid-run after the other invoices had been written.
    staff = [*specs(3), {"customer": seed.SENDER_USER_ID, "line_items": [LINE]}]
    dag = bulk_dag(
        "bulk_staff",
        invoices=staff,
        on_failure_callback=failures,
    )
    states, _ = run(dag)
    assert states == {"bulk": "failed"}
    assert "1 of 4 invoice specs is invalid" in failures.text()
    assert f"invoices[3].customer: customer {seed.SENDER_USER_ID} cannot be invoiced" in failures.text()
    assert enlivy_emulator.write_count() == 0
