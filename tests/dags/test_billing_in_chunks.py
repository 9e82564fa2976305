"""dags/enlivy_billing_in_chunks.py end to end: dag.test() against the emulator over HTTP."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow_support import run_dag, task_states, xcom_result

TZ = "Europe/Berlin"
NOVEMBER_1 = pendulum.datetime(2026, 11, 1, tz=TZ)  # the run that bills October


def test_october_is_billed_in_chunks_once_and_a_rerun_with_other_chunks_writes_nothing(
    chunked_billing_dag: Any, enlivy_airflow_connection: Any
) -> None:
    emulator = enlivy_airflow_connection
    dag_run = run_dag(chunked_billing_dag, logical_date=NOVEMBER_1, run_conf={"chunks": 4})
    states = task_states(dag_run)
    assert states == {
        "export_invoice_specs": "success",
        "plan_chunks": "success",
        **{f"create_invoices[{i}]": "success" for i in range(4)},
        "summary": "success",
    }
    assert [c["rows"] for c in xcom_result(dag_run, "plan_chunks")] == [1, 2, 1, 2]
    summary = xcom_result(dag_run, "summary")
    assert summary["counts"] == {"created": 6, "existing": 0, "replayed": 0, "failed": 0, "invalid": 0}
    # By hand from dags/data/invoice_specs.jsonl and the demo catalogue (199.00 plan, 0.45 per 1k calls and
    # 19 % VAT; consulting 95.00 at 0 %): 301.07 + 236.81 + 521.81 + 258.23 + 473.62 + 772.31.
    assert summary["totals"] == {"EUR": "2563.85"}
    invoices = emulator.live_invoices()
    assert len(invoices) == 6
    assert {str(i["issued_at"])[:10] for i in invoices} == {"2026-11-01"}
    assert {
        (str(line["billing_period_started_at"])[:10], str(line["billing_period_ended_at"])[:10])
        for invoice in invoices
        for line in invoice["line_items"]
    } == {("2026-10-01", "2026-10-31")}

    # October again, cut into 2 chunks: every customer is in another chunk, and nothing is written.
    writes = emulator.write_count()
    again = run_dag(chunked_billing_dag, logical_date=NOVEMBER_1.add(days=2), run_conf={"chunks": 2})
    assert set(task_states(again).values()) == {"success"}
    assert xcom_result(again, "summary")["counts"]["existing"] == 6
    assert emulator.write_count() == writes
    assert emulator.billings()["duplicates"] == 0
