"""The writes: create one invoice exactly once (billing identity, idempotency key, ``if_exists`` lookup),
and the JSON-safe summary the operators return. Each write goes through an ``EnlivyClient``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from enlivy_provider.invoices.billing_identity import BILLING_KEY_FIELD, Billing, generation_key
from enlivy_provider.invoices.decimals import NotADecimalError, to_decimal
from enlivy_provider.invoices.lookups import find_billing, is_dead
from enlivy_provider.invoices.totals import round_money

if TYPE_CHECKING:
    from enlivy_provider.client import EnlivyClient

IfExists = Literal["skip", "fail", "create"]
IF_EXISTS_CHOICES: tuple[str, ...] = ("skip", "fail", "create")
IF_CANCELLED_CHOICES: tuple[str, ...] = ("bill_again", "fail")
OUTCOMES: tuple[str, ...] = ("created", "existing", "replayed")  # see create_invoice_once
# How many times one create may find its invoice dead (cancelled or deleted) and move on to a new key.
MAX_GENERATIONS = 10


class InvoiceExistsError(Exception):
    """``if_exists="fail"`` found the billing's invoice."""

    def __init__(self, invoice: Mapping[str, Any], billing: Billing) -> None:
        self.invoice_id = str(invoice.get("id"))
        super().__init__(
            f"the {billing.describe()} already has an invoice: {_named(invoice)}; if_exists='fail'"
        )


class DeadInvoiceError(Exception):
    """``if_cancelled="fail"``: the billing's invoice was cancelled or deleted in Enlivy."""

    def __init__(self, invoices: Sequence[Mapping[str, Any]], what: str) -> None:
        self.invoice_ids = [str(invoice.get("id")) for invoice in invoices]
        names = "; ".join(_named(invoice) for invoice in invoices)
        super().__init__(
            f"the invoice of {what} was cancelled or deleted in Enlivy: {names}; if_cancelled='fail' does not "
            "bill it again (use if_cancelled='bill_again', or restore the invoice)"
        )


class BillingConflictError(Exception):
    """The billing's Idempotency-Key was used with a different body: the inputs changed since it was written."""

    def __init__(
        self, key: str, what: str, existing: Mapping[str, Any] | None, *, looked_up: bool = True
    ) -> None:
        if existing:
            found = f"its invoice is {_named(existing)}"
        elif looked_up:
            found = "its invoice was not found alive"
        else:  # no billing period: nothing to look the invoice up by, and it may well be alive
            found = "the invoice written under it was not looked up (the invoice has no billing period)"
        super().__init__(
            f"the {what} was already written with different inputs (Idempotency-Key {key}); {found}. "
            "Nothing was created: correct or cancel that invoice, or give this billing another billing_key"
        )


def _named(invoice: Mapping[str, Any]) -> str:
    number = invoice.get("formatted_number") or invoice.get("number") or "no number"
    state = "deleted" if invoice.get("deleted_at") else invoice.get("status")
    return f"{invoice.get('id')} ({number}, {state})"


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
    billing: Billing | None,
    if_exists: str = "skip",
    if_cancelled: str = "bill_again",
    url_for: Callable[[str], str | None] = lambda _id: None,
    before_request: Callable[[], None] = lambda: None,
    warn: Callable[[str], None] = lambda _message: None,
) -> dict[str, Any]:
    """Create the billing's invoice unless it exists; return the summary, whose ``outcome`` says what happened:

    * ``"existing"``: the lookup found the billing's live invoice (``if_exists="skip"``); nothing was written;
    * ``"created"``: this call created the invoice;
    * ``"replayed"``: the server answered the create with an invoice an earlier write under the same key made
      (a racing run, a retried task); the summary shows its current state.

    ``idempotency_key`` is the first generation's key. When the billing's invoices turn out to be dead (found by
    the lookup, or replayed by the server for this key), ``if_cancelled="bill_again"`` moves to the key of the
    next generation (logged through ``warn``) and ``"fail"`` raises :class:`DeadInvoiceError`.
    ``before_request`` is called before each HTTP request (the bulk operator's rate limiter).
    """
    from enlivy_provider.client import EnlivyConflictError

    what = billing.describe() if billing else f"Idempotency-Key {idempotency_key}"
    dead: list[Mapping[str, Any]] = []
    if billing is not None:
        payload = {**payload, BILLING_KEY_FIELD: billing.billing_key}
        if if_exists != "create":
            found = find_billing(client, billing, before_request=before_request)
            if found.live is not None:
                if if_exists == "fail":
                    raise InvoiceExistsError(found.live, billing)
                if not found.live.get(BILLING_KEY_FIELD):
                    warn(
                        f"{found.live['id']} bills the {what} and carries no billing key (made in Enlivy or "
                        "by an older version of this provider): taken as this billing's invoice"
                    )
                return _summary(found.live, "existing", idempotency_key, billing, url_for)
            dead.extend(found.dead)
    for _ in range(MAX_GENERATIONS):
        if dead:
            if if_cancelled == "fail":
                raise DeadInvoiceError(dead, what)
            warn(
                f"the invoice of the {what} was cancelled or deleted in Enlivy ("
                + "; ".join(_named(invoice) for invoice in dead)
                + "): billing it again under a new Idempotency-Key"
            )
        key = generation_key(idempotency_key, [str(invoice["id"]) for invoice in dead])
        before_request()
        try:
            answer = client.create_invoice_answer(payload, idempotency_key=key)
        except EnlivyConflictError:
            held = find_billing(client, billing, before_request=before_request) if billing else None
            if held is not None and held.live is None and _new_ids(held.dead, dead):
                # The key's invoice is dead (cancelled or deleted, e.g. because it was wrong and the inputs
                # were corrected since): the billing moves to its next generation, as after a lookup.
                dead.extend(held.dead)
                continue
            raise BillingConflictError(
                key, what, held.live if held else None, looked_up=billing is not None
            ) from None
        if not answer.replayed and answer.certain:
            return _summary(answer.record, "created", key, billing, url_for)
        # A replay shows the invoice as it was then; and a server that does not say whether it replayed may
        # have answered with a write made moments ago and cancelled since. Its state now decides.
        before_request()
        current = _current_state(client, answer.record)
        if not is_dead(current):
            return _summary(current, "replayed" if answer.replayed else "created", key, billing, url_for)
        dead.append(current)
    raise DeadInvoiceError(dead, what)


def _new_ids(found: Sequence[Mapping[str, Any]], known: Sequence[Mapping[str, Any]]) -> bool:
    """Whether ``found`` names a dead invoice the key's generation does not account for yet."""
    return bool({str(invoice["id"]) for invoice in found} - {str(invoice["id"]) for invoice in known})


def _current_state(client: EnlivyClient, record: Mapping[str, Any]) -> dict[str, Any]:
    """A replayed answer shows the invoice as it was then; what it is now decides the outcome."""
    from enlivy_provider.client import EnlivyNotFoundError

    try:
        return client.get_invoice(str(record["id"]))
    except EnlivyNotFoundError:  # a soft-deleted invoice may be hidden from GET
        return {**record, "deleted_at": record.get("deleted_at") or "unknown"}


def _summary(
    record: Mapping[str, Any],
    outcome: str,
    key: str,
    billing: Billing | None,
    url_for: Callable[[str], str | None],
) -> dict[str, Any]:
    summary = invoice_summary(record, outcome=outcome, idempotency_key=key, url=url_for(str(record["id"])))
    summary["billing_key"] = billing.billing_key if billing else None
    return summary
