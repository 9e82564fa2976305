"""What the end-to-end tests of dags/enlivy_invoice_paid.py share: the DAG's environment, its invoices, and
reading its runs, their asset events, the trigger's stored position and the ledger.

The readers query the metadata database through ``RunWatcher.db`` (read-only) and never wait: the tests wait
with :func:`process_support.wait_for`, giving :func:`details` as what to show when a wait fails.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import airflow_cluster as cluster
import pytest
from process_support import wait_for
from test_scheduler_e2e import local_cluster

from enlivy_provider.client import EnlivyClient
from enlivy_provider.testing import EmulatorHandle, invoice_payload
from enlivy_provider.triggers.invoice_events import CURSOR_KEY_PREFIX

DAG_ID = "enlivy_invoice_paid"
ASSET_NAME = "enlivy_paid_invoices"
UNTIL_WATCHING_S = 240  # five Airflow processes start on a loaded 2-core machine
UNTIL_RUN_S = 180


@dataclass(frozen=True)
class PaidCluster:
    watcher: cluster.RunWatcher
    ledger: Path  # the DAG's SQLite ledger
    invoices: list[str]  # three pending invoices, created before Airflow started
    details: Callable[[], str]  # for wait_for


@contextlib.contextmanager
def paid_cluster(
    tmp_path: Path,
    emulator: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
    *,
    extra_env: dict[str, str] | None = None,
) -> Iterator[PaidCluster]:
    """The local cluster running the example DAG alone, once its trigger has stored its starting position
    (the end of the trail, stored before its first read): payments made from then on are the ones it reports.
    ``extra_env``: more settings for the Airflow components."""
    ledger = tmp_path / "ledger.sqlite3"
    configure(monkeypatch, emulator, ledger)
    invoices = create_invoices(emulator, 3)
    with local_cluster(
        tmp_path, emulator, dag_id=DAG_ID, write_dags=write_dag, extra_env=extra_env
    ) as watcher:
        wait_for("the triggerer's invoice event trigger to store its position", lambda: cursor(watcher),
                 timeout_s=UNTIL_WATCHING_S, details=details(watcher))  # fmt: skip
        yield PaidCluster(watcher, ledger, invoices, details(watcher))


def configure(monkeypatch: pytest.MonkeyPatch, emulator: EmulatorHandle, ledger: Path) -> None:
    """The DAG's settings, polling every second; the components inherit them (``cluster.airflow_env`` keeps
    the caller's non-Airflow variables)."""
    monkeypatch.setenv("ENLIVY_PAID_LEDGER", str(ledger))
    monkeypatch.setenv("ENLIVY_PAID_POLL_SECONDS", "1")
    monkeypatch.setenv("ENLIVY_API_HOST", str(urlsplit(emulator.base_url).netloc))
    monkeypatch.setenv("ENLIVY_ORGANIZATION_ID", emulator.org_id)


def create_invoices(emulator: EmulatorHandle, count: int) -> list[str]:
    """``count`` pending invoices (created through the API, as a user would); their ids."""
    with EnlivyClient(emulator.base_url, emulator.token, organization_id=emulator.org_id) as client:
        return [client.create_invoice(invoice_payload(n))["id"] for n in range(count)]


def trail_ids(emulator: EmulatorHandle) -> list[str]:
    """The ids of the organization's invoice event trail, oldest first (the order the trigger reads)."""
    with EnlivyClient(emulator.base_url, emulator.token, organization_id=emulator.org_id) as client:
        return [str(entry["id"]) for entry in client.list_event_trails(order="asc")]


def write_dag(dags: Path) -> None:
    """The DAG folder holds the example DAG alone."""
    shutil.copy(cluster.DAGS_DIR / f"{DAG_ID}.py", dags)


def runs(watcher: cluster.RunWatcher) -> list[tuple[str, str]]:
    """(run id, state) of every run of the DAG, oldest first."""
    return [
        (str(run_id), str(state))
        for run_id, state in watcher.db.query(
            "SELECT run_id, state FROM dag_run WHERE dag_id = :d ORDER BY id", d=DAG_ID
        )
    ]


def run_states(watcher: cluster.RunWatcher) -> list[str]:
    return [state for _, state in runs(watcher)]


def run_payloads(watcher: cluster.RunWatcher, run_id: str) -> list[dict[str, Any]]:
    """The trigger's payloads of the asset events that started ``run_id``."""
    rows = watcher.db.query(
        "SELECT ae.extra FROM asset_event ae JOIN dagrun_asset_event dae ON dae.event_id = ae.id "
        "JOIN dag_run dr ON dr.id = dae.dag_run_id WHERE dr.run_id = :r AND dr.dag_id = :d ORDER BY ae.id",
        r=run_id,
        d=DAG_ID,
    )
    return [json.loads(extra)["payload"] for (extra,) in rows]


def asset_payloads(watcher: cluster.RunWatcher) -> list[dict[str, Any]]:
    """The payloads of every asset event recorded for the watched asset, in the order recorded."""
    rows = watcher.db.query(
        "SELECT ae.extra FROM asset_event ae JOIN asset a ON a.id = ae.asset_id WHERE a.name = :n "
        "ORDER BY ae.id",
        n=ASSET_NAME,
    )
    return [json.loads(extra)["payload"] for (extra,) in rows]


def cursor(watcher: cluster.RunWatcher) -> dict[str, Any] | None:
    """The trigger's position in the trail as the asset state store holds it (None before it stored one)."""
    rows = watcher.db.query(
        "SELECT value FROM asset_state_store WHERE key LIKE :k", k=f"{CURSOR_KEY_PREFIX}:%"
    )
    return json.loads(rows[0][0]) if rows else None


def ledger_rows(path: Path) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """The ledger's paid orders (invoice id, order reference) and receipts (invoice id, total, currency)."""
    with sqlite3.connect(path) as db:
        orders = db.execute(
            "SELECT invoice_id, order_reference FROM paid_orders ORDER BY invoice_id"
        ).fetchall()
        receipts = db.execute(
            "SELECT invoice_id, total, currency FROM receipts ORDER BY invoice_id"
        ).fetchall()
    return orders, receipts


def details(watcher: cluster.RunWatcher) -> Callable[[], str]:
    """What a failed wait shows: the runs, the stored position, the asset events and the logs' tails."""
    return lambda: (
        f"runs {runs(watcher)}, cursor {cursor(watcher)}, asset events {asset_payloads(watcher)}\n"
        f"{watcher.processes.tail()}"
    )
