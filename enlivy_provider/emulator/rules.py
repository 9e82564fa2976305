"""Validation of invoice writes (→ 422 ``{"message", "errors": {"field.path": [...]}}``) and their totals.

Totals come from :mod:`enlivy_provider.invoices.totals` (line ``discount`` is an absolute amount; tax on
the discounted base; see that module). This module never writes: it turns a request body (merged over
the stored invoice for a PUT) into checked invoice fields and computed line items.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from enlivy_provider.emulator import enums
from enlivy_provider.emulator.dates import normalise
from enlivy_provider.emulator.jsonio import money, to_decimal
from enlivy_provider.emulator.limits import MAX_AMOUNT, MAX_DECIMAL_PLACES, MAX_LINE_ITEMS, MAX_QUANTITY
from enlivy_provider.emulator.store import Store
from enlivy_provider.invoices.totals import (
    ZERO,
    LineTotals,
    compute_invoice_totals,
    compute_line_totals,
    round_money,
)

Errors = dict[str, list[str]]
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# Invoice fields a client may write, besides line_items and the money fields of external invoices.
ENUM_FIELDS: dict[str, tuple[str, ...]] = {
    "status": enums.INVOICE_STATUSES,
    "type": enums.INVOICE_TYPES,
    "source": enums.INVOICE_SOURCES,
    "direction": enums.INVOICE_DIRECTIONS,
    "payment_method": enums.PAYMENT_METHODS,
    "delivery_method": enums.DELIVERY_METHODS,
}
DATE_FIELDS = ("issued_at", "due_at", "paid_at")
ID_FIELDS = (
    "organization_receiver_user_id",
    "organization_sender_user_id",
    "organization_bank_account_id",
    "organization_invoice_prefix_id",
)
FREE_FIELDS = (
    "number",
    "note_lang_map",
    "peppol_project_reference",
    "peppol_purchase_order_reference",
    "peppol_sales_order_reference",
    "receiver_has_custom_identity",
    "receiver_custom_identity_is_business",
    "receiver_custom_identity_name",
    "receiver_custom_identity_organization_type",
    "receiver_information",
    "receiver_country_code",
    "bank_account_payment_qr_types",
    "delivery_method_information",
)
MONEY_FIELDS = ("sub_total", "discount", "tax_total", "total")
DEFAULTS: dict[str, Any] = {"source": "internal", "direction": "outbound", "type": "standard"}
REQUIRED_INTERNAL = (
    "organization_receiver_user_id",
    "status",
    "currency",
    "payment_method",
    "delivery_method",
    "line_items",
)
REQUIRED_EXTERNAL = ("organization_receiver_user_id", "status", "currency")


def _label(field: str) -> str:
    return field.rsplit(".", 1)[-1].replace("_", " ")


def _add(errors: Errors, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def _within(
    errors: Errors, field: str, value: Decimal, maximum: Decimal, places: int | None = None
) -> Decimal | None:
    """``value`` if it is at most ``maximum`` and has at most ``places`` decimals (trailing zeros beyond
    them are dropped), else ``None`` and an error. Checked before any arithmetic: ``1e999999999`` parses
    into a Decimal but overflows the first multiplication, and its digits would not fit any answer."""
    if value > maximum:
        _add(errors, field, f"The {_label(field)} may not be greater than {maximum}.")
        return None
    if places is not None and value.as_tuple().exponent < -places:  # type: ignore[operator]
        rounded = value.quantize(Decimal(1).scaleb(-places))
        if rounded != value:
            _add(errors, field, f"The {_label(field)} may have at most {places} decimal places.")
            return None
        return rounded
    return value


@dataclass
class CheckedInvoice:
    """Validated invoice fields (API names, normalised values) and computed lines (no ids yet)."""

    fields: dict[str, Any]
    lines: list[dict[str, Any]] | None  # None: keep the stored lines (PUT without line_items)


def tax_rate_of_class(store: Store, organization_id: str, tax_class_id: str) -> Decimal | None:
    """The class's rate in percent, ``None`` if the class is unknown in the organization."""
    if store.get_record("tax_class", tax_class_id, organization_id) is None:
        return None
    for rate in store.list_records("tax_rate", organization_id):
        if rate.get("organization_tax_class_id") == tax_class_id and rate.get("deleted_at") is None:
            return Decimal(rate["rate"])
    return ZERO


