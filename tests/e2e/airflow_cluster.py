"""A real Airflow for the end-to-end tests: its home, configuration, components and metadata database.

The billing DAG (with its data and templates, nothing else) is copied into a fresh dags folder; the DAG is
unpaused at creation, so the scheduler itself creates the run for the last complete month. Components run
as processes through :class:`process_support.ProcessGroups`. :class:`RunWatcher` follows the run in the
metadata database (SQLite or PostgreSQL) and records every state each task went through.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import pendulum
import sqlalchemy
from process_support import ProcessGroups, wait_for
from sqlalchemy.pool import NullPool

from enlivy_provider.emulator import seed as demo
from enlivy_provider.testing import EmulatorHandle

REPO = Path(__file__).resolve().parents[2]
DAGS_DIR = REPO / "dags"
DAG_ID = "enlivy_recurring_billing"
MONTH_END_DAG_ID = "enlivy_month_end"
SENSOR_TASK = "wait_for_payment"
# Test-only Airflow modules copied to $AIRFLOW_HOME/config, which Airflow puts on sys.path.
CONFIG_MODULES = Path(__file__).resolve().parent / "airflow_config"
SERVER_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
AIRFLOW = [sys.executable, "-m", "airflow"]


def prepare_home(
    root: Path, *, test_modules: bool = False, billing_dag: bool = True, month_end_dag: bool = False
) -> tuple[Path, Path]:
    """``root/airflow`` (AIRFLOW_HOME) and ``root/dags`` holding only the billing DAG and its files.

    Only that DAG: the other examples would be scheduled too and slow the run down. ``test_modules`` also
    installs the modules of ``airflow_config/`` (cluster policy, worker host names); ``billing_dag=False``
    leaves the DAG folder empty, for a test that writes its own DAG; ``month_end_dag`` adds the month-end
    DAG (scheduled on the billing's asset alias) and its rules module.
    """
    home, dags = root / "airflow", root / "dags"
    home.mkdir()
    dags.mkdir()
    if not billing_dag:
        return home, dags
    # The helper module the billing DAG imports comes too, kept from being parsed as a DAG file by .airflowignore.
    names = [f"{DAG_ID}.py", "billing_data.py", ".airflowignore"]
    if month_end_dag:
        names += [f"{MONTH_END_DAG_ID}.py", "month_end_rules.py"]
    for name in names:
        shutil.copy(DAGS_DIR / name, dags)
    shutil.copytree(DAGS_DIR / "data", dags / "data")
    shutil.copytree(DAGS_DIR / "templates", dags / "templates")
    if test_modules:
        shutil.copytree(CONFIG_MODULES, home / "config", ignore=shutil.ignore_patterns("__pycache__"))
    return home, dags


def airflow_env(
    home: Path,
    dags: Path,
    *,
    api_port: int,
    connection: str,
    executor: str,
    sql_alchemy_conn: str,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment every component of one test's Airflow runs with (no AIRFLOW_* of the caller's).

    ``connection``: the Enlivy connection's JSON (``EmulatorHandle.connection_json()``).
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_alchemy_conn,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": "e2e-test-secret-not-for-production-" + "x" * 64,
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            # On a loaded machine the api-server has answered a task's state PATCH after 11.7 s: the default
            # client timeout (5 s) failed the task and its retry delay (minutes) outlived the deadline.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
            "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "10",
            "AIRFLOW_CONN_ENLIVY_DEFAULT": connection,
            "ENLIVY_PAYMENT_POKE_SECONDS": "2",
            "ENLIVY_PAYMENT_TIMEOUT_SECONDS": "90",
            "ENLIVY_REPORT_DIR": str(home / "reports"),
            **(extra or {}),
        }
    )
    return env


def migrate(env: dict[str, str]) -> None:
    """``airflow db migrate``: create the metadata tables."""
    result = subprocess.run(
        [*AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def start_components(
    processes: ProcessGroups, env: dict[str, str], components: Iterable[str] = SERVER_COMPONENTS
) -> None:
    """Start api-server, scheduler, dag-processor and triggerer (the api-server serves the task processes'
    Execution API calls, so every executor needs it)."""
    for component in components:
        processes.start(component, [*AIRFLOW, component], env)


def start_celery_worker(processes: ProcessGroups, env: dict[str, str], name: str) -> None:
    """``airflow celery worker`` named ``name``, one task at a time, reporting ``name`` as its host name.

    Both workers share this machine, so the host name Airflow records for each task (``[core]
    hostname_callable``) is the worker's name instead (``airflow_config/e2e_worker_hostname.py``). They
    share the disk too, so neither serves logs (it would need a port of its own), and each keeps its own
    pid file.
    """
    home = Path(env["AIRFLOW_HOME"])
    worker_env = {
        **env,
        "ENLIVY_E2E_WORKER_NAME": name,
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "e2e_worker_hostname.hostname",
    }
    argv = [
        *AIRFLOW, "celery", "worker", "--celery-hostname", f"{name}@e2e", "--concurrency", "1",
        "--skip-serve-logs", "--pid", str(home / f"{name}.pid"),
    ]  # fmt: skip
    processes.start(name, argv, worker_env)


class MetadataDB:
    """Read-only queries on the metadata database; a table not there yet (or a busy SQLite) reads as empty."""

    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            # Read-only, so the test never holds a write lock the scheduler is waiting for.
            url = f"sqlite:///file:{url.removeprefix('sqlite:///')}?mode=ro&uri=true"
        self.engine = sqlalchemy.create_engine(url, poolclass=NullPool)

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        try:
            with self.engine.connect() as conn:
                return [tuple(row) for row in conn.execute(sqlalchemy.text(sql), params)]
        except sqlalchemy.exc.OperationalError:  # SQLite: no file or busy; PostgreSQL: not reachable yet
            return []
        except sqlalchemy.exc.ProgrammingError:  # PostgreSQL: the table does not exist yet
            return []

    def close(self) -> None:
        self.engine.dispose()


class RunWatcher:
    """Follows the billing DAG's (only) run: its state and every state each task instance went through."""

    def __init__(self, db: MetadataDB, processes: ProcessGroups, dag_id: str = DAG_ID) -> None:
        self.db = db
        self.processes = processes
        self.dag_id = dag_id
        self.run_state: str | None = None
        self.states: dict[str, list[str]] = {}  # task_id -> distinct states in the order seen

    def poll(self) -> bool:
        """Read the run and its task instances once; ``True`` (so it can lead a ``wait_for`` check)."""
        rows = self.db.query("SELECT state FROM dag_run WHERE dag_id = :dag_id", dag_id=self.dag_id)
        self.run_state = rows[0][0] if rows else None
        for task_id, state in self.db.query(
            "SELECT task_id, state FROM task_instance WHERE dag_id = :dag_id", dag_id=self.dag_id
        ):
            seen = self.states.setdefault(task_id, [])
            if state and (not seen or seen[-1] != state):
                seen.append(state)
        return True

    def data_interval_start(self) -> pendulum.DateTime:
        """Where the run's data interval starts (PostgreSQL answers a datetime, SQLite a UTC string)."""
        ((start,),) = self.db.query(
            "SELECT data_interval_start FROM dag_run WHERE dag_id = :d", d=self.dag_id
        )
        if isinstance(start, datetime):
            return pendulum.instance(start)
        parsed = pendulum.parse(str(start).replace(" ", "T"))
        assert isinstance(parsed, pendulum.DateTime)
        return parsed

    def current(self, task_id: str) -> str | None:
        seen = self.states.get(task_id)
        return seen[-1] if seen else None

    def describe(self) -> str:
        return f"run state {self.run_state!r}, task states seen {self.states}\n{self.processes.tail()}"

    def wait_until_finished(self, timeout_s: float) -> str:
        """Wait for the run to succeed or fail; its final state."""
        return wait_for(
            f"the scheduler's {self.dag_id} run to finish",
            lambda: self.poll() and self.run_state in ("success", "failed") and self.run_state,
            timeout_s=timeout_s,
            details=self.describe,
        )

    def pay_when_deferred(self, emulator: EmulatorHandle, timeout_s: float) -> int:
        """Wait until the payment sensor has deferred to the triggerer, then pay every invoice; how many.

        Paying only then makes the deferral certain: until the invoices are paid, the sensor has nothing
        to wait for but the triggerer.
        """
        wait_for(
            f"{SENSOR_TASK} to defer to the triggerer",
            lambda: self.poll() and self.current(SENSOR_TASK) == "deferred",
            timeout_s=timeout_s,
            details=self.describe,
        )
        invoices = emulator.live_invoices()
        for invoice in invoices:
            emulator.set_invoice_status(invoice["id"], "paid")
        return len(invoices)


def last_complete_month() -> pendulum.DateTime:
    """The month the scheduler's run bills: the last complete one in the DAG's zone (Europe/Berlin)."""
    return pendulum.now("Europe/Berlin").start_of("month").subtract(months=1)


def assert_billed_once(emulator: EmulatorHandle, month: pendulum.DateTime) -> None:
    """Exactly one paid invoice per demo customer for ``month``: none twice, none missing, issued when the
    month ended (the run's logical date is the interval's start; invoices are dated from its end)."""
    invoices = emulator.live_invoices()
    customers = sorted(invoice["organization_receiver_user_id"] for invoice in invoices)
    assert customers == sorted(customer.id for customer in demo.DEMO_CUSTOMERS), customers
    assert {invoice["status"] for invoice in invoices} == {"paid"}
    periods = {line["billing_period_started_at"][:10] for inv in invoices for line in inv["line_items"]}
    assert periods == {month.to_date_string()}
    assert {str(inv["issued_at"])[:10] for inv in invoices} == {month.add(months=1).to_date_string()}
