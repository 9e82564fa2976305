"""The billing DAG under CeleryExecutor: two workers, one killed (SIGKILL) in the middle of the bulk create.

A real Airflow (api-server, scheduler, dag-processor, triggerer) with Redis as the Celery broker and
PostgreSQL as the metadata database, both from the Debian packages, started by the test on free ports.
(Airflow 3.3 does not refuse SQLite with Celery, but documents it for development only, and the Celery
result backend would then be a SQLite file written by every worker; production runs PostgreSQL.)

The scheduler itself creates the run for the last complete month. The emulator answers the first 3 of the
6 invoice creates and holds the answers of the other 3 after committing them, so the kill is certain to
land mid-bulk: every invoice exists, the worker has heard of only half. Then:

1. ``worker-a`` is the only worker at first, so it runs ``collect_usage``, ``choose_mode`` and
   ``create_invoices``; ``worker-b`` is started while the bulk is held;
2. ``worker-a`` is killed with everything it started (SIGKILL), as if its machine had died;
3. the scheduler finds the task without heartbeat, fails that try, and retries it on ``worker-b``;
4. the payment sensor defers to the triggerer, and the invoices are paid only once it has.

Proven: tasks ran on both workers (the host name each task instance recorded), the retry ran elsewhere,
exactly one invoice per customer and month (no duplicate, none missing), the sensor deferred.

Needs ``redis-server`` and the PostgreSQL server (Debian packages ``redis-server`` and ``postgresql``) and
the ``dev`` extra (Celery provider, psycopg). Without them the test is skipped with the reason, unless
``ENLIVY_REQUIRE_CELERY=1`` (``.ci/run`` sets it): then a missing piece is a failure.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from airflow_cluster import (
    DAG_ID,
    SENSOR_TASK,
    MetadataDB,
    RunWatcher,
    airflow_env,
    assert_billed_once,
    last_complete_month,
    migrate,
    prepare_home,
    start_celery_worker,
    start_components,
)
from process_support import ProcessGroups, process_groups, wait_for
from service_support import missing_servers, start_postgres, start_redis

from enlivy_provider.emulator import seed as demo
from enlivy_provider.testing import EmulatorHandle, free_port

# The harness (tests/e2e/airflow_cluster.py) starts Airflow 3's components: api-server and dag-processor.
pytestmark = pytest.mark.airflow3_only(
    reason="the e2e cluster harness starts Airflow 3's api-server and dag-processor; Airflow 2 has neither"
)

REQUIRE_ENV = "ENLIVY_REQUIRE_CELERY"
BULK_TASK = "create_invoices"
CUSTOMERS = len(demo.DEMO_CUSTOMERS)  # the billing DAG's customers file bills the 6 demo customers
ANSWERED = 3  # creates answered before the kill; the other CUSTOMERS - ANSWERED are committed but held
HOLD_LIMIT_MS = 600_000  # the emulator's own bound on the hold, should the test die before releasing it
HEARTBEAT_TIMEOUT_S = 45  # a try without heartbeat for this long is failed and retried
# Each wait's limit; far above what an idle machine needs, for a loaded 2-core machine.
UNTIL_MID_BULK_S = 300  # migrate done; parse, schedule, 2 tasks, then the bulk on worker-a
UNTIL_DEFERRED_S = 300  # heartbeat timeout, retry delay, the retry on worker-b, the sensor
UNTIL_FINISHED_S = 180  # trigger fires, list_unpaid, summary
CREATE_PATH = "/organizations/*/invoices"


def _celery_missing() -> list[str]:
    missing = missing_servers()
    for module, package in (
        ("airflow.providers.celery", "apache-airflow-providers-celery"),
        ("psycopg", "psycopg"),
    ):
        if importlib.util.find_spec(module) is None:
            missing.append(f"{package} (pip install -e '.[dev]')")
    return missing


@dataclass
class CeleryAirflow:
    processes: ProcessGroups
    env: dict[str, str]
    db: MetadataDB
    home: Path

    def start(self, worker: str) -> None:
        start_components(self.processes, self.env)
        start_celery_worker(self.processes, self.env, worker)


@pytest.fixture
def celery_airflow(tmp_path: Path, enlivy_emulator: EmulatorHandle) -> Iterator[CeleryAirflow]:
    """Broker, database and a migrated Airflow home; the test starts the components once it is set up."""
    missing = _celery_missing()
    if missing:
        reason = f"CeleryExecutor end-to-end test not run: missing {'; '.join(missing)}"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_ENV}=1 makes that a failure)", pytrace=False)
        pytest.skip(f"{reason}. .ci/run installs them and sets {REQUIRE_ENV}=1")
    with process_groups(tmp_path / "logs") as processes:
        broker = start_redis(processes, tmp_path / "redis")
        database = start_postgres(processes)
        home, dags = prepare_home(tmp_path, test_modules=True)
        env = airflow_env(
            home,
            dags,
            api_port=free_port(),
            # The emulator holds some answers on purpose: the client must not give up on them first.
            connection=enlivy_emulator.connection_json(timeout=[10, 900]),
            executor="CeleryExecutor",
            sql_alchemy_conn=database,
            extra={
                # psycopg 3 serves the api-server's async engine too (else Airflow would need asyncpg).
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": database,
                "AIRFLOW__CELERY__BROKER_URL": broker,
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
                "AIRFLOW__CELERY__OPERATION_TIMEOUT": "10",
                # Redis would hand an unacknowledged task (the killed worker's) to another worker after
                # this long; Airflow's own heartbeat timeout must be what retries it, so keep it long.
                "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "86400",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_S),
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            },
        )
        migrate(env)
        db = MetadataDB(database)
        try:
            yield CeleryAirflow(processes, env, db, home)
        finally:
            db.close()


class HeldBulk:
    """Scripts the emulator so that the bulk create stops half-way, and lets the held answers go."""

    def __init__(self, emulator: EmulatorHandle) -> None:
        self.emulator = emulator
        self.fault_ids: list[str] = []

    def script(self) -> None:
        held = CUSTOMERS - ANSWERED
        self.fault_ids = [
            # The first creates are answered together once all of them are committed ...
            self.emulator.add_fault("POST", CREATE_PATH, "barrier", parties=ANSWERED, times=ANSWERED),
            # ... the rest are committed, then held until one more request joins them (release()).
            self.emulator.add_fault(
                "POST", CREATE_PATH, "barrier", parties=held + 1, times=held + 1, delay_ms=HOLD_LIMIT_MS
            ),
        ]

    def held_now(self) -> int:
        in_flight = self.emulator.counters()["in_flight"]
        return int(in_flight.get(f"POST /organizations/{self.emulator.org_id}/invoices", 0))

    def release(self) -> None:
        """Complete the barriers with empty creates (refused with 422: nothing is written), all at once.

        After the kill that is one request, and the held answers go to a dead worker. After a failure
        it may be more; either way no request stays held to trouble the tests that share this emulator.
        """
        if not self.fault_ids:
            return
        faults = requests.get(f"{self.emulator.base_url}/_emulator/faults", timeout=60).json()["data"]
        remaining = sum(fault["times"] for fault in faults if fault["id"] in self.fault_ids)
        self.fault_ids = []
        if remaining:
            with ThreadPoolExecutor(max_workers=remaining) as pool:
                statuses = set(pool.map(lambda _: self._empty_create(), range(remaining)))
            assert statuses == {422}, statuses

    def _empty_create(self) -> int:
        response = requests.post(
            f"{self.emulator.base_url}/organizations/{self.emulator.org_id}/invoices",
            json={},
            headers={"Authorization": f"Bearer {self.emulator.token}"},
            timeout=HOLD_LIMIT_MS / 1000,
        )
        return response.status_code


def _attempts(db: MetadataDB, task_id: str) -> list[tuple[int, str | None, str | None]]:
    """(try_number, host name, state) of every try of ``task_id``, earlier tries first."""
    sql = "SELECT try_number, hostname, state FROM {table} WHERE dag_id = :dag_id AND task_id = :task_id"
    rows = db.query(sql.format(table="task_instance_history"), dag_id=DAG_ID, task_id=task_id)
    rows += db.query(sql.format(table="task_instance"), dag_id=DAG_ID, task_id=task_id)
    return sorted((int(n), host, state) for n, host, state in rows)


def _tasks_by_host(db: MetadataDB) -> dict[str, list[str]]:
    """Host name -> the tries it ran (``task_id`` or ``task_id#try``), current and earlier tries."""
    by_host: dict[str, list[str]] = {}
    for table in ("task_instance_history", "task_instance"):
        for task_id, try_number, host in db.query(
            f"SELECT task_id, try_number, hostname FROM {table} WHERE dag_id = :dag_id", dag_id=DAG_ID
        ):
            if host:
                by_host.setdefault(host, []).append(f"{task_id}#{try_number}")
    return {host: sorted(tries) for host, tries in sorted(by_host.items())}


def _running(db: MetadataDB, task_id: str) -> tuple[str | None, int | None]:
    """(host name, task process id) of ``task_id`` while it runs, else ``(None, None)``."""
    rows = db.query(
        "SELECT hostname, pid FROM task_instance WHERE dag_id = :dag_id AND task_id = :task_id AND state = 'running'",
        dag_id=DAG_ID,
        task_id=task_id,
    )
    return rows[0] if rows else (None, None)


@pytest.mark.slow
@pytest.mark.timeout(UNTIL_MID_BULK_S + UNTIL_DEFERRED_S + UNTIL_FINISHED_S + 300)
def test_celery_workers_bill_once_when_a_worker_dies_mid_bulk(
    enlivy_emulator: EmulatorHandle, celery_airflow: CeleryAirflow
) -> None:
    started = time.monotonic()
    db, processes = celery_airflow.db, celery_airflow.processes
    held = HeldBulk(enlivy_emulator)
    held.script()
    watcher = RunWatcher(db, processes)
    try:
        celery_airflow.start("worker-a")

        # 1. worker-a, alone, runs the bulk: all invoices committed, the answers of some still held.
        def mid_bulk() -> bool:
            watcher.poll()
            return (
                _running(db, BULK_TASK)[0] == "worker-a"
                and len(enlivy_emulator.live_invoices()) == CUSTOMERS
                and held.held_now() == CUSTOMERS - ANSWERED
            )

        wait_for(
            f"worker-a to run {BULK_TASK} with all {CUSTOMERS} invoices committed and "
            f"{CUSTOMERS - ANSWERED} answers held",
            mid_bulk,
            timeout_s=UNTIL_MID_BULK_S,
            details=lambda: (
                f"held {held.held_now()}, invoices {len(enlivy_emulator.live_invoices())}, "
                + watcher.describe()
            ),
        )
        mid_bulk_at = time.monotonic()
        _, task_pid = _running(db, BULK_TASK)
        start_celery_worker(processes, celery_airflow.env, "worker-b")

        # 2. worker-a dies with its task process; nothing it had not heard of yet reaches it any more.
        killed = processes.crash("worker-a")
        held.release()
        assert task_pid in killed, f"the task process {task_pid} was not among worker-a's: {killed}"

        # 3-4. The scheduler retries the bulk on worker-b; the sensor defers; then the invoices are paid.
        paid = watcher.pay_when_deferred(enlivy_emulator, timeout_s=UNTIL_DEFERRED_S)
        deferred_at = time.monotonic()
        state = watcher.wait_until_finished(timeout_s=UNTIL_FINISHED_S)
    finally:
        held.release()
    finished_at = time.monotonic()

    assert state == "success", watcher.describe()
    assert paid == CUSTOMERS

    # The killed try ran on worker-a; the heartbeat timeout failed it and the retry ran on worker-b.
    attempts = _attempts(db, BULK_TASK)
    assert [(n, host) for n, host, _ in attempts] == [(1, "worker-a"), (2, "worker-b")], attempts
    assert attempts[-1][2] == "success"
    timeouts = db.query(
        "SELECT count(*) FROM log WHERE event = 'heartbeat timeout' AND dag_id = :dag_id AND task_id = :task_id",
        dag_id=DAG_ID,
        task_id=BULK_TASK,
    )
    assert timeouts == [(1,)], f"expected one heartbeat timeout of {BULK_TASK}, the log table has {timeouts}"

    # Tasks ran on both workers: worker-a before it was killed, worker-b after.
    by_host = _tasks_by_host(db)
    assert set(by_host) == {"worker-a", "worker-b"}, by_host
    assert {"collect_usage#1", "choose_mode#1", f"{BULK_TASK}#1"} <= set(by_host["worker-a"]), by_host
    assert {f"{BULK_TASK}#2", "list_unpaid#1", "summary#1"} <= set(by_host["worker-b"]), by_host

    # The sensor waited in the triggerer.
    assert "deferred" in watcher.states[SENSOR_TASK], watcher.states
    tasks = dict(db.query("SELECT task_id, state FROM task_instance WHERE dag_id = :d", d=DAG_ID))
    assert tasks == {
        "collect_usage": "success",
        "choose_mode": "success",
        "preview_invoices": "skipped",
        "write_preview_report": "skipped",
        BULK_TASK: "success",
        SENSOR_TASK: "success",
        "list_unpaid": "success",
        "summary": "success",
    }

    # Exactly one invoice per customer for the month billed: none twice, none missing.
    last_month = last_complete_month()
    assert watcher.data_interval_start() == last_month
    assert_billed_once(enlivy_emulator, last_month)
    # The retry found the invoices the killed try had made and created none.
    summary = (
        celery_airflow.home / "reports" / f"billing-summary-{last_month.format('YYYY-MM')}.txt"
    ).read_text()
    assert summary.splitlines()[0].endswith(
        f"0 created, {CUSTOMERS} already existed, 0 created by a concurrent or earlier attempt, 0 failed; "
        "0 unpaid"
    ), summary

    print(
        f"\nCELERY E2E: {finished_at - started:.0f}s in all; mid-bulk after {mid_bulk_at - started:.0f}s, "
        f"sensor deferred {deferred_at - mid_bulk_at:.0f}s after the kill, run finished "
        f"{finished_at - deferred_at:.0f}s later; tries per worker: "
        + "; ".join(f"{host}: {', '.join(tries)}" for host, tries in by_host.items())
    )
