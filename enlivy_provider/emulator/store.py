"""SQLite persistence for the emulator: one connection, one lock, so it is safe under concurrent requests.

Records other than invoices (organizations, users, roles, products, tax classes and rates, prefixes,
bank accounts, e-mail log) live in one ``records`` table as JSON documents. Invoices get their own table
whose columns carry every field a list filter or ``ORDER BY`` needs (indexed), plus the full JSON
document; :meth:`Store.save_invoice` is the one write path, so columns and document never disagree.
Without a path the database is in memory; with ``--db PATH`` data survives a restart.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from enlivy_provider.emulator.jsonio import dumps, loads


def records_by_ids_sql(count: int) -> str:
    """The query of :meth:`Store.records_by_ids`. The unary ``+`` keeps SQLite from walking the (kind,
    organization_id, seq) index in seq order over all of the organization's users (~40 ms of CPU at 100,000):
    the ids are looked up by primary key, then the few rows sorted."""
    marks = ", ".join("?" for _ in range(count))
    return (
        f"SELECT doc FROM records WHERE id IN ({marks}) AND +kind = ? AND +organization_id = ? ORDER BY seq"
    )


_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL, id TEXT PRIMARY KEY, organization_id TEXT, seq INTEGER NOT NULL,
    created_at TEXT NOT NULL, deleted_at TEXT, doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_kind_org ON records (kind, organization_id, seq);
CREATE TABLE IF NOT EXISTS invoices (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, organization_id TEXT NOT NULL,
    status TEXT, direction TEXT, source TEXT, type TEXT, currency TEXT,
    organization_receiver_user_id TEXT, organization_sender_user_id TEXT, organization_bank_account_id TEXT,
    number TEXT, created_at TEXT, updated_at TEXT, issued_at TEXT, paid_at TEXT, due_at TEXT, deleted_at TEXT,
    sub_total_cents INTEGER, discount_cents INTEGER, tax_total_cents INTEGER, total_cents INTEGER,
    search_text TEXT, payable_since REAL, doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS invoices_org_live_created ON invoices (organization_id, deleted_at, created_at, seq);
CREATE INDEX IF NOT EXISTS invoices_org_updated ON invoices (organization_id, updated_at);
CREATE INDEX IF NOT EXISTS invoices_org_issued ON invoices (organization_id, issued_at);
CREATE INDEX IF NOT EXISTS invoices_org_status ON invoices (organization_id, status);
CREATE INDEX IF NOT EXISTS invoices_org_receiver ON invoices (organization_id, organization_receiver_user_id);
CREATE INDEX IF NOT EXISTS invoices_payable ON invoices (payable_since);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY, email TEXT, organization_ids TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS logins (email TEXT PRIMARY KEY, password TEXT NOT NULL, token TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency (
    token TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL, key TEXT NOT NULL,
    fingerprint TEXT NOT NULL, status_code INTEGER NOT NULL, body BLOB NOT NULL, media_type TEXT,
    created_at TEXT NOT NULL, PRIMARY KEY (token, method, path, key)
);
"""

# Invoice document fields copied into indexed columns (money is stored as integer cents for exact sums).
_TEXT_COLUMNS = (
    "id", "organization_id", "status", "direction", "source", "type", "currency",
    "organization_receiver_user_id", "organization_sender_user_id", "organization_bank_account_id",
    "number", "created_at", "updated_at", "issued_at", "paid_at", "due_at", "deleted_at",
)  # fmt: skip
_MONEY_COLUMNS = ("sub_total", "discount", "tax_total", "total")
_INVOICE_COLUMNS = (
    *_TEXT_COLUMNS,
    *(f"{name}_cents" for name in _MONEY_COLUMNS),
    "search_text",
    "payable_since",
    "doc",
)
# Fields ``q_in`` may name, and the SQL text each one is searched in (documents are JSON; see _where).
SEARCHABLE_INVOICE_FIELDS = {
    "id": "lower(id)",
    "number": "lower(number)",
    "formatted_number": "lower(json_extract(doc, '$.formatted_number'))",
    "note_lang_map": "lower((SELECT group_concat(value, ' ') FROM json_each(doc, '$.note_lang_map')))",
}
# Boolean document fields a list may filter on.
FLAG_FIELDS = frozenset({"is_tax_charged", "is_downloadable"})
# Columns a list may be ordered by (the API's order_by values map 1:1 onto them).
ORDERABLE_INVOICE_COLUMNS = frozenset(
    {"created_at", "updated_at", "issued_at", "paid_at", "due_at", "number", "status", "total", "id"}
)


def _cents(value: Any) -> int:
    return int((Decimal(value) * 100).to_integral_value())


