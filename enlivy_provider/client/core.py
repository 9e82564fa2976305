"""The rules of talking to the Enlivy API, independent of any HTTP library.

``sync.py`` (requests) and ``aio.py`` (httpx) only move bytes; everything that decides *what* is sent and
*what* an answer means lives here, once: base URL check, query encoding, JSON with exact decimals, envelope
unwrapping, error mapping, retry decisions and backoff, pagination. Section numbers refer to
``docs/enlivy-api-notes.md``.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import ipaddress
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

from enlivy_provider import __version__
from enlivy_provider.client.errors import (
    RETRYABLE_STATUSES,
    EnlivyAPIError,
    EnlivyConnectionError,
    EnlivyError,
    EnlivyInvalidRequestError,
    EnlivyRateLimitError,
    error_class_for,
)

log = logging.getLogger("enlivy_provider.client")

DEFAULT_BASE_URL = "https://api.enlivy.com"
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 50  # §5: the API refuses more
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 30.0)  # (connect, read), as the SDK (§1)
MAX_CONNECT_TIMEOUT = 10.0

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BASE_HEADERS: dict[str, str] = {
    "Accept": "application/json",
    "User-Agent": f"airflow-provider-enlivy/{__version__} (+apache-airflow)",
}

# ---------------------------------------------------------------------------------------------------------
# JSON: money is Decimal end to end. Floats would turn 0.1 + 0.2 into 0.30000000000000004 on an invoice.


def loads_json(data: bytes | str) -> Any:
    """Decode a response body; non-integer numbers become ``Decimal`` (integers stay ``int``)."""
    return json.loads(data, parse_float=Decimal)


def dumps_json(obj: Any) -> bytes:
    """Encode a request body; ``Decimal`` becomes a JSON *number* written digit for digit (no float step).

    Dates and datetimes become ISO 8601 strings (datetimes in UTC with ``Z``), which is what the API takes.
    """
    out: list[str] = []
    _encode(obj, out)
    return "".join(out).encode("utf-8")


_encode_str = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


def _encode(obj: Any, out: list[str]) -> None:
    if isinstance(obj, str):
        out.append(_encode_str(obj))
    elif obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, Decimal):
        if not obj.is_finite():
            raise ValueError(f"cannot send {obj} as a JSON number")
        # Fixed-point digits, exactly as given ("99.99", "-0.50", "100" for 1E+2): a valid JSON number that
        # no parser has to read in exponent form.
        out.append(format(obj, "f"))
    elif isinstance(obj, int):
        out.append(int.__repr__(obj))
    elif isinstance(obj, float):
        if obj != obj or obj in (float("inf"), float("-inf")):
            raise ValueError(f"cannot send {obj} as a JSON number")
        out.append(float.__repr__(obj))
    elif isinstance(obj, Mapping):
        out.append("{")
        first = True
        for key, value in obj.items():
            if not first:
                out.append(",")
            first = False
            out.append(_encode_str(str(key)))
            out.append(":")
            _encode(value, out)
        out.append("}")
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for index, value in enumerate(obj):
            if index:
                out.append(",")
            _encode(value, out)
        out.append("]")
    elif isinstance(obj, (dt.date, dt.datetime)):
        out.append(_encode_str(format_scalar(obj)))
    else:
        raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


# ---------------------------------------------------------------------------------------------------------
# Envelopes (§4): the API wraps some things in {"data": ...} and not others; accept both everywhere.


def unwrap(body: Any) -> Any:
    """The payload of a response body: ``body["data"]`` when present, else the body itself (§4.1)."""
    if isinstance(body, dict) and "data" in body:
        return body["data"]
    return body


def unwrap_record(record: Any) -> Any:
    """A record with every relation unwrapped: ``{"line_items": {"data": [...]}}`` → ``[...]`` (§4.2).

    A relation counts as wrapped when it is an object whose keys are ``data`` (and optionally ``meta``).
    Nested records (line items, included users) are unwrapped the same way.
    """
    if isinstance(record, list):
        return [unwrap_record(item) for item in record]
    if not isinstance(record, dict):
        return record
    return {key: unwrap_record(_unwrap_relation(value)) for key, value in record.items()}


def _unwrap_relation(value: Any) -> Any:
    if isinstance(value, dict) and "data" in value and value.keys() <= {"data", "meta"}:
        return value["data"]
    return value


def unwrap_body(body: Any) -> Any:
    """Top-level and relation unwrapping of a single-record (or bare) response body."""
    return unwrap_record(unwrap(body))


def unwrap_list_body(body: Any) -> tuple[list[Any], dict[str, Any]]:
    """(items, meta) of a list response ``{"data": [...], "meta": {...}}`` (bare arrays accepted too)."""
    items = unwrap(body)
    meta = body.get("meta") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise EnlivyError(f"expected a list response, got {type(items).__name__}")
    return [unwrap_record(item) for item in items], dict(meta or {})


def next_page(meta: Mapping[str, Any], requested_page: int) -> int | None:
    """The page to fetch after this one, or None on the last page (§5).

    More pages exist iff ``current_page < total_pages``; no pagination meta means a single page. A meta
    that would not move forward ends the walk, so a confused server cannot make us loop forever.
    """
    pagination = meta.get("pagination")
    if not isinstance(pagination, Mapping):
        return None
    try:
        current = int(pagination.get("current_page") or requested_page)
        total_pages = int(pagination.get("total_pages") or 0)
    except (TypeError, ValueError):
        return None
    if current >= total_pages or current + 1 <= requested_page:
        return None
    return current + 1


# ---------------------------------------------------------------------------------------------------------
# Base URL and timeouts


def normalise_base_url(base_url: str | None, *, allow_insecure_http: bool = False) -> str:
    """Validate the API base URL; ``http://`` is only allowed to loopback unless explicitly permitted.

    A host without a scheme (``api.enlivy.com``) means https. The trailing ``/`` is trimmed (§1).
    """
    url = (base_url or DEFAULT_BASE_URL).strip()
    if "://" not in url:
        url = f"https://{url}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EnlivyInvalidRequestError(f"invalid Enlivy base URL {url!r}: expected https://host[:port]")
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname):
        raise EnlivyInvalidRequestError(
            f"refusing plain http:// to {parts.hostname}: the API token would travel unencrypted. "
            "Use https://, or set allow_insecure_http=True (connection extra) if you really mean it."
        )
    return url.rstrip("/")


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalise_timeout(timeout: float | Sequence[float] | None) -> tuple[float, float]:
    """(connect, read) seconds. A single number is the read timeout; connect is capped at 10 s."""
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, (int, float, Decimal, str)):
        read = float(timeout)
        return (min(MAX_CONNECT_TIMEOUT, read), read)
    connect, read = (float(value) for value in timeout)
    return (connect, read)


# ---------------------------------------------------------------------------------------------------------
# Query strings (§1): booleans as 1/0, nulls dropped, comma lists where the API documents comma lists,
# PHP-style name[0]=a&name[1]=b for other arrays.

COMMA_LIST_PARAMS = frozenset({"ids", "tag_ids", "include", "include_meta", "types", "product_ids"})


def format_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value.replace(microsecond=0).isoformat() + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def encode_query(params: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    if not params:
        return []
    query: list[tuple[str, str]] = []
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple, set, frozenset)):
            items = [format_scalar(item) for item in value if item is not None]
            if name in COMMA_LIST_PARAMS:
                query.append((name, ",".join(items)))
            else:
                query.extend((f"{name}[{index}]", item) for index, item in enumerate(items))
        else:
            query.append((name, format_scalar(value)))
    return query


def path_segment(value: str) -> str:
    """An id placed in a path, quoted so that an id like ``../x`` cannot change the route."""
    if not value:
        raise EnlivyInvalidRequestError("an empty id cannot be used in a request path")
    return quote(str(value), safe="")


# ---------------------------------------------------------------------------------------------------------
# Filter and include names (§6, §7): checked before sending, as the SDK does, so a typo fails fast and
# says what would have been accepted. Values are the API's business (it answers 422). The names are exactly
# the official SDK's (HasFilters::GLOBAL_FILTERS plus each service's AVAILABLE_FILTERS): the client never
# sends a filter the API does not know, since an API that ignored it would widen the list instead.


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


GLOBAL_FILTERS = _names("q q_in ids order_by order page per_page limit deleted tag_ids include_meta")

# Keys are the resource's path segment under /organizations/{org}/.
FILTERS: dict[str, frozenset[str]] = {
    "invoices": _names(
        """direction status is_downloadable is_tax_charged paid_at_from paid_at_to issued_at_from issued_at_to
        created_at_from created_at_to updated_at_from updated_at_to bank_account_id currency
        organization_receiver_user_id organization_sender_user_id organization_user_id source total product_ids
        network_exchange peppol_exchange_push_option peppol_exchange_pushed is_api_charge
        api_charged_organization_id"""
    ),
    "users": _names(
        "can_be_invoiced can_be_invoicing can_be_payrolled can_use_backoffice email organization_user_role_id"
    ),
    "products": _names("is_sold"),
    "tax-classes": frozenset(),
    "tax-rates": _names("organization_tax_class_id has_eu_vat_properties"),
    "invoice-prefixes": _names("type"),
    # Invoice side lists (SDK services InvoiceChargeLogService, InvoiceNotificationLogService, HasEventTrails,
    # InvoiceNetworkExchangeService, ReceiptService; tags take the global filters only).
    "invoices/charge-logs": _names("organization_invoice_id status"),
    "invoices/notification-logs": _names("organization_invoice_id types created_at_from created_at_to"),
    "invoices/event-trails": _names("subject_id event_type origin occurred_from occurred_to"),
    "invoices/network-exchanges": _names(
        """organization_invoice_id organization_user_id invoice_state status created_at_from created_at_to
        updated_at_from updated_at_to"""
    ),
    "receipts": _names(
        """bank_account_id currency direction has_receiver_user has_sender_user organization_invoice_id
        organization_receiver_user_id organization_sender_user_id organization_user_id status total paid_at_from
        paid_at_to issued_at_from issued_at_to created_at_from created_at_to updated_at_from updated_at_to"""
    ),
}
# Scheduled reminders are a projection, not a paged list: only these four (the SDK refuses anything else).
SCHEDULED_REMINDER_FILTERS = _names("from to type organization_invoice_id")

INCLUDES: dict[str, frozenset[str]] = {
    "invoices": _names(
        """bank_account invoice_prefix sender_user receiver_user receiver_user_address line_items receipts
        deleted_by_user party_locales tag_ids taxes last_peppol_exchange contract charge_logs latest_charge_log
        reversal_invoices parent_invoice"""
    ),
    "users": _names("organization user_role deleted_by_user tag_ids primary_bank_account bank_accounts"),
    "products": _names("organization deleted_by_user tag_ids tax_class"),
    "tax-classes": _names("organization tax_rates_overview"),
    "tax-rates": _names("organization organization_tax_class locations"),
    "invoice-prefixes": _names("organization deleted_by_user custom_logo"),
    "tags": _names("organization deleted_by_user"),
    "invoices/charge-logs": _names("invoice payment_method initiated_by_organization_user"),
    "invoices/notification-logs": _names("deleted_by_user organization"),
    "invoices/event-trails": _names("changes actor_organization_user charge_log"),
    "invoices/network-exchanges": _names("organization parsed_data invoice tag_ids"),
    "receipts": _names(
        "organization invoice bank_account sender_user receiver_user deleted_by_user tag_ids taxes receipt_prefix"
    ),
}


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_filters(resource: str, filters: Mapping[str, Any]) -> None:
    """Refuse filter names the API does not document for ``resource`` (and unknown include names)."""
    allowed = GLOBAL_FILTERS | FILTERS.get(resource, frozenset())
    for name in filters:
        if name == "include":
            continue
        if name not in allowed:
            raise EnlivyInvalidRequestError(
                f"unknown filter {name!r} for {resource}{_did_you_mean(name, allowed)}; "
                f"accepted: {', '.join(sorted(allowed))}"
            )
    check_include(resource, filters.get("include"))


def check_include(resource: str, include: str | Iterable[str] | None) -> str | None:
    """Validate include names; returns the comma list to send (or None)."""
    if include is None:
        return None
    names = [part.strip() for part in include.split(",")] if isinstance(include, str) else list(include)
    allowed = INCLUDES.get(resource, frozenset())
    for name in names:
        if name not in allowed:
            raise EnlivyInvalidRequestError(
                f"unknown include {name!r} for {resource}{_did_you_mean(name, allowed)}; "
                f"accepted: {', '.join(sorted(allowed))}"
            )
    return ",".join(names) or None


# ---------------------------------------------------------------------------------------------------------
# Requests and responses


@dataclass(frozen=True)
class PreparedRequest:
    """Everything a transport needs to send one request (authorization is added by the transport's
    session defaults, so it never sits in an object that might be printed)."""

    method: str
    path: str
    query: list[tuple[str, str]]
    body: bytes | None
    headers: dict[str, str]

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("Idempotency-Key")

    @property
    def retry_allowed(self) -> bool:
        """§15: GET (and HEAD) always; writes only when they carry an Idempotency-Key."""
        return self.method in ("GET", "HEAD") or self.idempotency_key is not None


def new_idempotency_key() -> str:
    return f"enlivy-provider-{uuid.uuid4().hex}"


def prepare(
    method: str,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    idempotency_key: str | None = None,
) -> PreparedRequest:
    """Build a request. Every write gets an Idempotency-Key — the caller's, or a fresh random one — so the
    client's own retries of a write can never perform it twice."""
    method = method.upper()
    if not path.startswith("/"):
        path = f"/{path}"
    headers: dict[str, str] = {}
    if method in WRITE_METHODS:
        headers["Idempotency-Key"] = idempotency_key or new_idempotency_key()
    elif idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    body = None
    if json is not None:
        body = dumps_json(json)
        headers["Content-Type"] = "application/json"
    return PreparedRequest(method, path, encode_query(params), body, headers)


