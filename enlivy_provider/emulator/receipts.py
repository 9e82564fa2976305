"""Receipts: ``POST /invoices/{id}/issue-receipt`` makes one; ``GET /receipts[/{id}]`` lists and reads them.

The SDK: ``issueReceipt()`` returns a ``Receipt`` (``object: receipt``) with a ``receipt_number``; the
receipt model and ``ReceiptService`` filters/includes. Emulator choices (inference): the receipt copies the
invoice's parties, amounts, currency, direction and status ("receipts use the same status values as
invoices"), ``source`` is ``generated``, ``is_reverse`` is true for a reversal invoice's receipt, and the
number is ``RCP-{year}-{n:04d}`` from a per-organization counter. Drafts and proformas get no receipt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from enlivy_provider.emulator import enums
from enlivy_provider.emulator.common import new_id, now_iso, validation_error
from enlivy_provider.emulator.invoicing import public_invoice
from enlivy_provider.emulator.record_lists import ListSpec, register
from enlivy_provider.emulator.resources import render_invoice
from enlivy_provider.emulator.store import Store

if TYPE_CHECKING:
    from enlivy_provider.emulator.state import EmulatorState

RECEIPTS = register(
    ListSpec(
        kind="receipt",
        includes=frozenset(
            {
                "organization",
                "invoice",
                "bank_account",
                "sender_user",
                "receiver_user",
                "deleted_by_user",
                "tag_ids",
                "taxes",
                "receipt_prefix",
                "contract",
            }
        ),
        equals={
            "bank_account_id": "organization_bank_account_id",
            "organization_invoice_id": "organization_invoice_id",
            "organization_receiver_user_id": "organization_receiver_user_id",
            "organization_sender_user_id": "organization_sender_user_id",
            "organization_user_id": "organization_receiver_user_id",
        },
        enums={
            "status": ("status", dict.fromkeys(enums.INVOICE_STATUSES)),
            "direction": ("direction", dict.fromkeys(enums.INVOICE_DIRECTIONS)),
            "currency": ("currency", dict.fromkeys(enums.CURRENCIES)),
        },
        date_pairs=("paid_at", "issued_at", "created_at", "updated_at"),
        flags={
            "has_receiver_user": lambda r: bool(r.get("organization_receiver_user_id")),
            "has_sender_user": lambda r: bool(r.get("organization_sender_user_id")),
        },
        refused={"total": "it does not filter receipts by amount"},
    )
)
_COPIED = (
    "organization_bank_account_id", "organization_sender_user_id", "organization_receiver_user_id",
    "organization_contract_id", "status", "direction", "currency", "sub_total", "discount", "tax_total",
    "total", "is_tax_charged", "due_at", "paid_at",
)  # fmt: skip


def issue_receipt(state: EmulatorState, organization_id: str, invoice_id: str) -> dict[str, Any]:
    invoices, store = state.invoices, state.store
    with invoices.lock:
        invoice = invoices.get(organization_id, invoice_id, allow_deleted=False)
        if invoice["status"] in enums.UNNUMBERED_STATUSES or invoice.get("type") == "proforma":
            raise validation_error(
                {"invoice": ["A receipt can only be issued for an issued invoice (not a draft or proforma)."]}
            )
        now = now_iso()
        organization = store.get_record("organization", organization_id) or {"id": organization_id}
        number = int(organization.get("receipt_counter", 0)) + 1
        organization["receipt_counter"] = number
        store.put_record("organization", organization)
        source = public_invoice(invoice)
        receipt: dict[str, Any] = {
            "id": new_id("org_rcpt"),
            "object": "receipt",
            "organization_id": organization_id,
            "organization_receipt_prefix_id": None,
            "organization_invoice_id": invoice_id,
            **{name: source.get(name) for name in _COPIED},
            "receipt_number": f"RCP-{now[:4]}-{number:04d}",
            "source": "generated",
            "is_reverse": invoice.get("type") == "reversal",
            "file_extension": None,
            "has_file": False,
            "issued_at": now,
            "finalized_at": now,
            "created_at": now,
            "updated_at": now,
            "deleted_at": None,
            "deleted_by_user_id": None,
            "tag_ids": [],
        }
        store.put_record("receipt", receipt)
        return receipt


def render_receipt(store: Store, receipt: dict[str, Any], includes: list[str]) -> dict[str, Any]:
    out = dict(receipt)
    org = receipt["organization_id"]
    related = {
        "organization": ("organization", org),
        "bank_account": ("bank_account", receipt.get("organization_bank_account_id")),
        "sender_user": ("organization_user", receipt.get("organization_sender_user_id")),
        "receiver_user": ("organization_user", receipt.get("organization_receiver_user_id")),
    }
    for name in includes:
        if name == "tag_ids":
            out["tag_ids"] = receipt.get("tag_ids", [])
        elif name == "invoice":
            invoice = store.get_invoice(receipt.get("organization_invoice_id") or "")
            out["invoice"] = {"data": render_invoice(store, invoice, []) if invoice else None}
        elif name in related:
            kind, record_id = related[name]
            out[name] = {"data": store.get_record(kind, record_id) if record_id else None}
        else:
            out[name] = {"data": [] if name == "taxes" else None}
    return out
