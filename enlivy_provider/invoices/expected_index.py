"""The expected billings of a reconciliation, kept on disk (stdlib ``sqlite3``) rather than as Python objects.

A run may expect 100,000 invoices. Held as Python objects, each expected billing cost about 1.3 KB (the parsed
row, its period, what had been seen of it, two dictionary entries), so a task's memory grew with its input.
Here each billing is one row of a private temporary SQLite database: SQLite creates its file in its temporary
directory (``SQLITE_TMPDIR``, else ``TMPDIR``, else ``/var/tmp``, ``/usr/tmp`` or ``/tmp``) and unlinks it at
once, so nothing is left behind even by a killed task, and it keeps at most :data:`CACHE_KIB` of it in memory.
About 200 bytes of disk per row; memory stays flat.

Amounts are stored as the text of their ``Decimal`` (``str`` and ``Decimal`` round-trip exactly), never as a
SQLite REAL, and are only ever compared and added as ``Decimal`` in Python.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from enlivy_provider.invoices.billing_period import BillingPeriod

# The page cache SQLite may keep in memory (KiB); beyond it pages live in the temporary file.
CACHE_KIB = 4096
_PRAGMAS = (
    "journal_mode = OFF",  # a scratch database: nothing to roll back to, nothing to recover
    "synchronous = OFF",
    "temp_store = FILE",  # sorts for the indexes spill to disk too, never to memory
)
_SCHEMA = """
CREATE TABLE expected (
    seq INTEGER PRIMARY KEY,          -- the row's position in the input: expected[seq]
    customer_id TEXT NOT NULL,
    billing_key TEXT NOT NULL,
    period_start TEXT NOT NULL,       -- YYYY-MM-DD
    period_end TEXT NOT NULL,
    total TEXT NOT NULL,              -- str(Decimal)
    currency TEXT NOT NULL,
    live INTEGER NOT NULL DEFAULT 0,  -- live invoices seen for this billing
    first_id TEXT,                    -- the first two of them, enough to name a duplicate
    second_id TEXT,
    invoiced_total TEXT,              -- of the first live invoice: str(Decimal), NULL when not a number
    invoiced_currency TEXT,
    status TEXT
)
"""
# Built once every row is in (one sort instead of 100,000 index updates). The first serves both lookups: an
# invoice's billing (customer, period, key) and, for an invoice without a key, every billing of the customer
# and period; the second answers "is this billing key one of the run's?".
_INDEXES = (
    "CREATE INDEX expected_billing ON expected (customer_id, period_start, period_end, billing_key, seq)",
    "CREATE INDEX expected_key ON expected (billing_key)",
)
_UNSETTLED = (
    "SELECT seq, customer_id, billing_key, period_start, period_end, total, currency, live, first_id,"
    " second_id, invoiced_total, invoiced_currency, status FROM expected"
    " WHERE live != 1 OR invoiced_total IS NOT total OR invoiced_currency IS NOT currency ORDER BY seq"
)
# Module constants, not f-strings per call: the sqlite3 module caches statements by their text.
_CANDIDATES = "SELECT seq, billing_key, live FROM expected WHERE customer_id = ? AND period_start = ? AND period_end = ?"
_CANDIDATES_OF_CUSTOMER = f"{_CANDIDATES} ORDER BY seq"
_CANDIDATES_OF_KEY = f"{_CANDIDATES} AND billing_key = ? ORDER BY seq"
# ?1 seq, ?2 invoice id, ?3 total, ?4 currency, ?5 status; the right-hand sides see the row before the update.
_RECORD_LIVE = """
UPDATE expected SET
    live = live + 1,
    first_id = CASE WHEN live = 0 THEN ?2 ELSE first_id END,
    second_id = CASE WHEN live = 1 THEN ?2 ELSE second_id END,
    invoiced_total = CASE WHEN live = 0 THEN ?3 ELSE invoiced_total END,
    invoiced_currency = CASE WHEN live = 0 THEN ?4 ELSE invoiced_currency END,
    status = CASE WHEN live = 0 THEN ?5 ELSE status END
