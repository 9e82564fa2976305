"""Reads the operators make before writing: customers, the catalogue (products, tax rates) and an
existing invoice for the same customer and billing period. Everything goes through an ``EnlivyClient``;
nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from enlivy_provider.client import EnlivyNotFoundError
from enlivy_provider.client.core import next_page
from enlivy_provider.invoices.billing_identity import Billing
from enlivy_provider.invoices.billing_period import BillingPeriod
from enlivy_provider.invoices.customer import CustomerRef
from enlivy_provider.invoices.errors import ValidationIssue, join_path
from enlivy_provider.invoices.preview import Catalog

if TYPE_CHECKING:
    from enlivy_provider.client import EnlivyClient

# A cancelled invoice bills nothing; neither does a soft-deleted one.
DEAD_STATUSES = frozenset({"cancelled"})
# Types that never bill a period: a proforma is a quote, a reversal credits an invoice (``credit_note`` in an
# SDK guide).
NOT_BILLING_TYPES = frozenset({"proforma", "reversal", "credit_note"})


def is_billing_invoice(invoice: Mapping[str, Any]) -> bool:
    """An outbound invoice of a billing type (an inbound one is a supplier's invoice to the organization)."""
    return invoice.get("type") not in NOT_BILLING_TYPES and invoice.get("direction") != "inbound"


def is_dead(invoice: Mapping[str, Any]) -> bool:
    """Soft-deleted or cancelled: it exists, but bills nothing."""
    return bool(invoice.get("deleted_at")) or invoice.get("status") in DEAD_STATUSES


def load_catalog(client: EnlivyClient) -> Catalog:
    """Products, tax rates and tax classes of the organization (a few GETs)."""
    return Catalog.from_api(
        client.list_products(per_page=50),
        client.list_tax_rates(per_page=50),
        tax_classes=client.list_tax_classes(per_page=50),
    )


IDS_PER_REQUEST = 30  # the ``ids`` filter takes at most 30 ids (enlivy-api-notes.md §6.1)

# Enlivy refuses to invoice a user whose role has can_be_invoiced false (e.g. staff); the operators ask for the
# role (include=user_role) and find that before writing.
CUSTOMER_INCLUDE = "user_role"


def role_refusing_invoices(customer: Mapping[str, Any]) -> str | None:
    """The name of the customer's role when that role may not be invoiced, else None (also when the record
    came without its role)."""
    role = customer.get("user_role")
    if isinstance(role, Mapping) and role.get("can_be_invoiced") is False:
        return str(role.get("name") or role.get("id") or "")
    return None


def _not_invoiceable(where: str, customer_id: str, role: str) -> ValidationIssue:
    return ValidationIssue(where, f"customer {customer_id} cannot be invoiced (its role {role!r} may not)")


def customer_label(customer: Mapping[str, Any]) -> str:
    """How a billing person recognises a customer in a log: ``Globex Corp <billing@globex.example>``."""
    name, email = customer.get("name"), customer.get("email")
    if name and email:
        return f"{name} <{email}>"
    return str(name or email or customer.get("id") or "?")


def resolve_customer(
    client: EnlivyClient, ref: CustomerRef, *, path: str = ""
) -> tuple[dict[str, Any] | None, list[ValidationIssue]]:
    """One customer's record: check an id exists (and may be invoiced), or look an email up. Issues name
    ``<path>.customer``."""
    where = join_path(path, "customer")
    if ref.id is not None:
        try:
            record = client.get_customer(ref.id, include=CUSTOMER_INCLUDE)
        except EnlivyNotFoundError:
            return None, [ValidationIssue(where, f"no customer {ref.id} in this organization")]
        if record.get("deleted_at"):
            return None, [ValidationIssue(where, f"customer {ref.id} is deleted")]
    else:
        assert ref.email is not None
        found = client.find_customer_by_email(ref.email, include=CUSTOMER_INCLUDE)
        if found is None or found.get("deleted_at"):
            return None, [ValidationIssue(where, f"no customer with email {ref.email} in this organization")]
        record = found
    customer_id = str(record.get("id") or ref.id)
    role = role_refusing_invoices(record)
    if role is not None:
        return None, [_not_invoiceable(where, customer_id, role)]
    return {**record, "id": customer_id}, []


class CustomerDirectory:
    """Every customer of the organization, listed once (for bulk runs): ids and emails -> ids."""

    def __init__(self, customers: Iterable[Mapping[str, Any]]) -> None:
        self._ids: set[str] = set()
        self._emails: dict[str, str] = {}
        self._not_invoiceable: dict[str, str] = {}  # id -> role name
        self._labels: dict[str, str] = {}
        for customer in customers:
            if customer.get("deleted_at"):
                continue
            self._ids.add(str(customer["id"]))
            self._labels[str(customer["id"])] = customer_label(customer)
            role = role_refusing_invoices(customer)
            if role is not None:
                self._not_invoiceable[str(customer["id"])] = role
            email = customer.get("email")
            if email:
                self._emails.setdefault(str(email).strip().lower(), str(customer["id"]))

    @classmethod
    def fetch(cls, client: EnlivyClient) -> CustomerDirectory:
        # With their roles: a bulk run must find a customer it may not invoice before its first write.
        return cls(client.list_customers(per_page=50, include=CUSTOMER_INCLUDE))

    @classmethod
    def fetch_for(
        cls, client: EnlivyClient, refs: Iterable[CustomerRef], *, workers: int = 1
    ) -> CustomerDirectory:
        """The customers ``refs`` name. All by id: only those, 30 per request (the ``ids`` filter's limit), on
        ``workers`` threads — a chunk of 6,000 customers of an organization of 100,000 reads 200 short pages
        instead of all 2,000. Any by email: every customer (an email can only be matched against the list)."""
        wanted = sorted({ref.id for ref in refs if ref.id is not None})
        if any(ref.id is None for ref in refs) or not wanted:
            return cls.fetch(client)
        batches = [wanted[i : i + IDS_PER_REQUEST] for i in range(0, len(wanted), IDS_PER_REQUEST)]

        def read(batch: list[str]) -> list[dict[str, Any]]:
            return list(client.list_customers(ids=",".join(batch), per_page=50, include=CUSTOMER_INCLUDE))

        if workers <= 1 or len(batches) == 1:
            return cls(customer for batch in batches for customer in read(batch))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="enlivy-customers") as pool:
            return cls(customer for page in pool.map(read, batches) for customer in page)

    def label(self, customer_id: str) -> str:
        """The customer's name and e-mail, for logs (the id itself when unknown)."""
        return self._labels.get(customer_id, customer_id)

    def resolve(self, ref: CustomerRef, *, path: str = "") -> tuple[str | None, list[ValidationIssue]]:
        where = join_path(path, "customer")
        if ref.id is not None:
            found: str | None = ref.id if ref.id in self._ids else None
            if found is None:
                return None, [ValidationIssue(where, f"no customer {ref.id} in this organization")]
        else:
            assert ref.email is not None
            found = self._emails.get(ref.email.strip().lower())
            if found is None:
                return None, [
                    ValidationIssue(where, f"no customer with email {ref.email} in this organization")
                ]
        if found in self._not_invoiceable:
            return None, [_not_invoiceable(where, found, self._not_invoiceable[found])]
        return found, []


