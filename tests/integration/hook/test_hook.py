"""EnlivyHook with a real Airflow connection (AIRFLOW_CONN_ENLIVY_DEFAULT) against the emulator."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from typing import Any

import pytest

from enlivy_provider.client import (
    AsyncEnlivyClient,
    EnlivyClient,
    EnlivyInvalidRequestError,
    EnlivyServerError,
)
from enlivy_provider.emulator.seed import DEMO_CUSTOMERS, DEMO_LOGIN_EMAIL, DEMO_LOGIN_PASSWORD, DEMO_ORG_NAME
from enlivy_provider.hooks.enlivy import EnlivyHook
from enlivy_provider.testing import invoice_payload

FAST = {"backoff_base": 0.01, "backoff_cap": 0.05}


def _set_connection(
    monkeypatch: pytest.MonkeyPatch, handle: Any, conn_id: str = "enlivy_default", **changes: Any
) -> None:
    """Point ``conn_id`` at the emulator; ``changes`` override top-level fields, ``extra`` is merged."""
    conn = json.loads(handle.connection_json())
    conn["extra"].update(changes.pop("extra", {}))
    conn.update(changes)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def _payload() -> dict[str, Any]:
    return invoice_payload(
        line_items=[{"name_lang_map": {"en": "Hook item"}, "quantity": 1, "price": "10.00"}]
    )


@pytest.fixture
def fresh_masker() -> Any:
    """Airflow's secrets masker with no patterns, so a test sees what *it* registered."""
    from airflow_support import fresh_secrets_masker

    return fresh_secrets_masker()


def test_hook_identity() -> None:
    assert (EnlivyHook.conn_type, EnlivyHook.default_conn_name, EnlivyHook.hook_name) == (
        "enlivy",
        "enlivy_default",
        "Enlivy",
    )
    assert EnlivyHook.conn_name_attr == "enlivy_conn_id"


def test_get_client_is_built_from_the_connection_and_cached(enlivy_airflow_connection: Any) -> None:
    hook = EnlivyHook()
    client = hook.get_client()
    assert isinstance(client, EnlivyClient)
    assert hook.get_client() is client
    assert hook.get_conn() is client
    assert client.base_url == enlivy_airflow_connection.base_url
    assert hook.organization_id == enlivy_airflow_connection.org_id
    assert client.get_organization()["name"] == DEMO_ORG_NAME


def test_hook_passes_operations_through_to_the_client(enlivy_airflow_connection: Any) -> None:
    hook = EnlivyHook(client_options=FAST)
    created = hook.create_invoice(_payload(), idempotency_key="hook-1")
    assert hook.get_invoice(created["id"])["id"] == created["id"]
    assert [invoice["id"] for invoice in hook.list_invoices()] == [created["id"]]
    assert hook.list_invoices_page(per_page=1).meta["pagination"]["total"] == 1
    assert hook.find_customer_by_email(DEMO_CUSTOMERS[0].email)["id"] == DEMO_CUSTOMERS[0].id
    # The pass-through keeps the client's signature (IDEs, docs, mypy see the real arguments).
    assert inspect.signature(EnlivyHook.create_invoice) == inspect.signature(EnlivyClient.create_invoice)


def test_test_connection_succeeds_with_the_organization_name(enlivy_airflow_connection: Any) -> None:
    assert EnlivyHook().test_connection() == (True, f"Connected to organization {DEMO_ORG_NAME}")


