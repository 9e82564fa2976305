"""AsyncEnlivyClient against the emulator: the same rules as the blocking client, over httpx."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from enlivy_provider.client import (
    AsyncEnlivyClient,
    EnlivyAuthenticationError,
    EnlivyInvalidRequestError,
    EnlivyNotFoundError,
    EnlivyValidationError,
)
from enlivy_provider.emulator.seed import DEMO_CUSTOMERS, DEMO_LOGIN_EMAIL, DEMO_LOGIN_PASSWORD, DEMO_ORG_NAME

T = TypeVar("T")
CREATE = ("POST", "/organizations/{org}/invoices")
GET_ONE = ("GET", "/organizations/{org}/invoices/{id}")


@pytest.fixture
def run_with(enlivy_emulator: Any) -> Callable[..., Any]:
    """run_with(scenario, **client_overrides): run ``await scenario(client)`` with a fresh async client."""

    def run(scenario: Callable[[AsyncEnlivyClient], Awaitable[T]], **overrides: Any) -> T:
        options: dict[str, Any] = {
            "base_url": enlivy_emulator.base_url,
            "token": enlivy_emulator.token,
            "organization_id": enlivy_emulator.org_id,
            "backoff_base": 0.01,
            "backoff_cap": 0.05,
            **overrides,
        }

        async def main() -> T:
            async with AsyncEnlivyClient(**options) as client:
                return await scenario(client)

        return asyncio.run(main())

    return run


def test_async_get_organization(run_with: Callable[..., Any]) -> None:
    organization = run_with(lambda c: c.get_organization())
    assert organization["name"] == DEMO_ORG_NAME


def test_async_create_get_update(
    run_with: Callable[..., Any], payload: Callable[..., dict[str, Any]]
) -> None:
    async def scenario(client: AsyncEnlivyClient) -> tuple[dict[str, Any], ...]:
        created = await client.create_invoice(payload(), include=["line_items"])
        fetched = await client.get_invoice(created["id"], include=["line_items"])
        updated = await client.update_invoice(created["id"], {"note_lang_map": {"en": "async"}})
        return created, fetched, updated

    created, fetched, updated = run_with(scenario)
    assert created["total"] == Decimal("226.10")
    assert fetched["line_items"][0]["price"] == Decimal("95.00")
    assert updated["note_lang_map"] == {"en": "async"}


def test_async_iter_invoices_follows_every_page(
    run_with: Callable[..., Any], payload: Callable[..., dict[str, Any]], enlivy_emulator: Any
) -> None:
    async def scenario(client: AsyncEnlivyClient) -> tuple[set[str], list[str], Any]:
        created = {(await client.create_invoice(payload(n)))["id"] for n in range(5)}
        enlivy_emulator.reset_counters()
        listed = [invoice["id"] async for invoice in client.iter_invoices(per_page=2)]
        page = await client.list_invoices_page(page=3, per_page=2)
        return created, listed, page

    created, listed, page = run_with(scenario)
    assert sorted(listed) == sorted(created)
    assert enlivy_emulator.request_count("GET", "/organizations/{org}/invoices") == 3 + 1
    assert len(page.items) == 1 and page.meta["pagination"]["total_pages"] == 3


def test_async_unknown_filter_is_local(run_with: Callable[..., Any]) -> None:
    async def scenario(client: AsyncEnlivyClient) -> None:
        client.iter_invoices(stauts="paid")

    with pytest.raises(EnlivyInvalidRequestError):
        run_with(scenario)


def test_async_errors_are_typed(run_with: Callable[..., Any], payload: Callable[..., dict[str, Any]]) -> None:
    with pytest.raises(EnlivyNotFoundError):
        run_with(lambda c: c.get_invoice("org_inv_missing"))
    with pytest.raises(EnlivyAuthenticationError):
        run_with(lambda c: c.get_organization(), token="1|nope")
    bad = payload()
    bad["line_items"][0]["quantity"] = 0
    with pytest.raises(EnlivyValidationError) as caught:
        run_with(lambda c: c.create_invoice(bad))
    assert "line_items.0.quantity" in caught.value.field_errors


def test_async_no_retry_on_422(
    run_with: Callable[..., Any], payload: Callable[..., dict[str, Any]], enlivy_emulator: Any
) -> None:
    with pytest.raises(EnlivyValidationError):
        run_with(lambda c: c.create_invoice(payload(currency="")))
    assert enlivy_emulator.request_count(*CREATE) == 1


def test_async_429_retry_after_then_success(run_with: Callable[..., Any], enlivy_emulator: Any) -> None:
    enlivy_emulator.add_fault("GET", "/organizations/*", "rate_limit", retry_after=1, times=1)
    started = time.monotonic()
    assert run_with(lambda c: c.get_organization())["id"] == enlivy_emulator.org_id
    assert time.monotonic() - started >= 1.0
    assert enlivy_emulator.request_count("GET", "/organizations/{org}") == 2


def test_async_get_retried_through_two_500s(run_with: Callable[..., Any], enlivy_emulator: Any) -> None:
    enlivy_emulator.add_fault("GET", "/organizations/*", "error", status=500, times=2)
    assert run_with(lambda c: c.get_organization())["id"] == enlivy_emulator.org_id
    assert enlivy_emulator.request_count("GET", "/organizations/{org}") == 3


def test_async_write_cut_after_commit_happens_once(
    run_with: Callable[..., Any], payload: Callable[..., dict[str, Any]], enlivy_emulator: Any
) -> None:
    enlivy_emulator.add_fault("POST", "/organizations/*/invoices", "drop_after_commit", times=1)
    invoice = run_with(lambda c: c.create_invoice(payload(), idempotency_key="async-key-1"))
    assert enlivy_emulator.request_count(*CREATE) == 2
    assert [i["id"] for i in enlivy_emulator.invoices(enlivy_emulator.org_id)] == [invoice["id"]]


def test_async_write_without_key_safe_under_503(
    run_with: Callable[..., Any], payload: Callable[..., dict[str, Any]], enlivy_emulator: Any
) -> None:
    enlivy_emulator.add_fault("POST", "/organizations/*/invoices", "error", status=503, times=1)
    invoice = run_with(lambda c: c.create_invoice(payload()))
    assert enlivy_emulator.request_count(*CREATE) == 2
    assert [i["id"] for i in enlivy_emulator.invoices(enlivy_emulator.org_id)] == [invoice["id"]]


def test_async_login_once_and_awaitable_on_token(run_with: Callable[..., Any], enlivy_emulator: Any) -> None:
    seen: list[str] = []

    async def remember(token: str) -> None:
        seen.append(token)

    async def scenario(client: AsyncEnlivyClient) -> None:
        await asyncio.gather(
            client.get_organization(), client.get_organization(), client.list_invoices_page()
        )

    run_with(scenario, token=None, email=DEMO_LOGIN_EMAIL, password=DEMO_LOGIN_PASSWORD, on_token=remember)
    assert seen == [enlivy_emulator.token]
    assert enlivy_emulator.request_count("POST", "/authentication/login") == 1


def test_async_get_customer_and_generic_request(run_with: Callable[..., Any], enlivy_emulator: Any) -> None:
    customer_id = DEMO_CUSTOMERS[0].id

    async def scenario(client: AsyncEnlivyClient) -> tuple[dict[str, Any], Any]:
        customer = await client.get_customer(customer_id)
        response = await client.request(
            "GET", f"/organizations/{enlivy_emulator.org_id}/users", params={"per_page": 2}
        )
        return customer, response

    customer, response = run_with(scenario)
    assert customer["email"] == DEMO_CUSTOMERS[0].email
    assert response.status_code == 200
    assert len(response.data) == 2
    assert response.json()["meta"]["pagination"]["per_page"] == 2
