"""EnlivyUpdateInvoiceOperator: partial updates, status precondition, line replacement, idempotent retries."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pendulum
from invoice_support import CONSULTING, CUSTOMERS, PLATFORM, Failures, make_dag, new_dag_id, result, run

from enlivy_provider.operators.invoices import EnlivyCreateInvoiceOperator, EnlivyUpdateInvoiceOperator

INVOICES = "/organizations/*/invoices/*"


def create(task_id: str = "create", **invoice: Any) -> EnlivyCreateInvoiceOperator:
    return EnlivyCreateInvoiceOperator(
        task_id=task_id,
        customer=CUSTOMERS[0],
        line_items=[{"product_id": PLATFORM, "quantity": 1}],
        invoice={"currency": "EUR", "status": "pending", **invoice},
    )


def test_update_from_the_create_summary_xcom(enlivy_emulator: Any) -> None:
    with make_dag(new_dag_id("update"), params={"paid_on": "2026-11-03"}) as dag:
        created = create()
        EnlivyUpdateInvoiceOperator(
            task_id="mark_paid",
            invoice_id=created.output,
            changes={"status": "paid", "paid_at": "{{ params.paid_on }}", "note": "Paid, thank you"},
            expected_statuses=["pending", "sent_email"],
        )
    states, dag_run = run(dag)
    assert states == {"create": "success", "mark_paid": "success"}
    summary = result(dag_run, "mark_paid")
    assert summary["outcome"] == "updated" and summary["status"] == "paid"
    [invoice] = enlivy_emulator.invoices()
    assert invoice["status"] == "paid" and str(invoice["paid_at"]).startswith("2026-11-03")
    assert invoice["note_lang_map"] == {"en": "Paid, thank you"}


def test_line_items_are_replaced_and_totals_recomputed(enlivy_emulator: Any) -> None:
    with make_dag(new_dag_id("update_lines")) as dag:
        created = create()
        EnlivyUpdateInvoiceOperator(
            task_id="relines",
            invoice_id="{{ ti.xcom_pull(task_ids='create')['id'] }}",
            changes={"line_items": [{"product_id": CONSULTING, "quantity": "2.5", "discount": "5"}]},
        )
        created >> dag.task_dict["relines"]
    states, dag_run = run(dag)
    assert states == {"create": "success", "relines": "success"}
    assert result(dag_run, "relines")["totals"]["total"] == "232.50"
    [invoice] = enlivy_emulator.invoices()
    [line] = invoice["line_items"]
    assert Decimal(str(line["quantity"])) == Decimal("2.5")


def test_status_precondition_refuses_and_writes_nothing(enlivy_emulator: Any, failures: Failures) -> None:
    with make_dag(new_dag_id("update_refused")) as dag:
        created = create(status="draft")
        EnlivyUpdateInvoiceOperator(
            task_id="cancel",
            invoice_id=created.output,
            changes={"status": "cancelled"},
            expected_statuses=["pending"],
            retries=2,
            on_failure_callback=failures,
        )
    states, _ = run(dag)
    assert states == {"create": "success", "cancel": "failed"}
    assert "is 'draft', not one of expected_statuses ['pending']; not updated" in failures.text()
    assert [kind for _, kind, _ in failures.seen] == ["AirflowFailException"]
    assert enlivy_emulator.counters()["routes"].get("GET /organizations/{org}/invoices/{id}", 0) == 1
    assert enlivy_emulator.write_count() == 1  # the create; no PUT


def test_invalid_changes_fail_before_any_request(enlivy_emulator: Any, failures: Failures) -> None:
    with make_dag(new_dag_id("update_invalid")) as dag:
        EnlivyUpdateInvoiceOperator(
            task_id="update",
            invoice_id="org_inv_whatever",
            changes={
                "status": "void",
                "due_at": "soon",
                "line_items": [{"name": "x", "quantity": "0", "price": 1}],
            },
            on_failure_callback=failures,
        )
    states, _ = run(dag)
    assert states == {"update": "failed"}
    text = failures.text()
    for expected in (
        "changes.status: must be one of",
        "changes.due_at:",
        "changes.line_items[0].quantity: must be greater than 0",
    ):
        assert expected in text
    assert enlivy_emulator.counters()["total"] == 0


def test_retried_update_after_a_lost_answer_is_not_refused(
    enlivy_emulator: Any, connection_extra: Any
) -> None:
    with make_dag(new_dag_id("update_retry")) as dag:
        created = create()
        EnlivyUpdateInvoiceOperator(
            task_id="mark_paid",
            invoice_id=created.output,
            changes={"status": "paid"},
            expected_statuses=["pending"],
            retries=1,
            retry_delay=dt.timedelta(0),
        )
    connection_extra(max_retries=0)
    enlivy_emulator.add_fault("PUT", INVOICES, "drop_after_commit")
    states, dag_run = run(dag, logical_date=pendulum.datetime(2026, 11, 1, tz="UTC"))
    assert states == {"create": "success", "mark_paid": "success"}
    [invoice] = enlivy_emulator.invoices()
    assert invoice["status"] == "paid"
    assert result(dag_run, "mark_paid")["status"] == "paid"
