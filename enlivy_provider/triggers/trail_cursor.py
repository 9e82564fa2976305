"""Reading an organization's invoice event trail as a change feed, from a cursor that survives restarts.

The trail (``GET /invoices/event-trails``, official PHP SDK ``HasEventTrails``) records every change of every
invoice. Listed with ``order=asc`` it only grows at its end (docs/emulator.md, "Event trails"): pages already
read never change. So a reader's position is the number of entries it has consumed, ``consumed``, plus the
id of the last of them, ``last_id``, which is checked on every read: the entry at index ``consumed - 1`` must
still be ``last_id``. If it is not (entries were purged, or the API ordered them differently), the reader
stops with :class:`TrailCursorMismatchError` instead of skipping or repeating changes silently.

Nothing here imports Airflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from enlivy_provider.client.core import MAX_PER_PAGE

if TYPE_CHECKING:
    from enlivy_provider.client import AsyncEnlivyClient

#: Entries per list call: the API refuses more than 50 (docs/enlivy-api-notes.md §5).
PAGE_SIZE = MAX_PER_PAGE


class TrailCursorMismatchError(RuntimeError):
    """The trail no longer has the cursor's last entry where the cursor says: it cannot resume safely."""


@dataclass(frozen=True)
class TrailCursor:
    consumed: int
    last_id: str | None

    def to_json(self) -> dict[str, Any]:
        return {"consumed": self.consumed, "last_id": self.last_id}

    @classmethod
    def from_json(cls, value: Any) -> TrailCursor | None:
        """The stored cursor, or None when nothing (or something unreadable) is stored."""
        if not isinstance(value, Mapping):
            return None
        consumed, last_id = value.get("consumed"), value.get("last_id")
        if not isinstance(consumed, int) or isinstance(consumed, bool) or consumed < 0:
            return None
        if (consumed == 0) != (last_id is None) or not (last_id is None or isinstance(last_id, str)):
            return None
        return cls(consumed, last_id)


def _total(meta: Mapping[str, Any]) -> int:
    pagination = meta.get("pagination") or {}
    total = pagination.get("total")
    if not isinstance(total, int):
        raise TrailCursorMismatchError("the event-trail list answered without meta.pagination.total")
    return total


async def end_of_trail(client: AsyncEnlivyClient) -> TrailCursor:
    """A cursor past every entry recorded so far (a new reader starts with the changes made after it)."""
    first = await client.list_event_trails_page(page=1, per_page=1, order="asc")
    total = _total(first.meta)
    if total == 0:
        return TrailCursor(0, None)
    last = await client.list_event_trails_page(page=total, per_page=1, order="asc")
    if not last.items:
        raise TrailCursorMismatchError(f"the trail reported {total} entries but its last page is empty")
    # Entries appended between the two calls are after index total - 1: they are read by the next round.
    return TrailCursor(total, str(last.items[0]["id"]))


async def read_after(
    client: AsyncEnlivyClient, cursor: TrailCursor, *, max_pages: int = 10
) -> tuple[list[dict[str, Any]], TrailCursor, bool]:
    """The entries after ``cursor`` (with their ``changes``), oldest first, at most ``max_pages`` pages.

    Returns (entries, the cursor after them, whether more entries are waiting).
    """
    # Read from the cursor's own last entry, to check it is still where the cursor says.
    start = max(cursor.consumed - 1, 0)
    page_number, skip = start // PAGE_SIZE + 1, start % PAGE_SIZE
    entries: list[dict[str, Any]] = []
    for read in range(max_pages):
        page = await client.list_event_trails_page(
            page=page_number, per_page=PAGE_SIZE, order="asc", include="changes"
        )
        items = list(page.items)
        if read == 0 and cursor.last_id is not None:
            found = items[skip].get("id") if len(items) > skip else None
            if found != cursor.last_id:
                raise TrailCursorMismatchError(
                    f"entry #{cursor.consumed} of the invoice event trail is {found!r}, the cursor expected "
                    f"{cursor.last_id!r}: the trail changed behind the cursor (entries removed or reordered)"
                )
            skip += 1
        entries.extend(items[skip:] if read == 0 else items)
        pagination = page.meta.get("pagination") or {}
        more = len(items) == PAGE_SIZE and pagination.get("current_page", 0) < pagination.get(
            "total_pages", 0
        )
        if not more:
            break
        page_number += 1
    after = TrailCursor(cursor.consumed + len(entries), str(entries[-1]["id"]) if entries else cursor.last_id)
    return entries, after, more
