"""Customers (/users), products, tax classes, tax rates, invoice prefixes, bank accounts."""

from __future__ import annotations

import pytest
from emulator_test_api import Api

from enlivy_provider.emulator import seed

RESOURCES = {
    "/users": ("organization_user", "org_user_", 1 + len(seed.DEMO_CUSTOMERS)),
    "/products": ("product", "org_prod_", len(seed.DEMO_PRODUCTS)),
    "/tax-classes": ("tax_class", "org_tax_class_", 2),
    "/tax-rates": ("tax_rate", "org_tax_rate_", 2),
    "/invoice-prefixes": ("invoice_prefix", "org_invpfx_", 1),
    "/bank-accounts": ("bank_account", "org_bankacc_", 1),
}


@pytest.mark.parametrize("path", list(RESOURCES))
def test_list_and_retrieve(api: Api, path: str) -> None:
    obj, prefix, count = RESOURCES[path]
    body = api.get(path).json()
    assert body["meta"]["pagination"]["total"] == count == len(body["data"])
    assert {record["object"] for record in body["data"]} == {obj}
    assert all(record["id"].startswith(prefix) for record in body["data"])
    first = body["data"][0]
    one = api.get(f"{path}/{first['id']}").json()
    assert one == {"data": first}
    assert api.get(f"{path}/{prefix}missing").status_code == 404
    paged = api.get(path, params={"per_page": 1, "page": 2}).json()["meta"]["pagination"]
    assert (paged["count"], paged["current_page"], paged["total_pages"]) == (min(1, count - 1), 2, count)


def test_user_filters(api: Api) -> None:
    def ids(**params: object) -> set[str]:
        response = api.get("/users", params=params)
        assert response.status_code == 200, response.text
        return {u["id"] for u in response.json()["data"]}

    customers = {c.id for c in seed.DEMO_CUSTOMERS}
    assert ids(can_be_invoiced=1) == customers
    assert ids(can_be_invoiced="false") == {seed.SENDER_USER_ID}
    assert ids(can_be_invoicing="true") == {seed.SENDER_USER_ID}
    assert ids(email=seed.DEMO_CUSTOMERS[1].email.upper()) == {seed.DEMO_CUSTOMERS[1].id}
    assert ids(organization_user_role_id=seed.ROLE_STAFF_ID) == {seed.SENDER_USER_ID}
    assert ids(q="globex") == {seed.DEMO_CUSTOMERS[0].id}
    assert ids(ids=f"{seed.DEMO_CUSTOMERS[0].id},{seed.SENDER_USER_ID}") == {
        seed.DEMO_CUSTOMERS[0].id,
        seed.SENDER_USER_ID,
    }
    assert api.get("/users", params={"can_be_invoiced": "maybe"}).status_code == 422
    assert api.get("/users", params={"include": "invoices"}).status_code == 422
    with_role = api.get(f"/users/{seed.DEMO_CUSTOMERS[0].id}", params={"include": "user_role"}).json()["data"]
    assert with_role["user_role"]["data"]["can_be_invoiced"] is True


def test_other_resource_filters(api: Api) -> None:
    # name/description are not product filters in the SDK (ProductService lists is_sold only): 422.
    assert api.get("/products", params={"name": "consulting"}).status_code == 422
    assert [p["id"] for p in api.get("/products", params={"q": "consulting"}).json()["data"]] == [
        seed.DEMO_PRODUCTS[2].id
    ]
    assert len(api.get("/products", params={"is_sold": 1}).json()["data"]) == 3
    rates = api.get("/tax-rates", params={"organization_tax_class_id": seed.TAX_CLASS_STANDARD_ID}).json()[
        "data"
    ]
    assert [r["rate"] for r in rates] == [19.0]
    assert '"rate":19.00' in api.get(f"/tax-rates/{seed.TAX_RATE_STANDARD_ID}").text
    assert len(api.get("/invoice-prefixes", params={"type": "standard"}).json()["data"]) == 1
    assert api.get("/invoice-prefixes", params={"type": "credit_note"}).status_code == 422
    product = api.get(f"/products/{seed.DEMO_PRODUCTS[0].id}", params={"include": "tax_class"}).json()["data"]
    assert product["tax_class"]["data"]["id"] == seed.TAX_CLASS_STANDARD_ID
    assert '"EUR":0.45' in api.get(f"/products/{seed.DEMO_PRODUCTS[1].id}").text


