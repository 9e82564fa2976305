"""pytest plugin and helpers for testing against the local Enlivy API emulator.

Opt in from a ``conftest.py``::

    pytest_plugins = ["enlivy_provider.testing"]

Fixtures: ``enlivy_emulator_server`` (session: one emulator process), ``enlivy_emulator`` (function: the
same server reset to the demo seed before the test) and ``enlivy_airflow_connection`` (function: also sets
``AIRFLOW_CONN_ENLIVY_DEFAULT`` to the emulator). :func:`run_emulator` starts one outside pytest
(benchmarks, ``make demo``). This module never imports Airflow.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import requests

from enlivy_provider.emulator import seed as demo

STARTUP_TIMEOUT_S = 30.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def invoice_payload(n: int = 0, *, customer_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A valid create-invoice body for the demo seed: the ``n``-th demo customer (round robin), EUR, pending,
    bank transfer, e-mail delivery, one line of 2 × 95.00 at 19 % VAT. Any field can be overridden by keyword
    (``status="draft"``, ``line_items=[...]``; ``None`` sends a JSON null)."""
    payload: dict[str, Any] = {
        "organization_receiver_user_id": customer_id or demo.DEMO_CUSTOMERS[n % len(demo.DEMO_CUSTOMERS)].id,
        "status": "pending",
        "currency": "EUR",
        "payment_method": "bank_transfer",
        "delivery_method": "email",
        "line_items": [
            {
                "name_lang_map": {"en": f"Item {n}"},
                "quantity": 2,
                "price": "95.00",
                "organization_tax_class_id": demo.TAX_CLASS_STANDARD_ID,
            }
        ],
    }
    payload.update(overrides)
    return payload