@dataclass
class InvoiceQuery:
    """A validated invoice list request, translated to SQL by :meth:`Store.query_invoices`."""

    organization_id: str
    equals: dict[str, list[str]] = field(default_factory=dict)  # column -> allowed values
    ranges: list[tuple[str, str, str, bool]] = field(default_factory=list)  # column, from, to, to_exclusive
    ids: list[str] | None = None
    q: str | None = None
    q_in: list[str] | None = None  # search only these fields (SEARCHABLE_INVOICE_FIELDS), not search_text
    deleted: int = 0  # -1 all, 0 live only, 1 deleted only
    total_cents: int | None = None
    flags: dict[str, bool] = field(default_factory=dict)  # boolean document field -> wanted value
    product_ids: list[str] | None = None  # a line item sells one of these products
    tag_ids: list[str] | None = None  # the invoice carries one of these tags
    order_by: str = "created_at"
    order: str = "desc"


@dataclass(frozen=True)
class StoredResponse:
    fingerprint: str
    status_code: int
    body: bytes
    media_type: str | None


class Store:
    """Thread-safe access to the emulator's SQLite database."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0  # nesting of transaction() on the thread that holds the lock
        self._conn = sqlite3.connect(path or ":memory:", check_same_thread=False, isolation_level=None)
        if path:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and one SQLite transaction; commit on success, roll back on error.

        A transaction opened inside another (on the same thread, which holds the lock) joins it: an invoice
        write wraps its prefix counter bump and the invoice row in one, so a write that fails half way
        leaves neither behind (no gap in the numbering)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._conn
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            finally:
                self._depth = 0
            self._conn.execute("COMMIT")

    def wipe(self) -> None:
        with self.transaction() as conn:
            for table in ("records", "invoices", "tokens", "logins", "idempotency"):
                conn.execute(f"DELETE FROM {table}")

    # -- generic records -------------------------------------------------------------------------------

    def put_record(self, kind: str, record: dict[str, Any]) -> None:
        """Insert or replace one record (keeps its list position when replaced)."""
        with self.transaction() as conn:
            row = conn.execute("SELECT seq FROM records WHERE id = ?", (record["id"],)).fetchone()
            seq = row[0] if row else self._next_seq(conn)
            conn.execute(
                "INSERT OR REPLACE INTO records (kind, id, organization_id, seq, created_at, deleted_at, doc)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    kind,
                    record["id"],
                    record.get("organization_id"),
                    seq,
                    record.get("created_at") or "",
                    record.get("deleted_at"),
                    dumps(record),
                ),
            )

    def put_records(self, kind: str, records: Sequence[dict[str, Any]]) -> None:
        with self.transaction() as conn:
            start = self._next_seq(conn)
            conn.executemany(
                "INSERT OR REPLACE INTO records (kind, id, organization_id, seq, created_at, deleted_at, doc)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        kind,
                        r["id"],
                        r.get("organization_id"),
                        start + i,
                        r.get("created_at") or "",
                        r.get("deleted_at"),
                        dumps(r),
                    )
                    for i, r in enumerate(records)
                ],
            )

    @staticmethod
    def _next_seq(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM records").fetchone()[0])

    def get_record(
        self, kind: str, record_id: str, organization_id: str | None = None
    ) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT organization_id, doc FROM records WHERE kind = ? AND id = ?", (kind, record_id)
            ).fetchone()
        if row is None or (organization_id is not None and row[0] != organization_id):
            return None
        return dict(loads(row[1]))

    def records_by_ids(self, kind: str, ids: Sequence[str], organization_id: str) -> list[dict[str, Any]]:
        """The records of a kind with these ids (in insertion order): a list filtered by ``ids`` reads only
        them, so it costs the same with 100,000 customers as with six."""
        with self._lock:
            rows = self._conn.execute(records_by_ids_sql(len(ids)), (*ids, kind, organization_id)).fetchall()
        return [dict(loads(row[0])) for row in rows]

    def list_records(self, kind: str, organization_id: str | None = None) -> list[dict[str, Any]]:
        """Every record of a kind (in insertion order), optionally of one organization."""
        with self._lock:
            if organization_id is None:
                rows = self._conn.execute("SELECT doc FROM records WHERE kind = ? ORDER BY seq", (kind,))
            else:
                rows = self._conn.execute(
                    "SELECT doc FROM records WHERE kind = ? AND organization_id = ? ORDER BY seq",
                    (kind, organization_id),
                )
            docs = [row[0] for row in rows.fetchall()]
        return [dict(loads(doc)) for doc in docs]

    # -- auth ------------------------------------------------------------------------------------------

    def put_token(self, token: str, email: str | None, organization_ids: Sequence[str]) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO tokens (token, email, organization_ids) VALUES (?, ?, ?)",
                (token, email, dumps(list(organization_ids))),
            )

    def token_organizations(self, token: str) -> list[str] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT organization_ids FROM tokens WHERE token = ?", (token,)
            ).fetchone()
        return None if row is None else list(loads(row[0]))

    def put_login(self, email: str, password: str, token: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO logins (email, password, token) VALUES (?, ?, ?)",
                (email.lower(), password, token),
            )

    def login(self, email: str, password: str) -> str | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT password, token FROM logins WHERE email = ?", (email.lower(),)
            ).fetchone()
        return row[1] if row is not None and row[0] == password else None

    # -- invoices --------------------------------------------------------------------------------------

    @staticmethod
    def _invoice_row(
        invoice: dict[str, Any], search_text: str, payable_since: float | None, doc: str | None = None
    ) -> list[Any]:
        values: list[Any] = [invoice.get(name) for name in _TEXT_COLUMNS]
        values += [_cents(invoice.get(name) or 0) for name in _MONEY_COLUMNS]
        values += [search_text.lower(), payable_since, doc if doc is not None else dumps(invoice)]
        return values

    def save_invoice(self, invoice: dict[str, Any], *, search_text: str, payable_since: float | None) -> None:
        """Insert or update an invoice (columns and document together)."""
        self.save_invoices([(invoice, search_text, payable_since, None)])

    def save_invoices(self, items: Sequence[tuple[dict[str, Any], str, float | None, str | None]]) -> None:
        """Insert or update many invoices; an item may carry its already serialised JSON document."""
        columns = ", ".join(_INVOICE_COLUMNS)
        marks = ", ".join("?" for _ in _INVOICE_COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in _INVOICE_COLUMNS if c != "id")
        sql = f"INSERT INTO invoices ({columns}) VALUES ({marks}) ON CONFLICT(id) DO UPDATE SET {updates}"
        with self.transaction() as conn:
            conn.executemany(sql, [self._invoice_row(*item) for item in items])

    def get_invoice(self, invoice_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT doc FROM invoices WHERE id = ?", (invoice_id,)).fetchone()
        return None if row is None else dict(loads(row[0]))

    def all_invoices(self, organization_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            if organization_id is None:
                rows = self._conn.execute("SELECT doc FROM invoices ORDER BY seq").fetchall()
            else:
                rows = self._conn.execute(
                    "SELECT doc FROM invoices WHERE organization_id = ? ORDER BY seq", (organization_id,)
                ).fetchall()
        return [dict(loads(row[0])) for row in rows]

    def payable_invoice_ids(self, before: float) -> list[str]:
        """Invoices that entered a payable status at or before the epoch time ``before``."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id FROM invoices WHERE payable_since IS NOT NULL AND payable_since <= ?"
                " AND deleted_at IS NULL",
                (before,),
            ).fetchall()
        return [row[0] for row in rows]

    @staticmethod
    def _where(query: InvoiceQuery) -> tuple[str, list[Any]]:
        clauses = ["organization_id = ?"]
        params: list[Any] = [query.organization_id]
        if query.deleted == 0:
            clauses.append("deleted_at IS NULL")
        elif query.deleted == 1:
            clauses.append("deleted_at IS NOT NULL")
        for column, values in query.equals.items():
            clauses.append(f"{column} IN ({', '.join('?' for _ in values)})")
            params += values
        for column, start, end, end_exclusive in query.ranges:
            clauses.append(f"{column} >= ? AND {column} {'<' if end_exclusive else '<='} ?")
            params += [start, end]
        if query.ids is not None:
            clauses.append(f"id IN ({', '.join('?' for _ in query.ids)})")
            params += query.ids
        if query.q:
            escaped = query.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            # search_text is stored lower-cased; q_in fields are lower-cased here.
            texts = (
                [SEARCHABLE_INVOICE_FIELDS[name] for name in query.q_in] if query.q_in else ["search_text"]
            )
            clauses.append("(" + " OR ".join(f"{text} LIKE ? ESCAPE '\\'" for text in texts) + ")")
            params += [f"%{escaped}%"] * len(texts)
        if query.total_cents is not None:
            clauses.append("total_cents = ?")
            params.append(query.total_cents)
        for name, wanted in query.flags.items():
            if name not in FLAG_FIELDS:
                raise ValueError(f"cannot filter on {name}")
            clauses.append(f"json_extract(doc, '$.{name}') = ?")
            params.append(1 if wanted else 0)
        # A line item sells one of the products / the invoice carries one of the tags.
        for path, inner, wanted_ids in (
            ("$.line_items", "json_extract(item.value, '$.organization_product_id')", query.product_ids),
            ("$.tag_ids", "item.value", query.tag_ids),
        ):
            if wanted_ids is not None:
                marks = ", ".join("?" for _ in wanted_ids)
                clauses.append(
                    f"EXISTS (SELECT 1 FROM json_each(doc, '{path}') AS item WHERE {inner} IN ({marks}))"
                )
                params += wanted_ids
        return " AND ".join(clauses), params

    def query_invoices(
        self, query: InvoiceQuery, *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of matching invoices and the total match count (SQL LIMIT/OFFSET over indexes)."""
        where, params = self._where(query)
        if query.order_by not in ORDERABLE_INVOICE_COLUMNS:
            raise ValueError(f"cannot order by {query.order_by}")
        # Amounts in cents; numbers numerically ("10" after "9"), external non-numeric ones last.
        column = {"total": "total_cents", "number": "CAST(number AS INTEGER)"}.get(
            query.order_by, query.order_by
        )
        direction = "ASC" if query.order == "asc" else "DESC"
        sql = (
            f"SELECT doc FROM invoices WHERE {where} "
            f"ORDER BY {column} {direction}, seq {direction} LIMIT ? OFFSET ?"
        )
        with self._lock:
            total = int(
                self._conn.execute(f"SELECT COUNT(*) FROM invoices WHERE {where}", params).fetchone()[0]
            )
            rows = self._conn.execute(sql, [*params, limit, offset]).fetchall()
        return [dict(loads(row[0])) for row in rows], total

    def invoice_sums(self, query: InvoiceQuery) -> dict[str, dict[str, int]]:
        """Per-currency sums in cents of the matching invoices (for ``include_meta=totals``)."""
        where, params = self._where(query)
        sql = (
            "SELECT currency, COUNT(*), SUM(sub_total_cents), SUM(discount_cents), SUM(tax_total_cents),"
            f" SUM(total_cents) FROM invoices WHERE {where} GROUP BY currency ORDER BY currency"
        )
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return {
            row[0]: {
                "count": row[1],
                "sub_total": row[2],
                "discount": row[3],
                "tax_total": row[4],
                "total": row[5],
            }
            for row in rows
        }

    def billing_counts(self, organization_id: str) -> list[tuple[str, str, str, str, int]]:
        """Live billing invoices per (customer, line billing period, billing key): ``[(customer, start, end,
        key, invoices)]``. Live = not soft-deleted, not cancelled; proformas, reversals and inbound invoices
        bill nothing. An invoice whose lines bill several periods counts once for each. Computed in SQL, so a
        benchmark can check 100,000 invoices for duplicates without moving them out of the emulator."""
        sql = """
            SELECT i.organization_receiver_user_id,
                   substr(json_extract(line.value, '$.billing_period_started_at'), 1, 10),
                   substr(json_extract(line.value, '$.billing_period_ended_at'), 1, 10),
                   COALESCE(json_extract(i.doc, '$.peppol_project_reference'), ''),
                   COUNT(DISTINCT i.id)
            FROM invoices AS i, json_each(i.doc, '$.line_items') AS line
            WHERE i.organization_id = ? AND i.deleted_at IS NULL AND COALESCE(i.status, '') != 'cancelled'
              AND COALESCE(i.type, '') NOT IN ('proforma', 'reversal', 'credit_note')
              AND COALESCE(i.direction, '') != 'inbound'
              AND json_extract(line.value, '$.has_billing_period')
            GROUP BY 1, 2, 3, 4
        """
        with self._lock:
            rows = self._conn.execute(sql, (organization_id,)).fetchall()
        return [(str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in rows]

    def count_invoices(self, organization_id: str, *, deleted: bool) -> int:
        clause = "deleted_at IS NOT NULL" if deleted else "deleted_at IS NULL"
        with self._lock:
            row = self._conn.execute(
                f"SELECT COUNT(*) FROM invoices WHERE organization_id = ? AND {clause}",
                (organization_id,),
            ).fetchone()
        return int(row[0])

    # -- idempotency -----------------------------------------------------------------------------------

    def get_idempotent(self, token: str, method: str, path: str, key: str) -> StoredResponse | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT fingerprint, status_code, body, media_type FROM idempotency"
                " WHERE token = ? AND method = ? AND path = ? AND key = ?",
                (token, method, path, key),
            ).fetchone()
        return None if row is None else StoredResponse(row[0], row[1], bytes(row[2]), row[3])

    def put_idempotent(
        self, token: str, method: str, path: str, key: str, response: StoredResponse, created_at: str
    ) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO idempotency"
                " (token, method, path, key, fingerprint, status_code, body, media_type, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    token,
                    method,
                    path,
                    key,
                    response.fingerprint,
                    response.status_code,
                    response.body,
                    response.media_type,
                    created_at,
                ),
            )

    def idempotency_keys(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT method, path, key, status_code FROM idempotency ORDER BY created_at, rowid"
            ).fetchall()
        return [{"method": r[0], "path": r[1], "key": r[2], "status_code": r[3]} for r in rows]
