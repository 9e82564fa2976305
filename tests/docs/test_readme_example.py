"""The README's first DAG is true: it runs as written against the emulator, and re-running bills nothing twice."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pendulum
from airflow_support import run_dag, task_states, xcom_result

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_dag() -> Any:
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert code is not None, "README has no python example"
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(README), "exec"), namespace)
    from airflow.providers.common.compat.sdk import DAG

    dags = [value for value in namespace.values() if isinstance(value, DAG)]
    if not dags:  # the example uses `with DAG(...)` without a name: find it through the operator
        dags = [namespace["invoice"].dag]
    return dags[0]


def test_readme_dag_bills_the_month_once_and_waits_for_payment(enlivy_airflow_connection: Any) -> None:
    emulator = enlivy_airflow_connection
    emulator.configure(auto_pay_after=1)
    dag = _readme_dag()
    november = pendulum.datetime(2026, 11, 1, tz="UTC")

    first = run_dag(dag, logical_date=november)
    assert task_states(first) == {"create_invoice": "success", "wait_for_payment": "success"}
    summary = xcom_result(first, "create_invoice")
    assert summary["totals"]["sub_total"] == "1140.00"  # 12 hours x 95.00
    assert xcom_result(first, "wait_for_payment") == {summary["id"]: "paid"}

    second = run_dag(dag, logical_date=november)
    assert task_states(second)["create_invoice"] == "success"
    assert [invoice["id"] for invoice in emulator.invoices()] == [summary["id"]]
