"""Invoice actions over HTTP: charge (scripted outcomes), refund → reversal invoices, issue-invoice,
issue-receipt, tags and tagging, and the routing of the fixed ``/invoices/<segment>`` paths."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from emulator_test_api import Api, decimal_json

from enlivy_provider.emulator.seed import DEMO_CUSTOMERS, DEMO_INVOICE_PREFIX_ID, TAX_CLASS_STANDARD_ID
from enlivy_provider.testing import EmulatorHandle

CHARGE_RESULT_KEYS = {"status", "error_code", "error_message", "provider_reference", "next_action_url"}


def _lines(*quantities: int) -> list[dict[str, Any]]:
    return [
        {
            "name_lang_map": {"en": f"Item {n}"},
            "quantity": quantity,
            "price": "33.33",
            "discount": "1.00",
            "organization_tax_class_id": TAX_CLASS_STANDARD_ID,
        }
        for n, quantity in enumerate(quantities)
    ]


def _invoice(api: Api, **overrides: Any) -> dict[str, Any]:
    response = api.post("/invoices", json={**_base(), **overrides})
    assert response.status_code == 201, response.text
    return dict(decimal_json(response))


def _base() -> dict[str, Any]:
    return {
        "organization_receiver_user_id": DEMO_CUSTOMERS[0].id,
        "status": "pending",
        "currency": "EUR",
        "payment_method": "card_payment",
        "delivery_method": "email",
        "line_items": _lines(3, 1),
    }


# -- charge ------------------------------------------------------------------------------------------------


def test_charge_succeeds_by_default_pays_the_invoice_and_logs_the_attempt(api: Api) -> None:
    invoice = _invoice(api)
    response = api.post(f"/invoices/{invoice['id']}/charge")
    assert response.status_code == 200, response.text
    body = decimal_json(response)
    result = body["meta"]["charge_result"]
    assert set(result) == CHARGE_RESULT_KEYS
    assert result["status"] == "succeeded" and result["provider_reference"].startswith("charge:ch_")
    assert body["data"]["status"] == "paid" and body["data"]["paid_at"]
    assert body["data"]["charge_retry_count"] == 1 and body["data"]["charge_first_failed_at"] is None
    logs = api.get("/invoices/charge-logs", params={"organization_invoice_id": invoice["id"]}).json()["data"]
    assert [(log["object"], log["status"], log["source"]) for log in logs] == [
        ("invoice_charge_log", "succeeded", "admin")
    ]
    assert logs[0]["id"].startswith("org_inv_cl_") and Decimal(str(logs[0]["amount"])) == invoice["total"]


def test_a_scripted_failure_leaves_the_invoice_unpaid_and_counts_the_attempt(
    api: Api, enlivy_emulator: EmulatorHandle
) -> None:
    invoice = _invoice(api)
    enlivy_emulator.script_charge(
        "failed",
        invoice_id=invoice["id"],
        error_code="insufficient_funds",
        error_message="No money.",
        times=1,
    )
    failed = decimal_json(api.post(f"/invoices/{invoice['id']}/charge"))
    assert failed["meta"]["charge_result"]["status"] == "failed"
    assert failed["meta"]["charge_result"]["error_code"] == "insufficient_funds"
    assert failed["meta"]["charge_result"]["error_message"] == "No money."
    assert failed["data"]["status"] == "pending"
    assert failed["data"]["charge_first_failed_at"] and failed["data"]["charge_retry_count"] == 1
    # times=1: the retry is not scripted any more and succeeds.
    retried = decimal_json(api.post(f"/invoices/{invoice['id']}/charge"))
    assert retried["meta"]["charge_result"]["status"] == "succeeded"
    assert retried["data"]["charge_retry_count"] == 2
    assert retried["data"]["charge_first_failed_at"] == failed["data"]["charge_first_failed_at"]
    statuses = [
        log["status"] for log in api.get("/invoices/charge-logs", params={"order": "asc"}).json()["data"]
    ]
    assert statuses == ["failed", "succeeded"]
    assert [
        log["status"] for log in api.get("/invoices/charge-logs", params={"status": "failed"}).json()["data"]
    ] == ["failed"]


def test_requires_action_is_scripted_per_customer_and_returns_the_url(
    api: Api, enlivy_emulator: EmulatorHandle
) -> None:
    mine, other = _invoice(api), _invoice(api, organization_receiver_user_id=DEMO_CUSTOMERS[1].id)
    enlivy_emulator.script_charge(
        "requires_action", customer_id=DEMO_CUSTOMERS[0].id, next_action_url="https://pay.example/3ds/1"
    )
    result = api.post(f"/invoices/{mine['id']}/charge").json()
    assert result["meta"]["charge_result"]["status"] == "requires_action"
    assert result["meta"]["charge_result"]["next_action_url"] == "https://pay.example/3ds/1"
    assert result["data"]["status"] == "pending"
    # Another customer's invoice is not affected by that script.
    assert (
        api.post(f"/invoices/{other['id']}/charge").json()["meta"]["charge_result"]["status"] == "succeeded"
    )


def test_an_invoice_script_wins_over_a_customer_script(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    invoice = _invoice(api)
    enlivy_emulator.script_charge("failed", customer_id=DEMO_CUSTOMERS[0].id)
    enlivy_emulator.script_charge("requires_action", invoice_id=invoice["id"])
    assert api.post(f"/invoices/{invoice['id']}/charge").json()["meta"]["charge_result"]["status"] == (
        "requires_action"
    )


def test_charging_a_paid_invoice_answers_already_paid_without_charging(api: Api) -> None:
    invoice = _invoice(api)
    api.post(f"/invoices/{invoice['id']}/charge")
    again = api.post(f"/invoices/{invoice['id']}/charge").json()
    assert again["meta"]["charge_result"]["status"] == "already_paid"
    assert again["data"]["charge_retry_count"] == 1
    assert [
        log["status"] for log in api.get("/invoices/charge-logs", params={"order": "asc"}).json()["data"]
    ] == [
        "succeeded",
        "already_paid",
    ]


def test_a_draft_cannot_be_charged_and_nothing_is_logged(api: Api) -> None:
    draft = _invoice(api, status="draft")
    response = api.post(f"/invoices/{draft['id']}/charge")
    assert response.status_code == 422 and "status" in response.json()["errors"]
    assert api.get("/invoices/charge-logs").json()["data"] == []


def test_a_replayed_charge_is_not_charged_twice(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    invoice = _invoice(api)
    enlivy_emulator.script_charge("failed", invoice_id=invoice["id"])
    headers = {"Idempotency-Key": "charge-1"}
    first = api.post(f"/invoices/{invoice['id']}/charge", headers=headers)
    second = api.post(f"/invoices/{invoice['id']}/charge", headers=headers)
    assert second.headers.get("Idempotent-Replayed") == "true" and second.json() == first.json()
    assert len(api.get("/invoices/charge-logs").json()["data"]) == 1


def test_bad_charge_scripts_are_refused(enlivy_emulator: EmulatorHandle) -> None:
    with pytest.raises(RuntimeError, match="422"):
        enlivy_emulator.script_charge("exploded", invoice_id="org_inv_x")
    with pytest.raises(RuntimeError, match="422"):
        enlivy_emulator.script_charge("failed")  # neither invoice nor customer


# -- refund ------------------------------------------------------------------------------------------------


def test_a_full_refund_creates_a_reversal_with_negative_amounts_linked_both_ways(api: Api) -> None:
    invoice = _invoice(api)
    response = api.post(f"/invoices/{invoice['id']}/refund", json={"reason": "Duplicate order"})
    assert response.status_code == 201, response.text
    reversal = decimal_json(response)["data"]
    assert reversal["type"] == "reversal" and reversal["organization_invoice_id"] == invoice["id"]
    assert reversal["formatted_number"] and reversal["id"] != invoice["id"]
    for name in ("sub_total", "discount", "tax_total", "total"):
        assert reversal[name] == -invoice[name]
    assert [line["quantity"] for line in reversal["line_items"]["data"]] == [-3, -1]
    original = decimal_json(api.get(f"/invoices/{invoice['id']}", params={"include": "reversal_invoices"}))[
        "data"
    ]
    assert [r["id"] for r in original["reversal_invoices"]["data"]] == [reversal["id"]]
    back = decimal_json(api.get(f"/invoices/{reversal['id']}", params={"include": "parent_invoice"}))["data"]
    assert back["parent_invoice"]["data"]["id"] == invoice["id"]


def test_partial_refunds_add_up_to_the_invoice_and_more_is_refused(api: Api) -> None:
    invoice = _invoice(api)
    line_id = invoice["line_items"]["data"][0]["id"]  # 3 x 33.33, discount 1.00, 19 %
    totals = []
    for _ in range(3):
        response = api.post(
            f"/invoices/{invoice['id']}/refund",
            json={"line_items": [{"organization_invoice_line_item_id": line_id, "quantity": 1}]},
        )
        assert response.status_code == 201, response.text
        totals.append(decimal_json(response)["data"]["total"])
    line = invoice["line_items"]["data"][0]
    # One unit at a time, the last refund takes the exact remainder: no cent is lost or invented.
    assert sum(totals) == -line["total"]
    too_much = api.post(
        f"/invoices/{invoice['id']}/refund",
        json={"line_items": [{"organization_invoice_line_item_id": line_id, "quantity": 1}]},
    )
    assert too_much.status_code == 422
    assert "line_items.0.quantity" in too_much.json()["errors"]
    # A full refund now reverses only what is left: the second line.
    rest = decimal_json(api.post(f"/invoices/{invoice['id']}/refund"))["data"]
    assert rest["total"] == -invoice["line_items"]["data"][1]["total"]
    nothing_left = api.post(f"/invoices/{invoice['id']}/refund")
    assert nothing_left.status_code == 422 and "line_items" in nothing_left.json()["errors"]


def test_refund_requests_are_checked_before_anything_is_written(
    api: Api, enlivy_emulator: EmulatorHandle
) -> None:
    invoice = _invoice(api)
    line_id = invoice["line_items"]["data"][1]["id"]  # quantity 1
    enlivy_emulator.reset_counters()
    before = len(enlivy_emulator.invoices())
    cases = [
        ({"line_items": [{"organization_invoice_line_item_id": line_id, "quantity": 2}]}, "line_items.0.quantity"),
        ({"line_items": [{"organization_invoice_line_item_id": "org_invli_nope", "quantity": 1}]},
         "line_items.0.organization_invoice_line_item_id"),
        ({"line_items": [{"organization_invoice_line_item_id": line_id, "quantity": 0}]}, "line_items.0.quantity"),
        ({"organization_invoice_prefix_id": DEMO_INVOICE_PREFIX_ID}, "organization_invoice_prefix_id"),  # standard
        ({"line_items": []}, "line_items"),
    ]  # fmt: skip
    for body, field in cases:
        response = api.post(f"/invoices/{invoice['id']}/refund", json=body)
        assert response.status_code == 422, body
        assert field in response.json()["errors"], response.json()
    assert len(enlivy_emulator.invoices()) == before


def test_drafts_proformas_and_reversals_cannot_be_refunded(api: Api) -> None:
    draft = _invoice(api, status="draft")
    proforma = _invoice(api, type="proforma")
    reversal = api.post(f"/invoices/{_invoice(api)['id']}/refund").json()["data"]
    for invoice_id in (draft["id"], proforma["id"], reversal["id"]):
        assert api.post(f"/invoices/{invoice_id}/refund").status_code == 422
    assert api.post("/invoices/org_inv_missing/refund").status_code == 404


def test_a_replayed_refund_creates_one_reversal(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    invoice = _invoice(api)
    headers = {"Idempotency-Key": "refund-1"}
    first = api.post(f"/invoices/{invoice['id']}/refund", json={"reason": "x"}, headers=headers)
    second = api.post(f"/invoices/{invoice['id']}/refund", json={"reason": "x"}, headers=headers)
    assert first.status_code == second.status_code == 201 and first.json() == second.json()
    assert [i["type"] for i in enlivy_emulator.invoices()].count("reversal") == 1


# -- issue-invoice and issue-receipt -------------------------------------------------------------------------


def test_issue_invoice_turns_a_proforma_into_a_numbered_standard_invoice_once(api: Api) -> None:
    proforma = _invoice(api, type="proforma")
    response = api.post(f"/invoices/{proforma['id']}/issue-invoice", json={})
    assert response.status_code == 201, response.text
    issued = decimal_json(response)["data"]
    assert issued["type"] == "standard" and issued["status"] == "pending" and issued["formatted_number"]
    assert issued["organization_invoice_id"] == proforma["id"] and issued["total"] == proforma["total"]
    assert len(issued["line_items"]["data"]) == 2
    assert api.post(f"/invoices/{proforma['id']}/issue-invoice").status_code == 422  # once
    assert api.post(f"/invoices/{issued['id']}/issue-invoice").status_code == 422  # not a proforma


def test_issue_receipt_answers_a_numbered_receipt_listed_under_the_invoice(api: Api) -> None:
    invoice = _invoice(api)
    response = api.post(f"/invoices/{invoice['id']}/issue-receipt")
    assert response.status_code == 201, response.text
    receipt = decimal_json(response)["data"]
    assert receipt["object"] == "receipt" and receipt["id"].startswith("org_rcpt_")
    assert (
        receipt["receipt_number"].startswith("RCP-") and receipt["organization_invoice_id"] == invoice["id"]
    )
    assert receipt["total"] == invoice["total"] and receipt["is_reverse"] is False
    second = api.post(f"/invoices/{invoice['id']}/issue-receipt").json()["data"]
    assert second["receipt_number"] != receipt["receipt_number"]
    included = api.get(f"/invoices/{invoice['id']}", params={"include": "receipts"}).json()["data"][
        "receipts"
    ]
    assert {r["id"] for r in included["data"]} == {receipt["id"], second["id"]}
    assert api.get(f"/receipts/{receipt['id']}").json()["data"]["receipt_number"] == receipt["receipt_number"]
    assert api.post(f"/invoices/{_invoice(api, status='draft')['id']}/issue-receipt").status_code == 422


def test_receipt_list_filters(api: Api) -> None:
    first, second = _invoice(api), _invoice(api, organization_receiver_user_id=DEMO_CUSTOMERS[1].id)
    api.post(f"/invoices/{first['id']}/charge")  # paid
    receipts = [api.post(f"/invoices/{i['id']}/issue-receipt").json()["data"] for i in (first, second)]

    def ids(**params: Any) -> set[str]:
        response = api.get("/receipts", params=params)
        assert response.status_code == 200, response.text
        return {r["id"] for r in response.json()["data"]}

    assert ids() == {r["id"] for r in receipts}
    assert ids(organization_invoice_id=first["id"]) == {receipts[0]["id"]}
    assert ids(status="paid") == {receipts[0]["id"]}
    assert ids(organization_receiver_user_id=DEMO_CUSTOMERS[1].id) == {receipts[1]["id"]}
    assert ids(has_sender_user="0") == {r["id"] for r in receipts}
    assert api.get("/receipts", params={"status": "bogus"}).status_code == 422
    assert api.get("/receipts", params={"created_at_from": "2020-01-01"}).status_code == 422
    assert api.get("/receipts", params={"include": "invoice"}).json()["data"][0]["invoice"]["data"]["id"]


# -- tags ------------------------------------------------------------------------------------------------


def test_tags_are_created_listed_and_unique_by_alias(api: Api) -> None:
    created = api.post("/tags", json={"alias": "vip", "description": "Top customers"})
    assert created.status_code == 201, created.text
    tag = created.json()
    assert tag["object"] == "tag" and tag["id"].startswith("org_tag_") and tag["rgba_color_code"]
    assert api.post("/tags", json={"alias": "VIP"}).status_code == 422
    assert api.post("/tags", json={}).json()["errors"]["alias"]
    listed = api.get("/tags").json()
    assert [t["alias"] for t in listed["data"]] == ["vip"] and listed["meta"]["pagination"]["total"] == 1
    assert api.get(f"/tags/{tag['id']}").json()["data"]["alias"] == "vip"


def test_tag_and_untag_an_invoice(api: Api) -> None:
    invoice = _invoice(api)
    first, second = (api.post("/tags", json={"alias": alias}).json() for alias in ("a", "b"))
    for tag in (first, second, first):  # tagging twice changes nothing
        response = api.put(f"/invoices/{invoice['id']}/tag/{tag['id']}")
        assert response.status_code == 200, response.text
    assert response.json()["data"]["tag_ids"] == [first["id"], second["id"]]
    fetched = api.get(f"/invoices/{invoice['id']}", params={"include": "tag_ids"}).json()["data"]
    assert fetched["tag_ids"] == [first["id"], second["id"]]
    assert api.delete(f"/invoices/{invoice['id']}/tag/{first['id']}").json()["data"]["tag_ids"] == [
        second["id"]
    ]
    assert api.get(f"/invoices/{invoice['id']}").json()["data"]["tag_ids"] == [second["id"]]


def test_tagging_needs_an_existing_tag_and_invoice(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    invoice = _invoice(api)
    tag = api.post("/tags", json={"alias": "a"}).json()
    missing = api.put(f"/invoices/{invoice['id']}/tag/org_tag_missing")
    assert missing.status_code == 404 and "tag" in missing.json()["message"]
    assert api.put(f"/invoices/org_inv_missing/tag/{tag['id']}").status_code == 404
    other = Api(enlivy_emulator, enlivy_emulator.other_token, enlivy_emulator.other_org_id)
    try:
        other_tag = other.post("/tags", json={"alias": "theirs"}).json()
    finally:
        other.session.close()
    assert api.put(f"/invoices/{invoice['id']}/tag/{other_tag['id']}").status_code == 404
    assert api.get(f"/invoices/{invoice['id']}").json()["data"]["tag_ids"] == []


# -- routing ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "segment",
    ["event-trails", "charge-logs", "notification-logs", "scheduled-reminders", "network-exchanges"],
)
def test_fixed_invoice_segments_are_not_taken_for_an_invoice_id(
    api: Api, enlivy_emulator: EmulatorHandle, segment: str
) -> None:
    response = api.get(f"/invoices/{segment}")
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["data"], list)
    assert enlivy_emulator.request_count("GET", f"/organizations/{{org}}/invoices/{segment}") == 1
