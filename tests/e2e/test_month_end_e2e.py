"""dags/enlivy_month_end.py scheduled on the billing DAG's asset alias, under a real Airflow 3: scheduler,
dag-processor, triggerer and api-server as processes, both DAGs unpaused at creation.

The scheduler bills the last complete month; the billing's ``summary`` records its event through the
``enlivy_billed_invoices`` alias; the scheduler then makes an asset-triggered month-end run, which closes the
month the event names. Nobody pays (the payment wait gives up after a few seconds), so the month-end run has
every invoice to e-mail.

The month-end DAG's backstop (06:00 on the 4th) also makes its latest run when the DAG appears; which month
that run closes, and whether it fails for lack of invoices, depends on today's date. This test asserts on the
asset-triggered run only, and on what holds whatever the backstop did: every invoice e-mailed once.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import airflow_cluster as cluster
import pytest
from process_support import wait_for
from test_scheduler_e2e import local_cluster

from enlivy_provider.testing import EmulatorHandle

pytestmark = pytest.mark.airflow3_only(
    reason="the e2e cluster harness starts Airflow 3's api-server and dag-processor; Airflow 2 has neither"
)

UNTIL_BILLED_S = 300  # five Airflow processes start on a loaded 2-core machine, then the billing run
UNTIL_CLOSED_S = 240  # the backstop's run may go first (one month-end run at a time)


def _month_end_runs(watcher: cluster.RunWatcher) -> list[tuple[str, str, str]]:
    return [
        (str(run_id), str(run_type), str(state))
        for run_id, run_type, state in watcher.db.query(
            "SELECT run_id, run_type, state FROM dag_run WHERE dag_id = :d ORDER BY id",
            d=cluster.MONTH_END_DAG_ID,
        )
    ]


def _asset_run(watcher: cluster.RunWatcher) -> tuple[str, str] | None:
    """(run id, state) of the asset-triggered month-end run once it finished."""
    finished = [
        (run_id, state)
        for run_id, run_type, state in _month_end_runs(watcher)
        if run_type == "asset_triggered" and state in ("success", "failed")
    ]
    return finished[0] if finished else None


def _xcom(watcher: cluster.RunWatcher, run_id: str, task_id: str) -> Any:
    ((value,),) = watcher.db.query(
        "SELECT value FROM xcom WHERE dag_id = :d AND run_id = :r AND task_id = :t AND key = 'return_value'",
        d=cluster.MONTH_END_DAG_ID,
        r=run_id,
        t=task_id,
    )
    return json.loads(value) if isinstance(value, str) else value


@pytest.mark.slow
@pytest.mark.timeout(UNTIL_BILLED_S + UNTIL_CLOSED_S + 120)
def test_billing_event_makes_the_scheduler_close_the_month_it_billed(
    tmp_path: Path, enlivy_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The components inherit these: the payment wait gives up quickly, and nobody pays.
    monkeypatch.setenv("ENLIVY_PAYMENT_POKE_SECONDS", "1")
    monkeypatch.setenv("ENLIVY_PAYMENT_TIMEOUT_SECONDS", "5")
    month = cluster.last_complete_month()

    with local_cluster(tmp_path, enlivy_emulator, month_end_dag=True) as watcher:

        def details() -> str:
            return f"month-end runs {_month_end_runs(watcher)}; {watcher.describe()}"

        state = wait_for("the scheduler's billing run to finish", lambda: watcher.poll() and
                         watcher.run_state in ("success", "failed") and watcher.run_state,
                         timeout_s=UNTIL_BILLED_S, details=details)  # fmt: skip
        assert state == "success", details()
        run_id, closed_state = wait_for("an asset-triggered month-end run to finish", lambda: _asset_run(watcher),
                                        timeout_s=UNTIL_CLOSED_S, details=details)  # fmt: skip

        assert closed_state == "success", details()
        usage = _xcom(watcher, run_id, "collect_usage")
        assert usage["period"]["start"] == month.to_date_string()  # the month the billing's event named
        assert usage["period"]["end"] == month.end_of("month").to_date_string()
        runs = _month_end_runs(watcher)
        assert [r for r in runs if r[1] == "asset_triggered"] == [(run_id, "asset_triggered", "success")], (
            runs
        )
        (event_extra,) = watcher.db.query(
            "SELECT ae.extra FROM asset_event ae JOIN dagrun_asset_event dae ON dae.event_id = ae.id "
            "JOIN dag_run dr ON dr.id = dae.dag_run_id WHERE dr.run_id = :r AND dr.dag_id = :d",
            r=run_id,
            d=cluster.MONTH_END_DAG_ID,
        )[0]
        assert json.loads(event_extra)["billing_period"] == month.format("YYYY-MM")

    invoices = {invoice["id"] for invoice in enlivy_emulator.live_invoices()}
    first_sends = Counter(
        e["organization_invoice_id"]
        for e in enlivy_emulator.emails()
        if not e["subject"].startswith("Payment reminder")
    )
    assert first_sends == dict.fromkeys(invoices, 1)  # each billed invoice e-mailed once, by whichever run
    closed = json.loads(
        (tmp_path / "airflow" / "reports" / f"month-end-closed-{month.format('YYYY-MM')}.json").read_text()
    )
    assert closed["period"]["start"] == month.to_date_string()
