"""Fixtures for the emulator's own tests (the ``enlivy_emulator`` fixture comes from enlivy_provider.testing)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from emulator_test_api import Api

from enlivy_provider.testing import EmulatorHandle


@pytest.fixture
def api(enlivy_emulator: EmulatorHandle) -> Iterator[Api]:
    """``requests`` against the freshly reset emulator, with the demo organization's token."""
    client = Api(enlivy_emulator)
    yield client
    client.session.close()
