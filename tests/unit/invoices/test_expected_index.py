"""The on-disk index of a reconciliation's expected billings (invoices/expected_index.py): more rows than its
page cache holds, amounts exact through storage, duplicate rows found after the fact."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from enlivy_provider.invoices.billing_period import BillingPeriod
from enlivy_provider.invoices.decimals import to_decimal
from enlivy_provider.invoices.expected_index import ExpectedBilling, ExpectedIndex

OCTOBER = BillingPeriod(dt.date(2026, 10, 1), dt.date(2026, 10, 31))
OCTOBER_TEXT = ("2026-10-01", "2026-10-31")
ROWS = 20_000


def billing(i: int, total: str = "119.00", customer: str | None = None) -> ExpectedBilling:
    return ExpectedBilling(customer or f"org_user_{i % 7}", f"key-{i}", OCTOBER, Decimal(total), "EUR")


def test_more_rows_than_the_page_cache_holds() -> None:
    """20,000 rows in a 64 KiB cache: the database is far larger than the cache, and every lookup, update
    and the final pass still see every row."""
    with ExpectedIndex(cache_kib=64) as index:
        index.load((i, billing(i)) for i in range(ROWS))
        pages, page_size = (
            index._conn.execute(f"PRAGMA {name}").fetchone()[0] for name in ("page_count", "page_size")
        )
        assert pages * page_size > 20 * 64 * 1024
        assert index.count == ROWS and list(index.duplicates()) == []
        assert index.expected_totals == {"EUR": Decimal("119.00") * ROWS}
        for i in range(0, ROWS, 2):  # every other billing invoiced once, every tenth of those twice
            for _ in range(2 if i % 20 == 0 else 1):
                (candidate,) = index.candidates(f"org_user_{i % 7}", [OCTOBER_TEXT], f"key-{i}")
                index.record_live(
                    candidate.seq, f"inv-{i}-{candidate.live}", Decimal("119.00"), "EUR", "pending"
                )
        unsettled = list(index.unsettled())
    missing = [state.seq for state in unsettled if state.live == 0]
    twice = [state for state in unsettled if state.live == 2]
    assert missing == list(range(1, ROWS, 2))
    assert [state.seq for state in twice] == list(range(0, ROWS, 20))
    assert twice[1].live_ids == ("inv-20-0", "inv-20-1") and twice[1].expected.billing_key == "key-20"


def test_amounts_come_back_as_the_same_decimals() -> None:
    """Stored as text, never REAL: each comes back equal and written the same (float would round all but
    the first two)."""
    amounts = [
        "119.00",
        "119.000000000000000001",
        "0.0000001",
        "-0.00",
        "1234567890123456789012345.67",
        "1e3",
    ]
    with ExpectedIndex() as index:
        index.load((i, billing(i, total=str(to_decimal(text)))) for i, text in enumerate(amounts))
        for i, text in enumerate(amounts):
            (candidate,) = index.candidates(f"org_user_{i % 7}", [OCTOBER_TEXT], f"key-{i}")
            index.record_live(candidate.seq, f"inv-{i}", to_decimal(text), "EUR", "pending")
            stored = index.billing(candidate.seq).total
            assert (stored, str(stored)) == (to_decimal(text), str(to_decimal(text)))
        # Every invoiced total's text equals its expected one: nothing is left unsettled.
        assert list(index.unsettled()) == []
        assert index.expected_totals["EUR"] == sum((to_decimal(text) for text in amounts), Decimal(0))


def test_duplicates_name_the_first_row_of_each_billing() -> None:
    rows = [billing(0), billing(1), billing(0, total="5"), billing(2), billing(1), billing(0)]
    with ExpectedIndex() as index:
        index.load(enumerate(rows))
        assert list(index.duplicates()) == [(2, 0), (4, 1), (5, 0)]
