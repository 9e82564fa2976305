"""Test-session setup shared by every test: one Airflow home and one emulator per session.

Airflow reads its configuration when it is first imported, so the environment is set here, at import
time of the root conftest, before any test module can import Airflow.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="enlivy-tests-"))
_DAGS_DIR = _SESSION_DIR / "dags"
_DAGS_DIR.mkdir()

os.environ["AIRFLOW_HOME"] = str(_SESSION_DIR / "airflow")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# An empty bundle: inline test DAGs are written to the DB by tests/airflow_support.run_dag, and the
# example DAGs' tests parse dags/ themselves, so dag.test() never walks a large folder.
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_DAGS_DIR)
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_SESSION_DIR / 'airflow' / 'airflow.db'}"
os.environ.pop("AIRFLOW_CONN_ENLIVY_DEFAULT", None)

pytest_plugins = ["enlivy_provider.testing"]


@pytest.fixture(scope="session", autouse=True)
def airflow_db() -> Iterator[Path]:
    """Create the session's Airflow metadata database once (SQLite, a few seconds)."""
    from airflow.utils import db

    db.initdb()
    yield _SESSION_DIR / "airflow"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "airflow3_only(reason): the test exercises something Airflow 2 does not have; on Airflow 2 it is "
        "reported as skipped with the reason (never skipped silently)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from airflow_support import AIRFLOW_3

    if AIRFLOW_3:
        return
    for item in items:
        marker = item.get_closest_marker("airflow3_only")
        if marker is not None:
            reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
            assert reason, f"{item.nodeid}: airflow3_only needs a reason"
            item.add_marker(pytest.mark.skip(reason=f"Airflow 3 only: {reason}"))
