"""Update one invoice without ever leaving a paid invoice marked unpaid.

The Enlivy API has no conditional update: no ``ETag``/``If-Match``, no ``updated_at`` precondition on
``PUT /invoices/{id}`` (neither the public API page nor the official PHP SDK, whose request options are only
organization id, Idempotency-Key and locale). A status check is therefore a read followed by a write, and a
customer paying in between is overwritten: PUT is a partial update, so the invoice keeps the payment's
``paid_at`` under the status we wrote (e.g. ``overdue`` with ``paid_at`` set).

So, for an update that writes an unpaid status:

1. note where the invoice's event trail ends (:mod:`~enlivy_provider.invoices.status_trail`), then read the
   invoice right before the PUT (the only request between the check and the write is the PUT); refuse,
   writing nothing, when it is not in an expected status or already carries a payment;
2. write;
3. read it back, and the trail since the mark. A ``paid_at``, a paid status, or a trail entry setting a paid
   status means a payment landed during the update. When our status overwrote it, the payment state is
   restored (the status the payment set, with its ``paid_at``, under an Idempotency-Key derived from the
   update's); in every case the update fails with :class:`PaymentRaceError` saying what happened, so nothing
   downstream acts on a status that is not true.

A retried task whose first answer was lost finds its own change in place (the invoice already has the status
we write), the server replays the first answer and the trail has nothing new: no alarm. Unless that lost
write had overwritten a payment: the trail's last status change then goes from a paid status to ours. The
retry sends its PUT again under the same key; a replay proves the overwrite was this task's, and the payment
is restored as in step 3. Without a replay the overwrite was someone else's: it is reported, not undone.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from enlivy_provider.invoices import status_trail
from enlivy_provider.invoices.idempotency import KEY_PREFIX
from enlivy_provider.invoices.status_trail import StatusChange

if TYPE_CHECKING:
    from enlivy_provider.client import EnlivyClient

log = logging.getLogger(__name__)

#: Statuses a customer's payment sets; any other status written over a payment un-marks it.
PAID_STATUSES = frozenset({"paid", "payment_partial"})
#: The status a restore writes when the trail does not say which one the payment set: ``paid_at`` goes with
#: a full payment (the emulator and the SDK's "mark as paid" example set it with ``paid``).
DEFAULT_PAID_STATUS = "paid"


class UpdateRefusedError(Exception):
    """The invoice is not in a state this update may change; nothing was written."""


class PaymentRaceError(Exception):
    """A payment landed while the invoice was being updated; the message says what was found and done."""

    def __init__(self, message: str, *, invoice_id: str, restored: bool) -> None:
        super().__init__(message)
        self.invoice_id = invoice_id
        self.restored = restored


def restore_key(update_key: str) -> str:
    """The Idempotency-Key of the restoring write: derived from the update's key, so a re-run of the same
    task replays its restore instead of writing again, and never collides with the update itself."""
    material = f"{update_key}|invoice.restore-payment"
    return KEY_PREFIX + hashlib.sha256(material.encode("utf-8")).hexdigest()[:40]


def is_paid(record: Mapping[str, Any]) -> bool:
    return record.get("status") in PAID_STATUSES or bool(record.get("paid_at"))


def writes_unpaid_status(payload: Mapping[str, Any]) -> bool:
    status = payload.get("status")
    return status is not None and status not in PAID_STATUSES


def check_before_write(
    invoice_id: str, current: Mapping[str, Any], payload: Mapping[str, Any], expected: Collection[str]
) -> None:
    """Raise :class:`UpdateRefusedError` unless ``payload`` may be written over ``current``.

    An invoice already in the status the update sets is let through: that is what a retried task sees after
    its first attempt's answer was lost (the Idempotency-Key then replays that answer).
    """
    status = current.get("status")
    target = payload.get("status")
    if expected and status not in expected and status != target:
        raise UpdateRefusedError(
            f"invoice {invoice_id} is {status!r}, not one of expected_statuses {list(expected)}; not updated"
        )
    if writes_unpaid_status(payload) and is_paid(current):
        raise UpdateRefusedError(
            f"invoice {invoice_id} carries a payment (status {status!r}, paid_at {current.get('paid_at')!r}): "
            f"an update must not mark a paid invoice {target!r}; not updated"
        )


@dataclass(frozen=True)
class ConcurrentPayment:
    """A payment that landed during the update: the status and ``paid_at`` it set, and whether it landed
    between our read and our write (our status then overwrote it) rather than after our write."""

    status: str
    paid_at: str | None
    overwritten: bool

    @classmethod
    def find(
        cls,
        answer: Mapping[str, Any],
        after: Mapping[str, Any],
        trail: Sequence[StatusChange] | None,
        written: str,
    ) -> ConcurrentPayment | None:
        """``None`` when neither the PUT's answer, the read-back nor the trail since the update began shows a
        payment (``before`` had none: :func:`check_before_write` refuses paid invoices)."""
        trail = trail or ()
        paid = [change for change in trail if change.new in PAID_STATUSES]
        if not (paid or is_paid(answer) or is_paid(after)):
            return None
        last = paid[-1] if paid else None
        if last is not None and last.new is not None:
            status = last.new
        else:
            status = after["status"] if after.get("status") in PAID_STATUSES else DEFAULT_PAID_STATUS
        overwritten = any(change.old in PAID_STATUSES and change.new == written for change in trail)
        return cls(
            status=status,
            paid_at=after.get("paid_at") or answer.get("paid_at") or (last.paid_at if last else None),
            overwritten=overwritten or bool(answer.get("paid_at")),
        )


def update_invoice_checked(
    client: EnlivyClient,
    invoice_id: str,
    payload: Mapping[str, Any],
    *,
    idempotency_key: str,
    expected_statuses: Collection[str] = (),
) -> dict[str, Any]:
    """Check, write and — for an unpaid status — verify one update; return the invoice as last read.

    Raises :class:`UpdateRefusedError` (nothing written), :class:`PaymentRaceError` (a payment landed during
    the update: restored when our write had overwritten it) or the client's errors.
    """
    unpaid = writes_unpaid_status(payload)
    mark = status_trail.mark(client, invoice_id) if unpaid else None
    before = client.get_invoice(invoice_id)
    if mark is not None and before.get("status") == payload["status"]:
        earlier = EarlierOverwrite.find(client, invoice_id, mark, str(payload["status"]), before)
        if earlier is not None:
            raise _earlier_overwrite_error(client, invoice_id, payload, earlier, idempotency_key)
    check_before_write(invoice_id, before, payload, expected_statuses)
    answer = client.update_invoice(invoice_id, payload, idempotency_key=idempotency_key)
    if mark is None:
        return answer  # a paid status or no status at all cannot un-mark a payment
    after = client.get_invoice(invoice_id)
    trail = status_trail.status_changes_since(client, invoice_id, mark)
    if trail is None:
        log.warning(
            "invoice %s: the API refused its event trail; a partial payment without paid_at landing during "
            "this update could not be seen",
            invoice_id,
        )
    payment = ConcurrentPayment.find(answer, after, trail, str(payload["status"]))
    if payment is None:
        return after
    when = "between our read and our write" if payment.overwritten else "after our write"
    raise _race_error(
        client, invoice_id, payload, before.get("status"), after, payment, idempotency_key, when
    )


@dataclass(frozen=True)
class EarlierOverwrite:
    """A payment that a write of the status we are about to write had already overwritten, as the event
    trail tells it: its last status change went from a paid status to ours."""

    payment: ConcurrentPayment
    status_before_payment: str | None

    @classmethod
    def find(
        cls,
        client: EnlivyClient,
        invoice_id: str,
        mark: status_trail.TrailMark,
        written: str,
        current: Mapping[str, Any],
    ) -> EarlierOverwrite | None:
        """``None`` when the trail is unreadable (:func:`check_before_write` then refuses a ``paid_at``) or
        its last status change is not a payment overwritten by ``written``."""
        if not mark.readable:
            return None
        changes = status_trail.status_changes_since(client, invoice_id, status_trail.TrailMark(readable=True))
        if not changes or changes[-1].old not in PAID_STATUSES or changes[-1].new != written:
            return None
        status = str(changes[-1].old)
        paying = [change for change in changes[:-1] if change.new == status]
        paid_at = current.get("paid_at") or (paying[-1].paid_at if paying else None)
        payment = ConcurrentPayment(status=status, paid_at=paid_at, overwritten=True)
        return cls(payment, paying[-1].old if paying else None)


def _earlier_overwrite_error(
    client: EnlivyClient,
    invoice_id: str,
    payload: Mapping[str, Any],
    earlier: EarlierOverwrite,
    update_key: str,
) -> PaymentRaceError:
    """Send the update again under its key: the server replaying it proves the overwrite was this task's
    (an earlier attempt whose answer was lost), and then it is restored; otherwise it is only reported."""
    answer = client.update_invoice_answer(invoice_id, payload, idempotency_key=update_key)
    payment = earlier.payment
    if answer.replayed:
        after = client.get_invoice(invoice_id)
        when = "between our read and our write in an earlier attempt of this task whose answer was lost"
        return _race_error(
            client, invoice_id, payload, earlier.status_before_payment, after, payment, update_key, when
        )
    message = (
        f"invoice {invoice_id}: a payment (status {payment.status!r}, paid_at {payment.paid_at!r}) had been "
        f"overwritten by another write of status {payload.get('status')!r} before this task ran (the server did "
        "not replay this task's Idempotency-Key, so that write was not this task's); this task wrote fields "
        f"{', '.join(sorted(payload))} with the status unchanged; the payment is not restored: check the "
        "invoice and set its status by hand. The update is not retried."
    )
    return PaymentRaceError(message, invoice_id=invoice_id, restored=False)


def _race_error(
    client: EnlivyClient,
    invoice_id: str,
    payload: Mapping[str, Any],
    status_before: str | None,
    after: Mapping[str, Any],
    payment: ConcurrentPayment,
    update_key: str,
    when: str,
) -> PaymentRaceError:
    found = f"status {after.get('status')!r}, paid_at {after.get('paid_at')!r}"
    restored = False
    if after.get("status") in PAID_STATUSES:
        outcome = "nothing (the payment's status is in place)"
    else:
        outcome, restored = _restore(client, invoice_id, payment, restore_key(update_key))
        kept = sorted(set(payload) - {"status"})
        if restored and kept:
            outcome += f"; the other fields we wrote stay ({', '.join(kept)})"
    message = (
        f"invoice {invoice_id} was paid while this task updated it: a payment (status {payment.status!r}, "
        f"paid_at {payment.paid_at!r}) landed {when}; "
        f"status before our write: {status_before!r}; "
        f"we wrote: status {payload.get('status')!r} (fields {', '.join(sorted(payload))}); "
        f"found after: {found}; restored: {outcome}. "
        "The update is not retried: check the invoice before changing it again."
    )
    return PaymentRaceError(message, invoice_id=invoice_id, restored=restored)


def _restore(client: EnlivyClient, invoice_id: str, payment: ConcurrentPayment, key: str) -> tuple[str, bool]:
    """Put the payment's state back; returns (what to report, whether the invoice shows the payment again)."""
    from enlivy_provider.client import EnlivyError

    body: dict[str, Any] = {"status": payment.status}
    if payment.paid_at:
        body["paid_at"] = payment.paid_at
    wanted = f"status {payment.status!r}, paid_at {payment.paid_at!r}"
    manual = f"set it back by hand: PUT {wanted}"
    try:
        record = client.update_invoice(invoice_id, body, idempotency_key=key)
    except EnlivyError as exc:
        return f"FAILED ({type(exc).__name__}: {exc}); {manual}", False
    got = (record.get("status"), record.get("paid_at"))
    if got[0] != payment.status or (payment.paid_at and got[1] != payment.paid_at):
        return f"NOT CONFIRMED (the restore answered status {got[0]!r}, paid_at {got[1]!r}); {manual}", False
    return f"{wanted} (Idempotency-Key {key})", True
