"""A small web service that turns Enlivy webhooks into Airflow asset events.

It receives an Enlivy event destination's deliveries, checks each one's ``Signature`` header with
``enlivy_provider.webhooks.verify_webhook_signature`` (the official SDK's scheme), and for the event types it
is told to forward it records an asset event through Airflow's REST API (``POST /api/v2/assets/events``), so
DAGs scheduled on that asset run. Standard library only, besides the provider's verifier (which imports
nothing of Airflow). Documented in docs/events.md.

Configuration (environment):

* ``ENLIVY_WEBHOOK_SECRET`` — the destination's ``signing_secret`` (shown once, when it was created);
* ``AIRFLOW_API_URL`` — e.g. ``http://localhost:8080``; ``AIRFLOW_USERNAME`` / ``AIRFLOW_PASSWORD`` — a user
  allowed to create asset events (a token is fetched from ``/auth/token`` and renewed on 401);
* ``ENLIVY_ASSET_URI`` — the asset to mark, as declared in the DAGs (``Asset(uri=...)``);
* ``ENLIVY_EVENTS`` — the event types to forward, comma separated (default ``invoice.paid``); other
  verified events are acknowledged and ignored;
* ``ENLIVY_WEBHOOK_TOLERANCE`` — optional: refuse events whose signed ``created_at`` is older than this many
  seconds (off by default, as in the SDK; it also refuses late retries).

Run: ``python scripts/enlivy_webhook_receiver.py --host 0.0.0.0 --port 8099``; the destination URL is
``https://<your host>/enlivy/webhook`` (put TLS in front: Enlivy posts to HTTPS URLs).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from enlivy_provider.webhooks import (
    SIGNATURE_HEADER,
    EnlivyWebhookEvent,
    EnlivyWebhookSignatureError,
    verify_webhook_signature,
)

log = logging.getLogger("enlivy_webhook_receiver")

WEBHOOK_PATH = "/enlivy/webhook"
MAX_BODY = 2 * 1024 * 1024
REMEMBERED_EVENTS = 10_000  # event ids already forwarded: Enlivy may deliver an event more than once
AIRFLOW_TIMEOUT_S = 30


@dataclass(frozen=True)
class Settings:
    secret: str
    airflow_url: str
    username: str
    password: str
    asset_uri: str
    events: frozenset[str]
    tolerance: float | None

    @classmethod
    def from_env(cls) -> Settings:
        tolerance = os.environ.get("ENLIVY_WEBHOOK_TOLERANCE")
        return cls(
            secret=os.environ["ENLIVY_WEBHOOK_SECRET"],
            airflow_url=os.environ["AIRFLOW_API_URL"].rstrip("/"),
            username=os.environ["AIRFLOW_USERNAME"],
            password=os.environ["AIRFLOW_PASSWORD"],
            asset_uri=os.environ["ENLIVY_ASSET_URI"],
            events=frozenset(e.strip() for e in os.environ.get("ENLIVY_EVENTS", "invoice.paid").split(",")),
            tolerance=float(tolerance) if tolerance else None,
        )


class AirflowError(Exception):
    """Airflow's REST API did not take the asset event (answered 502, so Enlivy delivers it again)."""


