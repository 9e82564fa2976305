"""Invoice includes backed by the action records: ``receipts``, ``charge_logs``, ``latest_charge_log``,
``reversal_invoices`` and ``parent_invoice`` (registered into ``resources.INVOICE_RELATIONS``).

``reversal_invoices`` / ``parent_invoice`` link a refunded invoice and its reversals both ways
(docs/organization/invoices.md, "Refund & Issuance"); ``parent_invoice`` is the invoice named by
``organization_invoice_id`` (a reversal's original, or the proforma an invoice was issued from).
"""

from __future__ import annotations

from typing import Any

from enlivy_provider.emulator.resources import INVOICE_RELATIONS, render_invoice
from enlivy_provider.emulator.store import Store


def _of_invoice(store: Store, kind: str, invoice: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        r
        for r in store.list_records(kind, invoice["organization_id"])
        if r.get("organization_invoice_id") == invoice["id"] and not r.get("deleted_at")
    ]


def _charge_logs(store: Store, invoice: dict[str, Any]) -> list[dict[str, Any]]:
    return _of_invoice(store, "charge_log", invoice)


def _latest_charge_log(store: Store, invoice: dict[str, Any]) -> dict[str, Any] | None:
    logs = _charge_logs(store, invoice)
    return logs[-1] if logs else None


def _reversal_invoices(store: Store, invoice: dict[str, Any]) -> list[dict[str, Any]]:
    found = (store.get_invoice(i) for i in invoice.get("_reversal_invoice_ids") or [])
    return [render_invoice(store, reversal, []) for reversal in found if reversal is not None]


def _parent_invoice(store: Store, invoice: dict[str, Any]) -> dict[str, Any] | None:
    parent_id = invoice.get("organization_invoice_id")
    parent = store.get_invoice(parent_id) if parent_id else None
    return render_invoice(store, parent, []) if parent else None


INVOICE_RELATIONS.update(
    {
        "receipts": lambda store, invoice: _of_invoice(store, "receipt", invoice),
        "charge_logs": _charge_logs,
        "latest_charge_log": _latest_charge_log,
        "reversal_invoices": _reversal_invoices,
        "parent_invoice": _parent_invoice,
    }
)
