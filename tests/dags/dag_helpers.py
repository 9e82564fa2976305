"""Constants and small helpers shared by the tests of the example DAGs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DAGS_DIR = REPO / "dags"


def helper_modules() -> set[str]:
    """The modules dags/.airflowignore keeps Airflow from parsing as DAG files (the DAGs import them)."""
    lines = (DAGS_DIR / ".airflowignore").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def dag_files() -> list[Path]:
    """The DAG files of dags/: every ``*.py`` but the helper modules."""
    return sorted(path for path in DAGS_DIR.glob("*.py") if path.name not in helper_modules())


def live_invoices(emulator: Any) -> list[dict[str, Any]]:
    """Every invoice of the demo organization that is not soft-deleted (from the emulator's admin API)."""
    return list(emulator.live_invoices())
