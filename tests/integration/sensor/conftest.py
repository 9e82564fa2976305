"""Fixtures for the sensor/trigger tests: invoices created in the emulator over HTTP, paid on cue."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

import pytest

from enlivy_provider.client import EnlivyClient
from enlivy_provider.testing import invoice_payload as demo_invoice_payload


def invoice_payload(n: int, status: str = "pending", customer_id: str | None = None) -> dict[str, Any]:
    """A valid create-invoice body: one line, 10.00 EUR, 0 % tax; a demo customer unless ``customer_id``."""
    line = {"name_lang_map": {"en": f"Sensor test item {n}"}, "quantity": 1, "price": "10.00"}
    return demo_invoice_payload(n, line_items=[line], customer_id=customer_id, status=status)


@pytest.fixture
def new_invoice_payload() -> Callable[..., dict[str, Any]]:
    """The ``invoice_payload`` function, for tests that create invoices themselves."""
    return invoice_payload


@pytest.fixture
def client(enlivy_emulator: Any) -> Iterator[EnlivyClient]:
    with EnlivyClient(
        enlivy_emulator.base_url,
        enlivy_emulator.token,
        organization_id=enlivy_emulator.org_id,
        pool_maxsize=32,
    ) as api:
        yield api


@pytest.fixture
def make_invoices(client: EnlivyClient) -> Callable[..., list[str]]:
    """make_invoices(n, status="pending") -> ids, created through the API with 16 threads."""

    def make(n: int, status: str = "pending") -> list[str]:
        with ThreadPoolExecutor(max_workers=16) as pool:
            return list(pool.map(lambda i: client.create_invoice(invoice_payload(i, status))["id"], range(n)))

    return make


@pytest.fixture
def mark_invoices(enlivy_emulator: Any) -> Callable[..., None]:
    """mark_invoices(ids, status="paid"): the customer pays (admin endpoint), 16 invoices at a time."""

    def mark(ids: list[str], status: str = "paid") -> None:
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(lambda invoice_id: enlivy_emulator.set_invoice_status(invoice_id, status), ids))

    return mark


@pytest.fixture
def pay_later(mark_invoices: Callable[..., None]) -> Iterator[Callable[..., None]]:
    """pay_later(ids, after=0.5, status="paid"): mark_invoices from a background thread after a delay."""
    timers: list[threading.Timer] = []

    def schedule(ids: list[str], after: float = 0.5, status: str = "paid") -> None:
        timer = threading.Timer(after, mark_invoices, args=(ids, status))
        timer.daemon = True
        timer.start()
        timers.append(timer)

    yield schedule
    for timer in timers:
        timer.cancel()
        timer.join(timeout=10)


@pytest.fixture
def invoice_list_calls(enlivy_emulator: Any) -> Callable[[], int]:
    """invoice_list_calls() -> invoice list requests that reached the emulator since its counters were reset."""
    return lambda: int(enlivy_emulator.request_count("GET", "/organizations/{org}/invoices"))


@pytest.fixture
def list_call_ids(enlivy_emulator: Any) -> Callable[[], list[list[str]]]:
    """list_call_ids() -> the ``ids`` filter of every invoice list call since the counters were reset, in order
    (from the emulator's request log: what each call really asked for)."""

    def ids_per_call() -> list[list[str]]:
        calls = enlivy_emulator.request_log("GET", "/organizations/{org}/invoices")
        return [dict(parse_qsl(call["query"])).get("ids", "").split(",") for call in calls]

    return ids_per_call


@pytest.fixture
def bad_token() -> str:
    return "9|thisTokenIsWrongAndMustNotLeak0000000000"


@pytest.fixture
def no_retry_conn_id(enlivy_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A connection whose client does not retry by itself: every 503 reaches the sensor/trigger."""
    monkeypatch.setenv("AIRFLOW_CONN_ENLIVY_NO_RETRY", enlivy_emulator.connection_json(max_retries=0))
    return "enlivy_no_retry"


@pytest.fixture
def bad_token_conn_id(enlivy_emulator: Any, monkeypatch: pytest.MonkeyPatch, bad_token: str) -> str:
    """A connection to the emulator with a wrong token (``bad_token``): every request answers 401."""
    conn_json = enlivy_emulator.connection_json().replace(enlivy_emulator.token, bad_token)
    monkeypatch.setenv("AIRFLOW_CONN_ENLIVY_BAD", conn_json)
    return "enlivy_bad"
