"""Request/response plumbing shared by the API routes (app.py) and the admin routes (admin.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from enlivy_provider.emulator.common import ApiError, route_not_found, validation_error
from enlivy_provider.emulator.jsonio import BodyError, dumps, parse_body
from enlivy_provider.emulator.listing import QueryParams, parse_includes

if TYPE_CHECKING:
    from enlivy_provider.emulator.state import EmulatorState


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer printed by :func:`~enlivy_provider.emulator.jsonio.dumps` (exact decimals)."""
    return Response(dumps(body), status_code=status, media_type="application/json", headers=headers)


def state_of(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


async def read_json(request: Request) -> dict[str, Any]:
    """The body as a JSON object with ``Decimal`` numbers (never FastAPI's float parsing); 400 if malformed."""
    try:
        return parse_body(await request.body())
    except BodyError as exc:
        raise ApiError(400, str(exc)) from exc


ORG = "/organizations/{org}"

# Fixed segments that sit where an {id} could (docs/enlivy-api-notes.md §8, §12), e.g.
# /invoices/charge-logs. Ids are "{prefix}_{ksuid}", so these never name a record: a request for one the
# emulator does not serve gets the route-not-found answer, not "No query results for invoice.".
FIXED_SEGMENTS = frozenset(
    {
        "restore", "event-trails", "charge-logs", "notification-logs", "scheduled-reminders",
        "network-exchanges", "imports", "balance", "subscriptions", "deliveries",
    }
)  # fmt: skip


def reject_fixed_segment(request: Request) -> None:
    """Router dependency: an ``{id}`` that is one of :data:`FIXED_SEGMENTS` means no route matched."""
    if request.path_params.get("id") in FIXED_SEGMENTS:
        raise route_not_found(request.url.path)


def api_router() -> APIRouter:
    """A router for API routes, whose ``{id}`` never swallows a fixed segment."""
    return APIRouter(dependencies=[Depends(reject_fixed_segment)])


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


def includes_of(kind: str, request: Request, body: dict[str, Any] | None = None) -> list[str]:
    """``include`` names from the JSON body (POST/PUT, as the SDK sends them) or the query; 422 if unknown."""
    errors: dict[str, list[str]] = {}
    raw: Any = body.get("include") if body and "include" in body else None
    if raw is None and "include" in request.query_params:
        raw = QueryParams(request.query_params.multi_items()).many("include")
    names = parse_includes(kind, raw, errors)
    if errors:
        raise validation_error(errors)
    return names


# Includes always present in create/update answers (the public page's POST/PUT examples show line items).
WRITE_DEFAULT_INCLUDES = ("line_items",)


def with_write_defaults(names: list[str]) -> list[str]:
    return [*WRITE_DEFAULT_INCLUDES, *(n for n in names if n not in WRITE_DEFAULT_INCLUDES)]
