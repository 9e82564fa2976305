"""dags/enlivy_invoice_paid.py under a real Airflow 3: the triggerer runs the AssetWatcher's
EnlivyInvoiceEventTrigger, invoices are paid in the emulator, and the scheduler runs the DAG once per paid
invoice, each run writing the order and its receipt line once.

The invoices are paid one at a time, each after the previous run finished, so that each payment is its own
run (Airflow does not give each of several events recorded together a run of its own: docs/events.md).
Every wait is bounded and says what it waited for.
"""

from __future__ import annotations

from pathlib import Path

import invoice_paid_support as paid
import pytest
from process_support import wait_for

from enlivy_provider.testing import EmulatorHandle

pytestmark = pytest.mark.airflow3_only(
    reason="AssetWatcher and BaseEventTrigger (event-driven scheduling) exist only in Airflow 3"
)


def test_each_paid_invoice_runs_the_dag_once_and_is_recorded_once(
    tmp_path: Path, enlivy_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    with paid.paid_cluster(tmp_path, enlivy_emulator, monkeypatch) as airflow:
        watcher, details, ledger = airflow.watcher, airflow.details, airflow.ledger
        first, second, cancelled = airflow.invoices
        assert paid.runs(watcher) == []

        enlivy_emulator.set_invoice_status(first, "paid")
        wait_for("one successful run for the first paid invoice",
                 lambda: paid.run_states(watcher) == ["success"],
                 timeout_s=paid.UNTIL_RUN_S, details=details)  # fmt: skip

        # Cancelled is not "paid": no run. The trigger reads the trail in order, so once the next payment's
        # run exists, the cancellation was read (and dropped) before it.
        enlivy_emulator.set_invoice_status(cancelled, "cancelled")
        enlivy_emulator.set_invoice_status(second, "paid")
        wait_for("a second successful run, for the second paid invoice",
                 lambda: paid.run_states(watcher) == ["success", "success"],
                 timeout_s=paid.UNTIL_RUN_S, details=details)  # fmt: skip

        orders, receipts = paid.ledger_rows(ledger)
        assert orders == sorted([(first, first), (second, second)])
        assert receipts == sorted([(first, "226.10", "EUR"), (second, "226.10", "EUR")])
        cursor = paid.cursor(watcher)
        assert cursor is not None and isinstance(cursor["consumed"], int) and cursor["consumed"] > 0
        # Each run saw exactly its own invoice.
        payloads = [paid.run_payloads(watcher, run_id) for run_id, _ in paid.runs(watcher)]
        assert [[p["invoice_id"] for p in run] for run in payloads] == [[first], [second]]
        assert all(
            p["old_status"] == "pending" and p["new_status"] == "paid" for run in payloads for p in run
        )
