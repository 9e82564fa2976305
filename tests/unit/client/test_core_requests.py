"""Building requests: query encoding (§1), JSON bodies with exact decimals, idempotency keys, base URL
checks, filter-name checks (§6)."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import pytest

from enlivy_provider.client import EnlivyInvalidRequestError, core, dumps_json
from enlivy_provider.client.endpoints import Endpoints


def test_query_booleans_are_1_and_0_and_nulls_are_left_out() -> None:
    assert core.encode_query({"is_sold": True, "is_tax_charged": False, "q": None}) == [
        ("is_sold", "1"),
        ("is_tax_charged", "0"),
    ]


def test_query_ids_and_include_lists_become_comma_lists() -> None:
    query = core.encode_query({"ids": ["org_inv_1", "org_inv_2"], "include": ("line_items", "taxes")})
    assert query == [("ids", "org_inv_1,org_inv_2"), ("include", "line_items,taxes")]


def test_query_other_lists_use_php_indexed_brackets() -> None:
    assert core.encode_query({"q_in": ["name", "email"]}) == [("q_in[0]", "name"), ("q_in[1]", "email")]


def test_query_dates_and_datetimes_are_iso_8601_utc() -> None:
    berlin = dt.timezone(dt.timedelta(hours=2))
    query = core.encode_query(
        {
            "updated_at_from": dt.datetime(2026, 5, 1, 2, 0, tzinfo=berlin),
            "issued_at_to": dt.date(2026, 5, 31),
        }
    )
    assert query == [("updated_at_from", "2026-05-01T00:00:00Z"), ("issued_at_to", "2026-05-31")]


def test_dumps_json_writes_decimals_digit_for_digit() -> None:
    payload = {"price": Decimal("0.10"), "quantity": Decimal("3"), "rate": Decimal("19.125"), "n": 2}
    text = dumps_json(payload)
    assert text == b'{"price":0.10,"quantity":3,"rate":19.125,"n":2}'
    assert json.loads(text, parse_float=Decimal) == {
        "price": Decimal("0.10"),
        "quantity": 3,
        "rate": Decimal("19.125"),
        "n": 2,
    }


def test_dumps_json_never_goes_through_float() -> None:
    # 0.1 + 0.2 in floats is 0.30000000000000004; as Decimals it must stay exact.
    total = Decimal("0.1") + Decimal("0.2")
    assert dumps_json({"total": total}) == b'{"total":0.3}'
    many_digits = Decimal("12345678901234567890.123456789")
    assert core.loads_json(dumps_json([many_digits])) == [many_digits]


def test_dumps_json_exponent_decimals_are_written_plainly() -> None:
    assert dumps_json([Decimal("1E+2"), Decimal("1E-7")]) == b"[100,0.0000001]"


def test_dumps_json_round_trips_text_and_nesting() -> None:
    value = {"name_lang_map": {"en": 'Plan "Pro" – ü'}, "items": [None, True, False, 1.5, []]}
    assert json.loads(dumps_json(value)) == value


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity"), float("nan")])
def test_dumps_json_refuses_non_finite_numbers(bad: object) -> None:
    with pytest.raises(ValueError):
        dumps_json({"total": bad})


def test_writes_get_a_random_idempotency_key_when_none_is_given() -> None:
    first = core.prepare("POST", "/organizations/o/invoices", json={})
    second = core.prepare("POST", "/organizations/o/invoices", json={})
    assert first.idempotency_key and second.idempotency_key
    assert first.idempotency_key != second.idempotency_key
    assert first.retry_allowed


def test_writes_keep_the_callers_idempotency_key() -> None:
    request = core.prepare("put", "/x", json={"a": 1}, idempotency_key="run-42")
    assert request.method == "PUT"
    assert request.headers["Idempotency-Key"] == "run-42"
    assert request.headers["Content-Type"] == "application/json"


def test_reads_carry_no_idempotency_key() -> None:
    request = core.prepare("GET", "/x", params={"page": 2})
    assert request.idempotency_key is None
    assert request.body is None
    assert request.query == [("page", "2")]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (None, "https://api.enlivy.com"),
        ("https://api.enlivy.com/", "https://api.enlivy.com"),
        ("api.enlivy.com", "https://api.enlivy.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:9000/", "http://localhost:9000"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_base_url_normalisation(url: str | None, expected: str) -> None:
    assert core.normalise_base_url(url) == expected


def test_plain_http_to_a_remote_host_is_refused() -> None:
    with pytest.raises(
        EnlivyInvalidRequestError, match=re.escape("refusing plain http:// to api.example.com")
    ):
        core.normalise_base_url("http://api.example.com")


def test_plain_http_to_a_remote_host_is_allowed_when_asked_for() -> None:
    assert (
        core.normalise_base_url("http://api.example.com", allow_insecure_http=True)
        == "http://api.example.com"
    )


def test_timeout_number_is_read_timeout_with_capped_connect() -> None:
    assert core.normalise_timeout(60) == (10.0, 60.0)
    assert core.normalise_timeout(5) == (5.0, 5.0)
    assert core.normalise_timeout([3, 40]) == (3.0, 40.0)


def test_unknown_filter_is_a_local_error_that_suggests_the_right_name() -> None:
    with pytest.raises(
        EnlivyInvalidRequestError, match=r"unknown filter 'stauts' for invoices \(did you mean 'status'\?\)"
    ):
        Endpoints("org_x").list_page("invoices", filters={"stauts": "paid"})


def test_unknown_include_is_a_local_error() -> None:
    with pytest.raises(EnlivyInvalidRequestError, match="unknown include 'lines'"):
        Endpoints("org_x").get_invoice("org_inv_1", include=["lines"])


def test_documented_filters_pass_and_include_is_sent_as_a_comma_list() -> None:
    call = Endpoints("org_x").list_page(
        "invoices",
        page=2,
        per_page=10,
        filters={"status": "paid", "ids": ["a", "b"], "include": ["line_items"]},
    )
    assert call.path == "/organizations/org_x/invoices"
    assert call.params == {
        "status": "paid",
        "ids": ["a", "b"],
        "include": "line_items",
        "page": 2,
        "per_page": 10,
    }


def test_per_page_above_the_api_maximum_is_refused() -> None:
    with pytest.raises(EnlivyInvalidRequestError, match="per_page must be between 1 and 50"):
        Endpoints("org_x").list_page("invoices", per_page=100, filters={})


def test_missing_organization_id_is_a_local_error() -> None:
    with pytest.raises(EnlivyInvalidRequestError, match="no organization id"):
        Endpoints(None).get_invoice("org_inv_1")


def test_ids_in_paths_cannot_change_the_route() -> None:
    call = Endpoints("org_x").get_invoice("../../users/org_user_1")
    assert call.path == "/organizations/org_x/invoices/..%2F..%2Fusers%2Forg_user_1"


def test_restore_path_puts_restore_before_the_id() -> None:
    assert (
        Endpoints("org_x").restore_invoice("org_inv_1").path
        == "/organizations/org_x/invoices/restore/org_inv_1"
    )


def test_include_on_writes_travels_in_the_body() -> None:
    call = Endpoints("org_x").create_invoice({"currency": "EUR"}, "key-1", ["line_items", "taxes"])
    assert call.json == {"currency": "EUR", "include": "line_items,taxes"}
    assert call.idempotency_key == "key-1"
