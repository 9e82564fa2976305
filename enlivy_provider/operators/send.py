"""EnlivySendInvoiceOperator: e-mail invoices, at most once per invoice and purpose (docs/operators.md).

The Idempotency-Key of each e-mail is derived from (organization, invoice, purpose) — not from the run — so a
retried task, a re-run days later or two runs racing all send the same key, and Enlivy sends one e-mail and
replays its answer to the others (reported as ``already_sent``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from enlivy_provider.invoices.billing_identity import invoice_action_key
from enlivy_provider.invoices.errors import ValidationIssue
from enlivy_provider.operators.invoice_actions import EnlivyInvoiceActionOperator, check_max_concurrency

if TYPE_CHECKING:
    from enlivy_provider.client import EnlivyClient

PURPOSES = ("first_send", "reminder")
# A reminder step becomes part of the key ("reminder:7d"): short, printable, no spaces.
_STEP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class EnlivySendInvoiceOperator(EnlivyInvoiceActionOperator):
    """E-mail one or many invoices through Enlivy, at most once per invoice and purpose.

    :param invoice_ids: an id, a list of ids or summaries, the bulk operator's result, or an XComArg of one.
    :param purpose: ``"first_send"`` (the invoice itself) or ``"reminder"`` (then ``reminder_step`` names which
        reminder, e.g. ``"7d"``): one e-mail per invoice and purpose, ever.
    :param reminder_step: the reminder's name within its cadence (``"7d"``, ``"overdue-2"``); only with
        ``purpose="reminder"``.
    :param to: recipient address(es); default: the invoice's receiver (Enlivy's choice).
    :param cc: copy address(es).
    :param subject: the e-mail's subject (default: Enlivy's).
    :param message: the e-mail's text (default: Enlivy's).
    :param max_concurrency: parallel e-mails (threads sharing one pooled client).

    Invoices not found, deleted, not issued (draft, approval_required, scheduled), cancelled or already paid
    are skipped with the reason. Returns ``{"invoices": [{"invoice_id", "outcome", ...}], "counts",
    "by_outcome"}`` with outcomes ``sent``, ``already_sent`` and ``skipped``.
    """

    action: ClassVar[str] = "e-mail"
    template_fields: Sequence[str] = (
        "invoice_ids",
        "purpose",
        "reminder_step",
        "to",
        "cc",
        "subject",
        "message",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"invoice_ids": "json"}

    def __init__(
        self,
        *,
        invoice_ids: Any,
        purpose: str = "first_send",
        reminder_step: str | None = None,
        to: str | Sequence[str] | None = None,
        cc: str | Sequence[str] | None = None,
        subject: str | None = None,
        message: str | None = None,
        max_concurrency: int = 4,
        enlivy_conn_id: str = "enlivy_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.invoice_ids = invoice_ids
        self.purpose = purpose
        self.reminder_step = reminder_step
        self.to = to
        self.cc = cc
        self.subject = subject
        self.message = message
        self.max_concurrency = check_max_concurrency(max_concurrency)
        self.enlivy_conn_id = enlivy_conn_id

    def _check_arguments(self) -> list[ValidationIssue]:
        issues: list[ValidationIssue] = []
        if self.purpose not in PURPOSES:
            issues.append(
                ValidationIssue("purpose", f"must be one of {', '.join(PURPOSES)} (got {self.purpose!r})")
            )
        elif self.purpose == "reminder":
            if not isinstance(self.reminder_step, str) or not _STEP.match(self.reminder_step):
                issues.append(
                    ValidationIssue(
                        "reminder_step",
                        "a reminder needs its step's name: 1-64 letters, digits, '_', '.', ':' or '-' "
                        f"(e.g. '7d'; got {self.reminder_step!r})",
                    )
                )
        elif self.reminder_step is not None:
            issues.append(ValidationIssue("reminder_step", "is only for purpose='reminder'"))
        for name in ("to", "cc"):
            issues += _address_issues(name, getattr(self, name))
        for name in ("subject", "message"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                issues.append(ValidationIssue(name, f"must be a non-empty string or None (got {value!r})"))
        return issues

    def _purpose_tag(self) -> str:
        return f"reminder:{self.reminder_step}" if self.purpose == "reminder" else "first_send"

    def _act(self, client: EnlivyClient, organization_id: str, record: Mapping[str, Any]) -> dict[str, Any]:
        from enlivy_provider.client import EnlivyConflictError

        invoice_id = str(record["id"])
        purpose = self._purpose_tag()
        key = invoice_action_key(organization_id, invoice_id, "email", purpose)
        entry: dict[str, Any] = {"invoice_id": invoice_id, "purpose": purpose, "idempotency_key": key}
        try:
            answer = client.send_invoice_email_answer(
                invoice_id, self.to, self.cc, self.subject, self.message, idempotency_key=key
            )
        except EnlivyConflictError:
            # The key was used with another body (recipients, subject or message changed since): Enlivy keeps
            # the first request of the key, so this purpose's e-mail was asked for before; never send twice.
            return {
                **entry,
                "outcome": "already_sent",
                "note": "sent earlier with other recipients, subject or message; not sent again",
            }
        outcome = "already_sent" if answer.replayed else "sent"
        return {**entry, "outcome": outcome, "notification_log_id": answer.record.get("id")}


def _address_issues(name: str, value: Any) -> list[ValidationIssue]:
    if value is None:
        return []
    addresses = [value] if isinstance(value, str) else value
    if not isinstance(addresses, Sequence) or isinstance(addresses, str) or not addresses:
        return [ValidationIssue(name, f"must be an e-mail address or a list of them (got {value!r})")]
    return [
        ValidationIssue(
            f"{name}[{index}]" if not isinstance(value, str) else name, f"not an e-mail address: {a!r}"
        )
        for index, a in enumerate(addresses)
        if not isinstance(a, str) or not _EMAIL.match(a.strip())
    ]
