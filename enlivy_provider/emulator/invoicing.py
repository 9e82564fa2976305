"""Invoice writes: create, partial update, soft delete, restore, e-mail, status changes, auto-pay, bulk.

Numbering choice (docs/enlivy-api-notes.md §21 leaves it open): an internal invoice gets its ``number`` when it is
created — or later updated — with any status other than ``draft``. The number is the prefix's
``current_number + 1`` (the invoice's ``organization_invoice_prefix_id``, else the organization's first
``standard`` prefix) and ``formatted_number`` is ``{prefix name}-{year of issued_at}-{number:04d}``, e.g.
``INV-2026-0001``; ``finalized_at`` is set at the same moment. Drafts have ``number`` and
``formatted_number`` null and ``will_number_be_auto_assigned`` true. External invoices keep the
``number`` they were sent (``formatted_number`` = ``number``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from enlivy_provider.emulator import enums
from enlivy_provider.emulator.common import ApiError, new_id, not_found, now_iso, validation_error
from enlivy_provider.emulator.rules import (
    EMAIL_RE,
    CheckedInvoice,
    InvoiceInvalid,
    check_invoice,
    invoice_totals,
)
from enlivy_provider.emulator.store import Store

PRIVATE_PREFIX = "_"  # document keys starting with "_" are internal and never answered


def blank_invoice(invoice_id: str, organization_id: str, now: str) -> dict[str, Any]:
    return {
        "id": invoice_id,
        "object": "invoice",
        "organization_id": organization_id,
        "organization_invoice_id": None,
        "organization_bank_account_id": None,
        "organization_invoice_prefix_id": None,
        "organization_sender_user_id": None,
        "organization_receiver_user_id": None,
        "organization_receiver_user_address_id": None,
        "organization_receiver_shipping_user_address_id": None,
        "organization_contract_id": None,
        "number": None,
        "formatted_number": None,
        "will_number_be_auto_assigned": True,
        "status": None,
        "source": "internal",
        "type": "standard",
        "direction": "outbound",
        "payment_method": None,
        "delivery_method": None,
        "delivery_method_information": None,
        "currency": None,
        "sub_total": None,
        "discount": None,
        "tax_total": None,
        "total": None,
        "issued_at": None,
        "due_at": None,
        "paid_at": None,
        "finalized_at": None,
        "note_lang_map": None,
        "peppol_project_reference": None,
        "peppol_purchase_order_reference": None,
        "peppol_sales_order_reference": None,
        "peppol_exchange_push_options": None,
        "peppol_exchange_scheduled_push_at": None,
        "peppol_exchange_scheduled_pushed_at": None,
        "peppol_exchanges_pushed": None,
        **SDK_ONLY_FIELDS,
        "receiver_has_custom_identity": False,
        "sender_has_custom_identity": False,
        "receiver_information": None,
        "receiver_country_code": None,
        "is_tax_charged": False,
        "is_downloadable": True,
        "file_extension": None,
        "bank_account_payment_qr_types": None,
        "created_at": now,
        "updated_at": now,
        "deleted_at": None,
        "tag_ids": [],
        "line_items": [],
    }


# Fields of the SDK's Invoice model (src/Organization/Invoice.php lines 10-74) that start null: a write sets
# the receiver's custom identity, the invoice's users fill in sender_country_code (as receiver_country_code),
# a charge (charging.py) fills payment_provider_reference and the charge_* fields. There is no sender
# identity override, e-invoicing schedule or stored payment method here. Every invoice carries them all,
# so a client always sees the SDK's field set.
SDK_ONLY_FIELDS: dict[str, Any] = dict.fromkeys(
    (
        "receiver_custom_identity_is_business", "receiver_custom_identity_organization_type",
        "receiver_custom_identity_name", "sender_custom_identity_is_business",
        "sender_custom_identity_organization_type", "sender_custom_identity_name",
        "receiver_organization_information", "sender_information", "sender_organization_information",
        "sender_country_code", "organization_user_payment_method_id", "payment_provider_reference",
        "charge_first_failed_at", "charge_retry_count", "next_charge_retry_at", "charge_retry_exhausted_at",
    )
)  # fmt: skip
_LATER_FIELDS = {
    **SDK_ONLY_FIELDS,
    "peppol_exchange_scheduled_push_at": None,
    "peppol_exchange_scheduled_pushed_at": None,
}


def public_invoice(invoice: dict[str, Any]) -> dict[str, Any]:
    """The stored document without internal keys; a document stored before a field existed (``--db``) gets
    the field as null."""
    public = {k: v for k, v in invoice.items() if not k.startswith(PRIVATE_PREFIX)}
    if not _LATER_FIELDS.keys() <= public.keys():
        public = {**_LATER_FIELDS, **public}
    return public


class InvoiceService:
    """All invoice writes go through here, serialised by one lock (numbering and idempotency stay exact)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.lock = threading.RLock()
        # Called with (stored version or None, new version) after every save of one invoice, still under
        # the lock: the event trail (trails.py) sees the changes in the order they were made.
        self.observers: list[Callable[[dict[str, Any] | None, dict[str, Any]], None]] = []

    # -- reads -----------------------------------------------------------------------------------------

    def get(self, organization_id: str, invoice_id: str, *, allow_deleted: bool = True) -> dict[str, Any]:
        invoice = self.store.get_invoice(invoice_id)
        if invoice is None or invoice["organization_id"] != organization_id:
            raise not_found("invoice")
        if not allow_deleted and invoice.get("deleted_at"):
            raise not_found("invoice")
        return invoice

    # -- helpers ---------------------------------------------------------------------------------------

    def _save(self, invoice: dict[str, Any]) -> None:
        before = self.store.get_invoice(invoice["id"]) if self.observers else None
        receiver = self.store.get_record(
            "organization_user", invoice.get("organization_receiver_user_id") or ""
        )
        note = invoice.get("note_lang_map") or {}
        parts = [
            invoice["id"],
            invoice.get("number") or "",
            invoice.get("formatted_number") or "",
            (receiver or {}).get("name") or "",
            (receiver or {}).get("email") or "",
            *(str(v) for v in (note.values() if isinstance(note, dict) else [])),
        ]
        since = invoice.get("_payable_since")
        payable_since = None if since is None else float(since)
        self.store.save_invoice(invoice, search_text=" ".join(parts), payable_since=payable_since)
        for observer in self.observers:
            observer(before, invoice)

    # The invoice actions (charge, refund, issue, tag: actions.py) write through these, under self.lock.
    def save(self, invoice: dict[str, Any]) -> None:
        self._save(invoice)

    def assign_number(self, invoice: dict[str, Any], now: str) -> None:
        self._assign_number(invoice, now)

    def _assign_number(self, invoice: dict[str, Any], now: str) -> None:
        if invoice["source"] == "external":
            invoice["formatted_number"] = invoice.get("number")
            invoice["will_number_be_auto_assigned"] = False
            return
        if invoice.get("number") is not None or invoice["status"] in enums.UNNUMBERED_STATUSES:
            return
        org = invoice["organization_id"]
        prefix = None
        if invoice.get("organization_invoice_prefix_id"):
            prefix = self.store.get_record("invoice_prefix", invoice["organization_invoice_prefix_id"], org)
        if prefix is None:
            prefix = next(
                (p for p in self.store.list_records("invoice_prefix", org) if p.get("type") == "standard"),
                None,
            )
        year = (invoice.get("issued_at") or now)[:4]
        if prefix is None:
            organization = self.store.get_record("organization", org) or {"id": org}
            number = int(organization.get("invoice_counter", 0)) + 1
            organization["invoice_counter"] = number
            self.store.put_record("organization", organization)
            formatted = str(number)
        else:
            number = int(prefix.get("current_number") or 0) + 1
            prefix["current_number"] = number
            prefix["updated_at"] = now
            self.store.put_record("invoice_prefix", prefix)
            invoice["organization_invoice_prefix_id"] = prefix["id"]
            formatted = f"{prefix['name']}-{year}-{number:04d}"
        invoice["number"] = str(number)
        invoice["formatted_number"] = formatted
        invoice["will_number_be_auto_assigned"] = False
        invoice["finalized_at"] = now

    @staticmethod
    def _apply_status_effects(invoice: dict[str, Any], previous_status: str | None, now: str) -> None:
        status = invoice["status"]
        if status == "paid" and not invoice.get("paid_at"):
            invoice["paid_at"] = now
        if status in enums.PAYABLE_STATUSES:
            if previous_status not in enums.PAYABLE_STATUSES or invoice.get("_payable_since") is None:
                invoice["_payable_since"] = time.time()
        else:
            invoice["_payable_since"] = None

    def _apply(self, invoice: dict[str, Any], checked: CheckedInvoice, now: str) -> None:
        previous_status = invoice.get("status")
        invoice.update(checked.fields)
        if checked.lines is not None:
            invoice["line_items"] = [
                {
                    "id": new_id("org_invli"),
                    "object": "invoice_line_item",
                    "organization_id": invoice["organization_id"],
                    "organization_invoice_id": invoice["id"],
                    **line,
                }
                for line in checked.lines
            ]
        invoice.update(invoice_totals(invoice["line_items"], checked.fields))
        invoice["is_tax_charged"] = invoice["tax_total"] > 0
        for party in ("receiver", "sender"):
            user = self.store.get_record(
                "organization_user", invoice.get(f"organization_{party}_user_id") or ""
            )
            if user and not invoice.get(f"{party}_country_code"):
                invoice[f"{party}_country_code"] = user.get("country_code")
        self._apply_status_effects(invoice, previous_status, now)
        self._assign_number(invoice, now)
        invoice["updated_at"] = now

    # -- writes ----------------------------------------------------------------------------------------

    def create(self, organization_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        # One store transaction: the prefix's number and the invoice are committed together or not at all.
        with self.lock, self.store.transaction():
            try:
                checked = check_invoice(self.store, organization_id, payload)
            except InvoiceInvalid as exc:
                raise validation_error(exc.errors) from exc
            now = now_iso()
            invoice = blank_invoice(new_id("org_inv"), organization_id, now)
            self._apply(invoice, checked, now)
            self._save(invoice)
            return invoice

    def update(self, organization_id: str, invoice_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        with self.lock, self.store.transaction():
            invoice = self.get(organization_id, invoice_id, allow_deleted=False)
            try:
                checked = check_invoice(self.store, organization_id, payload, existing=invoice)
            except InvoiceInvalid as exc:
                raise validation_error(exc.errors) from exc
            self._apply(invoice, checked, now_iso())
            self._save(invoice)
            return invoice

    def delete(self, organization_id: str, invoice_id: str) -> dict[str, Any]:
        with self.lock:
            invoice = self.get(organization_id, invoice_id, allow_deleted=False)
            invoice["deleted_at"] = invoice["updated_at"] = now_iso()
            self._save(invoice)
            return invoice

    def restore(self, organization_id: str, invoice_id: str) -> dict[str, Any]:
        with self.lock:
            invoice = self.get(organization_id, invoice_id)
            if invoice.get("deleted_at"):
                invoice["deleted_at"] = None
                invoice["updated_at"] = now_iso()
                self._save(invoice)
            return invoice

    def set_status(self, invoice_id: str, status: str) -> dict[str, Any]:
        """Admin: play the customer (``paid`` sets ``paid_at``)."""
        if status not in enums.INVOICE_STATUSES:
            raise validation_error({"status": ["The selected status is invalid."]})
        with self.lock:
            invoice = self.store.get_invoice(invoice_id)
            if invoice is None:
                raise not_found("invoice")
            now = now_iso()
            previous = invoice["status"]
            invoice["status"] = status
            if status == "paid":
                invoice["paid_at"] = now
            self._apply_status_effects(invoice, previous, now)
            self._assign_number(invoice, now)
            invoice["updated_at"] = now
            self._save(invoice)
            return invoice

    def auto_pay(self, after_seconds: float) -> int:
        """Mark invoices payable for ``after_seconds`` or longer as paid; returns how many."""
        due = self.store.payable_invoice_ids(time.time() - after_seconds)
        for invoice_id in due:
            self.set_status(invoice_id, "paid")
        return len(due)

    def email(self, organization_id: str, invoice_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        recipients: dict[str, list[str]] = {}
        for field in ("to", "cc"):
            value = payload.get(field)
            if value is None:
                recipients[field] = []
                continue
            values = [value] if isinstance(value, str) else value
            if not isinstance(values, list) or not all(
                isinstance(v, str) and EMAIL_RE.match(v) for v in values
            ):
                errors.setdefault(field, []).append(f"The {field} field must be a list of e-mail addresses.")
            else:
                recipients[field] = list(values)
        for field in ("subject", "message"):
            if payload.get(field) is not None and not isinstance(payload.get(field), str):
                errors.setdefault(field, []).append(f"The {field} field must be a string.")
        if errors:
            raise validation_error(errors)
        with self.lock:
            invoice = self.get(organization_id, invoice_id, allow_deleted=False)
            if invoice["status"] in enums.UNNUMBERED_STATUSES:
                raise validation_error({"status": ["A draft invoice cannot be sent; issue it first."]})
            if not recipients["to"]:
                receiver = self.store.get_record(
                    "organization_user", invoice["organization_receiver_user_id"] or ""
                )
                if not receiver or not receiver.get("email"):
                    raise validation_error({"to": ["The receiver has no e-mail address; send `to`."]})
                recipients["to"] = [receiver["email"]]
            now = now_iso()
            if invoice["status"] == "pending":
                invoice["status"] = "sent_email"
                invoice["updated_at"] = now
                self._save(invoice)
            log = {
                "id": new_id("org_inv_nl"),
                "object": "invoice_notification_log",
                "organization_id": organization_id,
                "organization_invoice_id": invoice_id,
                "type": "email",
                "to": recipients["to"],
                "cc": recipients["cc"],
                "subject": payload.get("subject")
                or f"Invoice {invoice.get('formatted_number') or invoice_id}",
                "message": payload.get("message"),
                "created_at": now,
                "updated_at": now,
                "deleted_at": None,
            }
            self.store.put_record("email", log)
            return log


__all__ = ["ApiError", "InvoiceService", "blank_invoice", "public_invoice"]
