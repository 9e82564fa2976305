"""The client sends only filter names the official SDK lists for the resource (docs/enlivy-api-notes.md §6)."""

from __future__ import annotations

import pytest

from enlivy_provider.client import core
from enlivy_provider.client.endpoints import Endpoints
from enlivy_provider.client.errors import EnlivyInvalidRequestError

# enlivy/enlivy-php src/Service/Concern/HasFilters.php lines 16-27 (GLOBAL_FILTERS) and 32-36 (BYPASS_KEYS:
# include, include_meta, organization_id are not filters; organization_id never reaches the query).
SDK_GLOBAL_FILTERS = {
    "q",
    "q_in",
    "ids",
    "order_by",
    "order",
    "page",
    "per_page",
    "limit",
    "deleted",
    "tag_ids",
}
SDK_BYPASS_KEYS = {"include", "include_meta"}
# enlivy/enlivy-php src/Service/Organization/Invoice/InvoiceService.php lines 55-81 (AVAILABLE_FILTERS).
SDK_INVOICE_FILTERS = {
    "direction", "status", "is_downloadable", "is_tax_charged", "bank_account_id", "currency",
    "organization_receiver_user_id", "organization_sender_user_id", "organization_user_id", "source", "total",
    "product_ids", "network_exchange", "peppol_exchange_push_option", "peppol_exchange_pushed",
    "is_api_charge", "api_charged_organization_id", "paid_at_from", "paid_at_to", "issued_at_from",
    "issued_at_to", "created_at_from", "created_at_to", "updated_at_from", "updated_at_to",
}  # fmt: skip
# ProductService.php lines 38-40 (is_sold only), TaxClassService.php line 34 (none), TaxRateService.php
# lines 35-38; users and invoice prefixes: docs/filters.md ("organizationUsers", "invoicePrefixes" line 150).
SDK_RESOURCE_FILTERS = {
    "invoices": SDK_INVOICE_FILTERS,
    "products": {"is_sold"},
    "tax-classes": set(),
    "tax-rates": {"organization_tax_class_id", "has_eu_vat_properties"},
    "users": {
        "can_be_invoiced", "can_be_invoicing", "can_be_payrolled", "can_use_backoffice", "email",
        "organization_user_role_id",
    },
    "invoice-prefixes": {"type"},
}  # fmt: skip


def test_global_names_are_the_sdks() -> None:
    sent_names = SDK_GLOBAL_FILTERS | (SDK_BYPASS_KEYS - {"include"})
    assert sent_names == core.GLOBAL_FILTERS


@pytest.mark.parametrize("resource", sorted(SDK_RESOURCE_FILTERS))
def test_resource_names_are_the_sdks(resource: str) -> None:
    assert core.FILTERS.get(resource, frozenset()) == SDK_RESOURCE_FILTERS[resource]


@pytest.mark.parametrize(("resource", "name"), [("products", "name"), ("tax-classes", "description")])
def test_a_name_the_sdk_does_not_list_is_refused_before_sending(resource: str, name: str) -> None:
    with pytest.raises(EnlivyInvalidRequestError, match=f"unknown filter '{name}' for {resource}"):
        Endpoints("org_x").list_page(resource, filters={name: "x"})


def test_limit_replaces_the_clients_own_page_size() -> None:
    """``limit`` is the page size on the public page and a search cap in the SDK: the client sends it alone,
    never next to a ``per_page`` of its own that could contradict it."""
    call = Endpoints("org_x").list_page("invoices", page=1, filters={"limit": 7})
    assert call.params == {"limit": 7, "page": 1}
    call = Endpoints("org_x").list_page("invoices", page=1, per_page=7, filters={})
    assert call.params == {"page": 1, "per_page": 7}
