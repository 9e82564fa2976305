"""Invoice logs over HTTP: notification logs (the e-mails sent), scheduled reminders, network exchanges."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from emulator_test_api import Api

from enlivy_provider.emulator.seed import DEMO_CUSTOMERS
from enlivy_provider.testing import EmulatorHandle


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_every_email_sent_shows_up_as_a_notification_log(api: Api) -> None:
    first, second = api.create_invoice(0), api.create_invoice(1)
    api.post(f"/invoices/{first['id']}/email", json={"to": ["a@x.example"], "cc": ["b@x.example"]})
    api.post(f"/invoices/{second['id']}/email", json={})
    logs = api.get("/invoices/notification-logs", params={"order": "asc"}).json()
    assert logs["meta"]["pagination"]["total"] == 2
    sent = logs["data"]
    assert [log["organization_invoice_id"] for log in sent] == [first["id"], second["id"]]
    assert sent[0]["object"] == "invoice_notification_log" and sent[0]["type"] == "email"
    assert (sent[0]["sent_to"], sent[0]["sent_cc"], sent[0]["recipient_email"]) == (
        "a@x.example",
        ["b@x.example"],
        "a@x.example",
    )
    assert sent[1]["sent_to"] == DEMO_CUSTOMERS[1].email  # the receiver's address when `to` is not given
    assert sent[0]["status"] == "sent" and sent[0]["sent_at"]
    one = api.get(f"/invoices/notification-logs/{sent[0]['id']}").json()["data"]
    assert one["id"] == sent[0]["id"]


def test_notification_log_filters(api: Api) -> None:
    first, second = api.create_invoice(0), api.create_invoice(1)
    for invoice in (first, second):
        api.post(f"/invoices/{invoice['id']}/email", json={})

    def invoice_ids(**params: Any) -> list[str]:
        response = api.get("/invoices/notification-logs", params=params)
        assert response.status_code == 200, response.text
        return [log["organization_invoice_id"] for log in response.json()["data"]]

    assert invoice_ids(organization_invoice_id=second["id"]) == [second["id"]]
    assert len(invoice_ids(types="email,email_auto_send")) == 2
    assert invoice_ids(types="email_reminder_upcoming,email_reminder_overdue") == []
    today = datetime.now(timezone.utc).date()
    assert len(invoice_ids(created_at_from=str(today), created_at_to=str(today))) == 2
    assert invoice_ids(created_at_from="2020-01-01", created_at_to="2020-01-02") == []
    assert api.get("/invoices/notification-logs", params={"types": "sms"}).status_code == 422
    assert invoice_ids(created_at_to="2020-01-01") == []  # one end alone is a bound, as the SDK sends it
    assert len(invoice_ids(created_at_from="2020-01-01")) == 2
    assert api.get("/invoices/notification-logs", params={"created_at_from": "someday"}).status_code == 422


def test_scheduled_reminders_project_the_cadence_inside_the_window(api: Api) -> None:
    due = (datetime.now(timezone.utc) + timedelta(days=40)).replace(hour=0, minute=0, second=0, microsecond=0)
    invoice = api.create_invoice(0, due_at=_iso(due))
    api.create_invoice(1, due_at=_iso(due), status="draft")  # drafts are not chased
    window = {"from": _iso(due - timedelta(days=10)), "to": _iso(due + timedelta(days=10))}
    response = api.get("/invoices/scheduled-reminders", params=window)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["meta"] == {"from": window["from"], "to": window["to"], "count": 3}
    rows = body["data"]
    assert [(r["type"], r["sequence"], r["scheduled_for"]) for r in rows] == [
        ("email_reminder_upcoming", 1, _iso(due - timedelta(days=3) + timedelta(hours=5))),
        ("email_reminder_overdue", 1, _iso(due + timedelta(days=1, hours=5))),
        ("email_reminder_overdue", 2, _iso(due + timedelta(days=7, hours=5))),
    ]
    assert all("id" not in row for row in rows)
    assert rows[0]["organization_invoice_id"] == invoice["id"]
    assert rows[0]["organization_invoice_number"] == invoice["formatted_number"]
    assert rows[0]["recipient_email"] == DEMO_CUSTOMERS[0].email and rows[0]["currency"] == "EUR"
    only_overdue = api.get(
        "/invoices/scheduled-reminders", params={**window, "type": "email_reminder_overdue"}
    )
    assert [r["type"] for r in only_overdue.json()["data"]] == ["email_reminder_overdue"] * 2
    api.post(f"/invoices/{invoice['id']}/charge")  # paid: nothing left to chase
    assert api.get("/invoices/scheduled-reminders", params=window).json()["meta"]["count"] == 0


def test_scheduled_reminder_window_defaults_and_cap(api: Api) -> None:
    response = api.get("/invoices/scheduled-reminders")
    meta = response.json()["meta"]
    start, end = (datetime.strptime(meta[k], "%Y-%m-%dT%H:%M:%SZ") for k in ("from", "to"))
    assert end - start == timedelta(days=30)
    far = api.get("/invoices/scheduled-reminders", params={"to": "2999-01-01T00:00:00Z"}).json()["meta"]
    capped = datetime.strptime(far["to"], "%Y-%m-%dT%H:%M:%SZ")
    assert timedelta(days=365) < capped - start <= timedelta(days=366, seconds=5)  # 366 days from now
    assert api.get("/invoices/scheduled-reminders", params={"type": "sms"}).status_code == 422
    bad_order = {"from": "2030-02-01T00:00:00Z", "to": "2030-01-01T00:00:00Z"}
    assert api.get("/invoices/scheduled-reminders", params=bad_order).status_code == 422


def test_network_exchanges_list_and_filters(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    invoice = api.create_invoice(0)
    attached = enlivy_emulator.add_network_exchange(invoice_id=invoice["id"], status="success")
    loose = enlivy_emulator.add_network_exchange(organization_id=enlivy_emulator.org_id, status="rejected")

    def ids(**params: Any) -> set[str]:
        response = api.get("/invoices/network-exchanges", params=params)
        assert response.status_code == 200, response.text
        return {x["id"] for x in response.json()["data"]}

    assert ids() == {attached["id"], loose["id"]}
    assert ids(invoice_state="attached") == {attached["id"]}
    assert ids(invoice_state="unattached") == {loose["id"]}
    assert ids(invoice_state="any") == {attached["id"], loose["id"]}
    assert ids(status="rejected") == {loose["id"]}
    assert ids(organization_invoice_id=invoice["id"]) == {attached["id"]}
    assert ids(organization_user_id=DEMO_CUSTOMERS[0].id) == {attached["id"]}
    assert api.get("/invoices/network-exchanges", params={"invoice_state": "x"}).status_code == 422
    one = api.get(f"/invoices/network-exchanges/{attached['id']}", params={"include": "invoice"}).json()[
        "data"
    ]
    assert one["object"] == "invoice_network_exchange" and one["invoice"]["data"]["id"] == invoice["id"]
    assert api.get("/invoices/network-exchanges/org_inv_nx_missing").status_code == 404


def test_logs_of_another_organization_stay_apart(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    invoice = api.create_invoice(0)
    api.post(f"/invoices/{invoice['id']}/email", json={})
    api.post(f"/invoices/{invoice['id']}/charge")
    other = Api(enlivy_emulator, enlivy_emulator.other_token, enlivy_emulator.other_org_id)
    try:
        for path in (
            "/invoices/notification-logs",
            "/invoices/charge-logs",
            "/invoices/event-trails",
            "/receipts",
        ):
            assert other.get(path).json()["data"] == [], path
        assert (
            api.get(
                "/invoices/charge-logs", headers={"Authorization": f"Bearer {enlivy_emulator.other_token}"}
            ).status_code
            == 403
        )
    finally:
        other.session.close()
