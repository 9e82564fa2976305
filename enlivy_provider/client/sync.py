"""EnlivyClient: the blocking client, on one ``requests.Session`` (keep-alive, pooled for threads).

Only transport here; what to send, what answers mean and when to retry come from ``core`` and
``endpoints``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from enlivy_provider.client import core
from enlivy_provider.client.base import BaseEnlivyClient
from enlivy_provider.client.core import ApiResponse, Page, PreparedRequest
from enlivy_provider.client.endpoints import Call

# Everything requests raises when there is no complete answer: refused/reset connections, timeouts, and a
# body cut short (ChunkedEncodingError / ContentDecodingError come from reading a dropped response).
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)

Include = str | Iterable[str] | None


class Throttle(Protocol):
    """Paces a client's requests (``EnlivyClient.throttle``), e.g. ``invoices.ratelimit.RateLimiter``."""

    def acquire(self) -> None:
        """Block until the next request may be sent (called before every attempt, retries included)."""

    def rate_limited(self, retry_after: float | None) -> None:
        """The server answered 429 (``Retry-After`` in seconds, when it sent one)."""


class _BearerAuth(AuthBase):
    """Bearer token as a session auth object: set on every request, and (unlike a plain header) it keeps
    requests from swapping in ~/.netrc credentials. Its repr never shows the token."""

    def __init__(self, token: str) -> None:
        self._header = core.auth_header(token)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.update(self._header)
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(***)"


