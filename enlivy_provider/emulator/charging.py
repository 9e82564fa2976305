"""``POST /invoices/{id}/charge``: an off-session charge attempt, its charge log and its scripted outcome.

The SDK: ``invoices->charge()`` answers the refreshed invoice, with the attempt's outcome in the answer's
``meta.charge_result`` {status, error_code, error_message, provider_reference, next_action_url}; every
attempt is an immutable ``invoice_charge_log``; charged invoices carry ``charge_first_failed_at``,
``charge_retry_count``, ``next_charge_retry_at``, ``charge_retry_exhausted_at``.

There is no payment provider here, so the outcome is scripted (``/_emulator/charge-outcomes``): per
invoice, else per customer, else ``succeeded``. An invoice that is already paid answers ``already_paid``
and is not charged again.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from enlivy_provider.emulator.common import new_id, now_iso, validation_error

if TYPE_CHECKING:
    from enlivy_provider.emulator.state import EmulatorState

CHARGE_STATUSES = ("in_progress", "succeeded", "failed", "requires_action", "already_paid")
SCRIPTABLE = ("succeeded", "requires_action", "failed")
DEFAULT_ERROR = ("card_declined", "Your card was declined.")
# Statuses an invoice can be charged in: issued and not settled or voided.
_NOT_CHARGEABLE = {
    "draft": "a draft invoice cannot be charged; issue it first",
    "cancelled": "it is cancelled",
}


@dataclass
class ChargeOutcome:
    id: str
    status: str
    invoice_id: str | None = None
    customer_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    next_action_url: str | None = None
    times: int | None = None  # remaining; None = until cleared
    hits: int = 0


class ChargeOutcomeBook:
    """Scripted outcomes of charge attempts (admin API); the first match by invoice, then by customer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outcomes: list[ChargeOutcome] = []
        self._ids = itertools.count(1)

    def add(self, spec: dict[str, Any]) -> ChargeOutcome:
        errors: dict[str, list[str]] = {}
        invoice_id, customer_id = spec.get("invoice_id"), spec.get("customer_id")
        if (invoice_id is None) == (customer_id is None):
            errors["invoice_id"] = ["Give exactly one of invoice_id and customer_id."]
        status = spec.get("status")
        if status not in SCRIPTABLE:
            errors["status"] = [f"The status must be one of {', '.join(SCRIPTABLE)}."]
        for name in ("invoice_id", "customer_id", "error_code", "error_message", "next_action_url"):
            if spec.get(name) is not None and not isinstance(spec.get(name), str):
                errors.setdefault(name, []).append(f"The {name} must be a string.")
        times = spec.get("times")
        if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
            errors["times"] = ["The times must be a positive integer (or absent: until cleared)."]
        unknown = sorted(set(spec) - {"invoice_id", "customer_id", "status", "error_code", "error_message",
                                      "next_action_url", "times"})  # fmt: skip
        if unknown:
            errors["outcome"] = [f"Unknown field(s): {', '.join(unknown)}."]
        if errors:
            raise validation_error(errors)
        error_code, error_message = (spec.get("error_code"), spec.get("error_message"))
        if status == "failed":
            error_code = error_code or DEFAULT_ERROR[0]
            error_message = error_message or DEFAULT_ERROR[1]
        outcome = ChargeOutcome(
            id=f"charge_outcome_{next(self._ids)}",
            status=str(status),
            invoice_id=invoice_id,
            customer_id=customer_id,
            error_code=error_code,
            error_message=error_message,
            next_action_url=spec.get("next_action_url"),
            times=times,
        )
        with self._lock:
            self._outcomes.append(outcome)
        return outcome

    def take(self, invoice_id: str, customer_id: str | None) -> ChargeOutcome | None:
        with self._lock:
            for matches in (
                lambda o: o.invoice_id == invoice_id,
                lambda o: customer_id is not None and o.customer_id == customer_id,
            ):
                for outcome in self._outcomes:
                    if matches(outcome) and (outcome.times is None or outcome.times > 0):
                        outcome.hits += 1
                        if outcome.times is not None:
                            outcome.times -= 1
                        return outcome
        return None

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(o) for o in self._outcomes]

    def clear(self) -> None:
        with self._lock:
            self._outcomes.clear()


