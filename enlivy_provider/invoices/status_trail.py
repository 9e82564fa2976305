"""The status changes an invoice's event trail records after a mark: what a PUT's answer cannot tell.

A PUT overwrites the status, so neither its answer nor a read-back shows a status someone else set between
our read and our write (a partial payment sets ``payment_partial`` without any ``paid_at``). The invoice
event trail (``GET /invoices/event-trails``, official PHP SDK ``HasEventTrails``) records every change with
its old and new values, newest first by default. :func:`mark` notes the newest entry before an update;
:func:`status_changes_since` lists, oldest first, the status changes recorded after it.

A trail the API refuses (a 4xx, e.g. a token without that scope) is reported as unreadable (``None``)
rather than failing the update: the caller then relies on ``paid_at`` alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from enlivy_provider.client import EnlivyClient


@dataclass(frozen=True)
class TrailMark:
    """Where the invoice's trail ended; ``readable`` is False when the API refused to list it."""

    readable: bool
    last_id: str | None = None


@dataclass(frozen=True)
class StatusChange:
    old: str | None
    new: str | None
    paid_at: str | None  # the paid_at the same change set, if it set one


def mark(client: EnlivyClient, invoice_id: str) -> TrailMark:
    from enlivy_provider.client import EnlivyAPIError

    try:
        page = client.list_event_trails_page(per_page=1, subject_id=invoice_id)
    except EnlivyAPIError as exc:
        if exc.retryable:
            raise
        return TrailMark(readable=False)
    return TrailMark(readable=True, last_id=page.items[0].get("id") if page.items else None)


def status_changes_since(
    client: EnlivyClient, invoice_id: str, since: TrailMark
) -> list[StatusChange] | None:
    """The status changes recorded after ``since``, oldest first; ``None`` when the trail is unreadable."""
    if not since.readable:
        return None
    newest_first: list[Mapping[str, Any]] = []
    for entry in client.list_event_trails(subject_id=invoice_id, include="changes"):
        if since.last_id is not None and entry.get("id") == since.last_id:
            break
        newest_first.append(entry)
    changes = (status_change_of(entry) for entry in reversed(newest_first))
    return [change for change in changes if change is not None]


def status_change_of(entry: Mapping[str, Any]) -> StatusChange | None:
    """The status change a trail entry read with ``include=changes`` records, or None (no status change)."""
    changes = entry.get("changes")
    change = changes[0] if isinstance(changes, list) and changes else changes
    if not isinstance(change, Mapping) or "status" not in (change.get("changed_fields") or ()):
        return None
    old, new = change.get("old_values") or {}, change.get("new_values") or {}
    return StatusChange(old=old.get("status"), new=new.get("status"), paid_at=new.get("paid_at"))
