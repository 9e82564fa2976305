"""AsyncEnlivyClient: the asyncio client (for triggers), on one ``httpx.AsyncClient``.

Same rules as the blocking client — it sends what ``endpoints`` builds and lets ``core.Attempts`` decide
about retries — only the transport and the sleeping are async.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import httpx

from enlivy_provider.client import core
from enlivy_provider.client.base import BaseEnlivyClient
from enlivy_provider.client.core import ApiResponse, Page, PreparedRequest
from enlivy_provider.client.endpoints import Call

Include = str | Iterable[str] | None


class AsyncEnlivyClient(BaseEnlivyClient):
    """Asyncio Enlivy API client; use ``async with`` or ``await client.aclose()``.

    Arguments: see ``BaseEnlivyClient``; ``on_token`` may be a coroutine function.
    """

    def _open_transport(self, pool_maxsize: int) -> None:
        self._login_lock = asyncio.Lock()
        connect, read = self._settings.timeout
        self._http = httpx.AsyncClient(
            headers=core.BASE_HEADERS,
            timeout=httpx.Timeout(read, connect=connect),
            verify=self._settings.verify,
            limits=httpx.Limits(max_connections=pool_maxsize, max_keepalive_connections=pool_maxsize),
            follow_redirects=False,
        )

    def _use_token(self, token: str) -> None:
        self._http.headers.update(core.auth_header(token))

    async def __aenter__(self) -> AsyncEnlivyClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- transport ------------------------------------------------------------------------------------

    async def _send(self, prepared: PreparedRequest) -> ApiResponse:
        attempts = core.Attempts(prepared, self._settings.policy, self._secrets())
        url = self._settings.base_url + prepared.path
        while True:
            try:
                raw = await self._http.request(
                    prepared.method,
                    url,
                    params=tuple(prepared.query) or None,
                    content=prepared.body,
                    headers=prepared.headers,
                )
                step = attempts.on_response(raw.status_code, raw.headers, raw.content)
            except httpx.TransportError as exc:  # includes timeouts and a response cut short
                step = attempts.on_transport_error(exc)
            if step.delay is None:
                return step.result()
            await asyncio.sleep(step.delay)

    async def _ensure_token(self) -> None:
        if self._token:
            return
        async with self._login_lock:
            if self._token:
                return
            response = await self._send(self._login_request())
            token = core.token_from_login(response)
            if self._on_token is not None:
                result = self._on_token(token)
                if inspect.isawaitable(result):
                    await result
            self._use_token(token)
            self._token = token

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
    ) -> ApiResponse:
        await self._ensure_token()
        prepared = core.prepare(method, path, params=params, json=json, idempotency_key=idempotency_key)
        return await self._send(prepared)

    async def _call(self, call: Call) -> ApiResponse:
        return await self.request(
            call.method, call.path, params=call.params, json=call.json, idempotency_key=call.idempotency_key
        )

    async def _record(self, call: Call) -> dict[str, Any]:
        data: dict[str, Any] = (await self._call(call)).data
        return data

    # -- lists ----------------------------------------------------------------------------------------

    async def _list_page(self, resource: str, page: int, per_page: int, filters: Mapping[str, Any]) -> Page:
        call = self._endpoints.list_page(resource, page=page, per_page=per_page, filters=filters)
        return Page.from_response(await self._call(call))

    def _iterate(self, resource: str, filters: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Lazy async iterator over every page (filters checked now, at the call)."""
        page, per_page, rest = self._endpoints.walk(resource, filters)
        return self._pages(resource, page, per_page, rest)

    async def _pages(
        self, resource: str, page: int, per_page: int, filters: Mapping[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        next_page: int | None = page
        while next_page is not None:
            result = await self._list_page(resource, next_page, per_page, filters)
            for item in result.items:
                yield item
            next_page = core.next_page(result.meta, next_page)

    # -- operations -----------------------------------------------------------------------------------

    async def list_invoices_page(
        self, *, page: int = 1, per_page: int = core.DEFAULT_PER_PAGE, **filters: Any
    ) -> Page:
        return await self._list_page("invoices", page, per_page, filters)

    def iter_invoices(self, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        """Every invoice matching ``filters``, page by page (``async for``). Filters are checked now."""
        return self._iterate("invoices", filters)

    async def get_invoice(self, invoice_id: str, include: Include = None) -> dict[str, Any]:
        return await self._record(self._endpoints.get_invoice(invoice_id, include))

    async def create_invoice(
        self, payload: Mapping[str, Any], *, idempotency_key: str | None = None, include: Include = None
    ) -> dict[str, Any]:
        return await self._record(self._endpoints.create_invoice(payload, idempotency_key, include))

    async def update_invoice(
        self,
        invoice_id: str,
        payload: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        include: Include = None,
    ) -> dict[str, Any]:
        return await self._record(
            self._endpoints.update_invoice(invoice_id, payload, idempotency_key, include)
        )

    # -- invoice actions (the blocking client's rules; see EnlivyClient) --------------------------------

    async def charge_invoice(
        self, invoice_id: str, *, idempotency_key: str | None = None, include: Include = None
    ) -> core.ChargeAnswer:
        call = self._endpoints.charge_invoice(invoice_id, idempotency_key, include)
        return core.ChargeAnswer.from_response(await self._call(call))

    async def refund_invoice(
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
        options = {
            "reason": reason,
            "note_lang_map": note_lang_map,
            "organization_invoice_prefix_id": organization_invoice_prefix_id,
        }
        return await self._record(
            self._endpoints.refund_invoice(invoice_id, line_items, options, idempotency_key, include)
        )

    async def issue_invoice(
        self,
        proforma_id: str,
        *,
        organization_invoice_prefix_id: str | None = None,
        idempotency_key: str | None = None,
        include: Include = None,
    ) -> dict[str, Any]:
        call = self._endpoints.issue_invoice(
            proforma_id, organization_invoice_prefix_id, idempotency_key, include
        )
        return await self._record(call)

    async def issue_receipt(self, invoice_id: str, *, idempotency_key: str | None = None) -> dict[str, Any]:
        return await self._record(self._endpoints.issue_receipt(invoice_id, idempotency_key))

    async def tag_invoice(
        self, invoice_id: str, tag_id: str, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        return await self._record(self._endpoints.tag_invoice(invoice_id, tag_id, idempotency_key))

    async def untag_invoice(
        self, invoice_id: str, tag_id: str, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        return await self._record(
            self._endpoints.tag_invoice(invoice_id, tag_id, idempotency_key, remove=True)
        )

    def iter_tags(self, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        return self._iterate("tags", filters)

    async def create_tag(
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
        return await self._record(call)

    # -- invoice side records -------------------------------------------------------------------------

    def iter_receipts(self, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        return self._iterate("receipts", filters)

    async def get_receipt(self, receipt_id: str, include: Include = None) -> dict[str, Any]:
        return await self._record(self._endpoints.get_record("receipts", receipt_id, include))

    def iter_notification_logs(self, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        return self._iterate("invoices/notification-logs", filters)

    def iter_charge_logs(self, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        return self._iterate("invoices/charge-logs", filters)

    async def scheduled_reminders(self, **filters: Any) -> Page:
        return Page.from_response(await self._call(self._endpoints.scheduled_reminders(filters)))

    def iter_event_trails(self, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        return self._iterate("invoices/event-trails", filters)

    async def list_event_trails_page(
        self, *, page: int = 1, per_page: int = core.DEFAULT_PER_PAGE, **filters: Any
    ) -> Page:
        return await self._list_page("invoices/event-trails", page, per_page, filters)

    async def get_event_trail(self, trail_id: str, include: Include = None) -> dict[str, Any]:
        return await self._record(self._endpoints.get_record("invoices/event-trails", trail_id, include))

    def iter_network_exchanges(self, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        return self._iterate("invoices/network-exchanges", filters)

    async def get_customer(self, customer_id: str, include: Include = None) -> dict[str, Any]:
        return await self._record(self._endpoints.get_customer(customer_id, include))

    async def get_organization(self) -> dict[str, Any]:
        return await self._record(self._endpoints.get_organization())
