"""Event destinations and signed webhook deliveries, over real HTTP both ways: the test registers a
destination through the API, changes invoices through the API, and a real HTTP server receives what the
emulator POSTs. Every delivery is checked with the provider's own verifier, which follows the SDK
(``enlivy_provider/webhooks.py``). Waiting uses the emulator's ``/_emulator/deliveries/wait`` (it answers when
its queue is empty), never a sleep."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from emulator_test_api import Api
from webhook_receiver import Receiver, webhook_receiver

from enlivy_provider.testing import EmulatorHandle, free_port, invoice_payload
from enlivy_provider.webhooks import SIGNATURE_HEADER, verify_webhook_signature

ALL_INVOICE_EVENTS = (
    "invoice.created",
    "invoice.updated",
    "invoice.deleted",
    "invoice.restored",
    "invoice.paid",
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


def _destination(api: Api, url: str, events: Any = ALL_INVOICE_EVENTS, **fields: Any) -> dict[str, Any]:
    subscriptions = [e if isinstance(e, dict) else {"event": e, "includes": None} for e in events]
    body = {"type": "webhook", "destination_url": url, "events": subscriptions, **fields}
    response = api.post("/event-destinations", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _events(receiver: Receiver, secret: str) -> list[Any]:
    """What the receiver got, each verified as the SDK verifies it (raises on a bad signature)."""
    return [verify_webhook_signature(r.body, r.headers[SIGNATURE_HEADER], secret) for r in receiver.received]


# -- destinations ----------------------------------------------------------------------------------------------


def test_a_destination_is_created_read_updated_and_deleted_with_the_sdk_shapes(api: Api) -> None:
    created = _destination(
        api,
        "https://hooks.example.com/enlivy",
        [{"event": "invoice.created", "includes": ["line_items"]}, "invoice.paid"],
        name="Finance",
    )
    assert created["id"].startswith("org_evt_dst_") and created["object"] == "event_destination"
    assert created["signing_secret"].startswith("whsec_") and len(created["signing_secret"]) > 30
    assert {k: created[k] for k in ("type", "destination_url", "is_active", "name", "organization_id")} == {
        "type": "webhook",
        "destination_url": "https://hooks.example.com/enlivy",
        "is_active": True,
        "name": "Finance",
        "organization_id": api.org_id,
    }
    # The fields of the SDK's EventDestination model (src/Organization/EventDestination.php lines 12-25).
    assert set(created) == {
        "id", "object", "organization_id", "destination_url", "signing_secret", "is_active", "type", "name",
        "organization_api_credential_id", "config", "created_at", "updated_at", "deleted_at",
        "deleted_by_user_id",
    }  # fmt: skip

    read = api.get(f"/event-destinations/{created['id']}", params={"include": "event_subscriptions"}).json()
    assert read["data"]["signing_secret"] is None  # shown once, on creation
    subscriptions = read["data"]["event_subscriptions"]["data"]
    assert [(s["event"], s["includes"]) for s in subscriptions] == [
        ("invoice.created", ["line_items"]),
        ("invoice.paid", None),
    ]
    assert all(
        s["id"].startswith("org_evt_sub_") and s["object"] == "event_subscription" for s in subscriptions
    )

    updated = api.put(
        f"/event-destinations/{created['id']}",
        json={"events": [{"event": "invoice.updated"}], "is_active": False},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["data"]["is_active"] is False
    listed = api.get("/event-destinations/subscriptions").json()["data"]
    assert [s["event"] for s in listed] == ["invoice.updated"]  # PUT events replaced the set

    assert [d["id"] for d in api.get("/event-destinations").json()["data"]] == [created["id"]]
    deleted = api.delete(f"/event-destinations/{created['id']}")
    assert deleted.status_code == 200 and deleted.json()["data"]["deleted_at"]
    assert api.get(f"/event-destinations/{created['id']}").status_code == 404
    assert api.get("/event-destinations").json()["data"] == []
    assert api.get("/event-destinations/subscriptions").json()["data"] == []
    assert api.get("/event-destinations", params={"deleted": 1}).json()["data"][0]["id"] == created["id"]


REFUSED = {
    "slack": ({"type": "slack", "config": {"channel": "#finance"}}, "type"),
    "no type": ({"type": None}, "type"),
    "no url": ({"destination_url": None}, "destination_url"),
    "plain http to a remote host": ({"destination_url": "http://hooks.example.com/x"}, "destination_url"),
    "not http": ({"destination_url": "ftp://127.0.0.1/x"}, "destination_url"),
    "events not a list": ({"events": {"event": "invoice.created"}}, "events"),
    "unknown event": ({"events": [{"event": "invoice.exploded"}]}, "events.0.event"),
    "event the emulator never emits": ({"events": [{"event": "contract.created"}]}, "events.0.event"),
    "event twice": ({"events": [{"event": "invoice.paid"}, {"event": "invoice.paid"}]}, "events.1.event"),
    "unknown include": (
        {"events": [{"event": "invoice.paid", "includes": ["payslips"]}]},
        "events.0.includes",
    ),
    "is_active not a boolean": ({"is_active": "yes"}, "is_active"),
    "config not an object": ({"config": "#finance"}, "config"),
}


@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
def test_what_the_emulator_cannot_honour_is_a_422_naming_the_field(api: Api, case: str) -> None:
    changes, field = REFUSED[case]
    body = {"type": "webhook", "destination_url": "https://hooks.example.com/x", "events": [], **changes}
    response = api.post("/event-destinations", json={k: v for k, v in body.items() if v is not None})
    assert response.status_code == 422, response.text
    assert field in response.json()["errors"], response.json()
    assert api.get("/event-destinations", params={"deleted": -1}).json()["data"] == []


def test_a_refused_update_changes_nothing(api: Api) -> None:
    created = _destination(api, "https://hooks.example.com/x", ["invoice.paid"])
    refused = api.put(f"/event-destinations/{created['id']}", json={"events": [{"event": "user.created"}]})
    assert refused.status_code == 422 and "events.0.event" in refused.json()["errors"]
    assert [s["event"] for s in api.get("/event-destinations/subscriptions").json()["data"]] == [
        "invoice.paid"
    ]


# -- deliveries ------------------------------------------------------------------------------------------------


def test_invoice_changes_arrive_signed_in_order_with_the_documented_payload(
    api: Api, enlivy_emulator: EmulatorHandle, receiver: Receiver
) -> None:
    destination = _destination(
        api,
        receiver.url,
        [{"event": "invoice.created", "includes": ["line_items"]}, *ALL_INVOICE_EVENTS[1:]],
    )
    paid = api.create_invoice(0)
    assert api.put(f"/invoices/{paid['id']}", json={"status": "paid"}).status_code == 200
    cancelled = api.create_invoice(1)
    assert api.put(f"/invoices/{cancelled['id']}", json={"status": "cancelled"}).status_code == 200
    assert api.delete(f"/invoices/{cancelled['id']}").status_code == 200
    assert api.post(f"/invoices/restore/{cancelled['id']}").status_code == 200
    log = enlivy_emulator.wait_for_deliveries()

    events = _events(receiver, destination["signing_secret"])
    assert [(e.type, e.data["id"]) for e in events] == [
        ("invoice.created", paid["id"]),
        ("invoice.updated", paid["id"]),
        ("invoice.paid", paid["id"]),
        ("invoice.created", cancelled["id"]),
        ("invoice.updated", cancelled["id"]),
        ("invoice.deleted", cancelled["id"]),
        ("invoice.restored", cancelled["id"]),
    ]
    assert [e.data["status"] for e in events[:3]] == ["pending", "paid", "paid"]
    assert events[4].data["status"] == "cancelled" and events[5].data["deleted_at"]
    assert len({e.id for e in events}) == 7 and all(e.id.startswith("evt_") for e in events)
    assert {e.organization_id for e in events} == {api.org_id}
    # docs/organization/event-destinations.md "Delivered payload structure": the keys, in that order.
    assert list(events[0].payload) == ["id", "type", "created_at", "data", "organization_id"]
    # The subscribed include is there, bare (the SDK's payload example); the unsubscribed ones are not.
    assert [line["quantity"] for line in events[0].data["line_items"]] == [2]
    assert "line_items" not in events[1].data
    assert b'"total":226.10' in receiver.received[0].body  # amounts exact, printed from Decimal

    first = receiver.received[0]
    assert first.path == "/enlivy/webhook" and first.headers["Content-Type"] == "application/json"
    assert [d["status"] for d in log] == ["success"] * 7 and [d["response_status"] for d in log] == [200] * 7
    assert [d["request_headers"][SIGNATURE_HEADER] for d in log] == [
        r.headers[SIGNATURE_HEADER] for r in receiver.received
    ]
    assert [d["event_id"] for d in log] == [e.id for e in events]


def test_deliveries_are_listed_and_filtered_through_the_sdk_routes(
    api: Api, enlivy_emulator: EmulatorHandle, receiver: Receiver
) -> None:
    destination = _destination(api, receiver.url, ["invoice.created", "invoice.paid"])
    invoice = api.create_invoice(0)
    enlivy_emulator.set_invoice_status(invoice["id"], "paid")  # the customer pays
    enlivy_emulator.wait_for_deliveries()

    listed = api.get("/event-destinations/deliveries", params={"order": "asc"}).json()["data"]
    assert [d["event"] for d in listed] == ["invoice.created", "invoice.paid"]
    # The fields of the SDK's EventDelivery model (src/Organization/EventDelivery.php lines 12-24).
    assert set(listed[0]) == {
        "id", "object", "organization_id", "organization_event_destination_id", "event", "status",
        "request_payload", "response_status", "response_type", "response", "is_retry", "created_at",
        "updated_at",
    }  # fmt: skip
    assert listed[0]["object"] == "event_delivery" and listed[0]["id"].startswith("org_evt_dlv_")
    assert listed[0]["organization_event_destination_id"] == destination["id"]
    assert listed[0]["request_payload"]["data"]["id"] == invoice["id"]
    assert (listed[0]["response"], listed[0]["is_retry"]) == ('{"received": true}', False)
    for params, expected in (
        ({"event": "invoice.paid"}, ["invoice.paid"]),
        ({"status": "failed"}, []),
        ({"status": "success", "organization_event_destination_id": destination["id"]}, ["invoice.created", "invoice.paid"]),
    ):  # fmt: skip
        answer = api.get("/event-destinations/deliveries", params={"order": "asc", **params})
        assert [d["event"] for d in answer.json()["data"]] == expected, params
    assert api.get("/event-destinations/deliveries", params={"status": "lost"}).status_code == 422
    one = api.get(f"/event-destinations/deliveries/{listed[1]['id']}")
    assert one.status_code == 200 and one.json()["data"]["event"] == "invoice.paid"


def test_a_delivery_never_holds_up_the_api_answer(
    api: Api, enlivy_emulator: EmulatorHandle, receiver: Receiver
) -> None:
    _destination(api, receiver.url, ["invoice.created"])
    receiver.hold()  # the receiver will not answer until released
    created = api.post("/invoices", json=invoice_payload(0), timeout=10)
    # The API answered although the receiver has not: the POST to it waits in the background.
    assert created.status_code == 201
    assert receiver.arrived.wait(30), "the webhook never reached the receiver"
    assert [d["status"] for d in enlivy_emulator.webhook_deliveries()] == ["pending"]
    with pytest.raises(RuntimeError, match="408"):  # still held: the queue is not empty
        enlivy_emulator.wait_for_deliveries(timeout=0.2)
    receiver.release.set()
    assert [d["status"] for d in enlivy_emulator.wait_for_deliveries()] == ["success"]


def test_a_failed_delivery_is_logged_and_redelivered_with_the_same_event_and_signature(
    api: Api, enlivy_emulator: EmulatorHandle, receiver: Receiver
) -> None:
    destination = _destination(api, receiver.url, ["invoice.created"])
    receiver.status = 500
    api.create_invoice(0)
    (failed,) = enlivy_emulator.wait_for_deliveries()
    assert (failed["status"], failed["response_status"], failed["is_retry"]) == ("failed", 500, False)

    receiver.status = 200
    retry = enlivy_emulator.redeliver(failed["id"])
    assert retry["is_retry"] is True and retry["event_id"] == failed["event_id"]
    log = enlivy_emulator.wait_for_deliveries()
    assert [(d["status"], d["is_retry"]) for d in log] == [("failed", False), ("success", True)]
    first, second = receiver.received
    assert first.body == second.body and first.headers[SIGNATURE_HEADER] == second.headers[SIGNATURE_HEADER]
    assert len({e.id for e in _events(receiver, destination["signing_secret"])}) == 1


def test_an_unreachable_destination_is_a_failed_delivery_with_no_status(
    api: Api, enlivy_emulator: EmulatorHandle
) -> None:
    _destination(api, f"http://127.0.0.1:{free_port()}/nobody-listens", ["invoice.created"])
    assert api.create_invoice(0)["id"]
    (delivery,) = enlivy_emulator.wait_for_deliveries()
    assert (delivery["status"], delivery["response_status"]) == ("failed", 0)
    assert "ConnectionError" in delivery["error"]


def test_paused_deleted_and_other_organizations_destinations_get_nothing(
    api: Api, enlivy_emulator: EmulatorHandle, receiver: Receiver
) -> None:
    with webhook_receiver() as elsewhere:
        active = _destination(api, receiver.url, ["invoice.created"])
        _destination(api, elsewhere.url, ["invoice.created"], is_active=False)
        deleted = _destination(api, elsewhere.url, ["invoice.created"])
        assert api.delete(f"/event-destinations/{deleted['id']}").status_code == 200
        other = Api(enlivy_emulator, enlivy_emulator.other_token, enlivy_emulator.other_org_id)
        _destination(other, elsewhere.url, ["invoice.created"])
        invoice = api.create_invoice(0)
        log = enlivy_emulator.wait_for_deliveries()
        assert elsewhere.received == []
    assert [(d["organization_event_destination_id"], d["event"]) for d in log] == [
        (active["id"], "invoice.created")
    ]
    assert [e.data["id"] for e in _events(receiver, active["signing_secret"])] == [invoice["id"]]
    assert other.get("/event-destinations/deliveries").json()["data"] == []


def test_one_delivery_per_change_not_per_request(
    api: Api, enlivy_emulator: EmulatorHandle, receiver: Receiver
) -> None:
    _destination(api, receiver.url)
    keyed = {"headers": {"Idempotency-Key": "create-once"}, "json": invoice_payload(0)}
    first, replay = api.post("/invoices", **keyed), api.post("/invoices", **keyed)
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json()["id"] == first.json()["id"]
    same = api.put(f"/invoices/{first.json()['id']}", json={"currency": "EUR"})  # changes nothing
    assert same.status_code == 200
    assert (
        api.post(f"/invoices/{first.json()['id']}/email", json={}).status_code == 200
    )  # pending -> sent_email
    log = enlivy_emulator.wait_for_deliveries()
    assert [d["event"] for d in log] == ["invoice.created", "invoice.updated"]
    assert log[1]["request_payload"]["data"]["status"] == "sent_email"


def test_reset_forgets_destinations_and_deliveries(
    api: Api, enlivy_emulator: EmulatorHandle, receiver: Receiver
) -> None:
    _destination(api, receiver.url, ["invoice.created"])
    api.create_invoice(0)
    enlivy_emulator.wait_for_deliveries()
    enlivy_emulator.reset()
    assert enlivy_emulator.webhook_deliveries() == []
    assert api.get("/event-destinations").json()["data"] == []
    api.create_invoice(0)
    assert enlivy_emulator.wait_for_deliveries() == [] and len(receiver.received) == 1
