"""EnlivyChargeInvoiceOperator against the emulator: one charge per invoice and attempt whatever the faults,
retries and re-runs (counted in the charge logs); scripted outcomes reported as data; bad input refused."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from invoice_support import (
    CUSTOMERS,
    WRITE_FAULTS,
    Failures,
    assert_refused_without_requests,
    fault_id,
    make_dag,
    new_dag_id,
    requests_to,
    result,
    run,
    xcom,
)

from enlivy_provider.client import EnlivyClient
from enlivy_provider.operators.charge import EnlivyChargeInvoiceOperator

CHARGE_ROUTE = "/organizations/*/invoices/*/charge"


def charge_logs(emulator: Any) -> Counter[str]:
    with EnlivyClient(emulator.base_url, emulator.token, organization_id=emulator.org_id) as client:
        return Counter(log["organization_invoice_id"] for log in client.list_charge_logs())


def pending_invoices(emulator: Any, count: int) -> list[str]:
    emulator.bulk_invoices(count, customer_ids=CUSTOMERS[:count])
    return [invoice["id"] for invoice in emulator.invoices()]


def entries(dag_run: Any, task_id: str = "charge") -> dict[str, dict[str, Any]]:
    return {entry["invoice_id"]: entry for entry in result(dag_run, task_id)["invoices"]}


def charge_dag(name: str, invoice_ids: Any, **kwargs: Any) -> Any:
    with make_dag(new_dag_id(name), params={"attempt": 1}) as dag:
        EnlivyChargeInvoiceOperator(task_id="charge", invoice_ids=invoice_ids, **kwargs)
    return dag


def test_scripted_outcomes_are_reported_and_each_attempt_charges_once(enlivy_emulator: Any) -> None:
    ok, declined, needs_action, paid, cancelled = pending_invoices(enlivy_emulator, 5)
    enlivy_emulator.set_invoice_status(paid, "paid")
    enlivy_emulator.set_invoice_status(cancelled, "cancelled")
    enlivy_emulator.script_charge(
        "failed", invoice_id=declined, error_code="insufficient_funds", error_message="Not enough.", times=1
    )
    enlivy_emulator.script_charge(
        "requires_action", invoice_id=needs_action, next_action_url="https://3ds.test/x"
    )
    ids = [ok, declined, needs_action, paid, cancelled]
    with make_dag(new_dag_id("charge_flow"), params={"attempt": 1}) as dag:
        EnlivyChargeInvoiceOperator(task_id="charge", invoice_ids=ids, attempt="{{ params.attempt }}")

    states, dag_run = run(dag)
    assert states == {"charge": "success"}  # a declined charge is data, not a failed task
    found = entries(dag_run)
    assert found[ok]["outcome"] == "succeeded" and found[ok]["invoice_status"] == "paid"
    assert found[ok]["amount"] == "119.00" and found[ok]["currency"] == "EUR"
    assert (found[declined]["outcome"], found[declined]["error_code"]) == ("failed", "insufficient_funds")
    assert found[needs_action]["outcome"] == "requires_action"
    assert found[needs_action]["next_action_url"] == "https://3ds.test/x"
    assert (found[paid]["reason"], found[cancelled]["reason"]) == ("already paid", "cancelled")
    assert charge_logs(enlivy_emulator) == {ok: 1, declined: 1, needs_action: 1}

    states, again = run(dag)  # re-run of attempt 1: replayed, nothing charged again
    assert states == {"charge": "success"}
    found = entries(again)
    assert found[ok]["reason"] == "already paid"
    assert found[declined]["outcome"] == "failed" and found[declined]["replayed"] is True
    assert found[needs_action]["outcome"] == "requires_action" and found[needs_action]["replayed"] is True
    assert charge_logs(enlivy_emulator) == {ok: 1, declined: 1, needs_action: 1}

    states, second = run(dag, run_conf={"attempt": 2})  # the policy's second attempt: a new charge
    assert states == {"charge": "success"}
    assert entries(second)[declined]["outcome"] == "succeeded"
    assert charge_logs(enlivy_emulator) == {ok: 1, declined: 2, needs_action: 2}


def test_fail_on_failed_charge_fails_without_retry_and_keeps_the_result(
    enlivy_emulator: Any, failures: Failures
) -> None:
    ok, declined = pending_invoices(enlivy_emulator, 2)
    enlivy_emulator.script_charge("failed", invoice_id=declined)
    dag = charge_dag(
        "charge_strict", [ok, declined], fail_on_failed_charge=True, retries=2, on_failure_callback=failures
    )
    states, dag_run = run(dag)
    assert states == {"charge": "failed"}
    assert [kind for _, kind, _ in failures.seen] == ["AirflowFailException"]
    assert f"1 charge(s) failed and fail_on_failed_charge=True: {declined} (card_declined)" in failures.text()
    pushed = {e["invoice_id"]: e["outcome"] for e in xcom(dag_run, "charge", "action_result")["invoices"]}
    assert pushed == {ok: "succeeded", declined: "failed"}
    assert charge_logs(enlivy_emulator) == {ok: 1, declined: 1}


@pytest.mark.parametrize("fault", WRITE_FAULTS, ids=fault_id)
def test_a_fault_on_the_charge_route_still_charges_each_invoice_once(
    enlivy_emulator: Any, fault: dict[str, Any]
) -> None:
    ids = pending_invoices(enlivy_emulator, 3)
    enlivy_emulator.add_fault("POST", CHARGE_ROUTE, times=2, **fault)
    states, dag_run = run(charge_dag("charge_fault", ids, max_concurrency=2))
    assert states == {"charge": "success"}
    assert {e["outcome"] for e in entries(dag_run).values()} == {"succeeded"}
    assert charge_logs(enlivy_emulator) == {invoice_id: 1 for invoice_id in ids}
    assert requests_to(enlivy_emulator, "POST", "charge") == 5  # two were resent after the fault
    assert {invoice["status"] for invoice in enlivy_emulator.invoices()} == {"paid"}


def test_many_invoices_on_a_bounded_pool_each_charged_once(enlivy_emulator: Any) -> None:
    enlivy_emulator.reset(extra_customers=12)
    enlivy_emulator.bulk_invoices(12)
    ids = [invoice["id"] for invoice in enlivy_emulator.invoices()]
    enlivy_emulator.configure(latency_ms=20)  # requests overlap on the pool's threads
    states, dag_run = run(charge_dag("charge_many", {"invoice_ids": ids}, max_concurrency=4))
    assert states == {"charge": "success"}
    assert result(dag_run, "charge")["counts"] == {"succeeded": 12}
    assert charge_logs(enlivy_emulator) == {invoice_id: 1 for invoice_id in ids}


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"invoice_ids": [None]}, "invoice_ids[0]: expected an invoice id"),
        (
            {"invoice_ids": "org_inv_x", "attempt": 0},
            "attempt: must be a whole number from 1 to 1000 (got 0)",
        ),
        ({"invoice_ids": "org_inv_x", "attempt": "second"}, "attempt: must be a whole number"),
        ({"invoice_ids": "org_inv_x", "attempt": True}, "attempt: must be a whole number"),
    ],
)
def test_bad_input_fails_without_requests_or_retries(
    enlivy_emulator: Any, failures: Failures, kwargs: dict[str, Any], expected: str
) -> None:
    states, _ = run(charge_dag("charge_bad", retries=2, on_failure_callback=failures, **kwargs))
    assert_refused_without_requests(enlivy_emulator, failures, states, expected)