@dataclass
class ApiResponse:
    """A complete HTTP answer (the "Response-like" of ``request()``); the raw parts stay reachable."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes
    method: str
    path: str
    _json: Any = field(default=None, repr=False)
    _decoded: bool = field(default=False, repr=False)

    def json(self) -> Any:
        """The decoded body (Decimal for non-integer numbers); None for an empty body."""
        if not self._decoded:
            try:
                self._json = loads_json(self.content) if self.content.strip() else None
            except ValueError as exc:  # e.g. an HTML page from a proxy in front of the API
                raise EnlivyError(
                    f"{self.method} {self.path} → {self.status_code}: the response is not JSON "
                    f"({self.headers.get('content-type', 'no content type')})"
                ) from exc
            self._decoded = True
        return self._json

    @property
    def data(self) -> Any:
        """The unwrapped payload (``data`` or bare body, relations unwrapped)."""
        return unwrap_body(self.json())

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    @property
    def ok(self) -> bool:
        return self.status_code < 400


# A server that replays a stored answer for a repeated Idempotency-Key may say so (the Stripe convention,
# which the emulator follows); Enlivy does not document such a header, so a record whose own stamp of this
# write (created_at for a create, updated_at for an update) is well before the answer's Date is taken as a
# replay too.
REPLAYED_HEADER = "idempotent-replayed"
REPLAY_MIN_AGE = dt.timedelta(seconds=60)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def is_replay(headers: Mapping[str, str], record: Mapping[str, Any], stamp: str = "created_at") -> bool:
    """Whether a write's answer is the replay of an earlier write under the same Idempotency-Key; ``stamp``
    is the record's field the write sets (an update leaves ``created_at`` as old as the invoice)."""
    flag = _header(headers, REPLAYED_HEADER)
    if flag is not None:
        return flag.strip().lower() in ("true", "1")
    answered_at, created_at = _header(headers, "date"), record.get(stamp)
    if not answered_at or not isinstance(created_at, str):
        return False
    try:
        answered = email.utils.parsedate_to_datetime(answered_at)
        created = dt.datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return False
    if answered.tzinfo is None or created.tzinfo is None:
        return False
    return answered - created > REPLAY_MIN_AGE


