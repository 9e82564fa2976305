"""Idempotency-Key: replay of the first answer, conflicting reuse, concurrent requests with one key."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from emulator_test_api import Api, invoice_payload

from enlivy_provider.testing import EmulatorHandle


def test_same_key_same_body_replays_status_and_body(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    headers = {"Idempotency-Key": "create-1"}
    first = api.post("/invoices", json=invoice_payload(), headers=headers)
    second = api.post("/invoices", json=invoice_payload(), headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(enlivy_emulator.invoices()) == 1
    assert enlivy_emulator.idempotency_keys() == [
        {
            "method": "POST",
            "path": f"/organizations/{enlivy_emulator.org_id}/invoices",
            "key": "create-1",
            "status_code": 201,
        }
    ]


def test_body_comparison_ignores_key_order_and_whitespace(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    headers = {"Idempotency-Key": "k", "Content-Type": "application/json"}
    api.post("/invoices", data=b'{"status": "pending", "currency": "EUR", "x": 1.50}', headers=headers)
    again = api.post("/invoices", data=b'{"x":1.50,"currency":"EUR","status":"pending"}', headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true"


def test_same_key_different_body_is_409(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    headers = {"Idempotency-Key": "create-2"}
    assert api.post("/invoices", json=invoice_payload(0), headers=headers).status_code == 201
    conflict = api.post("/invoices", json=invoice_payload(1), headers=headers)
    assert conflict.status_code == 409
    assert "create-2" in conflict.json()["message"]
    assert len(enlivy_emulator.invoices()) == 1


def test_keys_are_scoped_by_method_and_path(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    created = api.post("/invoices", json=invoice_payload(), headers={"Idempotency-Key": "same"}).json()
    updated = api.put(
        f"/invoices/{created['id']}", json={"status": "paid"}, headers={"Idempotency-Key": "same"}
    )
    assert updated.status_code == 200
    assert updated.json()["data"]["status"] == "paid"
    replayed_put = api.put(
        f"/invoices/{created['id']}", json={"status": "paid"}, headers={"Idempotency-Key": "same"}
    )
    assert replayed_put.json()["data"]["updated_at"] == updated.json()["data"]["updated_at"]
    deleted = api.delete(f"/invoices/{created['id']}", headers={"Idempotency-Key": "del"})
    again = api.delete(f"/invoices/{created['id']}", headers={"Idempotency-Key": "del"})
    assert deleted.status_code == again.status_code == 200


def test_validation_errors_are_replayed_too(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    bad = invoice_payload(status="bogus")
    first = api.post("/invoices", json=bad, headers={"Idempotency-Key": "bad"})
    second = api.post("/invoices", json=bad, headers={"Idempotency-Key": "bad"})
    assert first.status_code == second.status_code == 422
    assert second.headers.get("Idempotent-Replayed") == "true"


def test_server_errors_are_not_stored(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    enlivy_emulator.add_fault("POST", "/organizations/*/invoices", "error", status=503)
    assert (
        api.post("/invoices", json=invoice_payload(), headers={"Idempotency-Key": "retry"}).status_code == 503
    )
    retried = api.post("/invoices", json=invoice_payload(), headers={"Idempotency-Key": "retry"})
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers


def test_20_concurrent_requests_with_one_key_make_one_invoice(enlivy_emulator: EmulatorHandle) -> None:
    enlivy_emulator.configure(latency_ms=30)
    url = f"{enlivy_emulator.base_url}/organizations/{enlivy_emulator.org_id}/invoices"
    headers = {"Authorization": f"Bearer {enlivy_emulator.token}", "Idempotency-Key": "concurrent"}

    def create(_: int) -> tuple[int, str]:
        response = httpx.post(url, json=invoice_payload(), headers=headers, timeout=30)
        return response.status_code, response.json()["id"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(create, range(20)))
    assert {status for status, _ in results} == {201}
    assert len({invoice_id for _, invoice_id in results}) == 1
    assert len(enlivy_emulator.invoices()) == 1
    assert enlivy_emulator.invoices()[0]["number"] == "1"
