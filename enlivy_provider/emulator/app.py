"""The emulator's public API routes (FastAPI) and :func:`create_app`, which stacks the middlewares.

Envelopes follow the public API page (enlivy-api.md §4): create answers 201 with the record unwrapped;
GET one, PUT, DELETE, restore answer ``{"data": record}``; lists ``{"data": [...], "meta": {...}}``.
Request bodies are parsed here with ``json.loads(parse_float=Decimal)``, never by FastAPI. Fixed path
segments (``restore``) are registered before ``/invoices/{id}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from enlivy_provider.emulator.admin import admin_router
from enlivy_provider.emulator.catalog_rules import build_product, build_user
from enlivy_provider.emulator.common import ApiError, not_found, validation_error
from enlivy_provider.emulator.faults import ASGIApp, ChaosMiddleware
from enlivy_provider.emulator.idempotency import IdempotencyMiddleware
from enlivy_provider.emulator.listing import (
    QueryParams,
    filter_records,
    pagination_meta,
    parse_includes,
    parse_invoice_list,
)
from enlivy_provider.emulator.pdf import pdf_bytes
from enlivy_provider.emulator.resources import render_invoice, render_record
from enlivy_provider.emulator.state import EmulatorState
from enlivy_provider.emulator.store import Store
from enlivy_provider.emulator.web import json_response, read_json, state_of
from enlivy_provider.invoices.totals import CENT

ORG = "/organizations/{org}"
# Includes always present in create/update answers (the public page's POST/PUT examples show line items).
WRITE_DEFAULT_INCLUDES = ("line_items",)
# URL segment -> record kind, for the read-only (and user/product create) resources.
CATALOG = {
    "users": "organization_user",
    "products": "product",
    "tax-classes": "tax_class",
    "tax-rates": "tax_rate",
    "invoice-prefixes": "invoice_prefix",
    "bank-accounts": "bank_account",
}


def authorize(request: Request, org: str | None = None) -> str:
    """The bearer token; 401 when missing/unknown, 403 when it does not belong to ``org``."""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    organizations = state_of(request).store.token_organizations(token) if token else None
    if organizations is None:
        raise ApiError(401, "Unauthenticated.")
    if org is not None and org not in organizations:
        raise ApiError(403, "This action is unauthorized.")
    return token


def _includes(kind: str, request: Request, body: dict[str, Any] | None = None) -> list[str]:
    errors: dict[str, list[str]] = {}
    raw: Any = body.get("include") if body and "include" in body else None
    if raw is None and "include" in request.query_params:
        raw = QueryParams(request.query_params.multi_items()).many("include")
    names = parse_includes(kind, raw, errors)
    if errors:
        raise validation_error(errors)
    return names


def _with_defaults(names: list[str]) -> list[str]:
    return [*WRITE_DEFAULT_INCLUDES, *(n for n in names if n not in WRITE_DEFAULT_INCLUDES)]


def register_invoice_routes(app: FastAPI) -> None:
    @app.get(ORG + "/invoices")
    async def list_invoices(request: Request, org: str) -> Response:
        authorize(request, org)
        state = state_of(request)
        params = QueryParams(request.query_params.multi_items())
        query, listing = parse_invoice_list(org, params)
        invoices, total = state.store.query_invoices(
            query, limit=listing.per_page, offset=(listing.page - 1) * listing.per_page
        )
        meta = pagination_meta(total, len(invoices), listing, str(request.url.replace(query=None)), params)
        if "navigation" in listing.include_meta:
            meta["navigation"] = {
                "active": state.store.count_invoices(org, deleted=False),
                "trash": state.store.count_invoices(org, deleted=True),
            }
        if "totals" in listing.include_meta:
            sums = state.store.invoice_sums(query)
            meta["totals"] = {
                currency: {
                    "count": values["count"],
                    **{k: (CENT * v) for k, v in values.items() if k != "count"},
                }
                for currency, values in sums.items()
            }
        data = [render_invoice(state.store, invoice, listing.includes) for invoice in invoices]
        return json_response({"data": data, "meta": meta})

    @app.post(ORG + "/invoices")
    async def create_invoice(request: Request, org: str) -> Response:
        authorize(request, org)
        body = await read_json(request)
        includes = _includes("invoice", request, body)
        state = state_of(request)
        invoice = state.invoices.create(org, body)
        return json_response(render_invoice(state.store, invoice, _with_defaults(includes)), 201)

    @app.post(ORG + "/invoices/restore/{id}")
    async def restore_invoice(request: Request, org: str, id: str) -> Response:
        authorize(request, org)
        state = state_of(request)
        invoice = state.invoices.restore(org, id)
        return json_response({"data": render_invoice(state.store, invoice, _includes("invoice", request))})

    @app.get(ORG + "/invoices/{id}")
    async def get_invoice(request: Request, org: str, id: str) -> Response:
        authorize(request, org)
        state = state_of(request)
        invoice = state.invoices.get(org, id)
        return json_response({"data": render_invoice(state.store, invoice, _includes("invoice", request))})

    @app.put(ORG + "/invoices/{id}")
    async def update_invoice(request: Request, org: str, id: str) -> Response:
        authorize(request, org)
        body = await read_json(request)
        includes = _includes("invoice", request, body)
        state = state_of(request)
        invoice = state.invoices.update(org, id, body)
        return json_response({"data": render_invoice(state.store, invoice, _with_defaults(includes))})

    @app.delete(ORG + "/invoices/{id}")
    async def delete_invoice(request: Request, org: str, id: str) -> Response:
        authorize(request, org)
        state = state_of(request)
        invoice = state.invoices.delete(org, id)
        return json_response({"data": render_invoice(state.store, invoice, _includes("invoice", request))})

    @app.post(ORG + "/invoices/{id}/email")
    async def email_invoice(request: Request, org: str, id: str) -> Response:
        authorize(request, org)
        body = await read_json(request)
        return json_response({"data": state_of(request).invoices.email(org, id, body)})

    @app.get(ORG + "/invoices/{id}/download")
    async def download_invoice(request: Request, org: str, id: str) -> Response:
        authorize(request, org)
        invoice = state_of(request).invoices.get(org, id, allow_deleted=False)
        name = invoice.get("formatted_number") or invoice["id"]
        return Response(
            pdf_bytes(invoice),
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'},
        )


def register_catalog_routes(app: FastAPI) -> None:
    def role_flags(store: Store) -> Any:
        def flags(user: dict[str, Any]) -> dict[str, Any]:
            return store.get_record("user_role", user.get("organization_user_role_id") or "") or {}

        return flags

    for segment, kind in CATALOG.items():

        async def list_records(request: Request, org: str, kind: str = kind) -> Response:
            authorize(request, org)
            store = state_of(request).store
            params = QueryParams(request.query_params.multi_items())
            records, listing = filter_records(kind, store.list_records(kind, org), params, role_flags(store))
            start = (listing.page - 1) * listing.per_page
            page = records[start : start + listing.per_page]
            meta = pagination_meta(
                len(records), len(page), listing, str(request.url.replace(query=None)), params
            )
            return json_response(
                {"data": [render_record(store, kind, r, listing.includes) for r in page], "meta": meta}
            )

        async def get_record(request: Request, org: str, id: str, kind: str = kind) -> Response:
            authorize(request, org)
            store = state_of(request).store
            record = store.get_record(kind, id, org)
            if record is None:
                raise not_found(kind.replace("_", " "))
            return json_response({"data": render_record(store, kind, record, _includes(kind, request))})

        app.add_api_route(f"{ORG}/{segment}", list_records, methods=["GET"], name=f"list_{kind}")
        app.add_api_route(f"{ORG}/{segment}/{{id}}", get_record, methods=["GET"], name=f"get_{kind}")

    async def create_user(request: Request, org: str) -> Response:
        authorize(request, org)
        body = await read_json(request)
        store = state_of(request).store
        record = build_user(store, org, body)
        store.put_record("organization_user", record)
        return json_response(
            render_record(store, "organization_user", record, _includes("organization_user", request, body)),
            201,
        )

    async def create_product(request: Request, org: str) -> Response:
        authorize(request, org)
        body = await read_json(request)
        store = state_of(request).store
        record = build_product(store, org, body)
        store.put_record("product", record)
        return json_response(
            render_record(store, "product", record, _includes("product", request, body)), 201
        )

    app.add_api_route(f"{ORG}/users", create_user, methods=["POST"], name="create_user")
    app.add_api_route(f"{ORG}/products", create_product, methods=["POST"], name="create_product")


def register_account_routes(app: FastAPI) -> None:
    @app.post("/authentication/login")
    async def login(request: Request) -> Response:
        body = await read_json(request)
        errors: dict[str, list[str]] = {}
        for field in ("email", "password"):
            if not isinstance(body.get(field), str) or not body.get(field):
                errors[field] = [f"The {field} field is required."]
        if errors:
            raise validation_error(errors)
        token = state_of(request).store.login(body["email"], body["password"])
        if token is None:
            raise validation_error({"email": ["These credentials do not match our records."]})
        return json_response({"token": token})

    @app.get("/organizations/{org}")
    async def get_organization(request: Request, org: str) -> Response:
        authorize(request, org)
        record = state_of(request).store.get_record("organization", org)
        if record is None:
            raise not_found("organization")
        return json_response({"data": record})


def create_app(state: EmulatorState) -> ASGIApp:
    """The full ASGI app: chaos (counters, latency, rate limit, faults) → idempotency → FastAPI routes."""
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
        message = {404: "Not Found.", 405: "Method Not Allowed."}.get(exc.status_code, str(exc.detail))
        return json_response({"message": message}, exc.status_code)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        return json_response({"message": f"Server Error: {type(exc).__name__}: {exc}"}, 500)

    app.include_router(admin_router)
    register_account_routes(app)
    register_invoice_routes(app)
    register_catalog_routes(app)
    return ChaosMiddleware(IdempotencyMiddleware(app, state.store), app, state)
