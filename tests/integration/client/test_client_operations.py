"""EnlivyClient against the emulator over HTTP: every method, envelopes, pagination, filters."""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from enlivy_provider.client import ApiResponse, EnlivyClient, EnlivyInvalidRequestError, Page
from enlivy_provider.emulator.seed import (
    DEMO_CUSTOMERS,
    DEMO_INVOICE_PREFIX_ID,
    DEMO_ORG_NAME,
    DEMO_PRODUCTS,
    TAX_CLASS_STANDARD_ID,
)

LIST = ("GET", "/organizations/{org}/invoices")


def test_get_organization(api: EnlivyClient, enlivy_emulator: Any) -> None:
    organization = api.get_organization()
    assert organization["id"] == enlivy_emulator.org_id
    assert organization["name"] == DEMO_ORG_NAME


def test_create_invoice_returns_the_unwrapped_record_with_decimal_totals(
    api: EnlivyClient, payload: Callable[..., dict[str, Any]]
) -> None:
    invoice = api.create_invoice(payload(), include=["line_items", "taxes"])
    assert invoice["id"].startswith("org_inv_")
    assert invoice["status"] == "pending"
    # 2 x 95.00 at 19 %: sub total 190.00, tax 36.10, total 226.10 — exact Decimals, not floats.
    assert (invoice["sub_total"], invoice["tax_total"], invoice["total"]) == (
        Decimal("190.00"),
        Decimal("36.10"),
        Decimal("226.10"),
    )
    assert isinstance(invoice["line_items"], list)
    assert invoice["line_items"][0]["quantity"] == 2


def test_decimal_amounts_in_the_payload_arrive_exactly(
    api: EnlivyClient, payload: Callable[..., dict[str, Any]]
) -> None:
    body = payload()
    body["line_items"][0].update(quantity=Decimal("3"), price=Decimal("0.10"))
    invoice = api.create_invoice(body)
    assert invoice["sub_total"] == Decimal("0.30")  # 3 x 0.1 in floats would be 0.30000000000000004


def test_get_invoice_with_include_unwraps_relations(
    api: EnlivyClient, payload: Callable[..., dict[str, Any]]
) -> None:
    created = api.create_invoice(payload())
    invoice = api.get_invoice(created["id"], include="line_items,invoice_prefix")
    assert invoice["id"] == created["id"]
    assert [item["name_lang_map"]["en"] for item in invoice["line_items"]] == ["Client test item 0"]
    assert invoice["invoice_prefix"]["id"] == DEMO_INVOICE_PREFIX_ID


def test_update_invoice(api: EnlivyClient, payload: Callable[..., dict[str, Any]]) -> None:
    created = api.create_invoice(payload())
    updated = api.update_invoice(created["id"], {"note_lang_map": {"en": "Thanks!"}}, idempotency_key="upd-1")
    assert updated["id"] == created["id"]
    assert updated["note_lang_map"] == {"en": "Thanks!"}
    assert api.get_invoice(created["id"])["note_lang_map"] == {"en": "Thanks!"}


def test_delete_and_restore_invoice(api: EnlivyClient, payload: Callable[..., dict[str, Any]]) -> None:
    created = api.create_invoice(payload())
    deleted = api.delete_invoice(created["id"])
    assert deleted["deleted_at"]
    assert created["id"] not in {invoice["id"] for invoice in api.list_invoices()}
    restored = api.restore_invoice(created["id"])
    assert restored["deleted_at"] is None
    assert created["id"] in {invoice["id"] for invoice in api.list_invoices()}


def test_send_invoice_email(api: EnlivyClient, payload: Callable[..., dict[str, Any]]) -> None:
    created = api.create_invoice(payload())
    answer = api.send_invoice_email(created["id"], to="ap@globex.example", subject="Your invoice")
    assert isinstance(answer, dict)


def test_download_invoice_returns_pdf_bytes(
    api: EnlivyClient, payload: Callable[..., dict[str, Any]]
) -> None:
    created = api.create_invoice(payload())
    document = api.download_invoice(created["id"])
    assert document.startswith(b"%PDF")


