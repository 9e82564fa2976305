"""EnlivyClient under errors and faults: typed errors, retries that are safe, and nothing duplicated."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from enlivy_provider.client import (
    EnlivyAuthenticationError,
    EnlivyClient,
    EnlivyConnectionError,
    EnlivyForbiddenError,
    EnlivyInvalidRequestError,
    EnlivyNotFoundError,
    EnlivyServerError,
    EnlivyValidationError,
)
from enlivy_provider.emulator.seed import DEMO_LOGIN_EMAIL, DEMO_LOGIN_PASSWORD, OTHER_CUSTOMER_ID

CREATE = ("POST", "/organizations/{org}/invoices")
GET_ONE = ("GET", "/organizations/{org}/invoices/{id}")
LOGIN = ("POST", "/authentication/login")


def _live_invoices(handle: Any) -> list[dict[str, Any]]:
    return list(handle.live_invoices())


def test_422_carries_field_errors_and_is_not_retried(
    api: EnlivyClient, payload: Callable[..., dict[str, Any]], enlivy_emulator: Any
) -> None:
    bad = payload()
    bad["line_items"][0]["quantity"] = 0
    with pytest.raises(EnlivyValidationError) as caught:
        api.create_invoice(bad)
    error = caught.value
    assert error.status == 422
    assert "line_items.0.quantity" in error.field_errors
    assert str(error).startswith(f"POST /organizations/{enlivy_emulator.org_id}/invoices → 422 ")
    assert "line_items.0.quantity: " in str(error)
    assert enlivy_emulator.request_count(*CREATE) == 1
    assert _live_invoices(enlivy_emulator) == []


def test_401_with_a_wrong_token(client_factory: Callable[..., EnlivyClient]) -> None:
    with pytest.raises(EnlivyAuthenticationError) as caught:
        client_factory(token="1|wrongtoken").get_organization()
    assert caught.value.status == 401


def test_403_for_another_organization(
    client_factory: Callable[..., EnlivyClient], enlivy_emulator: Any
) -> None:
    with pytest.raises(EnlivyForbiddenError) as caught:
        client_factory(organization_id=enlivy_emulator.other_org_id).get_customer(OTHER_CUSTOMER_ID)
    assert caught.value.status == 403


def test_404_for_a_missing_invoice(api: EnlivyClient, enlivy_emulator: Any) -> None:
    with pytest.raises(EnlivyNotFoundError) as caught:
        api.get_invoice("org_inv_doesnotexist")
    assert caught.value.path == f"/organizations/{enlivy_emulator.org_id}/invoices/org_inv_doesnotexist"
    assert enlivy_emulator.request_count(*GET_ONE) == 1  # 404 is final


def test_429_waits_for_retry_after_then_succeeds(
    api: EnlivyClient, payload: Callable[..., dict[str, Any]], enlivy_emulator: Any
) -> None:
    created = api.create_invoice(payload())
    enlivy_emulator.reset_counters()
    enlivy_emulator.add_fault("GET", "/organizations/*/invoices/*", "rate_limit", retry_after=1, times=1)
    started = time.monotonic()
    assert api.get_invoice(created["id"])["id"] == created["id"]
    assert time.monotonic() - started >= 1.0
    assert enlivy_emulator.request_count(*GET_ONE) == 2


def test_a_throttle_paces_every_attempt_and_hears_each_429(
    client_factory: Callable[..., EnlivyClient], enlivy_emulator: Any
) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.calls: list[object] = []

        def acquire(self) -> None:
            self.calls.append("acquire")

        def rate_limited(self, retry_after: float | None) -> None:
            self.calls.append(retry_after)

    enlivy_emulator.add_fault("GET", "/organizations/*/users", "rate_limit", retry_after=0, times=2)
    client = client_factory()  # short backoff already
    client.throttle = recorder = Recorder()
    assert len(list(client.list_customers(per_page=50))) > 0
    # Three attempts of one request, each paced; the two 429s are reported with their Retry-After.
    assert recorder.calls == ["acquire", 0.0, "acquire", 0.0, "acquire"]


def test_get_retried_through_two_500s(
    api: EnlivyClient, payload: Callable[..., dict[str, Any]], enlivy_emulator: Any
) -> None:
    created = api.create_invoice(payload())
    enlivy_emulator.reset_counters()
    enlivy_emulator.add_fault("GET", "/organizations/*/invoices/*", "error", status=500, times=2)
    assert api.get_invoice(created["id"])["id"] == created["id"]
    assert enlivy_emulator.request_count(*GET_ONE) == 3


def test_retries_give_up_after_max_retries(
    client_factory: Callable[..., EnlivyClient], enlivy_emulator: Any
) -> None:
    enlivy_emulator.add_fault("GET", "/organizations/*", "error", status=503, times=10)
    with pytest.raises(EnlivyServerError) as caught:
        client_factory(max_retries=2).get_organization()
    assert caught.value.status == 503
    assert enlivy_emulator.request_count("GET", "/organizations/{org}") == 3


def test_write_cut_after_commit_is_retried_with_the_same_key_and_happens_once(
    api: EnlivyClient, payload: Callable[..., dict[str, Any]], enlivy_emulator: Any
) -> None:
    enlivy_emulator.add_fault("POST", "/organizations/*/invoices", "drop_after_commit", times=1)
    invoice = api.create_invoice(payload(), idempotency_key="billing-2026-05-globex")
    assert enlivy_emulator.request_count(*CREATE) == 2  # the cut attempt + the retry
    assert [i["id"] for i in _live_invoices(enlivy_emulator)] == [invoice["id"]]
    keys = [k["key"] for k in enlivy_emulator.idempotency_keys()]
    assert keys.count("billing-2026-05-globex") == 1


def test_write_without_explicit_key_is_safe_under_a_cut_connection(
    api: EnlivyClient, payload: Callable[..., dict[str, Any]], enlivy_emulator: Any
) -> None:
    enlivy_emulator.add_fault("POST", "/organizations/*/invoices", "drop_after_commit", times=1)
    invoice = api.create_invoice(payload())
    assert [i["id"] for i in _live_invoices(enlivy_emulator)] == [invoice["id"]]


def test_write_without_explicit_key_is_retried_after_503_and_happens_once(
    api: EnlivyClient, payload: Callable[..., dict[str, Any]], enlivy_emulator: Any
) -> None:
    enlivy_emulator.add_fault("POST", "/organizations/*/invoices", "error", status=503, times=1)
    invoice = api.create_invoice(payload())
    assert enlivy_emulator.request_count(*CREATE) == 2
    assert [i["id"] for i in _live_invoices(enlivy_emulator)] == [invoice["id"]]
    # The client invented one key and sent it on both attempts.
    assert len({k["key"] for k in enlivy_emulator.idempotency_keys()}) == 1


def test_cut_before_commit_is_retried_and_creates_one_invoice(
    api: EnlivyClient, payload: Callable[..., dict[str, Any]], enlivy_emulator: Any
) -> None:
    enlivy_emulator.add_fault("POST", "/organizations/*/invoices", "drop_before_commit", times=2)
    invoice = api.create_invoice(payload())
    assert enlivy_emulator.request_count(*CREATE) == 3
    assert [i["id"] for i in _live_invoices(enlivy_emulator)] == [invoice["id"]]


def test_read_timeout_is_a_connection_error(
    client_factory: Callable[..., EnlivyClient], enlivy_emulator: Any
) -> None:
    enlivy_emulator.add_fault("GET", "/organizations/*", "delay", delay_ms=1500, times=5)
    started = time.monotonic()
    with pytest.raises(EnlivyConnectionError, match="Timeout"):
        client_factory(timeout=(1.0, 0.3), max_retries=1).get_organization()
    assert time.monotonic() - started < 1.4  # two attempts of 0.3 s, not the server's 1.5 s


def test_unreachable_server_is_a_connection_error() -> None:
    client = EnlivyClient(
        "http://127.0.0.1:9", "1|tok", organization_id="org_x", max_retries=1, backoff_base=0.01
    )
    with pytest.raises(EnlivyConnectionError) as caught:
        client.get_organization()
    assert caught.value.retryable
    assert "GET /organizations/org_x → connection error" in str(caught.value)


def test_insecure_base_url_is_refused_before_any_request() -> None:
    with pytest.raises(EnlivyInvalidRequestError, match="refusing plain http"):
        EnlivyClient("http://api.example.com", "1|tok")


def test_login_exchanges_credentials_once_per_client(
    client_factory: Callable[..., EnlivyClient], enlivy_emulator: Any
) -> None:
    client = client_factory(token=None, email=DEMO_LOGIN_EMAIL, password=DEMO_LOGIN_PASSWORD)
    assert client.get_organization()["id"] == enlivy_emulator.org_id
    assert client.list_invoices_page().status_code == 200
    assert enlivy_emulator.request_count(*LOGIN) == 1


def test_login_hands_the_token_to_on_token(
    client_factory: Callable[..., EnlivyClient], enlivy_emulator: Any
) -> None:
    seen: list[str] = []
    client = client_factory(
        token=None, email=DEMO_LOGIN_EMAIL, password=DEMO_LOGIN_PASSWORD, on_token=seen.append
    )
    client.get_organization()
    assert seen == [enlivy_emulator.token]


def test_login_with_a_wrong_password_fails_without_echoing_it(
    client_factory: Callable[..., EnlivyClient],
) -> None:
    client = client_factory(token=None, email=DEMO_LOGIN_EMAIL, password="wrong-password-123")
    with pytest.raises(EnlivyValidationError) as caught:
        client.get_organization()
    assert str(caught.value).startswith("POST /authentication/login → 422")
    assert "wrong-password-123" not in str(caught.value)
