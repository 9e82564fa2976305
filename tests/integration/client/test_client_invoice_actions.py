"""EnlivyClient and AsyncEnlivyClient against the emulator: invoice actions (charge, refund, issue, tags)
and the invoice side lists (receipts, logs, reminders, event trails, network exchanges)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from enlivy_provider.client import (
    AsyncEnlivyClient,
    ChargeAnswer,
    EnlivyClient,
    EnlivyInvalidRequestError,
    EnlivyNotFoundError,
    EnlivyValidationError,
    Page,
)
from enlivy_provider.emulator.seed import DEMO_CUSTOMERS
from enlivy_provider.testing import EmulatorHandle

CHARGE = ("POST", "/organizations/{org}/invoices/{id}/charge")
TRAILS = ("GET", "/organizations/{org}/invoices/event-trails")


def test_charge_returns_the_invoice_and_the_charge_result(
    api: EnlivyClient, payload: Callable[..., dict[str, Any]], enlivy_emulator: EmulatorHandle
) -> None:
    invoice = api.create_invoice(payload())
    answer = api.charge_invoice(invoice["id"])
    assert isinstance(answer, ChargeAnswer) and answer.status == "succeeded" and not answer.replayed
    assert answer.invoice["status"] == "paid" and answer.invoice["charge_retry_count"] == 1
    assert answer.result["provider_reference"].startswith("charge:ch_")
    other = api.create_invoice(payload(1))
    enlivy_emulator.script_charge(
        "requires_action", invoice_id=other["id"], next_action_url="https://3ds.example/x"
    )
    pending = api.charge_invoice(other["id"], include="charge_logs")
    assert (
        pending.status == "requires_action" and pending.result["next_action_url"] == "https://3ds.example/x"
    )
    assert [log["status"] for log in pending.invoice["charge_logs"]] == ["requires_action"]


def test_a_charge_cut_off_after_commit_is_retried_with_its_key_and_charged_once(
    api: EnlivyClient, payload: Callable[..., dict[str, Any]], enlivy_emulator: EmulatorHandle
) -> None:
    invoice = api.create_invoice(payload())
    enlivy_emulator.add_fault("POST", "/organizations/*/invoices/*/charge", "drop_after_commit")
    answer = api.charge_invoice(invoice["id"], idempotency_key="charge-once")
    assert answer.status == "succeeded" and answer.replayed  # the retry got the first attempt's answer
    assert enlivy_emulator.request_count(*CHARGE) == 2
    assert [log["status"] for log in api.list_charge_logs(organization_invoice_id=invoice["id"])] == [
        "succeeded"
    ]


def test_refunds_partial_then_the_rest(api: EnlivyClient, payload: Callable[..., dict[str, Any]]) -> None:
    invoice = api.create_invoice(payload(), include="line_items")  # 2 x 95.00 at 19 %
    line_id = invoice["line_items"][0]["id"]
    partial = api.refund_invoice(
        invoice["id"],
        [{"organization_invoice_line_item_id": line_id, "quantity": Decimal("1")}],
        reason="One returned",
        idempotency_key="refund-1",
    )
    assert partial["type"] == "reversal" and partial["total"] == Decimal("-113.05")
    assert partial["line_items"][0]["quantity"] == -1
    rest = api.refund_invoice(invoice["id"], include="parent_invoice")
    assert rest["total"] == Decimal("-113.05") and rest["parent_invoice"]["id"] == invoice["id"]
    with pytest.raises(EnlivyValidationError) as refused:
        api.refund_invoice(invoice["id"])
    assert "line_items" in refused.value.field_errors
    original = api.get_invoice(invoice["id"], include="reversal_invoices")
    assert sum(r["total"] for r in original["reversal_invoices"]) == -invoice["total"]


def test_a_refund_line_without_its_quantity_is_refused_before_any_request(
    api: EnlivyClient, payload: Callable[..., dict[str, Any]], enlivy_emulator: EmulatorHandle
) -> None:
    invoice = api.create_invoice(payload())
    enlivy_emulator.reset_counters()
    with pytest.raises(EnlivyInvalidRequestError, match=r"line_items\.0: quantity"):
        api.refund_invoice(invoice["id"], [{"organization_invoice_line_item_id": "org_invli_x"}])
    assert enlivy_emulator.counters()["total"] == 0


def test_issue_invoice_and_receipt(api: EnlivyClient, payload: Callable[..., dict[str, Any]]) -> None:
    proforma = api.create_invoice(payload(type="proforma"))
    issued = api.issue_invoice(proforma["id"], idempotency_key="issue-1")
    assert issued["type"] == "standard" and issued["organization_invoice_id"] == proforma["id"]
    assert api.issue_invoice(proforma["id"], idempotency_key="issue-1")["id"] == issued["id"]  # replayed
    receipt = api.issue_receipt(issued["id"])
    assert receipt["object"] == "receipt" and receipt["receipt_number"].startswith("RCP-")
    assert api.get_receipt(receipt["id"], include="invoice")["invoice"]["id"] == issued["id"]
    assert [r["id"] for r in api.list_receipts(organization_invoice_id=issued["id"])] == [receipt["id"]]


def test_tags(api: EnlivyClient, payload: Callable[..., dict[str, Any]]) -> None:
    tag = api.create_tag("priority", description="Chase first")
    assert tag["alias"] == "priority" and [t["id"] for t in api.list_tags()] == [tag["id"]]
    invoice = api.create_invoice(payload())
    assert api.tag_invoice(invoice["id"], tag["id"])["tag_ids"] == [tag["id"]]
    assert api.untag_invoice(invoice["id"], tag["id"])["tag_ids"] == []
    with pytest.raises(EnlivyNotFoundError):
        api.tag_invoice(invoice["id"], "org_tag_missing")


def test_event_trails_page_lazily_oldest_first(
    api: EnlivyClient, payload: Callable[..., dict[str, Any]], enlivy_emulator: EmulatorHandle
) -> None:
    invoice = api.create_invoice(payload())
    for n in range(4):
        api.update_invoice(invoice["id"], {"note_lang_map": {"en": f"v{n}"}})
    enlivy_emulator.reset_counters()
    entries = api.list_event_trails(subject_id=invoice["id"], order="asc", per_page=2, include="changes")
    assert enlivy_emulator.request_count(*TRAILS) == 0  # nothing fetched before iterating
    events = [(e["event_type"], e["changes"][0]["new_values"].get("note_lang_map")) for e in entries]
    assert events == [("created", None)] + [("updated", {"en": f"v{n}"}) for n in range(4)]
    assert enlivy_emulator.request_count(*TRAILS) == 3  # 5 entries, 2 per page
    page = api.list_event_trails_page(per_page=1, order="asc")
    assert isinstance(page, Page) and page.pagination["total"] == 5
    assert api.get_event_trail(page.items[0]["id"])["event_type"] == "created"


def test_logs_and_reminders(
    api: EnlivyClient, payload: Callable[..., dict[str, Any]], enlivy_emulator: EmulatorHandle
) -> None:
    due = (datetime.now(timezone.utc) + timedelta(days=20)).strftime("%Y-%m-%d")
    invoice = api.create_invoice(payload(due_at=due))
    api.send_invoice_email(invoice["id"], to="ap@globex.example")
    [log] = api.list_notification_logs(types="email", organization_invoice_id=invoice["id"])
    assert log["sent_to"] == "ap@globex.example" and log["object"] == "invoice_notification_log"
    reminders = api.scheduled_reminders(type="email_reminder_upcoming")
    assert [r["organization_invoice_id"] for r in reminders.items] == [invoice["id"]]
    assert reminders.meta["count"] == 1 and reminders.meta["to"]
    exchange = enlivy_emulator.add_network_exchange(invoice_id=invoice["id"])
    assert [x["id"] for x in api.list_network_exchanges(invoice_state="attached")] == [exchange["id"]]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda c: c.list_event_trails(subjectid="x"),
            "unknown filter 'subjectid' for invoices/event-trails",
        ),
        (lambda c: c.list_charge_logs(include="payment"), "unknown include 'payment'"),
        (lambda c: c.scheduled_reminders(status="pending"), "unknown filter 'status'"),
        (lambda c: c.list_receipts(include="line_items"), "unknown include 'line_items' for receipts"),
        (lambda c: c.charge_invoice("org_inv_1", include="charges"), "unknown include 'charges'"),
    ],
)
def test_unknown_filters_and_includes_fail_before_any_request(
    api: EnlivyClient, enlivy_emulator: EmulatorHandle, call: Callable[[EnlivyClient], Any], message: str
) -> None:
    enlivy_emulator.reset_counters()
    with pytest.raises(EnlivyInvalidRequestError, match=message):
        call(api)
    assert enlivy_emulator.counters()["total"] == 0


def test_async_client_has_the_same_operations(
    enlivy_emulator: EmulatorHandle, payload: Callable[..., dict[str, Any]]
) -> None:
    async def scenario() -> dict[str, Any]:
        async with AsyncEnlivyClient(
            enlivy_emulator.base_url, enlivy_emulator.token, organization_id=enlivy_emulator.org_id
        ) as client:
            invoice = await client.create_invoice(payload())
            enlivy_emulator.script_charge("failed", customer_id=DEMO_CUSTOMERS[0].id, times=1)
            failed = await client.charge_invoice(invoice["id"])
            charged = await client.charge_invoice(invoice["id"])
            reversal = await client.refund_invoice(invoice["id"], reason="async")
            receipt = await client.issue_receipt(invoice["id"])
            tag = await client.create_tag("async")
            tagged = await client.tag_invoice(invoice["id"], tag["id"])
            untagged = await client.untag_invoice(invoice["id"], tag["id"])
            proforma = await client.create_invoice(payload(1, type="proforma"))
            issued = await client.issue_invoice(proforma["id"])
            return {
                "results": (failed.status, charged.status, charged.invoice["status"]),
                "reversal": reversal["total"],
                "receipt": (await client.get_receipt(receipt["id"]))["receipt_number"],
                "receipts": [r["id"] async for r in client.iter_receipts()],
                "tags": (
                    [t["alias"] async for t in client.iter_tags()],
                    tagged["tag_ids"],
                    untagged["tag_ids"],
                ),
                "issued": issued["type"],
                "trail": [
                    e["event_type"]
                    async for e in client.iter_event_trails(subject_id=invoice["id"], order="asc", per_page=2)
                ],
                "trail_page": (
                    trail_page := await client.list_event_trails_page(per_page=1, order="asc")
                ).pagination["total"],
                "first_trail": (await client.get_event_trail(trail_page.items[0]["id"]))["event_type"],
                "charge_logs": [log["status"] async for log in client.iter_charge_logs(order="asc")],
                "notification_logs": [log async for log in client.iter_notification_logs()],
                "reminders": (await client.scheduled_reminders()).meta["count"],
                "exchanges": [x async for x in client.iter_network_exchanges()],
                "invoice": invoice,
            }

    out = asyncio.run(scenario())
    assert out["results"] == ("failed", "succeeded", "paid")
    assert out["reversal"] == -out["invoice"]["total"]
    assert out["receipt"].startswith("RCP-") and len(out["receipts"]) == 1
    assert out["tags"][0] == ["async"] and out["tags"][1] != [] and out["tags"][2] == []
    assert out["issued"] == "standard"
    assert out["trail"] == ["created", "charge_failed", "charged", "refunded", "updated", "updated"]
    assert out["trail_page"] >= 8 and out["first_trail"] == "created"
    assert out["charge_logs"] == ["failed", "succeeded"]
    assert out["notification_logs"] == [] and out["exchanges"] == [] and out["reminders"] == 0