def _role_allows(store: Store, user: dict[str, Any], flag: str) -> bool:
    role = store.get_record("user_role", user.get("organization_user_role_id") or "", user["organization_id"])
    return bool(role and role.get(flag))


def _check_ids(store: Store, org: str, merged: dict[str, Any], errors: Errors) -> None:
    for field, flag, refusal in (
        ("organization_receiver_user_id", "can_be_invoiced", "The selected user's role cannot be invoiced."),
        (
            "organization_sender_user_id",
            "can_be_invoicing",
            "The selected user's role cannot issue invoices.",
        ),
    ):
        user_id = merged.get(field)
        if user_id is None:
            continue
        user = store.get_record("organization_user", user_id, org) if isinstance(user_id, str) else None
        if user is None or user.get("deleted_at"):
            _add(errors, field, f"The selected {_label(field)} is invalid.")
        elif not _role_allows(store, user, flag):
            _add(errors, field, refusal)
    for field, kind in (
        ("organization_bank_account_id", "bank_account"),
        ("organization_invoice_prefix_id", "invoice_prefix"),
    ):
        value = merged.get(field)
        if value is not None and (not isinstance(value, str) or store.get_record(kind, value, org) is None):
            _add(errors, field, f"The selected {_label(field)} is invalid.")


def _check_line(
    store: Store, org: str, currency: str | None, index: int, item: Any, errors: Errors
) -> dict[str, Any] | None:
    path = f"line_items.{index}"
    if not isinstance(item, dict):
        _add(errors, path, "Each line item must be an object.")
        return None
    before = sum(len(v) for v in errors.values())
    product = None
    product_id = item.get("organization_product_id")
    if product_id is not None:
        product = store.get_record("product", str(product_id), org) if isinstance(product_id, str) else None
        if product is None or product.get("deleted_at"):
            _add(
                errors, f"{path}.organization_product_id", "The selected organization product id is invalid."
            )
            product = None

    name_lang_map = item.get("name_lang_map", product.get("name_lang_map") if product else None)
    if name_lang_map is None:
        _add(errors, f"{path}.name_lang_map", "The name lang map field is required.")
    elif not (
        isinstance(name_lang_map, dict)
        and name_lang_map
        and all(isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in name_lang_map.items())
    ):
        _add(errors, f"{path}.name_lang_map", "The name lang map must map locales to non-empty texts.")

    quantity = to_decimal(item.get("quantity"))
    if "quantity" not in item or item.get("quantity") is None:
        _add(errors, f"{path}.quantity", "The quantity field is required.")
    elif quantity is None:
        _add(errors, f"{path}.quantity", "The quantity must be a number.")
    elif quantity <= 0:
        _add(errors, f"{path}.quantity", "The quantity must be greater than 0.")
    else:
        quantity = _within(errors, f"{path}.quantity", quantity, MAX_QUANTITY, MAX_DECIMAL_PLACES)

    price: Decimal | None
    if item.get("price") is not None:
        price = to_decimal(item.get("price"))
        if price is None:
            _add(errors, f"{path}.price", "The price must be a number.")
        elif price < 0:
            _add(errors, f"{path}.price", "The price must be at least 0.")
        else:
            price = _within(errors, f"{path}.price", price, MAX_AMOUNT, MAX_DECIMAL_PLACES)
    elif product is not None:
        price_map = product.get("price_map") or {}
        price = to_decimal(price_map.get(currency)) if currency else None
        if price is None:
            _add(errors, f"{path}.price", f"The product has no price in {currency}; send a price.")
    else:
        price = None
        _add(errors, f"{path}.price", "The price field is required.")

    discount = ZERO
    if item.get("discount") is not None:
        parsed = to_decimal(item.get("discount"))
        if parsed is None:
            _add(errors, f"{path}.discount", "The discount must be a number.")
        elif parsed < 0:
            _add(errors, f"{path}.discount", "The discount must be at least 0.")
        else:
            discount = _within(errors, f"{path}.discount", parsed, MAX_AMOUNT) or ZERO

    line_type = item.get("type", product.get("type") if product else "service")
    if line_type not in enums.PRODUCT_TYPES:
        _add(errors, f"{path}.type", "The selected type is invalid.")

    tax_class_id = item.get(
        "organization_tax_class_id", product.get("organization_tax_class_id") if product else None
    )
    rate = ZERO
    if tax_class_id is not None:
        found = tax_rate_of_class(store, org, tax_class_id) if isinstance(tax_class_id, str) else None
        if found is None:
            _add(
                errors,
                f"{path}.organization_tax_class_id",
                "The selected organization tax class id is invalid.",
            )
        else:
            rate = found

    has_period = item.get("has_billing_period", False)
    if not isinstance(has_period, bool):
        _add(errors, f"{path}.has_billing_period", "The has billing period field must be true or false.")
    period: dict[str, str | None] = {}
    for name in ("billing_period_started_at", "billing_period_ended_at"):
        value = item.get(name)
        if value is None:
            period[name] = None
        elif normalise(value) is None:
            _add(errors, f"{path}.{name}", f"The {_label(name)} field must be a valid date.")
        else:
            period[name] = str(value)[:10]
    if has_period is True and None in period.values():
        _add(errors, f"{path}.billing_period_started_at", "Both billing period dates are required.")
    started, ended = period.get("billing_period_started_at"), period.get("billing_period_ended_at")
    if started and ended and started > ended:
        _add(errors, f"{path}.billing_period_ended_at", "The billing period must not end before it starts.")

    order = item.get("order", index + 1)
    if isinstance(order, bool) or not isinstance(order, int) or order < 0:
        _add(errors, f"{path}.order", "The order must be a non-negative integer.")

    if quantity is None or price is None or quantity <= 0 or price < 0:
        return None
    totals = compute_line_totals(quantity, price, discount, rate)
    if max(totals.sub_total, totals.total) > MAX_AMOUNT:
        _add(errors, path, f"The line amount (quantity × price) may not be greater than {MAX_AMOUNT}.")
    elif totals.discount > totals.sub_total:
        _add(errors, f"{path}.discount", "The discount must not exceed the line sub total.")
    if sum(len(v) for v in errors.values()) > before:
        return None
    return {
        "organization_product_id": product["id"] if product else None,
        "organization_tax_class_id": tax_class_id,
        "order": order,
        "type": line_type,
        "name_lang_map": name_lang_map,
        "unit_lang_map": item.get("unit_lang_map", product.get("unit_lang_map") if product else None),
        "invoice_schema_map": item.get("invoice_schema_map"),
        "has_billing_period": has_period,
        "billing_period_started_at": started,
        "billing_period_ended_at": ended,
        "quantity": quantity if quantity != quantity.to_integral_value() else int(quantity),
        "price": money(price),
        "tax_rate": round_money(rate),
        "sub_total": totals.sub_total,
        "discount": totals.discount,
        "tax_total": totals.tax_total,
        "total": totals.total,
    }