class EnlivyClient(BaseEnlivyClient):
    """Blocking Enlivy API client. Thread-safe: one session, a connection pool of ``pool_maxsize``.

    Arguments: see ``BaseEnlivyClient``. Use as a context manager or call ``close()``.
    ``throttle`` (default None), when set, paces every attempt of every request of every thread sharing the
    client and hears of each 429 (see :class:`Throttle`).
    """

    throttle: Throttle | None = None

    def _open_transport(self, pool_maxsize: int) -> None:
        self._login_lock = threading.Lock()
        self._session = requests.Session()
        # Retries are ours (core.Attempts), so urllib3's are off; the pool is sized for threaded callers.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.headers.update(core.BASE_HEADERS)
        self._session.verify = self._settings.verify
        # With trust_env, requests re-reads the proxy/CA environment on *every* request — about a quarter
        # of the client-side time of a GET. Read it once for our one host instead; ~/.netrc, the third thing
        # trust_env brings, never applies because the bearer auth object is always set.
        self._session.proxies.update(requests.utils.get_environ_proxies(self._settings.base_url))
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if self._settings.verify is True and ca_bundle:
            self._session.verify = ca_bundle
        self._session.trust_env = False

    def _use_token(self, token: str) -> None:
        self._session.auth = _BearerAuth(token)

    # -- lifecycle ------------------------------------------------------------------------------------

    def __enter__(self) -> EnlivyClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    # -- transport ------------------------------------------------------------------------------------

    def _send(self, prepared: PreparedRequest) -> ApiResponse:
        attempts = core.Attempts(prepared, self._settings.policy, self._secrets())
        url = self._settings.base_url + prepared.path
        while True:
            if self.throttle is not None:
                self.throttle.acquire()
            try:
                raw = self._session.request(
                    prepared.method,
                    url,
                    params=prepared.query or None,
                    data=prepared.body,
                    headers=prepared.headers,
                    timeout=self._settings.timeout,
                    allow_redirects=False,
                )
                if raw.status_code == 429 and self.throttle is not None:
                    self.throttle.rate_limited(core.parse_retry_after(raw.headers))
                # .content reads the whole body: a connection cut mid-response raises here, inside the try.
                step = attempts.on_response(raw.status_code, raw.headers, raw.content)
            except _TRANSPORT_ERRORS as exc:
                step = attempts.on_transport_error(exc)
            if step.delay is None:
                return step.result()
            time.sleep(step.delay)

    def _ensure_token(self) -> None:
        if self._token:
            return
        with self._login_lock:  # threads share one login
            if self._token:
                return
            response = self._send(self._login_request())
            token = core.token_from_login(response)
            if self._on_token is not None:
                self._on_token(token)
            self._use_token(token)
            self._token = token

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
    ) -> ApiResponse:
        """Send any request (path relative to the base URL); raises the typed error of an error answer."""
        self._ensure_token()
        prepared = core.prepare(method, path, params=params, json=json, idempotency_key=idempotency_key)
        return self._send(prepared)

    def _call(self, call: Call) -> ApiResponse:
        return self.request(
            call.method, call.path, params=call.params, json=call.json, idempotency_key=call.idempotency_key
        )

    def _record(self, call: Call) -> dict[str, Any]:
        data: dict[str, Any] = self._call(call).data
        return data

    def _list_page(self, resource: str, page: int, per_page: int, filters: Mapping[str, Any]) -> Page:
        call = self._endpoints.list_page(resource, page=page, per_page=per_page, filters=filters)
        return Page.from_response(self._call(call))

    def _iterate(self, resource: str, filters: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Lazy iterator over every page (filters checked at the call)."""
        page, per_page, rest = self._endpoints.walk(resource, filters)
        return self._pages(resource, page, per_page, rest)

    def _pages(
        self, resource: str, page: int, per_page: int, filters: Mapping[str, Any]
    ) -> Iterator[dict[str, Any]]:
        next_page: int | None = page
        while next_page is not None:
            result = self._list_page(resource, next_page, per_page, filters)
            yield from result.items
            next_page = core.next_page(result.meta, next_page)

    # -- invoices -------------------------------------------------------------------------------------

    def list_invoices(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every invoice matching ``filters`` (§6.2), fetched page by page as you iterate."""
        return self._iterate("invoices", filters)

    def list_invoices_page(
        self, *, page: int = 1, per_page: int = core.DEFAULT_PER_PAGE, **filters: Any
    ) -> Page:
        return self._list_page("invoices", page, per_page, filters)

    def get_invoice(self, invoice_id: str, include: Include = None) -> dict[str, Any]:
        return self._record(self._endpoints.get_invoice(invoice_id, include))

    def create_invoice(
        self, payload: Mapping[str, Any], *, idempotency_key: str | None = None, include: Include = None
    ) -> dict[str, Any]:
        return self._record(self._endpoints.create_invoice(payload, idempotency_key, include))

    def create_invoice_answer(
        self, payload: Mapping[str, Any], *, idempotency_key: str, include: Include = None
    ) -> core.WriteAnswer:
        """Like :meth:`create_invoice`, and says whether the server replayed an earlier create for this key."""
        return core.WriteAnswer.from_response(
            self._call(self._endpoints.create_invoice(payload, idempotency_key, include))
        )

    def update_invoice(
        self,
        invoice_id: str,
        payload: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        include: Include = None,
    ) -> dict[str, Any]:
        return self._record(self._endpoints.update_invoice(invoice_id, payload, idempotency_key, include))

    def update_invoice_answer(
        self, invoice_id: str, payload: Mapping[str, Any], *, idempotency_key: str, include: Include = None
    ) -> core.WriteAnswer:
        """Like :meth:`update_invoice`, and says whether the server replayed an earlier update for this key."""
        return core.WriteAnswer.from_response(
            self._call(self._endpoints.update_invoice(invoice_id, payload, idempotency_key, include)),
            stamp="updated_at",
        )

    def delete_invoice(self, invoice_id: str) -> dict[str, Any]:
        """Soft delete (§18): the invoice comes back with ``deleted_at`` set."""
        return self._record(self._endpoints.delete_invoice(invoice_id))

    def restore_invoice(self, invoice_id: str) -> dict[str, Any]:
        return self._record(self._endpoints.restore_invoice(invoice_id))

    def send_invoice_email(
        self,
        invoice_id: str,
        to: Iterable[str] | str | None = None,
        cc: Iterable[str] | str | None = None,
        subject: str | None = None,
        message: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        return self.send_invoice_email_answer(
            invoice_id, to, cc, subject, message, idempotency_key=idempotency_key
        ).record

    def send_invoice_email_answer(
        self,
        invoice_id: str,
        to: Iterable[str] | str | None = None,
        cc: Iterable[str] | str | None = None,
        subject: str | None = None,
        message: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> core.WriteAnswer:
        """Like :meth:`send_invoice_email`, and says whether the server replayed an earlier send (not sent again)."""
        call = self._endpoints.send_invoice_email(invoice_id, to, cc, subject, message, idempotency_key)
        return core.WriteAnswer.from_response(self._call(call))

    def download_invoice(self, invoice_id: str) -> bytes:
        """The invoice document's raw bytes (PDF)."""
        return self._call(self._endpoints.download_invoice(invoice_id)).content

    # -- invoice actions (each a write with an Idempotency-Key: yours, or a fresh one per call) ---------

    def charge_invoice(
        self, invoice_id: str, *, idempotency_key: str | None = None, include: Include = None
    ) -> core.ChargeAnswer:
        """Charge the stored payment method off-session; ``.result`` is the attempt's ``charge_result``
        (``status`` succeeded / requires_action / failed / already_paid), ``.invoice`` the refreshed invoice."""
        return core.ChargeAnswer.from_response(
            self._call(self._endpoints.charge_invoice(invoice_id, idempotency_key, include))
        )

    def refund_invoice(
        self,
        invoice_id: str,
        line_items: Iterable[Mapping[str, Any]] | None = None,
        *,
        reason: str | None = None,
        note_lang_map: Mapping[str, str] | None = None,
        organization_invoice_prefix_id: str | None = None,
        idempotency_key: str | None = None,
        include: Include = None,
    ) -> dict[str, Any]:
        """The reversal invoice; ``line_items`` ``[{organization_invoice_line_item_id, quantity}]`` for a
        partial refund, None for all that is left."""
        return self.refund_invoice_answer(
            invoice_id,
            line_items,
            reason=reason,
            note_lang_map=note_lang_map,
            organization_invoice_prefix_id=organization_invoice_prefix_id,
            idempotency_key=idempotency_key,
            include=include,
        ).record

    def refund_invoice_answer(
        self,
        invoice_id: str,
        line_items: Iterable[Mapping[str, Any]] | None = None,
        *,
        reason: str | None = None,
        note_lang_map: Mapping[str, str] | None = None,
        organization_invoice_prefix_id: str | None = None,
        idempotency_key: str | None = None,
        include: Include = None,
    ) -> core.WriteAnswer:
        """Like :meth:`refund_invoice`, and says whether the server replayed an earlier refund for this key."""
        options = {
            "reason": reason,
            "note_lang_map": note_lang_map,
            "organization_invoice_prefix_id": organization_invoice_prefix_id,
        }
        call = self._endpoints.refund_invoice(invoice_id, line_items, options, idempotency_key, include)
        return core.WriteAnswer.from_response(self._call(call))

    def issue_invoice(
        self,
        proforma_id: str,
        *,
        organization_invoice_prefix_id: str | None = None,
        idempotency_key: str | None = None,
        include: Include = None,
    ) -> dict[str, Any]:
        """The standard invoice issued from a proforma."""
        call = self._endpoints.issue_invoice(
            proforma_id, organization_invoice_prefix_id, idempotency_key, include
        )
        return self._record(call)

    def issue_receipt(self, invoice_id: str, *, idempotency_key: str | None = None) -> dict[str, Any]:
        """A receipt (``object: receipt``, with ``receipt_number``) for the invoice."""
        return self._record(self._endpoints.issue_receipt(invoice_id, idempotency_key))

    def tag_invoice(
        self, invoice_id: str, tag_id: str, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        return self._record(self._endpoints.tag_invoice(invoice_id, tag_id, idempotency_key))

    def untag_invoice(
        self, invoice_id: str, tag_id: str, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        return self._record(self._endpoints.tag_invoice(invoice_id, tag_id, idempotency_key, remove=True))

    def list_tags(self, **filters: Any) -> Iterator[dict[str, Any]]:
        return self._iterate("tags", filters)

    def create_tag(
        self,
        alias: str,
        *,
        description: str | None = None,
        rgba_color_code: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        payload = {"alias": alias, "description": description, "rgba_color_code": rgba_color_code}
        call = self._endpoints.create_tag(
            {k: v for k, v in payload.items() if v is not None}, idempotency_key
        )
        return self._record(call)

    # -- invoice side records (lazy, page by page, like list_invoices) -----------------------------------

    def list_receipts(self, **filters: Any) -> Iterator[dict[str, Any]]:
        return self._iterate("receipts", filters)

    def get_receipt(self, receipt_id: str, include: Include = None) -> dict[str, Any]:
        return self._record(self._endpoints.get_record("receipts", receipt_id, include))

    def list_notification_logs(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """The invoices' sent notifications (e-mails, reminders); filters ``organization_invoice_id``,
        ``types``, ``created_at_from``/``_to``."""
        return self._iterate("invoices/notification-logs", filters)

    def list_charge_logs(self, **filters: Any) -> Iterator[dict[str, Any]]:
        return self._iterate("invoices/charge-logs", filters)

    def scheduled_reminders(self, **filters: Any) -> Page:
        """The reminders still to come in a window (``from``, ``to``, ``type``, ``organization_invoice_id``);
        one answer, no pages: ``meta`` holds the window actually walked (``from``, ``to``, ``count``)."""
        return Page.from_response(self._call(self._endpoints.scheduled_reminders(filters)))

    def list_event_trails(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Invoice audit entries (``subject_id``, ``event_type``, ``origin``, ``occurred_from``/``_to``).
        Pass ``order="asc"`` to read the log oldest first, as change capture does."""
        return self._iterate("invoices/event-trails", filters)

    def list_event_trails_page(
        self, *, page: int = 1, per_page: int = core.DEFAULT_PER_PAGE, **filters: Any
    ) -> Page:
        return self._list_page("invoices/event-trails", page, per_page, filters)

    def get_event_trail(self, trail_id: str, include: Include = None) -> dict[str, Any]:
        return self._record(self._endpoints.get_record("invoices/event-trails", trail_id, include))

    def list_network_exchanges(self, **filters: Any) -> Iterator[dict[str, Any]]:
        return self._iterate("invoices/network-exchanges", filters)

    # -- customers, catalogue, organization -----------------------------------------------------------

    def list_customers(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Organization users (customers and senders), §6.4 filters."""
        return self._iterate("users", filters)

    def get_customer(self, customer_id: str, include: Include = None) -> dict[str, Any]:
        return self._record(self._endpoints.get_customer(customer_id, include))

    def find_customer_by_email(self, email: str, include: Include = None) -> dict[str, Any] | None:
        """The organization user with this email (case-insensitive), or None; ``include`` as for get_customer."""
        wanted = email.strip().lower()
        for user in self.list_customers(email=email.strip(), include=include):
            if str(user.get("email") or "").lower() == wanted:
                return user
        return None

    def list_products(self, **filters: Any) -> Iterator[dict[str, Any]]:
        return self._iterate("products", filters)

    def list_tax_classes(self, **filters: Any) -> Iterator[dict[str, Any]]:
        return self._iterate("tax-classes", filters)

    def list_tax_rates(self, **filters: Any) -> Iterator[dict[str, Any]]:
        return self._iterate("tax-rates", filters)

    def list_invoice_prefixes(self, **filters: Any) -> Iterator[dict[str, Any]]:
        return self._iterate("invoice-prefixes", filters)

    def get_organization(self) -> dict[str, Any]:
        return self._record(self._endpoints.get_organization())
