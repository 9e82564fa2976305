"""The invoices' read-only logs: charge logs, notification logs (the e-mails sent) and network exchanges.

Shapes follow the SDK models ``InvoiceChargeLog``, ``InvoiceNotificationLog`` (plus ``sent_to`` /
``sent_cc`` from the invoices guide) and ``InvoiceNetworkExchange``; filters and includes follow their
services. Notification logs are the records ``POST /invoices/{id}/email`` stores (kind ``email``),
shown in the notification-log shape. Network exchanges come only from the admin API here: the emulator
does not push to PEPPOL/ANAF.
"""

from __future__ import annotations

from typing import Any

from enlivy_provider.emulator.common import new_id, now_iso, validation_error
from enlivy_provider.emulator.listing import QueryParams
from enlivy_provider.emulator.record_lists import ListSpec, Predicate, register
from enlivy_provider.emulator.resources import render_invoice
from enlivy_provider.emulator.store import Store

CHARGE_STATUSES = ("in_progress", "succeeded", "failed", "requires_action", "already_paid")
NOTIFICATION_TYPES = (
    "network_exchange_auto_push", "email", "email_auto_send", "email_reminder_upcoming", "email_reminder_overdue",
)  # fmt: skip
EXCHANGE_STATUSES = (
    "pending", "change_required", "processing", "rejected", "rejected_at_exchange", "failed",
    "failed_credentials_expired", "success", "success_pending_archive", "success_in_exchange_queue",
)  # fmt: skip
INVOICE_STATES = ("any", "attached", "unattached")

CHARGE_LOGS = register(
    ListSpec(
        kind="charge_log",
        includes=frozenset({"invoice", "payment_method", "initiated_by_organization_user"}),
        equals={"organization_invoice_id": "organization_invoice_id"},
        enums={"status": ("status", dict.fromkeys(CHARGE_STATUSES))},
    )
)
NOTIFICATION_LOGS = register(
    ListSpec(
        kind="notification_log",
        includes=frozenset({"deleted_by_user", "organization"}),
        equals={"organization_invoice_id": "organization_invoice_id"},
        enums={"types": ("type", dict.fromkeys(NOTIFICATION_TYPES))},
        date_pairs=("created_at",),
        open_ended_dates=True,
    )
)
NETWORK_EXCHANGES = register(
    ListSpec(
        kind="network_exchange",
        includes=frozenset({"organization", "parsed_data", "invoice", "tag_ids"}),
        equals={"organization_invoice_id": "organization_invoice_id"},
        enums={"status": ("status", dict.fromkeys(EXCHANGE_STATUSES))},
        date_pairs=("created_at", "updated_at"),
        other_filters=frozenset({"invoice_state", "organization_user_id"}),  # exchange_predicates
    )
)


def _invoice(store: Store, invoice_id: str | None) -> dict[str, Any] | None:
    invoice = store.get_invoice(invoice_id) if invoice_id else None
    return render_invoice(store, invoice, []) if invoice else None


def render_charge_log(store: Store, log: dict[str, Any], includes: list[str]) -> dict[str, Any]:
    out = dict(log)
    for name in includes:
        out[name] = {"data": _invoice(store, log["organization_invoice_id"]) if name == "invoice" else None}
    return out


def notification_log(store: Store, email: dict[str, Any]) -> dict[str, Any]:
    """A stored e-mail in the ``invoice_notification_log`` shape (the stored fields stay, e.g. ``subject``)."""
    to, cc = list(email.get("to") or []), list(email.get("cc") or [])
    invoice = store.get_invoice(email.get("organization_invoice_id") or "") or {}
    return {
        **email,
        "object": "invoice_notification_log",
        "type": email.get("type") or "email",
        "sent_by_user_id": None,
        "sent_to_organization_user_id": invoice.get("organization_receiver_user_id"),
        "recipient_email": to[0] if to else None,
        "sent_to": ", ".join(to) or None,
        "sent_cc": cc,
        "status": "sent",
        "sent_at": email.get("created_at"),
        "error_message": None,
        "deleted_by_user_id": None,
    }


