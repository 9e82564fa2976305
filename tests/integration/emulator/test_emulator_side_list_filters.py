"""The SDK's global filters on every list, and no list that silently ignores a filter name: the invoice
side lists (receipts, tags, logs, network exchanges, event trails, scheduled reminders) refuse names they do
not know, and ``tag_ids`` / ``q_in`` narrow the lists that can answer them (docs/emulator.md "Fidelity")."""

from __future__ import annotations

from typing import Any

import pytest
from emulator_test_api import Api


def assert_422(response: Any, field: str, *, says: str = "") -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert field in body["errors"], body
    assert says in body["errors"][field][0]


def test_tag_ids_lists_the_invoices_carrying_a_tag(api: Api) -> None:
    tag = api.post("/tags", json={"alias": "vip"}).json()
    other = api.post("/tags", json={"alias": "churn-risk"}).json()
    tagged, untagged, both = api.create_invoice(0), api.create_invoice(1), api.create_invoice(2)
    assert api.put(f"/invoices/{tagged['id']}/tag/{tag['id']}").status_code == 200
    api.put(f"/invoices/{both['id']}/tag/{tag['id']}")
    api.put(f"/invoices/{both['id']}/tag/{other['id']}")

    def ids(**params: Any) -> set[str]:
        return {i["id"] for i in api.list_invoices(**params).json()["data"]}

    assert ids(tag_ids=tag["id"]) == {tagged["id"], both["id"]}
    assert ids(tag_ids=other["id"]) == {both["id"]}
    assert untagged["id"] in ids() and untagged["id"] not in ids(tag_ids=f"{tag['id']},{other['id']}")


def test_q_in_narrows_a_record_list(api: Api) -> None:
    api.post("/tags", json={"alias": "enterprise", "description": "big accounts"})
    api.post("/tags", json={"alias": "smb", "description": "not enterprise"})

    def aliases(**params: Any) -> list[str]:
        return sorted(t["alias"] for t in api.get("/tags", params=params).json()["data"])

    assert aliases(q="enterprise") == ["enterprise", "smb"]
    assert aliases(q="enterprise", q_in="alias") == ["enterprise"]
    assert_422(api.get("/tags", params={"q": "enterprise", "q_in": "colour"}), "q_in")


@pytest.mark.parametrize(
    ("path", "params", "field", "says"),
    [
        ("/tags", {"name": "vip"}, "name", "not one the API lists"),
        ("/invoices/charge-logs", {"invoice_id": "org_inv_x"}, "invoice_id", "not one the API lists"),
        ("/invoices/notification-logs", {"type": "email"}, "type", "not one the API lists"),
        (
            "/invoices/network-exchanges",
            {"institution_id": "anaf"},
            "institution_id",
            "not one the API lists",
        ),
        ("/receipts", {"receipt_number": "RCP-1"}, "receipt_number", "not one the API lists"),
        ("/receipts", {"total": "10.00"}, "total", "emulator does not implement"),
        ("/invoices/event-trails", {"subject": "org_inv_x"}, "subject", "not one the API lists"),
        (
            "/invoices/event-trails",
            {"q": "status", "q_in": "metadata"},
            "q_in",
            "emulator does not implement",
        ),
        ("/invoices/event-trails", {"tag_ids": "org_tag_x"}, "tag_ids", "emulator does not implement"),
        ("/invoices/scheduled-reminders", {"status": "pending"}, "status", "not one the API lists"),
    ],
)
def test_side_lists_refuse_what_they_cannot_answer(
    api: Api, path: str, params: dict[str, str], field: str, says: str
) -> None:
    assert_422(api.get(path, params=params), field, says=says)
