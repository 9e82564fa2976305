"""Idempotency-Key: replay of the first answer, conflicting reuse, concurrent requests with one key."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from emulator_test_api import Api, invoice_payload

from enlivy_provider.testing import EmulatorHandle


def test_same_key_same_body_replays_status_and_body(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    headers = {"Idempotency-Key": "create-1"}
    first = api.post("/invoices", json=invoice_payload(), headers=headers)
    second = api.post("/invoices", json=invoice_payload(), headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.headers["Idempotent-Replayed"] == "false"  # a first answer says so, too
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
    assert retried.headers["Idempotent-Replayed"] == "false"


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


def _wait_until_finished(enlivy_emulator: EmulatorHandle, method: str, path: str) -> None:
    """Until the emulator has counted a request to ``method path`` and none is running any more."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        counters = enlivy_emulator.counters()
        counted = sum(n for route, n in counters["routes"].items() if route.startswith(f"{method} "))
        if counted and f"{method} {path}" not in counters["in_flight"]:
            return
        time.sleep(0.01)
    raise AssertionError(f"the emulator did not finish {method} {path}: {enlivy_emulator.counters()}")


def _send_cut_off(
    enlivy_emulator: EmulatorHandle, method: str, path: str, key: str, body: bytes, sent: float
) -> None:
    """A keyed request that announces ``body`` but sends only its first ``sent`` part, then disconnects."""
    host, port = enlivy_emulator.base_url.removeprefix("http://").split(":")
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {enlivy_emulator.token}\r\n"
        f"Idempotency-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head + body[: int(len(body) * sent)])
    _wait_until_finished(enlivy_emulator, method, path)


@pytest.mark.parametrize("sent_fraction", [0.0, 0.5])
def test_client_gone_before_its_body_arrived_does_not_poison_the_key(
    api: Api, enlivy_emulator: EmulatorHandle, sent_fraction: float
) -> None:
    """A keyed write whose client disconnects before its whole body arrived runs nothing and stores nothing
    under the key, so the real retry with the full body does the write. Before: the handler ran on the
    fragment (an empty update, or a 400 for half a JSON document), its answer was stored under the key and
    the retry got 409 with the change never made. The request goes to the test's own invoice, so no request
    of another test shares its path."""
    invoice = api.create_invoice(status="draft")
    path = f"/organizations/{enlivy_emulator.org_id}/invoices/{invoice['id']}"
    change = {"status": "pending", "note_lang_map": {"en": "sent in full"}}
    enlivy_emulator.reset_counters()
    _send_cut_off(enlivy_emulator, "PUT", path, "gone", json.dumps(change).encode(), sent_fraction)
    assert enlivy_emulator.idempotency_keys() == []
    assert api.get(f"/invoices/{invoice['id']}").json()["data"]["status"] == "draft"

    retried = api.put(f"/invoices/{invoice['id']}", json=change, headers={"Idempotency-Key": "gone"})
    assert retried.status_code == 200, retried.text
    assert retried.json()["data"]["note_lang_map"] == {"en": "sent in full"}
    assert [k["status_code"] for k in enlivy_emulator.idempotency_keys()] == [200]


def test_replay_header_can_be_switched_off(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    # Enlivy documents no replay header: a client must cope with a server that does not say.
    enlivy_emulator.configure(replay_header=False)
    headers = {"Idempotency-Key": "quiet"}
    first = api.post("/invoices", json=invoice_payload(), headers=headers)
    second = api.post("/invoices", json=invoice_payload(), headers=headers)
    assert second.content == first.content
    assert "Idempotent-Replayed" not in first.headers and "Idempotent-Replayed" not in second.headers
    assert len(enlivy_emulator.invoices()) == 1
