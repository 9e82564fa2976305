"""The emulator's ASGI app: :func:`create_app` stacks the middlewares over the FastAPI routes.

Envelopes follow the public API page (docs/enlivy-api-notes.md §4); request bodies are parsed by the routes with
``json.loads(parse_float=Decimal)``, never by FastAPI. Errors answer ``{"message": ...}`` (422 adds
``errors``).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from enlivy_provider.emulator import relations  # noqa: F401  (registers the invoice includes it serves)
from enlivy_provider.emulator.action_admin import action_admin_router
from enlivy_provider.emulator.action_routes import action_router
from enlivy_provider.emulator.admin import admin_router
from enlivy_provider.emulator.body import BodyLimitMiddleware
from enlivy_provider.emulator.catalog_routes import catalog_router
from enlivy_provider.emulator.common import ApiError, route_not_found
from enlivy_provider.emulator.event_routes import event_admin_router, event_router
from enlivy_provider.emulator.faults import ASGIApp, ChaosMiddleware, flat_routes
from enlivy_provider.emulator.idempotency import IdempotencyMiddleware
from enlivy_provider.emulator.invoice_page import page_router
from enlivy_provider.emulator.invoice_routes import invoice_router
from enlivy_provider.emulator.log_routes import log_router
from enlivy_provider.emulator.state import EmulatorState
from enlivy_provider.emulator.tag_routes import tag_router
from enlivy_provider.emulator.web import json_response


def create_app(state: EmulatorState) -> ASGIApp:
    """The full ASGI app: chaos (counters, latency, rate limit, faults) → body size limit → idempotency →
    FastAPI routes."""
    app = FastAPI(
        title="Enlivy API emulator",
        docs_url="/_emulator/docs",
        redoc_url=None,
        openapi_url="/_emulator/openapi.json",
    )
    app.state.emulator = state

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return json_response(exc.body(), exc.status, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:  # no route serves the path (a missing record is an ApiError instead)
            missing = route_not_found(request.url.path)
            return json_response(missing.body(), missing.status)
        message = {405: "Method Not Allowed."}.get(exc.status_code, str(exc.detail))
        return json_response({"message": message}, exc.status_code)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
        # The client left before its body arrived: nothing was done, and nobody reads this answer.
        return json_response({"message": "The request body did not arrive completely."}, 400)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        return json_response({"message": f"Server Error: {type(exc).__name__}: {exc}"}, 500)

    # log_router before invoice_router: /invoices/event-trails etc. must not be taken for GET /invoices/{id}.
    routers = (
        admin_router,
        page_router,
        action_admin_router,
        event_admin_router,
        event_router,
        log_router,
        action_router,
        tag_router,
        invoice_router,
        catalog_router,
    )
    for router in routers:
        app.include_router(router)
    return ChaosMiddleware(
        BodyLimitMiddleware(IdempotencyMiddleware(app, state.store, lambda: state.config.replay_header)),
        flat_routes(routers),
        state,
    )
