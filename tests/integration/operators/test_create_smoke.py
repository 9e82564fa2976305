from __future__ import annotations

from typing import Any

from conftest import CUSTOMERS, OCTOBER, PLATFORM, make_dag, new_dag_id, result, run

from enlivy_provider.operators.invoices import EnlivyCreateInvoiceOperator, EnlivyCreateInvoicesOperator


def test_create_one_invoice(enlivy_emulator: Any) -> None:
    with make_dag(new_dag_id("smoke")) as dag:
        EnlivyCreateInvoiceOperator(
            task_id="create",
            customer=CUSTOMERS[0],
            line_items=[
                {"product_id": PLATFORM, "quantity": 1},
                {"name": "Extra", "quantity": "2", "price": "10.5"},
            ],
            invoice={"currency": "EUR"},
            billing_period=OCTOBER,
        )
    states, dag_run = run(dag)
    assert states == {"create": "success"}
    summary = result(dag_run, "create")
    assert summary["outcome"] == "created"
    assert summary["totals"]["total"] == "257.81"


def test_bulk(enlivy_emulator: Any) -> None:
    with make_dag(new_dag_id("smoke_bulk")) as dag:
        EnlivyCreateInvoicesOperator(
            task_id="bulk",
            invoices=[
                {"customer": c, "line_items": [{"product_id": PLATFORM, "quantity": 1}]} for c in CUSTOMERS
            ],
            invoice_defaults={"currency": "EUR"},
            billing_period=OCTOBER,
        )
    states, dag_run = run(dag)
    assert states == {"bulk": "success"}
    out = result(dag_run, "bulk")
    assert len(out["created"]) == 6
