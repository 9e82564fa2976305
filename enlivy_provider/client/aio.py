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

    # -- operations -----------------------------------------------------------------------------------

    async def list_invoices_page(
        self, *, page: int = 1, per_page: int = core.DEFAULT_PER_PAGE, **filters: Any
    ) -> Page:
        call = self._endpoints.list_page("invoices", page=page, per_page=per_page, filters=filters)
        return Page.from_response(await self._call(call))

    def iter_invoices(self, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        """Every invoice matching ``filters``, page by page (``async for``). Filters are checked now."""
        page, per_page, rest = self._endpoints.walk("invoices", filters)
        return self._pages(page, per_page, rest)

    async def _pages(
        self, page: int, per_page: int, filters: Mapping[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        next_page: int | None = page
        while next_page is not None:
            result = await self.list_invoices_page(page=next_page, per_page=per_page, **filters)
            for item in result.items:
                yield item
            next_page = core.next_page(result.meta, next_page)

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

    async def get_customer(self, customer_id: str, include: Include = None) -> dict[str, Any]:
        return await self._record(self._endpoints.get_customer(customer_id, include))

    async def get_organization(self) -> dict[str, Any]:
        return await self._record(self._endpoints.get_organization())
