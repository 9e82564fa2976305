"""Every DAG file in dags/ imports cleanly: no import errors, no warnings, no work at parse time; the helper
modules they share are not parsed as DAG files."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS
from dag_helpers import DAGS_DIR, dag_files, helper_modules

# DAG files that need Airflow 3 (their docstring says so): on Airflow 2 they must still parse, define no DAG,
# and their test is skipped saying why.
AIRFLOW3_ONLY_DAG_FILES = {
    "enlivy_invoice_paid.py": "scheduled on an AssetWatcher (event-driven scheduling), which Airflow 2 lacks",
}
EXPECTED_DAGS = {
    "enlivy_recurring_billing",
    "enlivy_billing_in_chunks",
    "enlivy_event_invoice",
    "enlivy_invoice_export",
    "enlivy_month_end",
} | ({"enlivy_invoice_paid"} if AIRFLOW_V_3_0_PLUS else set())


@pytest.mark.parametrize("path", dag_files(), ids=lambda p: p.name)
def test_dag_file_imports_without_errors_or_warnings(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.models import DagBag

    # Nothing listens on this port: a DAG file that called the API while being parsed would fail here.
    monkeypatch.setenv(
        "AIRFLOW_CONN_ENLIVY_DEFAULT",
        '{"conn_type": "enlivy", "host": "http://127.0.0.1:9", "password": "x", "extra": {"organization_id": "o"}}',
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=str(path))

    assert bag.import_errors == {}
    assert bag.captured_warnings == {}
    assert [str(w.message) for w in caught] == []
    if not AIRFLOW_V_3_0_PLUS and path.name in AIRFLOW3_ONLY_DAG_FILES:
        assert bag.dag_ids == [], f"{path.name} needs Airflow 3 and must define no DAG on Airflow 2"
        assert "Requires Airflow 3" in path.read_text()
        pytest.skip(
            f"{path.name} needs Airflow 3 ({AIRFLOW3_ONLY_DAG_FILES[path.name]}): parsed cleanly, no DAG"
        )
    assert bag.dag_ids, f"{path.name} defines no DAG"
    for dag_id in bag.dag_ids:
        dag = bag.get_dag(dag_id)
        assert dag.tags and "enlivy" in dag.tags
        assert dag.doc_md, f"{dag_id} has no documentation"


def test_every_example_dag_is_in_the_folder() -> None:
    from airflow.models import DagBag

    bag = DagBag(dag_folder=str(DAGS_DIR))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) >= EXPECTED_DAGS


def test_helper_modules_are_imported_by_the_dags_not_parsed_as_dag_files() -> None:
    from airflow.models import DagBag

    bag = DagBag(dag_folder=str(DAGS_DIR))
    parsed = {Path(stat.file).name for stat in bag.dagbag_stats}
    assert helper_modules() == {"billing_data.py", "month_end_rules.py"}
    assert parsed == {path.name for path in dag_files()}
