"""Small shared helpers: timestamps, record ids and the API error type."""

from __future__ import annotations

import secrets
import string
from datetime import datetime, timezone
from typing import Any

_ALPHABET = string.ascii_letters + string.digits


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with ``Z`` and whole seconds, e.g. ``2026-05-13T13:00:00Z`` (docs/enlivy-api-notes.md §4.4)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso() -> str:
    return iso(utc_now())


def new_id(prefix: str) -> str:
    """``{prefix}_{27 base62 chars}``, the documented ``{prefix}_{ksuid}`` shape."""
    number = secrets.randbits(160)
    chars = []
    for _ in range(27):
        number, index = divmod(number, 62)
        chars.append(_ALPHABET[index])
    return f"{prefix}_{''.join(chars)}"


class ApiError(Exception):
    """An error answer: ``{"message": ..., "errors": {...}}`` with the given status."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


VALIDATION_MESSAGE = "The given data was invalid."


def validation_error(errors: dict[str, list[str]]) -> ApiError:
    return ApiError(422, VALIDATION_MESSAGE, errors)


def not_found(what: str = "record") -> ApiError:
    return ApiError(404, f"No query results for {what}.")


def route_not_found(path: str) -> ApiError:
    """The answer for a path no route serves, in the Laravel wording: it must not read like a missing record."""
    return ApiError(404, f"The route {path.lstrip('/')} could not be found.")
