"""Webhook signatures, checked exactly as the official PHP SDK checks them.

The scheme (SDK ``src/Webhook/WebhookSignature.php`` lines 14-42, the version that carries ``HEADER_NAME``):
the ``Signature`` header holds the lowercase hex HMAC-SHA256 of the raw body, keyed with the destination's
signing secret; nothing else is signed, there is no timestamp, and the whole header is compared in constant
time. The first six tests replay the SDK's own ``tests/Unit/WebhookSignatureTest.php`` (same secret,
payloads and inputs; line numbers of that file are given on each). The SDK computes the expected signatures
at run time with PHP's ``hash_hmac``; the literal hex strings here were computed with
``printf '%s' '<payload>' | openssl dgst -sha256 -hmac '<secret>'``, an implementation independent of
Python's ``hmac``, so the vectors check the scheme and not only this module against itself.
"""

from __future__ import annotations

import hmac
import pickle
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from enlivy_provider import webhooks
from enlivy_provider.webhooks import (
    SIGNATURE_HEADER,
    EnlivyWebhookPayloadError,
    EnlivyWebhookSignatureError,
    EnlivyWebhookSignatureMismatchError,
    EnlivyWebhookSignatureMissingError,
    EnlivyWebhookToleranceError,
    parse_webhook_event,
    sign,
    verify_webhook_signature,
)

# tests/Unit/WebhookSignatureTest.php line 13.
SDK_SECRET = "whsec_test_secret"
# Line 17 (testValidSignatureReturnsTrue) and its signature, openssl-computed.
VALID_PAYLOAD = b'{"id":"evt_xxx","type":"invoice.created"}'
VALID_SIGNATURE = "e0fa6589f681ce73fedf7aa8a951e4fac36e35512af93b037830dc9cdefd093c"
# Lines 30, 48, 59 (the invalid-signature, wrong-secret and tampered-payload tests).
SHORT_PAYLOAD = b'{"id":"evt_xxx"}'
SHORT_SIGNATURE = "0126d42bfa083682f5507d7d0096a3107351648a78f1d65def66398d2eab4db2"
# Line 62: the payload the tampered test verifies instead; its own signature under the SDK secret.
TAMPERED_PAYLOAD = b'{"id":"evt_tampered"}'
TAMPERED_SIGNATURE = "e8b926ae2475d2bf865ed306cbd7c5ad4f3e48dbec7febc7ca3c70794620e3aa"
# A fuller event with a non-ASCII note and an amount (not from the SDK tests; openssl-computed likewise).
FULL_PAYLOAD = (
    '{"id":"evt_1","type":"invoice.paid","created_at":"2026-06-12T10:30:00Z",'
    '"data":{"id":"org_inv_1","total":226.10,"note":"Zahlung für März"},"organization_id":"org_1"}'
).encode()
FULL_SIGNATURE = "12dc2ba31ba786173d9eba3000535fef9bb25db693bef6bdef19175fcc83caf2"
# HMAC of "1700000000.{payload}": the superseded early scheme (t=…,v1=…), kept to prove it is refused.
OLD_SCHEME_SIGNATURE = "064aead8ea07e5aa31da95c9fb5fb9cae712b3a2194a951ca2ace3355f37072b"
CREATED_AT = datetime(2026, 6, 12, 10, 30, tzinfo=timezone.utc)


# -- the SDK's unit tests --------------------------------------------------------------------------------------


def test_sdk_valid_signature_returns_the_event() -> None:
    # WebhookSignatureTest.php lines 15-23 (testValidSignatureReturnsTrue).
    assert sign(VALID_PAYLOAD, SDK_SECRET) == VALID_SIGNATURE
    event = verify_webhook_signature(VALID_PAYLOAD, VALID_SIGNATURE, SDK_SECRET)
    assert (event.id, event.type) == ("evt_xxx", "invoice.created")
    # WebhookEvent.php lines 19-23: absent fields default to "", None and an empty object.
    assert (event.created_at, event.organization_id, event.data) == ("", None, {})


def test_sdk_invalid_signature_fails_verification() -> None:
    # Lines 25-33 (testInvalidSignatureThrowsException): the message says "verification failed".
    with pytest.raises(EnlivyWebhookSignatureMismatchError, match="verification failed"):
        verify_webhook_signature(SHORT_PAYLOAD, "invalid_signature", SDK_SECRET)


def test_sdk_empty_signature_is_refused_as_empty() -> None:
    # Lines 35-41 (testEmptySignatureThrowsException): the message says "empty".
    with pytest.raises(EnlivyWebhookSignatureMissingError, match="empty"):
        verify_webhook_signature(b"{}", "", SDK_SECRET)


def test_sdk_wrong_secret_fails_verification() -> None:
    # Lines 43-52 (testWrongSecretFails).
    assert sign(SHORT_PAYLOAD, SDK_SECRET) == SHORT_SIGNATURE
    with pytest.raises(EnlivyWebhookSignatureMismatchError, match="verification failed"):
        verify_webhook_signature(SHORT_PAYLOAD, SHORT_SIGNATURE, "wrong_secret")