@dataclass(frozen=True)
class WriteAnswer:
    """A write's record, and whether the server replayed an earlier write's answer instead of writing.

    ``certain`` is False when the server did not say (no replay header): a fresh-looking answer may then be
    the replay of a write made less than :data:`REPLAY_MIN_AGE` ago."""

    record: dict[str, Any]
    replayed: bool
    certain: bool = True

    @classmethod
    def from_response(cls, response: ApiResponse, stamp: str = "created_at") -> WriteAnswer:
        record = response.data
        if not isinstance(record, dict):
            raise EnlivyError(
                f"{response.method} {response.path} → {response.status_code}: expected a record"
            )
        said = _header(response.headers, REPLAYED_HEADER) is not None
        return cls(record, is_replay(response.headers, record, stamp), certain=said)


@dataclass(frozen=True)
class ChargeAnswer:
    """A charge attempt: the refreshed invoice and the attempt's outcome (the answer's ``meta.charge_result``:
    ``status``, ``error_code``, ``error_message``, ``provider_reference``, ``next_action_url``)."""

    invoice: dict[str, Any]
    result: dict[str, Any]
    replayed: bool

    @property
    def status(self) -> str | None:
        return self.result.get("status")

    @classmethod
    def from_response(cls, response: ApiResponse) -> ChargeAnswer:
        body = response.json()
        meta = body.get("meta") if isinstance(body, dict) else None
        result = meta.get("charge_result") if isinstance(meta, dict) else None
        answer = WriteAnswer.from_response(response)
        return cls(answer.record, dict(result) if isinstance(result, dict) else {}, answer.replayed)


