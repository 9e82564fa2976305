"""Fault injection for tests and benchmarks: latency, rate limit (429 + Retry-After) and scripted faults.

:class:`ChaosMiddleware` wraps the whole ASGI app. For every non-admin request it, in order: counts the
request under its route template, sleeps ``latency_ms`` (``asyncio.sleep``, so concurrent requests
overlap), applies ``--auto-pay-after``, enforces the rate limit, then applies the first matching scripted
fault. ``drop_after_commit`` lets the request run to completion (the write is committed, idempotency key
stored) and then cuts the connection without sending any of the answer; ``drop_before_commit`` cuts it
without running the request. Clients see a connection-level error (``requests.ConnectionError``,
``httpx.RemoteProtocolError``), never an HTTP status.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import itertools
import math
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from starlette.routing import BaseRoute, Match

from enlivy_provider.emulator.common import new_id
from enlivy_provider.emulator.jsonio import dumps

if TYPE_CHECKING:
    from fastapi import APIRouter

    from enlivy_provider.emulator.state import EmulatorState

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ACTIONS = ("error", "rate_limit", "delay", "drop_after_commit", "drop_before_commit", "barrier")
BARRIER_TIMEOUT_MS = 30_000
ADMIN_PREFIX = "/_emulator"


@dataclass
class Fault:
    id: str
    method: str
    path: str
    action: str
    status: int | None
    retry_after: int | None
    delay_ms: int | None
    times: int  # remaining
    hits: int = 0
    parties: int | None = None  # barrier: how many requests are held until they can go on together
    # ``error`` only: the answer's JSON body and extra headers, with ``{token}`` / ``{token_secret}`` filled
    # from the request's bearer token — to test that clients keep a server's echo of it out of sight.
    body: dict[str, Any] | None = None
    headers: dict[str, str] | None = None
    # Optional glob on the decoded query string (``ids=a,b&deleted=-1``): a fault for one request among
    # many on the same path, e.g. the list call of one batch of ids (``*org_inv_abc*``).
    query: str | None = None

    def matches(self, method: str, path: str, query: str = "") -> bool:
        return (
            self.times > 0
            and self.method in ("*", method)
            and fnmatch.fnmatchcase(path, self.path)
            and (self.query is None or fnmatch.fnmatchcase(query, self.query))
        )


class FaultBook:
    """Scripted faults; each matching request uses up one of a fault's ``times``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, spec: dict[str, Any]) -> Fault:
        """Validate and add; raises ``ValueError`` with ``{field: [messages]}`` as its argument."""
        errors: dict[str, list[str]] = {}
        method = str(spec.get("method", "*")).upper()
        path = spec.get("path")
        action = spec.get("action")
        query = spec.get("query")
        if not isinstance(path, str) or not path.startswith("/"):
            errors["path"] = ["The path must be a glob starting with '/'."]
        if query is not None and (not isinstance(query, str) or not query):
            errors["query"] = ["The query must be a non-empty glob on the decoded query string."]
        if action not in ACTIONS:
            errors["action"] = [f"The action must be one of {', '.join(ACTIONS)}."]
        values: dict[str, int | None] = {}
        for name, default in (
            ("status", 503 if action == "error" else None),
            ("retry_after", 1),
            ("delay_ms", BARRIER_TIMEOUT_MS if action == "barrier" else 0),
            ("parties", 2 if action == "barrier" else None),
        ):
            raw = spec.get(name, default)
            if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int) or raw < 0):
                errors[name] = [f"The {name} must be a non-negative integer."]
            values[name] = raw
        status = values["status"]
        if action == "error" and status is not None and not 400 <= status <= 599:
            errors["status"] = ["The status must be an HTTP error status (400-599)."]
        if action == "barrier" and isinstance(values["parties"], int) and values["parties"] < 2:
            errors["parties"] = ["A barrier needs at least 2 parties."]
        times = spec.get("times", (values["parties"] or 2) if action == "barrier" else 1)
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            errors["times"] = ["The times must be a positive integer."]
        body, headers = spec.get("body"), spec.get("headers")
        if body is not None and (action != "error" or not isinstance(body, dict)):
            errors["body"] = ["The body must be a JSON object, for the error action."]
        if headers is not None and (
            action != "error"
            or not isinstance(headers, dict)
            or not all(isinstance(v, str) for v in headers.values())
        ):
            errors["headers"] = ["The headers must be an object of strings, for the error action."]
        if errors:
            raise ValueError(errors)
        fault = Fault(
            id=f"fault_{next(self._ids)}",
            method=method,
            path=str(path),
            action=str(action),
            status=status,
            retry_after=values["retry_after"],
            delay_ms=values["delay_ms"],
            times=int(times),
            parties=values["parties"],
            body=body,
            headers=headers,
            query=query,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str, query: str = "") -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path, query):
                    fault.times -= 1
                    fault.hits += 1
                    return fault
        return None

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(fault) for fault in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


class RateLimiter:
    """Token bucket: ``rate`` requests per second, bursts up to ``max(1, rate)``; ``None`` = unlimited."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._capacity = max(1.0, rate or 0.0)
        self._tokens = self._capacity
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> int | None:
        """``None`` when allowed, otherwise the seconds to wait (for ``Retry-After``)."""
        if self.rate is None:
            return None
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return None
            return max(1, math.ceil((1 - self._tokens) / self.rate))


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    payload = dumps(body).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


async def drop_connection(send: Send) -> None:
    """Cut the connection without a complete answer.

    Under uvicorn the server's transport is closed before anything is written, so the client sees the
    connection end with no response at all. Elsewhere: a response head announcing a body that never comes.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None and hasattr(transport, "close"):
        transport.close()
        await asyncio.sleep(0.01)  # let the server notice the disconnect before the app returns
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
        }
    )
    await send({"type": "http.response.body", "body": b"{", "more_body": True})


