"""Fixtures for the export tests: invoices created in the emulator over HTTP, and partition readers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from enlivy_provider.client import EnlivyClient
from enlivy_provider.emulator.seed import TAX_CLASS_STANDARD_ID, TAX_CLASS_ZERO_ID
from enlivy_provider.testing import invoice_payload as demo_invoice_payload


def invoice_payload(n: int, status: str = "pending") -> dict[str, Any]:
    """An invoice with two lines (one taxed), amounts as exact decimal strings."""
    lines = [
        {
            "name_lang_map": {"en": f"Export test plan {n}"},
            "quantity": 1,
            "price": f"{100 + n}.99",
            "organization_tax_class_id": TAX_CLASS_STANDARD_ID,
        },
        {
            "name_lang_map": {"en": "API calls"},
            "quantity": "3.5",
            "price": "0.45",
            "organization_tax_class_id": TAX_CLASS_ZERO_ID,
        },
    ]
    return demo_invoice_payload(n, line_items=lines, status=status)


@pytest.fixture
def client(enlivy_emulator: Any) -> Iterator[EnlivyClient]:
    with EnlivyClient(
        enlivy_emulator.base_url, enlivy_emulator.token, organization_id=enlivy_emulator.org_id
    ) as api:
        yield api


@pytest.fixture
def make_invoices(client: EnlivyClient) -> Callable[..., list[str]]:
    """make_invoices(n, status="pending") -> ids, created one after the other (list order = creation order)."""

    def make(n: int, status: str = "pending") -> list[str]:
        return [client.create_invoice(invoice_payload(i, status))["id"] for i in range(n)]

    return make


@pytest.fixture
def list_calls(enlivy_emulator: Any) -> Callable[[], int]:
    """How many invoice list requests reached the emulator since its counters were last reset."""

    def count() -> int:
        return int(enlivy_emulator.request_count("GET", "/organizations/{org}/invoices"))

    return count
