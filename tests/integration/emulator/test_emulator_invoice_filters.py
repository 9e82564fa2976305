"""Every invoice list filter (docs/enlivy-api-notes.md §6.1-6.3) and the 422 answer to each bad value."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from emulator_test_api import Api

from enlivy_provider.emulator import seed


@pytest.fixture
def invoices(api: Api) -> dict[str, dict[str, Any]]:
    """Six invoices that differ in one filterable field each (and one soft-deleted)."""
    made = {
        "base": api.create_invoice(0, issued_at="2026-01-10"),
        "paid": api.create_invoice(1, status="paid", issued_at="2026-02-10", paid_at="2026-02-15 10:30:00"),
        "usd": api.create_invoice(2, currency="USD", issued_at="2026-03-10"),
        "inbound": api.create_invoice(3, direction="inbound", type="proforma", issued_at="2026-04-10"),
        "external": api.create_invoice(
            4,
            source="external",
            number="EXT-77",
            line_items=None,
            total="50.00",
            sub_total="50.00",
            organization_sender_user_id=seed.SENDER_USER_ID,
        ),
        "deleted": api.create_invoice(5, status="draft"),
    }
    api.delete(f"/invoices/{made['deleted']['id']}")
    return made


def ids_of(api: Api, **params: Any) -> set[str]:
    response = api.list_invoices(per_page=50, **params)
    assert response.status_code == 200, response.text
    return {invoice["id"] for invoice in response.json()["data"]}


def test_status_one_comma_list_and_array(api: Api, invoices: dict[str, dict[str, Any]]) -> None:
    assert ids_of(api, status="paid") == {invoices["paid"]["id"]}
    pending = {invoices[k]["id"] for k in ("base", "usd", "inbound", "external")}
    assert ids_of(api, status="pending,paid") == pending | {invoices["paid"]["id"]}
    url = api.url("/invoices") + "?status[]=paid&status[]=draft&deleted=-1"
    both = {i["id"] for i in api.session.get(url).json()["data"]}
    assert both == {invoices["paid"]["id"], invoices["deleted"]["id"]}
    url = api.url("/invoices") + "?status[0]=paid"
    assert {i["id"] for i in api.session.get(url).json()["data"]} == {invoices["paid"]["id"]}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"direction": "inbound"}, {"inbound"}),
        ({"source": "external"}, {"external"}),
        ({"currency": "USD"}, {"usd"}),
        ({"organization_receiver_user_id": seed.DEMO_CUSTOMERS[2].id}, {"usd"}),
        ({"organization_sender_user_id": seed.SENDER_USER_ID}, {"external"}),
        ({"issued_at_from": "2026-02-01", "issued_at_to": "2026-03-10"}, {"paid", "usd"}),
        ({"issued_at_from": "2026-02-10T00:00:00Z", "issued_at_to": "2026-02-10T00:00:00Z"}, {"paid"}),
        ({"paid_at_from": "2026-02-15T10:00:00Z", "paid_at_to": "2026-02-15T11:00:00Z"}, {"paid"}),
        ({"paid_at_from": "2026-02-16", "paid_at_to": "2026-02-28"}, set()),
        ({"total": "226.10", "currency": "EUR"}, {"base", "paid", "inbound"}),
        ({"q": "EXT-77"}, {"external"}),
        ({"q": "umbrella"}, {"usd"}),
        ({"deleted": 1}, {"deleted"}),
    ],
)
def test_filter(
    api: Api, invoices: dict[str, dict[str, Any]], params: dict[str, Any], expected: set[str]
) -> None:
    assert ids_of(api, **params) == {invoices[name]["id"] for name in expected}


def test_created_and_updated_at_ranges(api: Api, invoices: dict[str, dict[str, Any]]) -> None:
    today = datetime.now(timezone.utc).date()
    live = {invoices[k]["id"] for k in ("base", "paid", "usd", "inbound", "external")}
    for base in ("created_at", "updated_at"):
        window = {f"{base}_from": str(today - timedelta(days=1)), f"{base}_to": str(today)}
        assert ids_of(api, **window) == live
        past = {f"{base}_from": "2020-01-01", f"{base}_to": "2020-12-31T23:59:59Z"}
        assert ids_of(api, **past) == set()


def test_ids_and_deleted(api: Api, invoices: dict[str, dict[str, Any]]) -> None:
    wanted = [invoices["base"]["id"], invoices["usd"]["id"], invoices["deleted"]["id"]]
    assert ids_of(api, ids=",".join(wanted)) == set(wanted[:2])
    assert ids_of(api, ids=",".join(wanted), deleted=-1) == set(wanted)
    assert ids_of(api, deleted=0) == ids_of(api)
    assert len(ids_of(api, deleted=-1)) == 6


def test_order_by_and_order(api: Api, invoices: dict[str, dict[str, Any]]) -> None:
    def order(**params: Any) -> list[str]:
        return [i["id"] for i in api.list_invoices(per_page=50, **params).json()["data"]]

    by_issued = order(order_by="issued_at", order="asc", source="internal")
    assert by_issued == [invoices[k]["id"] for k in ("base", "paid", "usd", "inbound")]
    assert order(order_by="issued_at", order="desc", source="internal") == by_issued[::-1]
    # default: created_at desc (newest first)
    assert order()[0] == invoices["external"]["id"]
    assert order(order_by="total", order="asc")[0] == invoices["external"]["id"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "sent"}, "status"),
        ({"status": "paid,void"}, "status"),
        ({"direction": "sideways"}, "direction"),
        ({"source": "imported"}, "source"),
        ({"currency": "XXX"}, "currency"),
        ({"type": "proforma"}, "type"),  # not an invoice filter in the SDK (InvoiceService lists none)
        ({"created_at_from": "2026-01-01"}, "created_at_to"),
        ({"updated_at_to": "2026-01-01"}, "updated_at_from"),
        ({"issued_at_from": "2026-02-01", "issued_at_to": "2026-01-01"}, "issued_at_to"),
        ({"paid_at_from": "yesterday", "paid_at_to": "2026-01-01"}, "paid_at_from"),
        ({"ids": ",".join(f"org_inv_{n}" for n in range(31))}, "ids"),
        ({"ids": "org_inv_1", "q": "globex"}, "ids"),
        ({"q": "ab"}, "q"),
        ({"order_by": "favourite"}, "order_by"),
        ({"order": "up"}, "order"),
        ({"deleted": 2}, "deleted"),
        ({"total": "lots"}, "total"),
    ],
)
def test_bad_filter_values_are_422(api: Api, params: dict[str, Any], field: str) -> None:
    response = api.list_invoices(**params)
    assert response.status_code == 422
    body = response.json()
    assert body["message"] == "The given data was invalid."
    assert field in body["errors"], body
    assert all(isinstance(m, str) for m in body["errors"][field])


def test_order_by_number_is_numeric(api: Api) -> None:
    api.handle.bulk_invoices(11)
    numbers = [i["number"] for i in api.list_invoices(order_by="number", order="asc").json()["data"]]
    assert numbers == [str(n) for n in range(1, 12)]
