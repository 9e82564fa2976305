"""Bad input fails the task before any write, naming the field, without retries (emulator write counter == 0)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import jinja2
import pytest
from invoice_support import CUSTOMERS, PLATFORM, Failures, bulk_dag, make_dag, new_dag_id, run, try_numbers

from enlivy_provider.emulator import seed
from enlivy_provider.operators.invoices import (
    EnlivyCreateInvoiceOperator,
    EnlivyCreateInvoicesOperator,
    EnlivyUpdateInvoiceOperator,
)

LINE = {"product_id": PLATFORM, "quantity": 1}
GOOD: dict[str, Any] = {"customer": CUSTOMERS[0], "line_items": [LINE], "invoice": {"currency": "EUR"}}


def line(**fields: Any) -> list[dict[str, Any]]:
    return [{"name": "Item", "quantity": 1, "price": "10.00", **fields}]


# Template files the cases below name (written into the DAG's template_searchpath).
TEMPLATE_FILES = {
    "broken.json": '[{"name": "x", "quantity": 1,,}]',
    # Python's json module reads these non-JSON constants as floats unless told otherwise.
    "nan_quantity.json": '[{"name": "Seats", "quantity": NaN, "price": "10.00"}]',
    "infinite_due.json": '{"currency": "EUR", "due_in_days": Infinity}',
    "minus_infinity_price.json.j2": '[{"name": "Seats", "quantity": 1, "price": -Infinity}]',
    # A key twice: json.loads keeps the last one (quantity 1000 -> a 10,000.00 invoice).
    "duplicate_quantity.json": '[{"name": "Seats", "quantity": 1, "price": "10.00", "quantity": 1000}]',
    "duplicate_currency.json.j2": '{"currency": "EUR", "status": "pending", "currency": "USD"}',
}


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
    # Impossible calendar dates: in YYYY-MM-DD form, but no such day (the API would be asked to store them).
    ("impossible_due_at", {"invoice": {"currency": "EUR", "due_at": "2026-02-30"}}, {},
     "invoice.due_at: must be a real calendar date (got '2026-02-30': day is out of range for month)"),
    ("impossible_issued_at", {"invoice": {"currency": "EUR", "issued_at": "2026-02-29", "due_in_days": 14}}, {},
     "invoice.issued_at: must be a real calendar date (got '2026-02-29'"),
    ("impossible_paid_at_datetime", {"invoice": {"currency": "EUR", "paid_at": "2026-04-31T10:00:00Z"}}, {},
     "invoice.paid_at: must be a real calendar date (got '2026-04-31T10:00:00Z'"),
    ("impossible_time_of_day", {"invoice": {"currency": "EUR", "issued_at": "2026-03-01T24:30:00"}}, {},
     "invoice.issued_at: must be a real time of day (got '2026-03-01T24:30:00': hour must be in 0..23)"),
    ("impossible_period_start", {"billing_period": {"start": "2026-02-30", "end": "2026-03-31"}}, {},
     "billing_period.start: must be a real calendar date (got '2026-02-30'"),
    ("impossible_period_end", {"billing_period": {"start": "2026-09-01", "end": "2026-09-31"}}, {},
     "billing_period.end: must be a real calendar date (got '2026-09-31'"),
    ("impossible_line_period", {"line_items": line(billing_period={"start": "2026-02-01", "end": "2026-02-29"})},
     {}, "line_items[0].billing_period.end: must be a real calendar date (got '2026-02-29'"),
    ("impossible_line_period_field",
     {"line_items": line(billing_period_started_at="2026-02-30", billing_period_ended_at="2026-03-29")}, {},
     "line_items[0].billing_period_started_at: must be a real calendar date (got '2026-02-30'"),
    # A user whose role may not be invoiced (staff): Enlivy would answer 422 to the create.
    ("customer_role_not_invoiceable", {"customer": seed.SENDER_USER_ID}, {},
     f"customer: customer {seed.SENDER_USER_ID} cannot be invoiced (its role"),
    ("customer_email_role_not_invoiceable", {"customer": {"email": seed.DEMO_LOGIN_EMAIL}}, {},
     f"customer: customer {seed.SENDER_USER_ID} cannot be invoiced (its role"),
    # NaN / Infinity are not JSON; a template rendering them names the field instead of crashing.
    ("nan_in_json_template", {"line_items": "nan_quantity.json"}, {},
     "line_items[0].quantity: NaN is not a JSON number"),
    ("infinity_in_json_template", {"invoice": "infinite_due.json"}, {},
     "invoice.due_in_days: Infinity is not a JSON number"),
    ("minus_infinity_in_json_template", {"line_items": "minus_infinity_price.json.j2"}, {},
     "line_items[0].price: -Infinity is not a JSON number"),
    # A key given twice in rendered JSON would silently keep the last value.
    ("duplicate_key_in_json_template", {"line_items": "duplicate_quantity.json"}, {},
     "line_items[0].quantity: given twice in the rendered JSON (1, then 1000)"),
    ("duplicate_top_level_key_in_json", {"invoice": "duplicate_currency.json.j2"}, {},
     "invoice.currency: given twice in the rendered JSON ('EUR', then 'USD')"),
    ("duplicate_key_in_json_string", {"line_items": '[{"name": "x", "price": 1, "quantity": 1, "price": 9}]'}, {},
     "line_items[0].price: given twice in the rendered JSON (1, then 9)"),
    # Digits other than 0-9 (Arabic-Indic, full-width, superscript) are not amounts.
    ("arabic_indic_quantity", {"line_items": line(quantity="١٢")}, {},
     "line_items[0].quantity: must be written with the digits 0-9 (got '١٢')"),
    ("full_width_price", {"line_items": line(price="１２.００")}, {},
     "line_items[0].price: must be written with the digits 0-9 (got '１２.００')"),
    ("arabic_indic_due_in_days", {"invoice": {"currency": "EUR", "due_in_days": "١٤"}}, {},
     "invoice.due_in_days: must be a whole number >= 0 written with the digits 0-9 (got '١٤')"),
    ("superscript_due_in_days", {"invoice": {"currency": "EUR", "due_in_days": "²"}}, {},
     "invoice.due_in_days: must be a whole number >= 0 written with the digits 0-9 (got '²')"),
    ("full_width_line_order", {"line_items": line(order="２")}, {}, "line_items[0].order: must be an integer"),
    # Non-finite floats given directly (or by native rendering) name their field.
    ("float_nan_quantity", {"line_items": line(quantity=float("nan"))}, {},
     "line_items[0].quantity: must be a finite number (got nan)"),
    ("float_infinity_price", {"line_items": line(price=float("inf"))}, {},
     "line_items[0].price: must be a finite number (got inf)"),
    ("float_nan_due_in_days", {"invoice": {"currency": "EUR", "due_in_days": float("nan")}}, {},
     "invoice.due_in_days: must be a finite number (got nan)"),
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
    for name, text in TEMPLATE_FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    retried = Failures()
    with make_dag(new_dag_id("bad"), template_searchpath=[str(tmp_path)], **dag_args) as dag:
        EnlivyCreateInvoiceOperator(
            task_id="create",
            **{**GOOD, **operator_args},
            retries=3,
            retry_delay=dt.timedelta(0),
            on_failure_callback=failures,
            on_retry_callback=retried,
        )
    states, dag_run = run(dag)
    assert states == {"create": "failed"}
    assert [(task, kind) for task, kind, _ in failures.seen] == [("create", "AirflowFailException")]
    assert retried.seen == [] and try_numbers(dag_run) == {"create": 1}  # no retry
    assert expected in failures.text()
    assert enlivy_emulator.write_count() == 0


def test_update_and_bulk_operators_refuse_the_same_input(enlivy_emulator: Any, failures: Failures) -> None:
    retried = Failures()
    common: dict[str, Any] = {
        "retries": 3,
        "retry_delay": dt.timedelta(0),
        "on_failure_callback": failures,
        "on_retry_callback": retried,
    }
    duplicated = (
        '[{"customer": "%s", "line_items": [{"name": "x", "price": 1, "quantity": 1, "quantity": 50}]}]'
    )
    with make_dag(new_dag_id("bad_others")) as dag:
        EnlivyUpdateInvoiceOperator(
            task_id="update",
            invoice_id="org_inv_notReadBecauseTheInputIsBad",
            changes={"due_at": "2026-02-30", "line_items": line(quantity="١٢")},
            **common,
        )
        EnlivyCreateInvoicesOperator(
            task_id="bulk_nan",
            invoices=[{"customer": CUSTOMERS[0], "line_items": line(price=float("nan"))}],
            invoice_defaults={"currency": "EUR"},
            **common,
        )
        EnlivyCreateInvoicesOperator(
            task_id="bulk_duplicate_key",
            invoices=duplicated % CUSTOMERS[0],
            invoice_defaults={"currency": "EUR"},
            **common,
        )
        EnlivyCreateInvoicesOperator(
            task_id="bulk_staff",
            invoices=[
                {"customer": seed.SENDER_USER_ID, "line_items": [LINE]},
                {"customer": CUSTOMERS[1], "line_items": [LINE], "invoice": {"issued_at": "2026-09-31"}},
            ],
            invoice_defaults={"currency": "EUR"},
            **common,
        )
    states, dag_run = run(dag)
    assert set(states.values()) == {"failed"}
    assert sorted(kind for _, kind, _ in failures.seen) == ["AirflowFailException"] * 4
    assert retried.seen == [] and set(try_numbers(dag_run).values()) == {1}
    text = {task: message for task, _, message in failures.seen}
    assert "changes.due_at: must be a real calendar date (got '2026-02-30'" in text["update"]
    assert "changes.line_items[0].quantity: must be written with the digits 0-9 (got '١٢')" in text["update"]
    assert "invoices[0].line_items[0].price: must be a finite number (got nan)" in text["bulk_nan"]
    assert (
        "invoices[0].line_items[0].quantity: given twice in the rendered JSON (1, then 50)"
        in (text["bulk_duplicate_key"])
    )
    assert f"invoices[0].customer: customer {seed.SENDER_USER_ID} cannot be invoiced" in text["bulk_staff"]
    assert (
        "invoices[1].invoice.issued_at: must be a real calendar date (got '2026-09-31'" in text["bulk_staff"]
    )
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
