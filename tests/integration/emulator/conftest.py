"""Fixtures for the emulator's own tests (the ``enlivy_emulator`` fixture comes from enlivy_provider.testing)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from emulator_test_api import Api, invoice_payload

from enlivy_provider.testing import EmulatorHandle


@pytest.fixture
def api(enlivy_emulator: EmulatorHandle) -> Iterator[Api]:
    client = Api(enlivy_emulator)
    yield client
    client.session.close()


@pytest.fixture
def payload() -> Callable[..., dict[str, Any]]:
    return invoice_payload