class EmulatorHandle:
    """A running emulator: its URL, the demo credentials and typed access to the admin API."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = demo.DEMO_TOKEN
        self.org_id = demo.DEMO_ORG_ID
        self.other_token = demo.OTHER_TOKEN
        self.other_org_id = demo.OTHER_ORG_ID
        self._session = requests.Session()

    def __repr__(self) -> str:
        return f"EmulatorHandle({self.base_url!r})"

    def _admin(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float = 60,
    ) -> Any:
        response = self._session.request(
            method, f"{self.base_url}/_emulator{path}", json=body, params=params, timeout=timeout
        )
        if response.status_code >= 400:
            raise RuntimeError(f"emulator admin {method} {path} -> {response.status_code}: {response.text}")
        return response.json()

    def close(self) -> None:
        self._session.close()

    def health(self) -> dict[str, Any]:
        return dict(self._admin("GET", "/health"))

    def reset(self, seed: str = "demo", extra_customers: int = 0) -> None:
        self._admin("POST", "/reset", {"seed": seed, "extra_customers": extra_customers})

    def counters(self) -> dict[str, Any]:
        return dict(self._admin("GET", "/counters"))

    def write_count(self) -> int:
        return int(self.counters()["writes"])

    def request_count(self, method: str, route_template: str) -> int:
        return int(self.counters()["routes"].get(f"{method.upper()} {route_template}", 0))

    def request_log(
        self, method: str | None = None, route_template: str | None = None
    ) -> list[dict[str, Any]]:
        """The requests since the counters were last reset, oldest first (the last 20,000): each a dict of
        ``method``, ``route`` (template), ``path`` and ``query`` (percent-decoded), optionally only those of
        one method and route template."""
        return [
            entry
            for entry in self._admin("GET", "/requests")["data"]
            if (method is None or entry["method"] == method.upper())
            and (route_template is None or entry["route"] == route_template)
        ]

    def reset_counters(self) -> None:
        self._admin("DELETE", "/counters")

    def add_fault(
        self,
        method: str,
        path: str,
        action: str,
        *,
        status: int | None = None,
        retry_after: int | None = None,
        delay_ms: int | None = None,
        times: int | None = None,
        parties: int | None = None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        query: str | None = None,
    ) -> str:
        """Script a fault (docs/emulator.md); ``times`` defaults to 1 (a barrier: its ``parties``).
        ``body``/``headers``: the ``error`` answer's JSON body and extra headers, where ``{token}`` and
        ``{token_secret}`` become the request's bearer token and its secret. ``query``: a glob the decoded
        query string must match too (``"*org_inv_abc*"``: only the list calls asking for that invoice)."""
        spec: dict[str, Any] = {"method": method, "path": path, "action": action}
        for name, value in (
            ("status", status),
            ("retry_after", retry_after),
            ("delay_ms", delay_ms),
            ("times", times),
            ("parties", parties),
            ("body", body),
            ("headers", headers),
            ("query", query),
        ):
            if value is not None:
                spec[name] = value
        return str(self._admin("POST", "/faults", spec)["id"])

    def clear_faults(self) -> None:
        self._admin("DELETE", "/faults")

    def configure(
        self,
        latency_ms: int | None = None,
        rate_limit: float | None = None,
        auto_pay_after: float | None = None,
        replay_header: bool | None = None,
    ) -> dict[str, Any]:
        """Change settings; arguments left as ``None`` are not sent (use the admin API to switch one off)."""
        body = {
            name: value
            for name, value in (
                ("latency_ms", latency_ms),
                ("rate_limit", rate_limit),
                ("auto_pay_after", auto_pay_after),
                ("replay_header", replay_header),
            )
            if value is not None
        }
        return dict(self._admin("PUT", "/config", body))

    def set_invoice_status(self, invoice_id: str, status: str) -> dict[str, Any]:
        return dict(self._admin("POST", f"/invoices/{invoice_id}/status", {"status": status}))

    def invoices(self, organization_id: str | None = None) -> list[dict[str, Any]]:
        params = {"organization_id": organization_id} if organization_id else None
        return list(self._admin("GET", "/invoices", params=params)["data"])

    def live_invoices(self, organization_id: str | None = None) -> list[dict[str, Any]]:
        """The organization's invoices that are not soft-deleted (the demo organization by default)."""
        return [i for i in self.invoices(organization_id or self.org_id) if not i.get("deleted_at")]

    def billings(self, organization_id: str | None = None) -> dict[str, Any]:
        """Live invoices per billing (customer, period, billing key), counted in the emulator:
        ``{"billings", "invoices", "duplicates", "examples"}`` (``GET /_emulator/billings``)."""
        return dict(
            self._admin("GET", "/billings", params={"organization_id": organization_id or self.org_id})
        )

    def bulk_invoices(self, count: int, **spec: Any) -> dict[str, Any]:
        return dict(self._admin("POST", "/bulk-invoices", {"count": count, **spec}))

    def idempotency_keys(self) -> list[dict[str, Any]]:
        return list(self._admin("GET", "/idempotency-keys")["data"])

    def emails(self) -> list[dict[str, Any]]:
        return list(self._admin("GET", "/emails")["data"])

    def script_charge(
        self, status: str, *, invoice_id: str | None = None, customer_id: str | None = None, **details: Any
    ) -> dict[str, Any]:
        """Script the outcome of the next charges of an invoice or a customer (docs/emulator.md):
        ``status`` succeeded|requires_action|failed; ``error_code``, ``error_message``, ``next_action_url``,
        ``times`` (absent: until :meth:`clear_charge_outcomes`)."""
        body = {"status": status, "invoice_id": invoice_id, "customer_id": customer_id, **details}
        return dict(self._admin("POST", "/charge-outcomes", {k: v for k, v in body.items() if v is not None}))

    def clear_charge_outcomes(self) -> None:
        self._admin("DELETE", "/charge-outcomes")

    def add_network_exchange(self, **spec: Any) -> dict[str, Any]:
        """An e-invoicing exchange record (``invoice_id``, ``status``, ``institution_id``, ``direction``)."""
        return dict(self._admin("POST", "/network-exchanges", spec))

    def add_webhook_destination(
        self,
        url: str,
        events: Sequence[str] = ("invoice.created", "invoice.updated", "invoice.paid"),
        *,
        includes: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Register a webhook event destination of the demo organization through the API
        (``POST /event-destinations``); the answer carries the ``signing_secret`` (shown only there)."""
        body = {
            "type": "webhook",
            "destination_url": url,
            "events": [{"event": name, "includes": list(includes) if includes else None} for name in events],
        }
        response = self._session.post(
            f"{self.base_url}/organizations/{self.org_id}/event-destinations",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
        )
        if response.status_code != 201:
            raise RuntimeError(f"POST /event-destinations -> {response.status_code}: {response.text}")
        return dict(response.json())

    def webhook_deliveries(self, organization_id: str | None = None) -> list[dict[str, Any]]:
        """The delivery log, oldest first: URL, headers and body sent, status and answer received."""
        params = {"organization_id": organization_id} if organization_id else None
        return list(self._admin("GET", "/deliveries", params=params)["data"])

    def wait_for_deliveries(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Wait until every queued webhook was sent (no sleeping: the emulator answers when its queue is
        empty), then return the whole delivery log; RuntimeError after ``timeout`` seconds."""
        wait = self._admin("POST", "/deliveries/wait", {"timeout": timeout}, timeout=timeout + 30)
        return list(wait["data"])

    def redeliver(self, delivery_id: str) -> dict[str, Any]:
        """Send a delivery's event again (same event id, body and signature), as a retry would."""
        return dict(self._admin("POST", f"/deliveries/{delivery_id}/redeliver"))

    def connection_json(self, **extra: Any) -> str:
        """Airflow connection JSON (``AIRFLOW_CONN_ENLIVY_DEFAULT``) pointing at this emulator; its ``app_url``
        sends the operators' "Enlivy invoice" extra link to the emulator's read-only invoice pages."""
        from enlivy_provider.emulator.invoice_page import app_url_template

        return json.dumps(
            {
                "conn_type": "enlivy",
                "host": self.base_url,
                "password": self.token,
                "extra": {
                    "organization_id": self.org_id,
                    "app_url": app_url_template(self.base_url),
                    **extra,
                },
            }
        )


@contextmanager
def run_emulator(
    *,
    port: int | None = None,
    seed: str = "demo",
    latency_ms: int = 0,
    rate_limit: float | None = None,
    auto_pay_after: float | None = None,
    db: str | os.PathLike[str] | None = None,
) -> Iterator[EmulatorHandle]:
    """Start ``python -m enlivy_provider.emulator`` on 127.0.0.1, wait until healthy, yield, stop it."""
    port = port or free_port()
    command = [
        sys.executable, "-m", "enlivy_provider.emulator", "--host", "127.0.0.1", "--port", str(port),
        "--seed", seed, "--latency-ms", str(latency_ms),
    ]  # fmt: skip
    if rate_limit is not None:
        command += ["--rate-limit", str(rate_limit)]
    if auto_pay_after is not None:
        command += ["--auto-pay-after", str(auto_pay_after)]
    if db is not None:
        command += ["--db", str(Path(db))]
    # Output goes to a temporary file, never a pipe: an unread pipe fills up and would block the server.
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    handle = EmulatorHandle(f"http://127.0.0.1:{port}")
    try:
        _wait_healthy(process, handle, log)
        yield handle
    finally:
        handle.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _wait_healthy(process: subprocess.Popen[bytes], handle: EmulatorHandle, log: IO[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace")
            raise RuntimeError(f"the emulator exited with {process.returncode}:\n{output}")
        try:
            if requests.get(f"{handle.base_url}/_emulator/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"the emulator did not become healthy within {STARTUP_TIMEOUT_S} s")


# The fixtures need pytest; run_emulator and EmulatorHandle do not (benchmarks, `make demo`, scripts).
if TYPE_CHECKING or importlib.util.find_spec("pytest") is not None:
    import pytest

    @pytest.fixture(scope="session")
    def enlivy_emulator_server() -> Iterator[EmulatorHandle]:
        """One emulator process for the whole test session (demo seed)."""
        with run_emulator() as handle:
            yield handle

    @pytest.fixture
    def enlivy_emulator(enlivy_emulator_server: EmulatorHandle) -> EmulatorHandle:
        """The session's emulator, reset to the demo seed (data, faults, counters, config) before the test."""
        enlivy_emulator_server.reset()
        return enlivy_emulator_server

    @pytest.fixture
    def enlivy_airflow_connection(
        enlivy_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
    ) -> EmulatorHandle:
        """``AIRFLOW_CONN_ENLIVY_DEFAULT`` points at the (freshly reset) emulator for this test."""
        monkeypatch.setenv("AIRFLOW_CONN_ENLIVY_DEFAULT", enlivy_emulator.connection_json())
        return enlivy_emulator
