"""The one rule for invoice totals, shared by the emulator and the operators' dry-run preview.

The Enlivy sources do not pin the arithmetic down (docs/enlivy-api-notes.md §11, ⚠ §20.7). The choices made here,
in this one place:

* A line's ``sub_total`` is ``quantity × price`` rounded to cents.
* A line's ``discount`` is an **absolute amount** in the invoice currency (the public API page's PUT
  example: 190.00 − 5.00 + 4.75 = 189.75), not a percentage as one SDK guide comment says. It must not
  exceed the line's ``sub_total``.
* Tax is charged on the discounted base: ``tax_total = round((sub_total − discount) × rate / 100)``,
  the identity the receipts guide uses (1000 − 100 = 900; 900 × 19 % = 171). Rates are exclusive
  (prices never contain tax) and never compound.
* Rounding is to 2 decimals, ``ROUND_HALF_UP`` (commercial rounding), applied per line.
* Invoice ``sub_total``, ``discount``, ``tax_total`` and ``total`` are the sums of the lines' fields, so
  the invoice always equals what is printed line by line.

Everything is :class:`decimal.Decimal`; a float never enters the computation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def round_money(value: Decimal) -> Decimal:
    """Round an amount to cents with commercial rounding (the one rounding rule of the project)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class LineTotals:
    sub_total: Decimal
    discount: Decimal
    tax_total: Decimal
    total: Decimal


@dataclass(frozen=True)
class InvoiceTotals:
    sub_total: Decimal
    discount: Decimal
    tax_total: Decimal
    total: Decimal

    def as_strings(self) -> dict[str, str]:
        """JSON-safe form: amounts as strings so no float ever rounds them."""
        return {
            "sub_total": str(self.sub_total),
            "discount": str(self.discount),
            "tax_total": str(self.tax_total),
            "total": str(self.total),
        }


def compute_line_totals(
    quantity: Decimal, price: Decimal, discount: Decimal = ZERO, tax_rate_percent: Decimal = ZERO
) -> LineTotals:
    """Totals of one line item. ``discount`` is an amount, ``tax_rate_percent`` e.g. ``Decimal("19")``."""
    sub_total = round_money(quantity * price)
    discount = round_money(discount)
    tax_total = round_money((sub_total - discount) * tax_rate_percent / Decimal(100))
    return LineTotals(
        sub_total=sub_total,
        discount=discount,
        tax_total=tax_total,
        total=sub_total - discount + tax_total,
    )


def compute_invoice_totals(lines: Iterable[LineTotals]) -> InvoiceTotals:
    """Invoice totals are the sums of the line totals."""
    sub_total = discount = tax_total = total = ZERO
    for line in lines:
        sub_total += line.sub_total
        discount += line.discount
        tax_total += line.tax_total
        total += line.total
    return InvoiceTotals(sub_total=sub_total, discount=discount, tax_total=tax_total, total=total)
