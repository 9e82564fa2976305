"""The one place that decides what a set of invoice statuses means, shared by the sensor and the trigger.

Three steps, each usable alone:

1. :func:`normalize_invoice_ids` turns what a DAG author passes (one id, a list, the bulk operator's return
   dict, a list of the create operator's summaries) into a de-duplicated list of ids.
2. :func:`fetch_statuses` (sync client) / :func:`afetch_statuses` (async client) read the statuses in batches of
   at most 30 ids per list call (the API's limit for the ``ids`` filter), including soft-deleted invoices so a
   deleted invoice is reported as such instead of as missing. Both build the same requests with
   :func:`batch_params` and read the answers with :meth:`ObservedStatuses.add_page`; only the awaiting differs.
3. :func:`classify` is pure: ids + what was observed + target/failure statuses -> :class:`StatusCheck`
   (``success``, ``failure`` with a reason per invoice, or ``pending``).

Nothing here imports Airflow; errors are the client's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from enlivy_provider.client import EnlivyError, Page
from enlivy_provider.client.core import next_page

if TYPE_CHECKING:
    from enlivy_provider.client import AsyncEnlivyClient, EnlivyClient

#: The API accepts at most 30 ids in one ``ids`` filter (docs/enlivy-api-notes.md §6.1).
MAX_IDS_PER_CALL = 30
#: Every invoice status the API knows (the SDK's invoice ``status`` filter values). Not imported from the
#: emulator's enums: the emulator stands in for Enlivy and the client must not lean on it (a test checks
#: the two lists agree).
INVOICE_STATUSES = frozenset({
    "approval_required", "draft", "scheduled", "pending", "sent_email", "sent_physical", "payment_partial",
    "paid", "solved", "overdue", "cancelled",
})  # fmt: skip
#: How many invoices a message lists before it says "and N more" (the log gets the full list).
MESSAGE_LIST_LIMIT = 50

Outcome = Literal["success", "failure", "pending"]


# --------------------------------------------------------------------------------------------------- input


def normalize_invoice_ids(value: Any) -> list[str]:
    """Return the invoice ids in ``value``, in order, without duplicates.

    Accepted shapes: ``"org_inv_..."``; a list/tuple of ids; a list of dicts carrying ``"id"`` (the create
    operator's summaries); a dict with ``"invoice_ids"`` (the bulk operator's return value); a dict with
    ``"id"`` (one summary). Any sequence counts as a list, e.g. the lazy sequence that the XComArg of a
    mapped task resolves to. Anything else raises ``TypeError``/``ValueError`` naming what was wrong.
    """
    ids: list[str] = []
    seen: set[str] = set()
    for raw in _iter_ids(value, where="invoice_ids"):
        invoice_id = raw.strip()
        if not invoice_id:
            raise ValueError("invoice_ids contains an empty id")
        if invoice_id not in seen:
            seen.add(invoice_id)
            ids.append(invoice_id)
    return ids


def _iter_ids(value: Any, *, where: str) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        if "invoice_ids" in value:
            yield from _iter_ids(value["invoice_ids"], where=f"{where}['invoice_ids']")
        elif "id" in value:
            yield from _iter_ids(value["id"], where=f"{where}['id']")
        else:
            keys = ", ".join(sorted(map(str, value))) or "none"
            raise ValueError(
                f"{where}: a dict must carry 'invoice_ids' (bulk operator output) or 'id' (invoice summary); "
                f"its keys are: {keys}"
            )
    elif _is_sequence(value):  # also the lazy sequence a mapped upstream task's XComArg resolves to
        for index, item in enumerate(value):
            if _is_sequence(item):
                raise TypeError(f"{where}[{index}]: nested lists are not accepted")
            yield from _iter_ids(item, where=f"{where}[{index}]")
    else:
        raise TypeError(
            f"{where}: expected an invoice id, a list of ids or summaries, or the bulk operator's output; "
            f"got {type(value).__name__}"
        )


def _is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))


def normalize_statuses(value: Any, *, name: str) -> tuple[str, ...]:
    """``"paid"`` or ``["paid", "solved"]`` -> ``("paid", "solved")`` (lower-cased, stripped, de-duplicated)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise TypeError(f"{name}: expected a status or a list of statuses, got {type(value).__name__}")
    statuses: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"{name}: every status must be a non-empty string, got {item!r}")
        status = item.strip().lower()
        if status not in statuses:
            statuses.append(status)
    return tuple(statuses)


def checked_flag(value: Any, *, name: str) -> bool:
    """``value`` if it is a bool; anything else (``"false"``, 0) raises ``TypeError`` naming the argument."""
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__} {value!r}")
    return value


def validate_status_sets(target_statuses: Sequence[str], failure_statuses: Sequence[str]) -> None:
    if not target_statuses:
        raise ValueError("target_statuses must name at least one status")
    overlap = sorted(set(target_statuses) & set(failure_statuses))
    if overlap:
        raise ValueError(f"statuses both in target_statuses and failure_statuses: {', '.join(overlap)}")


# --------------------------------------------------------------------------------------------------- fetch


def batched(ids: Sequence[str], size: int = MAX_IDS_PER_CALL) -> list[list[str]]:
    if not 1 <= size <= MAX_IDS_PER_CALL:
        raise ValueError(f"batch size must be between 1 and {MAX_IDS_PER_CALL}, got {size}")
    return [list(ids[start : start + size]) for start in range(0, len(ids), size)]


def batch_params(batch: Sequence[str], page: int = 1) -> dict[str, Any]:
    """Filters of the list call for one batch: these ids, live and soft-deleted, one page holding them all."""
    return {"ids": list(batch), "deleted": -1, "page": page, "per_page": MAX_IDS_PER_CALL}


