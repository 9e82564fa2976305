"""The writes: create one invoice exactly once (idempotency key + ``if_exists`` lookup), update one,
and the JSON-safe summary the operators return. Each write goes through an ``EnlivyClient``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from enlivy_provider.invoices.billing_period import BillingPeriod
from enlivy_provider.invoices.decimals import NotADecimalError, to_decimal
from enlivy_provider.invoices.lookups import find_existing_invoice
from enlivy_provider.invoices.totals import round_money

if TYPE_CHECKING:
    from enlivy_provider.client import EnlivyClient

IfExists = Literal["skip", "fail", "create"]
IF_EXISTS_CHOICES: tuple[str, ...] = ("skip", "fail", "create")


class InvoiceExistsError(Exception):
    """``if_exists="fail"`` found an invoice for the same customer and billing period."""

    def __init__(self, invoice: Mapping[str, Any], customer_id: str, period: BillingPeriod) -> None:
        self.invoice_id = str(invoice.get("id"))
        super().__init__(
            f"an invoice for customer {customer_id} and billing period {period.start} .. {period.end} already "
            f"exists: {self.invoice_id} (number {invoice.get('formatted_number') or invoice.get('number')}, "
            f"status {invoice.get('status')}); if_exists='fail'"
        )


def money_text(value: object) -> str | None:
    """An API amount (number or string) as a 2-decimal string; None when absent or not a number."""
    if value is None:
        return None
    try:
        return str(round_money(to_decimal(value)))
    except NotADecimalError:
        return None


def invoice_summary(
    record: Mapping[str, Any], *, outcome: str, idempotency_key: str | None, url: str | None
) -> dict[str, Any]:
    """The small JSON-safe XCom of the operators (amounts as strings, never floats)."""
    return {
        "id": record.get("id"),
        "number": record.get("number"),
        "formatted_number": record.get("formatted_number"),
        "status": record.get("status"),
        "currency": record.get("currency"),
        "customer_id": record.get("organization_receiver_user_id"),
        "totals": {
            name: money_text(record.get(name)) for name in ("sub_total", "discount", "tax_total", "total")
        },
        "url": url,
        "outcome": outcome,
        "idempotency_key": idempotency_key,
    }


def create_invoice_once(
    client: EnlivyClient,
    payload: Mapping[str, Any],
    *,
    idempotency_key: str,
    period: BillingPeriod | None,
    if_exists: str = "skip",
    url_for: Callable[[str], str | None] = lambda _id: None,
    before_request: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Create the invoice unless ``if_exists`` finds one for the same customer and period; return the summary.

    ``before_request`` is called before each HTTP request (the bulk operator's rate limiter).
    Raises :class:`InvoiceExistsError` (``if_exists="fail"``) or the client's errors.
    """
    customer_id = str(payload["organization_receiver_user_id"])
    if if_exists != "create" and period is not None:
        existing = find_existing_invoice(client, customer_id, period, before_request=before_request)
        if existing is not None:
            if if_exists == "fail":
                raise InvoiceExistsError(existing, customer_id, period)
            return invoice_summary(
                existing, outcome="skipped", idempotency_key=idempotency_key, url=url_for(str(existing["id"]))
            )
    before_request()
    record = client.create_invoice(payload, idempotency_key=idempotency_key)
    return invoice_summary(
        record, outcome="created", idempotency_key=idempotency_key, url=url_for(str(record["id"]))
    )
