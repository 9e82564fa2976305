"""The billing DAG under a real Airflow: the scheduler, the triggerer and the rest as separate processes.

Airflow 3: LocalExecutor on SQLite, with the api-server (task processes talk to the Execution API) and a
dag-processor; Airflow 2: the SequentialExecutor (the one it runs on SQLite), the scheduler parsing the DAGs.
The DAG is unpaused at creation, so the scheduler itself creates the run for the last complete month; the
emulator pays the invoices some seconds after they are issued, long enough for the sensor to defer, so the
triggerer does the waiting. Bounded in time; the processes are always killed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pendulum
import pytest
from airflow_support import scheduler_components

from enlivy_provider.testing import free_port

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
DAG_ID = "enlivy_recurring_billing"
DEADLINE_S = 240  # a loaded 2-core machine runs five Airflow processes, the emulator and pytest
AUTO_PAY_AFTER_S = 12.0

Started = tuple[Path, dict[str, Path]]  # AIRFLOW_HOME and the log file of each component


def _env(home: Path, dags: Path, settings: dict[str, str], emulator: Any) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW_CONN_ENLIVY_DEFAULT": emulator.connection_json(),
            "ENLIVY_PAYMENT_POKE_SECONDS": "2",
            "ENLIVY_PAYMENT_TIMEOUT_SECONDS": "90",
            "ENLIVY_REPORT_DIR": str(home / "reports"),
            **settings,  # the executor and the components' own settings, by Airflow version
        }
    )
    return env


def _copy_billing_dag(dags: Path) -> None:
    # Only the billing DAG (and its data): the other examples would be scheduled too and slow the run down.
    shutil.copy(DAGS_DIR / f"{DAG_ID}.py", dags)
    shutil.copytree(DAGS_DIR / "data", dags / "data")
    shutil.copytree(DAGS_DIR / "templates", dags / "templates")


@pytest.fixture
def start_airflow(
    tmp_path: Path, enlivy_emulator: Any
) -> Iterator[Callable[[Callable[[Path], None]], Started]]:
    """start_airflow(fill_dags) -> (home, logs): fill a DAG folder, then start Airflow's components
    (airflow_support.scheduler_components) in their own AIRFLOW_HOME; they are killed after the test."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(fill_dags: Callable[[Path], None]) -> Started:
        home, dags, logs = tmp_path / "airflow", tmp_path / "dags", tmp_path / "logs"
        for path in (home, logs, dags):
            path.mkdir()
        fill_dags(dags)
        components, settings = scheduler_components(
            api_port=free_port(), log_ports=(free_port(), free_port())
        )
        env = _env(home, dags, settings, enlivy_emulator)
        airflow = [sys.executable, "-m", "airflow"]

        migrate = subprocess.run(
            [*airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=120
        )
        assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]

        log_files: dict[str, Path] = {}
        for component in components:
            log_files[component] = logs / f"{component}.log"
            with log_files[component].open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        [*airflow, component],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # its own process group: workers and children die with it
                    )
                )
        return home, log_files

    try:
        yield start
    finally:
        for process in processes:
            _kill_group(process, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _kill_group(process, signal.SIGKILL)
                process.wait(timeout=10)


def _kill_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)  # the group this test created for the process (start_new_session)


def _query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError:  # table not there yet, or busy
            return []


def _tail(logs: dict[str, Path]) -> str:
    parts = []
    for name, path in logs.items():
        lines = path.read_text(errors="replace").splitlines()[-25:] if path.exists() else []
        parts.append(f"--- {name}\n" + "\n".join(lines))
    return "\n".join(parts)


