from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from enlivy_provider.invoices.billing_period import BillingPeriod
from enlivy_provider.invoices.errors import InvoiceValidationError
from enlivy_provider.invoices.line_items import normalise_line_items, validate_line_items

PRODUCT = "org_prod_2qD7mZ0demoConsulting0001"
TAX = "org_tax_class_2qD7mZ0demoVat19000001"
OCTOBER = BillingPeriod(dt.date(2026, 10, 1), dt.date(2026, 10, 31))


def test_plain_name_and_unit_become_lang_maps_in_the_default_locale() -> None:
    [item] = validate_line_items(
        [{"name": "Beratung", "unit": "Stunde", "quantity": "2", "price": "95"}], default_locale="de"
    )
    assert item["name_lang_map"] == {"de": "Beratung"}
    assert item["unit_lang_map"] == {"de": "Stunde"}


def test_rendered_strings_become_decimals() -> None:
    [item] = validate_line_items([{"name": "x", "quantity": "1.5", "price": "12.50", "discount": "0.75"}])
    assert item["quantity"] == Decimal("1.5")
    assert item["price"] == Decimal("12.50")
    assert item["discount"] == Decimal("0.75")
    assert all(isinstance(item[k], Decimal) for k in ("quantity", "price", "discount"))


def test_product_reference_aliases_and_no_price_needed() -> None:
    [item] = validate_line_items([{"product_id": PRODUCT, "tax_class_id": TAX, "quantity": 3}])
    assert item["organization_product_id"] == PRODUCT
    assert item["organization_tax_class_id"] == TAX
    assert "price" not in item


def test_invoice_period_fills_each_line_and_order_is_the_position() -> None:
    items = validate_line_items(
        [{"name": "a", "quantity": 1, "price": 1}, {"name": "b", "quantity": 1, "price": 2}],
        billing_period=OCTOBER,
    )
    assert [i["order"] for i in items] == [1, 2]
    assert items[1]["has_billing_period"] is True
    assert items[1]["billing_period_started_at"] == "2026-10-01"
    assert items[1]["billing_period_ended_at"] == "2026-10-31"


def test_a_line_may_opt_out_of_or_override_the_period() -> None:
    items = validate_line_items(
        [
            {"name": "setup", "quantity": 1, "price": 50, "has_billing_period": "false"},
            {
                "name": "usage",
                "quantity": 1,
                "price": 2,
                "billing_period": {"start": "2026-09-01", "end": "2026-09-30"},
            },
        ],
        billing_period=OCTOBER,
    )
    assert items[0]["has_billing_period"] is False
    assert "billing_period_started_at" not in items[0]
    assert items[1]["billing_period_started_at"] == "2026-09-01"


def test_errors_name_the_path_and_are_all_collected() -> None:
    with pytest.raises(InvoiceValidationError) as caught:
        validate_line_items(
            [
                {"name": "ok", "quantity": 1, "price": 1},
                {"name": "x", "quantity": "abc", "price": 1},
                {"name": "y", "quantity": 0, "price": "-1"},
                {"name": "z", "quantity": "1.1234567", "price": 1, "discount": "0.001"},
            ]
        )
    messages = caught.value.messages
    assert "line_items[1].quantity: must be a number (got 'abc')" in messages
    assert "line_items[2].quantity: must be greater than 0" in messages
    assert "line_items[2].price: must not be negative" in messages
    assert any(m.startswith("line_items[3].quantity: must have at most 6 decimal places") for m in messages)
    assert any(m.startswith("line_items[3].discount: must have at most 2 decimal places") for m in messages)
    assert len(messages) == 5


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], "line_items: must not be empty"),
        ("nope", "line_items: must be a list of line items (got str)"),
        ([{"quantity": 1}], "line_items[0]: needs either organization_product_id, or a name and a price"),
        ([{"name": "a", "price": 1}], "line_items[0].quantity: is required"),
        (
            [{"name": "a", "quantity": 1, "price": 1, "colour": "red"}],
            "line_items[0].colour: unknown field 'colour'",
        ),
        ([{"name": "a", "quantity": 1, "price": 1, "type": "gadget"}], "line_items[0].type: must be one of"),
        (
            [{"name": "a", "quantity": 1, "price": True}],
            "line_items[0].price: must be a number, not a boolean",
        ),
        (
            [
                {
                    "name": "a",
                    "quantity": 1,
                    "price": 1,
                    "billing_period": {"start": "2026-10-31", "end": "2026-10-01"},
                }
            ],
            "line_items[0].billing_period.end: must not be before start",
        ),
        (
            [{"name": "a", "quantity": 1, "price": 1, "has_billing_period": True}],
            "line_items[0].has_billing_period",
        ),
        (
            [{"product_id": "prod_1", "quantity": 1}],
            "line_items[0].organization_product_id: must be a product id",
        ),
    ],
)
def test_bad_line_items_are_reported_with_their_path(items: object, expected: str) -> None:
    with pytest.raises(InvoiceValidationError) as caught:
        validate_line_items(items)
    assert any(m.startswith(expected) for m in caught.value.messages), caught.value.messages


def test_normalise_does_not_raise_and_keeps_going() -> None:
    items, issues = normalise_line_items([{"name": 5, "quantity": "x"}, "not a dict"])
    assert [str(i) for i in issues] == [
        "line_items[0].name: must be a string (got 5)",
        "line_items[0].quantity: must be a number (got 'x')",
        "line_items[1]: must be an object (got str)",
    ]
    assert len(items) == 2
