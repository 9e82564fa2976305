"""The invoice filters of the official SDK (docs/enlivy-api-notes.md §6): each one honoured or refused, never
ignored. A filter the emulator does not implement answers 422 naming it; so does a filter name the SDK does
not list for the resource."""

from __future__ import annotations

from typing import Any

import pytest
from emulator_test_api import Api

from enlivy_provider.emulator import seed


@pytest.fixture
def invoices(api: Api) -> dict[str, dict[str, Any]]:
    """A taxed invoice (19 %), an untaxed one (0 %), one with a catalog product line, one with a note."""
    untaxed_line = {
        "name_lang_map": {"en": "Export service"},
        "quantity": 1,
        "price": "80.00",
        "organization_tax_class_id": seed.TAX_CLASS_ZERO_ID,
    }
    product_line = {"organization_product_id": seed.DEMO_PRODUCTS[2].id, "quantity": 3}
    return {
        "taxed": api.create_invoice(0),
        "untaxed": api.create_invoice(1, line_items=[untaxed_line]),
        "product": api.create_invoice(2, line_items=[product_line]),
        "noted": api.create_invoice(3, note_lang_map={"en": "Thanks for the Barcelona workshop"}),
    }


def ids_of(api: Api, **params: Any) -> set[str]:
    response = api.list_invoices(per_page=50, **params)
    assert response.status_code == 200, response.text
    return {invoice["id"] for invoice in response.json()["data"]}


def ids(invoices: dict[str, dict[str, Any]], *names: str) -> set[str]:
    return {invoices[name]["id"] for name in names}


def assert_422(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["message"] == "The given data was invalid."
    assert field in body["errors"], body
    assert all(isinstance(message, str) and message for message in body["errors"][field])


def test_is_tax_charged(api: Api, invoices: dict[str, dict[str, Any]]) -> None:
    # The consulting product's tax class is the 0 % one, so its invoice is not tax-charged either.
    assert (invoices["untaxed"]["is_tax_charged"], invoices["product"]["is_tax_charged"]) == (False, False)
    assert ids_of(api, is_tax_charged=0) == ids(invoices, "untaxed", "product")
    assert ids_of(api, is_tax_charged="false") == ids(invoices, "untaxed", "product")
    assert ids_of(api, is_tax_charged=1) == ids(invoices, "taxed", "noted")
    assert_422(api.list_invoices(is_tax_charged="maybe"), "is_tax_charged")


def test_is_downloadable(api: Api, invoices: dict[str, dict[str, Any]]) -> None:
    # Every emulated invoice can be downloaded as a PDF (is_downloadable true), so 0 matches none.
    assert ids_of(api, is_downloadable=1) == set(ids(invoices, *invoices))
    assert ids_of(api, is_downloadable=0) == set()
    assert_422(api.list_invoices(is_downloadable="sometimes"), "is_downloadable")


def test_product_ids(api: Api, invoices: dict[str, dict[str, Any]]) -> None:
    assert ids_of(api, product_ids=seed.DEMO_PRODUCTS[2].id) == ids(invoices, "product")
    both = f"{seed.DEMO_PRODUCTS[0].id},{seed.DEMO_PRODUCTS[2].id}"
    assert ids_of(api, product_ids=both) == ids(invoices, "product")
    assert ids_of(api, product_ids=seed.DEMO_PRODUCTS[0].id) == set()
    assert_422(api.list_invoices(product_ids=""), "product_ids")


def test_tag_ids_matches_only_tagged_invoices(api: Api, invoices: dict[str, dict[str, Any]]) -> None:
    # None of these invoices carries a tag: a tag filter must narrow the list to nothing, not be ignored.
    assert ids_of(api, tag_ids="org_tag_2qD7mZ0nosuchtag000000001") == set()
    assert_422(api.list_invoices(tag_ids=""), "tag_ids")


def test_q_in_restricts_the_search_to_the_named_fields(api: Api, invoices: dict[str, dict[str, Any]]) -> None:
    assert ids_of(api, q="barcelona") == ids(invoices, "noted")
    url = api.url("/invoices") + "?q=barcelona&q_in[0]=note_lang_map"
    assert {i["id"] for i in api.session.get(url).json()["data"]} == ids(invoices, "noted")
    url = api.url("/invoices") + "?q=barcelona&q_in[0]=number&q_in[1]=formatted_number"
    assert api.session.get(url).json()["data"] == []
    number = invoices["taxed"]["formatted_number"]
    assert ids_of(api, q=number, q_in="formatted_number") == ids(invoices, "taxed")
    assert_422(api.list_invoices(q="barcelona", q_in="receiver_favourite_colour"), "q_in")
    assert_422(api.list_invoices(q_in="number"), "q_in")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("network_exchange", "1"),
        ("peppol_exchange_push_option", "anaf"),
        ("peppol_exchange_pushed", "peppol"),
        ("is_api_charge", "1"),
        ("api_charged_organization_id", "org_2qD7mZ0someOtherOrganization"),
    ],
)
def test_filters_the_emulator_cannot_honour_are_refused(
    api: Api, invoices: dict[str, dict[str, Any]], name: str, value: str
) -> None:
    response = api.list_invoices(**{name: value})
    assert_422(response, name)
    assert "emulator" in response.json()["errors"][name][0]


@pytest.mark.parametrize("name", ["due_at_to", "customer", "statuses", "type"])
def test_filter_names_the_sdk_does_not_list_are_refused(api: Api, name: str) -> None:
    assert_422(api.list_invoices(**{name: "x"}), name)


def test_catalog_lists_refuse_filter_names_the_sdk_does_not_list(api: Api) -> None:
    # ProductService lists only is_sold; TaxClassService lists no filter at all.
    assert_422(api.get("/products", params={"name": "consulting"}), "name")
    assert_422(api.get("/tax-classes", params={"description": "vat"}), "description")
    assert_422(api.get("/bank-accounts", params={"currency": "EUR"}), "currency")
    assert api.get("/products", params={"is_sold": 1, "include": "tax_class"}).status_code == 200
