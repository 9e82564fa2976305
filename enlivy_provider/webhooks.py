"""Verify Enlivy webhook deliveries exactly as the official PHP SDK does, and sign bodies the same way.

The scheme, from the SDK's ``src/Webhook/WebhookSignature.php`` (the version with ``HEADER_NAME``, the one
every current SDK guide and example uses; line numbers of that file):

* the signature travels in the ``Signature`` header (line 14);
* it is ``hash_hmac('sha256', $payload, $secret)``: HMAC-SHA256 of the **raw request body** and nothing
  else, keyed with the event destination's ``signing_secret``, as lowercase hex (line 35);
* an empty header is refused as "Webhook signature is empty." (lines 31-33);
* the expected value is compared with the whole header by ``hash_equals`` (constant time, byte-exact: no
  trimming, no case folding, no list of signatures), else "Webhook signature verification failed."
  (lines 37-39);
* there is no timestamp and no replay window. (An early SDK, before 0.2.0, signed ``"{t}.{payload}"`` and sent
  ``t=…,v1=…`` with a 300 s tolerance; that scheme is gone, and such a header is a mismatch here.)

After a good signature the body is decoded as ``WebhookEvent::fromPayload`` does (``src/Webhook/
WebhookEvent.php`` lines 19-23, 29-34): ``id``, ``type``, ``created_at`` default to ``""``,
``organization_id`` to ``None``, ``data`` to ``{}``.

Two things are added, neither loosening the SDK's check: an empty signing secret is a configuration error
(``hash_hmac`` would happily key with ``""``; the SDK's own example refuses to run without a secret), and an
optional ``tolerance`` bounds the age of the event's ``created_at`` — which lies inside the signed bytes,
so it cannot be altered — for receivers that want a replay window. It is off by default, as in the SDK.

Nothing here imports Airflow. No exception text or repr carries the secret or the expected signature.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from enlivy_provider.client.core import loads_json
from enlivy_provider.client.errors import EnlivyError

SIGNATURE_HEADER = "Signature"  # WebhookSignature::HEADER_NAME


class EnlivyWebhookSignatureError(EnlivyError, ValueError):
    """A delivery that must not be acted on (answer it with a 4xx). The subclasses say why."""


class EnlivyWebhookSignatureMissingError(EnlivyWebhookSignatureError):
    """No ``Signature`` header, or an empty one."""


class EnlivyWebhookSignatureMismatchError(EnlivyWebhookSignatureError):
    """The header is not the HMAC of this body under this secret (wrong secret, altered body, another
    scheme, a malformed header)."""


class EnlivyWebhookPayloadError(EnlivyWebhookSignatureError):
    """The body is signed correctly but is not an event object of the documented shape."""


class EnlivyWebhookToleranceError(EnlivyWebhookSignatureError):
    """With a ``tolerance``: the event's signed ``created_at`` is missing, unreadable or too far from now."""


@dataclass(frozen=True)
class EnlivyWebhookEvent:
    """A verified delivery, the fields of the SDK's ``WebhookEvent``; ``payload`` is the whole decoded body.
    Numbers that are not integers are ``Decimal`` (money never passes through a float)."""

    id: str
    type: str
    created_at: str
    organization_id: str | None
    data: dict[str, Any]
    payload: dict[str, Any] = field(repr=False, compare=False)


def sign(payload: bytes | str, secret: str | bytes) -> str:
    """The ``Signature`` header value for ``payload``: lowercase hex HMAC-SHA256 of the body (what Enlivy
    sends, and what the emulator sends)."""
    key = _key(secret)
    return hmac.new(key, _body(payload), hashlib.sha256).hexdigest()


