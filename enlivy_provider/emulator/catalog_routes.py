"""Login, the organization, and the catalog resources: users (customers), products, tax classes, tax rates,
invoice prefixes, bank accounts — list and retrieve, plus create for users and products."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from starlette.responses import Response

from enlivy_provider.emulator import web
from enlivy_provider.emulator.catalog_rules import build_product, build_user
from enlivy_provider.emulator.common import not_found, validation_error
from enlivy_provider.emulator.listing import MAX_IDS, QueryParams, filter_records, pagination_meta
from enlivy_provider.emulator.resources import render_record
from enlivy_provider.emulator.store import Store
from enlivy_provider.emulator.web import ORG, authorize, includes_of, json_response, read_json, state_of

# URL segment -> record kind, for the read-only (and user/product create) resources.
CATALOG = {
    "users": "organization_user",
    "products": "product",
    "tax-classes": "tax_class",
    "tax-rates": "tax_rate",
    "invoice-prefixes": "invoice_prefix",
    "bank-accounts": "bank_account",
}

catalog_router = web.api_router()


@catalog_router.post("/authentication/login")
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


@catalog_router.get("/organizations/{org}")
async def get_organization(request: Request, org: str) -> Response:
    authorize(request, org)
    record = state_of(request).store.get_record("organization", org)
    if record is None:
        raise not_found("organization")
    return json_response({"data": record})


def role_flags(store: Store) -> Any:
    def flags(user: dict[str, Any]) -> dict[str, Any]:
        return store.get_record("user_role", user.get("organization_user_role_id") or "") or {}

    return flags


def _candidates(store: Store, kind: str, org: str, params: QueryParams) -> list[dict[str, Any]]:
    """The records a list filters: only the named ones under a valid ``ids`` filter (a chunk of a large billing
    run resolves its customers 30 at a time), else all of the organization's. ``q_in`` is checked against the
    fields of all records, so it keeps the full list."""
    ids = params.many("ids")
    if ids and len(ids) <= MAX_IDS and not params.has("q_in"):
        return store.records_by_ids(kind, ids, org)
    return store.list_records(kind, org)


for segment, kind in CATALOG.items():

    async def list_records(request: Request, org: str, kind: str = kind) -> Response:
        authorize(request, org)
        store = state_of(request).store
        params = QueryParams(request.query_params.multi_items())
        records, listing = filter_records(
            kind, _candidates(store, kind, org, params), params, role_flags(store)
        )
        start = (listing.page - 1) * listing.per_page
        page = records[start : start + listing.per_page]
        meta = pagination_meta(len(records), len(page), listing, str(request.url.replace(query=None)), params)
        return json_response(
            {"data": [render_record(store, kind, r, listing.includes) for r in page], "meta": meta}
        )

    async def get_record(request: Request, org: str, id: str, kind: str = kind) -> Response:
        authorize(request, org)
        store = state_of(request).store
        record = store.get_record(kind, id, org)
        if record is None:
            raise not_found(kind.replace("_", " "))
        return json_response({"data": render_record(store, kind, record, includes_of(kind, request))})

    catalog_router.add_api_route(f"{ORG}/{segment}", list_records, methods=["GET"], name=f"list_{kind}")
    catalog_router.add_api_route(f"{ORG}/{segment}/{{id}}", get_record, methods=["GET"], name=f"get_{kind}")


def _creator(kind: str, build: Callable[[Store, str, dict[str, Any]], dict[str, Any]]) -> Any:
    """A POST route: validate and build the record, store it, answer 201 with it unwrapped."""

    async def create(request: Request, org: str) -> Response:
        authorize(request, org)
        body = await read_json(request)
        includes = includes_of(kind, request, body)
        store = state_of(request).store
        record = build(store, org, body)
        store.put_record(kind, record)
        return json_response(render_record(store, kind, record, includes), 201)

    return create


catalog_router.add_api_route(
    f"{ORG}/users", _creator("organization_user", build_user), methods=["POST"], name="create_user"
)
catalog_router.add_api_route(
    f"{ORG}/products", _creator("product", build_product), methods=["POST"], name="create_product"
)
