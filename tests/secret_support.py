"""Helpers of the tests that make the emulator echo the API token in an error answer (not a pytest plugin)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

# Fault body and headers for EmulatorHandle.add_fault(..., "error", body=..., headers=...): the emulator puts
# the request's bearer token ({token}) and its secret part after "N|" ({token_secret}) into them.
ECHO_BODY = {
    "message": "Token {token} is not allowed here (secret {token_secret}).",
    "errors": {"authorization": ["Bearer {token} was revoked", "{token_secret} expired"]},
}
ECHO_HEADERS = {
    "X-Debug-Authorization": "Bearer {token}",
    "WWW-Authenticate": 'Bearer error="{token_secret}"',
}


def secret_of(token: str) -> str:
    """The part of an ``N|secret`` token after the bar."""
    return token.split("|", 1)[1]


def reachable_text(root: object, depth: int = 8) -> str:
    """Every string reachable from an exception: its text and repr, args, attributes, the cause/context chain,
    and what kept objects hold (e.g. a transport exception's request with its headers)."""
    seen: set[int] = set()
    parts: list[str] = []

    def walk(value: object, level: int) -> None:
        if level > depth or id(value) in seen:
            return
        seen.add(id(value))
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, bytes | bytearray):
            parts.append(bytes(value).decode("latin-1"))
        elif isinstance(value, int | float | bool) or value is None:
            return
        elif isinstance(value, Mapping):
            for key, item in value.items():
                walk(key, level + 1)
                walk(item, level + 1)
        elif isinstance(value, list | tuple | set | frozenset):
            for item in value:
                walk(item, level + 1)
        else:
            if isinstance(value, BaseException):
                parts.extend((str(value), repr(value)))
                walk(value.args, level + 1)
                walk(value.__cause__, level + 1)
                walk(value.__context__, level + 1)
            for attr in ("request", "response", "headers"):
                with contextlib.suppress(Exception):  # e.g. httpx raises when an exception has no request
                    walk(getattr(value, attr, None), level + 1)
            walk(getattr(value, "__dict__", None), level + 1)

    walk(root, 0)
    return "\n".join(parts)
