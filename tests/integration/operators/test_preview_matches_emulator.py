"""The dry-run preview and the emulator compute the same totals, line by line, for varied invoices."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from invoice_support import (
    API_CALLS,
    CONSULTING,
    CUSTOMERS,
    PLATFORM,
    VAT0,
    VAT19,
    make_dag,
    new_dag_id,
    result,
    run,
)

from enlivy_provider.operators.invoices import EnlivyCreateInvoicesOperator

VARIED: list[list[dict[str, Any]]] = [
    [{"product_id": PLATFORM, "quantity": 1}],
    [{"product_id": API_CALLS, "quantity": "1234.567"}],  # fractional quantity, 0.45 price, half-up cents
    [{"product_id": CONSULTING, "quantity": "7.25", "discount": "12.34"}],  # zero-rated class, discount
    [{"name": "Hosting", "quantity": 3, "price": "33.333333", "tax_class_id": VAT19}],  # 6-decimal price
    [{"name": "Setup", "quantity": 1, "price": "0.05", "tax_class_id": VAT19}],  # tax rounds 0.0095 -> 0.01
    [
        {"name": "Tiny", "quantity": "0.333333", "price": "0.03", "tax_class_id": VAT19}
    ],  # sub_total rounds to 0.01
    [  # several tax classes on one invoice
        {"product_id": PLATFORM, "quantity": 2, "discount": "19.99"},
        {"product_id": CONSULTING, "quantity": "1.5"},
        {"name": "Travel", "quantity": 1, "price": "123.45", "tax_class_id": VAT0},
    ],
    [{"product_id": PLATFORM, "quantity": 1, "price": "149.50"}],  # price overrides the product's
    [
        {"product_id": CONSULTING, "quantity": 10, "tax_class_id": VAT19, "discount": "95.00"}
    ],  # class override
    [{"name": "No tax class", "quantity": "2.5", "price": "40.004"}],  # no class: no tax
    [{"name": "Full discount", "quantity": 2, "price": "5", "discount": "10", "tax_class_id": VAT19}],
    [  # many lines, mixed
        {"product_id": API_CALLS, "quantity": "99999.999999", "discount": "0.01"},
        {"name": "Support", "quantity": "0.5", "price": "80.125", "tax_class_id": VAT19, "discount": "0.07"},
        {"name": "Credit", "quantity": 1, "price": "0", "tax_class_id": VAT19},
    ],
]


def test_preview_totals_equal_the_emulator_totals(enlivy_emulator: Any) -> None:
    specs = [
        {"customer": CUSTOMERS[n % len(CUSTOMERS)], "key": f"case-{n}", "line_items": lines}
        for n, lines in enumerate(VARIED)
    ]
    with make_dag(new_dag_id("preview_vs_emulator")) as dag:
        common = {"invoices": specs, "invoice_defaults": {"currency": "EUR"}, "if_exists": "create"}
        EnlivyCreateInvoicesOperator(task_id="preview", dry_run=True, **common)
        EnlivyCreateInvoicesOperator(task_id="create", **common)
    states, dag_run = run(dag)
    assert states == {"preview": "success", "create": "success"}
    previews = {p["key"]: p for p in result(dag_run, "preview")["previews"]}
    created = result(dag_run, "create")["created"]
    assert len(previews) == len(created) == len(VARIED) >= 10
    stored = {i["id"]: i for i in enlivy_emulator.invoices()}

    for n, summary in enumerate(created):
        preview = previews[f"case-{n}"]
        assert summary["totals"] == preview["totals"], f"case {n}"
        invoice = stored[summary["id"]]
        lines = sorted(invoice["line_items"], key=lambda li: li["order"])
        assert len(lines) == len(preview["lines"])
        for line, expected in zip(lines, preview["lines"], strict=True):
            for field in ("sub_total", "discount", "tax_total", "total"):
                assert Decimal(str(line[field])) == Decimal(expected[field]), (n, field)
