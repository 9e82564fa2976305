"""Exceptions raised by the Enlivy clients (docs/enlivy-api-notes.md §14).

Every API error carries what a user needs to act on it (method, path, status, message, field errors, request
id) and reads in one line, e.g.::

    PUT /organizations/org_x/invoices/org_inv_y → 422 The given data was invalid: line_items.0.quantity: ...

The texts are built by the client, which removes its own credentials from anything the server echoes back,
so no exception ever carries the token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Statuses worth another attempt (docs/enlivy-api-notes.md §15): the rest of 5xx (501, ...) and every other 4xx mean
# that sending the same request again gives the same answer.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


class EnlivyError(Exception):
    """Base class of everything the Enlivy clients raise."""

    retryable: bool = False

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take keyword/positional arguments of their own, so the default pickling (cls(*args))
        # would fail; rebuild from the message and attributes instead (errors cross process pools).
        return (_rebuild_error, (type(self), self.args, self.__dict__.copy()))


def _rebuild_error(cls: type[EnlivyError], args: tuple[Any, ...], state: dict[str, Any]) -> EnlivyError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class EnlivyInvalidRequestError(EnlivyError, ValueError):
    """A request refused locally, before sending: unknown filter or include, missing organization id,
    insecure base URL, missing credentials."""


class EnlivyConnectionError(EnlivyError):
    """No (complete) HTTP answer: refused, reset, timed out, or cut in the middle of the response."""

    retryable = True

    def __init__(self, method: str, path: str, reason: str) -> None:
        self.method = method
        self.path = path
        self.reason = reason
        super().__init__(f"{method} {path} → connection error: {reason}")


class EnlivyAPIError(EnlivyError):
    """The API answered with an error status (>= 400)."""

    def __init__(
        self,
        *,
        status: int,
        message: str,
        method: str,
        path: str,
        field_errors: Mapping[str, list[str]] | None = None,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> None:
        self.status = status
        self.message = message
        self.method = method
        self.path = path
        self.field_errors: dict[str, list[str]] = dict(field_errors or {})
        self.request_id = request_id
        self.headers: dict[str, str] = dict(headers or {})
        self.body = body
        super().__init__(self._describe())

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.status in RETRYABLE_STATUSES

    def _describe(self) -> str:
        text = f"{self.method} {self.path} → {self.status} {self.message}"
        if self.field_errors:
            # "The given data was invalid." + ": field: msg" would read ".:" — drop the sentence's full stop.
            fields = "; ".join(f"{name}: {', '.join(msgs)}" for name, msgs in self.field_errors.items())
            text = f"{text.rstrip('.')}: {fields}"
        if self.request_id:
            text = f"{text} (request id {self.request_id})"
        return text


class EnlivyAuthenticationError(EnlivyAPIError):
    """401: missing, invalid or expired token (or bad login credentials)."""


class EnlivyForbiddenError(EnlivyAPIError):
    """403: the token may not act on this organization or record."""


class EnlivyNotFoundError(EnlivyAPIError):
    """404: no such record (or not visible to this token)."""


class EnlivyConflictError(EnlivyAPIError):
    """409: e.g. an Idempotency-Key reused with a different body."""


class EnlivyValidationError(EnlivyAPIError):
    """422: the payload or filters were rejected; see ``field_errors``."""


class EnlivyRateLimitError(EnlivyAPIError):
    """429: too many requests; ``retry_after`` is the server's wait hint in seconds (None if absent)."""

    def __init__(self, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(**kwargs)


class EnlivyServerError(EnlivyAPIError):
    """>= 500: the server failed; 500/502/503/504 are retried, others are not."""


_BY_STATUS: dict[int, type[EnlivyAPIError]] = {
    401: EnlivyAuthenticationError,
    403: EnlivyForbiddenError,
    404: EnlivyNotFoundError,
    409: EnlivyConflictError,
    422: EnlivyValidationError,
    429: EnlivyRateLimitError,
}


def error_class_for(status: int) -> type[EnlivyAPIError]:
    """The exception class of an HTTP error status."""
    if status >= 500:
        return EnlivyServerError
    return _BY_STATUS.get(status, EnlivyAPIError)
