"""Build and validate the body of an invoice create or update from rendered operator arguments.

Invoice-level conveniences (everything else passes through to the API unchanged, then the schema decides):

* ``note: "text"`` -> ``note_lang_map: {<default_locale>: "text"}``
* ``due_in_days: 14`` -> ``due_at`` = ``issued_at`` (or the run's reference date, see
  :mod:`enlivy_provider.run_dates`) + 14 days; a create without ``issued_at`` is then issued on the reference
  date, so the invoice shows the day its due date counts from. A date from the run, not "today", keeps a
  retried task's body identical, which the server's idempotency check requires.
* ``issued_at`` / ``due_at`` / ``paid_at`` given as ``date``/``datetime`` objects (native rendering) become
  ISO strings.
* Defaults for a create: ``status: draft``, ``payment_method: bank_transfer``, ``delivery_method: email``.
  ``currency`` has no default: money needs an explicit currency.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from enlivy_provider.invoices.billing_period import (
    BillingPeriod,
    calendar_problem,
    parse_billing_period,
    parse_date,
)
from enlivy_provider.invoices.decimals import has_foreign_digits, whole_number
from enlivy_provider.invoices.errors import ValidationIssue, join_path, merge_issues
from enlivy_provider.invoices.line_items import normalise_line_items
from enlivy_provider.invoices.schema import schema_issues

CREATE_DEFAULTS: dict[str, Any] = {
    "status": "draft",
    "payment_method": "bank_transfer",
    "delivery_method": "email",
}
_DATE_FIELDS = ("issued_at", "due_at", "paid_at")
# Stands in for a customer looked up by email while the payload's shape is checked; never sent.
_UNRESOLVED_CUSTOMER = "org_user_unresolved"
_OPERATOR_ARGS = {
    "organization_receiver_user_id": "give the customer with the customer argument",
    "line_items": "give line items with the line_items argument",
    "billing_period": "give the billing period with the billing_period argument",
}


@dataclass(frozen=True)
class InvoiceDraft:
    """A validated create body still waiting for its customer id (when the customer is given by email)."""

    fields: dict[str, Any]
    billing_period: BillingPeriod | None

    def payload(self, customer_id: str) -> dict[str, Any]:
        return {"organization_receiver_user_id": customer_id, **self.fields}


def normalise_invoice_fields(
    invoice: object,
    *,
    default_locale: str = "en",
    reference_date: dt.date | None = None,
    path: str = "invoice",
    operator_args: Mapping[str, str] = _OPERATOR_ARGS,
) -> tuple[dict[str, Any], list[ValidationIssue]]:
    """Apply the conveniences above to the ``invoice`` argument; returns ``(fields, issues)``."""
    if invoice is None:
        return {}, []
    if not isinstance(invoice, Mapping):
        return {}, [
            ValidationIssue(path, f"must be an object of invoice fields (got {type(invoice).__name__})")
        ]
    issues: list[ValidationIssue] = []
    fields: dict[str, Any] = {}
    for key, value in invoice.items():
        key = str(key)
        if value is None:
            continue
        if key in operator_args:
            issues.append(
                ValidationIssue(join_path(path, key), f"is not an invoice field here: {operator_args[key]}")
            )
            continue
        fields[key] = value

    if "note" in fields:
        note = fields.pop("note")
        if not isinstance(note, str):
            issues.append(ValidationIssue(join_path(path, "note"), f"must be a string (got {note!r})"))
        elif isinstance(fields.get("note_lang_map"), Mapping):
            fields["note_lang_map"] = {default_locale: note, **fields["note_lang_map"]}
        else:
            fields.setdefault("note_lang_map", {default_locale: note})

    for key in _DATE_FIELDS:
        value = fields.get(key)
        if isinstance(value, dt.date):  # datetime is a date too
            fields[key] = value.isoformat()
        problem = calendar_problem(fields.get(key))  # the schema checks the shape only, not the calendar
        if problem:
            issues.append(ValidationIssue(join_path(path, key), problem))

    if "due_in_days" in fields:
        raw_days = fields.pop("due_in_days")
        days = _non_negative_int(raw_days)
        if days is None:
            digits = " written with the digits 0-9" if has_foreign_digits(str(raw_days)) else ""
            issues.append(
                ValidationIssue(
                    join_path(path, "due_in_days"), f"must be a whole number >= 0{digits} (got {raw_days!r})"
                )
            )
        elif "due_at" in fields:
            issues.append(
                ValidationIssue(join_path(path, "due_in_days"), "give either due_at or due_in_days")
            )
        else:
            base = parse_date(fields.get("issued_at")) if "issued_at" in fields else reference_date
            if base is None:
                base = dt.datetime.now(dt.timezone.utc).date()
            fields["due_at"] = (base + dt.timedelta(days=days)).isoformat()

    issued, due = parse_date(fields.get("issued_at")), parse_date(fields.get("due_at"))
    if issued and due and due < issued:
        issues.append(ValidationIssue(join_path(path, "due_at"), f"must not be before issued_at ({issued})"))
    return fields, issues


def build_invoice_draft(
    *,
    line_items: object,
    invoice: object = None,
    billing_period: BillingPeriod | None = None,
    customer_id: str | None = None,
    default_locale: str = "en",
    reference_date: dt.date | None = None,
    prefix: str = "",
) -> tuple[InvoiceDraft | None, list[ValidationIssue]]:
    """Normalise + schema-check a create body. ``prefix`` names the enclosing spec (``invoices[3]``)."""
    fields, issues = normalise_invoice_fields(
        _issued_on_reference_date(invoice, reference_date),
        default_locale=default_locale,
        reference_date=reference_date,
        path=join_path(prefix, "invoice"),
    )
    items, item_issues = normalise_line_items(
        line_items,
        default_locale=default_locale,
        billing_period=billing_period,
        path=join_path(prefix, "line_items"),
    )
    issues.extend(item_issues)
    body = {**CREATE_DEFAULTS, **fields, "line_items": items}
    candidate = {"organization_receiver_user_id": customer_id or _UNRESOLVED_CUSTOMER, **body}
    found = [_relocate(issue, prefix) for issue in schema_issues(candidate, "invoice.schema.json")]
    issues = merge_issues(issues, found)
    if issues:
        return None, issues
    return InvoiceDraft(fields=body, billing_period=billing_period), []


def build_update_payload(
    changes: object,
    *,
    default_locale: str = "en",
    reference_date: dt.date | None = None,
    path: str = "changes",
) -> tuple[dict[str, Any] | None, list[ValidationIssue]]:
    """Normalise + schema-check a partial update; ``line_items`` (if given) replace the invoice's lines."""
    if not isinstance(changes, Mapping) or not changes:
        return None, [ValidationIssue(path, "must be a non-empty object of invoice fields to change")]
    raw = dict(changes)
    raw_items = raw.pop("line_items", None)
    period_value = raw.pop("billing_period", None)
    issues: list[ValidationIssue] = []
    period: BillingPeriod | None = None
    if period_value is not None:
        period, period_issues = parse_billing_period(period_value, path=join_path(path, "billing_period"))
        issues.extend(period_issues)
    fields, field_issues = normalise_invoice_fields(
        raw,
        default_locale=default_locale,
        reference_date=reference_date,
        path=path,
        operator_args={"organization_receiver_user_id": "an invoice's customer cannot be changed here"},
    )
    issues.extend(field_issues)
    if raw_items is not None:
        items, item_issues = normalise_line_items(
            raw_items,
            default_locale=default_locale,
            billing_period=period,
            path=join_path(path, "line_items"),
        )
        issues.extend(item_issues)
        fields["line_items"] = items
    found = [issue.prefixed(path) for issue in schema_issues(fields, "invoice_update.schema.json")]
    issues = merge_issues(issues, found)
    return (None, issues) if issues else (fields, [])


def _issued_on_reference_date(invoice: object, reference_date: dt.date | None) -> object:
    """A create whose due date counts from the reference date (``due_in_days`` without ``issued_at``) is
    issued on that date: the invoice then states the day its payment term starts from."""
    if (
        reference_date is None
        or not isinstance(invoice, Mapping)
        or invoice.get("due_in_days") is None
        or invoice.get("issued_at") is not None
    ):
        return invoice
    return {**invoice, "issued_at": reference_date.isoformat()}


def _relocate(issue: ValidationIssue, prefix: str) -> ValidationIssue:
    """Schema paths are payload paths; report invoice-level fields under ``invoice.`` as the user wrote them."""
    head = issue.path.split(".", 1)[0].split("[", 1)[0]
    if head in ("line_items", ""):
        return issue.prefixed(prefix)
    if head == "organization_receiver_user_id":
        return ValidationIssue(join_path(prefix, "customer"), issue.message)
    return issue.prefixed(join_path(prefix, "invoice"))


def _non_negative_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str):
        return whole_number(value)
    return None
