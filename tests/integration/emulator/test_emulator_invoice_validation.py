"""Each 422 case of invoice writes: body ``{"message", "errors": {"field.path": [...]}}``."""

from __future__ import annotations

from typing import Any

import pytest
from emulator_test_api import Api, invoice_payload

from enlivy_provider.emulator import seed


def errors_of(api: Api, payload: dict[str, Any]) -> dict[str, list[str]]:
    response = api.post("/invoices", json=payload)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["message"] == "The given data was invalid."
    return dict(body["errors"])


def line(**fields: Any) -> dict[str, Any]:
    return {"name_lang_map": {"en": "Item"}, "quantity": 1, "price": "10.00", **fields}


@pytest.mark.parametrize(
    "field",
    [
        "organization_receiver_user_id",
        "status",
        "currency",
        "payment_method",
        "delivery_method",
        "line_items",
    ],
)
def test_required_fields_of_internal_invoices(api: Api, field: str) -> None:
    payload = invoice_payload()
    del payload[field]
    assert field in errors_of(api, payload)


def test_external_invoices_need_fewer_fields(api: Api) -> None:
    payload = {
        "source": "external",
        "organization_receiver_user_id": seed.DEMO_CUSTOMERS[0].id,
        "status": "paid",
        "currency": "EUR",
        "number": "SUP-1",
        "total": "12.50",
    }
    response = api.post("/invoices", json=payload)
    assert response.status_code == 201, response.text
    assert response.json()["formatted_number"] == "SUP-1"
    assert '"total":12.50' in response.text
    assert set(errors_of(api, {"source": "external"})) == {
        "organization_receiver_user_id",
        "status",
        "currency",
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "sent"),
        ("type", "credit_note"),
        ("source", "uploaded"),
        ("direction", "sideways"),
        ("payment_method", "bitcoin"),
        ("delivery_method", "print"),
    ],
)
def test_enum_values(api: Api, field: str, value: str) -> None:
    assert errors_of(api, invoice_payload(**{field: value}))[field] == [
        f"The selected {field.replace('_', ' ')} is invalid."
    ]


@pytest.mark.parametrize("currency", ["EURO", "XYZ", "eur", 978])
def test_currency_must_be_iso_4217(api: Api, currency: Any) -> None:
    assert "currency" in errors_of(api, invoice_payload(currency=currency))


def test_receiver_must_exist_in_the_organization_and_be_invoiceable(api: Api) -> None:
    unknown = errors_of(api, invoice_payload(organization_receiver_user_id="org_user_nobody"))
    assert "organization_receiver_user_id" in unknown
    other_org = errors_of(api, invoice_payload(organization_receiver_user_id=seed.OTHER_CUSTOMER_ID))
    assert "organization_receiver_user_id" in other_org
    staff = errors_of(api, invoice_payload(organization_receiver_user_id=seed.SENDER_USER_ID))
    assert staff["organization_receiver_user_id"] == ["The selected user's role cannot be invoiced."]


def test_sender_bank_account_and_prefix_must_exist(api: Api) -> None:
    errors = errors_of(
        api,
        invoice_payload(
            organization_sender_user_id=seed.DEMO_CUSTOMERS[0].id,
            organization_bank_account_id="org_bankacc_nope",
            organization_invoice_prefix_id="org_invpfx_nope",
        ),
    )
    assert {
        "organization_sender_user_id",
        "organization_bank_account_id",
        "organization_invoice_prefix_id",
    } <= set(errors)


@pytest.mark.parametrize("quantity", [0, -1, "0.00", "many"])
def test_quantity_must_be_positive(api: Api, quantity: Any) -> None:
    assert "line_items.0.quantity" in errors_of(api, invoice_payload(line_items=[line(quantity=quantity)]))


def test_price_must_not_be_negative(api: Api) -> None:
    errors = errors_of(api, invoice_payload(line_items=[line(), line(price="-0.01")]))
    assert list(errors) == ["line_items.1.price"]
    assert api.post("/invoices", json=invoice_payload(line_items=[line(price=0)])).status_code == 201


@pytest.mark.parametrize("field", ["issued_at", "due_at", "paid_at"])
def test_dates_must_parse(api: Api, field: str) -> None:
    assert field in errors_of(api, invoice_payload(**{field: "31/12/2026"}))
    assert field in errors_of(api, invoice_payload(**{field: "2026-02-30"}))


def test_due_date_not_before_issue_date(api: Api) -> None:
    assert "due_at" in errors_of(api, invoice_payload(issued_at="2026-05-10", due_at="2026-05-01"))


def test_unknown_product_and_tax_class(api: Api) -> None:
    errors = errors_of(
        api,
        invoice_payload(
            line_items=[
                line(organization_product_id="org_prod_nope"),
                line(organization_tax_class_id="org_tax_class_nope"),
            ]
        ),
    )
    assert "line_items.0.organization_product_id" in errors
    assert "line_items.1.organization_tax_class_id" in errors


def test_line_name_discount_type_and_shape(api: Api) -> None:
    errors = errors_of(
        api,
        invoice_payload(
            line_items=[
                {"quantity": 1, "price": "1.00"},
                line(discount="10.01"),
                line(type="gift"),
                "not an object",
            ]
        ),
    )
    assert set(errors) == {
        "line_items.0.name_lang_map",
        "line_items.1.discount",
        "line_items.2.type",
        "line_items.3",
    }


def test_product_lines_inherit_name_price_and_tax_class(api: Api) -> None:
    product = seed.DEMO_PRODUCTS[0]
    payload = invoice_payload(line_items=[{"organization_product_id": product.id, "quantity": 2}])
    created = api.post("/invoices", json=payload).json()
    item = created["line_items"]["data"][0]
    assert item["name_lang_map"] == {"en": product.name}
    assert item["price"] == 199.0
    assert item["organization_tax_class_id"] == product.tax_class_id
    assert created["total"] == 473.62  # 398.00 + 19 % = 75.62
    usd = errors_of(
        api,
        invoice_payload(currency="USD", line_items=[{"organization_product_id": product.id, "quantity": 1}]),
    )
    assert "line_items.0.price" in usd


def test_update_validates_the_merged_invoice(api: Api) -> None:
    created = api.create_invoice()
    response = api.put(f"/invoices/{created['id']}", json={"status": "bogus", "line_items": []})
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"status", "line_items"}
    assert api.get(f"/invoices/{created['id']}").json()["data"]["status"] == "pending"
