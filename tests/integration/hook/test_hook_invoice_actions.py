"""EnlivyHook offers the invoice actions and side lists of EnlivyClient, over a real Airflow connection."""

from __future__ import annotations

import inspect
from typing import Any

from enlivy_provider.client import EnlivyClient
from enlivy_provider.hooks.enlivy import EnlivyHook
from enlivy_provider.testing import invoice_payload

NEW_OPERATIONS = (
    "charge_invoice", "refund_invoice", "issue_invoice", "issue_receipt", "tag_invoice", "untag_invoice",
    "list_tags", "create_tag", "list_receipts", "get_receipt", "list_notification_logs", "list_charge_logs",
    "scheduled_reminders", "list_event_trails", "list_event_trails_page", "get_event_trail",
    "list_network_exchanges",
)  # fmt: skip


def test_every_public_client_operation_is_on_the_hook_with_its_signature() -> None:
    operations = [
        name
        for name, member in inspect.getmembers(EnlivyClient, inspect.isfunction)
        if not name.startswith("_") and name not in ("close",)
    ]
    assert set(NEW_OPERATIONS) <= set(operations)
    for name in operations:
        assert hasattr(EnlivyHook, name), name
        assert inspect.signature(getattr(EnlivyHook, name)) == inspect.signature(
            getattr(EnlivyClient, name)
        ), name


def test_hook_charges_refunds_and_reads_the_trail(enlivy_airflow_connection: Any) -> None:
    hook = EnlivyHook(client_options={"backoff_base": 0.01, "backoff_cap": 0.05})
    invoice = hook.create_invoice(invoice_payload(), idempotency_key="hook-actions-1")
    enlivy_airflow_connection.script_charge("failed", invoice_id=invoice["id"], times=1)
    assert hook.charge_invoice(invoice["id"], idempotency_key="hook-charge-1").status == "failed"
    assert hook.charge_invoice(invoice["id"], idempotency_key="hook-charge-2").status == "succeeded"
    reversal = hook.refund_invoice(invoice["id"], reason="hook", idempotency_key="hook-refund-1")
    assert reversal["total"] == -invoice["total"]
    receipt = hook.issue_receipt(invoice["id"], idempotency_key="hook-receipt-1")
    assert hook.get_receipt(receipt["id"])["receipt_number"] == receipt["receipt_number"]
    tag = hook.create_tag("hook", idempotency_key="hook-tag-1")
    assert hook.tag_invoice(invoice["id"], tag["id"])["tag_ids"] == [tag["id"]]
    assert [t["alias"] for t in hook.list_tags()] == ["hook"]
    events = [e["event_type"] for e in hook.list_event_trails(subject_id=invoice["id"], order="asc")]
    assert events == ["created", "charge_failed", "charged", "refunded", "updated"]
    assert [log["status"] for log in hook.list_charge_logs(order="asc")] == ["failed", "succeeded"]
    assert hook.scheduled_reminders().meta["count"] == 0
