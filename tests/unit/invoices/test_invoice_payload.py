from __future__ import annotations

import datetime as dt

import pytest

from enlivy_provider.invoices.billing_period import BillingPeriod, parse_billing_period
from enlivy_provider.invoices.customer import CustomerRef, parse_customer
from enlivy_provider.invoices.payload import build_invoice_draft, build_update_payload

CUSTOMER = "org_user_2qD7mZ0demoCustomer000001"
LINE = {"name": "Support", "quantity": 1, "price": "10.00"}


def messages(issues: list) -> list[str]:
    return [str(i) for i in issues]


def test_draft_applies_defaults_and_conveniences() -> None:
    draft, issues = build_invoice_draft(
        line_items=[LINE],
        invoice={"currency": "EUR", "note": "Thanks", "due_in_days": "14"},
        reference_date=dt.date(2026, 11, 1),
    )
    assert issues == []
    assert draft is not None
    payload = draft.payload(CUSTOMER)
    assert payload["organization_receiver_user_id"] == CUSTOMER
    assert payload["status"] == "draft"
    assert payload["payment_method"] == "bank_transfer"
    assert payload["delivery_method"] == "email"
    assert payload["note_lang_map"] == {"en": "Thanks"}
    assert payload["due_at"] == "2026-11-15"


def test_due_in_days_counts_from_issued_at_when_given() -> None:
    draft, _ = build_invoice_draft(
        line_items=[LINE], invoice={"currency": "EUR", "issued_at": dt.date(2026, 1, 30), "due_in_days": 2}
    )
    assert draft is not None
    assert draft.fields["issued_at"] == "2026-01-30"
    assert draft.fields["due_at"] == "2026-02-01"


@pytest.mark.parametrize(
    ("invoice", "expected"),
    [
        ({}, "invoice.currency: is required"),
        ({"currency": "XYZ"}, "invoice.currency: must be an ISO 4217 currency code"),
        ({"currency": "EUR", "status": "sent"}, "invoice.status: must be one of"),
        ({"currency": "EUR", "payment_method": "barter"}, "invoice.payment_method: must be one of"),
        ({"currency": "EUR", "issued_at": "next tuesday"}, "invoice.issued_at: must be a date YYYY-MM-DD"),
        ({"currency": "EUR", "due_in_days": -3}, "invoice.due_in_days: must be a whole number"),
        ({"currency": "EUR", "total": 5}, "invoice.total: unknown field 'total'"),
        ({"currency": "EUR", "line_items": []}, "invoice.line_items: is not an invoice field here"),
        (
            {"currency": "EUR", "issued_at": "2026-11-10", "due_at": "2026-11-01"},
            "invoice.due_at: must not be before issued_at",
        ),
    ],
)
def test_bad_invoice_fields_name_the_field(invoice: dict, expected: str) -> None:
    draft, issues = build_invoice_draft(line_items=[LINE], invoice=invoice)
    assert draft is None
    assert any(m.startswith(expected) for m in messages(issues)), messages(issues)


def test_issues_are_prefixed_for_a_bulk_spec() -> None:
    _, issues = build_invoice_draft(
        line_items=[{"name": "a", "quantity": -1, "price": 1}],
        invoice={"currency": "EUR"},
        prefix="invoices[3]",
    )
    assert messages(issues) == ["invoices[3].line_items[0].quantity: must be greater than 0"]


def test_update_payload_is_partial_and_validated() -> None:
    payload, issues = build_update_payload({"status": "paid", "paid_at": "2026-11-03", "note": "paid"})
    assert issues == []
    assert payload == {"status": "paid", "paid_at": "2026-11-03", "note_lang_map": {"en": "paid"}}
    payload, issues = build_update_payload({"status": "bogus", "line_items": [{"name": "x", "quantity": 0}]})
    assert payload is None
    found = messages(issues)
    assert any(m.startswith("changes.status: must be one of") for m in found)
    assert any(m.startswith("changes.line_items[0]") for m in found)
    assert messages(build_update_payload({})[1]) == [
        "changes: must be a non-empty object of invoice fields to change"
    ]


def test_customer_forms() -> None:
    assert parse_customer(CUSTOMER) == (CustomerRef(id=CUSTOMER), [])
    assert parse_customer({"email": "ap@initech.example"}) == (CustomerRef(email="ap@initech.example"), [])
    assert parse_customer("ap@initech.example")[0] == CustomerRef(email="ap@initech.example")
    assert messages(parse_customer(None)[1])[0].startswith("customer: is required")
    assert messages(parse_customer({"email": "nope"})[1])[0].startswith("customer.email: must be an email")
    assert messages(parse_customer("cus_123")[1])[0].startswith("customer: must be a customer id")


def test_billing_period_from_the_data_interval_is_whole_days() -> None:
    start = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)
    end = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    period, issues = parse_billing_period("data_interval", data_interval=(start, end))
    assert issues == []
    assert period == BillingPeriod(dt.date(2026, 10, 1), dt.date(2026, 10, 31))
    _, issues = parse_billing_period("data_interval", data_interval=(start, start))
    assert "shorter than a day" in messages(issues)[0]
    _, issues = parse_billing_period({"start": "2026-02-30", "end": "2026-03-01"})
    assert messages(issues) == [
        "billing_period.start: must be a real calendar date (got '2026-02-30': day is out of range for month)"
    ]