def test_sdk_tampered_payload_fails_verification() -> None:
    # Lines 54-63 (testTamperedPayloadFails); the tampered body's own signature differs, as it must.
    assert sign(TAMPERED_PAYLOAD, SDK_SECRET) == TAMPERED_SIGNATURE
    with pytest.raises(EnlivyWebhookSignatureMismatchError, match="verification failed"):
        verify_webhook_signature(TAMPERED_PAYLOAD, SHORT_SIGNATURE, SDK_SECRET)


def test_sdk_header_name() -> None:
    # Lines 65-68 (testHeaderNameConstant); WebhookSignature.php line 14.
    assert SIGNATURE_HEADER == "Signature"


# -- what the SDK's code implies beyond its tests --------------------------------------------------------------


def test_a_utf8_body_with_amounts_verifies_and_money_stays_decimal() -> None:
    assert sign(FULL_PAYLOAD, SDK_SECRET) == FULL_SIGNATURE
    event = verify_webhook_signature(FULL_PAYLOAD, FULL_SIGNATURE, SDK_SECRET)
    assert event.data["total"] == Decimal("226.10") and isinstance(event.data["total"], Decimal)
    assert event.data["note"] == "Zahlung für März"
    assert (event.organization_id, event.created_at) == ("org_1", "2026-06-12T10:30:00Z")
    # A str body is its UTF-8 bytes (PHP strings are bytes; what matters is the bytes that were signed).
    assert verify_webhook_signature(FULL_PAYLOAD.decode(), FULL_SIGNATURE, SDK_SECRET) == event


def test_a_missing_header_is_the_empty_case() -> None:
    # The SDK's own example reads the header with `?? ''` (examples/checkout/public/webhook.php line 14).
    with pytest.raises(EnlivyWebhookSignatureMissingError):
        verify_webhook_signature(SHORT_PAYLOAD, None, SDK_SECRET)


# Headers that contain the right hex and still must fail: hash_equals compares the whole header byte for byte.
MALFORMED_HEADERS = {
    "uppercase": VALID_SIGNATURE.upper(),
    "sha256-prefix": f"sha256={VALID_SIGNATURE}",
    "leading-space": f" {VALID_SIGNATURE}",
    "trailing-space": f"{VALID_SIGNATURE} ",
    "truncated": VALID_SIGNATURE[:-1],
    "too-long": VALID_SIGNATURE + "0",
    "non-ascii": VALID_SIGNATURE[:-1] + "é",  # refused, never a TypeError from compare_digest
    "two-signatures": f"{VALID_SIGNATURE},{VALID_SIGNATURE}",  # no list of signatures in this scheme
    "v1-entry": f"v1={VALID_SIGNATURE}",
    "old-format-with-the-valid-hex": f"t=1700000000,v1={VALID_SIGNATURE}",
    "old-format-multiple-v1": f"t=1700000000,v1=invalid_one,v1={VALID_SIGNATURE}",
}


@pytest.mark.parametrize("header", list(MALFORMED_HEADERS.values()), ids=list(MALFORMED_HEADERS))
def test_a_malformed_header_fails_verification_even_when_it_contains_the_right_hex(header: str) -> None:
    with pytest.raises(EnlivyWebhookSignatureMismatchError):
        verify_webhook_signature(VALID_PAYLOAD, header, SDK_SECRET)


def test_the_superseded_timestamped_scheme_is_refused() -> None:
    # An early SDK (before 0.2.0) signed "{t}.{payload}" and sent "t=…,v1=…"; the SDK replaced it with the raw-body
    # scheme, so a header built the old way is a mismatch, however correct it was then.
    old_header = f"t=1700000000,v1={OLD_SCHEME_SIGNATURE}"
    with pytest.raises(EnlivyWebhookSignatureMismatchError):
        verify_webhook_signature(SHORT_PAYLOAD, old_header, SDK_SECRET, tolerance=None)


def test_the_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(webhooks.hmac, "compare_digest", spy)
    verify_webhook_signature(VALID_PAYLOAD, VALID_SIGNATURE, SDK_SECRET)
    with pytest.raises(EnlivyWebhookSignatureMismatchError):
        verify_webhook_signature(VALID_PAYLOAD, "0" * 64, SDK_SECRET)
    assert calls == [
        (VALID_SIGNATURE.encode(), VALID_SIGNATURE.encode()),
        (VALID_SIGNATURE.encode(), b"0" * 64),
    ]


def test_an_empty_secret_is_a_configuration_error_not_a_pass() -> None:
    # hash_hmac would key with "" and accept a signature made with an empty key; the SDK's own example
    # refuses to verify without a secret (examples/checkout/public/webhook.php lines 16-19).
    with pytest.raises(ValueError, match="signing secret is empty"):
        verify_webhook_signature(SHORT_PAYLOAD, sign(SHORT_PAYLOAD, "x"), "")


