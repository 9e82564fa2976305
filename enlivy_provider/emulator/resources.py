"""Response shapes: records with their requested includes, relations wrapped in ``{"data": ...}``.

Following the public API page (docs/enlivy-api-notes.md §4.2): every included relation is ``{"data": X}``;
``tag_ids`` is always a flat array. Relations the emulator does not model (receipts, contracts, charge
logs, ...) are answered empty: ``{"data": []}`` for plural names, ``{"data": null}`` otherwise.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from enlivy_provider.emulator.invoicing import public_invoice
from enlivy_provider.emulator.store import Store
from enlivy_provider.invoices.totals import ZERO

PLURAL_RELATIONS = frozenset(
    {"receipts", "charge_logs", "reversal_invoices", "bank_accounts", "locations", "party_locales"}
)

# Relations other modules model (relations.py registers them): include name -> (store, invoice) -> data.
INVOICE_RELATIONS: dict[str, Callable[[Store, dict[str, Any]], Any]] = {}


def _empty(name: str) -> dict[str, Any]:
    return {"data": [] if name in PLURAL_RELATIONS else None}


def tax_breakdown(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per tax class used by the lines: taxable base (after discount) and tax amount."""
    grouped: dict[tuple[str | None, Decimal], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for line in lines:
        key = (line.get("organization_tax_class_id"), Decimal(line.get("tax_rate") or 0))
        grouped[key][0] += line["sub_total"] - line["discount"]
        grouped[key][1] += line["tax_total"]
    return [
        {"organization_tax_class_id": class_id, "rate": rate, "taxable_amount": base, "amount": amount}
        for (class_id, rate), (base, amount) in grouped.items()
    ]


def render_invoice(store: Store, invoice: dict[str, Any], includes: list[str]) -> dict[str, Any]:
    out = public_invoice(invoice)
    lines = out.pop("line_items", [])
    org = invoice["organization_id"]
    related = {
        "invoice_prefix": ("invoice_prefix", invoice.get("organization_invoice_prefix_id")),
        "bank_account": ("bank_account", invoice.get("organization_bank_account_id")),
        "sender_user": ("organization_user", invoice.get("organization_sender_user_id")),
        "receiver_user": ("organization_user", invoice.get("organization_receiver_user_id")),
    }
    for name in includes:
        if name == "line_items":
            out["line_items"] = {"data": lines}
        elif name == "taxes":
            out["taxes"] = {"data": tax_breakdown(lines)}
        elif name == "tag_ids":
            out["tag_ids"] = invoice.get("tag_ids", [])
        elif name in related:
            kind, record_id = related[name]
            out[name] = {"data": store.get_record(kind, record_id, org) if record_id else None}
        elif name in INVOICE_RELATIONS:
            out[name] = {"data": INVOICE_RELATIONS[name](store, invoice)}
        else:
            out[name] = _empty(name)
    return out


def invoice_for_admin(invoice: dict[str, Any]) -> dict[str, Any]:
    """Admin view: every field, ``line_items`` as a plain list."""
    return public_invoice(invoice)


def render_record(store: Store, kind: str, record: dict[str, Any], includes: list[str]) -> dict[str, Any]:
    out = dict(record)
    org = record.get("organization_id")
    for name in includes:
        if name == "tag_ids":
            out["tag_ids"] = record.get("tag_ids", [])
        elif name == "organization":
            out[name] = {"data": store.get_record("organization", org) if org else None}
        elif name == "user_role":
            out[name] = {
                "data": store.get_record("user_role", record.get("organization_user_role_id") or "", org)
            }
        elif name in ("tax_class", "organization_tax_class"):
            out[name] = {
                "data": store.get_record("tax_class", record.get("organization_tax_class_id") or "", org)
            }
        elif name == "tax_rates_overview":
            rates = store.list_records("tax_rate", org)
            out[name] = {"data": [r for r in rates if r.get("organization_tax_class_id") == record["id"]]}
        else:
            out[name] = _empty(name)
    return out
