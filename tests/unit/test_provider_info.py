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

from enlivy_provider.get_provider_info import get_provider_info


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
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    manager = ProvidersManager()
    assert "airflow-provider-enlivy" in manager.providers
    hook_info = ProvidersManagerTaskRuntime().hooks["enlivy"]
    assert hook_info is not None
    assert hook_info.hook_class_name == "enlivy_provider.hooks.enlivy.EnlivyHook"
    assert hook_info.connection_type == "enlivy"
    widgets = manager.connection_form_widgets
    assert widgets["extra__enlivy__organization_id"].field["schema"]["title"] == "Organization ID"
    # Required in the form (a schema that does not admit null); the others are optional.
    assert widgets["extra__enlivy__organization_id"].field["schema"]["type"] == "string"
    assert "null" in widgets["extra__enlivy__app_url"].field["schema"]["type"]
    timeout = widgets["extra__enlivy__timeout"].field
    assert timeout["schema"]["type"] == ["number", "null"] and "[connect, read]" in timeout["description"]
    behaviour = manager.field_behaviours["enlivy"]
    assert behaviour["relabeling"]["host"] == "API base URL"
    assert behaviour["relabeling"]["password"] == "API token"


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
