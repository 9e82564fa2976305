"""Fixtures for the example DAGs in dags/: parse them the way Airflow does, run them against the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dag_helpers import DAGS_DIR

# Short payment waits for tests; the DAG files read these when they are parsed.
TEST_ENV = {"ENLIVY_PAYMENT_POKE_SECONDS": "0.5", "ENLIVY_PAYMENT_TIMEOUT_SECONDS": "30"}


@pytest.fixture(scope="session")
def example_dagbag() -> Any:
    """dags/ parsed once per session with DagBag (no examples), with the short payment waits above."""
    from airflow.dag_processing.dagbag import DagBag

    with pytest.MonkeyPatch.context() as patch:
        for key, value in TEST_ENV.items():
            patch.setenv(key, value)
        bag = DagBag(dag_folder=str(DAGS_DIR))
    assert bag.import_errors == {}, bag.import_errors
    return bag


@pytest.fixture
def report_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the billing DAG writes previews and summaries during a test."""
    path = tmp_path / "reports"
    monkeypatch.setenv("ENLIVY_REPORT_DIR", str(path))
    return path


def _dag_restoring_sensor_timeout(bag: Any, dag_id: str) -> Iterator[Any]:
    dag = bag.get_dag(dag_id)
    sensor = dag.get_task("wait_for_payment")
    timeout = sensor.timeout
    yield dag
    sensor.timeout = timeout  # a test may shorten it


@pytest.fixture
def billing_dag(example_dagbag: Any) -> Iterator[Any]:
    yield from _dag_restoring_sensor_timeout(example_dagbag, "enlivy_recurring_billing")


@pytest.fixture
def event_dag(example_dagbag: Any) -> Iterator[Any]:
    yield from _dag_restoring_sensor_timeout(example_dagbag, "enlivy_event_invoice")
