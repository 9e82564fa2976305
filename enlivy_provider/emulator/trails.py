"""Invoice event trails: every change of an invoice, in the order it happened, with its fields old → new.

The SDK (``HasEventTrails``, ``EventTrail``, ``EventTrailChange``; docs/organization/event-trails.md) shows
read-only entries ``{subject_type, subject_id, event_type, origin, occurred_at, ...}`` and a ``changes``
include with ``changed_fields`` / ``old_values`` / ``new_values``.

How the emulator fills them: ``InvoiceService`` calls :meth:`EventTrailLog.observe` after every save of
one invoice (create, update, status change, e-mail, delete, restore, tag, charge, refund), with the stored
document before and after. The event type comes from the difference (``created``, ``deleted``,
``restored``, ``status_changed``, ``updated``) unless the action set one with :meth:`EventTrailLog.context`
(``charged``, ``charge_failed``, ``refunded``). Saves that change no public field and carry no action
record nothing.

Order: entries live in their own table whose ``seq`` is an AUTOINCREMENT key. Invoice writes are
serialised by the invoice service's lock and an entry is written before that lock is released, so ``seq``
order is the order of the changes, and an entry never appears before an earlier one. Lists sort by ``seq``
only; with ``order=asc`` the log is append-only, so pages already read never change — a change-capture
reader keeps the count it has consumed and resumes from there.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from enlivy_provider.emulator.common import new_id, not_found, now_iso
from enlivy_provider.emulator.jsonio import dumps, loads
from enlivy_provider.emulator.store import Store

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS event_trails (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, organization_id TEXT NOT NULL,
        subject_type TEXT NOT NULL, subject_id TEXT NOT NULL, event_type TEXT NOT NULL, origin TEXT NOT NULL,
        occurred_at TEXT NOT NULL, doc TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS event_trails_org ON event_trails (organization_id, seq)",
    "CREATE INDEX IF NOT EXISTS event_trails_subject ON event_trails (organization_id, subject_id, seq)",
)

# EventTrail\EventType (2.7.0) and EventTrail\Origin.
EVENT_TYPES = (
    "created", "updated", "status_changed", "deleted", "restored", "finalized", "charged", "charge_failed",
    "refunded", "refund_failed", "payment_method_changed", "cancelled", "payment_generated",
    "prorated_adjustment_generated", "line_item_changed", "tax_breakdown_changed", "phase_changed",
    "scheduled_payment_changed",
)  # fmt: skip
ORIGINS = ("back_office", "client_portal", "cron", "webhook", "system")
# Not a change of the invoice's content: every write moves it.
_IGNORED_FIELDS = frozenset({"updated_at"})
# A created invoice's entry lists what it was created with; these are its identity, not content.
_IDENTITY_FIELDS = frozenset({"id", "object", "organization_id", "created_at", "updated_at"})


@dataclass
class TrailQuery:
    organization_id: str
    subject_ids: list[str] | None = None
    event_types: list[str] | None = None
    origins: list[str] | None = None
    occurred: tuple[str, str, bool] | None = None  # from, to, to_is_exclusive
    ids: list[str] | None = None
    q: str | None = None
    order: str = "desc"


@dataclass
class _Action:
    event_type: str
    origin: str = "back_office"
    charge_log_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def _public(invoice: dict[str, Any] | None) -> dict[str, Any]:
    if invoice is None:
        return {}
    return {k: v for k, v in invoice.items() if not k.startswith("_") and k not in _IGNORED_FIELDS}


def diff(
    before: dict[str, Any] | None, after: dict[str, Any]
) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    """(changed fields, their old values, their new values) between two stored invoice documents."""
    old, new = _public(before), _public(after)
    if before is None:
        fields = sorted(k for k, v in new.items() if k not in _IDENTITY_FIELDS and v not in (None, [], {}))
        return fields, {}, {k: new[k] for k in fields}
    fields = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    return fields, {k: old.get(k) for k in fields}, {k: new.get(k) for k in fields}


def classify(before: dict[str, Any] | None, after: dict[str, Any], fields: list[str]) -> str:
    if before is None:
        return "created"
    if "deleted_at" in fields:
        return "deleted" if after.get("deleted_at") else "restored"
    if "status" in fields:
        return "status_changed"
    return "updated"


class EventTrailLog:
    """The ``event_trails`` table: written by :meth:`observe`, read by the list and get routes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._local = threading.local()
        with store.transaction() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)

    def wipe(self) -> None:
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM event_trails")

    @contextmanager
    def context(
        self,
        event_type: str,
        *,
        charge_log_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        origin: str = "back_office",
    ) -> Iterator[None]:
        """Saves inside the block are recorded as this action (``charged``, ``refunded``, ...)."""
        previous = getattr(self._local, "action", None)
        self._local.action = _Action(event_type, origin, charge_log_id, dict(metadata or {}))
        try:
            yield
        finally:
            self._local.action = previous

    # -- writing -------------------------------------------------------------------------------------

    def observe(self, before: dict[str, Any] | None, after: dict[str, Any]) -> None:
        """Called by ``InvoiceService`` after it saved ``after`` (``before``: the stored version, or None)."""
        fields, old_values, new_values = diff(before, after)
        action: _Action | None = getattr(self._local, "action", None)
        if not fields and action is None:
            return
        event_type = action.event_type if action else classify(before, after, fields)
        self.append(
            after["organization_id"],
            after["id"],
            event_type,
            (fields, old_values, new_values),
            origin=action.origin if action else "back_office",
            charge_log_id=action.charge_log_id if action else None,
            metadata=action.metadata if action else {},
        )

    def append(
        self,
        organization_id: str,
        subject_id: str,
        event_type: str,
        change: tuple[list[str], dict[str, Any], dict[str, Any]],
        *,
        origin: str = "back_office",
        charge_log_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        now = now_iso()
        trail_id = new_id("org_evt_trl")
        fields, old_values, new_values = change
        doc = {
            "id": trail_id,
            "object": "event_trail",
            "organization_id": organization_id,
            "subject_type": "invoice",
            "subject_id": subject_id,
            "event_type": event_type,
            "origin": origin,
            "actor_organization_user_id": None,
            "organization_invoice_charge_log_id": charge_log_id,
            "metadata": metadata or None,
            "occurred_at": now,
            "created_at": now,
            "_change": {
                "id": new_id("org_evt_trl_chg"),
                "object": "event_trail_change",
                "organization_id": organization_id,
                "organization_event_trail_id": trail_id,
                "subject_type": "invoice",
                "subject_id": subject_id,
                "event_type": event_type,
                "changed_fields": fields,
                "old_values": old_values,
                "new_values": new_values,
                "metadata": metadata or None,
                "created_at": now,
            },
        }
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO event_trails (id, organization_id, subject_type, subject_id, event_type, origin,"
                " occurred_at, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (trail_id, organization_id, "invoice", subject_id, event_type, origin, now, dumps(doc)),
            )
        return doc

    # -- reading -------------------------------------------------------------------------------------

    def query(self, query: TrailQuery, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        clauses, params = ["organization_id = ?"], [query.organization_id]
        for column, values in (
            ("subject_id", query.subject_ids),
            ("event_type", query.event_types),
            ("origin", query.origins),
            ("id", query.ids),
        ):
            if values is not None:
                clauses.append(f"{column} IN ({', '.join('?' for _ in values)})")
                params += values
        if query.occurred is not None:
            start, end, exclusive = query.occurred
            clauses.append(f"occurred_at >= ? AND occurred_at {'<' if exclusive else '<='} ?")
            params += [start, end]
        if query.q:
            escaped = query.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append("LOWER(doc) LIKE ? ESCAPE '\\'")
            params.append(f"%{escaped}%")
        where = " AND ".join(clauses)
        direction = "ASC" if query.order == "asc" else "DESC"
        with self.store.transaction() as conn:
            total = int(
                conn.execute(f"SELECT COUNT(*) FROM event_trails WHERE {where}", params).fetchone()[0]
            )
            rows = conn.execute(
                f"SELECT doc FROM event_trails WHERE {where} ORDER BY seq {direction} LIMIT ? OFFSET ?",
                [*params, limit, offset],
            ).fetchall()
        return [dict(loads(row[0])) for row in rows], total

    def get(self, organization_id: str, trail_id: str) -> dict[str, Any]:
        with self.store.transaction() as conn:
            row = conn.execute(
                "SELECT doc FROM event_trails WHERE id = ? AND organization_id = ?",
                (trail_id, organization_id),
            ).fetchone()
        if row is None:
            raise not_found("event trail")
        return dict(loads(row[0]))


def render_trail(store: Store, trail: dict[str, Any], includes: list[str]) -> dict[str, Any]:
    """An entry with the requested includes: ``changes`` (one change record), ``charge_log``, actor."""
    out = {k: v for k, v in trail.items() if not k.startswith("_")}
    for name in includes:
        if name == "changes":
            out["changes"] = {"data": [trail["_change"]]}
        elif name == "charge_log":
            log_id = trail.get("organization_invoice_charge_log_id")
            out["charge_log"] = {"data": store.get_record("charge_log", log_id) if log_id else None}
        elif name == "actor_organization_user":
            out["actor_organization_user"] = {"data": None}  # the emulator's API writes have no acting user
    return out
