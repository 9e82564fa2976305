"""Hostile and absurd input gets a 4xx with the usual body, never a 500 (docs/emulator.md "Limits")."""

from __future__ import annotations

from typing import Any

import pytest
from emulator_test_api import Api, invoice_payload

from enlivy_provider.emulator.limits import MAX_BODY_BYTES, MAX_LINE_ITEMS
from enlivy_provider.testing import EmulatorHandle

JSON = {"Content-Type": "application/json"}


def line(**overrides: Any) -> dict[str, Any]:
    return {"name_lang_map": {"en": "Thing"}, "quantity": 1, "price": "10.00", **overrides}


def assert_422(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["message"] == "The given data was invalid."
    assert field in body["errors"], body


@pytest.mark.parametrize(
    ("raw_line", "field"),
    [
        ('{"name_lang_map": {"en": "x"}, "quantity": 1000000000, "price": 1000000000000}', "line_items.0"),
        ('{"name_lang_map": {"en": "x"}, "quantity": 1e999999999, "price": 1}', "line_items.0.quantity"),
        ('{"name_lang_map": {"en": "x"}, "quantity": 1, "price": 1e999999999}', "line_items.0.price"),
        ('{"name_lang_map": {"en": "x"}, "quantity": 1, "price": "1e999999999"}', "line_items.0.price"),
        ('{"name_lang_map": {"en": "x"}, "quantity": 1e-999999999, "price": 1}', "line_items.0.quantity"),
        ('{"name_lang_map": {"en": "x"}, "quantity": 1, "price": 5, "discount": 1e999999}', "line_items.0.discount"),
    ],
)  # fmt: skip
def test_overflowing_amounts_are_422_and_leave_no_number_gap(
    api: Api, enlivy_emulator: EmulatorHandle, raw_line: str, field: str
) -> None:
    receiver = invoice_payload()["organization_receiver_user_id"]
    body = (
        f'{{"organization_receiver_user_id": "{receiver}", "status": "pending", "currency": "EUR",'
        f' "payment_method": "bank_transfer", "delivery_method": "email", "line_items": [{raw_line}]}}'
    )
    refused = api.post("/invoices", data=body.encode(), headers=JSON)
    assert refused.status_code == 422, refused.text[:500]
    errors = refused.json()["errors"]
    assert any(key == field or key.startswith(f"{field}.") for key in errors), errors
    assert enlivy_emulator.invoices() == []
    assert api.create_invoice()["number"] == "1"  # the refused write did not use up a number


def test_external_amount_overflow_is_422(api: Api) -> None:
    body = invoice_payload(source="external", line_items=None, total="1e999999")
    assert_422(api.post("/invoices", json=body), "total")
    assert_422(
        api.post("/invoices", json=invoice_payload(source="external", line_items=None, total=1e300)), "total"
    )


def test_update_with_overflowing_line_is_422_and_keeps_the_invoice(api: Api) -> None:
    invoice = api.create_invoice()
    refused = api.put(
        f"/invoices/{invoice['id']}", json={"line_items": [line(quantity=999999999, price="999999999999")]}
    )
    assert_422(refused, "line_items.0")
    assert api.get(f"/invoices/{invoice['id']}").json()["data"]["total"] == invoice["total"]


def test_too_many_line_items_is_422(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    assert (
        api.post("/invoices", json=invoice_payload(line_items=[line()] * MAX_LINE_ITEMS)).status_code == 201
    )
    assert_422(
        api.post("/invoices", json=invoice_payload(line_items=[line()] * (MAX_LINE_ITEMS + 1))), "line_items"
    )
    assert len(enlivy_emulator.invoices()) == 1


@pytest.mark.parametrize("depth", [100_000, 5_000, 900, 65])
def test_deeply_nested_json_is_400(api: Api, depth: int) -> None:
    nested = b'{"note_lang_map": ' + b"[" * depth + b"]" * depth + b"}"
    for method, path in (("POST", "/invoices"), ("PUT", "/invoices/org_inv_x")):
        response = api.request(method, path, data=nested, headers=JSON)
        assert response.status_code == 400, (depth, response.text[:300])
        assert "nested" in response.json()["message"]
        keyed = api.request(method, path, data=nested, headers={**JSON, "Idempotency-Key": f"deep-{depth}"})
        assert keyed.status_code == 400


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": "1e20"}, "page"),
        ({"page": str(10**20)}, "page"),
        ({"per_page": str(10**30)}, "per_page"),
        ({"total": "1e999999"}, "total"),
        ({"total": "1e20"}, "total"),
        ({"total": "-1e999999"}, "total"),
    ],
)
def test_absurd_list_parameters_are_422(api: Api, params: dict[str, str], field: str) -> None:
    assert_422(api.list_invoices(**params), field)


def test_body_over_the_limit_is_413_and_nothing_is_written(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    padding = "x" * MAX_BODY_BYTES
    response = api.post("/invoices", json=invoice_payload(note_lang_map={"en": padding}))
    assert response.status_code == 413, response.text[:300]
    assert str(MAX_BODY_BYTES) in response.json()["message"]
    keyed = api.post(
        "/invoices", json=invoice_payload(note_lang_map={"en": padding}), headers={"Idempotency-Key": "big"}
    )
    assert keyed.status_code == 413
    assert enlivy_emulator.invoices() == []
    assert enlivy_emulator.idempotency_keys() == []

    def chunks() -> Any:  # no Content-Length: the limit is counted while reading
        yield b'{"note_lang_map": {"en": "'
        for _ in range(MAX_BODY_BYTES // 65536 + 1):
            yield b"y" * 65536
        yield b'"}}'

    streamed = api.post("/invoices", data=chunks(), headers=JSON)
    assert streamed.status_code == 413
    assert enlivy_emulator.invoices() == []


def test_catalog_and_bulk_amount_overflow_is_4xx(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    product = {"type": "service", "price_map": {"EUR": "1e999999"}}
    assert_422(api.post("/products", json=product), "price_map.EUR")
    with pytest.raises(RuntimeError, match="422"):
        enlivy_emulator.bulk_invoices(1, price="1e999999")
    with pytest.raises(RuntimeError, match="422"):
        enlivy_emulator.bulk_invoices(1, tax_rate="1e999999")


@pytest.mark.parametrize("include", [0, True, 1e300, {"line_items": 1}])
def test_include_of_the_wrong_type_in_a_body_is_422(api: Api, include: Any) -> None:
    assert_422(api.post("/invoices", json=invoice_payload(include=include)), "include")
    invoice = api.create_invoice()
    assert_422(api.put(f"/invoices/{invoice['id']}", json={"include": include}), "include")
