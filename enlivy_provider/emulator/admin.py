"""Admin endpoints under ``/_emulator/`` (no auth; the emulator listens on loopback), documented in docs/emulator.md."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from enlivy_provider.emulator.bulk import bulk_create
from enlivy_provider.emulator.common import validation_error
from enlivy_provider.emulator.resources import invoice_for_admin
from enlivy_provider.emulator.seed import DEMO_ORG_ID
from enlivy_provider.emulator.seeding import SEEDS
from enlivy_provider.emulator.web import json_response, read_json, state_of

admin_router = APIRouter(prefix="/_emulator")


def _optional_number(body: dict[str, Any], name: str, errors: dict[str, list[str]], *, integer: bool) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float, Decimal)):
        errors[name] = [f"The {name} must be a {'n integer' if integer else ' number'}."]
        return None
    if value < 0:
        errors[name] = [f"The {name} must be at least 0."]
        return None
    return int(value) if integer else float(value)


@admin_router.get("/health")
async def health() -> Response:
    return json_response({"status": "ok"})


@admin_router.post("/reset")
async def reset(request: Request) -> Response:
    body = await read_json(request)
    seed = body.get("seed", "demo")
    extra = body.get("extra_customers", 0)
    errors: dict[str, list[str]] = {}
    if seed not in SEEDS:
        errors["seed"] = [f"The seed must be one of {', '.join(SEEDS)}."]
    if isinstance(extra, bool) or not isinstance(extra, int) or not 0 <= extra <= 100_000:
        errors["extra_customers"] = ["The extra_customers must be an integer between 0 and 100000."]
    if errors:
        raise validation_error(errors)
    state_of(request).reset(seed, extra)
    return json_response({"status": "ok", "seed": seed, "extra_customers": extra})


@admin_router.get("/counters")
async def counters(request: Request) -> Response:
    return json_response(state_of(request).counters.snapshot())


@admin_router.delete("/counters")
async def clear_counters(request: Request) -> Response:
    state_of(request).counters.clear()
    return json_response(state_of(request).counters.snapshot())


@admin_router.get("/requests")
async def request_log(request: Request) -> Response:
    return json_response({"data": state_of(request).counters.log()})


@admin_router.post("/faults")
async def add_fault(request: Request) -> Response:
    body = await read_json(request)
    try:
        fault = state_of(request).faults.add(body)
    except ValueError as exc:
        raise validation_error(exc.args[0]) from exc
    return json_response({"id": fault.id}, 201)


@admin_router.get("/faults")
async def list_faults(request: Request) -> Response:
    return json_response({"data": state_of(request).faults.list()})


@admin_router.delete("/faults")
async def clear_faults(request: Request) -> Response:
    state_of(request).faults.clear()
    return json_response({"data": []})


@admin_router.get("/config")
async def get_config(request: Request) -> Response:
    return json_response(state_of(request).config.as_dict())


@admin_router.put("/config")
async def put_config(request: Request) -> Response:
    body = await read_json(request)
    errors: dict[str, list[str]] = {}
    changes: dict[str, Any] = {}
    if "latency_ms" in body:
        changes["latency_ms"] = _optional_number(body, "latency_ms", errors, integer=True) or 0
    for name in ("rate_limit", "auto_pay_after"):
        if name in body:
            changes[name] = _optional_number(body, name, errors, integer=False)
    if "replay_header" in body:
        if not isinstance(body["replay_header"], bool):
            errors["replay_header"] = ["The replay_header must be true or false."]
        changes["replay_header"] = body["replay_header"]
    if changes.get("rate_limit") == 0:
        errors["rate_limit"] = ["The rate_limit must be greater than 0 (null turns it off)."]
    unknown = sorted(set(body) - {"latency_ms", "rate_limit", "auto_pay_after", "replay_header"})
    if unknown:
        errors["config"] = [f"Unknown setting(s): {', '.join(unknown)}."]
    if errors:
        raise validation_error(errors)
    return json_response(state_of(request).configure(changes).as_dict())


@admin_router.post("/invoices/{invoice_id}/status")
async def set_status(request: Request, invoice_id: str) -> Response:
    body = await read_json(request)
    invoice = state_of(request).invoices.set_status(invoice_id, body.get("status"))  # type: ignore[arg-type]
    return json_response(invoice_for_admin(invoice))


@admin_router.get("/invoices")
async def all_invoices(request: Request, organization_id: str | None = None) -> Response:
    state = state_of(request)
    if state.config.auto_pay_after is not None:
        state.invoices.auto_pay(state.config.auto_pay_after)
    return json_response({"data": [invoice_for_admin(i) for i in state.store.all_invoices(organization_id)]})


@admin_router.get("/billings")
async def billings(request: Request, organization_id: str = DEMO_ORG_ID) -> Response:
    """How many live invoices each billing (customer, period, billing key) has; ``duplicates`` = invoices
    beyond the first of a billing, with up to 20 ``examples``."""
    counts = state_of(request).store.billing_counts(organization_id)
    doubled = [c for c in counts if c[4] > 1]
    return json_response(
        {
            "billings": len(counts),
            "invoices": sum(c[4] for c in counts),
            "duplicates": sum(c[4] - 1 for c in doubled),
            "examples": [
                {
                    "customer_id": c[0],
                    "period_start": c[1],
                    "period_end": c[2],
                    "billing_key": c[3],
                    "invoices": c[4],
                }
                for c in doubled[:20]
            ],
        }
    )


@admin_router.post("/bulk-invoices")
async def bulk_invoices(request: Request) -> Response:
    """Benchmarks: ``{"count": N, "organization_id"?, "status"?, "currency"?, "customer_ids"?, "price"?}``."""
    body = await read_json(request)
    organization_id = body.get("organization_id", DEMO_ORG_ID)
    if state_of(request).store.get_record("organization", organization_id) is None:
        raise validation_error({"organization_id": ["Unknown organization."]})
    return json_response(bulk_create(state_of(request).invoices, organization_id, body), 201)


@admin_router.get("/idempotency-keys")
async def idempotency_keys(request: Request) -> Response:
    return json_response({"data": state_of(request).store.idempotency_keys()})


@admin_router.get("/emails")
async def emails(request: Request, organization_id: str | None = None) -> Response:
    """Every ``POST /invoices/{id}/email`` the emulator accepted (newest last)."""
    return json_response({"data": state_of(request).store.list_records("email", organization_id)})
