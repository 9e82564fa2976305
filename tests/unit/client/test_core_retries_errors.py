"""Retry decisions, backoff numbers (§15) and error mapping and texts (§14)."""

from __future__ import annotations

import datetime as dt
import email.utils

import pytest

from enlivy_provider.client import (
    EnlivyAPIError,
    EnlivyAuthenticationError,
    EnlivyConflictError,
    EnlivyConnectionError,
    EnlivyError,
    EnlivyForbiddenError,
    EnlivyNotFoundError,
    EnlivyRateLimitError,
    EnlivyServerError,
    EnlivyValidationError,
    core,
)

TOKEN = "1|supersecrettokenvalue"


def _response(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> core.ApiResponse:
    return core.ApiResponse(status, headers or {}, body, "PUT", "/organizations/org_x/invoices/org_inv_y")


# -- backoff --------------------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_without_jitter() -> None:
    policy = core.RetryPolicy(backoff_base=0.5, backoff_cap=8.0)
    assert [policy.delay(n, rand=lambda: 1.0) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_jitter_takes_the_delay_down_to_half_at_most() -> None:
    policy = core.RetryPolicy(backoff_base=0.5)
    assert [policy.delay(n, rand=lambda: 0.0) for n in range(3)] == [0.25, 0.5, 1.0]
    delays = {policy.delay(2) for _ in range(50)}
    assert all(1.0 <= d <= 2.0 for d in delays)
    assert len(delays) > 1  # actually random


def test_retry_after_raises_the_delay_and_is_capped() -> None:
    policy = core.RetryPolicy(backoff_base=0.5, max_retry_after=60.0)
    assert policy.delay(0, retry_after=3.0, rand=lambda: 1.0) == 3.0
    assert policy.delay(0, retry_after=3600.0, rand=lambda: 1.0) == 60.0
    # A Retry-After shorter than the backoff does not shorten it.
    assert policy.delay(3, retry_after=0.1, rand=lambda: 1.0) == 4.0


def test_retry_after_header_as_seconds_or_http_date() -> None:
    assert core.parse_retry_after({"Retry-After": "2"}) == 2.0
    assert core.parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert core.parse_retry_after({}) is None
    assert core.parse_retry_after({"Retry-After": "soon"}) is None
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=30)
    seconds = core.parse_retry_after({"Retry-After": email.utils.format_datetime(later, usegmt=True)})
    assert seconds is not None and 28 <= seconds <= 30


# -- retry decisions ------------------------------------------------------------------------------------

GET = core.prepare("GET", "/organizations/o/invoices")
KEYED_POST = core.prepare("POST", "/organizations/o/invoices", json={}, idempotency_key="k")


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, None])
def test_get_and_keyed_writes_are_retried_on_transient_failures(status: int | None) -> None:
    assert core.should_retry(GET, status, retries_done=0, max_retries=3)
    assert core.should_retry(KEYED_POST, status, retries_done=2, max_retries=3)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 501, 505])
def test_other_statuses_are_never_retried(status: int) -> None:
    assert not core.should_retry(GET, status, retries_done=0, max_retries=3)


def test_a_write_without_a_key_is_never_retried() -> None:
    unkeyed = core.PreparedRequest("POST", "/x", [], b"{}", {})
    assert not core.should_retry(unkeyed, 503, retries_done=0, max_retries=3)
    assert not core.should_retry(unkeyed, None, retries_done=0, max_retries=3)


def test_retries_stop_at_max_retries() -> None:
    assert not core.should_retry(GET, 503, retries_done=3, max_retries=3)
    assert not core.should_retry(GET, 503, retries_done=0, max_retries=0)


def test_attempts_walk_through_retries_then_raise_the_last_error() -> None:
    attempts = core.Attempts(GET, core.RetryPolicy(max_retries=2, backoff_base=0.001))
    assert attempts.on_response(503, {}, b"").delay is not None
    assert attempts.on_response(429, {"Retry-After": "0"}, b"").delay is not None
    final = attempts.on_response(503, {}, b'{"message": "Service Unavailable"}')
    assert final.delay is None
    with pytest.raises(EnlivyServerError, match="503 Service Unavailable"):
        final.result()


def test_attempts_honour_retry_after_on_429() -> None:
    attempts = core.Attempts(GET, core.RetryPolicy(backoff_base=0.001, max_retry_after=60))
    step = attempts.on_response(429, {"Retry-After": "7"}, b"")
    assert step.delay == 7.0


def test_attempts_turn_a_final_transport_error_into_a_connection_error() -> None:
    attempts = core.Attempts(GET, core.RetryPolicy(max_retries=1, backoff_base=0.001))
    assert attempts.on_transport_error(ConnectionResetError("reset")).delay is not None
    step = attempts.on_transport_error(ConnectionResetError("reset"))
    with pytest.raises(
        EnlivyConnectionError, match=r"GET /organizations/o/invoices → connection error.*2 attempts"
    ):
        step.result()


def test_attempts_return_success_responses() -> None:
    step = core.Attempts(GET, core.RetryPolicy()).on_response(200, {}, b'{"data": {"id": "x"}}')
    assert step.result().data == {"id": "x"}


