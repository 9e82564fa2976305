"""The export and event examples in runs without a logical date (``airflow dags trigger``, the REST API).

Airflow 3 triggers such runs without a logical date, so their task context has no ``logical_date`` and no
``data_interval_start``/``_end``. The CLI commands below are the ones docs/etl-export.md and
docs/event-triggered.md show; they create the run in the metadata DB, and ``execute_run`` plays the
scheduler's part in this process. (The billing DAG's are in test_billing_run_dates.py.)
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from airflow_runs import airflow_cli, delete_runs, execute_run, run_ids, trigger_run, try_numbers
from airflow_support import NO_LOGICAL_DATE, sync_dag_to_db, task_states, xcom_result
from dag_helpers import DAGS_DIR, live_invoices

from enlivy_provider.client import EnlivyClient
from enlivy_provider.testing import invoice_payload

pytestmark = pytest.mark.airflow3_only(reason=NO_LOGICAL_DATE)

EXPORT = "enlivy_invoice_export"
EVENT = "enlivy_event_invoice"


@pytest.fixture
def export_dag(enlivy_airflow_connection: Any) -> Any:
    from airflow.models import DagBag

    delete_runs(EXPORT)
    bag = DagBag(dag_folder=str(DAGS_DIR / "enlivy_invoice_export.py"))
    assert bag.import_errors == {}
    return bag.get_dag(EXPORT)


def utc_midnight(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def iso_z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_cli_trigger_of_the_export_exports_the_last_whole_day(export_dag: Any, tmp_path: Path) -> None:
    sync_dag_to_db(export_dag)
    airflow_cli("dags", "trigger", EXPORT, "-c", json.dumps({"destination": f"file://{tmp_path}"}))
    [run_id] = run_ids(EXPORT)
    dag_run = execute_run(export_dag, run_id)

    assert dag_run.logical_date is None
    assert task_states(dag_run) == {"export_invoices": "success"}
    assert try_numbers(dag_run) == {"export_invoices": 1}
    # The last whole UTC day before the trigger time: yesterday, as the trigger's UTC date goes.
    end = utc_midnight(dag_run.run_after)
    day = (end - timedelta(days=1)).date().isoformat()
    summary = xcom_result(dag_run, "export_invoices")
    assert (summary["updated_from"], summary["updated_to"]) == (iso_z(end - timedelta(days=1)), iso_z(end))
    assert [p["date"] for p in summary["partitions"]] == [day]
    assert sorted(p.name for p in (tmp_path / f"date={day}").iterdir()) == ["invoices.csv", "invoices.jsonl"]


def test_export_triggered_after_midnight_exports_the_day_before(
    export_dag: Any, enlivy_airflow_connection: Any, tmp_path: Path
) -> None:
    emulator = enlivy_airflow_connection
    with EnlivyClient(emulator.base_url, emulator.token, organization_id=emulator.org_id) as client:
        created = sorted(client.create_invoice(invoice_payload(n))["id"] for n in range(3))
    today = utc_midnight(datetime.now(timezone.utc))
    # Triggered without a logical date at 00:30 UTC tomorrow: today is the last whole day.
    run_id = trigger_run(
        export_dag,
        run_after=today + timedelta(days=1, minutes=30),
        conf={"destination": f"file://{tmp_path}"},
    )
    dag_run = execute_run(export_dag, run_id)

    assert try_numbers(dag_run) == {"export_invoices": 1}
    summary = xcom_result(dag_run, "export_invoices")
    assert summary["updated_from"] == iso_z(today) and summary["invoices"] == 3
    lines = (tmp_path / f"date={today.date().isoformat()}" / "invoices.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == created


def test_cli_trigger_of_the_event_dag_dates_the_invoice_from_the_event(
    event_dag: Any, enlivy_airflow_connection: Any
) -> None:
    delete_runs(EVENT)
    sync_dag_to_db(event_dag)
    conf = {
        "reference": "order-7001",
        "occurred_on": "2026-11-20",
        "customer_email": "billing@globex.example",
        "items": [{"name": "Onboarding workshop", "quantity": "1", "unit_price": "450.00"}],
        "wait_for_payment": False,
    }
    airflow_cli("dags", "trigger", EVENT, "--conf", json.dumps(conf))
    [run_id] = run_ids(EVENT)
    dag_run = execute_run(event_dag, run_id)

    assert dag_run.logical_date is None
    assert str(dag_run.state) == "success", task_states(dag_run)
    assert set(try_numbers(dag_run).values()) == {1}
    [invoice] = live_invoices(enlivy_airflow_connection)
    assert (str(invoice["issued_at"])[:10], str(invoice["due_at"])[:10]) == ("2026-11-20", "2026-12-04")
