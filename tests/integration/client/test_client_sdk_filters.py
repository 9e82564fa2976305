"""The client's list filters against the emulator: the SDK's names arrive in the shapes the emulator reads,
a filter the emulator refuses surfaces as a 422 naming it, and ``limit`` walks every page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from enlivy_provider.client import EnlivyClient, EnlivyValidationError
from enlivy_provider.emulator.seed import DEMO_PRODUCTS, TAX_CLASS_ZERO_ID


def test_sdk_filters_reach_the_emulator(api: EnlivyClient, payload: Callable[..., dict[str, Any]]) -> None:
    taxed = api.create_invoice(payload(0, note_lang_map={"en": "Lisbon offsite"}))
    untaxed_line = {"name_lang_map": {"en": "x"}, "quantity": 1, "price": "5.00",
                    "organization_tax_class_id": TAX_CLASS_ZERO_ID}  # fmt: skip
    untaxed = api.create_invoice(payload(1, line_items=[untaxed_line]))
    product = api.create_invoice(payload(2, line_items=[{"organization_product_id": DEMO_PRODUCTS[1].id,
                                                         "quantity": 10}]))  # fmt: skip

    def ids(**filters: Any) -> set[str]:
        return {invoice["id"] for invoice in api.list_invoices(**filters)}

    assert ids(is_tax_charged=False) == {untaxed["id"]}
    assert ids(product_ids=[DEMO_PRODUCTS[1].id, DEMO_PRODUCTS[2].id]) == {product["id"]}
    assert ids(q="lisbon", q_in=["note_lang_map"]) == {taxed["id"]}
    assert ids(q="lisbon", q_in=["number", "formatted_number"]) == set()
    assert ids(tag_ids=["org_tag_2qD7mZ0nosuchtag000000001"]) == set()


def test_a_filter_the_emulator_refuses_is_a_422_naming_it(api: EnlivyClient) -> None:
    with pytest.raises(EnlivyValidationError) as caught:
        list(api.list_invoices(peppol_exchange_pushed="anaf"))
    assert "peppol_exchange_pushed" in caught.value.field_errors


def test_limit_walks_every_page(
    api: EnlivyClient, payload: Callable[..., dict[str, Any]], enlivy_emulator: Any
) -> None:
    created = {api.create_invoice(payload(n))["id"] for n in range(5)}
    enlivy_emulator.reset_counters()
    assert {invoice["id"] for invoice in api.list_invoices(limit=2)} == created
    assert enlivy_emulator.request_count("GET", "/organizations/{org}/invoices") == 3
