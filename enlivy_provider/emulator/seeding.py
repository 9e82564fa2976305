"""Writes a seed (``demo`` or ``none``) into a :class:`~enlivy_provider.emulator.store.Store`.

The ids, tokens and names come from :mod:`enlivy_provider.emulator.seed`; this module only turns them
into API records. ``extra_customers`` adds N invoiceable customers for benchmarks
(``customer0001@bench.example`` …, ids ``org_user_2qD7mZ0benchCust000000001`` …).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from enlivy_provider.emulator import seed as s
from enlivy_provider.emulator.store import Store

SEED_TIME = "2026-01-01T00:00:00Z"
SEEDS = ("demo", "none")


def _base(record_id: str, obj: str, organization_id: str | None) -> dict[str, Any]:
    return {
        "id": record_id,
        "object": obj,
        "organization_id": organization_id,
        "created_at": SEED_TIME,
        "updated_at": SEED_TIME,
        "deleted_at": None,
    }


def organization(org_id: str, name: str, country_code: str) -> dict[str, Any]:
    record = _base(org_id, "organization", None)
    record.update(
        name=name,
        environment="live",
        country_code=country_code,
        default_currency="EUR",
        default_locale="en",
        locales=list(s.DEMO_LOCALES),
        is_eu_vat_registered=True,
    )
    return record


def role(role_id: str, org_id: str, name: str, *, invoiced: bool, invoicing: bool) -> dict[str, Any]:
    record = _base(role_id, "user_role", org_id)
    record.update(
        name=name,
        can_be_invoiced=invoiced,
        can_be_invoicing=invoicing,
        can_use_backoffice=invoicing,
        has_full_backoffice_access=invoicing,
        can_be_payrolled=False,
        is_business_entity=invoiced,
    )
    return record


def organization_user(
    user_id: str,
    org_id: str,
    role_id: str,
    name: str,
    email: str,
    country_code: str,
    *,
    business: bool = True,
) -> dict[str, Any]:
    record = _base(user_id, "organization_user", org_id)
    record.update(
        organization_user_role_id=role_id,
        user_id=None,
        name=name,
        first_name=None,
        last_name=None,
        email=email,
        phone_number=None,
        country_code=country_code,
        address_line_1=None,
        address_city=None,
        address_zip_code=None,
        locale="en",
        organization_type="company" if business else None,
        is_business_entity=business,
        tag_ids=[],
    )
    return record


def _demo_records() -> dict[str, list[dict[str, Any]]]:
    org, other = s.DEMO_ORG_ID, s.OTHER_ORG_ID
    tax_classes = []
    tax_rates = []
    for class_id, rate_id, label in (
        (s.TAX_CLASS_STANDARD_ID, s.TAX_RATE_STANDARD_ID, "Standard VAT"),
        (s.TAX_CLASS_ZERO_ID, s.TAX_RATE_ZERO_ID, "Zero-rated"),
    ):
        rate = s.TAX_RATES[class_id]
        tax_class = _base(class_id, "tax_class", org)
        tax_class.update(
            name_lang_map={"en": f"{label} {rate}%"},
            description_lang_map={"en": f"{label} ({rate}%)"},
            display_name=f"{label} {rate}%",
            tax_category="standard" if rate else "zero_rated",
        )
        tax_classes.append(tax_class)
        tax_rate = _base(rate_id, "tax_rate", org)
        tax_rate.update(
            organization_tax_class_id=class_id,
            name=f"{label} {rate}%",
            rate=Decimal(rate).quantize(Decimal("0.01")),
            has_eu_vat_properties=True,
            is_compound=False,
            is_inclusive=False,
            is_vat_exempt=rate == 0,
            priority=1,
        )
        tax_rates.append(tax_rate)

    products = []
    for product in s.DEMO_PRODUCTS:
        record = _base(product.id, "product", org)
        record.update(
            type=product.type,
            alias=None,
            name_lang_map={"en": product.name},
            description_lang_map={"en": product.name},
            unit_lang_map={"en": product.unit},
            price_map={"EUR": product.price_eur},
            primary_currency="EUR",
            organization_tax_class_id=product.tax_class_id,
            is_sold=True,
            tag_ids=[],
        )
        products.append(record)

    prefixes = []
    for prefix_id, org_id in ((s.DEMO_INVOICE_PREFIX_ID, org), (s.OTHER_INVOICE_PREFIX_ID, other)):
        prefix = _base(prefix_id, "invoice_prefix", org_id)
        prefix.update(
            name=s.DEMO_INVOICE_PREFIX_NAME,
            alias="standard",
            description="Standard invoices",
            current_number=0,
            type="standard",
            reset_yearly=False,
            counter_year=None,
            custom_logo_file_id=None,
        )
        prefixes.append(prefix)

    bank = _base(s.DEMO_BANK_ACCOUNT_ID, "bank_account", org)
    bank.update(
        name="Main EUR account",
        currency="EUR",
        bank_name="Demo Bank AG",
        bank_address="Bankstrasse 1, 10115 Berlin",
        bank_country_code="DE",
        type="standard",
        account_information={"iban": "DE89370400440532013000", "swift": "COBADEFFXXX"},
        balance=None,
        payment_qr_types=["sepa"],
        tag_ids=[],
    )

    users = [
        organization_user(
            s.SENDER_USER_ID, org, s.ROLE_STAFF_ID, "Acme Finance", s.DEMO_LOGIN_EMAIL, "DE", business=False
        ),
        *(
            organization_user(c.id, org, s.ROLE_CUSTOMER_ID, c.name, c.email, c.country_code)
            for c in s.DEMO_CUSTOMERS
        ),
        organization_user(
            s.OTHER_CUSTOMER_ID,
            other,
            s.OTHER_ROLE_CUSTOMER_ID,
            "Other Customer SRL",
            s.OTHER_CUSTOMER_EMAIL,
            "RO",
        ),
    ]
    return {
        "organization": [
            organization(org, s.DEMO_ORG_NAME, "DE"),
            organization(other, s.OTHER_ORG_NAME, "RO"),
        ],
        "user_role": [
            role(s.ROLE_CUSTOMER_ID, org, "Customer", invoiced=True, invoicing=False),
            role(s.ROLE_STAFF_ID, org, "Staff", invoiced=False, invoicing=True),
            role(s.OTHER_ROLE_CUSTOMER_ID, other, "Customer", invoiced=True, invoicing=False),
        ],
        "organization_user": users,
        "product": products,
        "tax_class": tax_classes,
        "tax_rate": tax_rates,
        "invoice_prefix": prefixes,
        "bank_account": [bank],
    }


def extra_customer_records(count: int) -> list[dict[str, Any]]:
    return [
        organization_user(
            f"org_user_2qD7mZ0benchCust{i:09d}",
            s.DEMO_ORG_ID,
            s.ROLE_CUSTOMER_ID,
            f"Bench Customer {i:04d}",
            f"customer{i:04d}@bench.example",
            "DE",
        )
        for i in range(1, count + 1)
    ]


def apply_seed(store: Store, seed: str = "demo", extra_customers: int = 0) -> None:
    """Wipe everything and write the named seed (``none`` leaves the store empty: every token gets 401)."""
    if seed not in SEEDS:
        raise ValueError(f"unknown seed {seed!r}; expected one of {SEEDS}")
    store.wipe()
    if seed == "none":
        return
    for kind, records in _demo_records().items():
        store.put_records(kind, records)
    if extra_customers:
        store.put_records("organization_user", extra_customer_records(extra_customers))
    store.put_token(s.DEMO_TOKEN, s.DEMO_LOGIN_EMAIL, [s.DEMO_ORG_ID])
    store.put_token(s.OTHER_TOKEN, None, [s.OTHER_ORG_ID])
    store.put_login(s.DEMO_LOGIN_EMAIL, s.DEMO_LOGIN_PASSWORD, s.DEMO_TOKEN)
