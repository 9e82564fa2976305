"""Tags: ``GET /tags`` (global filters only), ``POST /tags`` (201, the tag unwrapped, as the emulator's
other creates), ``GET /tags/{id}``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from enlivy_provider.emulator.common import not_found
from enlivy_provider.emulator.listing import QueryParams
from enlivy_provider.emulator.record_lists import page_response, select
from enlivy_provider.emulator.tagging import TAGS, build_tag, render_tag
from enlivy_provider.emulator.web import ORG, authorize, includes_of, json_response, read_json, state_of

tag_router = APIRouter()


@tag_router.get(ORG + "/tags")
async def list_tags(request: Request, org: str) -> Response:
    authorize(request, org)
    store = state_of(request).store
    params = QueryParams(request.query_params.multi_items())
    tags, listing = select(TAGS, store.list_records("tag", org), params)
    return page_response(request, tags, listing, params, lambda t, inc: render_tag(store, t, inc))


@tag_router.post(ORG + "/tags")
async def create_tag(request: Request, org: str) -> Response:
    authorize(request, org)
    body = await read_json(request)
    includes = includes_of("tag", request, body)
    state = state_of(request)
    with state.invoices.lock:  # the alias uniqueness check and the insert go together
        tag = build_tag(state.store, org, body)
        state.store.put_record("tag", tag)
    return json_response(render_tag(state.store, tag, includes), 201)


@tag_router.get(ORG + "/tags/{id}")
async def get_tag(request: Request, org: str, id: str) -> Response:
    authorize(request, org)
    store = state_of(request).store
    tag = store.get_record("tag", id, org)
    if tag is None:
        raise not_found("tag")
    return json_response({"data": render_tag(store, tag, includes_of("tag", request))})
