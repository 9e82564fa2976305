"""Bad input fails the task before any write, naming the field, without retries (emulator write counter == 0)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import jinja2
import pytest
from invoice_support import CUSTOMERS, PLATFORM, Failures, bulk_dag, make_dag, new_dag_id, run

from enlivy_provider.operators.invoices import EnlivyCreateInvoiceOperator

LINE = {"product_id": PLATFORM, "quantity": 1}
GOOD: dict[str, Any] = {"customer": CUSTOMERS[0], "line_items": [LINE], "invoice": {"currency": "EUR"}}


def line(**fields: Any) -> list[dict[str, Any]]:
    return [{"name": "Item", "quantity": 1, "price": "10.00", **fields}]


CASES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    # (case id, operator arguments over GOOD, DAG arguments, expected text naming the field)
    ("template_syntax_error", {"line_items": [{"name": "{{ params.x ", "quantity": 1}]}, {},
     "line_items: template error (line 1): TemplateSyntaxError"),
    # Airflow's default undefined is StrictUndefined: an unknown variable is a template error ...
    ("undefined_variable", {"line_items": line(quantity="{{ params.hours }}")}, {},
     "line_items: template error: UndefinedError"),
    # ... and with a lenient undefined it renders "" which is not a number.
    ("undefined_variable_lenient", {"line_items": line(quantity="{{ params.hours }}")},
     {"template_undefined": jinja2.Undefined}, "line_items[0].quantity: must be a number (got '')"),
    ("template_file_not_found", {"line_items": "missing_lines.json.j2"}, {},
     "line_items: template error: TemplateNotFound"),
    ("invalid_json_file", {"line_items": "broken.json"}, {}, "line_items: is not valid JSON after rendering"),
    ("unknown_currency", {"invoice": {"currency": "EURO"}}, {}, "invoice.currency: must be an ISO 4217 currency code"),
    ("missing_currency", {"invoice": {}}, {}, "invoice.currency: is required"),
    ("negative_quantity", {"line_items": line(quantity="-2")}, {}, "line_items[0].quantity: must be greater than 0"),
    ("zero_quantity", {"line_items": [LINE, *line(quantity=0)]}, {}, "line_items[1].quantity: must be greater than 0"),
    ("price_abc", {"line_items": line(price="abc")}, {}, "line_items[0].price: must be a number (got 'abc')"),
    ("price_boolean", {"line_items": line(price=True)}, {}, "line_items[0].price: must be a number, not a boolean"),
    ("negative_price", {"line_items": line(price="-1")}, {}, "line_items[0].price: must not be negative"),
    ("float_noise_price", {"line_items": line(price=0.1 + 0.2)}, {},
     "line_items[0].price: must have at most 6 decimal places (got 0.30000000000000004)"),
    ("too_many_discount_decimals", {"line_items": line(discount="1.005")}, {},
     "line_items[0].discount: must have at most 2 decimal places"),
    ("too_many_quantity_decimals", {"line_items": line(quantity="0.1234567")}, {},
     "line_items[0].quantity: must have at most 6 decimal places"),
    ("discount_over_sub_total", {"line_items": line(discount="10.01")}, {},
     "line_items[0].discount: must not exceed the line's sub_total (10.00)"),
    ("unknown_status", {"invoice": {"currency": "EUR", "status": "sent"}}, {}, "invoice.status: must be one of"),
    ("unknown_payment_method", {"invoice": {"currency": "EUR", "payment_method": "barter"}}, {},
     "invoice.payment_method: must be one of"),
    ("bad_issued_at", {"invoice": {"currency": "EUR", "issued_at": "31/12/2026"}}, {},
     "invoice.issued_at: must be a date YYYY-MM-DD or an ISO 8601 datetime"),
    ("bad_due_in_days", {"invoice": {"currency": "EUR", "due_in_days": "two weeks"}}, {},
     "invoice.due_in_days: must be a whole number >= 0"),
    ("missing_customer", {"customer": None}, {}, "customer: is required"),
    ("malformed_customer", {"customer": "Globex"}, {}, "customer: must be a customer id org_user_... or an email"),
    ("unknown_customer_id", {"customer": "org_user_doesNotExist01"}, {},
     "customer: no customer org_user_doesNotExist01 in this organization"),
    ("unknown_customer_email", {"customer": {"email": "nobody@nowhere.example"}}, {},
     "customer: no customer with email nobody@nowhere.example"),
    ("unknown_product", {"line_items": [{"product_id": "org_prod_doesNotExist01", "quantity": 1}]}, {},
     "line_items[0].organization_product_id: unknown product 'org_prod_doesNotExist01'"),
    ("product_without_price_in_currency", {"invoice": {"currency": "USD"}}, {},
     "line_items[0].price: is required: product org_prod_"),
    ("unknown_tax_class", {"line_items": line(tax_class_id="org_tax_class_doesNotExist")}, {},
     "line_items[0].organization_tax_class_id: unknown tax class"),
    ("empty_line_items", {"line_items": []}, {}, "line_items: must not be empty"),
    ("unknown_line_field", {"line_items": [{"name": "x", "qty": 1, "price": 1}]}, {},
     "line_items[0].qty: unknown field 'qty'"),
    ("line_without_name_or_product", {"line_items": [{"quantity": 1, "price": 1}]}, {},
     "line_items[0]: needs either organization_product_id, or a name and a price"),
    ("period_end_before_start", {"billing_period": {"start": "2026-10-31", "end": "2026-10-01"}}, {},
     "billing_period.end: must not be before start"),
    ("totals_are_not_input", {"invoice": {"currency": "EUR", "total": "100"}}, {}, "invoice.total: unknown field"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("operator_args", "dag_args", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_fails_naming_the_field_and_writes_nothing(
    enlivy_emulator: Any,
    failures: Failures,
    tmp_path: Path,
    operator_args: dict[str, Any],
    dag_args: dict[str, Any],
    expected: str,
) -> None:
    (tmp_path / "broken.json").write_text('[{"name": "x", "quantity": 1,,}]')
    with make_dag(new_dag_id("bad"), template_searchpath=[str(tmp_path)], **dag_args) as dag:
        EnlivyCreateInvoiceOperator(
            task_id="create",
            **{**GOOD, **operator_args},
            retries=3,
            retry_delay=dt.timedelta(0),
            on_failure_callback=failures,
        )
    states, _ = run(dag)
    assert states == {"create": "failed"}
    assert [(task, kind) for task, kind, _ in failures.seen] == [
        ("create", "AirflowFailException")
    ]  # no retry
    assert expected in failures.text()
    assert enlivy_emulator.write_count() == 0


def test_every_problem_is_reported_at_once(enlivy_emulator: Any, failures: Failures) -> None:
    with make_dag(new_dag_id("bad_many")) as dag:
        EnlivyCreateInvoiceOperator(
            task_id="create",
            customer={"email": "nobody@nowhere.example"},
            line_items=[
                LINE,
                {"name": "x", "quantity": "abc", "price": 1},
                {"name": "y", "quantity": 1, "price": -1},
            ],
            invoice={"currency": "XXX", "status": "nope"},
            on_failure_callback=failures,
        )
    states, _ = run(dag)
    assert states == {"create": "failed"}
    text = failures.text()
    for expected in (
        "invoice input is invalid (4 problems)",
        "invoice.currency:",
        "invoice.status:",
        "line_items[1].quantity: must be a number",
        "line_items[2].price: must not be negative",
    ):
        assert expected in text
    assert enlivy_emulator.write_count() == 0


def test_one_invalid_bulk_spec_stops_everything_before_any_write(
    enlivy_emulator: Any, failures: Failures
) -> None:
    specs = [{"customer": c, "line_items": [LINE]} for c in CUSTOMERS]
    specs[3] = {"customer": CUSTOMERS[3], "line_items": [{"product_id": PLATFORM, "quantity": "-1"}]}
    specs[5] = {"customer": {"email": "nobody@nowhere.example"}, "line_items": [LINE]}
    dag = bulk_dag("bad_bulk", specs, on_failure_callback=failures)
    states, _ = run(dag)
    assert states == {"bulk": "failed"}
    text = failures.text()
    assert "2 of 6 invoice specs are invalid" in text
    assert "invoices[3].line_items[0].quantity: must be greater than 0" in text
    assert "invoices[5].customer: no customer with email nobody@nowhere.example" in text
    assert enlivy_emulator.write_count() == 0
