"""Read-only invoice side lists (docs/enlivy-api-notes.md §8): event trails, charge logs, notification logs, scheduled
reminders, network exchanges, and receipts.

Every ``/invoices/<fixed segment>`` route here must be registered before ``invoice_routes``'
``GET /invoices/{id}``, which would otherwise take ``event-trails`` for an invoice id (app.py does so).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from enlivy_provider.emulator import reminders
from enlivy_provider.emulator.common import not_found, validation_error
from enlivy_provider.emulator.dates import range_bounds
from enlivy_provider.emulator.invoice_logs import (
    CHARGE_LOGS,
    NETWORK_EXCHANGES,
    NOTIFICATION_LOGS,
    exchange_predicates,
    notification_log,
    render_charge_log,
    render_network_exchange,
    render_notification_log,
)
from enlivy_provider.emulator.listing import (
    INCLUDES,
    RESOURCE_FILTERS,
    QueryParams,
    pagination_meta,
    parse_common,
    refuse_unimplemented,
)
from enlivy_provider.emulator.receipts import RECEIPTS, render_receipt
from enlivy_provider.emulator.record_lists import ListSpec, Predicate, page_response, select
from enlivy_provider.emulator.store import Store
from enlivy_provider.emulator.trails import EVENT_TYPES, ORIGINS, TrailQuery, render_trail
from enlivy_provider.emulator.web import ORG, authorize, includes_of, json_response, state_of

log_router = APIRouter()
Render = Callable[[Store, dict[str, Any], list[str]], dict[str, Any]]

# HasEventTrails::EVENT_TRAIL_INCLUDES and its filters (listing.py checks both kinds of names per kind).
INCLUDES["event_trail"] = frozenset({"changes", "actor_organization_user", "charge_log"})
RESOURCE_FILTERS["event_trail"] = frozenset(
    {"subject_id", "event_type", "origin", "occurred_from", "occurred_to"}
)
# Global filters the trail table cannot answer: refused, never ignored.
TRAIL_REFUSED = {"q_in": "the trail searches whole entries", "tag_ids": "event trails carry no tags"}
TRAIL_ORDERABLE = frozenset({"created_at", "occurred_at", "id"})  # all the same order: the log's sequence


# -- event trails ------------------------------------------------------------------------------------------


def _trail_query(org: str, params: QueryParams) -> tuple[TrailQuery, Any]:
    errors: dict[str, list[str]] = {}
    listing = parse_common("event_trail", params, errors, TRAIL_ORDERABLE)
    refuse_unimplemented(params, TRAIL_REFUSED, errors)
    query = TrailQuery(organization_id=org, ids=listing.ids, q=listing.q, order=listing.order)
    if params.has("subject_id"):
        query.subject_ids = params.many("subject_id") or None
    for name, allowed, attribute in (
        ("event_type", EVENT_TYPES, "event_types"),
        ("origin", ORIGINS, "origins"),
    ):
        if params.has(name):
            values = params.many(name)
            if not values or any(v not in allowed for v in values):
                errors.setdefault(name, []).append(f"The selected {name} is invalid.")
            setattr(query, attribute, values)
    start, end = params.one("occurred_from"), params.one("occurred_to")
    if start is not None or end is not None:
        bounds = range_bounds(start, end) if start is not None and end is not None else None
        if bounds is None or bounds[0] > bounds[1]:
            errors.setdefault("occurred_from", []).append(
                "occurred_from and occurred_to go together: dates or ISO 8601 datetimes, from <= to."
            )
        else:
            query.occurred = bounds
    if errors:
        raise validation_error(errors)
    return query, listing


@log_router.get(ORG + "/invoices/event-trails")
async def list_event_trails(request: Request, org: str) -> Response:
    authorize(request, org)
    state = state_of(request)
    params = QueryParams(request.query_params.multi_items())
    query, listing = _trail_query(org, params)
    trails, total = state.trails.query(
        query, limit=listing.per_page, offset=(listing.page - 1) * listing.per_page
    )
    meta = pagination_meta(total, len(trails), listing, str(request.url.replace(query=None)), params)
    data = [render_trail(state.store, trail, listing.includes) for trail in trails]
    return json_response({"data": data, "meta": meta})


@log_router.get(ORG + "/invoices/event-trails/{id}")
async def get_event_trail(request: Request, org: str, id: str) -> Response:
    authorize(request, org)
    state = state_of(request)
    includes = includes_of("event_trail", request)
    return json_response({"data": render_trail(state.store, state.trails.get(org, id), includes)})


# -- record lists ------------------------------------------------------------------------------------------


def _records(store: Store, spec: ListSpec, org: str) -> list[dict[str, Any]]:
    if spec is NOTIFICATION_LOGS:
        return [notification_log(store, email) for email in store.list_records("email", org)]
    return store.list_records(spec.kind, org)


def _lister(
    spec: ListSpec, render: Render, extra: Callable[[Store, QueryParams], list[Predicate]] | None = None
) -> Any:
    async def list_records(request: Request, org: str) -> Response:
        authorize(request, org)
        store = state_of(request).store
        params = QueryParams(request.query_params.multi_items())
        predicates = extra(store, params) if extra else []
        records, listing = select(spec, _records(store, spec, org), params, predicates)
        return page_response(request, records, listing, params, lambda r, inc: render(store, r, inc))

    return list_records


def _getter(spec: ListSpec, render: Render, what: str) -> Any:
    async def get_record(request: Request, org: str, id: str) -> Response:
        authorize(request, org)
        store = state_of(request).store
        includes = includes_of(spec.kind, request)
        record = next((r for r in _records(store, spec, org) if r["id"] == id), None)
        if record is None:
            raise not_found(what)
        return json_response({"data": render(store, record, includes)})

    return get_record


for path, spec, render, what, extra in (
    ("/invoices/charge-logs", CHARGE_LOGS, render_charge_log, "charge log", None),
    ("/invoices/notification-logs", NOTIFICATION_LOGS, render_notification_log, "notification log", None),
    ("/invoices/network-exchanges", NETWORK_EXCHANGES, render_network_exchange, "network exchange",
     exchange_predicates),
    ("/receipts", RECEIPTS, render_receipt, "receipt", None),
):  # fmt: skip
    log_router.add_api_route(
        ORG + path, _lister(spec, render, extra), methods=["GET"], name=f"list_{spec.kind}"
    )
    log_router.add_api_route(
        ORG + path + "/{id}", _getter(spec, render, what), methods=["GET"], name=f"get_{spec.kind}"
    )


@log_router.get(ORG + "/invoices/scheduled-reminders")
async def scheduled_reminders(request: Request, org: str) -> Response:
    authorize(request, org)
    params = QueryParams(request.query_params.multi_items())
    rows, meta = reminders.project(state_of(request).store, org, params)
    return json_response({"data": rows, "meta": meta})
