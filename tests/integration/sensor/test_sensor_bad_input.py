"""A wrongly typed invoice_ids fails the sensor at once, naming the argument: no retries, no request."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import DAG
from airflow_support import run_dag, task_states

from enlivy_provider.sensors.invoice_status import EnlivyInvoiceStatusSensor

pytestmark = pytest.mark.usefixtures("enlivy_airflow_connection")


CASES = [
    # (case id, sensor arguments, expected text naming the argument and the rule)
    ("int", {"invoice_ids": 42},
     "invoice_ids: expected an invoice id, a list of ids or summaries, or the bulk operator's output; got int"),
    ("dict_without_id", {"invoice_ids": {"total": 3}},
     "invoice_ids: a dict must carry 'invoice_ids' (bulk operator output) or 'id'"),
    ("list_of_ints", {"invoice_ids": [1, 2]}, "invoice_ids[0]: expected an invoice id"),
    ("summary_with_int_id", {"invoice_ids": [{"id": 7}]}, "invoice_ids[0]['id']: expected an invoice id"),
    ("empty_id", {"invoice_ids": ["org_inv_x", " "]}, "invoice_ids contains an empty id"),
    # A float NaN would otherwise break Airflow's upload of the rendered fields, before execute runs.
    ("float_nan", {"invoice_ids": [float("nan")]}, "invoice_ids[0]: expected an invoice id"),
    ("bad_target_statuses", {"invoice_ids": "org_inv_x", "target_statuses": ["paid", 3]},
     "target_statuses: every status must be a non-empty string, got 3"),
]  # fmt: skip


@pytest.mark.parametrize(("sensor_args", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_wrong_invoice_ids_fail_without_retries_or_requests(
    enlivy_emulator: Any, request: pytest.FixtureRequest, sensor_args: dict[str, Any], expected: str
) -> None:
    seen: list[tuple[str, str]] = []  # (callback, "ExceptionType: message")

    def on_failure(context: Any) -> None:
        exc = context.get("exception")
        seen.append(("failure", f"{type(exc).__name__}: {exc}"))

    def on_retry(context: Any) -> None:
        seen.append(("retry", str(context.get("exception"))))

    dag_id = f"sensor_bad_input_{request.node.callspec.id}"
    with DAG(dag_id=dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        EnlivyInvoiceStatusSensor(
            task_id="wait",
            poke_interval=0.1,
            timeout=5,
            retries=3,
            retry_delay=dt.timedelta(0),
            on_failure_callback=on_failure,
            on_retry_callback=on_retry,
            **sensor_args,
        )
    enlivy_emulator.reset_counters()
    dag_run = run_dag(dag)

    assert task_states(dag_run) == {"wait": "failed"}
    assert [kind for kind, _ in seen] == ["failure"]  # no retry
    [(_, text)] = seen
    assert text.startswith("AirflowFailException: ")
    assert expected in text
    with _session() as session:
        assert [ti.try_number for ti in dag_run.get_task_instances(session=session)] == [1]
    assert enlivy_emulator.counters()["total"] == 0  # not even a read


def _session() -> Any:
    from airflow.utils.session import create_session

    return create_session()