@pytest.mark.slow
@pytest.mark.timeout(DEADLINE_S + 120)
def test_scheduler_runs_billing_dag_with_deferred_payment_wait(
    enlivy_emulator: Any, start_airflow: Callable[[Callable[[Path], None]], Started]
) -> None:
    home, logs = start_airflow(_copy_billing_dag)
    enlivy_emulator.configure(auto_pay_after=AUTO_PAY_AFTER_S)
    db = home / "airflow.db"
    sensor_states: list[str] = []
    state = None
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        rows = _query(db, "SELECT state FROM dag_run WHERE dag_id = ?", DAG_ID)
        state = rows[0][0] if rows else None
        ti = _query(
            db, "SELECT state FROM task_instance WHERE dag_id = ? AND task_id = 'wait_for_payment'", DAG_ID
        )
        if ti and ti[0][0] and (not sensor_states or sensor_states[-1] != ti[0][0]):
            sensor_states.append(ti[0][0])
        if state in ("success", "failed"):
            break
        time.sleep(0.5)

    waited = DEADLINE_S - max(0.0, deadline - time.monotonic())
    assert state == "success", (
        f"waited {waited:.0f}s (deadline {DEADLINE_S}s) for the scheduler's billing run to finish: run state "
        f"{state!r}, wait_for_payment states seen {sensor_states}\n{_tail(logs)}"
    )
    assert "deferred" in sensor_states, f"the sensor never deferred: {sensor_states}"
    tasks = dict(_query(db, "SELECT task_id, state FROM task_instance WHERE dag_id = ?", DAG_ID))
    assert tasks["create_invoices"] == "success"
    assert tasks["wait_for_payment"] == "success"
    assert tasks["preview_invoices"] == "skipped"
    assert tasks["summary"] == "success"

    # The scheduler's own run billed the last complete month (Europe/Berlin): one paid invoice per customer.
    last_month = pendulum.now("Europe/Berlin").start_of("month").subtract(months=1)
    ((start,),) = _query(db, "SELECT data_interval_start FROM dag_run WHERE dag_id = ?", DAG_ID)
    assert pendulum.parse(str(start).replace(" ", "T")) == last_month
    invoices = enlivy_emulator.live_invoices()
    assert len(invoices) == 6
    assert {invoice["status"] for invoice in invoices} == {"paid"}
    periods = {line["billing_period_started_at"][:10] for inv in invoices for line in inv["line_items"]}
    assert periods == {last_month.to_date_string()}
    # The scheduler's run has the interval's *start* as logical date; invoices are issued when it ends.
    assert {str(inv["issued_at"])[:10] for inv in invoices} == {last_month.add(months=1).to_date_string()}


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
@pytest.mark.timeout(DEADLINE_S + 120)
def test_deferred_sensors_in_one_triggerer_share_one_poller(
    enlivy_emulator: Any, start_airflow: Callable[[Callable[[Path], None]], Started]
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
    home, logs = start_airflow(
        lambda dags: (dags / f"{SHARED_DAG_ID}.py").write_text(
            SHARED_DAG.format(dag_id=SHARED_DAG_ID, ids=ids)
        )
    )
    db = home / "airflow.db"
    everyone = set(ids)

    def shared_calls() -> list[set[str]]:
        calls = _list_call_ids(enlivy_emulator)
        first = next((n for n, call in enumerate(calls) if call == everyone), None)
        return [] if first is None else calls[first:]

    deadline = time.monotonic() + DEADLINE_S
    while len(calls := shared_calls()) < 3:  # the first shared call and two more rounds
        states = dict(_query(db, "SELECT task_id, state FROM task_instance WHERE dag_id = ?", SHARED_DAG_ID))
        assert time.monotonic() < deadline, (
            f"waited {DEADLINE_S}s for three polls carrying all {SENSORS} invoices; task states {states}, "
            f"list calls {_list_call_ids(enlivy_emulator)}\n{_tail(logs)}"
        )
        time.sleep(0.5)
    states = dict(_query(db, "SELECT task_id, state FROM task_instance WHERE dag_id = ?", SHARED_DAG_ID))
    assert set(states.values()) == {"deferred"}, states
    # From the first shared call on, every poll carried all three ids: never one call per sensor.
    assert all(call == everyone for call in calls), calls

    for invoice_id in ids:
        enlivy_emulator.set_invoice_status(invoice_id, "paid")
    state = None
    while time.monotonic() < deadline and state not in ("success", "failed"):
        rows = _query(db, "SELECT state FROM dag_run WHERE dag_id = ?", SHARED_DAG_ID)
        state = rows[0][0] if rows else None
        time.sleep(0.5)
    assert state == "success", f"run state {state!r}\n{_tail(logs)}"
    tasks = dict(_query(db, "SELECT task_id, state FROM task_instance WHERE dag_id = ?", SHARED_DAG_ID))
    assert tasks == {f"wait_{n}": "success" for n in range(SENSORS)}