@dataclass
class ObservedStatuses:
    """What the API said: status of every invoice it returned, and which of those are soft-deleted."""

    statuses: dict[str, str] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # the invoices as listed

    def update(self, other: ObservedStatuses) -> None:
        """Add what another read observed (the shared poller merges its batches into one round)."""
        self.statuses.update(other.statuses)
        self.deleted |= other.deleted
        self.records.update(other.records)

    def add_page(self, page: Page, wanted: Iterable[str], requested_page: int = 1) -> int | None:
        """Record one list page (ignoring records not asked for); return the next page number or None."""
        wanted_ids = set(wanted)
        for record in page.items:
            invoice_id = record.get("id")
            if invoice_id not in wanted_ids:
                continue
            self.statuses[invoice_id] = str(record.get("status") or "unknown").lower()
            self.records[invoice_id] = record
            if record.get("deleted_at"):
                self.deleted.add(invoice_id)
        # An empty page ends the batch even if the meta promises more (no endless loop on a confused server).
        return next_page(page.meta, requested_page) if page.items else None


def fetch_statuses(client: EnlivyClient, invoice_ids: Sequence[str]) -> ObservedStatuses:
    """Read the statuses of ``invoice_ids``: ceil(N / 30) list calls."""
    observed = ObservedStatuses()
    for batch in batched(invoice_ids):
        page: int | None = 1
        while page is not None:
            page = observed.add_page(client.list_invoices_page(**batch_params(batch, page)), batch, page)
    return observed


async def afetch_statuses(client: AsyncEnlivyClient, invoice_ids: Sequence[str]) -> ObservedStatuses:
    """The async twin of :func:`fetch_statuses` (same requests, same parsing)."""
    observed = ObservedStatuses()
    for batch in batched(invoice_ids):
        page: int | None = 1
        while page is not None:
            page = observed.add_page(
                await client.list_invoices_page(**batch_params(batch, page)), batch, page
            )
    return observed


def is_transient(exc: BaseException) -> bool:
    """Errors worth waiting out (connection trouble, 429, 500/502/503/504); everything else ends the wait."""
    return isinstance(exc, EnlivyError) and bool(exc.retryable)


# --------------------------------------------------------------------------------------------------- rule


@dataclass(frozen=True)
class StatusCheck:
    """Result of one check. ``statuses`` maps every id to its status, or None when the API does not know it."""

    outcome: Outcome
    statuses: dict[str, str | None]
    failures: dict[str, str]
    pending: dict[str, str | None]
    target_statuses: tuple[str, ...]

    @classmethod
    def unread(cls, invoice_ids: Sequence[str], target_statuses: Sequence[str]) -> StatusCheck:
        """The check to report when no status could be read at all (e.g. the API was down throughout)."""
        statuses: dict[str, str | None] = dict.fromkeys(invoice_ids)
        return cls("pending", statuses, {}, dict(statuses), tuple(target_statuses))

    def failure_message(self) -> str:
        return (
            f"{len(self.failures)} of {len(self.statuses)} invoice(s) will not become "
            f"{_or_list(self.target_statuses)}: {_format_items(self.failures)}"
        )

    def pending_message(self) -> str:
        shown = {invoice_id: status or "status not read" for invoice_id, status in self.pending.items()}
        return (
            f"{len(self.pending)} of {len(self.statuses)} invoice(s) still pending (waiting for "
            f"{_or_list(self.target_statuses)}): {_format_items(shown)}"
        )

    def progress_message(self) -> str:
        """Short, for the log on every check: counts per status instead of every id."""
        counts = Counter(status or "status not read" for status in self.pending.values())
        by_status = ", ".join(f"{n} {status}" for status, n in counts.most_common())
        return (
            f"Waiting for {len(self.pending)} of {len(self.statuses)} invoice(s) to be "
            f"{_or_list(self.target_statuses)}: {by_status}"
        )

    def timeout_message(self) -> str:
        return f"Timed out; {self.pending_message()}"

    def success_message(self) -> str:
        return f"All {len(self.statuses)} invoice(s) are {_or_list(self.target_statuses)}"


def classify(
    invoice_ids: Sequence[str],
    observed: ObservedStatuses,
    target_statuses: Sequence[str],
    failure_statuses: Sequence[str],
) -> StatusCheck:
    """Apply the rule: any missing/deleted/failure-status invoice -> failure; all in target -> success."""
    statuses: dict[str, str | None] = {}
    failures: dict[str, str] = {}
    pending: dict[str, str | None] = {}
    for invoice_id in invoice_ids:
        status = observed.statuses.get(invoice_id)
        statuses[invoice_id] = status
        if status is None:
            failures[invoice_id] = "not found"
        elif invoice_id in observed.deleted:
            failures[invoice_id] = f"deleted (status {status})"
        elif status in failure_statuses:
            failures[invoice_id] = f"status {status}"
        elif status not in target_statuses:
            pending[invoice_id] = status
    outcome: Outcome = "failure" if failures else "pending" if pending else "success"
    return StatusCheck(outcome, statuses, failures, pending, tuple(target_statuses))


def _or_list(statuses: Sequence[str]) -> str:
    return " or ".join(statuses)


def _format_items(items: Mapping[str, str]) -> str:
    parts = [f"{invoice_id} ({text})" for invoice_id, text in list(items.items())[:MESSAGE_LIST_LIMIT]]
    more = len(items) - MESSAGE_LIST_LIMIT
    return ", ".join(parts) + (f" and {more} more" if more > 0 else "")