def test_test_connection_reports_a_bad_token_without_it(
    enlivy_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad_token = "1|thisTokenIsWrongAndSecret"
    _set_connection(monkeypatch, enlivy_emulator, password=bad_token)
    ok, message = EnlivyHook().test_connection()
    assert not ok
    assert "401" in message
    assert bad_token not in message


def test_test_connection_reports_unknown_connection() -> None:
    ok, message = EnlivyHook("enlivy_nope").test_connection()
    assert not ok
    assert "enlivy_nope" in message


def test_airflow_connection_test_uses_the_hook(enlivy_airflow_connection: Any) -> None:
    """What `airflow connections test` / the UI's Test button call: Connection.test_connection()."""
    from airflow.providers.common.compat.sdk import BaseHook

    assert BaseHook.get_connection("enlivy_default").test_connection() == (
        True,
        f"Connected to organization {DEMO_ORG_NAME}",
    )


def test_token_is_registered_with_the_secrets_masker(
    enlivy_airflow_connection: Any, fresh_masker: Any
) -> None:
    token = enlivy_airflow_connection.token
    secret = token.split("|", 1)[1]
    assert fresh_masker(f"Bearer {token}") == f"Bearer {token}"
    EnlivyHook().get_client()
    assert fresh_masker(f"Bearer {token}") == "Bearer ***"
    # A server echoing only the part after "N|" is masked as well.
    assert fresh_masker(f"token {secret} revoked") == "token *** revoked"


def test_login_auth_from_the_connection(
    enlivy_emulator: Any, monkeypatch: pytest.MonkeyPatch, fresh_masker: Any
) -> None:
    _set_connection(
        monkeypatch,
        enlivy_emulator,
        login=DEMO_LOGIN_EMAIL,
        password=DEMO_LOGIN_PASSWORD,
        extra={"auth": "login"},
    )
    hook = EnlivyHook()
    assert hook.test_connection() == (True, f"Connected to organization {DEMO_ORG_NAME}")
    assert enlivy_emulator.request_count("POST", "/authentication/login") == 1
    # Both the account password and the token the login returned are masked.
    assert fresh_masker(DEMO_LOGIN_PASSWORD) == "***"
    assert fresh_masker(enlivy_emulator.token) == "***"


def test_invoice_url_from_the_app_url_template(enlivy_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    template = "https://app.enlivy.com/organizations/{organization_id}/invoices/{invoice_id}"
    _set_connection(monkeypatch, enlivy_emulator, extra={"app_url": template})
    assert EnlivyHook().invoice_url("org_inv_1") == (
        f"https://app.enlivy.com/organizations/{enlivy_emulator.org_id}/invoices/org_inv_1"
    )


def test_invoice_url_without_app_url_goes_to_the_enlivy_app_for_the_enlivy_api_only(
    enlivy_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = json.loads(enlivy_emulator.connection_json())
    del conn["extra"]["app_url"]
    monkeypatch.setenv("AIRFLOW_CONN_ENLIVY_DEFAULT", json.dumps(conn))  # a proxy, a sandbox host: no guess
    assert EnlivyHook().invoice_url("org_inv_1") is None
    for host in ("https://api.enlivy.com", "api.enlivy.com", None):
        monkeypatch.setenv("AIRFLOW_CONN_ENLIVY_DEFAULT", json.dumps({**conn, "host": host}))
        assert EnlivyHook().invoice_url("org_inv_1") == (
            f"https://app.enlivy.com/organizations/{enlivy_emulator.org_id}/invoices/org_inv_1"
        ), host


def test_the_emulators_connection_links_to_its_own_invoice_page(enlivy_airflow_connection: Any) -> None:
    import requests

    emulator = enlivy_airflow_connection
    invoice = EnlivyHook().create_invoice(_payload(), idempotency_key="page")
    url = EnlivyHook().invoice_url(invoice["id"])
    assert url is not None and url.startswith(emulator.base_url)
    page = requests.get(url, timeout=10)  # what a browser does when the extra link is clicked: no token
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Hook item" in page.text and "Globex" in page.text and str(invoice["status"]) in page.text
    missing = requests.get(url.replace(invoice["id"], "org_inv_missing"), timeout=10)
    assert missing.status_code == 404


def test_insecure_http_to_a_remote_host_is_refused(
    enlivy_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_connection(monkeypatch, enlivy_emulator, host="http://api.example.com")
    with pytest.raises(EnlivyInvalidRequestError, match="refusing plain http"):
        EnlivyHook().get_client()
    ok, message = EnlivyHook().test_connection()
    assert not ok and "refusing plain http" in message


def test_allow_insecure_http_extra(enlivy_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _set_connection(
        monkeypatch, enlivy_emulator, host="http://api.example.com", extra={"allow_insecure_http": "true"}
    )
    assert EnlivyHook().get_client().base_url == "http://api.example.com"


def test_max_retries_and_timeout_extras_are_used(
    enlivy_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_connection(
        monkeypatch, enlivy_emulator, extra={"max_retries": "0", "timeout": [2, 5], "verify": "false"}
    )
    client = EnlivyHook().get_client()
    assert client._settings.timeout == (2.0, 5.0)
    assert client._session.verify is False
    enlivy_emulator.add_fault("GET", "/organizations/*", "error", status=503, times=1)
    with pytest.raises(EnlivyServerError):
        client.get_organization()
    assert enlivy_emulator.request_count("GET", "/organizations/{org}") == 1  # max_retries 0: one attempt


def test_async_client_from_the_connection(enlivy_airflow_connection: Any, fresh_masker: Any) -> None:
    async def scenario() -> tuple[AsyncEnlivyClient, AsyncEnlivyClient, dict[str, Any]]:
        hook = EnlivyHook()
        first = await hook.aget_async_client()
        second = await hook.aget_async_client()
        organization = await first.get_organization()
        await hook.aclose()
        return first, second, organization

    first, second, organization = asyncio.run(scenario())
    assert first is second
    assert organization["name"] == DEMO_ORG_NAME
    assert fresh_masker(enlivy_airflow_connection.token) == "***"


def test_token_absent_from_hook_logs_and_messages(
    enlivy_emulator: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    token = enlivy_emulator.token
    _set_connection(monkeypatch, enlivy_emulator, extra={"max_retries": 1})
    hook = EnlivyHook(client_options=FAST)
    enlivy_emulator.add_fault("*", "/organizations/*", "error", status=503, times=10)
    ok, message = hook.test_connection()
    with pytest.raises(EnlivyServerError) as caught:
        hook.create_invoice(_payload())
    out, err = capsys.readouterr()
    visible = "\n".join(
        [
            message,
            str(caught.value),
            repr(caught.value),
            repr(hook),
            repr(hook.get_client()),
            caplog.text,
            out,
            err,
        ]
    )
    assert not ok
    assert "retry 1/1" in caplog.text
    assert token not in visible


def test_extras_left_empty_in_the_connection_form_mean_their_defaults(
    enlivy_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The form's extra fields are nullable: a cleared field is saved as null (or an empty string)."""
    for empty in (None, ""):
        extra = {
            name: empty
            for name in ("auth", "timeout", "max_retries", "verify", "allow_insecure_http", "app_url")
        }
        _set_connection(monkeypatch, enlivy_emulator, extra=extra)
        hook = EnlivyHook()
        client = hook.get_client()

        assert client._session.verify not in (False, "")  # TLS verification stays on (True or a CA bundle)
        assert client.get_organization()["name"] == DEMO_ORG_NAME
        assert hook.invoice_url("org_inv_1") is None
        hook.close()
