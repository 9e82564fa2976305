"""Invoice actions (docs/enlivy-api-notes.md §8, §8.1): charge, refund, issue an invoice from a proforma, issue a
receipt, tag and untag. Every one is a write, so the Idempotency-Key middleware covers it like any other.

Answers: ``charge`` → 200 ``{"data": invoice, "meta": {"charge_result": {...}}}`` (the SDK's charge
returns the refreshed invoice and puts the outcome in ``meta``); ``refund`` / ``issue-invoice`` /
``issue-receipt`` → 201 ``{"data": new record}``; ``tag`` / untag → 200 ``{"data": invoice}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from enlivy_provider.emulator.charging import charge_invoice
from enlivy_provider.emulator.receipts import issue_receipt
from enlivy_provider.emulator.refunds import issue_from_proforma, refund_invoice
from enlivy_provider.emulator.resources import render_invoice
from enlivy_provider.emulator.tagging import set_tag
from enlivy_provider.emulator.web import (
    ORG,
    authorize,
    includes_of,
    json_response,
    read_json,
    state_of,
    with_write_defaults,
)

action_router = APIRouter()


@action_router.post(ORG + "/invoices/{id}/charge")
async def charge(request: Request, org: str, id: str) -> Response:
    authorize(request, org)
    body = await read_json(request)
    includes = includes_of("invoice", request, body)
    state = state_of(request)
    invoice, result = charge_invoice(state, org, id)
    return json_response(
        {"data": render_invoice(state.store, invoice, includes), "meta": {"charge_result": result}}
    )


async def _new_invoice_from(
    request: Request, org: str, id: str, make: Callable[..., dict[str, Any]]
) -> Response:
    """An action that makes a new invoice from an existing one (a reversal, a standard invoice): 201 with it."""
    authorize(request, org)
    body = await read_json(request)
    includes = with_write_defaults(includes_of("invoice", request, body))
    state = state_of(request)
    made = make(state, org, id, body)
    return json_response({"data": render_invoice(state.store, made, includes)}, 201)


@action_router.post(ORG + "/invoices/{id}/refund")
async def refund(request: Request, org: str, id: str) -> Response:
    return await _new_invoice_from(request, org, id, refund_invoice)


@action_router.post(ORG + "/invoices/{id}/issue-invoice")
async def issue_invoice(request: Request, org: str, id: str) -> Response:
    return await _new_invoice_from(request, org, id, issue_from_proforma)


@action_router.post(ORG + "/invoices/{id}/issue-receipt")
async def issue_invoice_receipt(request: Request, org: str, id: str) -> Response:
    authorize(request, org)
    await read_json(request)  # no body is documented; a malformed one is still a 400
    return json_response({"data": issue_receipt(state_of(request), org, id)}, 201)


async def _tag(request: Request, org: str, id: str, tag_id: str, *, on: bool) -> Response:
    authorize(request, org)
    includes = includes_of("invoice", request)
    state = state_of(request)
    invoice = set_tag(state, org, id, tag_id, on=on)
    return json_response({"data": render_invoice(state.store, invoice, includes)})


@action_router.put(ORG + "/invoices/{id}/tag/{tag_id}")
async def tag_invoice(request: Request, org: str, id: str, tag_id: str) -> Response:
    return await _tag(request, org, id, tag_id, on=True)


@action_router.delete(ORG + "/invoices/{id}/tag/{tag_id}")
async def untag_invoice(request: Request, org: str, id: str, tag_id: str) -> Response:
    return await _tag(request, org, id, tag_id, on=False)
