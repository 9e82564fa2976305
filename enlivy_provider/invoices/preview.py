"""Preview totals of an invoice before it is created, with the same rule as the server (``totals.py``).

Prices and tax rates come from a :class:`Catalog` built from the organization's products and tax rates:

* a line's price is its own ``price``, else the product's price in the invoice currency (``price_map``);
* a line's tax class is its own ``organization_tax_class_id``, else the product's; no class means no tax;
* a tax class's rate is the ``rate`` of its tax rate record (the first one listed when a class has several;
  a class without rates charges 0 %, like the server).

Looking things up also validates them: unknown products or tax classes, a product without a price in the
invoice currency and a discount larger than the line's sub_total are reported as issues.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from enlivy_provider.invoices.decimals import NotADecimalError, to_decimal
from enlivy_provider.invoices.errors import ValidationIssue, join_path
from enlivy_provider.invoices.totals import (
    ZERO,
    InvoiceTotals,
    LineTotals,
    compute_invoice_totals,
    compute_line_totals,
)


@dataclass(frozen=True)
class CatalogProduct:
    id: str
    price_map: Mapping[str, Decimal]
    tax_class_id: str | None = None
    name_lang_map: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Catalog:
    """What the preview needs to know about the organization: products and tax rates (percent per class)."""

    products: Mapping[str, CatalogProduct] = field(default_factory=dict)
    tax_rates: Mapping[str, Decimal] = field(default_factory=dict)

    @classmethod
    def from_api(
        cls,
        products: Iterable[Mapping[str, Any]],
        tax_rates: Iterable[Mapping[str, Any]],
        *,
        tax_classes: Iterable[Mapping[str, Any]] = (),
    ) -> Catalog:
        """Build from API records (``GET /products``, ``/tax-rates``, ``/tax-classes``).

        Amounts may be numbers or strings. A tax class without any rate is known and charges 0 %.
        """
        parsed: dict[str, CatalogProduct] = {}
        for record in products:
            price_map = {
                str(currency).upper(): to_decimal(amount)
                for currency, amount in (record.get("price_map") or {}).items()
                if amount is not None
            }
            parsed[str(record["id"])] = CatalogProduct(
                id=str(record["id"]),
                price_map=price_map,
                tax_class_id=record.get("organization_tax_class_id"),
                name_lang_map=record.get("name_lang_map") or {},
            )
        rates: dict[str, Decimal] = {}
        for record in tax_rates:
            class_id = record.get("organization_tax_class_id")
            if class_id and class_id not in rates and record.get("rate") is not None:
                rates[str(class_id)] = to_decimal(record["rate"])
        for tax_class in tax_classes:
            if tax_class.get("id"):
                rates.setdefault(str(tax_class["id"]), ZERO)
        return cls(products=parsed, tax_rates=rates)


@dataclass(frozen=True)
class PreviewLine:
    order: int
    name: str
    quantity: Decimal
    price: Decimal
    discount: Decimal
    tax_rate: Decimal
    totals: LineTotals
    product_id: str | None = None
    billing_period: tuple[str, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe (amounts as strings)."""
        return {
            "order": self.order,
            "name": self.name,
            "product_id": self.product_id,
            "quantity": str(self.quantity),
            "price": str(self.price),
            "discount": str(self.totals.discount),
            "tax_rate": str(self.tax_rate),
            "sub_total": str(self.totals.sub_total),
            "tax_total": str(self.totals.tax_total),
            "total": str(self.totals.total),
            "billing_period": list(self.billing_period) if self.billing_period else None,
        }


@dataclass(frozen=True)
class Preview:
    customer: str
    currency: str
    lines: tuple[PreviewLine, ...]
    totals: InvoiceTotals

    def as_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer,
            "currency": self.currency,
            "lines": [line.as_dict() for line in self.lines],
            "totals": self.totals.as_strings(),
        }

    def render_text(self, customer_label: str | None = None) -> str:
        """A readable table for the task log: every line in full, amounts aligned, the invoice's totals last.

        ``customer_label`` names the customer for a person (``Globex Corp <billing@globex.example>``)."""
        from enlivy_provider.text_table import format_table

        who = f"{customer_label} ({self.customer})" if customer_label else self.customer
        rows = [
            {
                "order": f"{line.order}.",
                "name": line.name,
                "quantity": str(line.quantity),
                "price": str(line.price),
                "discount": str(line.totals.discount),
                "tax": f"{line.tax_rate}%",
                "tax_total": str(line.totals.tax_total),
                "total": str(line.totals.total),
                "period": f"{line.billing_period[0]} .. {line.billing_period[1]}"
                if line.billing_period
                else "",
            }
            for line in self.lines
        ]
        t = self.totals
        rows.append(
            {"name": "invoice total", "discount": str(t.discount), "tax_total": str(t.tax_total),
             "total": f"{t.total}", "period": self.currency}
        )  # fmt: skip
        table = format_table(rows, PREVIEW_COLUMNS, right=PREVIEW_AMOUNTS, indent="  ")
        return (
            f"Invoice preview for {who}, {self.currency}\n{table}\n"
            f"  sub_total {t.sub_total}  discount {t.discount}  tax_total {t.tax_total}  total {t.total} {self.currency}"
        )


