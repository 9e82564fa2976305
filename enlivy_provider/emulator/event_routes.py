"""Event destination routes (``/organizations/{org}/event-destinations…``, SDK ``EventDestinationService``)
and the admin delivery log (``/_emulator/deliveries…``). Shapes and rules: ``event_destinations.py``;
sending: ``webhook_delivery.py``.

``/event-destinations/subscriptions`` and ``/deliveries`` are registered before ``/{id}``, whose router also
refuses those fixed segments as ids (``web.FIXED_SEGMENTS``).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from fastapi import APIRouter, Request
from starlette.responses import Response

from enlivy_provider.emulator.common import not_found, validation_error
from enlivy_provider.emulator.event_destinations import (
    DELIVERIES,
    DESTINATIONS,
    SUBSCRIPTIONS,
    create_destination,
    delete_destination,
    live_destination,
    public,
    render_destination,
    render_public,
    update_destination,
)
from enlivy_provider.emulator.listing import QueryParams
from enlivy_provider.emulator.record_lists import ListSpec, page_response, select
from enlivy_provider.emulator.web import (
    ORG,
    api_router,
    authorize,
    includes_of,
    json_response,
    read_json,
    state_of,
)
from enlivy_provider.emulator.webhook_delivery import admin_view

event_router = api_router()
event_admin_router = APIRouter(prefix="/_emulator")
BASE = ORG + "/event-destinations"
MAX_WAIT_S = 120.0


def _list(request: Request, org: str, spec: ListSpec) -> Response:
    """One page of the organization's records of ``spec.kind``: global filters (``deleted=0`` by default
    hides deleted destinations and replaced subscriptions) plus the spec's own."""
    store = state_of(request).store
    params = QueryParams(request.query_params.multi_items())
    selected, listing = select(spec, store.list_records(spec.kind, org), params)
    render = render_destination if spec is DESTINATIONS else render_public
    return page_response(request, selected, listing, params, lambda r, inc: render(store, r, inc))


@event_router.get(BASE + "/subscriptions")
async def list_subscriptions(request: Request, org: str) -> Response:
    authorize(request, org)
    return _list(request, org, SUBSCRIPTIONS)


@event_router.get(BASE + "/deliveries")
async def list_deliveries(request: Request, org: str) -> Response:
    authorize(request, org)
    return _list(request, org, DELIVERIES)


@event_router.get(BASE + "/deliveries/{id}")
async def get_delivery(request: Request, org: str, id: str) -> Response:
    authorize(request, org)
    delivery = state_of(request).store.get_record("event_delivery", id, org)
    if delivery is None:
        raise not_found("event delivery")
    return json_response({"data": public(delivery)})


@event_router.get(BASE)
async def list_destinations(request: Request, org: str) -> Response:
    authorize(request, org)
    return _list(request, org, DESTINATIONS)


@event_router.post(BASE)
async def create(request: Request, org: str) -> Response:
    authorize(request, org)
    body = await read_json(request)
    includes = includes_of("event_destination", request, body)
    state = state_of(request)
    destination = create_destination(state.store, org, body)
    # The signing secret is shown once, in this answer (docs/organization/event-destinations.md).
    return json_response(render_destination(state.store, destination, includes, with_secret=True), 201)


@event_router.get(BASE + "/{id}")
async def get_destination(request: Request, org: str, id: str) -> Response:
    authorize(request, org)
    store = state_of(request).store
    includes = includes_of("event_destination", request)
    return json_response({"data": render_destination(store, live_destination(store, org, id), includes)})


@event_router.put(BASE + "/{id}")
async def update(request: Request, org: str, id: str) -> Response:
    authorize(request, org)
    body = await read_json(request)
    includes = includes_of("event_destination", request, body)
    store = state_of(request).store
    return json_response(
        {"data": render_destination(store, update_destination(store, org, id, body), includes)}
    )


@event_router.delete(BASE + "/{id}")
async def delete(request: Request, org: str, id: str) -> Response:
    authorize(request, org)
    store = state_of(request).store
    return json_response({"data": render_destination(store, delete_destination(store, org, id), [])})


# -- admin: the delivery log ------------------------------------------------------------------------------


@event_admin_router.get("/deliveries")
async def delivery_log(request: Request, organization_id: str | None = None) -> Response:
    """Every delivery (oldest first) with the URL, headers and body sent and the answer received."""
    records = state_of(request).store.list_records("event_delivery", organization_id)
    return json_response({"data": [admin_view(r) for r in records]})


@event_admin_router.post("/deliveries/wait")
async def wait_for_deliveries(request: Request) -> Response:
    """``{"timeout": seconds (default 30)}``: answer once every queued delivery was sent, with the log;
    408 when some are still queued after the timeout."""
    body = await read_json(request)
    timeout = body.get("timeout", 30)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, Decimal)) or not 0 < timeout <= MAX_WAIT_S:
        raise validation_error(
            {"timeout": [f"The timeout must be a number of seconds in (0, {MAX_WAIT_S:g}]."]}
        )
    state = state_of(request)
    idle = await asyncio.to_thread(state.webhooks.wait_idle, float(timeout))
    records = state.store.list_records("event_delivery")
    return json_response({"idle": idle, "data": [admin_view(r) for r in records]}, 200 if idle else 408)


@event_admin_router.post("/deliveries/{delivery_id}/redeliver")
async def redeliver(request: Request, delivery_id: str) -> Response:
    """Send the same event (same ``id``, same bytes, same signature) again, as Enlivy's retries would."""
    return json_response(admin_view(state_of(request).webhooks.redeliver(None, delivery_id)), 201)
