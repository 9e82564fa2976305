"""JSON responses printed by :func:`enlivy_provider.emulator.jsonio.dumps` (exact decimals)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from enlivy_provider.emulator.jsonio import dumps


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(body), status_code=status, media_type="application/json", headers=headers)
