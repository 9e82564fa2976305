"""The UI's connection *Test* button: it posts the form to Airflow's REST API, which runs the hook's test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from airflow_support import REST_API_V2

# Airflow 2's Test button posts to api/v1 and reaches the same Connection.test_connection(), which
# tests/integration/hook/test_hook.py calls directly on every version.
pytestmark = pytest.mark.airflow3_only(reason=REST_API_V2)


@pytest.fixture
def rest_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    monkeypatch.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "test-only-" + "x" * 64)
    from airflow.api_fastapi.app import create_app

    with TestClient(create_app(apps="core")) as client:
        yield client


def form(emulator: Any, **fields: Any) -> dict[str, Any]:
    """What the connection form sends: its fields, the extras as JSON, and a port even though it is hidden."""
    return {
        "connection_id": "enlivy_from_the_form",
        "conn_type": "enlivy",
        "host": emulator.base_url,
        "password": emulator.token,
        "port": 0,
        "extra": json.dumps({"organization_id": emulator.org_id}),
        **fields,
    }


def test_the_test_button_reaches_the_organization_and_ignores_the_forms_port(
    rest_api: Any, enlivy_emulator: Any
) -> None:
    answer = rest_api.post("/api/v2/connections/test", json=form(enlivy_emulator))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": True, "message": "Connected to organization Acme Billing GmbH"}


def test_the_test_button_reports_a_bad_token_without_showing_it(rest_api: Any, enlivy_emulator: Any) -> None:
    wrong = "1|not-the-real-token-0000000000000000000000"
    answer = rest_api.post("/api/v2/connections/test", json=form(enlivy_emulator, password=wrong))
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["status"] is False and "401" in result["message"]
    assert "not-the-real-token" not in answer.text