# -- errors -----------------------------------------------------------------------------------------------


def test_validation_error_text_names_method_path_status_and_fields() -> None:
    body = (
        b'{"message": "The given data was invalid.", '
        b'"errors": {"line_items.0.quantity": ["must be greater than 0"]}}'
    )
    error = core.error_from_response(_response(422, body))
    assert isinstance(error, EnlivyValidationError)
    assert str(error) == (
        "PUT /organizations/org_x/invoices/org_inv_y → 422 The given data was invalid: "
        "line_items.0.quantity: must be greater than 0"
    )
    assert error.field_errors == {"line_items.0.quantity": ["must be greater than 0"]}
    assert not error.retryable


def test_several_field_errors_are_all_listed() -> None:
    body = b'{"message": "The given data was invalid.", "errors": {"currency": ["required"], "status": ["a", "b"]}}'
    assert str(core.error_from_response(_response(422, body))).endswith(
        "invalid: currency: required; status: a, b"
    )


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, EnlivyAPIError),
        (401, EnlivyAuthenticationError),
        (403, EnlivyForbiddenError),
        (404, EnlivyNotFoundError),
        (409, EnlivyConflictError),
        (422, EnlivyValidationError),
        (429, EnlivyRateLimitError),
        (500, EnlivyServerError),
        (501, EnlivyServerError),
        (503, EnlivyServerError),
    ],
)
def test_status_maps_to_exception_class(status: int, cls: type[EnlivyAPIError]) -> None:
    error = core.error_from_response(_response(status, b'{"message": "nope"}'))
    assert type(error) is cls
    assert (error.status, error.message, error.method) == (status, "nope", "PUT")
    assert error.retryable == (status in (429, 500, 502, 503, 504))


def test_error_without_a_message_says_the_status() -> None:
    error = core.error_from_response(_response(500, b"<html>oops</html>"))
    assert str(error) == "PUT /organizations/org_x/invoices/org_inv_y → 500 API error: HTTP 500"


def test_rate_limit_error_carries_retry_after_and_request_id() -> None:
    error = core.error_from_response(_response(429, b"{}", {"Retry-After": "4", "X-Request-Id": "req-1"}))
    assert isinstance(error, EnlivyRateLimitError)
    assert error.retry_after == 4.0
    assert error.request_id == "req-1"
    assert str(error).endswith("(request id req-1)")


def test_a_token_echoed_by_the_server_is_masked_in_the_error() -> None:
    body = b'{"message": "Token 1|supersecrettokenvalue is invalid", "errors": {"t": ["1|supersecrettokenvalue"]}}'
    error = core.error_from_response(_response(401, body), secrets=(TOKEN,))
    assert TOKEN not in str(error)
    assert TOKEN not in repr(error.body)
    assert TOKEN not in repr(error.field_errors)


def test_a_token_is_hidden_whole_and_by_its_secret_part() -> None:
    assert core.secret_forms(TOKEN) == (TOKEN, "supersecrettokenvalue")
    assert core.secret_forms("1|abc") == ("1|abc",)  # too short to be a token's secret: masked whole only
    assert core.secret_forms("account-password") == ("account-password",)
    assert core.secret_forms(None) == ()
    text = f"Bearer {TOKEN}; secret supersecrettokenvalue; %7Csupersecrettokenvalue"
    assert core.redact(text, core.secret_forms(TOKEN)) == "Bearer ***; secret ***; %7C***"


def test_a_long_non_json_body_is_masked_before_it_is_cut_short() -> None:
    error = core.error_from_response(
        _response(502, ("x" * 490 + TOKEN).encode()), secrets=core.secret_forms(TOKEN)
    )
    assert error.body == "x" * 490 + "***"  # not 490 x + "1|supersec"


def test_a_transport_error_text_is_masked_too() -> None:
    error = core.connection_error(GET, OSError(f"bad header Bearer {TOKEN}"), secrets=(TOKEN,))
    assert TOKEN not in str(error)


def test_errors_survive_pickling() -> None:
    import pickle

    body = b'{"message": "The given data was invalid.", "errors": {"currency": ["required"]}}'
    error = core.error_from_response(_response(422, body))
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is EnlivyValidationError
    assert (str(copy), copy.field_errors, copy.status) == (str(error), error.field_errors, 422)
    limited = pickle.loads(
        pickle.dumps(core.error_from_response(_response(429, b"{}", {"Retry-After": "3"})))
    )
    assert limited.retry_after == 3.0
    cut = pickle.loads(pickle.dumps(core.connection_error(GET, ConnectionResetError("reset"))))
    assert isinstance(cut, EnlivyConnectionError) and cut.method == "GET"


def test_a_success_answer_that_is_not_json_is_a_clear_error() -> None:
    response = core.ApiResponse(200, {"content-type": "text/html"}, b"<html>proxy login</html>", "GET", "/x")
    with pytest.raises(EnlivyError, match=r"GET /x → 200: the response is not JSON \(text/html\)"):
        _ = response.data
