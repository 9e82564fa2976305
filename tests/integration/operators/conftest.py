"""Fixtures of the invoice-operator tests (helpers live in invoice_support.py)."""

from __future__ import annotations

from typing import Any

import pytest
from invoice_support import Failures


@pytest.fixture(autouse=True)
def _emulator_connection(enlivy_airflow_connection: Any) -> Any:
    """Every test here talks to the session's emulator through enlivy_default (reset before each test)."""
    return enlivy_airflow_connection


@pytest.fixture
def failures() -> Failures:
    return Failures()


@pytest.fixture
def connection_extra(enlivy_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """connection_extra(**extra): point enlivy_default at the emulator with these extras."""

    def set_extra(**extra: Any) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_ENLIVY_DEFAULT", enlivy_emulator.connection_json(**extra))

    return set_extra


@pytest.fixture
def api(enlivy_emulator: Any) -> Any:
    """A client on the emulator's demo organization, to set up and read back what a test needs."""
    from enlivy_provider.client import EnlivyClient

    with EnlivyClient(
        enlivy_emulator.base_url, enlivy_emulator.token, organization_id=enlivy_emulator.org_id
    ) as client:
        yield client
