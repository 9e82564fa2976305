"""docs/sensor.md's runnable example, run as written with dag.test() against the emulator."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from airflow_support import run_dag, task_states, xcom_result

DOC = Path(__file__).resolve().parents[3] / "docs" / "sensor.md"

pytestmark = pytest.mark.usefixtures("enlivy_airflow_connection")


def _example_source() -> str:
    section = DOC.read_text().split("## A runnable example", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "docs/sensor.md lost its runnable example"
    return match.group(1)


def test_the_documented_example_waits_until_the_invoice_is_paid(enlivy_emulator: Any) -> None:
    enlivy_emulator.configure(auto_pay_after=1.0)  # the customer pays a second after the invoice exists
    namespace: dict[str, Any] = {"__name__": "docs_sensor_example"}
    exec(compile(_example_source(), str(DOC), "exec"), namespace)

    dag_run = run_dag(namespace["example_dag"])

    assert task_states(dag_run) == {"invoice": "success", "wait_for_payment": "success"}
    summary = xcom_result(dag_run, "invoice")
    assert xcom_result(dag_run, "wait_for_payment") == {summary["id"]: "paid"}
