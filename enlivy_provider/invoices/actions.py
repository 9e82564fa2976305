"""What the after-invoice actions (e-mail, charge) share, without Airflow:

* :func:`parse_invoice_ids`: the ids a DAG author passes, in any shape the sensor takes, or field-named issues;
* :func:`screen`: read the invoices (the sensor's batched list calls) and set aside those the action must not
  touch, each with the reason (not found, deleted, not issued, cancelled, already paid);
* :func:`act_on_each`: run the action per invoice on a bounded thread pool over one client; an error of one
  invoice is recorded and the others still run;
* :func:`action_result`: the JSON-safe result, one entry per invoice in the order given.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any

from enlivy_provider.invoice_status import fetch_statuses, normalize_invoice_ids
from enlivy_provider.invoices.errors import ValidationIssue

if TYPE_CHECKING:
    from enlivy_provider.client import EnlivyClient

INVOICE_ID_PREFIX = "org_inv_"
#: Statuses of an invoice not issued yet: nothing to e-mail or charge.
NOT_ISSUED = frozenset({"draft", "approval_required", "scheduled"})
#: Statuses of a settled invoice: no reminder, no charge.
SETTLED = frozenset({"paid", "solved"})
SKIPPED = "skipped"
ERROR = "error"


class ActionCancelledError(Exception):
    """An invoice not attempted because the task was being stopped (``on_kill``)."""

    retryable = True


def parse_invoice_ids(value: Any, path: str = "invoice_ids") -> tuple[list[str], list[ValidationIssue]]:
    """The ids in ``value`` (see :func:`normalize_invoice_ids`), each an ``org_inv_...`` id."""
    try:
        ids = normalize_invoice_ids(value)
    except (TypeError, ValueError) as exc:
        text = str(exc)
        # normalize_invoice_ids names where it looked ("invoice_ids[2]: ..."); keep that path as the issue's.
        where, _, message = text.partition(": ")
        if where.startswith("invoice_ids") and message:
            return [], [ValidationIssue(path + where[len("invoice_ids") :], message)]
        return [], [ValidationIssue(path, text)]
    issues = [
        ValidationIssue(
            f"{path}[{index}]", f"must be an invoice id {INVOICE_ID_PREFIX}... (got {invoice_id!r})"
        )
        for index, invoice_id in enumerate(ids)
        if not invoice_id.startswith(INVOICE_ID_PREFIX)
    ]
    return ids, issues


def skip_reason(record: Mapping[str, Any] | None, *, deleted: bool, settled_too: bool = True) -> str | None:
    """Why an action must leave this invoice alone, or None. ``settled_too=False`` lets paid ones through."""
    if record is None:
        return "not found"
    status = str(record.get("status") or "unknown").lower()
    if deleted:
        return f"deleted (status {status})"
    if status in NOT_ISSUED:
        return f"status {status}: not issued yet"
    if status == "cancelled":
        return "cancelled"
    if settled_too and status in SETTLED:
        return f"already {status}"
    return None


def screen(
    client: EnlivyClient,
    invoice_ids: Sequence[str],
    extra_reason: Callable[[Mapping[str, Any]], str | None] = lambda _record: None,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """(the invoices to act on, in order; {skipped id: reason}). Reads ceil(N / 30) list pages."""
    observed = fetch_statuses(client, invoice_ids)
    targets: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for invoice_id in invoice_ids:
        record = observed.records.get(invoice_id)
        reason = skip_reason(record, deleted=invoice_id in observed.deleted)
        if reason is None and record is not None:
            reason = extra_reason(record)
        if reason is None and record is not None:
            targets.append(record)
        else:
            skipped[invoice_id] = reason or "not found"
    return targets, skipped


def act_on_each(
    records: Sequence[Mapping[str, Any]],
    act: Callable[[Mapping[str, Any]], dict[str, Any]],
    *,
    max_concurrency: int,
    cancelled: threading.Event,
    on_done: Callable[[dict[str, Any]], None] = lambda _entry: None,
) -> dict[str, dict[str, Any]]:
    """{invoice id: entry}: ``act``'s entry, or an ``error`` entry (with ``retryable``) when it raised."""
    from enlivy_provider.client import EnlivyError

    def guarded(record: Mapping[str, Any]) -> dict[str, Any]:
        if cancelled.is_set():
            raise ActionCancelledError("the task was stopped before this invoice was attempted")
        return act(record)

    entries: dict[str, dict[str, Any]] = {}
    with ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="enlivy-action") as pool:
        futures = {pool.submit(guarded, record): str(record["id"]) for record in records}
        for future in as_completed(futures):
            invoice_id = futures[future]
            try:
                entry = future.result()
            except Exception as exc:  # every invoice is attempted; errors are reported together
                retryable = isinstance(exc, EnlivyError | ActionCancelledError) and bool(exc.retryable)
                entry = {
                    "invoice_id": invoice_id,
                    "outcome": ERROR,
                    "error": f"{type(exc).__name__}: {exc}",
                    "retryable": retryable,
                }
            entries[invoice_id] = entry
            on_done(entry)
    return entries


def action_result(
    invoice_ids: Sequence[str], entries: Mapping[str, dict[str, Any]], skipped: Mapping[str, str]
) -> dict[str, Any]:
    """``{"invoices": [entry per id, in order], "counts": {outcome: n}, "by_outcome": {outcome: [ids]}}``."""
    ordered = [
        entries.get(invoice_id)
        or {"invoice_id": invoice_id, "outcome": SKIPPED, "reason": skipped[invoice_id]}
        for invoice_id in invoice_ids
    ]
    by_outcome: dict[str, list[str]] = {}
    for entry in ordered:
        by_outcome.setdefault(entry["outcome"], []).append(entry["invoice_id"])
    counts = Counter(entry["outcome"] for entry in ordered)
    return {"invoices": ordered, "counts": dict(counts), "by_outcome": by_outcome}


def describe_counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "nothing to do"