def check_invoice(
    store: Store, organization_id: str, payload: dict[str, Any], existing: dict[str, Any] | None = None
) -> CheckedInvoice:
    """Validate a create (``existing`` None) or partial update; raise :class:`InvoiceInvalid` with all errors."""
    errors: Errors = {}
    merged: dict[str, Any] = dict(DEFAULTS) if existing is None else dict(existing)
    for field in (*ENUM_FIELDS, *DATE_FIELDS, *ID_FIELDS, *FREE_FIELDS, *MONEY_FIELDS, "currency", "taxes"):
        if field in payload:
            merged[field] = payload[field]
    external = merged.get("source") == "external"

    required = REQUIRED_EXTERNAL if external else REQUIRED_INTERNAL
    for field in required:
        value = (
            payload.get("line_items", merged.get("line_items"))
            if field == "line_items"
            else merged.get(field)
        )
        if value is None or value == "" or value == []:
            _add(errors, field, f"The {_label(field)} field is required.")

    for field, allowed in ENUM_FIELDS.items():
        value = merged.get(field)
        if value is not None and value not in allowed:
            _add(errors, field, f"The selected {_label(field)} is invalid.")
    currency = merged.get("currency")
    if currency is not None and (not isinstance(currency, str) or currency not in enums.CURRENCIES):
        _add(errors, "currency", "The currency must be a valid ISO 4217 currency code.")
        currency = None

    for field in DATE_FIELDS:
        value = merged.get(field)
        if value is None:
            continue
        normalised = normalise(value)
        if normalised is None:
            _add(errors, field, f"The {_label(field)} field must be a valid date.")
        else:
            merged[field] = normalised
    issued, due = merged.get("issued_at"), merged.get("due_at")
    if issued and due and "issued_at" not in errors and "due_at" not in errors and due < issued:
        _add(errors, "due_at", "The due at field must be a date after or equal to issued at.")

    note = merged.get("note_lang_map")
    if note is not None and not (isinstance(note, dict) and all(isinstance(v, str) for v in note.values())):
        _add(errors, "note_lang_map", "The note lang map must map locales to texts.")
    if merged.get("number") is not None and not isinstance(merged.get("number"), (str, int)):
        _add(errors, "number", "The number must be a string.")

    _check_ids(store, organization_id, merged, errors)

    lines: list[dict[str, Any]] | None = None
    raw_lines = payload.get("line_items")
    if raw_lines is not None:
        if not isinstance(raw_lines, list):
            _add(errors, "line_items", "The line items field must be an array.")
        elif len(raw_lines) > MAX_LINE_ITEMS:
            _add(errors, "line_items", f"The line items may not have more than {MAX_LINE_ITEMS} items.")
        else:
            checked = [
                _check_line(store, organization_id, currency, i, item, errors)
                for i, item in enumerate(raw_lines)
            ]
            lines = [line for line in checked if line is not None]
            if sum((line["total"] for line in lines), ZERO) > MAX_AMOUNT:
                _add(errors, "line_items", f"The invoice total may not be greater than {MAX_AMOUNT}.")

    if external:
        for field in MONEY_FIELDS:
            value = merged.get(field)
            amount = to_decimal(value)
            if value is None:
                continue
            if amount is None or amount < 0:
                _add(errors, field, f"The {_label(field)} must be a number of at least 0.")
            else:
                _within(errors, field, amount, MAX_AMOUNT)

    if errors:
        raise InvoiceInvalid(errors)

    fields = {k: v for k, v in merged.items() if k not in ("line_items", "taxes")}
    if "number" in fields and fields["number"] is not None:
        fields["number"] = str(fields["number"])
    return CheckedInvoice(fields=fields, lines=lines)


def invoice_totals(lines: list[dict[str, Any]], fields: dict[str, Any]) -> dict[str, Decimal]:
    """Internal invoices: sums of the lines. External ones: the caller's amounts (lines' sums when absent)."""
    computed = compute_invoice_totals(
        LineTotals(line["sub_total"], line["discount"], line["tax_total"], line["total"]) for line in lines
    )
    result = {
        "sub_total": computed.sub_total,
        "discount": computed.discount,
        "tax_total": computed.tax_total,
        "total": computed.total,
    }
    if fields.get("source") == "external":
        for name in MONEY_FIELDS:
            given = to_decimal(fields.get(name))
            if given is not None:
                result[name] = round_money(given)
    return result


class InvoiceInvalid(Exception):
    def __init__(self, errors: Errors) -> None:
        super().__init__("invalid invoice")
        self.errors = errors
