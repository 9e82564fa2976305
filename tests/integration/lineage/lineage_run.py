"""Run one DAG with every operator that reports lineage, under ``dag.test()``, in a process of its own.

Airflow registers the OpenLineage listener when it loads plugins, once per process, and only when a
transport is configured then. The test session runs without one (no event per task for the whole suite), so
``test_openlineage.py`` starts this module with the transport in its environment, as a deployment has it.

Usage: ``python lineage_run.py WORKDIR`` (the session's AIRFLOW_* and AIRFLOW_CONN_ENLIVY_DEFAULT
environment); prints ``TASK_STATES {task_id: state}`` (JSON) on a line of its own.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pendulum
from airflow.providers.common.compat.sdk import DAG
from airflow_support import run_dag, task_states

from enlivy_provider.compat import CronDataIntervalTimetable
from enlivy_provider.emulator import seed
from enlivy_provider.operators.export import EnlivyExportInvoicesOperator
from enlivy_provider.operators.invoices import (
    EnlivyCreateInvoiceOperator,
    EnlivyCreateInvoicesOperator,
    EnlivyUpdateInvoiceOperator,
)
from enlivy_provider.operators.reconcile import EnlivyReconcileInvoicesOperator

DAG_ID = "lineage_run"
CUSTOMERS = [c.id for c in seed.DEMO_CUSTOMERS]
LINE = {"name": "Plan", "quantity": 1, "price": "100.00", "tax_class_id": seed.TAX_CLASS_STANDARD_ID}
NOVEMBER_1 = pendulum.datetime(2026, 11, 1, tz="UTC")


def build_dag(workdir: Path) -> DAG:
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    with DAG(
        DAG_ID,
        schedule=CronDataIntervalTimetable("0 0 1 * *", timezone="UTC"),
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    ) as dag:
        create = EnlivyCreateInvoiceOperator(
            task_id="create",
            customer=CUSTOMERS[0],
            line_items=[LINE],
            invoice={"currency": "EUR"},
            billing_period="data_interval",
        )
        update = EnlivyUpdateInvoiceOperator(
            task_id="update", invoice_id="{{ ti.xcom_pull('create')['id'] }}", changes={"note": "lineage"}
        )
        bulk = EnlivyCreateInvoicesOperator(
            task_id="bulk",
            invoices=[{"customer": customer, "line_items": [LINE]} for customer in CUSTOMERS[1:3]],
            invoice_defaults={"currency": "EUR", "due_in_days": 14},
            billing_period="data_interval",
            billing_key="lineage.bulk",
        )
        reconcile = EnlivyReconcileInvoicesOperator(
            task_id="reconcile",
            expected=bulk.output,
            billing_key="lineage.bulk",
            billing_period="data_interval",
            report_path=f"file://{workdir}/report.csv",
        )
        export = EnlivyExportInvoicesOperator(
            task_id="export",
            destination=f"file://{workdir}/export",
            updated_from=today.isoformat(),
            updated_to=(today + timedelta(days=1)).isoformat(),
        )
        create >> update >> export
        bulk >> reconcile >> export
    return dag


if __name__ == "__main__":
    dag_run = run_dag(build_dag(Path(sys.argv[1])), logical_date=NOVEMBER_1)
    print("TASK_STATES " + json.dumps(task_states(dag_run)))
