"""An emulated invoice carries exactly the fields of the official SDK's Invoice model, null when unset."""

from __future__ import annotations

from typing import Any

from emulator_test_api import Api

from enlivy_provider.emulator import seed

# The @property names of enlivy/enlivy-php 2.7.0, src/Organization/Invoice.php lines 10-74, in file order.
SDK_INVOICE_PROPERTIES = (
    "id", "object", "organization_id", "organization_invoice_id", "organization_bank_account_id",
    "organization_invoice_prefix_id", "organization_sender_user_id", "organization_receiver_user_id",
    "organization_receiver_user_address_id", "organization_receiver_shipping_user_address_id",
    "organization_contract_id", "number", "will_number_be_auto_assigned", "formatted_number", "status",
    "source", "type", "payment_method", "delivery_method", "delivery_method_information", "currency",
    "sub_total", "discount", "tax_total", "total", "direction", "issued_at", "due_at", "paid_at",
    "finalized_at", "note_lang_map", "peppol_project_reference", "peppol_purchase_order_reference",
    "peppol_sales_order_reference", "peppol_exchange_push_options", "peppol_exchange_scheduled_push_at",
    "peppol_exchange_scheduled_pushed_at", "peppol_exchanges_pushed", "receiver_has_custom_identity",
    "receiver_custom_identity_is_business", "receiver_custom_identity_organization_type",
    "receiver_custom_identity_name", "sender_has_custom_identity", "sender_custom_identity_is_business",
    "sender_custom_identity_organization_type", "sender_custom_identity_name", "receiver_information",
    "receiver_organization_information", "receiver_country_code", "sender_information",
    "sender_organization_information", "sender_country_code", "is_tax_charged", "is_downloadable",
    "file_extension", "bank_account_payment_qr_types", "created_at", "updated_at", "deleted_at",
    "organization_user_payment_method_id", "payment_provider_reference", "charge_first_failed_at",
    "charge_retry_count", "next_charge_retry_at", "charge_retry_exhausted_at",
)  # fmt: skip
# The public API page's list and GET examples always carry tag_ids (a flat array), include or not.
PUBLIC_PAGE_FIELDS = ("tag_ids",)
EXPECTED = frozenset(SDK_INVOICE_PROPERTIES) | frozenset(PUBLIC_PAGE_FIELDS)
# Fields nothing fills for an invoice that was never charged (no e-invoicing schedule, no sender identity
# override, no stored payment method): present and null.
ALWAYS_NULL = (
    "peppol_exchange_scheduled_push_at", "peppol_exchange_scheduled_pushed_at",
    "sender_custom_identity_is_business", "sender_custom_identity_organization_type",
    "sender_custom_identity_name", "sender_information", "sender_organization_information",
    "receiver_organization_information", "organization_user_payment_method_id", "payment_provider_reference",
    "charge_first_failed_at", "charge_retry_count", "next_charge_retry_at", "charge_retry_exhausted_at",
)  # fmt: skip


def test_the_sdk_list_has_every_property_once() -> None:
    assert len(SDK_INVOICE_PROPERTIES) == len(set(SDK_INVOICE_PROPERTIES)) == 65


def without_lines(invoice: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in invoice.items() if name != "line_items"}


def _every_shape(api: Api, invoice_id: str) -> list[dict[str, Any]]:
    listed = api.list_invoices().json()["data"]
    return [
        api.get(f"/invoices/{invoice_id}").json()["data"],
        next(i for i in listed if i["id"] == invoice_id),
        api.put(f"/invoices/{invoice_id}", json={"status": "paid"}).json()["data"],
        api.handle.invoices()[0],
    ]


def test_internal_invoice_has_exactly_the_sdk_fields(api: Api) -> None:
    created = api.create_invoice(organization_sender_user_id=seed.SENDER_USER_ID)
    # Writes answer with line_items included; the admin view adds the lines as a plain list.
    shapes = [created, *_every_shape(api, created["id"])]
    for shape in (without_lines(shape) for shape in shapes):
        assert set(shape) == EXPECTED, sorted(set(shape) ^ EXPECTED)
        assert {name: shape[name] for name in ALWAYS_NULL} == dict.fromkeys(ALWAYS_NULL)
    assert created["sender_country_code"] == "DE"  # the sender user's country, as the receiver's
    assert created["receiver_country_code"] == seed.DEMO_CUSTOMERS[0].country_code
    assert created["receiver_custom_identity_name"] is None


def test_bulk_and_external_invoices_have_the_same_fields(api: Api) -> None:
    api.handle.bulk_invoices(1)
    external = api.create_invoice(source="external", number="EXT-1", line_items=None, total="10.00")
    listed = api.list_invoices().json()["data"]
    assert len(listed) == 2
    for invoice in listed:
        assert set(invoice) == EXPECTED, sorted(set(invoice) ^ EXPECTED)
    assert set(without_lines(external)) == EXPECTED


def test_receiver_custom_identity_fields_are_written_and_echoed(api: Api) -> None:
    created = api.create_invoice(
        receiver_has_custom_identity=True,
        receiver_custom_identity_is_business=True,
        receiver_custom_identity_name="Globex Europe BV",
        receiver_custom_identity_organization_type="bv",
    )
    got = api.get(f"/invoices/{created['id']}").json()["data"]
    assert (got["receiver_custom_identity_name"], got["receiver_custom_identity_is_business"]) == (
        "Globex Europe BV",
        True,
    )
