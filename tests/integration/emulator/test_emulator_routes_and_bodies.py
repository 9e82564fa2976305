"""Routes the emulator does not have answer a plain route-not-found 404 (never "No query results for
invoice."), and the SDK's ``[]`` body of a write without parameters counts as empty input."""

from __future__ import annotations

import pytest
from emulator_test_api import Api

from enlivy_provider.testing import EmulatorHandle


@pytest.mark.parametrize(
    ("method", "path"),
    [
        # Fixed segments of the SDK's sub-resources, with a method no route serves for them: the {id} route
        # of that method must not take them for an id.
        ("DELETE", "/invoices/notification-logs"),
        ("PUT", "/invoices/network-exchanges"),
        ("PUT", "/invoices/event-trails"),
        ("DELETE", "/invoices/charge-logs"),
        ("GET", "/users/event-trails"),
        ("GET", "/users/imports"),
        ("GET", "/products/imports"),
        ("GET", "/bank-accounts/balance"),
        # Paths no route has at all.
        ("GET", "/invoices/org_inv_x/no-such-action"),
        ("POST", "/invoices/org_inv_x/peppol/anaf"),
        ("GET", "/no-such-resource"),
    ],
)
def test_unknown_route_is_route_not_found(api: Api, method: str, path: str) -> None:
    response = api.request(method, path)
    assert response.status_code == 404, response.text
    message = response.json()["message"]
    assert message == f"The route organizations/{api.org_id}{path} could not be found."
    assert "No query results" not in message


def test_a_missing_invoice_still_reads_as_a_missing_invoice(api: Api) -> None:
    response = api.get("/invoices/org_inv_2qD7mZ0missing0000000000001")
    assert response.status_code == 404
    assert response.json() == {"message": "No query results for invoice."}


def test_empty_array_body_is_empty_input(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    """CurlClient.php JSON-encodes the params of every POST/PUT/PATCH, so no params travel as ``[]``."""
    headers = {"Content-Type": "application/json"}
    invoice = api.create_invoice()
    sent = api.post(f"/invoices/{invoice['id']}/email", data=b"[]", headers=headers)
    assert sent.status_code == 200, sent.text
    assert sent.json()["data"]["to"] == ["billing@globex.example"]
    deleted = api.delete(f"/invoices/{invoice['id']}")
    assert deleted.status_code == 200
    restored = api.post(f"/invoices/restore/{invoice['id']}", data=b"[]", headers=headers)
    assert restored.status_code == 200, restored.text
    updated = api.put(f"/invoices/{invoice['id']}", data=b"[]", headers=headers)
    assert updated.status_code == 200, updated.text
    refused = api.post("/invoices", data=b"[]", headers=headers)
    assert refused.status_code == 422  # empty input: the required fields are missing, not a 400
    assert "status" in refused.json()["errors"]
    assert api.post("/invoices", data=b"[1]", headers=headers).status_code == 400


def test_empty_array_and_empty_body_are_the_same_request_for_idempotency(api: Api) -> None:
    invoice = api.create_invoice()
    headers = {"Content-Type": "application/json", "Idempotency-Key": "restore-1"}
    first = api.post(f"/invoices/restore/{invoice['id']}", headers=headers)
    again = api.post(f"/invoices/restore/{invoice['id']}", data=b"[]", headers=headers)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.headers.get("Idempotent-Replayed") == "true"
