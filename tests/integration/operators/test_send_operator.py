"""EnlivySendInvoiceOperator against the emulator: each e-mail once per invoice and purpose, whatever the
faults, retries and re-runs; drafts, cancelled and paid invoices skipped with a reason; bad input refused."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from invoice_support import (
    CUSTOMERS,
    OCTOBER,
    WRITE_FAULTS,
    Failures,
    assert_refused_without_requests,
    fault_id,
    make_dag,
    new_dag_id,
    requests_to,
    result,
    run,
)

from enlivy_provider.operators.invoices import EnlivyCreateInvoicesOperator
from enlivy_provider.operators.send import EnlivySendInvoiceOperator

EMAIL_ROUTE = "/organizations/*/invoices/*/email"


def emails_per_invoice(emulator: Any) -> Counter[str]:
    return Counter(email["organization_invoice_id"] for email in emulator.emails())


def outcomes(summary: dict[str, Any]) -> dict[str, str]:
    return {entry["invoice_id"]: entry["outcome"] for entry in summary["invoices"]}


def pending_invoices(emulator: Any, count: int) -> list[str]:
    emulator.bulk_invoices(count, customer_ids=CUSTOMERS[:count])
    return [invoice["id"] for invoice in emulator.invoices()]


def send_dag(name: str, invoice_ids: Any, **kwargs: Any) -> Any:
    with make_dag(new_dag_id(name)) as dag:
        EnlivySendInvoiceOperator(task_id="send", invoice_ids=invoice_ids, **kwargs)
    return dag


def test_bulk_output_is_sent_then_reminded_and_a_rerun_sends_nothing(enlivy_emulator: Any) -> None:
    with make_dag(new_dag_id("send_flow"), params={"month": "October"}) as dag:
        bulk = EnlivyCreateInvoicesOperator(
            task_id="bulk",
            invoices=[
                {"customer": c, "line_items": [{"name": "Fee", "quantity": 1, "price": "10"}]}
                for c in CUSTOMERS[:3]
            ],
            invoice_defaults={"currency": "EUR", "status": "pending"},
            billing_period=OCTOBER,
        )
        first = EnlivySendInvoiceOperator(
            task_id="send", invoice_ids=bulk.output, subject="Your invoice for {{ params.month }}"
        )
        reminder = EnlivySendInvoiceOperator(
            task_id="remind", invoice_ids=bulk.output, purpose="reminder", reminder_step="7d"
        )
        first >> reminder
    states, dag_run = run(dag)
    assert states == {"bulk": "success", "send": "success", "remind": "success"}
    ids = [invoice["id"] for invoice in enlivy_emulator.invoices()]
    assert set(outcomes(result(dag_run, "send")).values()) == {"sent"}
    assert set(outcomes(result(dag_run, "remind")).values()) == {"sent"}
    assert emails_per_invoice(enlivy_emulator) == {invoice_id: 2 for invoice_id in ids}
    subjects = {email["subject"] for email in enlivy_emulator.emails()}
    assert "Your invoice for October" in subjects
    assert {invoice["status"] for invoice in enlivy_emulator.invoices()} == {"sent_email"}

    again_states, again = run(dag)  # a new run of the same DAG, days later: the keys are not per run
    assert again_states == states
    assert set(outcomes(result(again, "send")).values()) == {"already_sent"}
    assert set(outcomes(result(again, "remind")).values()) == {"already_sent"}
    assert emails_per_invoice(enlivy_emulator) == {invoice_id: 2 for invoice_id in ids}


def test_drafts_cancelled_paid_deleted_and_unknown_invoices_are_skipped(enlivy_emulator: Any) -> None:
    pending, paid, cancelled = pending_invoices(enlivy_emulator, 3)
    enlivy_emulator.set_invoice_status(paid, "paid")
    enlivy_emulator.set_invoice_status(cancelled, "cancelled")
    enlivy_emulator.bulk_invoices(1, status="draft", customer_ids=[CUSTOMERS[4]])
    [draft] = [i["id"] for i in enlivy_emulator.invoices() if i["status"] == "draft"]
    unknown = "org_inv_doesNotExist000000000001"
    states, dag_run = run(send_dag("send_skips", [pending, draft, paid, cancelled, unknown]))
    assert states == {"send": "success"}
    entries = {e["invoice_id"]: e for e in result(dag_run, "send")["invoices"]}
    assert entries[pending]["outcome"] == "sent"
    assert {i: e.get("reason") for i, e in entries.items() if i != pending} == {
        draft: "status draft: not issued yet",
        paid: "already paid",
        cancelled: "cancelled",
        unknown: "not found",
    }
    assert emails_per_invoice(enlivy_emulator) == {pending: 1}
    assert result(dag_run, "send")["counts"] == {"sent": 1, "skipped": 4}


@pytest.mark.parametrize("fault", WRITE_FAULTS, ids=fault_id)
def test_a_fault_on_the_email_route_still_sends_each_invoice_once(
    enlivy_emulator: Any, fault: dict[str, Any]
) -> None:
    ids = pending_invoices(enlivy_emulator, 2)
    enlivy_emulator.add_fault("POST", EMAIL_ROUTE, times=1, **fault)
    states, dag_run = run(send_dag("send_fault", ids, max_concurrency=1))
    assert states == {"send": "success"}
    assert emails_per_invoice(enlivy_emulator) == {invoice_id: 1 for invoice_id in ids}
    assert requests_to(enlivy_emulator, "POST", "email") == 3  # one of them was resent after the fault
    found = Counter(outcomes(result(dag_run, "send")).values())
    # After a dropped answer Enlivy replays the committed send: reported as already sent, sent once.
    assert found == (
        {"sent": 1, "already_sent": 1} if fault["action"] == "drop_after_commit" else {"sent": 2}
    )


def test_changed_subject_on_a_rerun_does_not_send_again(enlivy_emulator: Any) -> None:
    [invoice_id] = pending_invoices(enlivy_emulator, 1)
    with make_dag(new_dag_id("send_subject")) as dag:
        EnlivySendInvoiceOperator(task_id="send", invoice_ids=invoice_id, subject="Invoice ({{ run_id }})")
    run(dag)
    states, again = run(dag)
    assert states == {"send": "success"}
    [entry] = result(again, "send")["invoices"]
    assert entry["outcome"] == "already_sent" and "not sent again" in entry["note"]
    assert emails_per_invoice(enlivy_emulator) == {invoice_id: 1}


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"invoice_ids": [123]}, "invoice_ids[0]: expected an invoice id"),
        ({"invoice_ids": {"ids": ["org_inv_x"]}}, "invoice_ids: a dict must carry 'invoice_ids'"),
        ({"invoice_ids": ["INV-2026-0001"]}, "invoice_ids[0]: must be an invoice id org_inv_..."),
        ({"invoice_ids": "org_inv_x", "purpose": "nag"}, "purpose: must be one of first_send, reminder"),
        (
            {"invoice_ids": "org_inv_x", "purpose": "reminder"},
            "reminder_step: a reminder needs its step's name",
        ),
        (
            {"invoice_ids": "org_inv_x", "reminder_step": "7d"},
            "reminder_step: is only for purpose='reminder'",
        ),
        ({"invoice_ids": "org_inv_x", "to": ["ap@globex.example", "nobody"]}, "to[1]: not an e-mail address"),
    ],
)
def test_bad_input_fails_without_requests_or_retries(
    enlivy_emulator: Any, failures: Failures, kwargs: dict[str, Any], expected: str
) -> None:
    states, _ = run(send_dag("send_bad", retries=2, on_failure_callback=failures, **kwargs))
    assert_refused_without_requests(enlivy_emulator, failures, states, expected)
