"""The billing DAG under a real Airflow: scheduler, dag-processor, triggerer and api-server as processes.

LocalExecutor on SQLite (Airflow 3 runs that combination; the api-server is needed because task processes
talk to the Execution API). The DAG is unpaused at creation, so the scheduler itself creates the run for
the last complete month. The invoices are paid only once the payment sensor has deferred, so the
triggerer is certain to do the waiting. Bounded in time; the processes are always stopped
(``process_support``). The same billing run under CeleryExecutor: ``test_celery_e2e.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import airflow_cluster as cluster
import pytest
from process_support import process_groups, wait_for

from enlivy_provider.testing import EmulatorHandle, free_port

# The harness (tests/e2e/airflow_cluster.py) starts Airflow 3's components: api-server and dag-processor.
pytestmark = pytest.mark.airflow3_only(
    reason="the e2e cluster harness starts Airflow 3's api-server and dag-processor; Airflow 2 has neither"
)

UNTIL_DEFERRED_S = 240  # a loaded 2-core machine runs five Airflow processes, the emulator and pytest
UNTIL_FINISHED_S = 120


@contextlib.contextmanager
def local_cluster(
    tmp_path: Path,
    emulator: EmulatorHandle,
    *,
    dag_id: str = cluster.DAG_ID,
    write_dags: Callable[[Path], None] | None = None,
    month_end_dag: bool = False,
    extra_env: dict[str, str] | None = None,
) -> Iterator[cluster.RunWatcher]:
    """api-server, scheduler, dag-processor and triggerer (LocalExecutor, SQLite) in their own AIRFLOW_HOME,
    watching ``dag_id``'s run; stopped after. The DAG folder holds the billing DAG (and the month-end DAG if
    ``month_end_dag``), or what ``write_dags`` writes into it; ``extra_env`` adds to (or overrides) the
    components' environment."""
    home, dags = cluster.prepare_home(tmp_path, billing_dag=write_dags is None, month_end_dag=month_end_dag)
    if write_dags is not None:
        write_dags(dags)
    database = f"sqlite:///{home / 'airflow.db'}"
    env = cluster.airflow_env(
        home,
        dags,
        api_port=free_port(),
        connection=emulator.connection_json(),
        executor="LocalExecutor",
        sql_alchemy_conn=database,
        extra=extra_env,
    )
    cluster.migrate(env)
    db = cluster.MetadataDB(database)
    with process_groups(tmp_path / "logs") as processes:
        try:
            cluster.start_components(processes, env)
            yield cluster.RunWatcher(db, processes, dag_id=dag_id)
        finally:
            db.close()


@pytest.fixture
def airflow_processes(tmp_path: Path, enlivy_emulator: EmulatorHandle) -> Iterator[cluster.RunWatcher]:
    """The local cluster running the billing DAG."""
    with local_cluster(tmp_path, enlivy_emulator) as watcher:
        yield watcher


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


SHARED_DAG_ID = "enlivy_shared_poller_e2e"
SHARED_DAG = """
import pendulum
from airflow.providers.common.compat.sdk import DAG

from enlivy_provider.sensors.invoice_status import EnlivyInvoiceStatusSensor

with DAG("{dag_id}", schedule="@once", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
    for n, invoice_id in enumerate({ids!r}):
        EnlivyInvoiceStatusSensor(
            task_id=f"wait_{{n}}", invoice_ids=invoice_id, deferrable=True, poke_interval=2, timeout=200
        )
"""
SENSORS = 3


def _list_call_ids(emulator: Any) -> list[set[str]]:
    calls = emulator.request_log("GET", "/organizations/{org}/invoices")
    return [set(dict(parse_qsl(call["query"])).get("ids", "").split(",")) for call in calls]


@pytest.mark.slow
@pytest.mark.timeout(UNTIL_DEFERRED_S + UNTIL_FINISHED_S + 120)
def test_deferred_sensors_in_one_triggerer_share_one_poller(
    tmp_path: Path, enlivy_emulator: EmulatorHandle
) -> None:
    """Three sensors of one DAG defer to one real triggerer: once all three wait there, each poll is ONE list
    call carrying the three invoice ids (polling alone, it would be three calls of one id)."""
    from enlivy_provider.client import EnlivyClient
    from enlivy_provider.testing import invoice_payload

    with EnlivyClient(
        enlivy_emulator.base_url, enlivy_emulator.token, organization_id=enlivy_emulator.org_id
    ) as api:
        ids = [api.create_invoice(invoice_payload(n))["id"] for n in range(SENSORS)]
    enlivy_emulator.reset_counters()

    def write_dags(dags: Path) -> None:
        (dags / f"{SHARED_DAG_ID}.py").write_text(SHARED_DAG.format(dag_id=SHARED_DAG_ID, ids=ids))

    everyone = set(ids)

    def shared_calls() -> list[set[str]]:
        calls = _list_call_ids(enlivy_emulator)
        first = next((n for n, call in enumerate(calls) if call == everyone), None)
        return [] if first is None else calls[first:]

    with local_cluster(tmp_path, enlivy_emulator, dag_id=SHARED_DAG_ID, write_dags=write_dags) as watcher:
        calls = wait_for(
            f"three polls carrying all {SENSORS} invoices (the first shared call and two more rounds)",
            lambda: found if len(found := shared_calls()) >= 3 else None,
            timeout_s=UNTIL_DEFERRED_S,
            details=lambda: (
                f"list calls {_list_call_ids(enlivy_emulator)}; {watcher.poll() and watcher.describe()}"
            ),
        )
        watcher.poll()
        assert {watcher.current(f"wait_{n}") for n in range(SENSORS)} == {"deferred"}, watcher.describe()
        # From the first shared call on, every poll carried all three ids: never one call per sensor.
        assert all(call == everyone for call in calls), calls

        for invoice_id in ids:
            enlivy_emulator.set_invoice_status(invoice_id, "paid")
        state = watcher.wait_until_finished(timeout_s=UNTIL_FINISHED_S)
        assert state == "success", watcher.describe()
        tasks = dict(
            watcher.db.query("SELECT task_id, state FROM task_instance WHERE dag_id = :d", d=SHARED_DAG_ID)
        )
        assert tasks == {f"wait_{n}": "success" for n in range(SENSORS)}
