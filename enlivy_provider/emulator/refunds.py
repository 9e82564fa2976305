"""``POST /invoices/{id}/refund`` and ``POST /invoices/{id}/issue-invoice``: invoices made from invoices.

From the SDK guide (docs/organization/invoices.md, "Refund & Issuance"): a refund generates a reversal
(credit-note) invoice that points back at the original; without ``line_items`` it reverses the whole
invoice, with ``line_items: [{organization_invoice_line_item_id, quantity}]`` only those quantities;
``reason``, ``note_lang_map`` and a ``reversal`` prefix are optional. The original lists its reversals
under the ``reversal_invoices`` include, each reversal its original under ``parent_invoice``.

Emulator choices (inference, the sources do not say): the reversal has ``type: reversal``, its
``organization_invoice_id`` is the original, and its amounts are negative (quantities negated, prices
kept) — as the SDK's reverse receipt has negative totals. A line cannot be refunded beyond the quantity
billed, counting earlier refunds; the refund that completes a line takes exactly the line's remaining
amounts, so the reversals of an invoice always add up to minus the invoice. A reversal of a paid invoice is
``paid``, otherwise ``pending``. Issuing from a proforma copies it into a new ``standard`` invoice
(``pending``, issued now) once.
"""

from __future__ import annotations

import copy
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from enlivy_provider.emulator.common import new_id, now_iso, validation_error
from enlivy_provider.emulator.invoicing import blank_invoice, public_invoice
from enlivy_provider.emulator.jsonio import to_decimal
from enlivy_provider.invoices.totals import ZERO, compute_line_totals, round_money

if TYPE_CHECKING:
    from enlivy_provider.emulator.state import EmulatorState

Errors = dict[str, list[str]]
_AMOUNTS = ("sub_total", "discount", "tax_total", "total")
# Copied from the original onto a reversal / from a proforma onto its invoice.
_CARRIED = (
    "organization_bank_account_id", "organization_sender_user_id", "organization_receiver_user_id",
    "organization_receiver_user_address_id", "organization_receiver_shipping_user_address_id",
    "organization_contract_id", "source", "direction", "payment_method", "delivery_method",
    "delivery_method_information", "currency", "receiver_has_custom_identity", "sender_has_custom_identity",
    "receiver_information", "receiver_country_code", "is_tax_charged", "bank_account_payment_qr_types",
    "peppol_project_reference", "peppol_purchase_order_reference", "peppol_sales_order_reference",
)  # fmt: skip


def _check_prefix(
    state: EmulatorState, organization_id: str, body: dict[str, Any], kind: str, errors: Errors
) -> None:
    prefix_id = body.get("organization_invoice_prefix_id")
    if prefix_id is None:
        return
    prefix = (
        state.store.get_record("invoice_prefix", prefix_id, organization_id)
        if isinstance(prefix_id, str)
        else None
    )
    if prefix is None or prefix.get("deleted_at"):
        errors.setdefault("organization_invoice_prefix_id", []).append(
            "The selected organization invoice prefix id is invalid."
        )
    elif prefix.get("type") != kind:
        errors.setdefault("organization_invoice_prefix_id", []).append(f"The prefix must be of type {kind}.")


def _refunded(invoice: dict[str, Any], line_id: str) -> dict[str, Decimal]:
    done = (invoice.get("_refunded") or {}).get(line_id) or {}
    return {name: Decimal(done.get(name, 0)) for name in ("quantity", *_AMOUNTS)}


def _wanted_quantities(invoice: dict[str, Any], body: dict[str, Any], errors: Errors) -> dict[str, Decimal]:
    """Line id → quantity to reverse (all that is left of every line when ``line_items`` is absent)."""
    lines = {line["id"]: line for line in invoice.get("line_items") or []}
    left = {
        line_id: Decimal(line["quantity"]) - _refunded(invoice, line_id)["quantity"]
        for line_id, line in lines.items()
    }
    raw = body.get("line_items")
    if raw is None:
        wanted = {line_id: quantity for line_id, quantity in left.items() if quantity > 0}
        if not wanted:
            errors.setdefault("line_items", []).append("The invoice is already refunded in full.")
        return wanted
    if not isinstance(raw, list) or not raw:
        errors.setdefault("line_items", []).append("The line items field must be a non-empty array.")
        return {}
    wanted = {}
    for index, item in enumerate(raw):
        path = f"line_items.{index}"
        if not isinstance(item, dict):
            errors.setdefault(path, []).append("Each line item must be an object.")
            continue
        line_id = item.get("organization_invoice_line_item_id")
        quantity = to_decimal(item.get("quantity"))
        if not isinstance(line_id, str) or line_id not in lines:
            errors.setdefault(f"{path}.organization_invoice_line_item_id", []).append(
                "The selected organization invoice line item id is not a line of this invoice."
            )
            continue
        if quantity is None or quantity <= 0:
            errors.setdefault(f"{path}.quantity", []).append("The quantity must be a number greater than 0.")
            continue
        wanted[line_id] = wanted.get(line_id, ZERO) + quantity
        if wanted[line_id] > left[line_id]:
            errors.setdefault(f"{path}.quantity", []).append(
                f"The quantity may not exceed what is left to refund of this line ({left[line_id].normalize()} "
                f"of {Decimal(lines[line_id]['quantity']).normalize()})."
            )
    return wanted


