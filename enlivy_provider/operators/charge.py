"""EnlivyChargeInvoiceOperator: charge the stored payment method of unpaid invoices, exactly once per invoice
and attempt (docs/operators.md).

The Idempotency-Key of each charge is derived from (organization, invoice, attempt number) — not from the run —
so a retried task, a re-run or a racing run replays the attempt's result instead of charging again; a new
attempt (a dunning policy's second try) is a new attempt number. A declined charge is a result, not an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from enlivy_provider.invoices.billing_identity import invoice_action_key
from enlivy_provider.invoices.errors import ValidationIssue
from enlivy_provider.invoices.writer import money_text
from enlivy_provider.operators.invoice_actions import EnlivyInvoiceActionOperator, check_max_concurrency

if TYPE_CHECKING:
    from enlivy_provider.client import EnlivyClient

#: The documented ``charge_result.status`` values an attempt can end in.
CHARGE_OUTCOMES = ("succeeded", "requires_action", "failed", "already_paid")
MAX_ATTEMPT = 1000


class EnlivyChargeInvoiceOperator(EnlivyInvoiceActionOperator):
    """Charge the stored payment method of each unpaid invoice, once per invoice and attempt.

    :param invoice_ids: an id, a list of ids or summaries, the bulk operator's result, or an XComArg of one.
    :param attempt: which attempt of your retry policy this is (1, 2, ...): one charge per invoice and attempt,
        whatever the runs; templated (``"{{ params.attempt }}"`` renders to a string of digits, accepted).
    :param fail_on_failed_charge: fail the task (without retries) when a charge was declined; by default a
        declined charge is reported and the task succeeds.
    :param max_concurrency: parallel charges (threads sharing one pooled client).

    Invoices not found, deleted, not issued, proformas, cancelled or already paid are skipped with the reason.
    Returns ``{"invoices": [...], "counts", "by_outcome"}``; an entry's ``outcome`` is the charge's
    ``succeeded``, ``requires_action`` (with ``next_action_url``: the customer must authenticate),
    ``failed`` (with ``error_code``, ``error_message``) or ``already_paid``, or ``skipped`` (with ``reason``);
    ``replayed`` says Enlivy answered with the result of an earlier request of this attempt.
    """

    action: ClassVar[str] = "charge"
    template_fields: Sequence[str] = ("invoice_ids", "attempt")
    template_fields_renderers: ClassVar[dict[str, str]] = {"invoice_ids": "json"}

    def __init__(
        self,
        *,
        invoice_ids: Any,
        attempt: int | str = 1,
        fail_on_failed_charge: bool = False,
        max_concurrency: int = 4,
        enlivy_conn_id: str = "enlivy_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.invoice_ids = invoice_ids
        self.attempt = attempt
        self.fail_on_failed_charge = fail_on_failed_charge
        self.max_concurrency = check_max_concurrency(max_concurrency)
        self.enlivy_conn_id = enlivy_conn_id

    def _attempt_number(self) -> int | None:
        value = self.attempt
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ATTEMPT:
            return None
        return value

    def _check_arguments(self) -> list[ValidationIssue]:
        if self._attempt_number() is None:
            return [
                ValidationIssue(
                    "attempt", f"must be a whole number from 1 to {MAX_ATTEMPT} (got {self.attempt!r})"
                )
            ]
        return []

    def _extra_skip_reason(self, record: Mapping[str, Any]) -> str | None:
        if record.get("type") == "proforma":
            return "a proforma cannot be charged (issue an invoice from it first)"
        return None

    def _act(self, client: EnlivyClient, organization_id: str, record: Mapping[str, Any]) -> dict[str, Any]:
        invoice_id = str(record["id"])
        attempt = self._attempt_number()
        key = invoice_action_key(organization_id, invoice_id, "charge", f"attempt:{attempt}")
        answer = client.charge_invoice(invoice_id, idempotency_key=key)
        result = answer.result
        return {
            "invoice_id": invoice_id,
            "outcome": str(result.get("status") or "unknown"),
            "attempt": attempt,
            "replayed": answer.replayed,
            "amount": money_text(answer.invoice.get("total")),
            "currency": answer.invoice.get("currency"),
            "error_code": result.get("error_code"),
            "error_message": result.get("error_message"),
            "next_action_url": result.get("next_action_url"),
            "provider_reference": result.get("provider_reference"),
            "invoice_status": answer.invoice.get("status"),
            "idempotency_key": key,
        }

    def _failures(self, result: Mapping[str, Any]) -> str | None:
        failed = [e for e in result["invoices"] if e["outcome"] == "failed"]
        if not self.fail_on_failed_charge or not failed:
            return None
        shown = ", ".join(
            f"{e['invoice_id']} ({e.get('error_code') or 'no error code'})" for e in failed[:20]
        )
        return f"{len(failed)} charge(s) failed and fail_on_failed_charge=True: {shown}"
