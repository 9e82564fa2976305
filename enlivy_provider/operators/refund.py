"""Refund an invoice — all of it, or some quantities of its lines — exactly once (docs/operators.md).

The refund is identified by what it is, not by the run that sends it: (organization, invoice, reason). Its
Idempotency-Key is derived from those (:func:`enlivy_provider.invoices.refunds.refund_key`), so a retry, a
re-run, a backfill or a racing copy of the task sends the same key and the server keeps one reversal. The
input is checked against the invoice (its lines and earlier reversals) before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from enlivy_provider.invoices.errors import ValidationIssue, raise_if_issues
from enlivy_provider.invoices.refunds import (
    check_reason,
    left_to_refund,
    parse_refund_lines,
    plan_refund,
    refund_key,
    refundable_issue,
)
from enlivy_provider.invoices.writer import money_text
from enlivy_provider.operators.invoices import _EnlivyInvoiceOperator, _invoice_id, enlivy_errors

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from enlivy_provider.client import EnlivyClient

_AMOUNTS = ("sub_total", "discount", "tax_total", "total")


class EnlivyRefundInvoiceOperator(_EnlivyInvoiceOperator):
    """Issue the reversal (credit note) of an invoice, in full or for some line quantities, exactly once.

    :param invoice_id: ``"org_inv_..."``, or a create operator's summary (its ``id``), e.g. an XComArg.
    :param reason: why the invoice is refunded; sent to Enlivy and, with the organization and the invoice,
        what identifies this refund: every run of the task with the same reason is the same refund.
    :param line_items: ``None`` (default) refunds everything not refunded yet; else a list of
        ``{"line_item_id": "org_invli_...", "quantity": 1}`` or ``{"order": 2, "quantity": "0.5"}``
        (``order``: the line's 1-based position on the invoice).
    :param note_lang_map: the reversal's note per locale (``{"en": "..."}``).
    :param organization_invoice_prefix_id: a prefix of type ``reversal`` to number the reversal with.
    """

    template_fields: Sequence[str] = ("invoice_id", "reason", "line_items", "note_lang_map")
    template_fields_renderers: ClassVar[dict[str, str]] = {"line_items": "json", "note_lang_map": "json"}

    def __init__(
        self,
        *,
        invoice_id: Any,
        reason: str,
        line_items: Any = None,
        note_lang_map: Mapping[str, str] | None = None,
        organization_invoice_prefix_id: str | None = None,
        enlivy_conn_id: str = "enlivy_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.invoice_id = invoice_id
        self.reason = reason
        self.line_items = line_items
        self.note_lang_map = note_lang_map
        self.organization_invoice_prefix_id = organization_invoice_prefix_id
        self.enlivy_conn_id = enlivy_conn_id

    def _run(self, context: Context) -> dict[str, Any]:
        invoice_id, issues = _invoice_id(self.invoice_id)
        reason, found = check_reason(self.reason)
        issues += found
        rows, found = parse_refund_lines(self.line_items)
        issues += found
        if self.note_lang_map is not None and not (
            isinstance(self.note_lang_map, Mapping)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in self.note_lang_map.items())
        ):
            issues.append(ValidationIssue("note_lang_map", "must map locales to texts ({'en': '...'})"))
        with enlivy_errors(f"task {self.task_id}"):
            raise_if_issues(issues, subject="refund input")
            assert invoice_id is not None and reason is not None
            hook = self._hook()
            client = hook.get_client()
            key = refund_key(str(hook.organization_id), invoice_id, reason)
            body_lines = self._checked_lines(client, invoice_id, reason, rows)
            answer = client.refund_invoice_answer(
                invoice_id,
                body_lines,
                reason=reason,
                note_lang_map=self.note_lang_map,
                organization_invoice_prefix_id=self.organization_invoice_prefix_id,
                idempotency_key=key,
            )
        reversal = answer.record
        totals = {name: money_text(reversal.get(name)) for name in _AMOUNTS}
        result: dict[str, Any] = {
            "original_id": invoice_id,
            "reversal_id": reversal.get("id"),
            "reversal_number": reversal.get("formatted_number") or reversal.get("number"),
            "currency": reversal.get("currency"),
            "totals": totals,
            "reason": reason,
            "outcome": "replayed" if answer.replayed else "created",
            "idempotency_key": key,
        }
        self.log.info(
            "Refund of %s %s: reversal %s (%s), total %s %s",
            invoice_id,
            result["outcome"],
            result["reversal_id"],
            result["reversal_number"],
            totals["total"],
            result["currency"],
        )
        return result

    def _checked_lines(
        self, client: EnlivyClient, invoice_id: str, reason: str, rows: Any
    ) -> list[dict[str, Any]] | None:
        """The body's ``line_items`` once the invoice allows them; raises naming the field otherwise."""
        invoice = client.get_invoice(invoice_id, include=["line_items", "reversal_invoices"])
        raise_if_issues(refundable_issue(invoice), subject="refund input")
        reversals = invoice.get("reversal_invoices") or []
        reversal_lines = [
            line
            for reversal in reversals
            for line in client.get_invoice(str(reversal["id"]), include=["line_items"]).get("line_items")
            or []
        ]
        lines = invoice.get("line_items") or []
        plan = plan_refund(lines, left_to_refund(lines, reversal_lines), rows)
        raise_if_issues(plan.issues, subject="refund input")
        if plan.excess and reversals and _refunded_before(client, invoice_id, reason):
            # Nothing (or not enough) is left because this very refund already happened: send it again under
            # its key, and the server answers with that earlier reversal (a changed input gets a 409 instead).
            self.log.info(
                "A refund of %s with reason %r exists: asking Enlivy for it again", invoice_id, reason
            )
        else:
            raise_if_issues(plan.excess, subject="refund input")
        return plan.line_items


def _refunded_before(client: EnlivyClient, invoice_id: str, reason: str) -> bool:
    """Whether the invoice's event trail holds a refund with this reason (its ``refunded`` entries)."""
    for entry in client.list_event_trails(subject_id=invoice_id, event_type="refunded"):
        metadata = entry.get("metadata")
        if isinstance(metadata, Mapping) and metadata.get("reason") == reason:
            return True
    return False
