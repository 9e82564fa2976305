"""Fixtures for the example DAGs in dags/: parse them the way Airflow does, run them against the emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dag_helpers import DAGS_DIR

# Short payment waits for tests; the DAG files read these when they are parsed.
TEST_ENV = {"ENLIVY_PAYMENT_POKE_SECONDS": "0.5", "ENLIVY_PAYMENT_TIMEOUT_SECONDS": "30"}


def parse_example_dags(monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    """dags/ parsed with DagBag (as the dag-processor does), with the short payment waits above (``env``
    overrides them)."""
    from airflow.models import DagBag

    for key, value in {**TEST_ENV, **env}.items():
        monkeypatch.setenv(key, value)
    bag = DagBag(dag_folder=str(DAGS_DIR))
    assert bag.import_errors == {}, bag.import_errors
    return bag


# Parsed again for every test: dag.test() runs tasks in this process and Airflow merges a run's conf into
# the task objects' params, so a DAG object must not be shared by runs with different conf.
@pytest.fixture
def billing_dag(monkeypatch: pytest.MonkeyPatch) -> Any:
    return parse_example_dags(monkeypatch).get_dag("enlivy_recurring_billing")


@pytest.fixture
def chunked_billing_dag(monkeypatch: pytest.MonkeyPatch) -> Any:
    return parse_example_dags(monkeypatch).get_dag("enlivy_billing_in_chunks")


@pytest.fixture
def event_dag(monkeypatch: pytest.MonkeyPatch) -> Any:
    return parse_example_dags(monkeypatch).get_dag("enlivy_event_invoice")


@pytest.fixture
def billing_and_month_end_dags(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """The billing and month-end DAGs from one parse; the billing DAG waits 1 s for payments (the month-end
    tests' customers never pay)."""
    bag = parse_example_dags(monkeypatch, ENLIVY_PAYMENT_TIMEOUT_SECONDS="1")
    return bag.get_dag("enlivy_recurring_billing"), bag.get_dag("enlivy_month_end")


@pytest.fixture
def report_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the billing DAG writes previews and summaries during a test."""
    path = tmp_path / "reports"
    monkeypatch.setenv("ENLIVY_REPORT_DIR", str(path))
    return path