@dataclass
class Page:
    """One page of a list: unwrapped records plus the response's ``meta`` (pagination, navigation, ...)."""

    items: list[dict[str, Any]]
    meta: dict[str, Any]
    status_code: int
    headers: Mapping[str, str]

    @property
    def pagination(self) -> dict[str, Any]:
        return dict(self.meta.get("pagination") or {})

    @classmethod
    def from_response(cls, response: ApiResponse) -> Page:
        items, meta = unwrap_list_body(response.json())
        return cls(items=items, meta=meta, status_code=response.status_code, headers=response.headers)


# ---------------------------------------------------------------------------------------------------------
# Errors (§14)


# The secret part of an ``N|secret`` token shorter than this is not masked on its own: it would not be a real
# token's (Enlivy's are 40 characters), and masking a few common characters would garble every message.
MIN_SECRET_PART = 8


def secret_forms(credential: str | None) -> tuple[str, ...]:
    """What to hide of a credential: itself and, for an API token ``N|secret``, the secret alone — a server
    may echo either (and ``N|`` is often dropped or percent-encoded in what it echoes)."""
    if not credential:
        return ()
    _, bar, secret = credential.partition("|")
    return (credential, secret) if bar and len(secret) >= MIN_SECRET_PART else (credential,)


def redact(text: str, secrets: Iterable[str]) -> str:
    # Longest first: the whole token becomes "***", not "1|***".
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _redact_value(value: Any, secrets: Sequence[str]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {redact(str(k), secrets): _redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(v, secrets) for v in value]
    return value


def error_from_response(response: ApiResponse, secrets: Sequence[str] = ()) -> EnlivyAPIError:
    """The typed exception of an error answer; anything the server echoed of our secrets is masked."""
    try:
        body = response.json()
    except EnlivyError:
        body = response.text
    body = _redact_value(body, secrets)
    if isinstance(body, str):
        body = body[:500]  # cut after redacting: a cut through a token would leave part of it unmasked
    message = ""
    field_errors: dict[str, list[str]] = {}
    if isinstance(body, dict):
        message = str(body.get("message") or body.get("error") or "")
        raw_errors = body.get("errors")
        if isinstance(raw_errors, dict):
            field_errors = {
                str(name): [str(m) for m in (msgs if isinstance(msgs, list) else [msgs])]
                for name, msgs in raw_errors.items()
            }
    message = message or f"API error: HTTP {response.status_code}"
    headers = _redact_value(dict(response.headers), secrets)  # a server may echo credentials in headers too
    kwargs: dict[str, Any] = {
        "status": response.status_code,
        "message": message,
        "method": response.method,
        "path": response.path,
        "field_errors": field_errors,
        "request_id": headers.get("x-request-id") or headers.get("X-Request-Id"),
        "headers": headers,
        "body": body,
    }
    cls = error_class_for(response.status_code)
    if cls is EnlivyRateLimitError:
        return EnlivyRateLimitError(retry_after=parse_retry_after(response.headers), **kwargs)
    return cls(**kwargs)


def connection_error(
    request: PreparedRequest, exc: BaseException, secrets: Sequence[str] = (), attempts: int = 1
) -> EnlivyError:
    """The error of a request that got no complete answer. The transport's exception is described, not kept
    as the cause: it holds the request it failed on, Authorization header included."""
    tried = f" (after {attempts} attempts)" if attempts > 1 else ""
    reason = redact(f"{type(exc).__name__}: {exc}{tried}", secrets)
    return EnlivyConnectionError(request.method, request.path, reason)


# ---------------------------------------------------------------------------------------------------------
# Retries (§15)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait. Delay before retry n (0-based): min(cap, base × 2ⁿ) × U[0.5, 1];
    a numeric/date ``Retry-After`` raises the delay to that value, capped at ``max_retry_after``."""

    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    max_retry_after: float = 60.0

    def delay(
        self, retry_number: int, retry_after: float | None = None, rand: Callable[[], float] = random.random
    ) -> float:
        delay = min(self.backoff_cap, self.backoff_base * (2**retry_number)) * (0.5 + 0.5 * rand())
        if retry_after is not None:
            delay = max(delay, min(self.max_retry_after, retry_after))
        return delay


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header: a number, or an HTTP date (then relative to now)."""
    value = headers.get("retry-after") or headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())