def test_list_invoices_follows_every_page(
    api: EnlivyClient, payload: Callable[..., dict[str, Any]], enlivy_emulator: Any
) -> None:
    created = {api.create_invoice(payload(n))["id"] for n in range(7)}
    enlivy_emulator.reset_counters()
    iterator = api.list_invoices(per_page=3)
    assert enlivy_emulator.request_count(*LIST) == 0  # lazy: nothing sent before iterating
    listed = [invoice["id"] for invoice in iterator]
    assert sorted(listed) == sorted(created)  # no duplicates, nothing missing
    assert enlivy_emulator.request_count(*LIST) == math.ceil(7 / 3)


def test_list_invoices_page_gives_items_and_meta(
    api: EnlivyClient, payload: Callable[..., dict[str, Any]]
) -> None:
    for n in range(3):
        api.create_invoice(payload(n))
    page = api.list_invoices_page(page=2, per_page=2, include_meta="navigation")
    assert isinstance(page, Page)
    assert page.status_code == 200
    assert len(page.items) == 1
    assert page.meta["pagination"]["current_page"] == 2
    assert page.meta["pagination"]["total"] == 3
    assert page.meta["navigation"]["active"] == 3


def test_ids_filter_accepts_a_list(api: EnlivyClient, payload: Callable[..., dict[str, Any]]) -> None:
    ids = [api.create_invoice(payload(n))["id"] for n in range(4)]
    assert sorted(invoice["id"] for invoice in api.list_invoices(ids=ids[:2])) == sorted(ids[:2])


def test_boolean_and_status_filters(api: EnlivyClient, payload: Callable[..., dict[str, Any]]) -> None:
    pending = api.create_invoice(payload(0))
    draft = api.create_invoice(payload(1, status="draft"))
    assert [invoice["id"] for invoice in api.list_invoices(status="draft")] == [draft["id"]]
    assert {invoice["id"] for invoice in api.list_invoices(is_tax_charged=True)} >= {pending["id"]}


def test_unknown_filter_fails_locally_without_a_request(api: EnlivyClient, enlivy_emulator: Any) -> None:
    enlivy_emulator.reset_counters()
    with pytest.raises(EnlivyInvalidRequestError, match="did you mean 'status'"):
        api.list_invoices(stauts="paid")
    assert enlivy_emulator.counters()["total"] == 0


def test_customers(api: EnlivyClient) -> None:
    customers = list(api.list_customers(can_be_invoiced=True))
    assert {c.id for c in DEMO_CUSTOMERS} <= {customer["id"] for customer in customers}
    first = DEMO_CUSTOMERS[0]
    assert api.get_customer(first.id)["email"] == first.email
    found = api.find_customer_by_email(first.email.upper())
    assert found is not None and found["id"] == first.id
    assert api.find_customer_by_email("nobody@nowhere.example") is None


def test_catalogue_lists(api: EnlivyClient) -> None:
    assert {p.id for p in DEMO_PRODUCTS} <= {product["id"] for product in api.list_products()}
    assert TAX_CLASS_STANDARD_ID in {tax_class["id"] for tax_class in api.list_tax_classes()}
    assert any(
        rate.get("organization_tax_class_id") == TAX_CLASS_STANDARD_ID for rate in api.list_tax_rates()
    )
    assert DEMO_INVOICE_PREFIX_ID in {prefix["id"] for prefix in api.list_invoice_prefixes(type="standard")}


def test_generic_request_keeps_the_raw_response(api: EnlivyClient, enlivy_emulator: Any) -> None:
    response = api.request("GET", f"/organizations/{enlivy_emulator.org_id}/invoices", params={"per_page": 5})
    assert isinstance(response, ApiResponse)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["meta"]["pagination"]["per_page"] == 5
    assert response.data == []


def test_one_client_serves_many_threads(api: EnlivyClient, payload: Callable[..., dict[str, Any]]) -> None:
    created = api.create_invoice(payload())
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda _: api.get_invoice(created["id"])["id"], range(64)))
    assert results == [created["id"]] * 64


def test_client_repr_and_context_manager(enlivy_emulator: Any) -> None:
    with EnlivyClient(
        enlivy_emulator.base_url, enlivy_emulator.token, organization_id=enlivy_emulator.org_id
    ) as api:
        assert api.get_organization()["id"] == enlivy_emulator.org_id
        assert repr(api) == (
            f"EnlivyClient(base_url={enlivy_emulator.base_url!r}, organization_id={enlivy_emulator.org_id!r})"
        )
