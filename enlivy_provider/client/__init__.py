"""Enlivy API clients, usable without Airflow: ``EnlivyClient`` (blocking) and ``AsyncEnlivyClient``.

The two transports (requests, httpx) are imported on first use, not with the package: DAG files import the
operators, which import the errors from here, and the scheduler parses DAG files every few seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from enlivy_provider.client.core import (
    ApiResponse,
    ChargeAnswer,
    Page,
    RetryPolicy,
    WriteAnswer,
    dumps_json,
    loads_json,
)
from enlivy_provider.client.errors import (
    EnlivyAPIError,
    EnlivyAuthenticationError,
    EnlivyConflictError,
    EnlivyConnectionError,
    EnlivyError,
    EnlivyForbiddenError,
    EnlivyInvalidRequestError,
    EnlivyNotFoundError,
    EnlivyRateLimitError,
    EnlivyServerError,
    EnlivyValidationError,
)

if TYPE_CHECKING:
    from enlivy_provider.client.aio import AsyncEnlivyClient
    from enlivy_provider.client.sync import EnlivyClient

_LAZY = {
    "EnlivyClient": "enlivy_provider.client.sync",
    "AsyncEnlivyClient": "enlivy_provider.client.aio",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ApiResponse",
    "AsyncEnlivyClient",
    "ChargeAnswer",
    "EnlivyAPIError",
    "EnlivyAuthenticationError",
    "EnlivyClient",
    "EnlivyConflictError",
    "EnlivyConnectionError",
    "EnlivyError",
    "EnlivyForbiddenError",
    "EnlivyInvalidRequestError",
    "EnlivyNotFoundError",
    "EnlivyRateLimitError",
    "EnlivyServerError",
    "EnlivyValidationError",
    "Page",
    "RetryPolicy",
    "WriteAnswer",
    "dumps_json",
    "loads_json",
]