def should_retry(request: PreparedRequest, status: int | None, retries_done: int, max_retries: int) -> bool:
    """Retry only what is safe (GET, keyed writes) and only what may change (no answer, 429, 500-504)."""
    if retries_done >= max_retries or not request.retry_allowed:
        return False
    return status is None or status in RETRYABLE_STATUSES


@dataclass
class Step:
    """What a transport does after one attempt: return ``response``, raise ``error``, or wait ``delay``
    seconds and send again."""

    response: ApiResponse | None = None
    error: EnlivyError | None = None
    delay: float | None = None

    def result(self) -> ApiResponse:
        if self.error is not None:
            raise self.error
        assert self.response is not None
        return self.response


class Attempts:
    """The retry loop's brain, shared by both transports. One instance per logical request::

    attempts = Attempts(request, policy, secrets)
    while True:
        try:
            step = attempts.on_response(status, headers, content)
        except <transport errors> as exc:
            step = attempts.on_transport_error(exc)
        if step.delay is None:
            return step.result()
        sleep(step.delay)
    """

    def __init__(self, request: PreparedRequest, policy: RetryPolicy, secrets: Sequence[str] = ()) -> None:
        self.request = request
        self.policy = policy
        self.secrets = secrets
        self.retries_done = 0
        self.started = time.monotonic()

    def on_response(self, status: int, headers: Mapping[str, str], content: bytes) -> Step:
        response = ApiResponse(status, headers, content, self.request.method, self.request.path)
        if status < 400:
            log.debug("%s %s → %s", self.request.method, self.request.path, status)
            return Step(response=response)
        if should_retry(self.request, status, self.retries_done, self.policy.max_retries):
            retry_after = parse_retry_after(headers) if status == 429 else None
            return self._retry(f"HTTP {status}", retry_after)
        return Step(error=error_from_response(response, self.secrets))

    def on_transport_error(self, exc: BaseException) -> Step:
        if should_retry(self.request, None, self.retries_done, self.policy.max_retries):
            return self._retry(redact(type(exc).__name__, self.secrets), None)
        return Step(error=connection_error(self.request, exc, self.secrets, self.retries_done + 1))

    def _retry(self, reason: str, retry_after: float | None) -> Step:
        delay = self.policy.delay(self.retries_done, retry_after)
        self.retries_done += 1
        log.warning(
            "%s %s: %s, retry %d/%d in %.2fs",
            self.request.method,
            self.request.path,
            reason,
            self.retries_done,
            self.policy.max_retries,
            delay,
        )
        return Step(delay=delay)


