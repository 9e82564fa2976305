"""The blocking client reads the proxy/CA environment once, at construction (not on every request)."""

from __future__ import annotations

import pytest

from enlivy_provider.client import EnlivyClient


def test_proxy_from_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with EnlivyClient("https://api.enlivy.com", "1|tok") as client:
        assert client._session.proxies.get("https") == "http://proxy.example:3128"
        assert client._session.trust_env is False  # no per-request environment scan


def test_no_proxy_is_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "api.enlivy.com")
    with EnlivyClient("https://api.enlivy.com", "1|tok") as client:
        assert "https" not in client._session.proxies


def test_ca_bundle_from_the_environment_when_verify_is_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/corp.pem")
    with EnlivyClient("https://api.enlivy.com", "1|tok") as client:
        assert client._session.verify == "/etc/ssl/corp.pem"
    with EnlivyClient("https://api.enlivy.com", "1|tok", verify=False) as client:
        assert client._session.verify is False
