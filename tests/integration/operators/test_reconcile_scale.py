"""EnlivyReconcileInvoicesOperator at scale and at the edges of its on-disk index of expected rows.

The expected rows live in a temporary SQLite database, not in Python objects (docs/operators.md,
"Reconciliation"): the task's memory must not grow with them, and what goes through that database (duplicate
rows, exact amounts, billings with several invoices, invoices without a billing key) must come out as before.
Helpers and the October conventions come from test_reconcile_operator.py.
"""

from __future__ import annotations

import csv
import tracemalloc
from decimal import Decimal
from pathlib import Path
from typing import Any

from invoice_support import CUSTOMERS, assert_refused_without_requests, result, run, try_numbers
from test_reconcile_operator import OCT, OCTOBER_RUN, reconcile_dag, row, seed

C0, C1 = CUSTOMERS[0], CUSTOMERS[1]
ALL_ZERO = {"missing": 0, "duplicate": 0, "unexpected": 0, "total_mismatch": 0, "cancelled_or_deleted": 0}


def write_expected_csv(path: Path, count: int, key: str = "scale-{i}") -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("customer_id,billing_key,period_start,period_end,total,currency\n")
        for i in range(count):
            handle.write(
                f"{CUSTOMERS[i % len(CUSTOMERS)]},{key.format(i=i)},2026-10-01,2026-10-31,119.00,EUR\n"
            )
    return path


class HeapPeak:
    """Python heap peak (tracemalloc) of the task's ``execute`` alone, through the operator's pre/post hooks."""

    def __init__(self) -> None:
        self.peak = 0

    def start(self, _context: Any) -> None:
        tracemalloc.start()

    def stop(self, _context: Any, _result: Any) -> None:
        self.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def reconciled(name: str, expected: Any, report: Path, **operator_kwargs: Any) -> dict[str, Any]:
    """The summary of an October reconcile task that reports findings without failing on them."""
    dag = reconcile_dag(
        name, expected=expected, report_path=f"file://{report}", fail_on=(), **operator_kwargs
    )
    states, dag_run = run(dag, **OCTOBER_RUN)
    assert states == {"reconcile": "success"}
    summary: dict[str, Any] = result(dag_run, "reconcile")
    return summary


def reconcile_matching(emulator: Any, tmp_path: Path, count: int) -> tuple[dict[str, Any], int]:
    """``count`` October invoices and the ``count`` rows expecting them (CSV); the summary and heap peak."""
    emulator.reset()
    emulator.bulk_invoices(
        count,
        customer_ids=CUSTOMERS,
        billing_key="scale-{i}",
        issued_at="2026-11-01",
        due_at="2026-11-15",
        **OCT,
    )
    expected = write_expected_csv(tmp_path / f"expected-{count}.csv", count)
    heap = HeapPeak()
    summary = reconciled(
        f"reconcile_scale_{count}",
        f"file://{expected}",
        tmp_path / f"report-{count}.csv",
        pre_execute=heap.start,
        post_execute=heap.stop,
    )
    return summary, heap.peak


def test_memory_does_not_grow_with_the_expected_rows(enlivy_emulator: Any, tmp_path: Path) -> None:
    """1,000 then 10,000 rows and invoices: the Python heap peak of the task grows by less than 1 MiB.

    Before the index it grew by about 1.1 KB per expected row (about 10 MB here)."""
    small, small_peak = reconcile_matching(enlivy_emulator, tmp_path, 1_000)
    large, large_peak = reconcile_matching(enlivy_emulator, tmp_path, 10_000)
    for summary, count in ((small, 1_000), (large, 10_000)):
        assert (summary["expected"], summary["invoices_read"], summary["invoices_in_scope"]) == (count,) * 3
        assert summary["counts"] == ALL_ZERO
        assert summary["totals"]["EUR"]["expected"] == summary["totals"]["EUR"]["invoiced"]
    assert large["totals"]["EUR"]["expected"] == "1190000.00"
    growth = large_peak - small_peak
    assert growth < 1024 * 1024, f"heap peak {small_peak:,} B at 1,000 rows, {large_peak:,} B at 10,000"