PREVIEW_COLUMNS = (
    ("order", "#"),
    ("name", "line"),
    ("quantity", "quantity"),
    ("price", "price"),
    ("discount", "discount"),
    ("tax", "tax"),
    ("tax_total", "tax amount"),
    ("total", "total"),
    ("period", "billing period"),
)
PREVIEW_AMOUNTS = ("order", "quantity", "price", "discount", "tax", "tax_total", "total")


def compute_preview(
    payload: Mapping[str, Any], catalog: Catalog, *, prefix: str = "", customer: str | None = None
) -> tuple[Preview | None, list[ValidationIssue]]:
    """Price every line of a normalised create body and total them; returns ``(preview, issues)``."""
    currency = str(payload.get("currency", "")).upper()
    issues: list[ValidationIssue] = []
    lines: list[PreviewLine] = []
    for index, item in enumerate(payload.get("line_items") or []):
        path = join_path(join_path(prefix, "line_items"), index)
        line = _price_line(item, index, currency, catalog, path, issues)
        if line is not None:
            lines.append(line)
    if issues:
        return None, issues
    return (
        Preview(
            customer=customer or str(payload.get("organization_receiver_user_id", "")),
            currency=currency,
            lines=tuple(lines),
            totals=compute_invoice_totals(line.totals for line in lines),
        ),
        [],
    )


def _price_line(
    item: Mapping[str, Any],
    index: int,
    currency: str,
    catalog: Catalog,
    path: str,
    issues: list[ValidationIssue],
) -> PreviewLine | None:
    product: CatalogProduct | None = None
    product_id = item.get("organization_product_id")
    if product_id is not None:
        product = catalog.products.get(product_id)
        if product is None:
            issues.append(
                ValidationIssue(join_path(path, "organization_product_id"), f"unknown product {product_id!r}")
            )
            return None

    try:
        quantity = to_decimal(item["quantity"])
        discount = to_decimal(item.get("discount", ZERO))
        price = to_decimal(item["price"]) if item.get("price") is not None else None
    except (KeyError, NotADecimalError) as exc:  # normalisation has run; this is a programming error
        raise ValueError(f"{path} is not normalised: {exc}") from exc

    if price is None:
        if product is None or currency not in product.price_map:
            issues.append(
                ValidationIssue(
                    join_path(path, "price"),
                    f"is required: product {product_id} has no price in {currency}"
                    if product
                    else "is required for a line without a product",
                )
            )
            return None
        price = product.price_map[currency]

    tax_class_id = item.get("organization_tax_class_id") or (product.tax_class_id if product else None)
    rate = ZERO
    if tax_class_id:
        if tax_class_id not in catalog.tax_rates:
            field_name = (
                "organization_tax_class_id"
                if item.get("organization_tax_class_id")
                else "organization_product_id"
            )
            issues.append(ValidationIssue(join_path(path, field_name), f"unknown tax class {tax_class_id!r}"))
            return None
        rate = catalog.tax_rates[tax_class_id]

    totals = compute_line_totals(quantity, price, discount, rate)
    if totals.discount > totals.sub_total:
        issues.append(
            ValidationIssue(
                join_path(path, "discount"), f"must not exceed the line's sub_total ({totals.sub_total})"
            )
        )
        return None

    names = item.get("name_lang_map") or (product.name_lang_map if product else {}) or {}
    name = next(iter(names.values()), product_id or "") if isinstance(names, Mapping) else ""
    period = None
    if item.get("has_billing_period"):
        period = (str(item.get("billing_period_started_at")), str(item.get("billing_period_ended_at")))
    order = item.get("order")
    return PreviewLine(
        order=order if isinstance(order, int) else index + 1,
        name=str(name),
        quantity=quantity,
        price=price,
        discount=discount,
        tax_rate=rate,
        totals=totals,
        product_id=product_id,
        billing_period=period,
    )
