"""``POST /_emulator/bulk-invoices``: many invoices in one transaction, for benchmarks (100,000 in seconds).

Every invoice has one line (``quantity`` 1 × ``price``, taxed at ``tax_rate`` %), cycles through the
organization's invoiceable customers (or ``customer_ids``), and is numbered from the organization's
standard prefix unless ``status`` is ``draft``. The stored JSON document is serialised once as a template
and filled in per invoice, which is what makes this fast.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from enlivy_provider.emulator import enums
from enlivy_provider.emulator.common import new_id, now_iso, validation_error
from enlivy_provider.emulator.dates import normalise
from enlivy_provider.emulator.invoicing import InvoiceService, blank_invoice
from enlivy_provider.emulator.jsonio import dumps
from enlivy_provider.emulator.limits import MAX_AMOUNT
from enlivy_provider.invoices.totals import compute_line_totals

MAX_COUNT = 1_000_000
# Placeholders in the serialised template (JSON strings, so they appear quoted in the text).
_ID, _LINE_ID, _RECEIVER, _NUMBER, _FORMATTED, _NAME, _KEY = (
    "@@id@@", "@@line@@", "@@receiver@@", "@@number@@", "@@formatted@@", "@@name@@", "@@key@@",
)  # fmt: skip
# Optional date fields of a spec (YYYY-MM-DD): the billing period of the one line, the issue and due dates.
_DATE_FIELDS = ("billing_period_start", "billing_period_end", "issued_at", "due_at")


def _spec_errors(spec: dict[str, Any]) -> tuple[dict[str, list[str]], Decimal, Decimal]:
    errors: dict[str, list[str]] = {}
    count = spec.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        errors["count"] = [f"The count must be an integer between 1 and {MAX_COUNT}."]
    if spec.get("status", "pending") not in enums.INVOICE_STATUSES:
        errors["status"] = ["The selected status is invalid."]
    if spec.get("currency", "EUR") not in enums.CURRENCIES:
        errors["currency"] = ["The currency must be a valid ISO 4217 currency code."]
    for name in _DATE_FIELDS:
        value = spec.get(name)
        if value is not None and (not isinstance(value, str) or not _is_date(value)):
            errors[name] = [f"The {name} must be a date (YYYY-MM-DD)."]
    if (spec.get("billing_period_start") is None) != (spec.get("billing_period_end") is None):
        errors["billing_period_end"] = ["billing_period_start and billing_period_end go together."]
    key = spec.get("billing_key")
    if key is not None and (not isinstance(key, str) or not key):
        errors["billing_key"] = ["The billing_key must be a non-empty string ({i} is the invoice's index)."]
    amounts = []
    for name, default, maximum in (("price", "100.00", MAX_AMOUNT), ("tax_rate", "19", Decimal(100))):
        try:
            value = Decimal(str(spec.get(name, default)))
        except InvalidOperation:
            value = Decimal(-1)
        if not value.is_finite() or not 0 <= value <= maximum:
            errors[name] = [f"The {name} must be a number between 0 and {maximum}."]
            value = Decimal(0)
        amounts.append(value)
    return errors, amounts[0], amounts[1]


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def _customers(service: InvoiceService, organization_id: str, spec: dict[str, Any]) -> list[str]:
    if spec.get("customer_ids"):
        return [str(c) for c in spec["customer_ids"]]
    store = service.store
    roles = {r["id"] for r in store.list_records("user_role", organization_id) if r.get("can_be_invoiced")}
    return [
        user["id"]
        for user in store.list_records("organization_user", organization_id)
        if user.get("organization_user_role_id") in roles and not user.get("deleted_at")
    ]


def bulk_create(service: InvoiceService, organization_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    errors, price, tax_rate = _spec_errors(spec)
    customers = _customers(service, organization_id, spec)
    if not customers:
        errors["customer_ids"] = ["The organization has no invoiceable customers."]
    if errors:
        raise validation_error(errors)
    count: int = spec["count"]
    status: str = spec.get("status", "pending")
    numbered = status not in enums.UNNUMBERED_STATUSES
    line = compute_line_totals(Decimal(1), price, tax_rate_percent=tax_rate)
    store = service.store
    with service.lock:
        now = now_iso()
        prefixes = store.list_records("invoice_prefix", organization_id)
        prefix = next((p for p in prefixes if p.get("type") == "standard"), None)
        prototype = blank_invoice(_ID, organization_id, now)
        prototype.update(
            status=status,
            currency=spec.get("currency", "EUR"),
            payment_method="bank_transfer",
            delivery_method="email",
            organization_receiver_user_id=_RECEIVER,
            issued_at=normalise(spec["issued_at"]) if spec.get("issued_at") else now,
            due_at=normalise(spec["due_at"]) if spec.get("due_at") else None,
            # The billing key marker (enlivy_provider.invoices.billing_identity.BILLING_KEY_FIELD).
            peppol_project_reference=_KEY if spec.get("billing_key") else None,
            sub_total=line.sub_total,
            discount=line.discount,
            tax_total=line.tax_total,
            total=line.total,
            is_tax_charged=line.tax_total > 0,
            paid_at=now if status == "paid" else None,
            number=_NUMBER if numbered else None,
            formatted_number=_FORMATTED if numbered else None,
            will_number_be_auto_assigned=not numbered,
            finalized_at=now if numbered else None,
            organization_invoice_prefix_id=prefix["id"] if prefix and numbered else None,
        )
        prototype["line_items"] = [
            {
                "id": _LINE_ID,
                "object": "invoice_line_item",
                "organization_id": organization_id,
                "organization_invoice_id": _ID,
                "organization_product_id": None,
                "organization_tax_class_id": None,
                "order": 1,
                "type": "service",
                "name_lang_map": {"en": _NAME},
                "quantity": 1,
                "price": line.sub_total,
                "tax_rate": tax_rate,
                "sub_total": line.sub_total,
                "discount": line.discount,
                "tax_total": line.tax_total,
                "total": line.total,
                **_period_fields(spec),
            }
        ]
        template = dumps(prototype)
        name = prefix["name"] if prefix else "INV"
        number = int(prefix.get("current_number") or 0) if prefix else 0
        rows = []
        for i in range(count):
            invoice_id = new_id("org_inv")
            receiver = customers[i % len(customers)]
            formatted = ""
            if numbered:
                number += 1
                formatted = f"{name}-{now[:4]}-{number:04d}"
            doc = (
                template.replace(_ID, invoice_id)
                .replace(_LINE_ID, new_id("org_invli"))
                .replace(_RECEIVER, receiver)
                .replace(_NUMBER, str(number))
                .replace(_FORMATTED, formatted)
                .replace(_NAME, f"Bulk item {i + 1}")
                .replace(_KEY, json_text(str(spec.get("billing_key") or "").replace("{i}", str(i))))
            )
            columns = dict(prototype, id=invoice_id, organization_receiver_user_id=receiver)
            if numbered:
                columns.update(number=str(number), formatted_number=formatted)
            rows.append((columns, f"{invoice_id} {formatted}", None, doc))
        store.save_invoices(rows)
        if prefix is not None and numbered:
            prefix["current_number"] = number
            store.put_record("invoice_prefix", prefix)
    return {"count": count, "first_id": rows[0][0]["id"], "last_id": rows[-1][0]["id"]}


def json_text(value: str) -> str:
    """``value`` as it appears inside a JSON string (the template is already serialised)."""
    return json.dumps(value)[1:-1]


def _period_fields(spec: dict[str, Any]) -> dict[str, Any]:
    if spec.get("billing_period_start") is None:
        return {"has_billing_period": False}
    return {
        "has_billing_period": True,
        "billing_period_started_at": spec["billing_period_start"],
        "billing_period_ended_at": spec["billing_period_end"],
    }
