from __future__ import annotations

from decimal import Decimal

from enlivy_provider.emulator import seed
from enlivy_provider.invoices.payload import build_invoice_draft
from enlivy_provider.invoices.preview import Catalog, compute_preview

PLATFORM, API_CALLS, CONSULTING = (p.id for p in seed.DEMO_PRODUCTS)
CATALOG = Catalog.from_api(
    [
        {"id": p.id, "price_map": {"EUR": str(p.price_eur)}, "organization_tax_class_id": p.tax_class_id,
         "name_lang_map": {"en": p.name}}
        for p in seed.DEMO_PRODUCTS
    ],
    [{"organization_tax_class_id": cid, "rate": rate} for cid, rate in seed.TAX_RATES.items()],
)  # fmt: skip


def preview(line_items: list, currency: str = "EUR"):  # type: ignore[no-untyped-def]
    draft, issues = build_invoice_draft(line_items=line_items, invoice={"currency": currency})
    assert issues == [], issues
    assert draft is not None
    return compute_preview(draft.payload("org_user_x1"), CATALOG)


def test_product_price_and_tax_class_are_inherited() -> None:
    result, issues = preview(
        [{"product_id": PLATFORM, "quantity": 1}, {"product_id": API_CALLS, "quantity": "1234.5"}]
    )
    assert issues == []
    assert result is not None
    platform, calls = result.lines
    assert platform.price == Decimal("199.00") and platform.tax_rate == Decimal("19")
    assert calls.totals.sub_total == Decimal("555.53")  # 1234.5 x 0.45 = 555.525 -> half up
    assert result.totals.sub_total == Decimal("754.53")
    assert result.totals.tax_total == Decimal("37.81") + Decimal("105.55")
    assert result.totals.total == result.totals.sub_total + result.totals.tax_total


def test_line_values_override_the_product_and_discount_is_an_amount() -> None:
    result, _ = preview(
        [
            {
                "product_id": CONSULTING,
                "quantity": 2,
                "price": "100",
                "discount": "5",
                "tax_class_id": seed.TAX_CLASS_STANDARD_ID,
            }
        ]
    )
    assert result is not None
    [line] = result.lines
    assert (line.totals.sub_total, line.totals.discount, line.totals.tax_total, line.totals.total) == (
        Decimal("200.00"), Decimal("5.00"), Decimal("37.05"), Decimal("232.05"),
    )  # fmt: skip
    assert result.as_dict()["totals"] == {
        "sub_total": "200.00",
        "discount": "5.00",
        "tax_total": "37.05",
        "total": "232.05",
    }


def test_lookup_problems_are_issues() -> None:
    _, issues = preview([{"product_id": "org_prod_doesnotexist", "quantity": 1}])
    assert [str(i) for i in issues] == [
        "line_items[0].organization_product_id: unknown product 'org_prod_doesnotexist'"
    ]
    _, issues = preview([{"product_id": PLATFORM, "quantity": 1}], currency="USD")
    assert str(issues[0]).startswith("line_items[0].price: is required: product")
    _, issues = preview([{"name": "x", "quantity": 1, "price": 1, "tax_class_id": "org_tax_class_nope"}])
    assert str(issues[0]) == "line_items[0].organization_tax_class_id: unknown tax class 'org_tax_class_nope'"
    _, issues = preview([{"name": "x", "quantity": 1, "price": "10", "discount": "10.01"}])
    assert str(issues[0]) == "line_items[0].discount: must not exceed the line's sub_total (10.00)"


def test_render_text_mentions_every_line_and_the_total() -> None:
    result, _ = preview(
        [{"product_id": PLATFORM, "quantity": 1}, {"name": "Extra", "quantity": 1, "price": "1.00"}]
    )
    assert result is not None
    text = result.render_text()
    assert "Platform plan" in text and "Extra" in text and "total 237.81 EUR" in text


def test_render_text_names_the_customer_and_keeps_long_line_names_whole_with_amounts_aligned() -> None:
    long_name = "Consulting hours for the October 2026 data platform migration (phase 2)"
    result, _ = preview(
        [{"product_id": PLATFORM, "quantity": 1}, {"name": long_name, "quantity": "12.5", "price": "95.00"}]
    )
    assert result is not None
    text = result.render_text("Globex Corp <billing@globex.example>")
    lines = text.splitlines()
    assert lines[0].startswith("Invoice preview for Globex Corp <billing@globex.example> (")
    assert long_name in text  # never cut
    header, _, platform, consulting, total_row = lines[1:6]
    # Amounts are right-aligned: every total ends in the same column as the header's "total".
    end = header.index("total") + len("total")
    for row, amount in ((platform, "236.81"), (consulting, "1187.50"), (total_row, "1424.31")):
        assert row[end - len(amount) : end] == amount, row
