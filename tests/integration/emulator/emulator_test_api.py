"""Helpers for the emulator's own tests: a plain ``requests`` session with the demo token, invoice payloads."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import requests

from enlivy_provider.testing import EmulatorHandle, invoice_payload


class Api:
    """``requests`` against the emulator with the demo token; paths relative to the demo organization."""

    def __init__(self, handle: EmulatorHandle, token: str | None = None, org_id: str | None = None) -> None:
        self.handle = handle
        self.org_id = org_id or handle.org_id
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token or handle.token}"
        self.session.headers["Accept"] = "application/json"

    def url(self, path: str) -> str:
        return f"{self.handle.base_url}/organizations/{self.org_id}{path}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.url(path), **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def create_invoice(self, n: int = 0, **overrides: Any) -> dict[str, Any]:
        response = self.post("/invoices", json=invoice_payload(n, **overrides))
        assert response.status_code == 201, response.text
        return dict(response.json())

    def list_invoices(self, **params: Any) -> requests.Response:
        return self.get("/invoices", params=params)


def decimal_json(response: requests.Response) -> Any:
    return response.json(parse_float=Decimal)