def test_create_user(api: Api) -> None:
    body = {
        "organization_user_role_id": seed.ROLE_CUSTOMER_ID,
        "name": "Soylent Corp",
        "email": "ap@soylent.example",
        "country_code": "US",
    }
    response = api.post("/users", json=body)
    assert response.status_code == 201, response.text
    user = response.json()
    assert user["id"].startswith("org_user_") and user["object"] == "organization_user"
    assert api.get(f"/users/{user['id']}").json()["data"]["email"] == "ap@soylent.example"
    assert api.get("/users", params={"email": "ap@soylent.example"}).json()["data"][0]["id"] == user["id"]
    invoice = api.create_invoice(organization_receiver_user_id=user["id"])
    assert invoice["receiver_country_code"] == "US"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"organization_user_role_id", "country_code", "first_name", "last_name"}),
        (
            {"organization_user_role_id": "org_user_role_nope", "name": "X", "country_code": "DE"},
            {"organization_user_role_id"},
        ),
        (
            {"organization_user_role_id": seed.ROLE_CUSTOMER_ID, "name": "X", "country_code": "Germany"},
            {"country_code"},
        ),
        ({"organization_user_role_id": seed.ROLE_CUSTOMER_ID, "country_code": "DE"}, {"name"}),
        (
            {"organization_user_role_id": seed.ROLE_STAFF_ID, "country_code": "DE"},
            {"first_name", "last_name"},
        ),
        (
            {
                "organization_user_role_id": seed.ROLE_CUSTOMER_ID,
                "name": "X",
                "country_code": "DE",
                "email": "billing@globex.example",
            },
            {"email"},
        ),
        (
            {
                "organization_user_role_id": seed.ROLE_CUSTOMER_ID,
                "name": "X",
                "country_code": "DE",
                "locale": "fr",
            },
            {"locale"},
        ),
    ],
)
def test_create_user_422(api: Api, body: dict[str, object], fields: set[str]) -> None:
    response = api.post("/users", json=body)
    assert response.status_code == 422
    assert set(response.json()["errors"]) == fields


def test_create_product(api: Api) -> None:
    body = {
        "type": "service",
        "name_lang_map": {"en": "Support"},
        "price_map": {"EUR": 49.5, "USD": "55"},
        "primary_currency": "EUR",
        "organization_tax_class_id": seed.TAX_CLASS_STANDARD_ID,
    }
    response = api.post("/products", json=body)
    assert response.status_code == 201
    assert '"price_map":{"EUR":49.50,"USD":55.00}' in response.text
    product = response.json()
    line = {"organization_product_id": product["id"], "quantity": 1}
    invoice = api.create_invoice(currency="USD", line_items=[line])
    assert invoice["total"] == 65.45


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"type", "price_map"}),
        ({"type": "gift", "price_map": {"EUR": 1}}, {"type"}),
        ({"type": "service", "price_map": {"EUR": -1}}, {"price_map.EUR"}),
        ({"type": "service", "price_map": {"EUR": 1, "USD": 1}}, {"primary_currency"}),
        (
            {"type": "service", "price_map": {"EUR": 1}, "organization_tax_class_id": "org_tax_class_x"},
            {"organization_tax_class_id"},
        ),
    ],
)
def test_create_product_422(api: Api, body: dict[str, object], fields: set[str]) -> None:
    response = api.post("/products", json=body)
    assert response.status_code == 422
    assert set(response.json()["errors"]) == fields