# ---------------------------------------------------------------------------------------------------------
# Client settings shared by both clients


@dataclass(frozen=True)
class ClientSettings:
    """Validated constructor arguments of a client. ``repr`` leaves the credentials out."""

    base_url: str
    organization_id: str | None
    timeout: tuple[float, float]
    policy: RetryPolicy
    verify: bool | str
    token: str | None = field(default=None, repr=False)
    email: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @classmethod
    def create(
        cls,
        base_url: str | None,
        token: str | None,
        *,
        organization_id: str | None,
        email: str | None,
        password: str | None,
        timeout: float | Sequence[float] | None,
        max_retries: int,
        verify: bool | str,
        allow_insecure_http: bool,
        backoff_base: float,
        backoff_cap: float,
        max_retry_after: float,
    ) -> ClientSettings:
        if not token and not (email and password):
            raise EnlivyInvalidRequestError("no credentials: pass token=, or email= and password= to log in")
        if max_retries < 0:
            raise EnlivyInvalidRequestError("max_retries must be >= 0")
        return cls(
            base_url=normalise_base_url(base_url, allow_insecure_http=allow_insecure_http),
            organization_id=organization_id or None,
            timeout=normalise_timeout(timeout),
            policy=RetryPolicy(max_retries, backoff_base, backoff_cap, max_retry_after),
            verify=verify,
            token=token or None,
            email=email,
            password=password,
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        return (*secret_forms(self.token), *secret_forms(self.password))


def login_request(email: str, password: str) -> PreparedRequest:
    """POST /authentication/login (§2.2); ``remember`` false: the token lives as long as the client."""
    return prepare(
        "POST", "/authentication/login", json={"email": email, "password": password, "remember": False}
    )


def token_from_login(response: ApiResponse) -> str:
    payload = unwrap(response.json())
    token = payload.get("token") if isinstance(payload, dict) else None
    if not isinstance(token, str) or not token:
        raise EnlivyError("POST /authentication/login answered without a token")
    return token


def auth_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
