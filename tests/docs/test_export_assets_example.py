"""docs/etl-export.md, *Asset events*: the loader DAG scheduled on the export's alias is queued by an export run."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow_runs import delete_runs, set_paused
from airflow_support import asset_tables, run_dag, sync_dag_to_db, task_states

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "etl-export.md"
EXPORT_DAG_FILE = ROOT / "dags" / "enlivy_invoice_export.py"


def _loader_dag() -> Any:
    section = DOC.read_text().split("## Asset events", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "the Asset events section has no python example"
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(DOC), "exec"), namespace)
    return namespace["load_dag"]


def _queued(dag_id: str) -> list[str]:
    """URIs of the assets (datasets) waiting to trigger ``dag_id`` in the scheduler's queue."""
    from airflow.utils.session import create_session

    tables = asset_tables()
    Model, Queue = tables.model, tables.queue
    with create_session() as session:
        rows = (
            session.query(Model.uri)
            .join(Queue, tables.queue_asset_id == Model.id)
            .filter(Queue.target_dag_id == dag_id)
        )
        return sorted(str(uri) for (uri,) in rows)


def test_an_export_run_queues_the_dag_scheduled_on_its_alias(
    enlivy_airflow_connection: Any, tmp_path: Path
) -> None:
    from airflow.models import DagBag

    loader = _loader_dag()
    sync_dag_to_db(loader)
    set_paused(loader.dag_id, False)
    delete_runs("enlivy_invoice_export")
    assert _queued(loader.dag_id) == []
    export_dag = DagBag(dag_folder=str(EXPORT_DAG_FILE)).get_dag("enlivy_invoice_export")

    # 2 January's run exports 1 January (no invoices that day: both files are still replaced and recorded).
    dag_run = run_dag(
        export_dag,
        logical_date=datetime(2026, 1, 2, tzinfo=timezone.utc),
        run_conf={"destination": f"file://{tmp_path}"},
    )

    assert task_states(dag_run) == {"export_invoices": "success"}
    partition = tmp_path / "date=2026-01-01"
    assert _queued(loader.dag_id) == [
        f"file://{partition}/invoices.csv",
        f"file://{partition}/invoices.jsonl",
    ]
