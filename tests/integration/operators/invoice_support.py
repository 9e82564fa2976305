"""Helpers of the invoice-operator tests: DAG building/running, emulator inspection, failure capture."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG
from airflow_support import forked_worker_setup, run_dag, task_states, xcom_result, xcom_value

from enlivy_provider.emulator import seed

CUSTOMERS = [c.id for c in seed.DEMO_CUSTOMERS]
PLATFORM, API_CALLS, CONSULTING = (p.id for p in seed.DEMO_PRODUCTS)
VAT19, VAT0 = seed.TAX_CLASS_STANDARD_ID, seed.TAX_CLASS_ZERO_ID
OCTOBER = {"start": "2026-10-01", "end": "2026-10-31"}
_ids = itertools.count()


def new_dag_id(prefix: str) -> str:
    """A DAG id not used before in this session (each test writes its own DAG into the shared DB)."""
    return f"{prefix}_{next(_ids)}"


def make_dag(dag_id: str, **kwargs: Any) -> DAG:
    kwargs.setdefault("schedule", None)
    kwargs.setdefault("start_date", pendulum.datetime(2026, 1, 1, tz="UTC"))
    return DAG(dag_id=dag_id, **kwargs)


def bulk_dag(name: str, invoices: Any, **operator_kwargs: Any) -> DAG:
    """A DAG with one bulk task ``bulk``; EUR and October unless the test says otherwise."""
    from enlivy_provider.operators.invoices import EnlivyCreateInvoicesOperator

    operator_kwargs.setdefault("invoice_defaults", {"currency": "EUR"})
    operator_kwargs.setdefault("billing_period", OCTOBER)
    with make_dag(new_dag_id(name)) as dag:
        EnlivyCreateInvoicesOperator(task_id="bulk", invoices=invoices, **operator_kwargs)
    return dag


def run(dag: DAG, **kwargs: Any) -> tuple[dict[str, str], Any]:
    """Run the DAG with dag.test(); returns (task states, the DagRun)."""
    dag_run = run_dag(dag, **kwargs)
    return task_states(dag_run), dag_run


def result(dag_run: Any, task_id: str, map_index: int = -1) -> Any:
    return xcom_result(dag_run, task_id, map_index)


def try_numbers(dag_run: Any) -> dict[str, int]:
    """{task_id: try_number} of a finished run: 1 means the task ran once (it was not retried)."""
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: ti.try_number for ti in dag_run.get_task_instances(session=session)}


def xcom(dag_run: Any, task_id: str, key: str) -> Any:
    """Any XCom of a finished run (e.g. ``bulk_result``, ``action_result``)."""
    return xcom_value(dag_run, task_id, key)


def requests_to(emulator: Any, method: str, last_segment: str) -> int:
    """Requests the emulator counted for ``METHOD /organizations/{org}/.../<last_segment>`` route templates."""
    routes = emulator.counters()["routes"]
    return sum(
        n
        for route, n in routes.items()
        if route.startswith(f"{method} ") and route.rsplit("/", 1)[-1] == last_segment
    )


def live_invoices(emulator: Any) -> list[dict[str, Any]]:
    return list(emulator.live_invoices())


def duplicates(emulator: Any) -> int:
    """Invoices beyond the first for one (customer, billing period) pair."""
    pairs = Counter()
    for invoice in live_invoices(emulator):
        periods = {
            (li.get("billing_period_started_at"), li.get("billing_period_ended_at"))
            for li in invoice.get("line_items") or []
            if li.get("has_billing_period")
        }
        for period in periods or {(None, invoice["id"])}:
            pairs[(invoice["organization_receiver_user_id"], period)] += 1
    return sum(n - 1 for n in pairs.values() if n > 1)


class Failures:
    """Collects the exception of every failed task (an ``on_failure_callback``), to assert on its text."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def __call__(self, context: Any) -> None:
        exc = context.get("exception")
        self.seen.append((context["ti"].task_id, type(exc).__name__, str(exc)))

    def text(self) -> str:
        return "\n".join(message for _, _, message in self.seen)


def run_at_once(*runs: tuple[DAG, dict[str, Any]]) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """Run DAGs in separate processes at the same time (forked from this one, as Airflow's workers are separate
    processes); returns each run's (task states, {task_id: XCom return value}), in the order given.

    Pair it with an emulator ``barrier`` fault so the runs' requests meet where the race is.
    """
    import multiprocessing

    from airflow_support import sync_dag_to_db

    for dag, _ in runs:
        sync_dag_to_db(dag)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    processes = [
        context.Process(target=_run_and_report, args=(i, dag, kwargs, queue))
        for i, (dag, kwargs) in enumerate(runs)
    ]
    for process in processes:
        process.start()
    try:
        reports = dict(queue.get(timeout=600) for _ in processes)  # each run reports, even when it fails
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    return [reports[i] for i in range(len(runs))]


def _run_and_report(index: int, dag: DAG, kwargs: dict[str, Any], queue: Any) -> None:
    forked_worker_setup()
    try:
        states, dag_run = run(dag, **kwargs)
        queue.put((index, (states, {task: result(dag_run, task) for task in dag.task_ids})))
    except BaseException as exc:  # the parent must hear back, or it waits for the timeout
        queue.put((index, ({"error": f"{type(exc).__name__}: {exc}"}, {})))


#: The faults of docs/emulator.md a keyed write meets, as test parameters (``ids=fault_id``).
WRITE_FAULTS: list[dict[str, Any]] = [
    {"action": "drop_after_commit"},
    {"action": "rate_limit", "retry_after": 0},
    {"action": "error", "status": 503},
    {"action": "error", "status": 500},
]


def fault_id(fault: dict[str, Any]) -> str:
    return f"{fault['action']}-{fault.get('status', '')}".rstrip("-")


def assert_refused_without_requests(
    emulator: Any, failures: Failures, states: dict[str, str], expected: str
) -> None:
    """Bad input: the one task failed once (not retried), saying ``expected``, before any request."""
    assert list(states.values()) == ["failed"]
    assert expected in failures.text()
    assert [kind for _, kind, _ in failures.seen] == ["AirflowFailException"]
    assert emulator.counters()["total"] == 0
