"""Invoice validation and totals (enlivy_provider.emulator.rules) on a real, seeded in-memory store."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from enlivy_provider.emulator import seed
from enlivy_provider.emulator.rules import InvoiceInvalid, check_invoice, invoice_totals, tax_rate_of_class
from enlivy_provider.emulator.seeding import apply_seed
from enlivy_provider.emulator.store import Store

ORG = seed.DEMO_ORG_ID


@pytest.fixture(scope="module")
def store() -> Store:
    store = Store()
    apply_seed(store)
    return store


def payload(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "organization_receiver_user_id": seed.DEMO_CUSTOMERS[0].id,
        "status": "pending",
        "currency": "EUR",
        "payment_method": "bank_transfer",
        "delivery_method": "email",
        "line_items": [{"name_lang_map": {"en": "A"}, "quantity": 1, "price": Decimal("10.00")}],
    }
    body.update(overrides)
    return body


def errors(
    store: Store, body: dict[str, Any], existing: dict[str, Any] | None = None
) -> dict[str, list[str]]:
    with pytest.raises(InvoiceInvalid) as caught:
        check_invoice(store, ORG, body, existing)
    return caught.value.errors


def test_defaults_and_normalised_dates(store: Store) -> None:
    checked = check_invoice(store, ORG, payload(issued_at="2026-05-01", due_at="2026-05-31 12:00:00"))
    assert checked.fields["source"] == "internal"
    assert checked.fields["direction"] == "outbound"
    assert checked.fields["type"] == "standard"
    assert checked.fields["issued_at"] == "2026-05-01T00:00:00Z"
    assert checked.fields["due_at"] == "2026-05-31T12:00:00Z"


def test_line_totals_follow_the_shared_totals_rule(store: Store) -> None:
    line = {
        "name_lang_map": {"en": "A"},
        "quantity": Decimal("3"),
        "price": Decimal("33.335"),
        "discount": Decimal("5"),
        "organization_tax_class_id": seed.TAX_CLASS_STANDARD_ID,
    }
    checked = check_invoice(store, ORG, payload(line_items=[line]))
    assert checked.lines is not None
    (result,) = checked.lines
    # 3 × 33.335 = 100.005 → 100.01 (half up); (100.01 − 5.00) × 19 % = 18.0519 → 18.05
    assert (result["sub_total"], result["discount"], result["tax_total"], result["total"]) == (
        Decimal("100.01"),
        Decimal("5.00"),
        Decimal("18.05"),
        Decimal("113.06"),
    )
    assert result["price"] == Decimal("33.335")  # more precision than cents is kept as given
    assert result["quantity"] == 3


def test_invoice_totals_are_line_sums_and_external_amounts_win(store: Store) -> None:
    lines = [
        {
            "name_lang_map": {"en": "A"},
            "quantity": 1,
            "price": "0.10",
            "organization_tax_class_id": seed.TAX_CLASS_STANDARD_ID,
        },
        {
            "name_lang_map": {"en": "B"},
            "quantity": 1,
            "price": "0.20",
            "organization_tax_class_id": seed.TAX_CLASS_STANDARD_ID,
        },
    ]
    checked = check_invoice(store, ORG, payload(line_items=lines))
    assert checked.lines is not None
    totals = invoice_totals(checked.lines, checked.fields)
    assert totals == {
        "sub_total": Decimal("0.30"),
        "discount": Decimal("0.00"),
        "tax_total": Decimal("0.06"),  # 0.02 + 0.04, rounded per line
        "total": Decimal("0.36"),
    }
    external = invoice_totals([], {"source": "external", "total": "12.345", "sub_total": 10})
    assert external["total"] == Decimal("12.35") and external["sub_total"] == Decimal("10.00")


def test_tax_rate_of_class(store: Store) -> None:
    assert tax_rate_of_class(store, ORG, seed.TAX_CLASS_STANDARD_ID) == Decimal("19.00")
    assert tax_rate_of_class(store, ORG, seed.TAX_CLASS_ZERO_ID) == Decimal("0.00")
    assert tax_rate_of_class(store, ORG, "org_tax_class_unknown") is None
    assert tax_rate_of_class(store, seed.OTHER_ORG_ID, seed.TAX_CLASS_STANDARD_ID) is None


def test_all_problems_are_reported_at_once_with_dot_paths(store: Store) -> None:
    found = errors(
        store,
        payload(
            status="void",
            currency="EURO",
            line_items=[
                {"name_lang_map": {"en": "A"}, "quantity": 0, "price": Decimal("-1")},
                {"quantity": 1, "price": 1, "discount": 2},
            ],
        ),
    )
    assert set(found) == {
        "status",
        "currency",
        "line_items.0.quantity",
        "line_items.0.price",
        "line_items.1.name_lang_map",
        "line_items.1.discount",
    }


def test_discount_may_not_exceed_the_sub_total(store: Store) -> None:
    line = {"name_lang_map": {"en": "A"}, "quantity": 1, "price": "5.00", "discount": "5.01"}
    assert "line_items.0.discount" in errors(store, payload(line_items=[line]))
    line["discount"] = "5.00"
    assert check_invoice(store, ORG, payload(line_items=[line])).lines[0]["total"] == Decimal("0.00")  # type: ignore[index]


def test_amounts_accept_numbers_and_decimal_strings_not_booleans(store: Store) -> None:
    for price in (10, Decimal("10.00"), "10", " 10.00 "):
        line = {"name_lang_map": {"en": "A"}, "quantity": 1, "price": price}
        assert check_invoice(store, ORG, payload(line_items=[line])).lines[0]["price"] == Decimal("10.00")  # type: ignore[index]
    line = {"name_lang_map": {"en": "A"}, "quantity": True, "price": "1"}
    assert "line_items.0.quantity" in errors(store, payload(line_items=[line]))


def test_billing_period(store: Store) -> None:
    base = {"name_lang_map": {"en": "A"}, "quantity": 1, "price": 1, "has_billing_period": True}
    assert "line_items.0.billing_period_started_at" in errors(store, payload(line_items=[base]))
    backwards = {**base, "billing_period_started_at": "2026-02-01", "billing_period_ended_at": "2026-01-01"}
    assert "line_items.0.billing_period_ended_at" in errors(store, payload(line_items=[backwards]))
    ok = {**base, "billing_period_started_at": "2026-01-01", "billing_period_ended_at": "2026-01-31"}
    lines = check_invoice(store, ORG, payload(line_items=[ok])).lines
    assert lines is not None and lines[0]["billing_period_ended_at"] == "2026-01-31"


def test_partial_update_keeps_stored_fields_and_lines(store: Store) -> None:
    existing = check_invoice(store, ORG, payload()).fields | {"line_items": [{"id": "x"}]}
    checked = check_invoice(store, ORG, {"due_at": "2026-09-01"}, existing)
    assert checked.lines is None
    assert checked.fields["status"] == "pending"
    assert checked.fields["due_at"] == "2026-09-01T00:00:00Z"
    assert "line_items" in errors(store, {"line_items": []}, existing)
