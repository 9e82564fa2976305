"""The token never shows: not in logs (any logger, DEBUG), stdout/stderr, exception texts or reprs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from enlivy_provider.client import AsyncEnlivyClient, EnlivyClient, EnlivyError
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
