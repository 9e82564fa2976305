"""Authentication: 401 without or with a bad token, 403 across organizations, login."""

from __future__ import annotations

import pytest
import requests
from emulator_test_api import Api

from enlivy_provider.emulator import seed
from enlivy_provider.testing import EmulatorHandle

PATHS = [
    ("GET", "/invoices"),
    ("POST", "/invoices"),
    ("GET", "/invoices/org_inv_x"),
    ("PUT", "/invoices/org_inv_x"),
    ("DELETE", "/invoices/org_inv_x"),
    ("POST", "/invoices/restore/org_inv_x"),
    ("POST", "/invoices/org_inv_x/email"),
    ("GET", "/invoices/org_inv_x/download"),
    ("GET", "/users"),
    ("POST", "/users"),
    ("GET", "/products"),
    ("GET", "/tax-classes"),
    ("GET", "/tax-rates"),
    ("GET", "/invoice-prefixes"),
    ("GET", "/bank-accounts"),
    ("GET", ""),
]


@pytest.mark.parametrize(("method", "path"), PATHS)
def test_missing_or_bad_token_is_401(enlivy_emulator: EmulatorHandle, method: str, path: str) -> None:
    url = f"{enlivy_emulator.base_url}/organizations/{enlivy_emulator.org_id}{path}"
    for headers in ({}, {"Authorization": "Bearer 1|wrong"}, {"Authorization": enlivy_emulator.token}):
        response = requests.request(method, url, headers=headers, json={}, timeout=10)
        assert response.status_code == 401, (headers, response.text)
        assert response.json() == {"message": "Unauthenticated."}


@pytest.mark.parametrize(("method", "path"), PATHS)
def test_token_of_another_organization_is_403(
    enlivy_emulator: EmulatorHandle, method: str, path: str
) -> None:
    intruder = Api(enlivy_emulator, token=enlivy_emulator.other_token)
    response = intruder.request(method, path, json={})
    assert response.status_code == 403
    assert response.json() == {"message": "This action is unauthorized."}


def test_other_organization_sees_only_its_own_data(enlivy_emulator: EmulatorHandle, api: Api) -> None:
    created = api.create_invoice()
    other = Api(enlivy_emulator, token=enlivy_emulator.other_token, org_id=enlivy_emulator.other_org_id)
    assert other.list_invoices().json()["data"] == []
    assert other.get(f"/invoices/{created['id']}").status_code == 404
    assert other.put(f"/invoices/{created['id']}", json={"status": "paid"}).status_code == 404
    assert [u["id"] for u in other.get("/users").json()["data"]] == [seed.OTHER_CUSTOMER_ID]


def test_get_organization(api: Api) -> None:
    body = api.get("").json()
    assert body["data"]["id"] == seed.DEMO_ORG_ID
    assert body["data"]["name"] == seed.DEMO_ORG_NAME
    assert body["data"]["object"] == "organization"


def test_login_with_the_seeded_user_answers_the_demo_token(enlivy_emulator: EmulatorHandle) -> None:
    url = f"{enlivy_emulator.base_url}/authentication/login"
    body = {"email": seed.DEMO_LOGIN_EMAIL, "password": seed.DEMO_LOGIN_PASSWORD, "remember": True}
    response = requests.post(url, json=body, timeout=10)
    assert response.status_code == 200
    token = response.json()["token"]
    assert token == seed.DEMO_TOKEN
    assert Api(enlivy_emulator, token=token).list_invoices().status_code == 200


def test_login_failures_are_422(enlivy_emulator: EmulatorHandle) -> None:
    url = f"{enlivy_emulator.base_url}/authentication/login"
    wrong = requests.post(url, json={"email": seed.DEMO_LOGIN_EMAIL, "password": "nope"}, timeout=10)
    assert wrong.status_code == 422
    assert "email" in wrong.json()["errors"]
    missing = requests.post(url, json={}, timeout=10)
    assert set(missing.json()["errors"]) == {"email", "password"}


def test_seed_none_has_no_tokens(enlivy_emulator: EmulatorHandle, api: Api) -> None:
    enlivy_emulator.reset(seed="none")
    assert api.list_invoices().status_code == 401
