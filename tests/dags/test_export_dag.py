"""dags/enlivy_invoice_export.py end to end: parsed with DagBag, run with dag.test() against the emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from airflow_support import asset_events, run_dag, task_states, xcom_result

from enlivy_provider.client import EnlivyClient
from enlivy_provider.emulator.seed import DEMO_CUSTOMERS, TAX_CLASS_STANDARD_ID

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "enlivy_invoice_export.py"
TODAY = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture
def export_dag() -> Any:
    """Parsed afresh for each test: an in-process dag.test() leaves rendered values on the task objects."""
    from airflow.models import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    return bag.get_dag("enlivy_invoice_export")


@pytest.fixture(autouse=True)
def no_earlier_runs() -> None:
    """dag.test() reuses a run with the same logical date (and its conf): each test starts without one."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(DagRun).filter(DagRun.dag_id == "enlivy_invoice_export").delete()


@pytest.fixture
def invoice_ids(enlivy_airflow_connection: Any) -> Iterator[list[str]]:
    """Five invoices created now (so updated today, UTC), one line each."""
    emulator = enlivy_airflow_connection
    with EnlivyClient(emulator.base_url, emulator.token, organization_id=emulator.org_id) as client:
        yield [
            client.create_invoice(
                {
                    "organization_receiver_user_id": DEMO_CUSTOMERS[n].id,
                    "status": "pending",
                    "currency": "EUR",
                    "payment_method": "bank_transfer",
                    "delivery_method": "email",
                    "line_items": [
                        {
                            "name_lang_map": {"en": "Platform plan"},
                            "quantity": 1,
                            "price": "199.00",
                            "organization_tax_class_id": TAX_CLASS_STANDARD_ID,
                        }
                    ],
                }
            )["id"]
            for n in range(5)
        ]


def _emulator_view(emulator: Any) -> dict[str, dict[str, Any]]:
    """The emulator's invoices updated today, as the admin endpoint shows them (exact decimals)."""
    import requests

    response = requests.get(
        f"{emulator.base_url}/_emulator/invoices", params={"organization_id": emulator.org_id}
    )
    response.raise_for_status()
    return {
        inv["id"]: inv
        for inv in json.loads(response.content, parse_float=Decimal)["data"]
        if inv["updated_at"].startswith(TODAY.date().isoformat())
    }


def _partition(root: Path) -> Path:
    return root / f"date={TODAY.date().isoformat()}"


def test_a_daily_run_exports_the_invoices_updated_in_its_data_interval(
    export_dag: Any, enlivy_airflow_connection: Any, invoice_ids: list[str], tmp_path: Path
) -> None:
    # A run's data interval is the day before its logical date's midnight: this run exports today.
    dag_run = run_dag(
        export_dag, logical_date=TODAY + timedelta(days=1), run_conf={"destination": f"file://{tmp_path}"}
    )

    assert task_states(dag_run) == {"export_invoices": "success"}
    summary = xcom_result(dag_run, "export_invoices")
    assert summary["invoices"] == 5 and summary["line_items"] == 5
    assert summary["updated_from"] == TODAY.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert summary["partitions"][0]["files"]["jsonl"] == f"file://{_partition(tmp_path)}/invoices.jsonl"

    lines = (_partition(tmp_path) / "invoices.jsonl").read_bytes().splitlines()
    exported = {record["id"]: record for record in (json.loads(line, parse_float=Decimal) for line in lines)}
    assert exported == _emulator_view(enlivy_airflow_connection)
    assert sorted(exported) == sorted(invoice_ids)


def test_the_destination_variable_is_used_and_a_rerun_replaces_the_partition(
    export_dag: Any, invoice_ids: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_ENLIVY_EXPORT_DESTINATION", f"file://{tmp_path}")

    run_dag(export_dag, logical_date=TODAY + timedelta(days=1))
    first = {p.name: p.read_bytes() for p in _partition(tmp_path).iterdir()}
    dag_run = run_dag(export_dag, logical_date=TODAY + timedelta(days=1))

    assert task_states(dag_run) == {"export_invoices": "success"}
    assert sorted(first) == ["invoices.csv", "invoices.jsonl"]
    assert {p.name: p.read_bytes() for p in _partition(tmp_path).iterdir()} == first
    assert len(first["invoices.jsonl"].splitlines()) == len(invoice_ids)
    # The re-run replaced both files, so it records both again: each run's pair, on the same two assets.
    events = asset_events(f"file://{tmp_path}/%")
    assert len(events) == 4
    assert sorted(events[:2]) == sorted(events[2:]) == _file_events(tmp_path, rows=len(invoice_ids))


def _file_events(root: Path, rows: int) -> list[tuple[str, dict[str, Any]]]:
    """The asset events of today's partition under ``root``: one per file, sorted by URI."""
    day = TODAY.date().isoformat()
    return [
        (f"file://{_partition(root)}/invoices.{fmt}", {"date": day, "rows": rows, "format": fmt})
        for fmt in ("csv", "jsonl")
    ]


def test_each_file_written_is_an_asset_event_without_the_connection_id(
    export_dag: Any, invoice_ids: list[str], tmp_path: Path
) -> None:
    # A destination naming an Airflow connection (as s3://aws_default@bucket/... does): the files are
    # written, and the asset URIs are their URLs without it.
    destination = f"file://export_storage_conn@{tmp_path}"

    dag_run = run_dag(
        export_dag, logical_date=TODAY + timedelta(days=1), run_conf={"destination": destination}
    )

    assert task_states(dag_run) == {"export_invoices": "success"}
    assert sorted(p.name for p in _partition(tmp_path).iterdir()) == ["invoices.csv", "invoices.jsonl"]
    events = asset_events(f"%{tmp_path}/%")
    assert sorted(events) == _file_events(tmp_path, rows=len(invoice_ids))
    assert not [uri for uri, _ in events if "export_storage_conn" in uri or "@" in uri]


def test_a_failed_export_writes_and_records_nothing(
    export_dag: Any, enlivy_airflow_connection: Any, invoice_ids: list[str], tmp_path: Path
) -> None:
    # Enlivy refuses the listing (403: the task fails without retries) before any file is committed.
    enlivy_airflow_connection.add_fault("GET", "/organizations/*/invoices", "error", status=403, times=100)

    dag_run = run_dag(
        export_dag, logical_date=TODAY + timedelta(days=1), run_conf={"destination": f"file://{tmp_path}"}
    )

    assert task_states(dag_run) == {"export_invoices": "failed"}
    assert sorted(p.name for p in tmp_path.rglob("invoices.*")) == []
    assert asset_events(f"%{tmp_path}/%") == []


def test_the_operator_records_no_asset_event_without_an_alias_in_its_outlets(
    enlivy_airflow_connection: Any, invoice_ids: list[str], tmp_path: Path
) -> None:
    from airflow.providers.common.compat.sdk import DAG

    from enlivy_provider.operators.export import EnlivyExportInvoicesOperator

    with DAG(
        dag_id="enlivy_export_without_alias", schedule=None, start_date=TODAY - timedelta(days=1)
    ) as dag:
        EnlivyExportInvoicesOperator(
            task_id="export_invoices",
            destination=f"file://{tmp_path}",
            updated_from=TODAY,
            updated_to=TODAY + timedelta(days=1),
        )

    dag_run = run_dag(dag, logical_date=TODAY)

    assert task_states(dag_run) == {"export_invoices": "success"}
    assert (_partition(tmp_path) / "invoices.csv").exists()
    assert asset_events(f"%{tmp_path}/%") == []