# -- the payload behind a good signature ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "payload"),
        (b'["evt_1"]', "payload"),
        (b'{"id": 5}', "id"),
        (b'{"type": ["invoice.paid"]}', "type"),
        (b'{"created_at": []}', "created_at"),
        (b'{"organization_id": 1}', "organization_id"),
        (b'{"data": "org_inv_1"}', "data"),
    ],
)
def test_a_well_signed_body_that_is_no_event_names_the_field(body: bytes, field: str) -> None:
    with pytest.raises(EnlivyWebhookPayloadError, match=f"`{field}`") as raised:
        verify_webhook_signature(body, sign(body, SDK_SECRET), SDK_SECRET)
    assert isinstance(raised.value, EnlivyWebhookSignatureError)


def test_null_fields_take_the_sdk_defaults() -> None:
    # `$payload[name] ?? default`: null coalesces like an absent key (WebhookEvent.php lines 19-23).
    body = b'{"id": null, "type": null, "created_at": null, "organization_id": null, "data": null}'
    event = verify_webhook_signature(body, sign(body, SDK_SECRET), SDK_SECRET)
    assert (event.id, event.type, event.created_at, event.organization_id, event.data) == (
        "",
        "",
        "",
        None,
        {},
    )


def test_parse_webhook_event_does_not_verify() -> None:
    event = parse_webhook_event(VALID_PAYLOAD)
    assert (event.id, event.type) == ("evt_xxx", "invoice.created")


# -- optional freshness window on the signed created_at (not in the SDK: off by default) ------------------------


def _event(created_at: datetime | str) -> tuple[bytes, str]:
    stamp = created_at if isinstance(created_at, str) else created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    body = f'{{"id":"evt_1","type":"invoice.paid","created_at":"{stamp}","data":{{}}}}'.encode()
    return body, sign(body, SDK_SECRET)


def test_by_default_a_replayed_old_delivery_is_accepted_as_the_sdk_does() -> None:
    body, signature = _event(CREATED_AT)
    much_later = CREATED_AT + timedelta(days=30)
    assert verify_webhook_signature(body, signature, SDK_SECRET, now=much_later).id == "evt_1"


@pytest.mark.parametrize(
    ("age_s", "accepted"), [(0, True), (300, True), (301, False), (-300, True), (-301, False), (86400, False)]
)
def test_tolerance_bounds_the_age_of_the_signed_created_at_both_ways(age_s: int, accepted: bool) -> None:
    body, signature = _event(CREATED_AT)
    now = CREATED_AT + timedelta(seconds=age_s)
    if accepted:
        assert verify_webhook_signature(body, signature, SDK_SECRET, tolerance=300, now=now).id == "evt_1"
    else:
        with pytest.raises(EnlivyWebhookToleranceError, match="outside the tolerance"):
            verify_webhook_signature(body, signature, SDK_SECRET, tolerance=timedelta(seconds=300), now=now)


def test_a_forged_old_delivery_is_a_mismatch_before_any_time_check() -> None:
    body, _ = _event(CREATED_AT)
    with pytest.raises(EnlivyWebhookSignatureMismatchError):
        verify_webhook_signature(
            body, "0" * 64, SDK_SECRET, tolerance=300, now=CREATED_AT + timedelta(days=1)
        )


@pytest.mark.parametrize("created_at", ["", "yesterday", "2026-06-12"])
def test_tolerance_needs_a_created_at_it_can_read(created_at: str) -> None:
    body, signature = _event(created_at)
    with pytest.raises(EnlivyWebhookToleranceError, match="created_at"):
        verify_webhook_signature(body, signature, SDK_SECRET, tolerance=300, now=CREATED_AT)


@pytest.mark.parametrize("tolerance", [0, -1, timedelta(0)])
def test_tolerance_must_be_positive(tolerance: float | timedelta) -> None:
    body, signature = _event(CREATED_AT)
    with pytest.raises(ValueError, match="tolerance"):
        verify_webhook_signature(body, signature, SDK_SECRET, tolerance=tolerance, now=CREATED_AT)


def test_now_must_be_timezone_aware() -> None:
    body, signature = _event(CREATED_AT)
    with pytest.raises(ValueError, match="timezone"):
        verify_webhook_signature(body, signature, SDK_SECRET, tolerance=300, now=datetime(2026, 6, 12))


# -- secrets ----------------------------------------------------------------------------------------------------


def test_neither_the_secret_nor_the_expected_signature_appears_in_errors_or_reprs() -> None:
    secret = "whsec_never_show_this_value"
    body, _ = _event(CREATED_AT)
    expected = sign(body, secret)
    failures: list[BaseException] = []
    for header, kwargs in (
        ("", {}),
        ("0" * 64, {}),
        (expected, {"tolerance": 1, "now": CREATED_AT + timedelta(hours=1)}),
    ):
        with pytest.raises(EnlivyWebhookSignatureError) as raised:
            verify_webhook_signature(body, header, secret, **kwargs)  # type: ignore[arg-type]
        failures.append(raised.value)
    event = verify_webhook_signature(body, expected, secret)
    texts = [str(e) for e in failures] + [repr(e) for e in failures] + [repr(event), str(event)]
    texts += [repr(pickle.loads(pickle.dumps(e))) for e in failures]
    for text in texts:
        assert secret not in text and "never_show" not in text
        assert expected not in text