def test_duplicate_expected_rows_fail_naming_both_before_any_request(
    enlivy_emulator: Any, tmp_path: Path, failures: Any
) -> None:
    """Rows 3 and 4 repeat row 1's billing (row 4 only after trimming and upper-casing): all three named."""
    path = tmp_path / "expected.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "billing_key", "total", "currency"])
        writer.writerows(
            [
                [C0, "a", "119.00", "EUR"],
                [C0, "b", "119.00", "EUR"],
                [C1, "b", "119.00", "EUR"],
                [C0, "b", "100.00", "EUR"],
                [f" {C0} ", "b", "119.00", "eur"],
            ]
        )
    enlivy_emulator.reset_counters()
    dag = reconcile_dag(
        "reconcile_duplicate_rows",
        expected=f"file://{path}",
        report_path=f"file://{tmp_path}/r.csv",
        retries=2,
        on_failure_callback=failures,
    )
    states, dag_run = run(dag, **OCTOBER_RUN)
    assert_refused_without_requests(
        enlivy_emulator, failures, states, "expected[3]: is the same billing as expected[1]"
    )
    assert try_numbers(dag_run) == {"reconcile": 1}
    assert "expected[4]: is the same billing as expected[1]" in failures.text()
    assert "expected[2]" not in failures.text() and "(2 problems)" in failures.text()
    assert not (tmp_path / "r.csv").exists()


def test_amounts_stay_exact_decimals_through_the_index(enlivy_emulator: Any, tmp_path: Path) -> None:
    """119.000 equals an invoiced 119.00 (other text, same amount); 119.000000000000000001 does not — as a
    float it would, and the mismatch of 10^-18 would be lost."""
    seed(enlivy_emulator, key="same")
    tiny = seed(enlivy_emulator, key="tiny")[0]
    expected = [row("same", total="119.000"), row("tiny", total="119.000000000000000001")]
    summary = reconciled("reconcile_exact", expected, tmp_path / "r.json")
    assert summary["counts"] == {**ALL_ZERO, "total_mismatch": 1}
    mismatch = summary["examples"]["total_mismatch"][0]
    assert (mismatch["billing_key"], mismatch["invoice_ids"]) == ("tiny", tiny)
    assert (mismatch["expected_total"], mismatch["invoiced_total"]) == ("119.000000000000000001", "119.00")
    assert Decimal(mismatch["difference"]) == Decimal("-0.000000000000000001")
    totals = summary["totals"]["EUR"]
    assert (totals["expected"], totals["invoiced"]) == ("238.000000000000000001", "238.00")
    assert Decimal(totals["difference"]) == Decimal("-0.000000000000000001")


def test_several_invoices_of_a_billing_and_one_without_a_key(enlivy_emulator: Any, tmp_path: Path) -> None:
    """Three live invoices of one billing: the first two ids, then +1. An October invoice of C1 without any
    billing key (made by hand), issued after C1's "x" invoice, is taken as C1's other billing, "y"."""
    first = seed(enlivy_emulator, key="dup3")[0]
    second = seed(enlivy_emulator, key="dup3", issued_at="2026-11-02")[0]
    seed(enlivy_emulator, key="dup3", issued_at="2026-11-03")
    seed(enlivy_emulator, key="x", customer=C1)
    enlivy_emulator.bulk_invoices(1, customer_ids=[C1], issued_at="2026-11-04", due_at="2026-11-15", **OCT)
    expected = [row("dup3"), row("x", customer=C1), row("y", customer=C1)]
    summary = reconciled("reconcile_several", expected, tmp_path / "r.csv")
    assert summary["counts"] == {**ALL_ZERO, "duplicate": 1}
    assert summary["examples"]["duplicate"][0]["invoice_ids"] == f"{first},{second},+1"
    assert summary["invoices_in_scope"] == 5
    # Each billing's first live invoice counts: dup3's first, x, and the hand-made one for y.
    assert summary["totals"]["EUR"] == {"expected": "357.00", "invoiced": "357.00", "difference": "0.00"}