WHERE seq = ?1
"""


@dataclass(frozen=True, slots=True)
class ExpectedBilling:
    customer_id: str
    billing_key: str
    period: BillingPeriod
    total: Decimal
    currency: str

    @property
    def key(self) -> tuple[str, str, BillingPeriod]:
        return self.customer_id, self.billing_key, self.period


class Candidate(NamedTuple):
    """What matching an invoice needs of an expected billing (the rest is read only for a finding)."""

    seq: int
    billing_key: str
    period: tuple[str, str]
    live: int


@dataclass(frozen=True, slots=True)
class BillingState:
    """One expected billing and what has been seen of it so far (read from the index; a snapshot)."""

    seq: int
    expected: ExpectedBilling
    live: int
    live_ids: tuple[str, ...]
    invoiced_total: Decimal | None
    invoiced_currency: str | None
    status: str | None


class ExpectedIndex:
    """Expected billings by (customer, period, billing key), with the live invoices seen of each.

    Fill it once with :meth:`load`, then look billings up (:meth:`candidates`, :meth:`knows_key`), record
    invoices (:meth:`record_live`) and read back the ones that did not end with exactly one invoice of the
    expected total (:meth:`unsettled`). Close it (or use ``with``) to delete the file.
    """

    def __init__(self, *, cache_kib: int = CACHE_KIB) -> None:
        # "" = a private temporary on-disk database (deleted on close), not ":memory:" (which never spills).
        self._conn = sqlite3.connect("", isolation_level=None)
        for pragma in (*_PRAGMAS, f"cache_size = -{int(cache_kib)}"):  # negative: KiB, not pages
            self._conn.execute(f"PRAGMA {pragma}")
        self._conn.execute(_SCHEMA)
        self.count = 0
        # Distinct periods and currencies only: a handful, whatever the number of rows.
        self.periods: dict[tuple[str, str], BillingPeriod] = {}
        self.expected_totals: dict[str, Decimal] = {}
        self._loaded = False

    def __enter__(self) -> ExpectedIndex:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    # -- filling ----------------------------------------------------------------------------------------

    def load(self, billings: Iterable[tuple[int, ExpectedBilling]]) -> None:
        """Store ``(position in the input, billing)`` pairs, consumed lazily; then build the lookups."""
        if self._loaded:
            raise RuntimeError("ExpectedIndex.load() may run once")
        self._loaded = True
        self._conn.execute("BEGIN")
        self._conn.executemany(
            "INSERT INTO expected (seq, customer_id, billing_key, period_start, period_end, total, currency)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self._row(seq, billing) for seq, billing in billings),
        )
        for statement in _INDEXES:
            self._conn.execute(statement)
        self._conn.execute("COMMIT")
        # Matching then runs in one open transaction: a commit per recorded invoice would cost more than the
        # update itself. Nothing needs it committed: the file is deleted on close.
        self._conn.execute("BEGIN")

    def _row(self, seq: int, billing: ExpectedBilling) -> tuple[object, ...]:
        period = billing.period
        start, end = period.start.isoformat(), period.end.isoformat()
        self.periods.setdefault((start, end), period)
        self.expected_totals[billing.currency] = (
            self.expected_totals.get(billing.currency, Decimal(0)) + billing.total
        )
        self.count += 1
        return seq, billing.customer_id, billing.billing_key, start, end, str(billing.total), billing.currency

    def duplicates(self) -> Iterator[tuple[int, int]]:
        """``(seq, first seq)`` of every row that repeats an earlier row's billing."""
        rows = self._conn.execute(
            "SELECT seq, first FROM (SELECT seq, min(seq) OVER (PARTITION BY customer_id, period_start,"
            " period_end, billing_key) AS first FROM expected) WHERE seq != first ORDER BY seq"
        )
        for seq, first in rows:
            yield int(seq), int(first)

    # -- matching ---------------------------------------------------------------------------------------

    def knows_key(self, billing_key: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM expected WHERE billing_key = ? LIMIT 1", (billing_key,))
        return row.fetchone() is not None

    def candidates(
        self, customer_id: str, periods: Iterable[tuple[str, str]], billing_key: str | None
    ) -> list[Candidate]:
        """The billings of the customer for each period in turn (in input order), of ``billing_key`` only
        unless it is None."""
        found: list[Candidate] = []
        for period in periods:
            if billing_key is None:
                rows = self._conn.execute(_CANDIDATES_OF_CUSTOMER, (customer_id, *period))
            else:
                rows = self._conn.execute(_CANDIDATES_OF_KEY, (customer_id, *period, billing_key))
            found += (Candidate(seq, key, period, live) for seq, key, live in rows)
        return found

    def billing(self, seq: int) -> ExpectedBilling:
        """The expected billing of row ``seq`` (read when a finding needs it, not for every match)."""
        row = self._conn.execute(
            "SELECT customer_id, billing_key, period_start, period_end, total, currency FROM expected"
            " WHERE seq = ?",
            (seq,),
        ).fetchone()
        customer, key, start, end, total, currency = row
        return ExpectedBilling(customer, key, self.periods[(start, end)], Decimal(total), currency)

    def record_live(
        self, seq: int, invoice_id: str, total: Decimal | None, currency: str, status: str
    ) -> None:
        """One more live invoice of billing ``seq``; the first one's total, currency and status are kept."""
        text = None if total is None else str(total)
        self._conn.execute(_RECORD_LIVE, (seq, invoice_id, text, currency, status))

    def unsettled(self) -> Iterator[BillingState]:
        """In input order, every billing with no live invoice, several, or one whose total or currency text
        differs (a superset: ``119.0`` against ``119.00`` is for the caller's Decimal comparison to clear)."""
        for row in self._conn.execute(_UNSETTLED):
            yield self._state(row)

    def _state(self, row: tuple[Any, ...]) -> BillingState:
        seq, customer, key, start, end, total, currency, live, first, second, invoiced, inv_cur, status = row
        return BillingState(
            seq=seq,
            expected=ExpectedBilling(customer, key, self.periods[(start, end)], Decimal(total), currency),
            live=live,
            live_ids=tuple(i for i in (first, second) if i is not None),
            invoiced_total=None if invoiced is None else Decimal(invoiced),
            invoiced_currency=inv_cur,
            status=status,
        )
