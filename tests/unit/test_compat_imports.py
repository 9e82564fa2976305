"""Airflow names are imported through common-compat (or enlivy_provider.compat), so the provider and the example
DAGs import on every supported Airflow: a direct ``airflow.sdk`` import fails on Airflow 2.11."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The one module that asks which Airflow it runs on (it imports airflow.sdk only on Airflow 3).
ALLOWED = {ROOT / "enlivy_provider" / "compat.py"}


def _sources() -> list[Path]:
    files = [*(ROOT / "enlivy_provider").rglob("*.py"), *(ROOT / "dags").rglob("*.py")]
    return sorted(path for path in files if path not in ALLOWED)


def _sdk_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = (
            [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else []
        )
        found += [
            f"line {node.lineno}: {name}" for name in names if name.split(".")[:2] == ["airflow", "sdk"]
        ]
    return found


@pytest.mark.parametrize("path", _sources(), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_direct_airflow_sdk_import(path: Path) -> None:
    assert _sdk_imports(path) == [], (
        f"{path.relative_to(ROOT)} imports airflow.sdk directly: use airflow.providers.common.compat.sdk "
        "(or enlivy_provider.compat for what common-compat lacks)"
    )
