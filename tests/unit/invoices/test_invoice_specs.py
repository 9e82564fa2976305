from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from enlivy_provider.invoices.billing_period import BillingPeriod
from enlivy_provider.invoices.customer import CustomerRef
from enlivy_provider.invoices.lookups import CustomerDirectory, invoice_covers_period
from enlivy_provider.invoices.specs import parse_json_input, prepare_bulk_specs, prepare_spec

CUSTOMER = "org_user_c1"
LINE = {"name": "x", "quantity": 1, "price": "1.00"}
OCTOBER = BillingPeriod(dt.date(2026, 10, 1), dt.date(2026, 10, 31))


def test_json_text_keeps_decimals_exact_and_reports_bad_json() -> None:
    value, issues = parse_json_input('[{"price": 12.10}]', "line_items")
    assert issues == [] and value == [{"price": Decimal("12.10")}]
    _, issues = parse_json_input("[1,,]", "line_items")
    assert str(issues[0]).startswith("line_items: is not valid JSON after rendering")


def test_json_text_refuses_non_json_constants_and_repeated_keys_at_their_paths() -> None:
    text = (
        '{"invoices": [{"key": "a", "line_items": [{"quantity": NaN, "x": {"y": 1, "y": 2}}], "key": "b"}]}'
    )
    value, issues = parse_json_input(text, "invoices")
    assert value is None
    assert sorted(map(str, issues)) == [
        "invoices.invoices[0].key: given twice in the rendered JSON ('a', then 'b'); "
        "a key may appear once per object",
        "invoices.invoices[0].line_items[0].quantity: NaN is not a JSON number; the template must render a number",
        "invoices.invoices[0].line_items[0].x.y: given twice in the rendered JSON (1, then 2); "
        "a key may appear once per object",
    ]
    value, issues = parse_json_input('{"a": {"b": 1}, "b": {"a": 1}}', "invoice")  # same names, other objects
    assert issues == [] and value == {"a": {"b": 1}, "b": {"a": 1}}


def test_lookup_period_is_the_invoice_period_or_the_one_shared_by_lines() -> None:
    spec, _ = prepare_spec(
        customer=CUSTOMER, line_items=[LINE], invoice={"currency": "EUR"}, billing_period="x"
    )
    assert spec is None  # "x" is not a period
    spec, _ = prepare_spec(
        customer=CUSTOMER, line_items=[LINE], invoice={"currency": "EUR"}, billing_period=OCTOBER.as_dict()
    )
    assert spec is not None and spec.lookup_period == OCTOBER
    lines = [{**LINE, "billing_period": OCTOBER.as_dict()}, {**LINE, "billing_period": OCTOBER.as_dict()}]
    spec, _ = prepare_spec(customer=CUSTOMER, line_items=lines, invoice={"currency": "EUR"})
    assert spec is not None and spec.lookup_period == OCTOBER
    lines[1]["billing_period"] = {"start": "2026-09-01", "end": "2026-09-30"}
    spec, _ = prepare_spec(customer=CUSTOMER, line_items=lines, invoice={"currency": "EUR"})
    assert spec is not None and spec.lookup_period is None


def test_bulk_specs_merge_defaults_and_report_per_entry() -> None:
    results, issues = prepare_bulk_specs(
        [
            {"customer": CUSTOMER, "line_items": [LINE], "invoice": {"status": "pending"}},
            {"customer": CUSTOMER, "line_items": [LINE], "colour": "red"},
            "nope",
        ],
        invoice_defaults={"currency": "EUR", "status": "draft"},
    )
    assert issues == []
    assert results[0].spec is not None
    assert results[0].spec.draft.fields["status"] == "pending"
    assert results[0].spec.draft.fields["currency"] == "EUR"
    assert [str(i) for i in results[1].issues] == [
        "invoices[1].colour: unknown field (a spec has customer, line_items, invoice, billing_period, billing_key, key)"
    ]
    assert [str(i) for i in results[2].issues] == ["invoices[2]: must be an object (got str)"]
    assert [str(i) for i in prepare_bulk_specs([])[1]] == ["invoices: must not be empty"]


def test_period_match_and_customer_directory() -> None:
    line = {
        "has_billing_period": True,
        "billing_period_started_at": "2026-10-01",
        "billing_period_ended_at": "2026-10-31",
    }
    assert invoice_covers_period({"line_items": {"data": [line]}}, OCTOBER)
    assert not invoice_covers_period({"line_items": [{**line, "has_billing_period": False}]}, OCTOBER)
    directory = CustomerDirectory(
        [
            {"id": "org_user_a", "email": "A@x.example"},
            {"id": "org_user_b", "email": "b@x.example", "deleted_at": "x"},
        ]
    )
    assert directory.resolve(CustomerRef(email="a@X.example")) == ("org_user_a", [])
    assert (
        str(directory.resolve(CustomerRef(id="org_user_b"))[1][0])
        == "customer: no customer org_user_b in this organization"
    )


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("price", "1e30", "line_items[0].price: must be at most 1000000000000"),
        ("price", "123456789012345678901234567.5", "line_items[0].price: must be at most 1000000000000"),
        ("price", Decimal("1E+999999999"), "line_items[0].price: is too large"),
        ("quantity", "1e30", "line_items[0].quantity: must be at most 1000000000"),
        ("quantity", "1e-999999999", "line_items[0].quantity: must have at most 6 decimal places"),
    ],
)
def test_an_absurd_amount_is_reported_not_raised(field: str, value: object, expected: str) -> None:
    # The 28-digit default decimal context used to raise decimal.InvalidOperation out of the validation
    # (a crash instead of a field error; with skip_invalid the whole bulk run stopped), or let a tiny
    # quantity underflow to a valid-looking one.
    spec, issues = prepare_spec(
        customer=CUSTOMER, line_items=[{**LINE, field: value}], invoice={"currency": "EUR"}
    )
    assert spec is None
    assert [str(issue)[: len(expected)] for issue in issues] == [expected]


def test_lookup_period_is_one_the_lines_carry() -> None:
    november = {"start": "2026-11-01", "end": "2026-11-30"}
    lines = [{**LINE, "billing_period": november}, {**LINE, "has_billing_period": False}]
    spec, _ = prepare_spec(
        customer=CUSTOMER, line_items=lines, invoice={"currency": "EUR"}, billing_period=OCTOBER.as_dict()
    )
    assert spec is not None
    assert spec.lookup_period == BillingPeriod(dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    spec, _ = prepare_spec(
        customer=CUSTOMER,
        line_items=[{**LINE, "has_billing_period": False}],
        invoice={"currency": "EUR"},
        billing_period=OCTOBER.as_dict(),
    )
    assert spec is not None and spec.lookup_period is None  # no line bills a period: nothing to look for
    lines = [{**LINE, "billing_period": november}, LINE]  # the second line takes the invoice's October
    spec, _ = prepare_spec(
        customer=CUSTOMER, line_items=lines, invoice={"currency": "EUR"}, billing_period=OCTOBER.as_dict()
    )
    assert spec is not None and spec.lookup_period == OCTOBER