def _reference(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def charge_invoice(
    state: EmulatorState, organization_id: str, invoice_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One charge attempt: (the refreshed invoice, ``charge_result``). Always logged."""
    invoices = state.invoices
    with invoices.lock:
        invoice = invoices.get(organization_id, invoice_id, allow_deleted=False)
        refusal = _NOT_CHARGEABLE.get(invoice["status"])
        if refusal is None and invoice.get("type") == "proforma":
            refusal = "a proforma invoice cannot be charged; issue an invoice from it first"
        if refusal is not None:
            raise validation_error({"status": [f"The invoice cannot be charged: {refusal}."]})
        customer_id = invoice.get("organization_receiver_user_id")
        now = now_iso()
        if invoice["status"] == "paid":
            result = _result("already_paid")
        else:
            outcome = state.charge_outcomes.take(invoice_id, customer_id)
            result = _result(outcome.status if outcome else "succeeded", outcome)
        log = {
            "id": new_id("org_inv_cl"),
            "object": "invoice_charge_log",
            "organization_id": organization_id,
            "organization_invoice_id": invoice_id,
            "organization_user_payment_method_id": None,
            "initiated_by_organization_user_id": None,
            "source": "admin",
            "status": result["status"],
            "payment_provider": "stripe",
            "payment_provider_reference": result["provider_reference"],
            "error_code": result["error_code"],
            "error_message": result["error_message"],
            "next_action_url": result["next_action_url"],
            "amount": invoice["total"],
            "currency": invoice["currency"],
            "attempted_at": now,
            "completed_at": None if result["status"] == "requires_action" else now,
            "created_at": now,
            "updated_at": now,
        }
        state.store.put_record("charge_log", log)
        if result["status"] == "already_paid":
            return invoice, result
        _apply(invoice, result, now)
        event = "charged" if result["status"] == "succeeded" else "charge_failed"
        with state.trails.context(
            event, charge_log_id=log["id"], metadata={"charge_status": result["status"]}
        ):
            invoices.save(invoice)
        return invoice, result


def _result(status: str, outcome: ChargeOutcome | None = None) -> dict[str, Any]:
    reference = {
        "succeeded": _reference("charge:ch"),
        "requires_action": _reference("payment_intent:pi"),
        "failed": _reference("charge:ch"),
    }.get(status)
    next_action_url = None
    if status == "requires_action":
        next_action_url = (outcome.next_action_url if outcome else None) or (
            f"https://checkout.enlivy.test/authenticate/{reference}"
        )
    return {
        "status": status,
        "error_code": outcome.error_code if outcome and status == "failed" else None,
        "error_message": outcome.error_message if outcome and status == "failed" else None,
        "provider_reference": reference,
        "next_action_url": next_action_url,
    }


def _apply(invoice: dict[str, Any], result: dict[str, Any], now: str) -> None:
    """The invoice after an attempt: paid on success; the retry-state scalars on every charged invoice."""
    for name in ("charge_first_failed_at", "next_charge_retry_at", "charge_retry_exhausted_at"):
        invoice.setdefault(name, None)
    invoice["charge_retry_count"] = int(invoice.get("charge_retry_count") or 0) + 1
    invoice["payment_provider_reference"] = result["provider_reference"]
    if result["status"] == "succeeded":
        invoice["status"] = "paid"
        invoice["paid_at"] = now
        invoice["_payable_since"] = None  # paid: --auto-pay-after has nothing left to do
    elif result["status"] == "failed" and not invoice.get("charge_first_failed_at"):
        invoice["charge_first_failed_at"] = now
    invoice["updated_at"] = now
