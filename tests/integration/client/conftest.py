"""Fixtures for the client tests: clients pointed at the emulator, short backoff, a valid invoice payload."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from enlivy_provider.client import EnlivyClient
from enlivy_provider.emulator.seed import DEMO_CUSTOMERS, TAX_CLASS_STANDARD_ID

# Retries in tests wait milliseconds, not seconds (Retry-After is still honoured: it is the server's order).
FAST_RETRIES: dict[str, Any] = {"backoff_base": 0.01, "backoff_cap": 0.05}


def make_payload(n: int = 0, **overrides: Any) -> dict[str, Any]:
    customer = DEMO_CUSTOMERS[n % len(DEMO_CUSTOMERS)]
    payload: dict[str, Any] = {
        "organization_receiver_user_id": customer.id,
        "status": "pending",
        "currency": "EUR",
        "payment_method": "bank_transfer",
        "delivery_method": "email",
        "line_items": [
            {
                "name_lang_map": {"en": f"Client test item {n}"},
                "quantity": 2,
                "price": "95.00",
                "organization_tax_class_id": TAX_CLASS_STANDARD_ID,
            }
        ],
    }
    payload.update(overrides)
    return payload


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
