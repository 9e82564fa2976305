"""Fixtures for the client tests: clients pointed at the emulator, short backoff, a valid invoice payload."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from enlivy_provider.client import EnlivyClient
from enlivy_provider.emulator.seed import TAX_CLASS_STANDARD_ID
from enlivy_provider.testing import invoice_payload

# Retries in tests wait milliseconds, not seconds (Retry-After is still honoured: it is the server's order).
FAST_RETRIES: dict[str, Any] = {"backoff_base": 0.01, "backoff_cap": 0.05}


def make_payload(n: int = 0, **overrides: Any) -> dict[str, Any]:
    return invoice_payload(n, **{"line_items": [_line(f"Client test item {n}")], **overrides})


def _line(name: str) -> dict[str, Any]:
    return {
        "name_lang_map": {"en": name},
        "quantity": 2,
        "price": "95.00",
        "organization_tax_class_id": TAX_CLASS_STANDARD_ID,
    }


@pytest.fixture
def payload() -> Callable[..., dict[str, Any]]:
    return make_payload


@pytest.fixture
def client_factory(enlivy_emulator: Any) -> Iterator[Callable[..., EnlivyClient]]:
    """client_factory(**overrides) -> an EnlivyClient on the emulator (closed after the test)."""
    made: list[EnlivyClient] = []

    def make(**overrides: Any) -> EnlivyClient:
        options: dict[str, Any] = {
            "base_url": enlivy_emulator.base_url,
            "token": enlivy_emulator.token,
            "organization_id": enlivy_emulator.org_id,
            **FAST_RETRIES,
            **overrides,
        }
        client = EnlivyClient(**options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def api(client_factory: Callable[..., EnlivyClient]) -> EnlivyClient:
    return client_factory()
