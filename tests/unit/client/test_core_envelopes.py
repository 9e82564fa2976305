"""Envelope unwrapping (docs/enlivy-api-notes.md §4) on the response shapes the documentation and the SDK show."""

from __future__ import annotations

from decimal import Decimal

import pytest

from enlivy_provider.client import core
from enlivy_provider.client.errors import EnlivyError

# The public page's POST example: invoice unwrapped at the top, every relation wrapped in {"data": ...}.
PUBLIC_CREATE_BODY = b"""{
  "id": "org_inv_new", "organization_id": "org_x", "status": "pending", "currency": "EUR",
  "sub_total": 99.99, "discount": 0, "tax_total": 0, "total": 99.99,
  "line_items": {"data": [{"id": "org_invli_1", "quantity": 1, "price": 99.99, "sub_total": 99.99,
                           "name_lang_map": {"en": "Plan"}}]},
  "taxes": {"data": []},
  "invoice_prefix": {"data": {"id": "org_invpfx_1", "name": "INV"}},
  "tag_ids": []
}"""

# The public page's GET example: wrapped in data; taxes as {} and tag_ids as a flat list.
PUBLIC_GET_BODY = b"""{"data": {
  "id": "org_inv_1", "status": "paid", "total": 189.75, "taxes": {}, "tag_ids": ["org_tag_1"],
  "line_items": {"data": [{"id": "org_invli_2", "quantity": 2, "price": 95.00}]}
}}"""

# SDK style: create mocked as {"data": {...}} with bare relations.
SDK_CREATE_BODY = (
    b'{"data": {"id": "org_inv_2", "object": "invoice", "total": "120.000000", "line_items": [{"id": "li"}]}}'
)

PUBLIC_LIST_BODY = b"""{"data": [
    {"id": "org_inv_1", "total": 99.99, "line_items": {"data": []}},
    {"id": "org_inv_2", "total": 10}
  ],
  "meta": {"pagination": {"total": 45, "count": 2, "per_page": 20, "current_page": 1, "total_pages": 3,
                          "links": {}},
           "navigation": {"active": 45, "trash": 1}}}"""


def test_bare_create_body_and_its_wrapped_relations_are_unwrapped() -> None:
    record = core.unwrap_body(core.loads_json(PUBLIC_CREATE_BODY))
    assert record["id"] == "org_inv_new"
    assert record["line_items"] == [
        {"id": "org_invli_1", "quantity": 1, "price": Decimal("99.99"), "sub_total": Decimal("99.99"),
         "name_lang_map": {"en": "Plan"}}
    ]  # fmt: skip
    assert record["taxes"] == []
    assert record["invoice_prefix"] == {"id": "org_invpfx_1", "name": "INV"}
    assert record["tag_ids"] == []


def test_wrapped_get_body_keeps_bare_relations_as_they_are() -> None:
    record = core.unwrap_body(core.loads_json(PUBLIC_GET_BODY))
    assert record["id"] == "org_inv_1"
    assert record["taxes"] == {}
    assert record["tag_ids"] == ["org_tag_1"]
    assert record["line_items"] == [{"id": "org_invli_2", "quantity": 2, "price": Decimal("95.00")}]


def test_sdk_style_wrapped_create_with_bare_relations() -> None:
    record = core.unwrap_body(core.loads_json(SDK_CREATE_BODY))
    assert record == {
        "id": "org_inv_2",
        "object": "invoice",
        "total": "120.000000",
        "line_items": [{"id": "li"}],
    }


def test_list_body_gives_unwrapped_items_and_meta() -> None:
    items, meta = core.unwrap_list_body(core.loads_json(PUBLIC_LIST_BODY))
    assert [item["id"] for item in items] == ["org_inv_1", "org_inv_2"]
    assert items[0]["line_items"] == []
    assert meta["pagination"]["total_pages"] == 3
    assert meta["navigation"] == {"active": 45, "trash": 1}


def test_bare_list_body_is_one_page_without_meta() -> None:
    items, meta = core.unwrap_list_body([{"id": "a"}])
    assert items == [{"id": "a"}]
    assert core.next_page(meta, 1) is None


def test_list_body_that_is_not_a_list_is_an_error() -> None:
    with pytest.raises(EnlivyError, match="expected a list"):
        core.unwrap_list_body({"data": {"id": "x"}})


def test_record_with_data_and_meta_side_data_is_unwrapped_to_the_record() -> None:
    body = {"data": {"id": "org_inv_1"}, "meta": {"charge_result": {"status": "succeeded"}}}
    assert core.unwrap_body(body) == {"id": "org_inv_1"}


def test_an_object_relation_with_more_keys_than_data_is_not_an_envelope() -> None:
    record = {"receiver_information": {"data": "x", "name": "Globex"}}
    assert core.unwrap_record(record) == record


def test_json_numbers_decode_to_decimal_and_integers_stay_int() -> None:
    body = core.loads_json(b'{"price": 0.10, "quantity": 3, "big": 12345678901234567890.01}')
    assert body == {"price": Decimal("0.10"), "quantity": 3, "big": Decimal("12345678901234567890.01")}
    assert isinstance(body["quantity"], int)


@pytest.mark.parametrize(
    ("meta", "requested", "expected"),
    [
        ({"pagination": {"current_page": 1, "total_pages": 3}}, 1, 2),
        ({"pagination": {"current_page": 3, "total_pages": 3}}, 3, None),
        ({"pagination": {"current_page": 1, "total_pages": 0}}, 1, None),
        ({}, 1, None),
        # A server that keeps answering page 1 must not make us loop forever.
        ({"pagination": {"current_page": 1, "total_pages": 5}}, 2, None),
    ],
)
def test_next_page(meta: dict, requested: int, expected: int | None) -> None:
    assert core.next_page(meta, requested) == expected