def render_notification_log(store: Store, log: dict[str, Any], includes: list[str]) -> dict[str, Any]:
    out = dict(log)
    for name in includes:
        out[name] = {
            "data": store.get_record("organization", log["organization_id"])
            if name == "organization"
            else None
        }
    return out


def exchange_predicates(store: Store, params: QueryParams) -> list[Predicate]:
    """``invoice_state`` (``any``, ``attached``: has an invoice, ``unattached``) and ``organization_user_id``
    (exchanges of that user's invoices) — both need more than one field's value."""
    predicates: list[Predicate] = []
    state = params.one("invoice_state")
    if state is not None:
        if state not in INVOICE_STATES:
            raise validation_error(
                {"invoice_state": [f"The invoice state must be one of {', '.join(INVOICE_STATES)}."]}
            )
        if state != "any":
            attached = state == "attached"
            predicates.append(lambda e: bool(e.get("organization_invoice_id")) is attached)
    if params.has("organization_user_id"):
        users = set(params.many("organization_user_id"))

        def of_user(exchange: dict[str, Any]) -> bool:
            invoice = store.get_invoice(exchange.get("organization_invoice_id") or "")
            return invoice is not None and invoice.get("organization_receiver_user_id") in users

        predicates.append(of_user)
    return predicates


def render_network_exchange(store: Store, exchange: dict[str, Any], includes: list[str]) -> dict[str, Any]:
    out = {k: v for k, v in exchange.items() if not k.startswith("_")}
    for name in includes:
        if name == "invoice":
            out[name] = {"data": _invoice(store, exchange.get("organization_invoice_id"))}
        elif name == "organization":
            out[name] = {"data": store.get_record("organization", exchange["organization_id"])}
        elif name == "tag_ids":
            out[name] = exchange.get("tag_ids", [])
        else:
            out[name] = {"data": None}
    return out


def build_network_exchange(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """Admin: an exchange record (the emulator pushes nothing to an e-invoicing network itself)."""
    errors: dict[str, list[str]] = {}
    organization_id = body.get("organization_id")
    invoice_id = body.get("invoice_id")
    invoice = store.get_invoice(invoice_id) if isinstance(invoice_id, str) else None
    if invoice_id is not None and invoice is None:
        errors["invoice_id"] = ["Unknown invoice."]
    if invoice is not None:
        organization_id = organization_id or invoice["organization_id"]
    if not isinstance(organization_id, str) or store.get_record("organization", organization_id) is None:
        errors["organization_id"] = ["Unknown organization (give organization_id or invoice_id)."]
    status = body.get("status", "success")
    if status not in EXCHANGE_STATUSES:
        errors["status"] = [f"The status must be one of {', '.join(EXCHANGE_STATUSES)}."]
    institution = body.get("institution_id", "peppol")
    if not isinstance(institution, str):
        errors["institution_id"] = ["The institution_id must be a string."]
    direction = body.get("direction", "outbound")
    if direction not in ("inbound", "outbound"):
        errors["direction"] = ["The direction must be inbound or outbound."]
    if errors:
        raise validation_error(errors)
    now = now_iso()
    return {
        "id": new_id("org_inv_nx"),
        "object": "invoice_network_exchange",
        "organization_id": organization_id,
        "organization_invoice_id": invoice_id,
        "institution_id": institution,
        "institution_exchange_id": body.get("institution_exchange_id"),
        "institution_exchange_message_id": None,
        "institution_exchange_message_created_at": None,
        "exchange_file_name": None,
        "exchange_file_signature_name": None,
        "exchange_file_pdf_name": None,
        "direction": direction,
        "status": status,
        "response_json": body.get("response_json"),
        "created_at": now,
        "updated_at": now,
        "deleted_at": None,
        "deleted_by_user_id": None,
        "tag_ids": [],
    }
