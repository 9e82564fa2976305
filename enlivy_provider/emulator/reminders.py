"""``GET /invoices/scheduled-reminders``: the payment reminders still to come, projected on every read.

The SDK (``InvoiceScheduledReminderService``; docs/organization/invoices.md "Payment Reminders"): rows have
no ``id`` and carry ``organization_invoice_id``, ``organization_invoice_number``, ``type``
(``email_reminder_upcoming`` | ``email_reminder_overdue``), ``scheduled_for``, ``sequence``, ``due_at``,
``total``, ``currency``, ``recipient_email``; filters ``from`` (default now), ``to`` (default 30 days out,
capped at 366 days from now), ``type``, ``organization_invoice_id``; ``meta`` echoes the window walked
(``from``, ``to``, ``count``) and there is no pagination.

The emulator has no reminder settings, so one cadence applies (emulator choice): an upcoming reminder 3
days before ``due_at`` and overdue reminders 1, 7 and 14 days after it, each at 05:00 UTC — the SDK's own
example schedules the upcoming one at 05:00 three days before the due date. Only unpaid, live invoices with
a due date and a receiver e-mail are chased; ``sequence`` counts reminders of that type already sent
(notification logs of that type) plus the ones still to come before it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from enlivy_provider.emulator.common import iso, utc_now, validation_error
from enlivy_provider.emulator.dates import parse_moment
from enlivy_provider.emulator.listing import QueryParams
from enlivy_provider.emulator.store import Store

UPCOMING, OVERDUE = "email_reminder_upcoming", "email_reminder_overdue"
CADENCE: tuple[tuple[str, int], ...] = ((UPCOMING, -3), (OVERDUE, 1), (OVERDUE, 7), (OVERDUE, 14))
SEND_HOUR = 5
DEFAULT_WINDOW = timedelta(days=30)
MAX_AHEAD = timedelta(days=366)
# The projection's only parameters (SDK InvoiceScheduledReminderService: anything else is refused).
FILTERS = frozenset({"from", "to", "type", "organization_invoice_id"})
CHASED_STATUSES = frozenset({"pending", "sent_email", "sent_physical", "payment_partial", "overdue"})


def _moment(params: QueryParams, name: str, errors: dict[str, list[str]]) -> datetime | None:
    raw = params.one(name)
    if raw is None:
        return None
    parsed = parse_moment(raw)
    if parsed is None:
        errors.setdefault(name, []).append(f"The {name} must be a date or an ISO 8601 datetime.")
        return None
    return parsed[0]


def window(params: QueryParams, now: datetime) -> tuple[datetime, datetime]:
    errors: dict[str, list[str]] = {}
    for name in sorted(set(params.values) - FILTERS):
        errors[name] = [f"The {name} filter is not one the API lists for scheduled reminders."]
    start = _moment(params, "from", errors) or now
    end = _moment(params, "to", errors) or start + DEFAULT_WINDOW
    end = min(end, now + MAX_AHEAD)
    if not errors and end < start:
        errors["to"] = ["The to must be a date after or equal to from (and at most 366 days from now)."]
    kind = params.one("type")
    if kind is not None and kind not in (UPCOMING, OVERDUE):
        errors["type"] = [f"The type must be {UPCOMING} or {OVERDUE}."]
    if errors:
        raise validation_error(errors)
    return start, end


def project(
    store: Store, organization_id: str, params: QueryParams
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(rows in ``scheduled_for`` order, meta)."""
    now = utc_now().replace(microsecond=0)
    start, end = window(params, now)
    kind = params.one("type")
    invoice_ids = set(params.many("organization_invoice_id")) or None
    sent: dict[tuple[str, str], int] = {}
    for log in store.list_records("email", organization_id):
        key = (log.get("organization_invoice_id") or "", log.get("type") or "email")
        sent[key] = sent.get(key, 0) + 1
    rows = []
    for invoice in store.all_invoices(organization_id):
        if (
            invoice.get("deleted_at")
            or invoice.get("status") not in CHASED_STATUSES
            or invoice.get("type") == "reversal"
            or not invoice.get("due_at")
            or (invoice_ids is not None and invoice["id"] not in invoice_ids)
        ):
            continue
        receiver = store.get_record("organization_user", invoice.get("organization_receiver_user_id") or "")
        if not receiver or not receiver.get("email"):
            continue
        due_moment = parse_moment(invoice["due_at"])
        if due_moment is None:
            continue
        due_day = due_moment[0].replace(hour=0, minute=0, second=0, microsecond=0)
        ordinal: dict[str, int] = {}
        for reminder_type, days in CADENCE:
            when = due_day + timedelta(days=days, hours=SEND_HOUR)
            if when < now:  # its moment has passed: the emulator sends no reminders, so it is simply gone
                continue
            ordinal[reminder_type] = ordinal.get(reminder_type, 0) + 1
            if not start <= when <= end or (kind is not None and reminder_type != kind):
                continue
            rows.append(
                {
                    "organization_invoice_id": invoice["id"],
                    "organization_invoice_number": invoice.get("formatted_number") or invoice.get("number"),
                    "type": reminder_type,
                    "scheduled_for": iso(when),
                    "sequence": sent.get((invoice["id"], reminder_type), 0) + ordinal[reminder_type],
                    "due_at": invoice["due_at"],
                    "total": invoice.get("total"),
                    "currency": invoice.get("currency"),
                    "recipient_email": receiver["email"],
                }
            )
    rows.sort(key=lambda row: (row["scheduled_for"], row["organization_invoice_id"]))
    return rows, {"from": iso(start.astimezone(timezone.utc)), "to": iso(end), "count": len(rows)}
