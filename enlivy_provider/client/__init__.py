"""Enlivy API clients, usable without Airflow: ``EnlivyClient`` (blocking) and ``AsyncEnlivyClient``."""

from __future__ import annotations

from enlivy_provider.client.aio import AsyncEnlivyClient
from enlivy_provider.client.core import ApiResponse, Page, RetryPolicy, dumps_json, loads_json
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
from enlivy_provider.client.sync import EnlivyClient

__all__ = [
    "ApiResponse",
    "AsyncEnlivyClient",
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
    "dumps_json",
    "loads_json",
]
