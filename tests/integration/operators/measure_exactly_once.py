"""Counts behind the exactly-once guarantees, printed for release notes and before/after comparisons.

Not collected by ``make test`` (the assertions live in test_races.py); run it on any checkout with
``.venv/bin/pytest tests/integration/operators/measure_exactly_once.py -s -q | grep MEASURE``.
On an older checkout, copy this file, invoice_support.py, enlivy_provider/testing.py and
enlivy_provider/emulator/faults.py (the ``barrier`` fault) first.
"""

from __future__ import annotations

from typing import Any

import pendulum
from invoice_support import (
    CONSULTING,
    CUSTOMERS,
    OCTOBER,
    PLATFORM,
    live_invoices,
    make_dag,
    new_dag_id,
    result,
    run,
    run_at_once,
)

from enlivy_provider.operators.invoices import EnlivyCreateInvoiceOperator, EnlivyCreateInvoicesOperator

NOV_1 = pendulum.datetime(2026, 11, 1, tz="UTC")
LOOKUPS = "/organizations/*/invoices"


def single(name, product=PLATFORM, qty=1, **kw):
    with make_dag(new_dag_id(name)) as dag:
        EnlivyCreateInvoiceOperator(
            task_id="create",
            customer=CUSTOMERS[0],
            line_items=[{"product_id": product, "quantity": qty}],
            invoice={"currency": "EUR", "issued_at": "2026-11-01"},
            billing_period=OCTOBER,
            **kw,
        )
    return dag


def test_item3_two_runs(enlivy_emulator: Any) -> None:
    enlivy_emulator.add_fault("GET", LOOKUPS, "barrier", parties=2)
    dag = single("m3")
    outs = run_at_once((dag, {"logical_date": NOV_1}), (dag, {"logical_date": NOV_1.add(days=1)}))
    print(
        "\nMEASURE item3 single: invoices",
        len(live_invoices(enlivy_emulator)),
        "outcomes",
        [o[1]["create"]["outcome"] for o in outs],
    )


def test_item3_bulk(enlivy_emulator: Any) -> None:
    enlivy_emulator.add_fault("GET", LOOKUPS, "barrier", parties=12)
    specs = [{"customer": c, "line_items": [{"product_id": PLATFORM, "quantity": 1}]} for c in CUSTOMERS]
    with make_dag(new_dag_id("m3b")) as dag:
        EnlivyCreateInvoicesOperator(
            task_id="bulk",
            invoices=specs,
            invoice_defaults={"currency": "EUR", "issued_at": "2026-11-01"},
            billing_period=OCTOBER,
            max_concurrency=6,
        )
    run_at_once((dag, {"logical_date": NOV_1}), (dag, {"logical_date": NOV_1.add(days=1)}))
    print("\nMEASURE item3 bulk: customers", len(CUSTOMERS), "invoices", len(live_invoices(enlivy_emulator)))


def test_item3_mapped(enlivy_emulator: Any) -> None:
    with make_dag(new_dag_id("m3m")) as dag:
        EnlivyCreateInvoiceOperator.partial(
            task_id="create",
            line_items=[{"product_id": PLATFORM, "quantity": 1}],
            invoice={"currency": "EUR", "issued_at": "2026-11-01"},
            billing_period=OCTOBER,
            if_exists="create",
        ).expand(customer=[CUSTOMERS[0], CUSTOMERS[0]])
    run(dag, logical_date=NOV_1)
    print("\nMEASURE item3 mapped: invoices", len(live_invoices(enlivy_emulator)))


def test_item4(enlivy_emulator: Any) -> None:
    a = result(run(single("m4a"), logical_date=NOV_1)[1], "create")
    b = result(run(single("m4b", product=CONSULTING, qty=12), logical_date=NOV_1)[1], "create")
    print(
        "\nMEASURE item4: invoices",
        len(live_invoices(enlivy_emulator)),
        "outcomes",
        a["outcome"],
        b["outcome"],
    )


def test_item5(enlivy_emulator: Any) -> None:
    from enlivy_provider.client import EnlivyClient

    dag = single("m5", if_exists="create")
    first = result(run(dag, logical_date=NOV_1)[1], "create")
    with EnlivyClient(
        enlivy_emulator.base_url, enlivy_emulator.token, organization_id=enlivy_emulator.org_id
    ) as api:
        api.delete_invoice(first["id"])
    again = result(run(dag, logical_date=NOV_1)[1], "create")
    print(
        "\nMEASURE item5 deleted+rerun: outcome",
        again["outcome"],
        "same dead id",
        again["id"] == first["id"],
        "live invoices",
        len(live_invoices(enlivy_emulator)),
    )
    dag2 = single("m5b")
    first = result(run(dag2, logical_date=NOV_1)[1], "create")
    enlivy_emulator.set_invoice_status(first["id"], "cancelled")
    again = result(run(dag2, logical_date=NOV_1)[1], "create")
    live = [i for i in live_invoices(enlivy_emulator) if i["status"] != "cancelled"]
    print(
        "\nMEASURE item5 cancelled+rerun: outcome",
        again["outcome"],
        "same dead id",
        again["id"] == first["id"],
        "billing invoices alive",
        len(live),
    )