def verify_webhook_signature(
    payload: bytes | str,
    header: str | None,
    secret: str | bytes,
    *,
    tolerance: float | timedelta | None = None,
    now: datetime | None = None,
) -> EnlivyWebhookEvent:
    """Check a delivery's ``Signature`` header against its raw body and return the parsed event.

    :param payload: the request body exactly as received (bytes; a ``str`` is taken as its UTF-8 bytes).
        Never a re-serialised JSON object: any change of a byte breaks the signature.
    :param header: the value of the ``Signature`` header (``None`` when absent).
    :param secret: the event destination's ``signing_secret``.
    :param tolerance: off by default (the SDK has no replay window). Seconds, or a ``timedelta``: refuse an
        event whose signed ``created_at`` is further than this from ``now``, either way. Enlivy may deliver
        an event again later (retries), so a window also refuses late retries; de-duplicate on ``event.id``.
    :param now: the current time for ``tolerance`` (timezone-aware; default: the clock).
    :raises EnlivyWebhookSignatureMissingError: the header is absent or empty.
    :raises EnlivyWebhookSignatureMismatchError: the header is not this body's signature.
    :raises EnlivyWebhookPayloadError: the signed body is not an event object.
    :raises EnlivyWebhookToleranceError: with ``tolerance``, ``created_at`` is unreadable or out of range.
    :raises ValueError: the secret is empty, ``tolerance`` is not positive, ``now`` is naive.
    """
    key = _key(secret)
    window = _window(tolerance)
    body = _body(payload)
    if not header:
        raise EnlivyWebhookSignatureMissingError("Webhook signature is empty.")
    expected = hmac.new(key, body, hashlib.sha256).hexdigest().encode("ascii")
    # Bytes on both sides: compare_digest refuses non-ASCII str, and a non-ASCII header is simply wrong.
    if not hmac.compare_digest(expected, header.encode("utf-8", "replace")):
        raise EnlivyWebhookSignatureMismatchError("Webhook signature verification failed.")
    event = parse_webhook_event(body)
    if window is not None:
        _check_age(event.created_at, window, now)
    return event


def parse_webhook_event(payload: bytes | str) -> EnlivyWebhookEvent:
    """Decode a body into an :class:`EnlivyWebhookEvent` **without** checking its signature (the SDK's
    ``WebhookEvent::fromPayload``); use :func:`verify_webhook_signature` for anything received."""
    try:
        decoded = loads_json(_body(payload))
    except (ValueError, RecursionError) as exc:
        raise EnlivyWebhookPayloadError(f"Webhook `payload` is not JSON: {type(exc).__name__}.") from None
    if not isinstance(decoded, dict):
        raise EnlivyWebhookPayloadError("Webhook `payload` must be a JSON object.")
    strings = {name: _field(decoded, name, str, "") for name in ("id", "type", "created_at")}
    organization_id = _field(decoded, "organization_id", str, None)
    data = _field(decoded, "data", dict, {})
    return EnlivyWebhookEvent(
        id=strings["id"],
        type=strings["type"],
        created_at=strings["created_at"],
        organization_id=organization_id,
        data=data,
        payload=decoded,
    )


def _field(decoded: Mapping[str, Any], name: str, kind: type, default: Any) -> Any:
    # WebhookEvent.php lines 19-23: `$payload[name] ?? default` into a typed property (strict_types):
    # absent or null takes the default, any other type is an error there too.
    value = decoded.get(name)
    if value is None:
        return default
    if not isinstance(value, kind):
        wanted = "a string" if kind is str else "an object"
        raise EnlivyWebhookPayloadError(f"Webhook `{name}` must be {wanted}, not {type(value).__name__}.")
    return value


def _key(secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    if not key:
        raise ValueError("The webhook signing secret is empty: set the destination's signing_secret.")
    return key


def _body(payload: bytes | str) -> bytes:
    return payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)


def _window(tolerance: float | timedelta | None) -> timedelta | None:
    if tolerance is None:
        return None
    window = tolerance if isinstance(tolerance, timedelta) else timedelta(seconds=tolerance)
    if window <= timedelta(0):
        raise ValueError("The webhook tolerance must be positive (None turns the check off).")
    return window


def _check_age(created_at: str, window: timedelta, now: datetime | None) -> None:
    if now is None:
        now = datetime.now(timezone.utc)
    elif now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware.")
    moment = _instant(created_at)
    if moment is None:
        raise EnlivyWebhookToleranceError(
            f"Webhook `created_at` is not an ISO 8601 date and time ({created_at!r}): cannot check its age."
        )
    if abs(now - moment) > window:
        raise EnlivyWebhookToleranceError(
            f"Webhook `created_at` {created_at} is outside the tolerance of {window.total_seconds():g} s "
            f"around {now.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}."
        )


def _instant(text: str) -> datetime | None:
    """An ISO 8601 instant with a zone (``2026-06-12T10:30:00Z``); a date alone or a naive time is None."""
    if "T" not in text:
        return None
    try:
        # Python 3.10's fromisoformat does not read "Z".
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


__all__ = [
    "SIGNATURE_HEADER",
    "EnlivyWebhookEvent",
    "EnlivyWebhookPayloadError",
    "EnlivyWebhookSignatureError",
    "EnlivyWebhookSignatureMismatchError",
    "EnlivyWebhookSignatureMissingError",
    "EnlivyWebhookToleranceError",
    "parse_webhook_event",
    "sign",
    "verify_webhook_signature",
]