def _bearer_token(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            text = bytes(value).decode("latin-1")
            return text[7:] if text[:7].lower() == "bearer " else text
    return ""


def fill_token(value: Any, token: str) -> Any:
    """``value`` with ``{token}`` and ``{token_secret}`` (the part after ``N|``) replaced in every string."""
    if isinstance(value, str):
        return value.replace("{token}", token).replace("{token_secret}", token.split("|", 1)[-1])
    if isinstance(value, dict):
        return {key: fill_token(item, token) for key, item in value.items()}
    if isinstance(value, list):
        return [fill_token(item, token) for item in value]
    return value


def decoded_query(scope: Scope) -> str:
    """The request's query string, percent-decoded (``ids=a,b&page=1``): what fault globs and the request log
    see."""
    return unquote_plus(bytes(scope.get("query_string", b"")).decode("latin-1"))


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The path template of the route that serves this request (the raw path when none does).

    ``routes`` is a flat list of the app's routes (:func:`flat_routes`): each is matched on its own with
    Starlette's ``Route.matches``.
    """
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return str(getattr(route, "path", scope["path"]))
        if match == Match.PARTIAL and partial is None:
            partial = str(getattr(route, "path", scope["path"]))
    return partial or str(scope["path"])


def flat_routes(routers: Sequence[APIRouter]) -> list[BaseRoute]:
    """The routes of ``routers`` (the app includes them without a prefix), in inclusion order.

    Not ``app.router.routes``: FastAPI 0.136 copies an included router's routes into it, 0.165 and later
    keep one wrapper per included router there, without a ``path`` (counters went by raw paths).
    The app's own routes (its docs pages) are under the admin prefix, which is not counted.
    """
    return [route for router in routers for route in router.routes]


class Barriers:
    """Hold answers until ``parties`` requests have been answered, then send them together: a race made certain.

    Used by a ``barrier`` fault; the server runs one event loop, so asyncio primitives serialise it. A party
    waits at most ``delay_ms`` (default 30 s), then goes on alone, so a test that got it wrong fails rather
    than hangs.
    """

    def __init__(self) -> None:
        self._arrived: dict[str, int] = {}
        self._released: dict[str, asyncio.Event] = {}

    async def wait(self, fault: Fault) -> None:
        released = self._released.setdefault(fault.id, asyncio.Event())
        self._arrived[fault.id] = self._arrived.get(fault.id, 0) + 1
        if self._arrived[fault.id] % (fault.parties or 2) == 0:
            released.set()
            self._released[fault.id] = asyncio.Event()  # the next group waits afresh
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(released.wait(), (fault.delay_ms or BARRIER_TIMEOUT_MS) / 1000)


class ChaosMiddleware:
    def __init__(self, inner: ASGIApp, routes: Sequence[BaseRoute], state: EmulatorState) -> None:
        self.inner = inner
        self.routes = routes
        self.state = state
        self.barriers = Barriers()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.inner(scope, receive, send)
            return
        self.state.counters.hit(
            scope["method"], route_template(self.routes, scope), scope["path"], decoded_query(scope)
        )
        try:
            await self._handle(scope, receive, send)
        finally:
            self.state.counters.done(scope["method"], scope["path"])

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state
        method, path = scope["method"], scope["path"]
        request_id = new_id("req").encode()

        async def answer(message: Message) -> None:
            """Every API answer carries ``X-Request-Id`` (the SDK reads it)."""
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id)]}
            await send(message)

        if state.config.latency_ms:
            await asyncio.sleep(state.config.latency_ms / 1000)
        if state.config.auto_pay_after is not None:
            state.invoices.auto_pay(state.config.auto_pay_after)
        wait = state.rate_limiter.acquire()
        if wait is not None:
            state.counters.limited()
            await send_json(answer, 429, {"message": "Too Many Attempts."}, {"Retry-After": str(wait)})
            return
        fault = state.faults.take(method, path, decoded_query(scope))
        if fault is not None:
            if fault.delay_ms and fault.action != "barrier":
                # Every action may be held first (for ``barrier`` the value is its timeout instead): a
                # ``drop_after_commit`` held while a customer pays makes "our write overwrote a payment and
                # its answer was lost" certain.
                await asyncio.sleep(fault.delay_ms / 1000)
            if fault.action == "error":
                status = fault.status or 503
                token = _bearer_token(scope)
                body = fill_token(fault.body, token) if fault.body else None
                headers = fill_token(fault.headers, token) if fault.headers else None
                await send_json(
                    answer, status, body or {"message": f"Injected fault: HTTP {status}."}, headers
                )
                return
            if fault.action == "rate_limit":
                state.counters.limited()
                headers = {"Retry-After": str(fault.retry_after if fault.retry_after is not None else 1)}
                await send_json(answer, 429, {"message": "Too Many Attempts."}, headers)
                return
            if fault.action == "barrier":
                # The answer is computed first and held: every party's answer reflects the state before any
                # of them could act on it (e.g. both lookups say "no invoice" before either run creates one).
                held: list[Message] = []

                async def hold(message: Message) -> None:
                    held.append(message)

                await self.inner(scope, receive, hold)
                await self.barriers.wait(fault)
                for message in held:
                    await answer(message)
                return
            elif fault.action == "drop_before_commit":
                await drop_connection(send)  # the server's own send: it knows the transport
                return
            elif fault.action == "drop_after_commit":

                async def swallow(message: Message) -> None:
                    return None

                await self.inner(scope, receive, swallow)
                await drop_connection(send)
                return
        await self.inner(scope, receive, answer)
