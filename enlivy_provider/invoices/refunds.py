"""What a refund asks for, checked against the invoice before anything is sent (docs/operators.md).

A refund reverses a whole invoice or some quantities of its lines. Lines are named by their id
(``line_item_id``) or by their position on the invoice (``order``, 1-based, as Enlivy numbers them). The
check reads the invoice with its lines and its earlier reversals, and refuses — naming the field — a
quantity that is not a number greater than 0, a line the invoice does not have, and more than is left to
refund of a line (billed minus what earlier reversals took back). The server checks the same again; this
check exists so a wrong input fails with zero writes and no retries.

A reversal's lines do not name the line they reverse (they are copies with negated quantities and amounts),
so earlier refunds are attributed to the original lines by the fields a reversal copies unchanged (product,
name, price, tax, period ...): identical lines share them in invoice order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from enlivy_provider.invoices.billing_identity import action_key
from enlivy_provider.invoices.decimals import NotADecimalError, to_decimal
from enlivy_provider.invoices.errors import ValidationIssue, join_path

REFUND_KEY_PREFIX = "airflow-refund-"
REASON_MAX_LENGTH = 255
LINE_ID_KEYS = ("line_item_id", "organization_invoice_line_item_id")
_LINE_KEYS = frozenset({*LINE_ID_KEYS, "order", "quantity"})
ZERO = Decimal(0)
# Fields of a line that differ between an original line and its reversal copy, or say nothing about which
# line it is; every other field is copied unchanged onto the reversal.
_NOT_IDENTIFYING = frozenset(
    {
        "id", "object", "organization_id", "organization_invoice_id", "order", "quantity",
        "sub_total", "discount", "tax_total", "total", "created_at", "updated_at", "deleted_at",
    }
)  # fmt: skip


def refund_key(organization_id: str, invoice_id: str, reason: str) -> str:
    """One refund of one invoice, named by its reason: the same key for every run, retry and racing copy."""
    return action_key(REFUND_KEY_PREFIX, "invoice.refund", organization_id, invoice_id, reason)


@dataclass(frozen=True)
class RefundLine:
    """One requested row: the line by id or by order, and how much of it to refund."""

    path: str
    quantity: Decimal
    line_id: str | None = None
    order: int | None = None


def check_reason(value: object, path: str = "reason") -> tuple[str | None, list[ValidationIssue]]:
    if not isinstance(value, str) or not value.strip():
        return None, [ValidationIssue(path, f"must be a non-empty string (got {value!r})")]
    text = value.strip()
    if len(text) > REASON_MAX_LENGTH:
        return None, [
            ValidationIssue(path, f"must be at most {REASON_MAX_LENGTH} characters (got {len(text)})")
        ]
    return text, []


def parse_refund_lines(
    value: object, path: str = "line_items"
) -> tuple[list[RefundLine] | None, list[ValidationIssue]]:
    """``None`` (refund everything left) or rows ``{line_item_id | order, quantity}``, every problem named."""
    if value is None:
        return None, []
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        return None, [
            ValidationIssue(path, f"must be a list of {{line_item_id or order, quantity}} (got {value!r})")
        ]
    if not value:
        return None, [
            ValidationIssue(path, "must list at least one line (leave it out to refund everything)")
        ]
    rows: list[RefundLine] = []
    issues: list[ValidationIssue] = []
    for index, item in enumerate(value):
        row, found = _parse_row(item, join_path(path, index))
        issues += found
        if row is not None:
            rows.append(row)
    return (rows if not issues else None), issues


def _parse_row(item: object, path: str) -> tuple[RefundLine | None, list[ValidationIssue]]:
    if not isinstance(item, Mapping):
        return None, [
            ValidationIssue(path, f"must be an object {{line_item_id or order, quantity}} (got {item!r})")
        ]
    issues = [
        ValidationIssue(
            join_path(path, str(key)), f"unknown field; accepted: {', '.join(sorted(_LINE_KEYS))}"
        )
        for key in item
        if key not in _LINE_KEYS
    ]
    ids = [key for key in LINE_ID_KEYS if item.get(key) is not None]
    has_order = item.get("order") is not None
    line_id: str | None = None
    order: int | None = None
    if len(ids) + has_order != 1:
        issues.append(ValidationIssue(path, "must name its line by exactly one of line_item_id or order"))
    elif ids:
        raw_id = item[ids[0]]
        if isinstance(raw_id, str) and raw_id.strip():
            line_id = raw_id.strip()
        else:
            issues.append(
                ValidationIssue(join_path(path, ids[0]), f"must be a line item id (got {raw_id!r})")
            )
    else:
        raw_order = item["order"]
        if isinstance(raw_order, int) and not isinstance(raw_order, bool) and raw_order >= 1:
            order = raw_order
        else:
            issues.append(
                ValidationIssue(join_path(path, "order"), f"must be an integer >= 1 (got {raw_order!r})")
            )
    quantity = ZERO
    if "quantity" not in item:
        issues.append(ValidationIssue(join_path(path, "quantity"), "is required"))
    else:
        try:
            quantity = to_decimal(item["quantity"])
        except NotADecimalError as exc:
            issues.append(ValidationIssue(join_path(path, "quantity"), str(exc)))
        else:
            if quantity <= 0:
                issues.append(
                    ValidationIssue(join_path(path, "quantity"), f"must be greater than 0 (got {quantity})")
                )
    if issues:
        return None, issues
    return RefundLine(path, quantity, line_id, order), []


def refundable_issue(invoice: Mapping[str, Any], path: str = "invoice_id") -> list[ValidationIssue]:
    """Only an issued standard invoice can be refunded (not a draft, proforma, reversal or cancelled one)."""
    kind, status = invoice.get("type"), invoice.get("status")
    if kind != "standard" or status in ("draft", "cancelled") or invoice.get("deleted_at"):
        state = "deleted" if invoice.get("deleted_at") else f"a {status} {kind} invoice"
        return [
            ValidationIssue(
                path, f"{invoice.get('id')} is {state}; only an issued standard invoice can be refunded"
            )
        ]
    return []


def left_to_refund(
    lines: Sequence[Mapping[str, Any]], reversal_lines: Iterable[Mapping[str, Any]]
) -> dict[str, tuple[Decimal, Decimal]]:
    """Line id → (billed, left): billed minus the quantities earlier reversals took back."""
    billed = {str(line["id"]): Decimal(str(line.get("quantity") or 0)) for line in lines}
    left = dict(billed)
    by_signature: dict[str, list[str]] = {}
    for line in lines:
        by_signature.setdefault(_signature(line), []).append(str(line["id"]))
    for reversed_line in reversal_lines:
        taken = -Decimal(str(reversed_line.get("quantity") or 0))  # reversal quantities are negative
        for line_id in by_signature.get(_signature(reversed_line), []):
            share = min(taken, left[line_id])
            left[line_id] -= share
            taken -= share
            if taken <= 0:
                break
    return {line_id: (billed[line_id], left[line_id]) for line_id in billed}


def _signature(line: Mapping[str, Any]) -> str:
    fields = {key: value for key, value in line.items() if key not in _NOT_IDENTIFYING}
    return json.dumps(fields, sort_keys=True, default=str)


@dataclass(frozen=True)
class RefundPlan:
    """The refund body's ``line_items`` (None: all that is left) and what stands against sending it.

    ``excess`` (more than is left) is kept apart from the other problems: it is also what a repeat of a
    refund that already happened looks like, which the operator tells apart before refusing."""

    line_items: list[dict[str, Any]] | None
    issues: list[ValidationIssue]
    excess: list[ValidationIssue]


def plan_refund(
    lines: Sequence[Mapping[str, Any]],
    left: Mapping[str, tuple[Decimal, Decimal]],
    rows: Sequence[RefundLine] | None,
    path: str = "line_items",
) -> RefundPlan:
    if rows is None:
        if not any(remaining > 0 for _, remaining in left.values()):
            return RefundPlan(None, [], [ValidationIssue(path, "the invoice is already refunded in full")])
        return RefundPlan(None, [], [])
    by_order = {int(line["order"]): str(line["id"]) for line in lines if line.get("order") is not None}
    wanted: dict[str, Decimal] = {}
    issues: list[ValidationIssue] = []
    excess: list[ValidationIssue] = []
    for row in rows:
        if row.line_id is not None:
            line_id: str | None = row.line_id if row.line_id in left else None
            if line_id is None:
                issues.append(
                    ValidationIssue(
                        join_path(row.path, "line_item_id"), f"{row.line_id} is not a line of this invoice"
                    )
                )
        else:
            line_id = by_order.get(row.order or 0)
            if line_id is None:
                count = f"{len(lines)} line{'s' if len(lines) != 1 else ''}"
                issues.append(
                    ValidationIssue(
                        join_path(row.path, "order"), f"the invoice has no line {row.order} ({count})"
                    )
                )
        if line_id is None:
            continue
        wanted[line_id] = wanted.get(line_id, ZERO) + row.quantity
        billed, remaining = left[line_id]
        if wanted[line_id] > remaining:
            excess.append(
                ValidationIssue(
                    join_path(row.path, "quantity"),
                    f"{wanted[line_id].normalize()} exceeds what is left to refund of line {line_id} "
                    f"({remaining.normalize()} of {billed.normalize()} billed; earlier refunds count)",
                )
            )
    body = [{"organization_invoice_line_item_id": i, "quantity": q} for i, q in wanted.items()]
    return RefundPlan(None if issues else body, issues, excess)
