"""List query parsing (enlivy_provider.emulator.listing) and exact JSON output (jsonio)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from enlivy_provider.emulator.common import ApiError
from enlivy_provider.emulator.jsonio import BodyError, depth_of, dumps, loads, parse_body
from enlivy_provider.emulator.limits import MAX_JSON_DEPTH
from enlivy_provider.emulator.listing import DEFAULT_PER_PAGE, MAX_PER_PAGE, QueryParams, parse_invoice_list
from enlivy_provider.emulator.store import InvoiceQuery, Store


def parse(items: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    return parse_invoice_list("org_x", QueryParams(items))


def test_php_style_arrays_comma_lists_and_repeats_are_one_list() -> None:
    params = QueryParams([("status[0]", "paid"), ("status[1]", "draft,pending"), ("status[]", "overdue")])
    assert params.many("status") == ["paid", "draft", "pending", "overdue"]


def test_defaults() -> None:
    query, request = parse([])
    assert (request.page, request.per_page) == (1, DEFAULT_PER_PAGE)
    assert (query.order_by, query.order, query.deleted) == ("created_at", "desc", 0)
    assert MAX_PER_PAGE == 50


def test_date_only_to_covers_the_whole_day() -> None:
    query, _ = parse([("paid_at_from", "2026-01-01"), ("paid_at_to", "2026-01-31")])
    assert query.ranges == [("paid_at", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", True)]
    query, _ = parse([("paid_at_from", "2026-01-01T10:00:00+02:00"), ("paid_at_to", "2026-01-01T12:00:00Z")])
    assert query.ranges == [("paid_at", "2026-01-01T08:00:00Z", "2026-01-01T12:00:00Z", False)]
    # "+02:00" sent unencoded in a query string arrives as " 02:00"
    query, _ = parse(
        [("updated_at_from", "2026-01-01T10:00:00 02:00"), ("updated_at_to", "2026-01-01 12:00:00")]
    )
    assert query.ranges == [("updated_at", "2026-01-01T08:00:00Z", "2026-01-01T12:00:00Z", False)]


def test_errors_are_collected_per_parameter() -> None:
    with pytest.raises(ApiError) as caught:
        parse([("status", "nope"), ("per_page", "500"), ("issued_at_from", "2026-01-01")])
    assert caught.value.status == 422
    assert set(caught.value.errors or {}) == {"status", "per_page", "issued_at_to"}


def test_dumps_prints_decimals_exactly() -> None:
    assert (
        dumps({"a": Decimal("190.00"), "b": Decimal("1E+2"), "c": [1, None, True]})
        == '{"a":190.00,"b":100,"c":[1,null,true]}'
    )
    assert dumps({"b": 1, "a": {"d": 2, "c": 3}}, sort_keys=True) == '{"a":{"c":3,"d":2},"b":1}'
    assert loads('{"x": 0.1, "n": 2}') == {"x": Decimal("0.1"), "n": 2}


def test_parse_body() -> None:
    assert parse_body(b"") == {}
    assert parse_body(b'{"price": 99.99}') == {"price": Decimal("99.99")}
    for bad in (b"[1]", b"{", b"\xff"):
        with pytest.raises(BodyError):
            parse_body(bad)


def test_empty_array_body_is_empty_input_and_depth_is_limited() -> None:
    assert parse_body(b"[]") == {}
    assert parse_body(b" [ ] ") == {}
    nested = b'{"a": ' + b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1) + b"}"
    for bad in (nested, b"[" * 100_000 + b"]" * 100_000):
        with pytest.raises(BodyError, match="nested deeper"):
            parse_body(bad)
    at_limit = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert depth_of(loads(at_limit)) == MAX_JSON_DEPTH


def _invoice(store: Store, invoice_id: str, **fields: Any) -> None:
    doc = {"id": invoice_id, "organization_id": "org_x", "total": Decimal("1.00"), "line_items": [], **fields}
    store.save_invoice(doc, search_text=invoice_id, payable_since=None)


def test_store_filters_on_tags_products_flags_and_search_fields() -> None:
    store = Store()
    _invoice(store, "org_inv_a", tag_ids=["org_tag_1", "org_tag_2"], is_tax_charged=True,
             line_items=[{"organization_product_id": "org_prod_1"}], note_lang_map={"en": "Lisbon"})  # fmt: skip
    _invoice(store, "org_inv_b", tag_ids=[], is_tax_charged=False, formatted_number="INV-2026-0007")

    def ids(**query: Any) -> set[str]:
        return {i["id"] for i in store.query_invoices(InvoiceQuery("org_x", **query), limit=50, offset=0)[0]}

    assert ids(tag_ids=["org_tag_2", "org_tag_9"]) == {"org_inv_a"}
    assert ids(tag_ids=["org_tag_9"]) == set()
    assert ids(product_ids=["org_prod_1"]) == {"org_inv_a"}
    assert ids(flags={"is_tax_charged": False}) == {"org_inv_b"}
    assert ids(q="lisbon", q_in=["note_lang_map"]) == {"org_inv_a"}
    assert ids(q="inv-2026", q_in=["formatted_number"]) == {"org_inv_b"}
    assert ids(q="lisbon", q_in=["number", "formatted_number"]) == set()


def test_unknown_and_unimplemented_filter_names_are_422() -> None:
    with pytest.raises(ApiError) as caught:
        parse([("due_at_to", "2026-01-01"), ("network_exchange", "1"), ("status", "paid")])
    assert set(caught.value.errors or {}) == {"due_at_to", "network_exchange"}
