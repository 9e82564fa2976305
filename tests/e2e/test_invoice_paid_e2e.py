"""dags/enlivy_invoice_paid.py under a real Airflow 3: the triggerer runs the AssetWatcher's
EnlivyInvoiceEventTrigger, invoices are paid in the emulator, and the scheduler runs the DAG once per paid
invoice, each run writing the order and its receipt line once.

The invoices are paid one at a time, each after the previous run finished, so that each payment is its own
run (asset events that arrive together share one run, by Airflow's design). Every wait is bounded and says
what it waited for.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

import airflow_cluster as cluster
import pytest
from process_support import wait_for
from test_scheduler_e2e import local_cluster

from enlivy_provider.client import EnlivyClient
from enlivy_provider.testing import EmulatorHandle, invoice_payload
from enlivy_provider.triggers.invoice_events import CURSOR_KEY_PREFIX

pytestmark = pytest.mark.airflow3_only(
    reason="AssetWatcher and BaseEventTrigger (event-driven scheduling) exist only in Airflow 3"
)

DAG_ID = "enlivy_invoice_paid"
UNTIL_WATCHING_S = 240  # five Airflow processes start on a loaded 2-core machine
UNTIL_RUN_S = 180


def _runs(watcher: cluster.RunWatcher) -> list[tuple[str, str]]:
    return [
        (str(run_id), str(state))
        for run_id, state in watcher.db.query(
            "SELECT run_id, state FROM dag_run WHERE dag_id = :d ORDER BY id", d=DAG_ID
        )
    ]


def _cursor(watcher: cluster.RunWatcher) -> dict[str, object] | None:
    rows = watcher.db.query(
        "SELECT value FROM asset_state_store WHERE key LIKE :k", k=f"{CURSOR_KEY_PREFIX}:%"
    )
    return json.loads(rows[0][0]) if rows else None


def _ledger(path: Path) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    with sqlite3.connect(path) as db:
        orders = db.execute(
            "SELECT invoice_id, order_reference FROM paid_orders ORDER BY invoice_id"
        ).fetchall()
        receipts = db.execute(
            "SELECT invoice_id, total, currency FROM receipts ORDER BY invoice_id"
        ).fetchall()
    return orders, receipts


def test_each_paid_invoice_runs_the_dag_once_and_is_recorded_once(
    tmp_path: Path, enlivy_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    # The components inherit these (cluster.airflow_env keeps the caller's non-Airflow variables).
    monkeypatch.setenv("ENLIVY_PAID_LEDGER", str(ledger))
    monkeypatch.setenv("ENLIVY_PAID_POLL_SECONDS", "1")
    monkeypatch.setenv("ENLIVY_API_HOST", str(urlsplit(enlivy_emulator.base_url).netloc))
    monkeypatch.setenv("ENLIVY_ORGANIZATION_ID", enlivy_emulator.org_id)
    with EnlivyClient(
        enlivy_emulator.base_url, enlivy_emulator.token, organization_id=enlivy_emulator.org_id
    ) as client:
        first, second, cancelled = (client.create_invoice(invoice_payload(n))["id"] for n in range(3))

    def write_dags(dags: Path) -> None:
        shutil.copy(cluster.DAGS_DIR / f"{DAG_ID}.py", dags)

    with local_cluster(tmp_path, enlivy_emulator, dag_id=DAG_ID, write_dags=write_dags) as watcher:

        def details() -> str:
            return f"runs {_runs(watcher)}, cursor {_cursor(watcher)}\n{watcher.processes.tail()}"

        # The trigger stores its starting position (the end of the trail) before its first read: payments
        # made after that are the ones it reports.
        wait_for("the triggerer's invoice event trigger to store its position", lambda: _cursor(watcher),
                 timeout_s=UNTIL_WATCHING_S, details=details)  # fmt: skip
        assert _runs(watcher) == []

        enlivy_emulator.set_invoice_status(first, "paid")
        wait_for("one successful run for the first paid invoice",
                 lambda: [state for _, state in _runs(watcher)] == ["success"],
                 timeout_s=UNTIL_RUN_S, details=details)  # fmt: skip

        # Cancelled is not "paid": no run. The trigger reads the trail in order, so once the next payment's
        # run exists, the cancellation was read (and dropped) before it.
        enlivy_emulator.set_invoice_status(cancelled, "cancelled")
        enlivy_emulator.set_invoice_status(second, "paid")
        wait_for("a second successful run, for the second paid invoice",
                 lambda: [state for _, state in _runs(watcher)] == ["success", "success"],
                 timeout_s=UNTIL_RUN_S, details=details)  # fmt: skip

        orders, receipts = _ledger(ledger)
        assert orders == sorted([(first, first), (second, second)])
        assert receipts == sorted([(first, "226.10", "EUR"), (second, "226.10", "EUR")])
        cursor = _cursor(watcher)
        assert cursor is not None and isinstance(cursor["consumed"], int) and cursor["consumed"] > 0
        # Each run saw exactly its own invoice.
        for run_id, _ in _runs(watcher):
            ((extra,),) = watcher.db.query(
                "SELECT ae.extra FROM asset_event ae JOIN dagrun_asset_event dae ON dae.event_id = ae.id "
                "JOIN dag_run dr ON dr.id = dae.dag_run_id WHERE dr.run_id = :r AND dr.dag_id = :d",
                r=run_id,
                d=DAG_ID,
            )
            payload = json.loads(extra)["payload"]
            assert payload["new_status"] == "paid" and payload["old_status"] == "pending"
