"""Signed webhook deliveries: invoice changes become events, events become HTTP POSTs to the destinations.

:meth:`WebhookDispatcher.observe` is an ``InvoiceService`` observer (called after every save of one invoice,
under the invoice lock, like the event trail): it names the events of the change, and for every live, active
destination of the organization subscribed to one of them it stores an ``event_delivery`` record
(``pending``) and queues the POST. One background thread sends the queue in order, so the API answer never
waits for a receiver and a receiver sees an invoice's events in the order they happened.

Events (emulator choices; the sources list the names, not when each fires): ``invoice.created`` for a new
invoice; ``invoice.deleted`` / ``invoice.restored`` when ``deleted_at`` is set / cleared; otherwise
``invoice.updated`` for any change of a public field (status changes included), followed by ``invoice.paid``
when the status became ``paid`` (an invoice created as ``paid`` gets ``created`` then ``paid``).

The request: ``POST destination_url``, ``Content-Type: application/json``, the body the SDK documents
(``docs/organization/event-destinations.md``, "Delivered payload structure": ``id`` ``evt_…``, ``type``,
``created_at``, ``data`` — the invoice with the subscription's includes, relations bare as in that example —
and ``organization_id``), and ``Signature``: :func:`enlivy_provider.webhooks.sign` of those exact bytes
(SDK ``src/Webhook/WebhookSignature.php`` lines 14, 35). One attempt: a 2xx answer is ``success``, anything
else (another status, no answer within the timeout, a refused connection: ``response_status`` 0) is
``failed``; ``/_emulator/deliveries/{id}/redeliver`` sends the same event again as a retry.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any

import requests

from enlivy_provider.emulator.common import new_id, not_found, now_iso
from enlivy_provider.emulator.event_destinations import public, subscriptions_of
from enlivy_provider.emulator.jsonio import dumps, loads
from enlivy_provider.emulator.resources import render_invoice
from enlivy_provider.emulator.store import Store
from enlivy_provider.emulator.trails import diff
from enlivy_provider.webhooks import SIGNATURE_HEADER, sign

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 10.0  # the SDK's guide asks receivers to answer within 5 s
MAX_RESPONSE_CHARS = 10_000
USER_AGENT = "enlivy-emulator-webhooks"


def invoice_events(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """The events one save of an invoice emits (see the module docstring)."""
    fields = diff(before, after)[0]
    paid = after.get("status") == "paid" and (before or {}).get("status") != "paid"
    if before is None:
        return ["invoice.created", *(["invoice.paid"] if paid else [])]
    if "deleted_at" in fields:
        return ["invoice.deleted" if after.get("deleted_at") else "invoice.restored"]
    if not fields:
        return []
    return ["invoice.updated", *(["invoice.paid"] if paid else [])]


def event_body(store: Store, event: dict[str, Any], invoice: dict[str, Any], includes: list[str]) -> bytes:
    """The delivered JSON: the event envelope around the invoice, included relations unwrapped."""
    data = render_invoice(store, invoice, includes)
    for name in includes:
        if isinstance(data.get(name), dict) and set(data[name]) == {"data"}:
            data[name] = data[name]["data"]
    return dumps({**event, "data": data, "organization_id": invoice["organization_id"]}).encode("utf-8")


@dataclass(frozen=True)
class _Job:
    generation: int
    delivery_id: str


class WebhookDispatcher:
    """Turns invoice saves into delivery records and sends them from one background thread."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._jobs: queue.Queue[_Job] = queue.Queue()
        self._idle = threading.Condition()
        self._unfinished = 0  # jobs queued or being sent
        self._generation = 0  # bumped by reset(): a job of an older generation is dropped, not recorded
        self._thread: threading.Thread | None = None
        self._session = requests.Session()

    # -- producing ---------------------------------------------------------------------------------------

    def observe(self, before: dict[str, Any] | None, after: dict[str, Any]) -> None:
        events = invoice_events(before, after)
        if not events:
            return
        org = after["organization_id"]
        targets = [
            (destination, subscription)
            for destination in self.store.list_records("event_destination", org)
            if destination.get("is_active") and not destination.get("deleted_at")
            for subscription in subscriptions_of(self.store, destination)
        ]
        for name in events:
            event = {"id": new_id("evt"), "type": name, "created_at": now_iso()}
            for destination, subscription in targets:
                if subscription["event"] == name:
                    body = event_body(self.store, event, after, subscription["includes"] or [])
                    self._queue(self._record(destination, event, body, is_retry=False))

    def redeliver(self, organization_id: str | None, delivery_id: str) -> dict[str, Any]:
        """Send a delivery's exact body again to its destination (a new ``is_retry`` record)."""
        old = self.store.get_record("event_delivery", delivery_id, organization_id)
        if old is None:
            raise not_found("event delivery")
        destination = self.store.get_record("event_destination", old["organization_event_destination_id"])
        if destination is None:
            raise not_found("event destination")
        event = {"id": old["_event_id"], "type": old["event"]}
        record = self._record(destination, event, old["_request_body"].encode("utf-8"), is_retry=True)
        self._queue(record)
        return record

    def _record(
        self, destination: dict[str, Any], event: dict[str, Any], body: bytes, *, is_retry: bool
    ) -> dict[str, Any]:
        now = now_iso()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(body, destination["_signing_secret"]),
        }
        record = {
            "id": new_id("org_evt_dlv"),
            "object": "event_delivery",
            "organization_id": destination["organization_id"],
            "organization_event_destination_id": destination["id"],
            "event": event["type"],
            "status": "pending",
            "request_payload": loads(body),
            "response_status": None,
            "response_type": None,
            "response": None,
            "is_retry": is_retry,
            "created_at": now,
            "updated_at": now,
            # The admin log shows these; the API answers only the public fields.
            "_event_id": event["id"],
            "_destination_url": destination["destination_url"],
            "_request_headers": headers,
            "_request_body": body.decode("utf-8"),
            "_error": None,
        }
        self.store.put_record("event_delivery", record)
        return record

    def _queue(self, record: dict[str, Any]) -> None:
        with self._idle:
            self._unfinished += 1
            job = _Job(self._generation, record["id"])
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="webhook-deliveries", daemon=True)
                self._thread.start()
        self._jobs.put(job)

    # -- sending -----------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                self._send(job)
            finally:
                with self._idle:
                    self._unfinished -= 1
                    self._idle.notify_all()

    def _send(self, job: _Job) -> None:
        if job.generation != self._generation:
            return
        record = self.store.get_record("event_delivery", job.delivery_id)
        if record is None:
            return
        outcome: dict[str, Any]
        try:
            answer = self._session.post(
                record["_destination_url"],
                data=record["_request_body"].encode("utf-8"),
                headers=record["_request_headers"],
                timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
                allow_redirects=False,
            )
            outcome = {
                "status": "success" if 200 <= answer.status_code < 300 else "failed",
                "response_status": answer.status_code,
                "response_type": answer.headers.get("Content-Type"),
                "response": answer.text[:MAX_RESPONSE_CHARS],
                "_error": None,
            }
        except requests.RequestException as exc:
            outcome = {"status": "failed", "response_status": 0, "_error": f"{type(exc).__name__}: {exc}"}
        # Checked under the store's lock, which reset() also takes to move the generation: a reset while the
        # POST was in flight wiped the record, and it must not come back. (Never hold self._idle here: a
        # request thread holds the store's lock when it queues.)
        with self.store.transaction():
            if job.generation != self._generation:
                return
            record.update(outcome, updated_at=now_iso())
            self.store.put_record("event_delivery", record)

    # -- control -----------------------------------------------------------------------------------------

    def wait_idle(self, timeout: float) -> bool:
        """Block until every queued delivery has been sent (or ``timeout`` seconds); True when idle."""
        with self._idle:
            return self._idle.wait_for(lambda: self._unfinished == 0, timeout)

    def reset(self) -> None:
        """Forget queued and in-flight deliveries: call before the data they belong to is wiped."""
        with self.store.transaction():
            self._generation += 1


def admin_view(record: dict[str, Any]) -> dict[str, Any]:
    """A delivery for the admin log: the public fields plus what was sent where and what came back."""
    return {
        **public(record),
        "event_id": record["_event_id"],
        "destination_url": record["_destination_url"],
        "request_headers": record["_request_headers"],
        "request_body": record["_request_body"],
        "error": record["_error"],
    }
