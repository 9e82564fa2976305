"""Fault injection: scripted errors, 429s, delays, dropped connections; latency and the rate limit."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import requests
from emulator_test_api import Api, invoice_payload

from enlivy_provider.testing import EmulatorHandle

INVOICES = "/organizations/*/invoices"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_error_fault_answers_the_status_times_then_recovers(
    api: Api, enlivy_emulator: EmulatorHandle, status: int
) -> None:
    enlivy_emulator.add_fault("GET", INVOICES, "error", status=status, times=2)
    assert [api.list_invoices().status_code for _ in range(3)] == [status, status, 200]
    assert api.list_invoices().json()["meta"]["pagination"]["total"] == 0


def test_error_fault_writes_nothing(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    enlivy_emulator.add_fault("POST", INVOICES, "error", status=500)
    response = api.post("/invoices", json=invoice_payload())
    assert response.status_code == 500 and response.json()["message"]
    assert response.headers["X-Request-Id"].startswith("req_")
    assert enlivy_emulator.invoices() == []


def test_error_fault_can_echo_the_bearer_token(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    body = {"message": "Token {token} refused", "errors": {"token": ["{token_secret} is revoked"]}}
    enlivy_emulator.add_fault(
        "GET", INVOICES, "error", status=401, body=body, headers={"X-Echo": "Bearer {token}"}
    )
    response = api.list_invoices()
    token = enlivy_emulator.token
    assert response.status_code == 401
    assert response.json() == {
        "message": f"Token {token} refused",
        "errors": {"token": [f"{token.split('|', 1)[1]} is revoked"]},
    }
    assert response.headers["X-Echo"] == f"Bearer {token}"
    with pytest.raises(RuntimeError, match="The body must be a JSON object, for the error action"):
        enlivy_emulator.add_fault("GET", INVOICES, "delay", body={"message": "x"})


def test_rate_limit_fault_answers_429_with_retry_after(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    enlivy_emulator.add_fault("*", INVOICES, "rate_limit", retry_after=7)
    response = api.list_invoices()
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert api.list_invoices().status_code == 200


def test_delay_fault_delays_then_answers(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    enlivy_emulator.add_fault("GET", INVOICES, "delay", delay_ms=400)
    start = time.monotonic()
    assert api.list_invoices().status_code == 200
    assert time.monotonic() - start >= 0.4
    start = time.monotonic()
    api.list_invoices()
    assert time.monotonic() - start < 0.3


def test_glob_and_method_must_match(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    enlivy_emulator.add_fault("POST", INVOICES, "error", status=503)
    enlivy_emulator.add_fault("GET", "/organizations/*/users", "error", status=502)
    assert api.list_invoices().status_code == 200  # GET does not match the POST fault
    assert api.get("/products").status_code == 200
    assert api.get("/users").status_code == 502
    assert [f["times"] for f in enlivy_emulator_faults(enlivy_emulator)] == [1, 0]
    enlivy_emulator.clear_faults()
    assert enlivy_emulator_faults(enlivy_emulator) == []
    assert api.post("/invoices", json=invoice_payload()).status_code == 201


def test_query_glob_picks_one_request_among_many_on_the_same_path(
    api: Api, enlivy_emulator: EmulatorHandle
) -> None:
    """A fault for the list call of one batch of ids only: the glob is matched on the decoded query."""
    enlivy_emulator.add_fault("GET", INVOICES, "error", status=422, times=5, query="*org_inv_b*")
    assert api.list_invoices(ids="org_inv_a,org_inv_c").status_code == 200
    assert api.list_invoices(ids="org_inv_a,org_inv_b").status_code == 422
    assert api.list_invoices().status_code == 200  # no query at all: no match
    assert [f["times"] for f in enlivy_emulator_faults(enlivy_emulator)] == [4]
    bad = requests.post(
        f"{enlivy_emulator.base_url}/_emulator/faults",
        json={"path": INVOICES, "action": "error", "query": ""},
        timeout=10,
    )
    assert bad.status_code == 422 and "query" in bad.json()["errors"]


def enlivy_emulator_faults(handle: EmulatorHandle) -> list[dict[str, object]]:
    return list(requests.get(f"{handle.base_url}/_emulator/faults", timeout=10).json()["data"])


def test_drop_after_commit_with_requests(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    enlivy_emulator.add_fault("POST", INVOICES, "drop_after_commit")
    with pytest.raises(requests.exceptions.ConnectionError):
        api.post("/invoices", json=invoice_payload(), headers={"Idempotency-Key": "dropped"})
    assert len(enlivy_emulator.invoices()) == 1  # the write was committed
    retry = api.post("/invoices", json=invoice_payload(), headers={"Idempotency-Key": "dropped"})
    assert retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["id"] == enlivy_emulator.invoices()[0]["id"]
    assert len(enlivy_emulator.invoices()) == 1


def test_drop_after_commit_with_httpx(enlivy_emulator: EmulatorHandle) -> None:
    enlivy_emulator.add_fault("POST", INVOICES, "drop_after_commit")
    url = f"{enlivy_emulator.base_url}/organizations/{enlivy_emulator.org_id}/invoices"
    headers = {"Authorization": f"Bearer {enlivy_emulator.token}"}
    with httpx.Client() as client, pytest.raises(httpx.TransportError):
        client.post(url, json=invoice_payload(), headers=headers)
    assert len(enlivy_emulator.invoices()) == 1


def test_drop_after_commit_with_async_httpx(enlivy_emulator: EmulatorHandle) -> None:
    enlivy_emulator.add_fault("PUT", "/organizations/*/invoices/*", "drop_after_commit")
    created = Api(enlivy_emulator).create_invoice()
    url = f"{enlivy_emulator.base_url}/organizations/{enlivy_emulator.org_id}/invoices/{created['id']}"
    headers = {"Authorization": f"Bearer {enlivy_emulator.token}"}

    async def update() -> None:
        async with httpx.AsyncClient() as client:
            await client.put(url, json={"status": "paid"}, headers=headers)

    with pytest.raises(httpx.TransportError):
        asyncio.run(update())
    assert enlivy_emulator.invoices()[0]["status"] == "paid"


def test_drop_before_commit_writes_nothing(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    enlivy_emulator.add_fault("POST", INVOICES, "drop_before_commit")
    with pytest.raises(requests.exceptions.ConnectionError):
        api.post("/invoices", json=invoice_payload(), headers={"Idempotency-Key": "never"})
    assert enlivy_emulator.invoices() == []
    assert enlivy_emulator.idempotency_keys() == []
    assert api.post("/invoices", json=invoice_payload()).status_code == 201


def test_faulted_requests_are_counted(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    enlivy_emulator.add_fault("POST", INVOICES, "error", status=503)
    api.post("/invoices", json=invoice_payload())
    api.post("/invoices", json=invoice_payload())
    assert enlivy_emulator.request_count("POST", "/organizations/{org}/invoices") == 2
    assert enlivy_emulator.write_count() == 2


def test_bad_fault_specs_are_422(enlivy_emulator: EmulatorHandle) -> None:
    url = f"{enlivy_emulator.base_url}/_emulator/faults"
    for spec in (
        {"path": INVOICES, "action": "explode"},
        {"path": "no-slash", "action": "error"},
        {"path": INVOICES, "action": "error", "status": 200},
        {"path": INVOICES, "action": "error", "times": 0},
    ):
        assert requests.post(url, json=spec, timeout=10).status_code == 422, spec


def test_latency_applies_to_every_request_and_overlaps(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    enlivy_emulator.configure(latency_ms=300)
    start = time.monotonic()
    assert api.list_invoices().status_code == 200
    assert time.monotonic() - start >= 0.3
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda _: Api(enlivy_emulator).list_invoices().status_code, range(16)))
    assert statuses == [200] * 16
    assert time.monotonic() - start < 1.5  # 16 × 300 ms would be 4.8 s if latency blocked
    health_start = time.monotonic()
    enlivy_emulator.health()
    assert time.monotonic() - health_start < 0.2  # admin endpoints are not delayed


def test_rate_limit_answers_429_with_retry_after(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    enlivy_emulator.configure(rate_limit=3)
    statuses = [api.list_invoices() for _ in range(8)]
    limited = [r for r in statuses if r.status_code == 429]
    assert 1 <= len(limited) <= 5
    assert all(int(r.headers["Retry-After"]) >= 1 for r in limited)
    assert limited[0].json() == {"message": "Too Many Attempts."}
    time.sleep(1.0)
    assert api.list_invoices().status_code == 200
    assert enlivy_emulator.request_count("GET", "/organizations/{org}/invoices") == 9
