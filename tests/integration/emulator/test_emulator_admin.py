"""Admin API under /_emulator/ (contracts.md): reset, counters, config, invoice status, listings, bulk."""

from __future__ import annotations

import time

import requests
from emulator_test_api import Api, invoice_payload

from enlivy_provider.emulator import seed
from enlivy_provider.testing import EmulatorHandle


def admin(handle: EmulatorHandle, method: str, path: str, **kwargs: object) -> requests.Response:
    return requests.request(method, f"{handle.base_url}/_emulator{path}", timeout=30, **kwargs)  # type: ignore[arg-type]


def test_health(enlivy_emulator: EmulatorHandle) -> None:
    assert admin(enlivy_emulator, "GET", "/health").json() == {"status": "ok"}


def test_reset_wipes_data_counters_faults_keys_and_config(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    api.post("/invoices", json=invoice_payload(), headers={"Idempotency-Key": "k"})
    enlivy_emulator.add_fault("GET", "/organizations/*", "error")
    enlivy_emulator.configure(latency_ms=5, rate_limit=100, auto_pay_after=60, replay_header=False)
    enlivy_emulator.reset()
    assert enlivy_emulator.invoices() == []
    assert enlivy_emulator.idempotency_keys() == []
    counters = enlivy_emulator.counters()
    assert (counters["routes"], counters["writes"], counters["total"]) == ({}, 0, 0)
    assert admin(enlivy_emulator, "GET", "/faults").json() == {"data": []}
    assert admin(enlivy_emulator, "GET", "/config").json() == {
        "latency_ms": 0,
        "rate_limit": None,
        "auto_pay_after": None,
        "replay_header": True,
    }
    assert api.create_invoice()["number"] == "1"  # the prefix counter starts again


def test_reset_with_extra_customers(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    enlivy_emulator.reset(extra_customers=1000)
    page = api.get("/users", params={"can_be_invoiced": 1, "per_page": 50}).json()
    assert page["meta"]["pagination"]["total"] == len(seed.DEMO_CUSTOMERS) + 1000
    found = api.get("/users", params={"email": "customer0999@bench.example"}).json()["data"]
    assert [user["name"] for user in found] == ["Bench Customer 0999"]
    invoice = api.create_invoice(organization_receiver_user_id=found[0]["id"])
    assert invoice["organization_receiver_user_id"] == found[0]["id"]
    assert admin(enlivy_emulator, "POST", "/reset", json={"seed": "other"}).status_code == 422


def test_counters_by_route_template_writes_and_total(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    created = api.create_invoice()
    api.get(f"/invoices/{created['id']}")
    api.get(f"/invoices/{created['id']}")
    api.put(f"/invoices/{created['id']}", json={"status": "paid"})
    api.list_invoices()
    api.get("/users")
    enlivy_emulator.health()
    counters = enlivy_emulator.counters()
    assert counters["routes"] == {
        "POST /organizations/{org}/invoices": 1,
        "GET /organizations/{org}/invoices/{id}": 2,
        "PUT /organizations/{org}/invoices/{id}": 1,
        "GET /organizations/{org}/invoices": 1,
        "GET /organizations/{org}/users": 1,
    }
    assert counters["writes"] == 2
    assert counters["total"] == 6
    assert enlivy_emulator.request_count("GET", "/organizations/{org}/invoices/{id}") == 2
    enlivy_emulator.reset_counters()
    assert enlivy_emulator.counters()["total"] == 0


def test_request_log_keeps_each_request_with_its_decoded_query(
    api: Api, enlivy_emulator: EmulatorHandle
) -> None:
    api.list_invoices(ids="org_inv_a,org_inv_b", deleted=-1)
    api.get("/users")
    api.list_invoices(status="paid")
    enlivy_emulator.health()  # admin requests are not logged

    log = enlivy_emulator.request_log()
    assert [(entry["method"], entry["route"], entry["query"]) for entry in log] == [
        ("GET", "/organizations/{org}/invoices", "ids=org_inv_a,org_inv_b&deleted=-1"),
        ("GET", "/organizations/{org}/users", ""),
        ("GET", "/organizations/{org}/invoices", "status=paid"),
    ]
    assert log[0]["path"] == f"/organizations/{enlivy_emulator.org_id}/invoices"
    assert len(enlivy_emulator.request_log("GET", "/organizations/{org}/invoices")) == 2
    enlivy_emulator.reset_counters()
    assert enlivy_emulator.request_log() == []


def test_set_invoice_status(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    created = api.create_invoice()
    paid = enlivy_emulator.set_invoice_status(created["id"], "paid")
    assert paid["status"] == "paid" and paid["paid_at"] is not None
    assert api.get(f"/invoices/{created['id']}").json()["data"]["status"] == "paid"
    cancelled = enlivy_emulator.set_invoice_status(created["id"], "cancelled")
    assert cancelled["status"] == "cancelled"
    bad = admin(enlivy_emulator, "POST", f"/invoices/{created['id']}/status", json={"status": "void"})
    assert bad.status_code == 422
    assert (
        admin(enlivy_emulator, "POST", "/invoices/org_inv_nope/status", json={"status": "paid"}).status_code
        == 404
    )


def test_auto_pay_after(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    enlivy_emulator.configure(auto_pay_after=0.5)
    pending = api.create_invoice()
    draft = api.create_invoice(status="draft")
    assert api.get(f"/invoices/{pending['id']}").json()["data"]["status"] == "pending"
    time.sleep(0.6)
    assert api.get(f"/invoices/{pending['id']}").json()["data"]["status"] == "paid"
    assert api.get(f"/invoices/{draft['id']}").json()["data"]["status"] == "draft"


def test_admin_invoices_lists_deleted_with_plain_line_items(
    api: Api, enlivy_emulator: EmulatorHandle
) -> None:
    created = api.create_invoice()
    api.delete(f"/invoices/{created['id']}")
    other = Api(enlivy_emulator, token=enlivy_emulator.other_token, org_id=enlivy_emulator.other_org_id)
    other.create_invoice(
        organization_receiver_user_id=seed.OTHER_CUSTOMER_ID, line_items=None, source="external"
    )
    everything = enlivy_emulator.invoices()
    assert len(everything) == 2
    mine = enlivy_emulator.invoices(enlivy_emulator.org_id)
    assert [i["id"] for i in mine] == [created["id"]]
    assert mine[0]["deleted_at"] is not None
    assert isinstance(mine[0]["line_items"], list) and mine[0]["line_items"][0]["quantity"] == 2


def test_bulk_invoices(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    result = enlivy_emulator.bulk_invoices(250, status="paid")
    assert result["count"] == 250
    listing = api.list_invoices(per_page=50, status="paid").json()
    assert listing["meta"]["pagination"]["total"] == 250
    numbers = {i["number"] for i in enlivy_emulator.invoices()}
    assert numbers == {str(n) for n in range(1, 251)}
    assert api.create_invoice()["number"] == "251"
    assert admin(enlivy_emulator, "POST", "/bulk-invoices", json={"count": 0}).status_code == 422


def test_config_validation(enlivy_emulator: EmulatorHandle) -> None:
    assert admin(enlivy_emulator, "PUT", "/config", json={"latency_ms": -1}).status_code == 422
    assert admin(enlivy_emulator, "PUT", "/config", json={"rate_limit": 0}).status_code == 422
    assert admin(enlivy_emulator, "PUT", "/config", json={"speed": 1}).status_code == 422
    assert admin(enlivy_emulator, "PUT", "/config", json={"replay_header": "no"}).status_code == 422
    answer = admin(enlivy_emulator, "PUT", "/config", json={"rate_limit": 2.5, "auto_pay_after": None})
    assert answer.json() == {
        "latency_ms": 0,
        "rate_limit": 2.5,
        "auto_pay_after": None,
        "replay_header": True,
    }


def test_billings_counts_live_invoices_per_billing_and_the_duplicates(
    api: Api, enlivy_emulator: EmulatorHandle
) -> None:
    def billed(
        customer: int, start: str, end: str, key: str | None = None, **fields: object
    ) -> dict[str, object]:
        line = {
            "name_lang_map": {"en": "Plan"},
            "quantity": 1,
            "price": "10.00",
            "has_billing_period": True,
            "billing_period_started_at": start,
            "billing_period_ended_at": end,
        }
        return api.create_invoice(customer, line_items=[line], peppol_project_reference=key, **fields)

    billed(0, "2026-10-01", "2026-10-31", "usage")
    billed(0, "2026-10-01", "2026-10-31", "usage")  # the same billing twice: one duplicate
    billed(0, "2026-10-01", "2026-10-31", "consulting")  # another billing key: another billing
    billed(0, "2026-09-01", "2026-09-30", "usage")
    cancelled = billed(1, "2026-10-01", "2026-10-31", "usage")
    billed(1, "2026-10-01", "2026-10-31", "usage")  # billed again after the cancellation: no duplicate
    api.put(f"/invoices/{cancelled['id']}", json={"status": "cancelled"})
    deleted = billed(2, "2026-10-01", "2026-10-31", "usage")
    api.delete(f"/invoices/{deleted['id']}")
    api.create_invoice(3)  # no billing period: not a billing
    counts = enlivy_emulator.billings()
    assert (counts["billings"], counts["invoices"], counts["duplicates"]) == (4, 5, 1)
    customer = seed.DEMO_CUSTOMERS[0].id
    assert counts["examples"] == [
        {
            "customer_id": customer,
            "period_start": "2026-10-01",
            "period_end": "2026-10-31",
            "billing_key": "usage",
            "invoices": 2,
        }
    ]


def test_answers_429_are_counted(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    enlivy_emulator.configure(rate_limit=0.01)  # one request, then the next token is 100 s away
    assert api.list_invoices().status_code == 200
    refused = api.list_invoices()
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "100"
    assert enlivy_emulator.counters()["rate_limited"] == 1
    enlivy_emulator.reset()
    enlivy_emulator.add_fault("GET", "/organizations/*/users", "rate_limit", times=2)
    assert [api.get("/users").status_code for _ in range(3)] == [429, 429, 200]
    assert enlivy_emulator.counters()["rate_limited"] == 2