class AirflowAssets:
    """The two calls the service needs from Airflow's REST API, with a JWT from ``/auth/token``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._token: str | None = None
        self._asset_id: int | None = None

    def _call(
        self, method: str, path: str, body: Any = None, *, auth: bool = True, again: bool = False
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self._login()}"
        request = urllib.request.Request(self.settings.airflow_url + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=AIRFLOW_TIMEOUT_S) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 401 and auth and not again:
                self._token = None  # expired: log in again, once
                return self._call(method, path, body, again=True)
            raise AirflowError(f"{method} {path} -> {exc.code}: {exc.read()[:300]!r}") from None
        except (urllib.error.URLError, TimeoutError) as exc:
            raise AirflowError(f"{method} {path}: {exc}") from None

    def _login(self) -> str:
        if self._token is None:
            answer = self._call(
                "POST",
                "/auth/token",
                {"username": self.settings.username, "password": self.settings.password},
                auth=False,
            )
            self._token = str(answer["access_token"])
        return self._token

    def asset_id(self) -> int:
        """The id of ``ENLIVY_ASSET_URI``: the events endpoint takes an id (Airflow 3.3:
        ``CreateAssetEventsBody.asset_id``), and the asset exists once a DAG that uses it was parsed."""
        if self._asset_id is None:
            query = urllib.parse.urlencode({"uri_pattern": self.settings.asset_uri, "limit": 100})
            assets = self._call("GET", f"/api/v2/assets?{query}")["assets"]
            matches = [a["id"] for a in assets if _same_uri(a["uri"], self.settings.asset_uri)]
            if not matches:
                raise AirflowError(
                    f"no asset {self.settings.asset_uri} in Airflow: is a DAG using it parsed?"
                )
            self._asset_id = int(matches[0])
        return self._asset_id

    def create_event(self, extra: dict[str, Any]) -> dict[str, Any]:
        return dict(
            self._call("POST", "/api/v2/assets/events", {"asset_id": self.asset_id(), "extra": extra})
        )


def _same_uri(stored: str, wanted: str) -> bool:
    # Airflow stores "scheme://host" as "scheme://host/": compare with an empty path read as "/".
    a, b = urllib.parse.urlsplit(stored), urllib.parse.urlsplit(wanted)
    return a._replace(path=a.path or "/") == b._replace(path=b.path or "/")


def asset_extra(event: EnlivyWebhookEvent) -> dict[str, Any]:
    """What a DAG run can read from the triggering asset event (``triggering_asset_events``)."""
    record = event.data

    def text(value: Any) -> Any:  # amounts as exact strings: JSON numbers would become floats in Airflow
        return str(value) if isinstance(value, Decimal) else value

    return {
        "enlivy_event_id": event.id,
        "enlivy_event_type": event.type,
        "enlivy_event_created_at": event.created_at,
        "organization_id": event.organization_id,
        "record_id": record.get("id"),
        **{name: text(record.get(name)) for name in ("formatted_number", "status", "total", "currency")},
    }


class Forwarder:
    """Verify, filter, de-duplicate on the event id, forward. One lock: a delivery repeated while the first
    copy is still being forwarded must not create a second asset event."""

    def __init__(self, settings: Settings, airflow: AirflowAssets) -> None:
        self.settings = settings
        self.airflow = airflow
        self._lock = threading.Lock()
        self._done: OrderedDict[str, int] = OrderedDict()  # event id -> asset event id

    def handle(self, body: bytes, signature: str | None) -> tuple[int, dict[str, Any]]:
        try:
            event = verify_webhook_signature(
                body, signature, self.settings.secret, tolerance=self.settings.tolerance
            )
        except EnlivyWebhookSignatureError as exc:
            log.warning("refused a delivery: %s", exc)  # never the secret: the message does not carry it
            return 400, {"error": "invalid signature"}
        if event.type not in self.settings.events:
            return 200, {"received": True, "ignored": event.type}
        with self._lock:
            if event.id in self._done:
                return 200, {"received": True, "duplicate": True, "asset_event_id": self._done[event.id]}
            try:
                created = self.airflow.create_event(asset_extra(event))
            except AirflowError as exc:
                log.error("could not record the asset event of %s: %s", event.id, exc)
                return 502, {"error": "airflow did not take the asset event"}
            self._done[event.id] = int(created["id"])
            while len(self._done) > REMEMBERED_EVENTS:
                self._done.popitem(last=False)
        log.info("%s %s -> asset event %s", event.type, event.id, created["id"])
        return 200, {"received": True, "asset_event_id": created["id"]}


def make_server(host: str, port: int, forwarder: Forwarder) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer(200 if self.path == "/health" else 404, {"status": "ok"})

        def do_POST(self) -> None:
            if self.path != WEBHOOK_PATH:
                return self._answer(404, {"error": "not found"})
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._answer(413, {"error": "body too large"})
            # The raw bytes, exactly as sent: the signature covers them, not a re-serialised object.
            body = self.rfile.read(length)
            self._answer(*forwarder.handle(body, self.headers.get(SIGNATURE_HEADER)))

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = Settings.from_env()
    server = make_server(args.host, args.port, Forwarder(settings, AirflowAssets(settings)))
    log.info("listening on http://%s:%s%s", args.host, args.port, WEBHOOK_PATH)
    server.serve_forever()


if __name__ == "__main__":
    main()
