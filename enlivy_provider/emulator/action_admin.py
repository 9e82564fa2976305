"""Admin knobs of the invoice actions (``/_emulator/``, no auth): scripted charge outcomes, and network
exchange records (the emulator pushes nothing to an e-invoicing network, so a test adds what it needs)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request
from starlette.responses import Response

from enlivy_provider.emulator.invoice_logs import build_network_exchange
from enlivy_provider.emulator.web import json_response, read_json, state_of

action_admin_router = APIRouter(prefix="/_emulator")


@action_admin_router.post("/charge-outcomes")
async def add_charge_outcome(request: Request) -> Response:
    """``{"invoice_id" | "customer_id", "status": succeeded|requires_action|failed, "error_code"?,
    "error_message"?, "next_action_url"?, "times"?}`` → the outcome (``times`` absent: until cleared)."""
    outcome = state_of(request).charge_outcomes.add(await read_json(request))
    return json_response(asdict(outcome), 201)


@action_admin_router.get("/charge-outcomes")
async def list_charge_outcomes(request: Request) -> Response:
    return json_response({"data": state_of(request).charge_outcomes.list()})


@action_admin_router.delete("/charge-outcomes")
async def clear_charge_outcomes(request: Request) -> Response:
    state_of(request).charge_outcomes.clear()
    return json_response({"data": []})


@action_admin_router.post("/network-exchanges")
async def add_network_exchange(request: Request) -> Response:
    """``{"invoice_id"? | "organization_id"?, "institution_id"? (peppol), "status"? (success),
    "direction"? (outbound), "response_json"?}`` → the exchange record."""
    store = state_of(request).store
    exchange = build_network_exchange(store, await read_json(request))
    store.put_record("network_exchange", exchange)
    return json_response(exchange, 201)