def _reversal_line(
    invoice: dict[str, Any], line: dict[str, Any], quantity: Decimal
) -> tuple[dict[str, Any], dict[str, Decimal]]:
    """The reversal's line for ``quantity`` units of ``line`` (negative amounts) and the amounts it reverses."""
    done = _refunded(invoice, line["id"])
    billed = Decimal(line["quantity"])
    if done["quantity"] + quantity == billed:  # the last units take the exact remainder: no cent is lost
        amounts = {name: Decimal(line[name]) - done[name] for name in _AMOUNTS}
    else:
        discount = round_money(Decimal(line["discount"]) * quantity / billed)
        totals = compute_line_totals(
            quantity, Decimal(line["price"]), discount, Decimal(line.get("tax_rate") or 0)
        )
        amounts = {name: getattr(totals, name) for name in _AMOUNTS}
    reversal_line = {
        key: value
        for key, value in line.items()
        if key not in ("id", "organization_invoice_id", "quantity", *_AMOUNTS)
    }
    reversal_line.update({name: -amount for name, amount in amounts.items()})
    reversal_line["quantity"] = -(quantity if quantity != quantity.to_integral_value() else int(quantity))
    return reversal_line, amounts


def refund_invoice(
    state: EmulatorState, organization_id: str, invoice_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Create the reversal invoice of a (partial) refund; 422 when more than billed would be reversed."""
    invoices = state.invoices
    errors: Errors = {}
    for name in ("reason",):
        if body.get(name) is not None and not isinstance(body.get(name), str):
            errors.setdefault(name, []).append(f"The {name} must be a string.")
    note = body.get("note_lang_map")
    if note is not None and not (isinstance(note, dict) and all(isinstance(v, str) for v in note.values())):
        errors.setdefault("note_lang_map", []).append("The note lang map must map locales to texts.")
    with invoices.lock:
        original = invoices.get(organization_id, invoice_id, allow_deleted=False)
        if original.get("type") != "standard" or original["status"] in ("draft", "cancelled"):
            raise validation_error(
                {
                    "invoice": [
                        "Only an issued standard invoice (not a draft, proforma, reversal or cancelled one) can be refunded."
                    ]
                }
            )
        _check_prefix(state, organization_id, body, "reversal", errors)
        wanted = _wanted_quantities(original, body, errors)
        if errors:
            raise validation_error(errors)
        now = now_iso()
        reversal = blank_invoice(new_id("org_inv"), organization_id, now)
        reversal.update({name: copy.deepcopy(original.get(name)) for name in _CARRIED})
        lines = {line["id"]: line for line in original["line_items"]}
        reversed_lines = []
        refunded = dict(original.get("_refunded") or {})
        for order, (line_id, quantity) in enumerate(wanted.items(), start=1):
            reversal_line, amounts = _reversal_line(original, lines[line_id], quantity)
            done = _refunded(original, line_id)
            refunded[line_id] = {
                "quantity": done["quantity"] + quantity,
                **{n: done[n] + amounts[n] for n in _AMOUNTS},
            }
            reversed_lines.append(
                {
                    "id": new_id("org_invli"),
                    "object": "invoice_line_item",
                    "organization_id": organization_id,
                    "organization_invoice_id": reversal["id"],
                    **reversal_line,
                    "order": order,
                }
            )
        paid = original["status"] == "paid"
        reversal.update(
            type="reversal",
            organization_invoice_id=invoice_id,
            organization_invoice_prefix_id=body.get("organization_invoice_prefix_id"),
            status="paid" if paid else "pending",
            issued_at=now,
            paid_at=now if paid else None,
            note_lang_map=note,
            line_items=reversed_lines,
            **{name: sum((line[name] for line in reversed_lines), ZERO) for name in _AMOUNTS},
        )
        reversal["_refund_reason"] = body.get("reason")
        invoices.assign_number(reversal, now)
        invoices.save(reversal)
        original["_refunded"] = refunded
        original["_reversal_invoice_ids"] = [*(original.get("_reversal_invoice_ids") or []), reversal["id"]]
        metadata = {
            "reversal_invoice_id": reversal["id"],
            "reason": body.get("reason"),
            "total": reversal["total"],
        }
        with state.trails.context("refunded", metadata=metadata):
            invoices.save(original)
        return reversal


def issue_from_proforma(
    state: EmulatorState, organization_id: str, invoice_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    """The standard invoice issued from a proforma (once per proforma)."""
    invoices = state.invoices
    errors: Errors = {}
    with invoices.lock:
        proforma = invoices.get(organization_id, invoice_id, allow_deleted=False)
        if proforma.get("type") != "proforma":
            raise validation_error({"invoice": ["Only a proforma invoice can be issued as an invoice."]})
        if proforma.get("_issued_invoice_id"):
            raise validation_error(
                {
                    "invoice": [
                        f"An invoice was already issued from this proforma: {proforma['_issued_invoice_id']}."
                    ]
                }
            )
        _check_prefix(state, organization_id, body, "standard", errors)
        if errors:
            raise validation_error(errors)
        now = now_iso()
        issued = blank_invoice(new_id("org_inv"), organization_id, now)
        source = public_invoice(proforma)
        issued.update(
            {name: copy.deepcopy(source.get(name)) for name in (*_CARRIED, "note_lang_map", *_AMOUNTS)}
        )
        issued["line_items"] = [
            {**copy.deepcopy(line), "id": new_id("org_invli"), "organization_invoice_id": issued["id"]}
            for line in source.get("line_items") or []
        ]
        due = proforma.get("due_at")
        issued.update(
            type="standard",
            status="pending",
            organization_invoice_id=invoice_id,
            organization_invoice_prefix_id=body.get("organization_invoice_prefix_id"),
            issued_at=now,
            due_at=due if due and due >= now else None,
        )
        issued["_payable_since"] = time.time()  # pending: --auto-pay-after applies as to any new invoice
        invoices.assign_number(issued, now)
        invoices.save(issued)
        proforma["_issued_invoice_id"] = issued["id"]
        invoices.save(proforma)  # no public field changes: no trail entry for the proforma
        return issued
