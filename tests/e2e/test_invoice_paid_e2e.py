"""dags/enlivy_invoice_paid.py under a real Airflow 3: the triggerer runs the AssetWatcher's
EnlivyInvoiceEventTrigger, invoices are paid in the emulator, and the scheduler runs the DAG once per paid
invoice, each run writing the order and its receipt line once.

The invoices are paid one at a time, each after the previous run finished, so that each payment is its own
run (asset events that arrive together share one run, by Airflow's design). Every wait is bounded and says
what it waited for.
"""

from __future__ import annotations

from pathlib import Path

import invoice_paid_support as paid
import pytest
from process_support import wait_for
from test_scheduler_e2e import local_cluster

from enlivy_provider.testing import EmulatorHandle

pytestmark = pytest.mark.airflow3_only(
    reason="AssetWatcher and BaseEventTrigger (event-driven scheduling) exist only in Airflow 3"
)


def test_each_paid_invoice_runs_the_dag_once_and_is_recorded_once(
    tmp_path: Path, enlivy_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    paid.configure(monkeypatch, enlivy_emulator, ledger)
    first, second, cancelled = paid.create_invoices(enlivy_emulator, 3)

    with local_cluster(tmp_path, enlivy_emulator, dag_id=paid.DAG_ID, write_dags=paid.write_dag) as watcher:
        details = paid.details(watcher)

        # The trigger stores its starting position (the end of the trail) before its first read: payments
        # made after that are the ones it reports.
        wait_for("the triggerer's invoice event trigger to store its position", lambda: paid.cursor(watcher),
                 timeout_s=paid.UNTIL_WATCHING_S, details=details)  # fmt: skip
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
        for run_id, _ in paid.runs(watcher):
            (payload,) = paid.run_payloads(watcher, run_id)
            assert payload["new_status"] == "paid" and payload["old_status"] == "pending"