def _relation_list(value: Any) -> list[Mapping[str, Any]]:
    """A relation as a list, whether it came wrapped (``{"data": [...]}``) or bare."""
    if isinstance(value, Mapping) and "data" in value:
        value = value["data"]
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def billed_periods(invoice: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The ``(start, end)`` days (``YYYY-MM-DD`` text) the invoice's line items bill, in line order, each once."""
    periods: list[tuple[str, str]] = []
    for line in _relation_list(invoice.get("line_items")):
        if line.get("has_billing_period"):
            period = (
                str(line.get("billing_period_started_at") or "")[:10],
                str(line.get("billing_period_ended_at") or "")[:10],
            )
            if period not in periods:
                periods.append(period)
    return periods


def invoice_covers_period(invoice: Mapping[str, Any], period: BillingPeriod) -> bool:
    """True when one of the invoice's line items bills exactly ``period``."""
    return (period.start.isoformat(), period.end.isoformat()) in billed_periods(invoice)


@dataclass(frozen=True)
class BillingLookup:
    """What Enlivy holds for one billing: its live invoice (newest first) and its dead (cancelled or deleted)
    ones, whose ids move the billing's Idempotency-Key to its next generation."""

    live: dict[str, Any] | None
    dead: tuple[dict[str, Any], ...] = ()

    @property
    def dead_ids(self) -> tuple[str, ...]:
        return tuple(str(invoice["id"]) for invoice in self.dead)


def find_billing(
    client: EnlivyClient,
    billing: Billing,
    *,
    before_request: Callable[[], None] = lambda: None,
) -> BillingLookup:
    """Look the billing up: the customer's invoices (live and soft-deleted, newest first, with their lines) that
    bill exactly ``billing.period`` and carry the billing's key (or none, see :meth:`Billing.marks`).

    How: ``GET /invoices?organization_receiver_user_id=<customer>&deleted=-1&include=line_items``, page by page
    until a live match (every page when there is none, so the dead ones are all known).
    ``before_request`` runs before each page (the bulk operator's rate limiter).
    """
    dead: list[dict[str, Any]] = []
    page: int | None = 1
    while page is not None:
        before_request()
        result = client.list_invoices_page(
            page=page,
            per_page=50,
            organization_receiver_user_id=billing.customer_id,
            deleted=-1,
            include="line_items",
        )
        for invoice in result.items:
            if not (
                is_billing_invoice(invoice)
                and invoice_covers_period(invoice, billing.period)
                and billing.marks(invoice)
            ):
                continue
            if not is_dead(invoice):
                return BillingLookup(invoice, tuple(dead))
            dead.append(invoice)
        page = next_page(result.meta, page)
    return BillingLookup(None, tuple(dead))
