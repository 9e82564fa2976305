"""The billing identity: one key per billing whatever the run, a new generation per set of dead invoices."""

from __future__ import annotations

import datetime as dt

from enlivy_provider.client.core import is_replay
from enlivy_provider.invoices.billing_identity import (
    BILLING_KEY_FIELD,
    Billing,
    check_billing_key,
    check_marker_field,
    default_billing_key,
    generation_key,
)
from enlivy_provider.invoices.billing_period import BillingPeriod

OCTOBER = BillingPeriod(dt.date(2026, 10, 1), dt.date(2026, 10, 31))
FEE = Billing("org_a", "org_user_1", OCTOBER, "platform-fee")


def test_the_key_depends_on_the_billing_only() -> None:
    assert FEE.idempotency_key() == Billing("org_a", "org_user_1", OCTOBER, "platform-fee").idempotency_key()
    others = {
        Billing("org_b", "org_user_1", OCTOBER, "platform-fee"),
        Billing("org_a", "org_user_2", OCTOBER, "platform-fee"),
        Billing(
            "org_a", "org_user_1", BillingPeriod(dt.date(2026, 10, 1), dt.date(2026, 10, 30)), "platform-fee"
        ),
        Billing("org_a", "org_user_1", OCTOBER, "consulting-hours"),
        Billing("org_a", "org_user_1", OCTOBER, "platform-fee", item="second"),
    }
    assert FEE.idempotency_key() not in {billing.idempotency_key() for billing in others}
    assert FEE.idempotency_key().startswith("airflow-billing-") and len(FEE.idempotency_key()) == 56


def test_dead_invoices_move_the_key_to_a_generation_every_observer_agrees_on() -> None:
    first = FEE.idempotency_key()
    assert FEE.idempotency_key([]) == first
    second = FEE.idempotency_key(["org_inv_b", "org_inv_a"])
    assert second != first
    assert second == FEE.idempotency_key(
        ["org_inv_a", "org_inv_b", "org_inv_a"]
    )  # order and repeats do not matter
    assert generation_key("my-key") == "my-key"
    assert generation_key("my-key", ["org_inv_a"]) != generation_key("other-key", ["org_inv_a"])


def test_an_invoice_belongs_to_the_billing_by_its_marker_or_no_marker() -> None:
    assert FEE.marks({BILLING_KEY_FIELD: "platform-fee"})
    assert FEE.marks({BILLING_KEY_FIELD: None}) and FEE.marks({})
    assert not FEE.marks({BILLING_KEY_FIELD: "consulting-hours"})


def test_billing_keys_and_the_marker_field_are_checked() -> None:
    assert default_billing_key("billing", "create") == "billing.create"
    assert check_billing_key(" fee ") == ("fee", [])
    assert [str(i) for i in check_billing_key("")[1]] == ["billing_key: must be a non-empty string (got '')"]
    assert "at most 255 characters" in str(check_billing_key("x" * 256)[1][0])
    assert check_marker_field({BILLING_KEY_FIELD: "fee"}, "fee") == []
    [issue] = check_marker_field({BILLING_KEY_FIELD: "PRJ-7"}, "fee")
    assert str(issue).startswith("invoice.peppol_project_reference: carries the billing key ('fee')")


def test_a_replay_is_told_by_its_header_or_by_an_old_created_at() -> None:
    record = {"created_at": "2026-11-01T10:00:00Z"}
    assert is_replay({"Idempotent-Replayed": "true"}, record)
    assert not is_replay({"idempotent-replayed": "false", "Date": "Sun, 01 Nov 2026 12:00:00 GMT"}, record)
    assert is_replay({"Date": "Sun, 01 Nov 2026 10:05:00 GMT"}, record)
    assert not is_replay({"Date": "Sun, 01 Nov 2026 10:00:30 GMT"}, record)
    assert not is_replay({}, record) and not is_replay({"Date": "garbage"}, record)


def test_an_update_answer_without_the_header_is_a_replay_by_its_updated_at_not_created_at() -> None:
    """An updated invoice's created_at is as old as the invoice: it says nothing about this write."""
    record = {"created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-11-01T10:00:00Z"}
    assert not is_replay({"Date": "Sun, 01 Nov 2026 10:00:30 GMT"}, record, "updated_at")
    assert is_replay({"Date": "Sun, 01 Nov 2026 10:05:00 GMT"}, record, "updated_at")
