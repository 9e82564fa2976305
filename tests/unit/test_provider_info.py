"""The provider metadata Airflow reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import jsonschema
import pytest

from enlivy_provider.get_provider_info import ENLIVY_CONN_FIELDS, get_provider_info


def _listed_modules(info: dict) -> list[str]:
    modules: list[str] = []
    for section in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[section]:
            modules.extend(entry["python-modules"])
    return modules


def test_provider_info_is_valid_for_airflow_schema() -> None:
    import airflow

    schema_path = Path(airflow.__file__).parent / "provider_info.schema.json"
    jsonschema.validate(get_provider_info(), json.loads(schema_path.read_text()))


def test_entry_point_is_registered() -> None:
    eps = entry_points(group="apache_airflow_provider")
    assert any(ep.value == "enlivy_provider.get_provider_info:get_provider_info" for ep in eps)


@pytest.mark.parametrize("module", _listed_modules(get_provider_info()))
def test_every_listed_module_imports(module: str) -> None:
    importlib.import_module(module)


def test_every_listed_class_exists() -> None:
    info = get_provider_info()
    for dotted in [*info["extra-links"], *(c["hook-class-name"] for c in info["connection-types"])]:
        module_name, _, class_name = dotted.rpartition(".")
        assert hasattr(importlib.import_module(module_name), class_name), dotted


def test_providers_manager_knows_the_enlivy_connection_form() -> None:
    """The form the UI draws: from ``conn-fields`` on Airflow 3, from the hook's widget methods on Airflow 2."""
    from airflow.providers_manager import ProvidersManager
    from airflow_support import connection_form

    assert "airflow-provider-enlivy" in ProvidersManager().providers
    form = connection_form("enlivy")
    assert form["hook"] == "enlivy_provider.hooks.enlivy.EnlivyHook"
    fields = form["fields"]
    assert set(fields) == set(ENLIVY_CONN_FIELDS)
    assert fields["organization_id"]["label"] == "Organization ID"
    # Required in the form; the others are optional.
    assert [name for name, field in fields.items() if field["required"]] == ["organization_id"]
    assert "[connect, read]" in fields["timeout"]["description"]
    behaviour = form["behaviour"]
    assert behaviour["relabeling"]["host"] == "API base URL"
    assert behaviour["relabeling"]["password"] == "API token"
    assert set(behaviour["hidden_fields"]) == {"schema", "port", "extra"}


def test_airflow_cli_lists_the_provider_and_its_hook() -> None:
    env = {**os.environ}
    airflow_bin = str(Path(sys.executable).parent / "airflow")
    providers = subprocess.run(
        [airflow_bin, "providers", "list", "-o", "json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert providers.returncode == 0, providers.stderr
    assert "airflow-provider-enlivy" in providers.stdout
    hooks = subprocess.run(
        [airflow_bin, "providers", "hooks", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert hooks.returncode == 0, hooks.stderr
    assert "enlivy_provider.hooks.enlivy.EnlivyHook" in hooks.stdout
