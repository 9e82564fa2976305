"""The token never shows: not in logs (any logger, DEBUG), stdout/stderr, exception texts or reprs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from secret_support import ECHO_BODY, ECHO_HEADERS, reachable_text, secret_of

from enlivy_provider.client import (
    AsyncEnlivyClient,
    EnlivyAPIError,
    EnlivyClient,
    EnlivyConnectionError,
    EnlivyError,
)
from enlivy_provider.emulator.seed import DEMO_LOGIN_EMAIL, DEMO_LOGIN_PASSWORD


def _failing_calls(api: EnlivyClient, payload: dict[str, Any], handle: Any) -> list[BaseException]:
    """Run a series of calls that fail in different ways; return what they raised."""
    bad = dict(payload, line_items=[dict(payload["line_items"][0], quantity=0)])
    handle.add_fault("GET", "/organizations/*", "error", status=503, times=10)
    calls: list[Callable[[], object]] = [
        lambda: api.create_invoice(bad),  # 422
        lambda: api.get_organization(),  # 503 after retries (warnings logged)
        lambda: api.list_invoices(stauts="x"),  # local error
    ]
    raised: list[BaseException] = []
    for call in calls:
        with pytest.raises(EnlivyError) as caught:
            call()
        raised.append(caught.value)
    handle.clear_faults()
    handle.add_fault("POST", "/organizations/*/invoices", "drop_after_commit", times=1)
    api.create_invoice(payload)  # a retried cut connection
    return raised


def _everything_visible(raised: list[BaseException], *objects: object) -> str:
    parts = []
    for error in raised:
        parts += [
            str(error),
            repr(error),
            repr(getattr(error, "body", None)),
            repr(getattr(error, "headers", None)),
        ]
        parts += [repr(error.__cause__), str(error.__cause__)]
    parts += [repr(obj) for obj in objects]
    return "\n".join(parts)


def test_token_is_absent_from_logs_output_errors_and_reprs(
    client_factory: Callable[..., EnlivyClient],
    payload: Callable[..., dict[str, Any]],
    enlivy_emulator: Any,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = enlivy_emulator.token
    caplog.set_level(logging.DEBUG)  # urllib3 and our client at their chattiest
    api = client_factory(max_retries=1)
    raised = _failing_calls(api, payload(), enlivy_emulator)
    out, err = capsys.readouterr()

    assert len(raised) == 3
    assert "retry 1/1" in caplog.text  # the retries were logged ...
    assert token not in caplog.text  # ... without the token
    assert token not in out + err
    assert token not in _everything_visible(raised, api, api._settings)
    assert "Bearer" not in caplog.text


def test_login_token_and_password_are_absent_too(
    client_factory: Callable[..., EnlivyClient],
    payload: Callable[..., dict[str, Any]],
    enlivy_emulator: Any,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    api = client_factory(token=None, email=DEMO_LOGIN_EMAIL, password=DEMO_LOGIN_PASSWORD, max_retries=1)
    raised = _failing_calls(api, payload(), enlivy_emulator)
    out, err = capsys.readouterr()
    visible = caplog.text + out + err + _everything_visible(raised, api, api._settings)
    assert enlivy_emulator.token not in visible
    assert DEMO_LOGIN_PASSWORD not in visible


def test_async_client_keeps_the_token_out_too(
    payload: Callable[..., dict[str, Any]], enlivy_emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = enlivy_emulator.token

    async def scenario() -> list[BaseException]:
        async with AsyncEnlivyClient(
            enlivy_emulator.base_url,
            token,
            organization_id=enlivy_emulator.org_id,
            max_retries=1,
            backoff_base=0.01,
        ) as api:
            assert token not in repr(api)
            raised: list[BaseException] = []
            enlivy_emulator.add_fault("GET", "/organizations/*", "error", status=503, times=10)
            for call in (api.get_organization(), api.create_invoice({"currency": "EUR"})):
                try:
                    await call
                except EnlivyError as exc:
                    raised.append(exc)
            return raised

    raised = asyncio.run(scenario())
    assert len(raised) == 2
    assert token not in caplog.text
    assert token not in _everything_visible(raised)


# --- A server that echoes the token (whole, or only its secret part after "N|") in an error answer ----------


@pytest.mark.parametrize("status", [401, 422])
def test_an_echoed_token_is_redacted_from_the_whole_exception(
    client_factory: Callable[..., EnlivyClient],
    enlivy_emulator: Any,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    caplog.set_level(logging.DEBUG)
    token = enlivy_emulator.token
    enlivy_emulator.add_fault(
        "GET", "/organizations/*", "error", status=status, body=ECHO_BODY, headers=ECHO_HEADERS
    )
    with pytest.raises(EnlivyAPIError) as caught:
        client_factory().get_organization()
    error = caught.value

    assert error.status == status
    assert "Token *** is not allowed here (secret ***)" in str(error)  # the echo arrived, masked
    assert error.field_errors == {"authorization": ["Bearer *** was revoked", "*** expired"]}
    assert error.headers["x-debug-authorization"] == "Bearer ***"
    visible = reachable_text(error) + caplog.text
    assert token not in visible and secret_of(token) not in visible


def test_a_connection_error_keeps_no_request_headers(
    client_factory: Callable[..., EnlivyClient], enlivy_emulator: Any
) -> None:
    """A transport exception keeps the request it failed on, Authorization header included."""
    token = enlivy_emulator.token
    enlivy_emulator.add_fault("GET", "/organizations/*", "drop_before_commit", times=5)
    with pytest.raises(EnlivyConnectionError) as caught:
        client_factory(max_retries=1).get_organization()
    visible = reachable_text(caught.value)
    assert "connection error" in visible
    assert token not in visible and secret_of(token) not in visible


def test_the_async_client_redacts_an_echoed_token_too(enlivy_emulator: Any) -> None:
    token = enlivy_emulator.token

    async def scenario() -> list[BaseException]:
        raised: list[BaseException] = []
        async with AsyncEnlivyClient(
            enlivy_emulator.base_url, token, organization_id=enlivy_emulator.org_id, max_retries=0
        ) as api:
            enlivy_emulator.add_fault(
                "GET", "/organizations/*", "error", status=401, body=ECHO_BODY, headers=ECHO_HEADERS
            )
            enlivy_emulator.add_fault("GET", "/organizations/*", "drop_before_commit")
            for _ in range(2):
                try:
                    await api.get_organization()
                except EnlivyError as exc:
                    raised.append(exc)
        return raised

    raised = asyncio.run(scenario())
    assert [type(e).__name__ for e in raised] == ["EnlivyAuthenticationError", "EnlivyConnectionError"]
    visible = "\n".join(reachable_text(error) for error in raised)
    assert "***" in visible
    assert token not in visible and secret_of(token) not in visible


def test_login_credentials_echoed_in_an_error_are_redacted(
    client_factory: Callable[..., EnlivyClient], enlivy_emulator: Any
) -> None:
    """With auth by login, the password (and the token the login returned) are masked the same way."""
    enlivy_emulator.add_fault(
        "GET", "/organizations/*", "error", status=422, body=ECHO_BODY, headers=ECHO_HEADERS
    )
    api = client_factory(token=None, email=DEMO_LOGIN_EMAIL, password=DEMO_LOGIN_PASSWORD)
    with pytest.raises(EnlivyAPIError) as caught:
        api.get_organization()
    visible = reachable_text(caught.value)
    assert enlivy_emulator.token not in visible and secret_of(enlivy_emulator.token) not in visible
