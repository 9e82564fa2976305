"""The demo data set (``--seed demo``): fixed ids and tokens, so tests, docs and example DAGs can name them.

Ids follow the documented ``{prefix}_{ksuid}`` shape (docs/enlivy-api-notes.md §4.3); where prefixes disagree the
public API page's spelling is used (``org_invli_``, ``org_invpfx_``, ``org_bankacc_``); tax classes use
``org_tax_class_`` (SDK placeholder, the public page shows none).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

DEMO_ORG_ID = "org_2qD7mZ0demoAcmeBilling0001"
DEMO_ORG_NAME = "Acme Billing GmbH"
DEMO_TOKEN = "1|demoAcmeToken0000000000000000000000000001"

OTHER_ORG_ID = "org_2qD7mZ0demoOtherCompany002"
OTHER_ORG_NAME = "Other Company SRL"
OTHER_TOKEN = "2|demoOtherToken000000000000000000000000002"

# A seeded person who can log in with POST /authentication/login; the answer is DEMO_TOKEN.
DEMO_LOGIN_EMAIL = "finance@acme.example"
DEMO_LOGIN_PASSWORD = "demo-password"

DEMO_INVOICE_PREFIX_ID = "org_invpfx_2qD7mZ0demoPrefix000001"
DEMO_BANK_ACCOUNT_ID = "org_bankacc_2qD7mZ0demoBank0000001"
TAX_CLASS_STANDARD_ID = "org_tax_class_2qD7mZ0demoVat19000001"  # 19 %
TAX_CLASS_ZERO_ID = "org_tax_class_2qD7mZ0demoVat00000001"  # 0 %
TAX_RATES: dict[str, Decimal] = {TAX_CLASS_STANDARD_ID: Decimal("19"), TAX_CLASS_ZERO_ID: Decimal("0")}

ROLE_CUSTOMER_ID = "org_user_role_2qD7mZ0demoCustomer01"  # can_be_invoiced
ROLE_STAFF_ID = "org_user_role_2qD7mZ0demoStaff000001"  # can_be_invoicing, NOT invoiceable
SENDER_USER_ID = "org_user_2qD7mZ0demoSender00000001"


@dataclass(frozen=True)
class DemoCustomer:
    id: str
    name: str
    email: str
    country_code: str


DEMO_CUSTOMERS: tuple[DemoCustomer, ...] = (
    DemoCustomer("org_user_2qD7mZ0demoCustomer000001", "Globex Corporation", "billing@globex.example", "DE"),
    DemoCustomer("org_user_2qD7mZ0demoCustomer000002", "Initech LLC", "ap@initech.example", "US"),
    DemoCustomer(
        "org_user_2qD7mZ0demoCustomer000003", "Umbrella Analytics", "finance@umbrella.example", "FR"
    ),
    DemoCustomer("org_user_2qD7mZ0demoCustomer000004", "Stark Studios", "invoices@stark.example", "DE"),
    DemoCustomer("org_user_2qD7mZ0demoCustomer000005", "Wayne Logistics", "accounts@wayne.example", "NL"),
    DemoCustomer("org_user_2qD7mZ0demoCustomer000006", "Hooli Cloud", "billing@hooli.example", "RO"),
)


@dataclass(frozen=True)
class DemoProduct:
    id: str
    name: str
    type: str
    price_eur: Decimal
    tax_class_id: str
    unit: str = field(default="unit")


DEMO_PRODUCTS: tuple[DemoProduct, ...] = (
    DemoProduct(
        "org_prod_2qD7mZ0demoPlatformPlan01",
        "Platform plan (monthly)",
        "service",
        Decimal("199.00"),
        TAX_CLASS_STANDARD_ID,
        "month",
    ),
    DemoProduct(
        "org_prod_2qD7mZ0demoApiCalls000001",
        "API calls (per 1,000)",
        "digital",
        Decimal("0.45"),
        TAX_CLASS_STANDARD_ID,
        "1k calls",
    ),
    DemoProduct(
        "org_prod_2qD7mZ0demoConsulting0001",
        "Consulting hour",
        "service",
        Decimal("95.00"),
        TAX_CLASS_ZERO_ID,
        "hour",
    ),
)

# The other organization has one customer of its own (for isolation tests).
OTHER_CUSTOMER_ID = "org_user_2qD7mZ0otherCustomer00001"

# Further fixed ids used by the emulator's seeding (enlivy_provider/emulator/seeding.py).
TAX_RATE_STANDARD_ID = "org_tax_rate_2qD7mZ0demoVat19000001"
TAX_RATE_ZERO_ID = "org_tax_rate_2qD7mZ0demoVat00000001"
OTHER_ROLE_CUSTOMER_ID = "org_user_role_2qD7mZ0otherCustomer01"
OTHER_INVOICE_PREFIX_ID = "org_invpfx_2qD7mZ0otherPrefix00001"
OTHER_CUSTOMER_EMAIL = "billing@other-customer.example"
DEMO_INVOICE_PREFIX_NAME = "INV"
# Locales an organization user may have (a user create with another locale answers 422).
DEMO_LOCALES: tuple[str, ...] = ("en", "de", "ro")
