"""The pure rules of enlivy_provider.invoices.updates (the HTTP flow is tested in test_update_race.py)."""

from __future__ import annotations

import pytest

from enlivy_provider.invoices.status_trail import StatusChange
from enlivy_provider.invoices.updates import (
    ConcurrentPayment,
    UpdateRefusedError,
    check_before_write,
    restore_key,
)

PENDING = {"status": "pending", "paid_at": None}
OVERDUE = {"status": "overdue", "paid_at": None}


def test_expected_statuses_refuse_other_statuses() -> None:
    with pytest.raises(UpdateRefusedError, match=r"is 'draft', not one of expected_statuses \['pending'\]"):
        check_before_write("org_inv_1", {"status": "draft"}, {"status": "cancelled"}, ("pending",))


def test_an_invoice_already_in_the_target_status_is_let_through() -> None:
    check_before_write("org_inv_1", OVERDUE, {"status": "overdue"}, ("pending",))  # a retried task


@pytest.mark.parametrize(
    "current",
    [
        {"status": "paid", "paid_at": "2026-11-03T10:00:00Z"},
        {"status": "payment_partial", "paid_at": None},
        {"status": "overdue", "paid_at": "2026-11-03T10:00:00Z"},  # a payment an earlier write overwrote
    ],
)
def test_an_unpaid_status_is_never_written_over_a_payment(current: dict[str, object]) -> None:
    with pytest.raises(UpdateRefusedError, match="carries a payment"):
        check_before_write("org_inv_1", current, {"status": "overdue"}, ())


def test_paid_statuses_and_status_free_changes_may_touch_a_paid_invoice() -> None:
    paid = {"status": "paid", "paid_at": "2026-11-03T10:00:00Z"}
    check_before_write("org_inv_1", paid, {"status": "paid", "paid_at": "2026-11-04"}, ())
    check_before_write("org_inv_1", paid, {"note_lang_map": {"en": "Thanks"}}, ())


def test_concurrent_payment_from_the_answer_and_the_read_back() -> None:
    assert ConcurrentPayment.find(OVERDUE, OVERDUE, [], "overdue") is None
    overwritten = {"status": "overdue", "paid_at": "T1"}
    assert ConcurrentPayment.find(overwritten, overwritten, None, "overdue") == ConcurrentPayment(
        "paid", "T1", overwritten=True
    )
    assert ConcurrentPayment.find(OVERDUE, {"status": "paid", "paid_at": "T2"}, None, "overdue") == (
        ConcurrentPayment("paid", "T2", overwritten=False)
    )


def test_concurrent_payment_from_the_trail_names_the_status_it_set() -> None:
    # A partial payment sets no paid_at: only the trail shows it, and that our write overwrote it.
    trail = [
        StatusChange("pending", "payment_partial", None),
        StatusChange("payment_partial", "overdue", None),
    ]
    assert ConcurrentPayment.find(OVERDUE, OVERDUE, trail, "overdue") == ConcurrentPayment(
        "payment_partial", None, overwritten=True
    )
    # Our write first, the payment after it.
    trail = [StatusChange("pending", "overdue", None), StatusChange("overdue", "paid", "T3")]
    after = {"status": "paid", "paid_at": "T3"}
    assert ConcurrentPayment.find(OVERDUE, after, trail, "overdue") == ConcurrentPayment(
        "paid", "T3", overwritten=False
    )
    # Our own write alone is no payment.
    assert (
        ConcurrentPayment.find(OVERDUE, OVERDUE, [StatusChange("pending", "overdue", None)], "overdue")
        is None
    )


def test_restore_key_is_stable_and_distinct_from_the_update_key() -> None:
    key = "airflow-0123456789abcdef0123456789abcdef01234567"
    assert restore_key(key) == restore_key(key)
    assert restore_key(key) != key and restore_key(key) != restore_key(key + "x")
    assert restore_key(key).startswith("airflow-") and len(restore_key(key)) == len("airflow-") + 40
