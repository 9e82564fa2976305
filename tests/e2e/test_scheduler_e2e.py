"""The billing DAG under a real Airflow: scheduler, dag-processor, triggerer and api-server as processes.

LocalExecutor on SQLite (Airflow 3 runs that combination; the api-server is needed because task processes
talk to the Execution API). The DAG is unpaused at creation, so the scheduler itself creates the run for
the last complete month. The invoices are paid only once the payment sensor has deferred, so the
triggerer is certain to do the waiting. Bounded in time; the processes are always stopped
(``process_support``). The same billing run under CeleryExecutor: ``test_celery_e2e.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import airflow_cluster as cluster
import pytest
from process_support import process_groups

from enlivy_provider.testing import EmulatorHandle, free_port

UNTIL_DEFERRED_S = 240  # a loaded 2-core machine runs five Airflow processes, the emulator and pytest
UNTIL_FINISHED_S = 120


@pytest.fixture
def airflow_processes(tmp_path: Path, enlivy_emulator: EmulatorHandle) -> Iterator[cluster.RunWatcher]:
    """api-server, scheduler, dag-processor and triggerer in their own AIRFLOW_HOME; stopped after."""
    home, dags = cluster.prepare_home(tmp_path)
    database = f"sqlite:///{home / 'airflow.db'}"
    env = cluster.airflow_env(
        home,
        dags,
        api_port=free_port(),
        connection=enlivy_emulator.connection_json(),
        executor="LocalExecutor",
        sql_alchemy_conn=database,
    )
    cluster.migrate(env)
    db = cluster.MetadataDB(database)
    with process_groups(tmp_path / "logs") as processes:
        try:
            cluster.start_components(processes, env)
            yield cluster.RunWatcher(db, processes)
        finally:
            db.close()


@pytest.mark.slow
@pytest.mark.timeout(UNTIL_DEFERRED_S + UNTIL_FINISHED_S + 120)
def test_scheduler_runs_billing_dag_with_deferred_payment_wait(
    enlivy_emulator: EmulatorHandle, airflow_processes: cluster.RunWatcher
) -> None:
    watcher = airflow_processes
    watcher.pay_when_deferred(enlivy_emulator, timeout_s=UNTIL_DEFERRED_S)
    state = watcher.wait_until_finished(timeout_s=UNTIL_FINISHED_S)

    assert state == "success", watcher.describe()
    assert "deferred" in watcher.states[cluster.SENSOR_TASK], f"the sensor never deferred: {watcher.states}"
    tasks = dict(
        watcher.db.query("SELECT task_id, state FROM task_instance WHERE dag_id = :d", d=cluster.DAG_ID)
    )
    assert tasks["create_invoices"] == "success"
    assert tasks[cluster.SENSOR_TASK] == "success"
    assert tasks["preview_invoices"] == "skipped"
    assert tasks["summary"] == "success"

    # The scheduler's own run billed the last complete month: one paid invoice per customer.
    month = cluster.last_complete_month()
    assert watcher.data_interval_start() == month
    cluster.assert_billed_once(enlivy_emulator, month)
