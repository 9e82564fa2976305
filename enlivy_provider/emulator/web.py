"""Request/response plumbing shared by the API routes (app.py) and the admin routes (admin.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from enlivy_provider.emulator.common import ApiError
from enlivy_provider.emulator.jsonio import BodyError, dumps, parse_body

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
